"""The work of one slide's QC, as pure functions a Dask worker (or this process) runs.

* `plan_slide(path, config)` → `SlidePlan` (opens the slide);
* `compute_chunk(plan, index, config)` → `ChunkResult`: for the chunk's blocks, read as
  `engine.fqa.heatmap.read_block` reads them, the FocusLiteNN scores and the fused-IQA models'
  scores of the plane nearest z = 0 (NaN on glass, exactly as `compute_heatmap` gives them) and,
  for a multi-plane slide, every plane's FocusLiteNN scores and tissue flags (the inputs of the
  best-focus depth map, as `engine.fqa.depth_map.compute_depth_map` takes them).

Each process keeps the last few slides it opened and the models it loaded, so the chunks of one
slide that land on one worker open it once. Torch runs on one thread per task (one Dask worker
thread = one core).
"""
from __future__ import annotations

import threading
from collections import Counter, OrderedDict
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..fqa.heatmap import block, read_block, score_pixels, tissue_grid
from ..fqa.heatmap_source import scorer_for
from ..fusion.inputs import default_models
from ..slides import open_slide
from ..slides.base import Slide
from .config import QcConfig
from .plan import SlidePlan, file_stamp, plan_for

FOCUS = "focus"
_OPEN_SLIDES = 2
_lock = threading.Lock()
_slides: "OrderedDict[tuple[str, tuple[int, int]], Slide]" = OrderedDict()
#: Chunks this process has computed, per slide path (how a batch spread over workers shows).
chunks_computed: Counter = Counter()


@dataclass
class ChunkResult:
    """Scores of the cells [r0, r1) × [c0, c1) of one chunk: ``focus`` FocusLiteNN (raw score,
    higher = blurrier; NaN on glass), ``models`` the fused-IQA models' scores (same mask),
    ``plane_scores`` / ``plane_tissue`` (Z, h, w) every plane's unmasked FocusLiteNN scores and
    tissue flags for a multi-plane slide, else None."""

    r0: int
    r1: int
    c0: int
    c1: int
    focus: np.ndarray
    models: dict[str, np.ndarray]
    plane_scores: np.ndarray | None = None
    plane_tissue: np.ndarray | None = None


def cached_slide(path: str, stamp: tuple[int, int]) -> Slide:
    """The slide at ``path`` (opened once per process while its ``stamp`` holds)."""
    key = (path, stamp)
    with _lock:
        hit = _slides.get(key)
        if hit is not None:
            _slides.move_to_end(key)
            return hit
    slide = open_slide(path)
    with _lock:
        _slides[key] = slide
        while len(_slides) > _OPEN_SLIDES:
            _, old = _slides.popitem(last=False)
            old.close()
    return slide


@lru_cache(maxsize=4)
def focus_scorer(model: str):
    return scorer_for(model)[0]


@lru_cache(maxsize=1)
def fusion_scorers() -> dict:
    """The fused-IQA models' tile scorers (`engine.fusion.inputs.default_models`)."""
    return dict(default_models().tile_scorers)


def plan_slide(path: str, config: QcConfig) -> SlidePlan:
    """Open ``path`` and plan its QC (raises `engine.slides.base.SlideError` for a bad slide)."""
    return plan_for(cached_slide(str(path), file_stamp(path)), str(path), config)


def compute_chunk(plan: SlidePlan, index: int, config: QcConfig) -> ChunkResult:
    """Score chunk ``index`` of ``plan`` (module docstring)."""
    slide = cached_slide(plan.path, plan.stamp)
    g = plan.geometry
    r0, r1, c0, c1 = plan.chunks[index]
    B = config.tile_patches
    fl = focus_scorer(config.model)
    scorers = {FOCUS: fl, **fusion_scorers()}
    h, w, Z = r1 - r0, c1 - c0, len(plan.planes_um)
    grids = {name: np.full((h, w), np.nan, np.float32) for name in scorers}
    multi = Z >= 2
    plane_scores = np.full((Z, h, w), np.nan, np.float32) if multi else None
    plane_tissue = np.zeros((Z, h, w), bool) if multi else None
    for br in range(r0, r1, B):
        for bc in range(c0, c1, B):
            b = block(g, br, min(br + B, r1), bc, min(bc + B, c1))
            ys, xs = slice(b.r0 - r0, b.r1 - r0), slice(b.c0 - c0, b.c1 - c0)
            rgb = read_block(slide, g, b, plan.plane)
            for name, v in score_pixels(rgb, b, scorers, g.patch, g.stride).items():
                grids[name][ys, xs] = v
            if not multi:
                continue
            for p in range(Z):
                rgb_p = rgb if p == plan.plane else read_block(slide, g, b, p)
                plane_tissue[p, ys, xs] = tissue_grid(rgb_p, g.patch, g.stride, b.phase)
                plane_scores[p, ys, xs] = score_pixels(rgb_p, b, {"s": fl}, g.patch, g.stride, mask_glass=False)["s"]
    focus = grids.pop(FOCUS)
    chunks_computed[plan.path] += 1
    return ChunkResult(r0, r1, c0, c1, focus, grids, plane_scores, plane_tissue)
