"""One slide's QC result from its chunks: the grids put together, the fused-IQA fit, the depth
map, the focus summary and verdict, and the thumbnail the overlays are drawn on.

Grids are (rows, cols) float32 on the heatmap geometry of the plan (235-px patches at stride 128,
level-0 px), NaN on glass:

* ``focus`` — FocusLiteNN's raw score of the plane nearest z = 0 (higher = blurrier);
* ``defocus_um`` — that score as estimated defocus in µm (`engine.qc.calibration`);
* ``fused`` / ``uncertainty`` — the fused IQA score (0–1 on this slide, higher = blurrier) and its
  posterior s.d., fitted on the slide's own tissue patches (`engine.fusion.slide_fit.fit_grids`;
  all NaN when the slide has too little tissue for a fit, with a note);
* ``depth_um`` — for a multi-plane slide, the best-focus z in µm (`engine.fqa.depth_map`), else
  absent.

Tissue area (mm²) counts the tissue cells, each the stride² square (128 × 128 level-0 px) its patch
is centred on, times the slide's pixel area; unknown (NaN) without µm per pixel.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..fqa.depth_map import depth_on_tissue
from ..fusion.slide_fit import NotEnoughTissue, fit_grids
from .calibration import load_calibration
from .compute import ChunkResult, cached_slide
from .config import QcConfig
from .plan import SlidePlan
from .verdict import FocusSummary, summarise


@dataclass
class SlideResult:
    """The QC of one slide (module docstring); ``thumbnail`` is uint8 RGB of the plane nearest
    z = 0, at most ``QcConfig.thumbnail_px`` on its long side."""

    plan: SlidePlan
    grids: dict[str, np.ndarray]
    summary: FocusSummary
    tissue_mm2: float
    thumbnail: np.ndarray
    notes: list[str] = field(default_factory=list)
    fusion_weights: dict[str, float] = field(default_factory=dict)


def assemble(plan: SlidePlan, chunks: list[ChunkResult]) -> dict[str, np.ndarray]:
    """The chunks' values as whole grids: ``focus``, one per fused-IQA model (``model:NAME``),
    and for multi-plane slides ``plane_scores`` / ``plane_tissue`` (Z, rows, cols)."""
    rows, cols = plan.geometry.shape
    Z = len(plan.planes_um)
    out: dict[str, np.ndarray] = {"focus": np.full((rows, cols), np.nan, np.float32)}
    for ch in chunks:
        ys, xs = slice(ch.r0, ch.r1), slice(ch.c0, ch.c1)
        out["focus"][ys, xs] = ch.focus
        for name, v in ch.models.items():
            out.setdefault(f"model:{name}", np.full((rows, cols), np.nan, np.float32))[ys, xs] = v
        if ch.plane_scores is not None:
            out.setdefault("plane_scores", np.full((Z, rows, cols), np.nan, np.float32))[:, ys, xs] = ch.plane_scores
            out.setdefault("plane_tissue", np.zeros((Z, rows, cols), bool))[:, ys, xs] = ch.plane_tissue
    return out


def finish_slide(plan: SlidePlan, config: QcConfig, *chunks: ChunkResult) -> SlideResult:
    """The `SlideResult` of ``plan`` from all its chunks (in any order)."""
    a = assemble(plan, list(chunks))
    notes = list(plan.notes)
    focus = a["focus"]
    grids = {"focus": focus, "defocus_um": load_calibration()(focus)}
    models = {k.split(":", 1)[1]: v for k, v in a.items() if k.startswith("model:")}
    weights: dict[str, float] = {}
    try:
        res, fused, unc = fit_grids(models, config.fusion)
        weights = {n: float(w) for n, w in res.weights.items()}
    except NotEnoughTissue as exc:
        fused = unc = np.full(focus.shape, np.nan, np.float32)
        notes.append(f"no fused IQA: {exc}")
    grids["fused"], grids["uncertainty"] = fused, unc
    if "plane_scores" in a:
        grids["depth_um"] = depth_on_tissue(a["plane_scores"], a["plane_tissue"], plan.planes_um)[0]
    summary = summarise(grids["defocus_um"])
    if summary.note:
        notes.append(summary.note)
    g = plan.geometry
    n_tissue = int(np.isfinite(focus).sum())
    tissue_mm2 = (n_tissue * (g.stride * g.downsample) ** 2 * plan.mpp[0] * plan.mpp[1] / 1e6
                  if plan.mpp else float("nan"))
    thumb = cached_slide(plan.path, plan.stamp).thumbnail(config.thumbnail_px, plan.plane)
    return SlideResult(plan, grids, summary, float(tissue_mm2), np.ascontiguousarray(thumb), notes, weights)
