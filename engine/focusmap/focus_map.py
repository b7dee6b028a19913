"""`FocusMap`: where a pathologist wants each part of a slide in focus, in µm.

A grid of target depths over one slide's level-0 plane: a cell every ``stride`` level-0 px
(default 32 px, 8 µm at 0.25 µm/px), each holding a focus in µm in the slide's z frame, or NaN
where nothing was painted (there the map follows ``default_um``, the focus knob's setting).
Painting is a round brush with a soft edge (``hardness``: the fraction of the radius painted at
full strength; the rest fades out smoothly), an eraser (back to "not painted"), auto-fill from a
best-focus depth map, and undo/redo of whole strokes. Every change gets a new ``version``;
`frozen` gives an immutable copy for the renderers (a `FocusMappedSlide` of one version never
sees a later stroke). `save` / `load` write and read a ``.npz`` (written to a temporary file and
renamed, so an interrupted save never leaves a damaged map).

Coordinates: level-0 px; cell (r, c) covers x in [c·stride, (c+1)·stride), y likewise, and its
value sits at the cell's centre. `z_region` samples the map bilinearly between cell centres.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from scipy import ndimage

__all__ = ["FocusMap", "FocusMapError", "DEFAULT_STRIDE"]

#: Cell size in level-0 px.
DEFAULT_STRIDE = 32
#: Undo steps kept.
UNDO_LIMIT = 100
_FORMAT = "finefocus-focus-map-1"


class FocusMapError(ValueError):
    """A focus map file that cannot be read or does not fit the slide; the message names the file."""


@dataclass
class _Step:
    """One undoable change: the cells of a rectangle before and after."""

    r0: int
    c0: int
    before: np.ndarray
    after: np.ndarray


@dataclass(eq=False)
class FocusMap:
    """Target focus (µm) over a ``width`` × ``height`` level-0 px slide; see the module docstring."""

    width: int
    height: int
    default_um: float = 0.0
    stride: int = DEFAULT_STRIDE
    values: np.ndarray | None = None          # float32 (rows, cols) µm, NaN = not painted
    version: int = 0
    _undo: list[_Step] = field(default_factory=list, repr=False)
    _redo: list[_Step] = field(default_factory=list, repr=False)

    def __post_init__(self):
        if self.width < 1 or self.height < 1:
            raise ValueError(f"a focus map needs a slide of at least 1 × 1 px, got {self.width} × {self.height}")
        if self.stride < 1:
            raise ValueError(f"stride must be >= 1 level-0 px, got {self.stride}")
        if not np.isfinite(self.default_um):
            raise ValueError(f"default focus must be a finite number of µm, got {self.default_um}")
        shape = self.shape
        if self.values is None:
            self.values = np.full(shape, np.nan, np.float32)
        elif self.values.shape != shape:
            raise ValueError(f"values {self.values.shape} do not fit a {self.width} × {self.height} px slide "
                             f"at stride {self.stride} ({shape})")

    # ------------------------------------------------------------------ geometry
    @property
    def shape(self) -> tuple[int, int]:
        """(rows, cols) of the grid."""
        return (-(-self.height // self.stride), -(-self.width // self.stride))

    @property
    def painted(self) -> np.ndarray:
        """bool (rows, cols): cells with a painted focus."""
        return np.isfinite(self.values)

    def filled(self) -> np.ndarray:
        """float32 (rows, cols) µm: painted cells, ``default_um`` elsewhere."""
        return np.where(self.painted, self.values, np.float32(self.default_um)).astype(np.float32)

    def z_region(self, x: float, y: float, w: float, h: float, out_w: int, out_h: int) -> np.ndarray:
        """Target focus (out_h, out_w) float32 µm over the level-0 region (x, y, w, h), sampled at
        the centres of an out_w × out_h pixel grid covering it (bilinear between cell centres,
        the edge cells' values beyond them)."""
        xs = x + (np.arange(out_w) + 0.5) * (w / out_w)
        ys = y + (np.arange(out_h) + 0.5) * (h / out_h)
        cols = xs / self.stride - 0.5
        rows = ys / self.stride - 0.5
        rr, cc = np.meshgrid(rows, cols, indexing="ij")
        return ndimage.map_coordinates(self.filled(), [rr, cc], order=1, mode="nearest").astype(np.float32)

    def _cells_within(self, cx: float, cy: float, radius: float) -> tuple[slice, slice, np.ndarray]:
        """The cells a round brush at (cx, cy) of ``radius`` level-0 px touches, and each one's
        distance from the centre in units of the radius."""
        rows, cols = self.shape
        s = self.stride
        r0, r1 = max(0, int((cy - radius) // s)), min(rows, int((cy + radius) // s) + 1)
        c0, c1 = max(0, int((cx - radius) // s)), min(cols, int((cx + radius) // s) + 1)
        yy = (np.arange(r0, r1) + 0.5) * s
        xx = (np.arange(c0, c1) + 0.5) * s
        d = np.hypot(xx[None, :] - cx, yy[:, None] - cy) / max(radius, 1e-9)
        return slice(r0, r1), slice(c0, c1), d

    # ------------------------------------------------------------------ editing
    def paint(self, points: Iterable[tuple[float, float]], radius: float, z_um: float,
              hardness: float = 0.5) -> None:
        """One stroke (one undo step) of a round brush through ``points`` (level-0 px): cells
        within ``hardness`` × ``radius`` of a point take ``z_um``; between there and ``radius``
        they move toward it by a smooth falloff (painted over what they showed before, the
        default where unpainted)."""
        if not np.isfinite(z_um):
            raise ValueError(f"focus must be a finite number of µm, got {z_um}")
        if radius <= 0:
            raise ValueError(f"brush radius must be > 0 level-0 px, got {radius}")
        if not 0.0 <= hardness <= 1.0:
            raise ValueError(f"hardness must be in [0, 1], got {hardness}")

        def dab(cells: np.ndarray, d: np.ndarray) -> np.ndarray:
            t = np.clip((1.0 - d) / max(1.0 - hardness, 1e-6), 0.0, 1.0)
            weight = t * t * (3 - 2 * t)                          # smoothstep: 1 inside, 0 at the rim
            old = np.where(np.isfinite(cells), cells, np.float32(self.default_um))
            return np.where(weight > 0, old + weight * (np.float32(z_um) - old), cells).astype(np.float32)

        self._stroke(points, radius, dab)

    def erase(self, points: Iterable[tuple[float, float]], radius: float) -> None:
        """One stroke of the eraser: cells whose centre lies within ``radius`` of a point go back
        to "not painted"."""
        if radius <= 0:
            raise ValueError(f"eraser radius must be > 0 level-0 px, got {radius}")
        self._stroke(points, radius, lambda cells, d: np.where(d <= 1.0, np.float32(np.nan), cells))

    def fill(self, depth_um: np.ndarray, origin: tuple[float, float], spacing: float,
             only_unpainted: bool = False, region: tuple[float, float, float, float] | None = None) -> None:
        """Auto-fill (one undo step) from a best-focus depth map: ``depth_um`` (rows, cols) µm,
        NaN where unknown (glass), its cell (i, j) centred at level-0 (origin[0] + j·spacing,
        origin[1] + i·spacing). Each cell takes the depth map's value nearest its centre.

        Without ``region`` only cells within half a spacing of the depth map's cells change; with
        ``region`` (x, y, w, h level-0 px) exactly the cells centred in it change, each from its
        nearest depth cell however far (so a region at the slide's edge, whose depth cells cannot
        reach it, is filled to its border). Unknown depths leave a cell as it was, and so does
        ``only_unpainted`` for what the user painted."""
        depth = np.asarray(depth_um, np.float32)
        if depth.ndim != 2 or depth.size == 0:
            raise ValueError(f"a depth map must be a non-empty 2-D grid, got shape {depth.shape}")
        if not spacing > 0:
            raise ValueError(f"depth map spacing must be > 0 level-0 px, got {spacing}")
        rows, cols = self.shape
        cy, cx = (np.arange(rows) + 0.5) * self.stride, (np.arange(cols) + 0.5) * self.stride
        if region is None:
            fi, fj = (cy - origin[1]) / spacing, (cx - origin[0]) / spacing
            rsel = (fi >= -0.5) & (fi <= depth.shape[0] - 0.5)
            csel = (fj >= -0.5) & (fj <= depth.shape[1] - 0.5)
        else:
            x, y, w, h = region
            rsel, csel = (cy >= y) & (cy < y + h), (cx >= x) & (cx < x + w)
        if not rsel.any() or not csel.any():
            return
        r0, r1 = np.flatnonzero(rsel)[[0, -1]] + (0, 1)
        c0, c1 = np.flatnonzero(csel)[[0, -1]] + (0, 1)
        i = np.clip(np.rint((cy[r0:r1] - origin[1]) / spacing), 0, depth.shape[0] - 1).astype(int)
        j = np.clip(np.rint((cx[c0:c1] - origin[0]) / spacing), 0, depth.shape[1] - 1).astype(int)
        sampled = depth[i[:, None], j[None, :]]
        old = self.values[r0:r1, c0:c1]
        keep = ~np.isfinite(sampled)
        if only_unpainted:
            keep |= np.isfinite(old)
        self._apply(int(r0), int(c0), np.where(keep, old, sampled).astype(np.float32))

    def _stroke(self, points, radius, change) -> None:
        pts = [(float(px), float(py)) for px, py in points]
        if not pts:
            return
        new = self.values.copy()
        touched = np.zeros(self.shape, bool)
        for px, py in pts:
            rs, cs, d = self._cells_within(px, py, radius)
            new[rs, cs] = change(new[rs, cs], d)
            touched[rs, cs] = True
        if not touched.any():
            return
        rr, cc = np.nonzero(touched)
        r0, r1, c0, c1 = rr.min(), rr.max() + 1, cc.min(), cc.max() + 1
        self._apply(r0, c0, new[r0:r1, c0:c1])

    def _apply(self, r0: int, c0: int, after: np.ndarray) -> None:
        if not self.values.flags.writeable:
            raise ValueError("a frozen focus map cannot be edited")
        r1, c1 = r0 + after.shape[0], c0 + after.shape[1]
        before = self.values[r0:r1, c0:c1].copy()
        if np.array_equal(before, after, equal_nan=True):
            return
        self._undo.append(_Step(r0, c0, before, after.copy()))
        del self._undo[:-UNDO_LIMIT]
        self._redo.clear()
        self.values[r0:r1, c0:c1] = after
        self.version += 1

    def replace(self, other: "FocusMap") -> None:
        """Take every cell of ``other`` (an imported map of the same slide and stride) as one
        undo step, so an import can be taken back like a stroke; ``default_um`` is kept."""
        if (other.width, other.height, other.stride) != (self.width, self.height, self.stride):
            raise ValueError(f"a {other.width} × {other.height} px map at {other.stride} px per cell cannot replace "
                             f"a {self.width} × {self.height} px one at {self.stride}")
        self._apply(0, 0, np.asarray(other.values, np.float32))

    def undo(self) -> bool:
        """Take back the last stroke or fill; False when there is nothing to undo."""
        return self._swap(self._undo, self._redo, "before")

    def redo(self) -> bool:
        """Put back the last undone change; False when there is nothing to redo."""
        return self._swap(self._redo, self._undo, "after")

    def _swap(self, src: list[_Step], dst: list[_Step], which: str) -> bool:
        if not src:
            return False
        step = src.pop()
        cells = getattr(step, which)
        self.values[step.r0:step.r0 + cells.shape[0], step.c0:step.c0 + cells.shape[1]] = cells
        dst.append(step)
        self.version += 1
        return True

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    # ------------------------------------------------------------------ snapshots and files
    def frozen(self) -> "FocusMap":
        """An immutable copy of this version (no undo history; its values are read-only)."""
        values = self.values.copy()
        values.flags.writeable = False
        return FocusMap(self.width, self.height, self.default_um, self.stride, values, self.version)

    @property
    def digest(self) -> str:
        """16 hex digits naming the map's content (geometry, default and values)."""
        h = hashlib.blake2b(digest_size=8)
        h.update(np.asarray([self.width, self.height, self.stride], np.int64).tobytes())
        h.update(np.float64(self.default_um).tobytes())
        h.update(np.ascontiguousarray(self.values).tobytes())
        return h.hexdigest()

    def save(self, path: str | os.PathLike, *, durable: bool = False) -> Path:
        """Write the map to ``path`` (.npz); atomic: a temporary file renamed into place.
        ``durable`` also fsyncs the file and its folder (the content survives a power cut)."""
        path = Path(path)
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".part.npz", dir=path.parent)
        os.close(fd)
        try:
            np.savez_compressed(tmp, format=np.array(_FORMAT), width=self.width, height=self.height,
                                stride=self.stride, default_um=np.float64(self.default_um), values=self.values)
            os.chmod(tmp, 0o644)     # mkstemp made it owner-only; a saved map is an ordinary file
            if durable:
                with open(tmp, "rb+") as f:
                    os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        if durable:
            from ._files import fsync_folder
            fsync_folder(path.parent)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, size: Sequence[int] | None = None) -> "FocusMap":
        """Read a map written by `save`; with ``size`` = (width, height) it must be that slide's
        (level-0 px). Errors name the file and the reason (`FocusMapError`)."""
        path = Path(path)
        try:
            z = np.load(path, allow_pickle=False)
            if not isinstance(z, np.lib.npyio.NpzFile):
                raise FocusMapError(f"{path}: not a FineFocus focus map")
            with z:
                if "format" not in z.files or str(z["format"]) != _FORMAT:
                    raise FocusMapError(f"{path}: not a FineFocus focus map")
                fm = cls(int(z["width"]), int(z["height"]), float(z["default_um"]), int(z["stride"]),
                         np.asarray(z["values"], np.float32))
        except FocusMapError:
            raise
        except FileNotFoundError:
            raise FocusMapError(f"{path}: no such file") from None
        except Exception as exc:  # a damaged file fails in zipfile, zlib, numpy…: one message
            raise FocusMapError(f"{path}: not a readable focus map ({type(exc).__name__}: {exc})") from None
        if size is not None and (fm.width, fm.height) != (int(size[0]), int(size[1])):
            raise FocusMapError(f"{path}: made for a {fm.width} × {fm.height} px slide, this one is "
                                f"{int(size[0])} × {int(size[1])} px")
        return fm
