"""Best-focus depth map ("altitude map") of a multi-plane slide.

For every heatmap cell (235-px patches at stride 128 on level 0, `HeatmapGeometry`), the focal
position z* in µm where the patch is sharpest: the plane with the lowest score (FocusLiteNN, or a
classical metric oriented so that lower = sharper), refined by the vertex of the parabola through
that plane's score and its two neighbours' (planes may be unevenly spaced). The vertex lies
between the neighbours by construction; at the first or last plane the best plane's own z is kept
(no extrapolation). Every plane of a cell is scored; the cell is NaN when it is glass
(engine/fqa/tissue.py) in every plane. (One mask for all planes: a pale or sparse patch can be
glass in its sharp plane and tissue in the blurred ones, whose blur spreads dark pixels; masking
each plane by itself would hide the sharp plane and put z* on a blurred one.)

The refocus and all-in-focus work use it as the estimated focus map; `DepthMapSlide` shows it as
a computed slide (colour = z in µm), computed lazily block by block like `HeatmapSlide`.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from ..slides.base import Slide
from .focuslitenn import FocusLiteNN
from .heatmap import (GRID_STRIDE, PATCH, HeatmapGeometry, compute_heatmap, heatmap_geometry, read_block, score_pixels,
                      tissue_grid, tissue_scorer)
from .heatmap_source import DEFAULT_CACHE_BYTES, ScoreGridSlide, scorer_for


def parabola_vertex(z: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Abscissa of the vertex of the parabola through (z[0], s[0]), (z[1], s[1]), (z[2], s[2]),
    for arrays z, s of shape (3, …) with z[0] < z[1] < z[2] and s[1] ≤ s[0], s[2]; z[1] where
    the three scores are equal (a flat line has no vertex)."""
    z0, z1, z2 = (np.asarray(a, np.float64) for a in z)
    s0, s1, s2 = (np.asarray(a, np.float64) for a in s)
    # Divided differences: s = s0 + d01 (z − z0) + a (z − z0)(z − z1).
    d01 = (s1 - s0) / (z1 - z0)
    d12 = (s2 - s1) / (z2 - z1)
    a = (d12 - d01) / (z2 - z0)
    with np.errstate(divide="ignore", invalid="ignore"):
        vertex = 0.5 * (z0 + z1) - d01 / (2 * a)
    vertex = np.where(a > 0, vertex, z1)
    return np.clip(vertex, z0, z2)


def best_focus_depth(scores: np.ndarray, planes_um: Sequence[float]) -> np.ndarray:
    """Depth (…) float32 in µm from scores (Z, …), lower = sharper, one per plane at
    ``planes_um`` (ascending). NaN where every plane is NaN."""
    s = np.asarray(scores, np.float64)
    z = np.asarray(planes_um, np.float64)
    if s.shape[0] != z.size:
        raise ValueError(f"{s.shape[0]} score planes for {z.size} focal planes")
    if np.any(np.diff(z) <= 0):
        raise ValueError("planes_um must be strictly ascending")
    finite = np.isfinite(s)
    any_finite = finite.any(axis=0)
    k = np.argmin(np.where(finite, s, np.inf), axis=0)
    depth = z[k]
    if z.size >= 3:
        inner = (k > 0) & (k < z.size - 1)
        kk = np.clip(k, 1, z.size - 2)
        pick = lambda a, off: np.take_along_axis(a, (kk + off)[None], 0)[0]  # noqa: E731
        zs = np.stack([z[kk - 1], z[kk], z[kk + 1]])
        ss = np.stack([pick(s, -1), pick(s, 0), pick(s, 1)])
        ok = inner & np.isfinite(ss).all(axis=0)
        if ok.any():
            depth = np.where(ok, parabola_vertex(zs, np.where(ok, ss, 0.0)), depth)
    return np.where(any_finite, depth, np.nan).astype(np.float32)


