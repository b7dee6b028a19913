"""The fused-IQA overlays (thesis Ch. 4): the fused blur score and its uncertainty.

Built on `engine.fusion`: the fusion is fitted once per slide, unsupervised, on the patch scores
of the plane first asked for (`fit_slide`: every model scores the whole plane, then the fit runs;
seconds to minutes, with progress and cancel); `FusedHeatmapSlide` then shows the fused score or
its uncertainty of any plane (other planes are fused lazily, block by block, by the fitted
encoder). Both kinds and every plane of a slide share that one fit. Kept apart from the registry
so that the adapter to the fusion engine's API lives in one place; if the engine does not
provide the names used here, the menu simply does not offer fused overlays.
"""
from __future__ import annotations

import math
import threading
from collections import OrderedDict

from .registry import OverlayKind

#: Fits kept (one per slide; each holds its slide's score grids).
MAX_FITS = 2

_fits: OrderedDict[str, object] = OrderedDict()
_fit_lock = threading.Lock()


def _fusion_api():
    """(fit_slide, FusedHeatmapSlide) from engine.fusion, or None when it lacks them."""
    try:
        from engine.fusion.heatmap_source import FusedHeatmapSlide
        from engine.fusion.slide_fit import fit_slide
    except Exception:  # absent, or mid-rewrite
        return None
    return fit_slide, FusedHeatmapSlide


def fitted_fusion(base, plane: int, progress=None, cancelled=None):
    """The fusion fitted on ``base`` (on ``plane`` if it is fitted now; reused for every plane
    and both kinds). Runs on a worker; one fit at a time."""
    fit_slide, _ = _fusion_api()
    with _fit_lock:
        fusion = _fits.get(base.uid)
        if fusion is None:
            fusion = fit_slide(base, plane=plane, progress=progress, cancelled=cancelled)
            _fits[base.uid] = fusion
            while len(_fits) > MAX_FITS:
                _fits.popitem(last=False)
        else:
            _fits.move_to_end(base.uid)
        return fusion


def _factory(kind: str):
    def make(base, plane, value_range, progress=None, cancelled=None):
        if _fusion_api() is None:
            raise RuntimeError("engine.fusion provides no fit_slide / FusedHeatmapSlide")
        _, source_cls = _fusion_api()
        fusion = fitted_fusion(base, plane, progress, cancelled)
        return source_cls(base, fusion, kind, plane)

    return make


def _fused_readout(v: float) -> str:
    return "fused: glass" if not math.isfinite(v) else f"fused {v:.3f}"


def _uncertainty_readout(v: float) -> str:
    return "fused: glass" if not math.isfinite(v) else f"fused ± {v:.3f}"


def kinds() -> list[OverlayKind]:
    """The fused score and its uncertainty (offered when engine/fusion has the modules; they are
    imported by the factories, on a worker: importing them here would import torch on the UI
    thread)."""
    return [OverlayKind("fused", "Focus quality — fused IQA", _factory("fused"), reports_progress=True,
                        readout=_fused_readout),
            OverlayKind("fused-uncertainty", "Fused IQA — uncertainty", _factory("uncertainty"),
                        reports_progress=True, readout=_uncertainty_readout)]
