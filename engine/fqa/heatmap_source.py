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
"""
from __future__ import annotations

import abc
import hashlib
import math
import threading
from pathlib import Path

import numpy as np

from ..colormaps import colorize, legend_image, robust_range
from ..slides.base import BACKGROUND, Slide
from .focuslitenn import FocusLiteNN, load_model
from .heatmap import (GRID_STRIDE, PATCH, Block, HeatmapGeometry, TileScorer, block, focuslitenn_scorer,
                      heatmap_geometry, metric_scorer, score_block)
from .metrics import METRICS
from ..tiles.compute_cache import ComputeOnceCache

#: Default bound of a source's block cache (an 8×8 block of float32 is 256 bytes, so this holds
#: the whole heatmap of any slide of up to ~10⁵ × 10⁵ px at stride 128 many times over).
DEFAULT_CACHE_BYTES = 32 << 20


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

    @property
    def uid(self) -> str:
        return f"{self.base.uid}|{self.identity}"

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

    def cells(self, r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
        """Values (r1 − r0, c1 − c0) float32 of cells [r0, r1) × [c0, c1), computing what is missing."""
        rows, cols = self.geometry.shape
        r0, c0, r1, c1 = max(r0, 0), max(c0, 0), min(r1, rows), min(c1, cols)
        out = np.full((max(r1 - r0, 0), max(c1 - c0, 0)), np.nan, np.float32)
        if out.size == 0:
            return out
        B = self.block_patches
        for br in range(r0 // B, -(-r1 // B)):
            for bc in range(c0 // B, -(-c1 // B)):
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
        ci = cell_indices((lx + np.arange(w) + 0.5) * ds, self.geometry, 0)
        ri = cell_indices((ly + np.arange(h) + 0.5) * ds, self.geometry, 1)
        out = np.full((h, w), np.nan, np.float32)
        cols_ok, rows_ok = ci >= 0, ri >= 0
        if not cols_ok.any() or not rows_ok.any():
            return out
        c0, c1 = int(ci[cols_ok].min()), int(ci[cols_ok].max()) + 1
        r0, r1 = int(ri[rows_ok].min()), int(ri[rows_ok].max()) + 1
        sub = self.cells(r0, r1, c0, c1)
        out[np.ix_(rows_ok, cols_ok)] = sub[np.ix_(ri[rows_ok] - r0, ci[cols_ok] - c0)]
        return out

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
        for br, bc in order:
            v = self.block_values(br, bc)
            finite = v[np.isfinite(v)]
            if finite.size:
                values.append(finite)
                used += 1
            if used >= max_blocks or sum(len(a) for a in values) >= min_values * max_blocks:
                break
        if not values:
            return 0.0, 1.0
        return robust_range(np.concatenate(values))


# ---------------------------------------------------------------- PNG of a whole grid
def overview_png(slide: Slide, values: np.ndarray, geom: HeatmapGeometry, value_range: tuple[float, float],
                 label: str, cmap: str = "focus", plane: int = 0, max_size: int = 1024,
                 alpha: float = 0.6) -> np.ndarray:
    """An RGB picture of a whole grid: the slide's thumbnail in grey, the colourised values over
    it (cells as in the module docstring, NaN transparent) and a legend in ``label`` units below."""
    thumb = slide.thumbnail(max_size, plane)
    th, tw = thumb.shape[:2]
    W, H = slide.dimensions
    grey = (thumb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32))[..., None].repeat(3, 2)
    cx = cell_indices((np.arange(tw) + 0.5) * (W / tw), geom, 0)
    cy = cell_indices((np.arange(th) + 0.5) * (H / th), geom, 1)
    v = np.full((th, tw), np.nan, np.float32)
    ok_y, ok_x = cy >= 0, cx >= 0
    if ok_y.any() and ok_x.any():
        v[np.ix_(ok_y, ok_x)] = values[np.ix_(cy[ok_y], cx[ok_x])]
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
