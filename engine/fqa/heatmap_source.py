"""Heatmaps as computed slide sources: the viewer overlays them tile by tile while the user pans.

A `ScoreGridSlide` is a `Slide` with the base slide's geometry (levels, µm per pixel) whose
pixels are a colourised grid of values (one per heatmap cell, `HeatmapGeometry`). Values are
computed lazily, one block of ``block_patches``² cells at a time, when a tile needs them, and kept
in a bounded cache (`engine.tiles.compute_cache.ComputeOnceCache`; a block being computed by one thread is waited for, not
recomputed, by the others). `HeatmapSlide` is the focus heatmap of one focal plane (FocusLiteNN
or a classical metric; higher = blurrier); `engine.fqa.depth_map.DepthMapSlide` the best-focus
depth map.

Display geometry: cell (row, col) is shown as the ``stride``² square centred on its patch, i.e.
level-0 px [ox + (stride·col + (patch − stride)/2)·d, … + stride·d) in x (d = the heatmap
level's downsample), likewise in y, except that cells on the grid's border reach out to the
outer edges of their patches (so the cells cover exactly the patches' union); a pixel takes the
cell under its centre. Pixels under no patch (a strip narrower than ``stride`` on the right and
bottom) and glass cells are NaN: `read_region` shows them pure white (as glass outside a slide;
no colour map of engine/colormaps.py contains pure white, so an overlay may treat (255, 255, 255)
as transparent), `read_rgba` transparent. The raw values are `scores_for_region` (per pixel)
and `cells`.

Values at any zoom (the product rule): every value shown is a real score of a real patch at the
heatmap's own level (FocusLiteNN's 235-px patches at 0.25 µm/px: scoring a coarser pyramid
level would give numbers in other units), but a read at a coarse level never scores every patch
under it. With C = the cell pitch in level-0 px (stride × the heatmap level's downsample, 128)
and d the downsample of the level read:

* **dense** while a cell spans at least ``DENSE_CELL_PX`` = 32 px of the level read
  (C / d ≥ 32: levels up to d = 4 for the default grid): every patch is scored, block by block,
  exactly as ``cells`` computes them;
* **estimated** at coarser levels: the level-0 plane is cut into squares of s × s cells
  (s a power of two, ``sample_step(level)`` = the smallest with s·C / d ≥ 32, so a 512-px tile
  holds at most 16 × 16 squares, about one per 32 px on screen), and each square shows one
  patch scored near its centre (picked so that its read lies inside one native tile of the base
  slide: one tile decoded or rendered per sample). Where a finer square's sample or a dense
  block is already known (the user zoomed in there), the finest known value is shown instead:
  the scores computed so far, at their own detail. Pixels under no patch and glass stay NaN.

``sampled(step, revision)`` is a view of the same source with squares of at least ``step``
cells (its own `uid`): the viewer first shows a coarse estimate (about one sample per tile,
``estimate_steps``), then finer ones while the view stays, down to ``sample_step(level)``; a
new revision re-reads tiles with what is known by then. ``view_progress`` counts what is done
for a view. Long reads stop between blocks and between samples when their tile store job is
cancelled (`engine.tiles.cancel`).
"""
from __future__ import annotations

import abc
import copy
import hashlib
import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ..colormaps import colorize, legend_image, robust_range
from ..slides.base import BACKGROUND, Slide
from .focuslitenn import FocusLiteNN, load_model
from .heatmap import (GRID_STRIDE, PATCH, Block, HeatmapGeometry, TileScorer, block, focuslitenn_scorer,
                      heatmap_geometry, metric_scorer, score_block)
from .metrics import METRICS
from ..tiles.cancel import raise_if_cancelled
from ..tiles.compute_cache import ComputeOnceCache

#: Default bound of a source's block cache (an 8×8 block of float32 is 256 bytes, so this holds
#: the whole heatmap of any slide of up to ~10⁵ × 10⁵ px at stride 128 many times over).
DEFAULT_CACHE_BYTES = 32 << 20

#: A read is dense (every patch scored) while one heatmap cell spans at least this many px of
#: the level read; coarser reads are estimated from sampled patches (module docstring).
DENSE_CELL_PX = 32

#: Bound of a source's cache of sampled patches (each a 1×1 float32: 4 bytes + overhead).
SAMPLE_CACHE_BYTES = 4 << 20

