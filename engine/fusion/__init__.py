"""Unsupervised fusion of focus-quality models by deep MAP estimation (thesis Ch. 4).

model.py (observation model, skew-normal likelihood, encoder), fit.py (unsupervised fitting),
rrf.py (the RRF baseline), inputs.py (the models fused), evaluate.py (phantom evaluation),
heatmap_source.py (fused and uncertainty heatmaps as slide sources).
"""
from .fit import FusionConfig, FusionResult, fit_fusion
from .rrf import rrf

__all__ = ["FusionConfig", "FusionResult", "fit_fusion", "rrf"]