def depth_on_tissue(scores: np.ndarray, tissue: np.ndarray, planes_um: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """(depth (…) float32 µm, scores (Z, …) float32) from every plane's unmasked scores (Z, …) and
    tissue flags (Z, …): both NaN where a cell is glass in every plane."""
    glass = ~np.asarray(tissue, bool).any(axis=0)
    scores = np.where(glass[None], np.float32(np.nan), np.asarray(scores, np.float32))
    return best_focus_depth(scores, planes_um), scores


def compute_depth_map(slide: Slide, model: str | FocusLiteNN = "focuslitenn-1", *, level: int = 0,
                      patch: int = PATCH, stride: int = GRID_STRIDE, tile_patches: int = 8,
                      progress: Callable[[float], None] | None = None,
                      cancelled: Callable[[], bool] | None = None
                      ) -> tuple[np.ndarray, np.ndarray, HeatmapGeometry]:
    """(depth (rows, cols) float32 µm, scores (Z, rows, cols) float32, geometry) for every plane
    of ``slide`` scored with ``model`` (see `scorer_for`)."""
    if slide.plane_count < 2:
        raise ValueError(f"{slide.path}: a depth map needs at least 2 focal planes, the slide has 1")
    scorer, _, _ = scorer_for(model)
    n = slide.plane_count
    per_plane = []
    geom = heatmap_geometry(slide, level, patch, stride)
    tissue = []
    for p in range(n):
        sub = None if progress is None else (lambda f, p=p: progress((p + f) / n))
        maps, geom = compute_heatmap(slide, {"s": scorer, "tissue": tissue_scorer}, level=level, plane=p,
                                     patch=patch, stride=stride, tile_patches=tile_patches, progress=sub,
                                     cancelled=cancelled, mask_glass=False)
        per_plane.append(maps["s"])
        tissue.append(maps["tissue"] > 0.5)
    depth, scores = depth_on_tissue(np.stack(per_plane), np.stack(tissue), slide.planes_um)
    return depth, scores, geom


class DepthMapSlide(ScoreGridSlide):
    """The best-focus depth map of ``base`` as a computed slide: colour = z* in µm on the
    ``viridis`` scale from the lowest to the highest captured plane (NaN = glass: white in
    `read_region`, transparent in `read_rgba`). Its single plane sits at z = 0."""

    cmap = "viridis"
    label = "best-focus z (µm)"

    def __init__(self, base: Slide, model: str | FocusLiteNN = "focuslitenn-1", level: int = 0,
                 patch: int = PATCH, stride: int = GRID_STRIDE, block_patches: int = 8,
                 cache_bytes: int = DEFAULT_CACHE_BYTES):
        if base.plane_count < 2:
            raise ValueError(f"{base.path}: a depth map needs at least 2 focal planes, the slide has 1")
        self.scorer, model_id, _ = scorer_for(model)
        geom = heatmap_geometry(base, level, patch, stride)
        identity = (f"depthmap|{model_id}|planes={','.join(f'{z:g}' for z in base.planes_um)}"
                    f"|level={level}|patch={patch}|stride={stride}")
        super().__init__(base, geom, identity, 0.0, block_patches, cache_bytes)

    @property
    def value_range(self) -> tuple[float, float]:
        return float(self.base.planes_um[0]), float(self.base.planes_um[-1])

    def _compute_block(self, b) -> np.ndarray:
        g = self.geometry
        rgbs = [read_block(self.base, g, b, p) for p in range(self.base.plane_count)]
        tissue = np.stack([tissue_grid(rgb, g.patch, g.stride, b.phase) for rgb in rgbs])
        if not tissue.any():  # glass in every plane: nothing to score
            return np.full(tissue.shape[1:], np.nan, np.float32)
        scores = np.stack([score_pixels(rgb, b, {"s": self.scorer}, g.patch, g.stride, mask_glass=False)["s"]
                           for rgb in rgbs])
        return depth_on_tissue(scores, tissue, self.base.planes_um)[0]
