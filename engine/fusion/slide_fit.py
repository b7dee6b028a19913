"""Fit the fusion to one slide's own patch scores (unsupervised, no labels).

Every model of a `ModelSet` scores the patches of the FocusLiteNN heatmap grid
(`engine.fqa.heatmap`: 235-px patches at stride 128 on level 0, tissue only) of one focal plane;
the fusion of `fit.py` is fitted on the tissue patches and then fuses every patch. The result,
`SlideFusion`, holds the per-model score grids, the fused grid (z ∈ (0, 1), higher = blurrier,
relative to this slide: 0 ≈ its sharpest tissue, 1 ≈ its blurriest) and the uncertainty grid
(posterior s.d. of z, same units), all NaN on glass, with the heatmap geometry.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..fqa.heatmap import GRID_STRIDE, PATCH, HeatmapGeometry, compute_heatmap
from ..slides.base import Slide
from .fit import FusionConfig, FusionResult, fit_fusion
from .inputs import ModelSet, default_models

#: Fewest tissue patches a slide needs for a fit (the fusion learns from the slide's own spread).
MIN_TISSUE_PATCHES = 8


class NotEnoughTissue(ValueError):
    """The slide has too few tissue patches to fit the fusion on."""


@dataclass
class SlideFusion:
    """The fusion fitted on one plane of one slide, with its grids (rows, cols) float32."""

    result: FusionResult
    geometry: HeatmapGeometry
    plane: int
    z_um: float
    score_grids: dict[str, np.ndarray]
    fused: np.ndarray
    uncertainty: np.ndarray
    fit_seconds: float
    skipped: list[str] = field(default_factory=list)
    scorers: dict = field(default_factory=dict, repr=False)   # {model: TileScorer}, for other planes

    @property
    def tissue(self) -> np.ndarray:
        return np.isfinite(self.fused)

    def fuse_scores(self, grids: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Fuse score grids of the same models (e.g. one block's): (fused, uncertainty) float32,
        NaN where any model has no score (glass)."""
        names = self.result.names
        stack = np.stack([np.asarray(grids[n], np.float64) for n in names], -1)
        ok = np.isfinite(stack).all(-1)
        fused = np.full(ok.shape, np.nan, np.float32)
        unc = np.full(ok.shape, np.nan, np.float32)
        if ok.any():
            z, u, _ = self.result.fuse(stack[ok])
            fused[ok], unc[ok] = z, u
        return fused, unc


def fit_grids(grids: dict[str, np.ndarray], config: FusionConfig | None = None
              ) -> tuple[FusionResult, np.ndarray, np.ndarray]:
    """Fit the fusion on score grids {model: (rows, cols), NaN on glass}; returns the fit and
    the fused and uncertainty grids (float32, NaN where any model has no score)."""
    names = list(grids)
    stack = np.stack([np.asarray(grids[n], np.float64) for n in names], -1)
    ok = np.isfinite(stack).all(-1)
    if ok.sum() < MIN_TISSUE_PATCHES:
        raise NotEnoughTissue(f"{int(ok.sum())} tissue patches; fusion needs at least {MIN_TISSUE_PATCHES}")
    res = fit_fusion(stack[ok], names, config)
    fused = np.full(ok.shape, np.nan, np.float32)
    unc = np.full(ok.shape, np.nan, np.float32)
    fused[ok], unc[ok] = res.fused, res.uncertainty
    return res, fused, unc


def fit_slide(slide: Slide, models: ModelSet | None = None, *, plane: int = 0,
              config: FusionConfig | None = None, level: int = 0, patch: int = PATCH,
              stride: int = GRID_STRIDE, progress: Callable[[float], None] | None = None,
              cancelled: Callable[[], bool] | None = None) -> SlideFusion:
    """Score every patch of ``plane`` of ``slide`` with every model and fit the fusion on the
    tissue patches. ``progress`` gets the fraction of scoring done (the fit itself takes seconds)."""
    models = models if models is not None else default_models()
    if len(models.tile_scorers) < 2:
        raise ValueError(f"fusion needs at least 2 models, got {len(models.tile_scorers)}")
    grids, geom = compute_heatmap(slide, models.tile_scorers, level=level, plane=plane, patch=patch,
                                  stride=stride, progress=progress, cancelled=cancelled)
    t = time.perf_counter()
    cfg = config or FusionConfig()
    res, fused, unc = fit_grids(grids, cfg)
    return SlideFusion(res, geom, plane, float(slide.planes_um[plane]), grids, fused, unc,
                       time.perf_counter() - t, list(models.skipped), dict(models.tile_scorers))
