"""Whole-slide exports: a slide (or a level-0 region of it) computed tile by tile and written as
one pyramidal, tiled OME-TIFF (`ome_tiff.write_tiled_ome_tiff`: SubIFD pyramid, PhysicalSizeX/Y
in µm), resumable after an interruption.

* `export_refocused` — the slide at one focus ``z_um`` everywhere (`RefocusedSlide`), or at a
  focus map's (`FocusMappedSlide`); uint8 RGB.
* `export_all_in_focus` — every place at its own best focus (as `all_in_focus_region`:
  `best_focus_fill` finds the depths, `FocusMappedSlide` renders them); uint8 RGB.
* `export_depth_map` — the best-focus depth z* (µm) that the all-in-focus export renders, as
  float32, one px per focus-map cell (``FocusMap.stride`` level-0 px, 8 µm at 0.25 µm/px), NaN
  on glass.

How an export runs, in stages (each reported to ``progress(stage, done, total)``):

1. ``depth`` (aif, depthmap): the best-focus depths of the region, in chunks of a few tiles
   (each read with a patch of context, as `best_focus_fill` reads a region), filled into one
   focus map of the whole slide. A chunk fills exactly the map cells centred in it, so the
   chunks together fill what one `best_focus_fill` of the region would (one chunk: identical).
2. ``tiles`` (aif, refocus): level 0, ``tile`` × ``tile`` px, computed by the view's
   ``read_region`` in the order of the refocusing model's blocks (a block's field is encoded
   once for the tiles in it).
3. ``pyramid``: each coarser level (2×, down to one tile; `computed_levels`) by 2×2 box
   averaging of the level below (`box_downsample2`), tile by tile: the pyramid of the exported
   pixels themselves, so a coarse level shows the refocused image too.
4. ``write``: the OME-TIFF, written to ``OUT.part`` and renamed onto ``OUT`` when complete.

Every finished depth chunk and tile goes to a `TileStore` (``OUT.partial`` and its sidecar
``OUT.partial.json``) as it is made. ``cancelled()`` is asked between tiles (and inside a depth
chunk's scoring); when it says True the store is closed and `ExportInterrupted` raised: the
target is never written, and ``resume=True`` later continues from the store without computing a
finished tile again (the sidecar's header must match: same slide, kind, focus, weights, region
and tile). A complete export deletes the store.
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from ..focusmap import FocusMap
from ..slides.array import box_downsample2
from ..slides.base import Level, Slide
from ..slides.computed_levels import computed_levels
from .all_in_focus import all_in_focus_map
from .ome_tiff import check_tiling, write_tiled_ome_tiff
from .tile_store import TileStore, TileStoreError, partial_paths

__all__ = ["export_refocused", "export_all_in_focus", "export_depth_map", "ExportResult", "ExportError",
           "ExportInterrupted", "partial_paths", "TILE"]

#: Default tile edge (px): one refocusing block of a 40× (0.25 µm/px) slide.
TILE = 512
#: FocusLiteNN model that finds the best focus (as `best_focus_fill` uses by default).
DEPTH_MODEL = "focuslitenn-1"
#: Largest depth chunk (level-0 px): a chunk is one `best_focus_fill` call, its progress step.
MAX_DEPTH_CHUNK = 2048
#: Radiance memory of an export: a few blocks (tiles follow the block grid, so a block's field
#: is rarely needed again once its tiles are done).
EXPORT_RADIANCE_BYTES = 256 << 20

#: progress(stage, done, total) — stage is "depth", "tiles", "pyramid" or "write".
Progress = Callable[[str, int, int], None]


class ExportError(ValueError):
    """An export that cannot be made as asked; the message names the file and the reason."""


class ExportInterrupted(InterruptedError):
    """``cancelled()`` stopped an export; what was finished is kept in ``partial``."""

    def __init__(self, out: Path, stage: str, done: int, total: int):
        self.out, self.stage, self.done, self.total = out, stage, done, total
        self.partial = partial_paths(out)[0]
        super().__init__(f"{out}: export interrupted at {stage} {done}/{total}; the finished part is kept "
                         f"in {self.partial.name} (resume to continue)")


@dataclass
class ExportResult:
    """What an export wrote: ``size`` (level-0 px of the file), ``levels``, ``mpp`` (µm per px of
    the file), ``computed`` / ``reused`` depth chunks and level-0 tiles (reused: from an
    interrupted export), the ``focus_map`` rendered or exported (aif, depthmap), a description."""

    path: Path
    kind: str
    size: tuple[int, int]
    levels: int
    mpp: tuple[float, float] | None
    computed: int
    reused: int
    seconds: float
    what: str
    focus_map: FocusMap | None = None


# ---------------------------------------------------------------------------- geometry
def export_region(slide: Slide, region: tuple[int, int, int, int] | None) -> tuple[int, int, int, int]:
    """``region`` (x, y, w, h level-0 px; None = the whole slide) clipped to the slide."""
    W, H = slide.dimensions
    if region is None:
        return 0, 0, W, H
    x, y, w, h = (int(v) for v in region)
    if w <= 0 or h <= 0:
        raise ExportError(f"{slide.path}: region width and height must be positive, got {w}x{h}")
    x0, y0, x1, y1 = max(0, x), max(0, y), min(W, x + w), min(H, y + h)
    if x1 <= x0 or y1 <= y0:
        raise ExportError(f"{slide.path}: region {x},{y},{w},{h} lies outside the {W} x {H} px slide")
    return x0, y0, x1 - x0, y1 - y0


def _grid(w: int, h: int, tile: int) -> list[tuple[int, int]]:
    """(row, col) of the tiles of a ``w`` × ``h`` image, row-major."""
    return [(i, j) for i in range(-(-h // tile)) for j in range(-(-w // tile))]


def _tile_size(w: int, h: int, tile: int, i: int, j: int) -> tuple[int, int]:
    return min(tile, w - j * tile), min(tile, h - i * tile)


def slide_identity(slide: Slide) -> dict:
    """What names a slide's pixels across processes (a resume must read the same slide): its
    file (absolute path, size, modification time) or, for a computed one, its uid; its geometry."""
    ident: dict = {"size": list(slide.dimensions), "planes_um": [float(z) for z in slide.planes_um],
                   "mpp": None if slide.mpp is None else [float(v) for v in slide.mpp]}
    path = slide.path
    if path and os.path.exists(path):
        st = os.stat(path)
        ident.update(path=os.path.abspath(path), bytes=st.st_size, mtime_ns=st.st_mtime_ns)
    else:
        ident["uid"] = slide.uid
    return ident


def _name(slide: Slide) -> str:
    return Path(slide.path).name if slide.path else slide.format


# ---------------------------------------------------------------------------- one export
class _Job:
    """The target, its tile store and the progress/cancel hooks of one export."""

    def __init__(self, out, header: dict, *, resume: bool, progress: Progress | None,
                 cancelled: Callable[[], bool] | None):
        self.out = Path(out)
        self.progress, self.cancelled = progress, cancelled
        self.t0 = time.monotonic()
        if self.out.is_dir():
            raise ExportError(f"{self.out}: is a folder; the export is one file")
        if not self.out.parent.is_dir():
            raise ExportError(f"{self.out}: folder {self.out.parent} does not exist")
        data, sidecar = partial_paths(self.out)
        if not resume and (data.exists() or sidecar.exists()):
            raise ExportError(f"{data}: an interrupted export to {self.out.name} is there; resume it, "
                              f"or delete {data.name} and {sidecar.name} to start over")
        try:
            self.store = TileStore(self.out, header, resume=resume)
        except TileStoreError as exc:
            raise ExportError(str(exc)) from None
        except OSError as exc:
            raise ExportError(f"{self.out}: cannot write ({exc.strerror or exc})") from None
        self.computed = 0

    def report(self, stage: str, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress(stage, done, total)

    def check(self, stage: str, done: int, total: int) -> None:
        """ExportInterrupted when ``cancelled()`` says so."""
        if self.cancelled is not None and self.cancelled():
            raise ExportInterrupted(self.out, stage, done, total)

    def put(self, key: str, array: np.ndarray) -> None:
        try:
            self.store.put(key, array)
        except OSError as exc:
            raise ExportError(f"{self.store.data_path}: cannot write ({exc.strerror or exc})") from None

    def run(self, body: Callable[[], ExportResult]) -> ExportResult:
        """``body()``, the store kept on disk if it fails or is stopped, deleted when it succeeds."""
        try:
            result = body()
        except BaseException:
            try:
                self.store.close()
            except OSError:
                pass
            raise
        self.store.discard()
        return result


def _depth_chunk(tile: int, planes: int) -> int:
    """Depth chunk edge (a multiple of ``tile``, level-0 px): as large as `best_focus_fill` reads
    within half its memory limit with its context, at most ``MAX_DEPTH_CHUNK``."""
    from ..fqa.heatmap import PATCH
    from ..focusmap.auto import MAX_AUTO_MPX

    side = int(math.sqrt(MAX_AUTO_MPX * 1e6 / 2 / max(1, planes))) - 2 * PATCH
    return max(tile, min(MAX_DEPTH_CHUNK, side) // tile * tile)


def _chunk(asked: int | None, tile: int, planes: int) -> int:
    if asked is None:
        return _depth_chunk(tile, planes)
    if asked < 64:
        raise ExportError(f"depth chunk must be at least 64 level-0 px, got {asked}")
    return int(asked)


def _cells(fm: FocusMap, region: tuple[int, int, int, int]) -> tuple[slice, slice]:
    """The map cells centred in ``region`` (as `FocusMap.fill` with a region picks them)."""
    x, y, w, h = region
    rows, cols = fm.shape
    cy, cx = (np.arange(rows) + 0.5) * fm.stride, (np.arange(cols) + 0.5) * fm.stride
    r, c = np.flatnonzero((cy >= y) & (cy < y + h)), np.flatnonzero((cx >= x) & (cx < x + w))
    rs = slice(int(r[0]), int(r[-1]) + 1) if r.size else slice(0, 0)
    cs = slice(int(c[0]), int(c[-1]) + 1) if c.size else slice(0, 0)
    return rs, cs


def _fill_depths(slide: Slide, job: _Job, fm: FocusMap, region, chunk: int) -> int:
    """Stage ``depth``: ``fm`` filled with the best-focus depths over ``region``, chunk by chunk
    (stored ones taken back); returns how many chunks were taken back."""
    from ..focusmap.auto import best_focus_fill

    x, y, w, h = region
    chunks = _grid(w, h, chunk)
    total, done = len(chunks), 0
    todo = []
    for i, j in chunks:
        cw, ch = _tile_size(w, h, chunk, i, j)
        box = (x + j * chunk, y + i * chunk, cw, ch)
        key = f"depth/{i}/{j}"
        if key in job.store:
            rs, cs = _cells(fm, box)
            fm.values[rs, cs] = job.store.get(key)
            done += 1
        else:
            todo.append((key, box))
    reused = done
    job.report("depth", done, total)
    for key, box in todo:
        job.check("depth", done, total)
        try:
            best_focus_fill(slide, fm, box, model=DEPTH_MODEL, cancelled=job.cancelled)
        except InterruptedError:
            raise ExportInterrupted(job.out, "depth", done, total) from None
        except ValueError as exc:
            raise ExportError(str(exc)) from None
        rs, cs = _cells(fm, box)
        job.put(key, fm.values[rs, cs])
        job.computed += 1
        done += 1
        job.report("depth", done, total)
    return reused


def _needs_planes(slide: Slide, what: str) -> None:
    if slide.plane_count < 2:
        raise ExportError(f"{slide.path or slide.format}: has 1 focal plane; {what} needs at least 2 "
                          "(the best focus is found between captured planes)")


# ---------------------------------------------------------------------------- RGB exports
def _rgb_tiles(view: Slide, job: _Job, region, tile: int) -> int:
    """Stage ``tiles``: level 0 of ``view`` over ``region``; returns how many were taken back."""
    x, y, w, h = region
    B = getattr(view, "block_px", tile)
    order = sorted(_grid(w, h, tile), key=lambda t: ((y + t[0] * tile) // B, (x + t[1] * tile) // B, t))
    total = len(order)
    todo = [t for t in order if f"0/{t[0]}/{t[1]}" not in job.store]
    done = total - len(todo)
    reused = done
    job.report("tiles", done, total)
    for i, j in todo:
        job.check("tiles", done, total)
        tw, th = _tile_size(w, h, tile, i, j)
        job.put(f"0/{i}/{j}", view.read_region(0, x + j * tile, y + i * tile, tw, th))
        job.computed += 1
        done += 1
        job.report("tiles", done, total)
    return reused


def _pyramid(job: _Job, levels: tuple[Level, ...], tile: int) -> None:
    """Stage ``pyramid``: the stored tiles of levels 1… from those of the level below."""
    store = job.store
    work = [(k, i, j) for k in range(1, len(levels)) for i, j in _grid(levels[k].width, levels[k].height, tile)]
    total = len(work)
    done = sum(f"{k}/{i}/{j}" in store for k, i, j in work)
    job.report("pyramid", done, total)
    for k, i, j in work:
        key = f"{k}/{i}/{j}"
        if key in store:
            continue
        job.check("pyramid", done, total)
        below = levels[k - 1]
        rows, cols = -(-below.height // tile), -(-below.width // tile)
        mosaic = np.concatenate([
            np.concatenate([store.get(f"{k - 1}/{r}/{c}") for c in (2 * j, 2 * j + 1) if c < cols], axis=1)
            for r in (2 * i, 2 * i + 1) if r < rows], axis=0)
        job.put(key, box_downsample2(mosaic))
        done += 1
        job.report("pyramid", done, total)


def _write(job: _Job, levels, tiles_of: Callable[[int, int, int], np.ndarray], tile: int, **options) -> None:
    """Stage ``write``: the OME-TIFF from ``tiles_of(level, row, col)``."""
    total = sum(len(_grid(lv.width, lv.height, tile)) for lv in levels)
    done = [0]

    def tiles(k: int) -> Iterator[np.ndarray]:
        for i, j in _grid(levels[k].width, levels[k].height, tile):
            job.check("write", done[0], total)
            pixels = tiles_of(k, i, j)
            done[0] += 1            # counted on reading: tifffile stops pulling after the last tile
            job.report("write", done[0], total)
            yield pixels

    job.report("write", 0, total)
    try:
        write_tiled_ome_tiff(job.out, levels, tiles, tile=tile, **options)
    except OSError as exc:          # a full disk, a folder gone: the store stays to resume
        raise ExportError(f"{job.out}: cannot write ({exc.strerror or exc})") from None


def _export_rgb(slide: Slide, view: Slide, job: _Job, region, *, kind: str, tile: int, compression: str, plane_z: float,
                what: str, reused: int = 0, focus_map: FocusMap | None = None) -> ExportResult:
    x, y, w, h = region
    reused += _rgb_tiles(view, job, region, tile)
    levels = computed_levels(w, h, min_size=tile)
    _pyramid(job, levels, tile)
    _write(job, levels, lambda k, i, j: job.store.get(f"{k}/{i}/{j}"), tile,
           planes_um=[plane_z], mpp=view.mpp, name=f"{_name(slide)} {what}",
           compression=compression)
    return ExportResult(job.out, kind, (w, h), len(levels), view.mpp, job.computed, reused,
                        time.monotonic() - job.t0, what, focus_map)


def _model_tag(view, model) -> str | None:
    """A digest of the weights a view decodes with (None when it decodes nothing)."""
    from ..refocus.refocused_slide import shipped_model, weights_digest

    return weights_digest(model if model is not None else shipped_model()) if view.decodes else None


def export_refocused(slide: Slide, out, *, z_um: float | None = None, focus_map: FocusMap | None = None,
                     region=None, tile: int = TILE, compression: str = "zlib", resume: bool = False,
                     model=None, progress: Progress | None = None,
                     cancelled: Callable[[], bool] | None = None) -> ExportResult:
    """``slide`` refocused to ``z_um`` everywhere (a captured plane's z: that plane as it is), or
    rendered at ``focus_map``'s focus, written to ``out``; see the module docstring."""
    from ..refocus.focus_mapped_slide import FocusMappedSlide
    from ..refocus.refocused_slide import RadianceCache, RefocusedSlide

    if (z_um is None) == (focus_map is None):
        raise ValueError("give one of z_um or focus_map")
    _check(tile, compression)
    region = export_region(slide, region)
    cache = RadianceCache(EXPORT_RADIANCE_BYTES)
    if focus_map is not None:
        try:
            view = FocusMappedSlide(slide, focus_map, model=model, cache=cache)
        except ValueError as exc:
            raise ExportError(str(exc)) from None
        what, plane_z = f"focus map {focus_map.digest}", float(focus_map.default_um)
        focus = {"focus_map": focus_map.digest}
    else:
        z = float(z_um)
        if not math.isfinite(z):
            raise ExportError(f"{slide.path}: focus must be a finite number of µm, got {z_um!r}")
        view = RefocusedSlide(slide, z, model=model, cache=cache)
        how = "captured plane" if view.captured_plane is not None else "refocused"
        what, plane_z, focus = f"{how} at z = {z:+g} µm", z, {"z_um": z}
    header = {"kind": "refocus", "slide": slide_identity(slide), "region": list(region), "tile": tile,
              **focus, "weights": _model_tag(view, model)}
    job = _Job(out, header, resume=resume, progress=progress, cancelled=cancelled)
    return job.run(lambda: _export_rgb(slide, view, job, region, kind="refocus", tile=tile, compression=compression,
                                       plane_z=plane_z, what=what, focus_map=focus_map))


def export_all_in_focus(slide: Slide, out, *, region=None, tile: int = TILE, compression: str = "zlib",
                        resume: bool = False, model=None, progress: Progress | None = None,
                        cancelled: Callable[[], bool] | None = None,
                        depth_chunk: int | None = None) -> ExportResult:
    """Every place of ``slide`` (or ``region``) at its own best focus, written to ``out``; the
    result's ``focus_map`` is the map rendered (the depths found, the plane nearest 0 on glass).
    ``depth_chunk``: edge of the depth chunks in level-0 px (default: `_depth_chunk`)."""
    from ..refocus.focus_mapped_slide import FocusMappedSlide
    from ..refocus.refocused_slide import RadianceCache

    _check(tile, compression)
    _needs_planes(slide, "an all-in-focus export")
    region = export_region(slide, region)
    fm = all_in_focus_map(slide)
    chunk = _chunk(depth_chunk, tile, slide.plane_count)
    probe = FocusMappedSlide(slide, fm, model=model, cache=RadianceCache(EXPORT_RADIANCE_BYTES))
    header = {"kind": "aif", "slide": slide_identity(slide), "region": list(region), "tile": tile,
              "depth_chunk": chunk, "depth_model": DEPTH_MODEL, "stride": fm.stride,
              "weights": _model_tag(probe, model)}
    job = _Job(out, header, resume=resume, progress=progress, cancelled=cancelled)

    def body() -> ExportResult:
        reused = _fill_depths(slide, job, fm, region, chunk)
        view = FocusMappedSlide(slide, fm, model=model, cache=probe.cache)
        known = fm.values[_cells(fm, region)]
        known = known[np.isfinite(known)]
        what = ("all in focus (best focus unknown: no tissue found)" if not known.size else
                f"all in focus (best focus {known.min():+.2f} to {known.max():+.2f} µm)")
        return _export_rgb(slide, view, job, region, kind="aif", tile=tile, compression=compression, plane_z=0.0,
                           what=what, reused=reused, focus_map=view.focus_map)
    return job.run(body)


# ---------------------------------------------------------------------------- depth map
def _nan_downsample2(img: np.ndarray) -> np.ndarray:
    """Halve a (H, W) float image by the mean of the known (finite) values of each 2×2 block
    (NaN where none is known; odd edges replicated, as `box_downsample2`)."""
    h, w = img.shape
    if h % 2 or w % 2:
        img = np.pad(img, ((0, h % 2), (0, w % 2)), mode="edge")
    blocks = img.reshape(img.shape[0] // 2, 2, img.shape[1] // 2, 2)
    known = np.isfinite(blocks)
    n = known.sum(axis=(1, 3))
    s = np.where(known, blocks, 0).sum(axis=(1, 3), dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, s / n, np.nan).astype(np.float32)


def export_depth_map(slide: Slide, out, *, region=None, tile: int = TILE, compression: str = "zlib",
                     resume: bool = False, progress: Progress | None = None,
                     cancelled: Callable[[], bool] | None = None,
                     depth_chunk: int | None = None) -> ExportResult:
    """The best-focus depth z* (µm, float32, NaN = glass) over ``slide`` (or ``region``) as the
    all-in-focus export finds it, one px per focus-map cell, written to ``out``. ``depth_chunk``
    as for `export_all_in_focus`."""
    _check(tile, compression)
    if compression == "jpeg":
        raise ExportError(f"{out}: a depth map is float32; jpeg compression is for 8-bit images (use zlib or none)")
    _needs_planes(slide, "a depth map")
    region = export_region(slide, region)
    fm = all_in_focus_map(slide)
    chunk = _chunk(depth_chunk, tile, slide.plane_count)
    header = {"kind": "depthmap", "slide": slide_identity(slide), "region": list(region), "tile": tile,
              "depth_chunk": chunk, "depth_model": DEPTH_MODEL, "stride": fm.stride}
    job = _Job(out, header, resume=resume, progress=progress, cancelled=cancelled)

    def body() -> ExportResult:
        reused = _fill_depths(slide, job, fm, region, chunk)
        depth = np.ascontiguousarray(fm.values[_cells(fm, region)], np.float32)
        h, w = depth.shape
        levels = computed_levels(w, h, min_size=tile)
        pyramid = [depth]
        for _ in levels[1:]:
            pyramid.append(_nan_downsample2(pyramid[-1]))
        mpp = None if slide.mpp is None else (slide.mpp[0] * fm.stride, slide.mpp[1] * fm.stride)

        def tiles_of(k, i, j):
            return pyramid[k][i * tile:(i + 1) * tile, j * tile:(j + 1) * tile]

        job.check("write", 0, 1)
        _write(job, levels, tiles_of, tile, planes_um=[0.0], mpp=mpp, name=f"{_name(slide)} best-focus z (µm)",
               compression=compression, dtype=np.float32, samples=1)
        known = depth[np.isfinite(depth)]
        what = (f"best-focus z in µm, {fm.stride} level-0 px per px" +
                (f" ({known.min():+.2f} to {known.max():+.2f} µm)" if known.size else " (no tissue found)"))
        return ExportResult(job.out, "depthmap", (w, h), len(levels), mpp, job.computed, reused,
                            time.monotonic() - job.t0, what, fm.frozen())
    return job.run(body)


def _check(tile: int, compression: str) -> None:
    try:
        check_tiling(tile, compression)
    except ValueError as exc:
        raise ExportError(str(exc)) from None
