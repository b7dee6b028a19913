"""Unsupervised fusion of focus-quality models by deep MAP estimation (thesis Ch. 4).

model.py (observation model, skew-normal likelihood, encoder), fit.py (unsupervised fitting),
rrf.py (the RRF baseline), inputs.py (the models fused), evaluate.py (phantom evaluation),
slide_fit.py (a fit on one slide's own patch scores, with fused and uncertainty grids),
heatmap_source.py (those grids as computed slide sources the viewer overlays).
"""
from .fit import FusionConfig, FusionResult, fit_fusion
from .rrf import rrf

__all__ = ["FusionConfig", "FusionResult", "fit_fusion", "rrf"]