#: Threads that compute the blocks a colour scale is calibrated from.
CALIBRATION_THREADS = max(1, min(4, os.cpu_count() or 1))


class _Missing(Exception):
    """Raised by a compute callback that must not compute (a peek into a ComputeOnceCache)."""


def _peek(cache: ComputeOnceCache, key):
    """The value cached under ``key``, or None (never computes, never waits)."""
    if key not in cache:
        return None

    def missing():
        raise _Missing

    try:
        return cache.get(key, missing)
    except _Missing:
        return None


def cell_indices(coords_level0: np.ndarray, geom: HeatmapGeometry, axis: int) -> np.ndarray:
    """Cell column (axis 0 = x) or row (axis 1 = y) under level-0 coordinates, −1 where none.
    Inner cells are ``stride`` wide and centred on their patches; the first and last cells
    reach out to the outer edges of their patches, so cells cover exactly what patches cover."""
    d = geom.downsample
    n = geom.shape[1 - axis]
    c = np.asarray(coords_level0, np.float64) - geom.origin[axis]
    idx = np.floor((c - (geom.patch - geom.stride) / 2 * d) / (geom.stride * d)).astype(np.int64)
    idx = np.clip(idx, 0, n - 1)
    inside = (c >= 0) & (c < ((n - 1) * geom.stride + geom.patch) * d) & (n > 0)
    return np.where(inside, idx, -1)


