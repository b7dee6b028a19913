"""Reciprocal Rank Fusion, the rank-fusion baseline (thesis Sec. 2.2.4, Eq. 2.27).

    RRF(I_i) = Σ_j 1 / (k + r_i^j)

r_i^j ∈ {1, …, N} is the rank of patch i among all N patches by model j, rank 1 being the
patch model j finds worst (its highest score: all inputs are oriented higher = blurrier), ties
sharing their average rank. A higher RRF therefore means blurrier, like every other score
here. k = 60 is the constant of Cormack et al. (the RRF paper the thesis cites).
"""
from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

DEFAULT_K = 60.0


def descending_ranks(scores: np.ndarray) -> np.ndarray:
    """(N, M) → (N, M) float ranks per column, 1 = highest score, ties averaged."""
    x = np.asarray(scores, np.float64)
    if x.ndim != 2:
        raise ValueError(f"scores must be (patches, models), got shape {x.shape}")
    return np.stack([rankdata(-c) for c in x.T], 1) if x.shape[1] else np.zeros_like(x)


def rrf(scores: np.ndarray, k: float = DEFAULT_K) -> np.ndarray:
    """RRF score of each patch (N,), higher = blurrier (Eq. 2.27)."""
    if not k >= 0:
        raise ValueError(f"RRF constant k must be >= 0, got {k}")
    return (1.0 / (k + descending_ranks(scores))).sum(1)
