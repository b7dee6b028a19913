"""What the slide layer shows while a focus map is painted: a `FocusMappedSlide` of the map's
current version, built through the window's radiance cache (the knob's encoded fields), so a
stroke only reruns the decoder.

`MappedSource` adds two things to the engine's class, neither changing its pixels:

* it takes over from the source it supersedes (``previous``) every decoded level-0 block whose
  decoder target is the same in both maps (the cells under the block and its margin, and one
  cell around for the bilinear sampling), so a stroke re-decodes only the blocks it touched;
* its uid is computed once (the engine's hashes the map at every access);
* ``blend_only`` (the degraded view of `app.focus.refocus_view`: too many blocks for the
  radiance cap) gets a uid of its own, so its blended tiles never pass for decoded ones.

`MapSources` keeps the one source of the current (map, version, knob z) and, when a newer one
replaces it, tells the tile store to forget the old version's tiles.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from engine.focusmap import FocusMap
from engine.refocus.focus_mapped_slide import FocusMappedSlide

__all__ = ["MappedSource", "MapSources", "VersionedMap", "versioned", "same_target"]


def same_target(a: FocusMap, b: FocusMap, x: float, y: float, w: float, h: float) -> bool:
    """True when ``a`` and ``b`` give the same target focus (µm) everywhere in the level-0
    rectangle (x, y, w, h): their filled cells agree over it and one cell around."""
    if a.stride != b.stride or a.shape != b.shape:
        return False
    s = a.stride
    rows, cols = a.shape
    c0, c1 = max(0, math.floor(x / s) - 1), min(cols, math.ceil((x + w) / s) + 1)
    r0, r1 = max(0, math.floor(y / s) - 1), min(rows, math.ceil((y + h) / s) + 1)
    if c1 <= c0 or r1 <= r0:
        return True

    def filled(m: FocusMap) -> np.ndarray:
        v = m.values[r0:r1, c0:c1]
        return np.where(np.isfinite(v), v, np.float32(m.default_um))

    return bool(np.array_equal(filled(a), filled(b)))


@dataclass(eq=False)
class VersionedMap(FocusMap):
    """A frozen map version for rendering, named by (``token`` of the live map it copies, its
    ``version``, its default in µm) instead of a hash of its cells: the live map's version
    changes with every edit, so that names the content as well within a session, for nothing
    (the engine's `FocusMap.digest` hashes every cell, ~40 ms on a whole slide's map, and the
    knob makes a new source per step). `z_region` reads only the cells around the region, with
    the same results as `FocusMap.z_region`."""

    token: str = ""

    @property
    def digest(self) -> str:
        text = f"{self.token}|v{self.version}|{float(self.default_um)!r}|{self.width}x{self.height}@{self.stride}"
        return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()

    def frozen(self) -> "VersionedMap":
        if not self.values.flags.writeable:
            return self                              # already immutable
        f = super().frozen()
        return VersionedMap(f.width, f.height, f.default_um, f.stride, f.values, f.version, token=self.token)

    def z_region(self, x, y, w, h, out_w, out_h):
        xs = x + (np.arange(out_w) + 0.5) * (w / out_w)
        ys = y + (np.arange(out_h) + 0.5) * (h / out_h)
        cols = xs / self.stride - 0.5
        rows = ys / self.stride - 0.5
        nr, nc = self.shape
        r0 = min(max(0, int(np.floor(rows.min())) - 1), nr - 1)
        r1 = max(min(nr, int(np.floor(rows.max())) + 2), r0 + 1)
        c0 = min(max(0, int(np.floor(cols.min())) - 1), nc - 1)
        c1 = max(min(nc, int(np.floor(cols.max())) + 2), c0 + 1)
        v = self.values[r0:r1, c0:c1]
        window = np.where(np.isfinite(v), v, np.float32(self.default_um)).astype(np.float32)
        # Shifting by whole cells is exact in floating point: the same weights as on the whole grid.
        rr, cc = np.meshgrid(rows - r0, cols - c0, indexing="ij")
        return ndimage.map_coordinates(window, [rr, cc], order=1, mode="nearest").astype(np.float32)


def versioned(fm: FocusMap, default_um: float, token: str) -> VersionedMap:
    """An immutable copy of the live map ``fm`` with ``default_um`` (µm: the knob's z)."""
    values = fm.values.copy()
    values.flags.writeable = False
    return VersionedMap(fm.width, fm.height, float(default_um), fm.stride, values, fm.version, token=token)


class MappedSource(FocusMappedSlide):
    """A `FocusMappedSlide` of ``focus_map`` over ``base`` (see the module docstring); ``key``
    names the (map, version, knob z) it shows."""

    def __init__(self, base, focus_map: FocusMap, cache, key: tuple, blend_only: bool = False,
                 previous: "MappedSource | None" = None):
        super().__init__(base, focus_map, cache=cache)
        self.blend_only = bool(blend_only)
        self.key = key
        self._previous = previous if previous is not None and previous.base is base else None
        #: Blocks taken over from ``previous`` instead of decoded (for tests and the log).
        self.reused_blocks = 0

    @property
    def uid(self) -> str:
        # Computed once: `FocusMappedSlide.uid` hashes the whole map on every access, and the
        # canvas and the tile store ask for it per tile (tens of ms each on a whole slide's map).
        uid = self.__dict__.get("_uid")
        if uid is None:
            uid = super().uid + ("|blend" if self.blend_only else "")
            if "blend_only" in self.__dict__ and "key" in self.__dict__:   # construction finished
                self._uid = uid
        return uid

    def block(self, bx: int, by: int) -> np.ndarray:
        return self.decoded_blocks.get((bx, by), lambda: self._reuse_or_decode(bx, by))

    def _reuse_or_decode(self, bx: int, by: int) -> np.ndarray:
        prev = self._previous
        if prev is not None and (bx, by) in prev.decoded_blocks:
            B, M = self.block_px, self.halo_px
            if same_target(prev.focus_map, self.focus_map, bx * B - M, by * B - M, B + 2 * M, B + 2 * M):
                self.reused_blocks += 1
                return prev.decoded_blocks.get((bx, by), lambda: self._decode_block(bx, by))
        return self._decode_block(bx, by)

    def release_previous(self) -> None:
        """Stop holding the superseded source (and its decoded blocks)."""
        self._previous = None


class MapSources:
    """The mapped source of the current map version for one window: ``cache()`` gives the
    window's radiance cache, ``store`` is the tile store whose superseded tiles are forgotten."""

    def __init__(self, cache, store):
        self._cache, self.store = cache, store
        self.current: MappedSource | None = None
        self._blend: MappedSource | None = None

    def source(self, base, fm: FocusMap, key: tuple, blend_only: bool) -> MappedSource:
        """The source for map ``fm`` (a frozen copy whose default is the knob's z) named ``key``."""
        if blend_only:
            old = self._blend
            if old is None or old.key != key or old.base is not base:
                if old is not None:
                    self.store.forget(old)
                self._blend = MappedSource(base, fm, self._cache(), key, blend_only=True)
            return self._blend
        cur = self.current
        if cur is not None and cur.key == key and cur.base is base:
            return cur
        new = MappedSource(base, fm, self._cache(), key, previous=cur)
        if cur is not None:
            cur.release_previous()          # one version back is enough: no chain of old maps
            if cur.uid != new.uid:
                self.store.forget(cur)      # its tiles (and its blend's) are superseded
        self.current = new
        return new

    def drop(self) -> None:
        """No map is rendered any more (hidden, cleared, another slide): forget its tiles."""
        for src in (self.current, self._blend):
            if src is not None:
                self.store.forget(src)
        self.current = self._blend = None