class ScoreGridSlide(Slide):
    """A computed slide showing a grid of values over ``base`` (see the module docstring).

    Subclasses implement ``_compute_block(b)`` → float32 (b.r1 − b.r0, b.c1 − b.c0) and give
    ``identity`` (folded into `uid`), ``value_range`` (vmin, vmax), ``cmap`` and ``label``."""

    format = "heatmap"
    cmap = "focus"
    label = "score"

    def __init__(self, base: Slide, geometry: HeatmapGeometry, identity: str, z_um: float,
                 block_patches: int = 8, cache_bytes: int = DEFAULT_CACHE_BYTES):
        self.base = base
        self.geometry = geometry
        self.identity = identity
        self.block_patches = int(block_patches)
        self.cache = ComputeOnceCache(cache_bytes)
        self.path = base.path
        self.levels = base.levels
        self.mpp = base.mpp
        self.planes_um = (float(z_um),)
        self.tile_size = base.tile_size
        self.properties = {"finefocus.source": identity, "finefocus.base": base.uid,
                           **{f"finefocus.geometry.{k}": str(v) for k, v in geometry.as_dict().items()}}
        #: Sampled patches (r, c) → (1, 1) float32, shared by every `sampled` view.
        self.samples = ComputeOnceCache(SAMPLE_CACHE_BYTES)
        self._sample_steps: set[int] = set()  # square sizes (cells) that have samples
        self._steps_lock = threading.Lock()
        self._sample_index: dict[tuple[int, int, int], int] = {}  # (axis, step, square) → cell
        self.min_step = 1  # a `sampled` view: squares of at least this many cells
        self.revision = 0

    @property
    def uid(self) -> str:
        own = f"{self.base.uid}|{self.identity}"
        return own if self.min_step <= 1 else f"{own}|estimate={self.min_step}.{self.revision}"

    # ------------------------------------------------------------------ zoom rule
    @property
    def cell_px(self) -> float:
        """The cell pitch in level-0 px (stride × the heatmap level's downsample)."""
        return self.geometry.stride * self.geometry.downsample

    def sample_step(self, level: int) -> int:
        """Square size (cells, a power of two) of the finest estimate read at ``level``; 1 =
        dense (every patch scored)."""
        ratio = DENSE_CELL_PX * self.levels[level].downsample / self.cell_px
        return 1 if ratio <= 1 else 2 ** math.ceil(math.log2(ratio) - 1e-9)

    def read_step(self, level: int) -> int:
        """Square size (cells) this view reads ``level`` with: 1 at dense levels, else the
        level's `sample_step` or this view's ``min_step``, whichever is coarser."""
        floor = self.sample_step(level)
        return 1 if floor == 1 else max(floor, self.min_step)

    def estimate_steps(self, level: int, tile_size: int = 512) -> list[int]:
        """Square sizes (cells) from a first estimate of about one sample per ``tile_size``-px
        tile of ``level`` down to its `sample_step`, halving; [1] at dense levels."""
        floor = self.sample_step(level)
        if floor == 1:
            return [1]
        tile_cells = tile_size * self.levels[level].downsample / self.cell_px
        start = max(floor, 2 ** math.ceil(math.log2(max(tile_cells, 1.0)) - 1e-9))
        steps = [start]
        while steps[-1] > floor:
            steps.append(steps[-1] // 2)
        return steps

    def sampled(self, step: int, revision: int = 0) -> "ScoreGridSlide":
        """This source read with squares of at least ``step`` cells at estimated levels (the
        same values at dense levels), sharing every cache; ``revision`` only changes the `uid`,
        so its tiles are read again with what is known by then. ``step`` ≤ 1: this source."""
        if step <= 1:
            return self.root
        self.value_range  # noqa: B018 -- settle the colour scale once, for every view
        view = copy.copy(self)
        view.min_step, view.revision, view._root = int(step), int(revision), self.root
        return view

    @property
    def root(self) -> "ScoreGridSlide":
        """The source this is a `sampled` view of (itself if it is none)."""
        return getattr(self, "_root", None) or self

    # ------------------------------------------------------------------ values
    @abc.abstractmethod
    def _compute_block(self, b: Block) -> np.ndarray:
        """Values (b.r1 − b.r0, b.c1 − b.c0) float32 of one block of cells, NaN on glass."""

    @property
    @abc.abstractmethod
    def value_range(self) -> tuple[float, float]:
        """(vmin, vmax) of the colour scale, in the values' units."""

    def block_values(self, br: int, bc: int) -> np.ndarray:
        """Values of block (br, bc): cells [br·B, (br+1)·B) × [bc·B, …), B = block_patches."""
        B, (rows, cols) = self.block_patches, self.geometry.shape
        b = block(self.geometry, br * B, min((br + 1) * B, rows), bc * B, min((bc + 1) * B, cols))
        return self.cache.get((br, bc), lambda: self._compute_block(b))

    def cached_block(self, br: int, bc: int) -> np.ndarray | None:
        """Values of block (br, bc) if computed and kept, else None (never computes)."""
        return _peek(self.cache, (br, bc))

    def cells(self, r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
        """Values (r1 − r0, c1 − c0) float32 of cells [r0, r1) × [c0, c1), computing what is
        missing (in a cancelled tile store job it stops between blocks with `JobCancelled`)."""
        rows, cols = self.geometry.shape
        r0, c0, r1, c1 = max(r0, 0), max(c0, 0), min(r1, rows), min(c1, cols)
        out = np.full((max(r1 - r0, 0), max(c1 - c0, 0)), np.nan, np.float32)
        if out.size == 0:
            return out
        B = self.block_patches
        for br in range(r0 // B, -(-r1 // B)):
            for bc in range(c0 // B, -(-c1 // B)):
                if (br, bc) not in self.cache:
                    raise_if_cancelled()
                v = self.block_values(br, bc)
                y0, x0 = br * B, bc * B  # the block's first cell
                ya, yb = max(r0, y0), min(r1, y0 + v.shape[0])
                xa, xb = max(c0, x0), min(c1, x0 + v.shape[1])
                out[ya - r0:yb - r0, xa - c0:xb - c0] = v[ya - y0:yb - y0, xa - x0:xb - x0]
        return out

    def grid(self) -> np.ndarray:
        """The whole grid (rows, cols) float32 (computes every block not cached)."""
        rows, cols = self.geometry.shape
        return self.cells(0, rows, 0, cols)

    def scores_for_region(self, level: int, x: int, y: int, w: int, h: int) -> np.ndarray:
        """Raw values (h, w) float32 per pixel of ``level`` for the region read_region would
        show ((x, y) level-0 px, (w, h) px of the level); NaN on glass and outside the grid."""
        ds = self.levels[level].downsample
        lx, ly = math.floor(x / ds), math.floor(y / ds)
        xs, ys = (lx + np.arange(w) + 0.5) * ds, (ly + np.arange(h) + 0.5) * ds  # level-0 px
        ci = cell_indices(xs, self.geometry, 0)
        ri = cell_indices(ys, self.geometry, 1)
        out = np.full((h, w), np.nan, np.float32)
        cols_ok, rows_ok = ci >= 0, ri >= 0
        if not cols_ok.any() or not rows_ok.any():
            return out
        c0, c1 = int(ci[cols_ok].min()), int(ci[cols_ok].max()) + 1
        r0, r1 = int(ri[rows_ok].min()), int(ri[rows_ok].max()) + 1
        step = self.read_step(level)
        if step > 1:
            return self._estimate(xs, ys, ci, ri, (r0, r1, c0, c1), step)
        sub = self.cells(r0, r1, c0, c1)
        out[np.ix_(rows_ok, cols_ok)] = sub[np.ix_(ri[rows_ok] - r0, ci[cols_ok] - c0)]
        return out

    # ------------------------------------------------------------------ estimates
    def _estimate(self, xs, ys, ci, ri, cell_box, step: int) -> np.ndarray:
        """Values (len(ys), len(xs)) at level-0 px centres ``xs``, ``ys`` (cells ``ci``, ``ri``,
        −1 for none, spanning ``cell_box`` (r0, r1, c0, c1)), estimated with squares of ``step``
        cells: dense blocks already computed, else the finest sample known, else the sample of
        the pixel's ``step`` square (computed now)."""
        r0, r1, c0, c1 = cell_box
        rows_ok, cols_ok = ri >= 0, ci >= 0
        valid = rows_ok[:, None] & cols_ok[None, :]
        out = np.full(valid.shape, np.nan, np.float32)
        known = ~valid  # pixels under no patch: NaN, nothing to compute
        # 1. the scores computed so far, cell by cell
        B = self.block_patches
        cellv = np.full((r1 - r0, c1 - c0), np.nan, np.float32)
        cellk = np.zeros(cellv.shape, bool)
        for br in range(r0 // B, -(-r1 // B)):
            for bc in range(c0 // B, -(-c1 // B)):
                v = self.cached_block(br, bc)
                if v is None:
                    continue
                ya, yb = max(r0, br * B), min(r1, br * B + v.shape[0])
                xa, xb = max(c0, bc * B), min(c1, bc * B + v.shape[1])
                cellv[ya - r0:yb - r0, xa - c0:xb - c0] = v[ya - br * B:yb - br * B, xa - bc * B:xb - bc * B]
                cellk[ya - r0:yb - r0, xa - c0:xb - c0] = True
        if cellk.any():
            ix = np.ix_(np.where(rows_ok, ri - r0, 0), np.where(cols_ok, ci - c0, 0))
            hit = valid & cellk[ix]
            out[hit] = cellv[ix][hit]
            known |= hit
        # 2. samples already taken, finest squares first; 3. this step's missing samples
        with self._steps_lock:
            self._sample_steps.add(int(step))
            steps = sorted(t for t in self._sample_steps if t <= step)
        for s in steps:
            need = ~known
            if not need.any():
                break
            qx, qy = self._squares(xs, s, 0), self._squares(ys, s, 1)  # monotonic
            ux, ix = np.unique(qx, return_inverse=True)
            uy, iy = np.unique(qy, return_inverse=True)
            runs_x = np.flatnonzero(np.r_[True, qx[1:] != qx[:-1]])
            runs_y = np.flatnonzero(np.r_[True, qy[1:] != qy[:-1]])
            open_sq = np.logical_or.reduceat(np.logical_or.reduceat(need, runs_y, axis=0), runs_x, axis=1)
            V = np.full(open_sq.shape, np.nan, np.float32)
            K = np.zeros(open_sq.shape, bool)
            for a, b in zip(*np.nonzero(open_sq)):
                r = self._sample_index_of(1, s, int(uy[a]))
                c = self._sample_index_of(0, s, int(ux[b]))
                value = self._sample(r, c, compute=s == step)
                if value is not None:
                    V[a, b], K[a, b] = value, True
            if not K.any():
                continue
            fill = need & K[np.ix_(iy, ix)]
            out[fill] = V[np.ix_(iy, ix)][fill]
            known |= fill
        return out

    def _squares(self, coords_level0: np.ndarray, step: int, axis: int) -> np.ndarray:
        """Index of the ``step``-cell square under each level-0 coordinate along ``axis``."""
        return np.floor((np.asarray(coords_level0, np.float64) - self.geometry.origin[axis])
                        / (step * self.cell_px)).astype(np.int64)

    def _sample_index_of(self, axis: int, step: int, square: int) -> int:
        """The cell (column for axis 0, row for axis 1) sampled for ``square`` of ``step``
        cells: the one nearest the square's centre (within the grid) whose 1×1 block read lies
        inside one native tile of the base slide, if one of the five nearest does."""
        key = (axis, step, square)
        hit = self._sample_index.get(key)
        if hit is not None:
            return hit
        g = self.geometry
        n = g.shape[1 - axis]
        span = ((n - 1) * g.stride + g.patch) * g.downsample  # level-0 px the cells cover
        a = max(square * step * self.cell_px, 0.0)
        b = min((square + 1) * step * self.cell_px, span)
        centre = cell_indices(np.array([g.origin[axis] + (a + b) / 2]), g, axis)[0]
        centre = int(np.clip(centre if centre >= 0 else (0 if a <= 0 else n - 1), 0, max(n - 1, 0)))
        best = centre
        tile = int(self.base.tile_size[axis]) if g.level == 0 else 0
        if tile > 0:
            first = math.floor(a / self.cell_px)
            last = max(first, math.ceil(b / self.cell_px) - 1)
            for k in sorted(range(centre - 2, centre + 3), key=lambda k: abs(k - centre)):
                if not (0 <= k < n and first <= k <= last):
                    continue
                bl = block(g, 0, 1, k, k + 1) if axis == 0 else block(g, k, k + 1, 0, 1)
                start, size = (bl.x, bl.w) if axis == 0 else (bl.y, bl.h)
                if start // tile == (start + size - 1) // tile:
                    best = k
                    break
        self._sample_index[key] = best
        return best

    def _sample(self, r: int, c: int, compute: bool) -> float | None:
        """The score of cell (r, c) from its dense block if computed, else its sample (scored
        now as a 1×1 block if ``compute``; None if not known and not computed)."""
        B = self.block_patches
        v = self.cached_block(r // B, c // B)
        if v is not None:
            return float(v[r - (r // B) * B, c - (c // B) * B])
        hit = _peek(self.samples, (r, c))
        if hit is None and compute:
            raise_if_cancelled()
            hit = self.samples.get((r, c), lambda: np.asarray(
                self._compute_block(block(self.geometry, r, r + 1, c, c + 1)), np.float32).reshape(1, 1))
        if hit is None:
            return None
        return float(hit[0, 0])

    def view_progress(self, level: int, rect_level0: tuple[float, float, float, float]) -> tuple[int, int]:
        """(done, total) patches for the view ``rect_level0`` (x, y, w, h level-0 px) read at
        ``level``: at a dense level the patches of the blocks it needs and of those computed;
        at an estimated level its `sample_step` squares and those whose value is known."""
        x, y, w, h = rect_level0
        g = self.geometry
        cs = cell_indices(np.array([max(x, 0.0), max(x + w, 0.0) - 1e-6]), g, 0)
        rs = cell_indices(np.array([max(y, 0.0), max(y + h, 0.0) - 1e-6]), g, 1)
        rows, cols = g.shape
        c0 = int(cs[0]) if cs[0] >= 0 else (0 if x <= 0 else cols)
        c1 = int(cs[1]) + 1 if cs[1] >= 0 else (cols if x + w > 0 else 0)
        r0 = int(rs[0]) if rs[0] >= 0 else (0 if y <= 0 else rows)
        r1 = int(rs[1]) + 1 if rs[1] >= 0 else (rows if y + h > 0 else 0)
        if c1 <= c0 or r1 <= r0:
            return 0, 0
        step = self.sample_step(level)
        done = total = 0
        if step == 1:
            B = self.block_patches
            for br in range(r0 // B, -(-r1 // B)):
                for bc in range(c0 // B, -(-c1 // B)):
                    n = (min(rows, (br + 1) * B) - br * B) * (min(cols, (bc + 1) * B) - bc * B)
                    total += n
                    done += n if (br, bc) in self.cache else 0
            return done, total
        (ox, oy), d = g.origin, g.downsample
        end_x, end_y = ox + ((cols - 1) * g.stride + g.patch) * d, oy + ((rows - 1) * g.stride + g.patch) * d
        qx = self._squares(np.array([max(x, ox), min(x + w, end_x) - 1e-6]), step, 0)
        qy = self._squares(np.array([max(y, oy), min(y + h, end_y) - 1e-6]), step, 1)
        B = self.block_patches
        for j in range(int(qy[0]), int(qy[1]) + 1):
            r = self._sample_index_of(1, step, j)
            for i in range(int(qx[0]), int(qx[1]) + 1):
                c = self._sample_index_of(0, step, i)
                total += 1
                done += (r, c) in self.samples or (r // B, c // B) in self.cache
        return done, total

    # ------------------------------------------------------------------ pixels
    def read_rgba(self, level: int, x: int, y: int, w: int, h: int, plane: int = 0,
                  alpha: int = 255) -> np.ndarray:
        """(h, w, 4) uint8: the colour map of the values, transparent where they are NaN."""
        vmin, vmax = self.value_range
        return colorize(self.scores_for_region(level, x, y, w, h), vmin, vmax, self.cmap, alpha)

    def _read(self, level, lx, ly, w, h, plane):
        ds = self.levels[level].downsample
        rgba = self.read_rgba(level, math.ceil(lx * ds), math.ceil(ly * ds), w, h)
        rgb = rgba[..., :3]
        rgb[rgba[..., 3] == 0] = BACKGROUND
        return rgb

    def legend(self, width: int = 320) -> np.ndarray:
        """The colour bar of this source in its units, as (60, width, 3) uint8."""
        vmin, vmax = self.value_range
        return legend_image(vmin, vmax, _ascii_units(self.label), self.cmap, width)


def scorer_for(model: str | FocusLiteNN) -> tuple[TileScorer, str, str]:
    """(scorer, identity, label) for a model name (``focuslitenn-1|2|10``), a weights file, a
    classical metric name (`engine.fqa.metrics.METRICS`) or a FocusLiteNN instance. Identities of
    models include a digest of the weights, so retrained weights never reuse cached tiles."""
    if isinstance(model, FocusLiteNN):
        net, name = model, f"FocusLiteNN-{model.kernels}"
    elif str(model) in METRICS:
        m = METRICS[str(model)]
        return metric_scorer(m), f"metric={m.name}", f"{m.name} ({m.equation}), higher = blurrier"
    else:
        net = load_model(model)
        shipped = str(model).startswith("focuslitenn-")
        name = str(model) if shipped else f"FocusLiteNN-{net.kernels} ({Path(str(model)).name})"
    digest = hashlib.sha1(b"".join(p.detach().numpy().tobytes() for p in net.state_dict().values())).hexdigest()[:12]
    label = (f"{name}: defocus score (µm on 0.25 µm/px scans; higher = blurrier)" if net.score_units == "µm"
             else f"{name} score (higher = blurrier)")
    return focuslitenn_scorer(net), f"model={name}#{digest}", label


class HeatmapSlide(ScoreGridSlide):
    """Focus heatmap of one focal ``plane`` of ``base`` as a slide (see module docstring).

    ``model``: see `scorer_for`. ``value_range``: the colour scale (vmin, vmax) in score units;
    None picks it on first use from the blocks nearest the slide's centre that hold tissue
    (2nd–98th percentile), which is deterministic for a given slide and model."""

    def __init__(self, base: Slide, model: str | FocusLiteNN = "focuslitenn-1", plane: int = 0,
                 level: int = 0, patch: int = PATCH, stride: int = GRID_STRIDE,
                 value_range: tuple[float, float] | None = None, cmap: str = "focus",
                 block_patches: int = 8, cache_bytes: int = DEFAULT_CACHE_BYTES):
        if not 0 <= plane < base.plane_count:
            raise ValueError(f"plane {plane} out of range 0..{base.plane_count - 1}")
        self.scorer, model_id, self.label = scorer_for(model)
        self.plane = int(plane)
        self.cmap = cmap
        self._range = None if value_range is None else (float(value_range[0]), float(value_range[1]))
        self._range_lock = threading.Lock()
        geom = heatmap_geometry(base, level, patch, stride)
        z = base.planes_um[plane]
        rng = "auto" if self._range is None else f"{self._range[0]:.6g},{self._range[1]:.6g}"
        identity = (f"heatmap|{model_id}|plane={plane}|z={z:g}|level={level}|patch={patch}|stride={stride}"
                    f"|range={rng}|cmap={cmap}")
        super().__init__(base, geom, identity, z, block_patches, cache_bytes)

    def _compute_block(self, b) -> np.ndarray:
        return score_block(self.base, {"s": self.scorer}, self.geometry, b, self.plane)["s"]

    @property
    def value_range(self) -> tuple[float, float]:
        with self._range_lock:
            if self._range is None:
                self._range = self._calibrate()
            return self._range

    def _calibrate(self, max_blocks: int = 4, min_values: int = 64) -> tuple[float, float]:
        rows, cols = self.geometry.shape
        B = self.block_patches
        nbr, nbc = -(-rows // B), -(-cols // B)
        order = sorted(((br, bc) for br in range(nbr) for bc in range(nbc)),
                       key=lambda k: ((k[0] + 0.5) / max(nbr, 1) - 0.5) ** 2 + ((k[1] + 0.5) / max(nbc, 1) - 0.5) ** 2)
        values, used = [], 0
        # The blocks are taken in that order and the loop stops where a sequential one would,
        # so the scale does not depend on the threads; each batch of ``max_blocks`` is computed
        # on CALIBRATION_THREADS threads at once (a block of a large slide takes seconds), and a
        # cancelled caller (`engine.tiles.cancel`) stops between batches.
        done = False
        with ThreadPoolExecutor(CALIBRATION_THREADS, thread_name_prefix="heatmap-calibrate") as pool:
            for start in range(0, len(order), max_blocks):
                raise_if_cancelled()
                batch = order[start:start + max_blocks]
                for v in pool.map(lambda k: self.block_values(*k), batch):
                    finite = v[np.isfinite(v)]
                    if finite.size:
                        values.append(finite)
                        used += 1
                    if used >= max_blocks or sum(len(a) for a in values) >= min_values * max_blocks:
                        done = True
                        break
                if done:
                    break
        if not values:
            return 0.0, 1.0
        return robust_range(np.concatenate(values))


# ---------------------------------------------------------------- PNG of a whole grid
def grid_at_thumbnail_px(values: np.ndarray, geom: HeatmapGeometry, thumb_hw: tuple[int, int],
                         size_level0: tuple[int, int]) -> np.ndarray:
    """The grid's value under the centre of every px of a (th, tw) thumbnail of a slide of
    ``size_level0`` = (W, H) level-0 px (NaN where no cell covers it), float32 (th, tw)."""
    th, tw = thumb_hw
    W, H = size_level0
    cx = cell_indices((np.arange(tw) + 0.5) * (W / tw), geom, 0)
    cy = cell_indices((np.arange(th) + 0.5) * (H / th), geom, 1)
    v = np.full((th, tw), np.nan, np.float32)
    ok_y, ok_x = cy >= 0, cx >= 0
    if ok_y.any() and ok_x.any():
        v[np.ix_(ok_y, ok_x)] = values[np.ix_(cy[ok_y], cx[ok_x])]
    return v


def overview_png(slide: Slide, values: np.ndarray, geom: HeatmapGeometry, value_range: tuple[float, float],
                 label: str, cmap: str = "focus", plane: int = 0, max_size: int = 1024,
                 alpha: float = 0.6) -> np.ndarray:
    """An RGB picture of a whole grid: the slide's thumbnail in grey, the colourised values over
    it (cells as in the module docstring, NaN transparent) and a legend in ``label`` units below."""
    thumb = slide.thumbnail(max_size, plane)
    th, tw = thumb.shape[:2]
    grey = (thumb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32))[..., None].repeat(3, 2)
    v = grid_at_thumbnail_px(values, geom, (th, tw), slide.dimensions)
    rgba = colorize(v, *value_range, cmap=cmap)
    a = (rgba[..., 3:4] / 255.0) * alpha
    pic = (grey * (1 - a) + rgba[..., :3] * a + 0.5).astype(np.uint8)
    legend = legend_image(*value_range, _ascii_units(label), cmap, width=max(min(tw, 480), 240))
    out = np.full((th + legend.shape[0] + 8, max(tw, legend.shape[1]), 3), 255, np.uint8)
    out[:th, :tw] = pic
    out[th + 8:, :legend.shape[1]] = legend
    return out


def _ascii_units(label: str) -> str:
    """Pillow's built-in font has no "µ": legends drawn with it spell µm as "um"."""
    return label.replace("µ", "u")
