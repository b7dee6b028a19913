"""The quality models fusion combines: FocusLiteNN (1, 2, 10 kernels) and the classical metrics.

Every model is oriented so that a higher score means blurrier (`Metric.blur_score`;
FocusLiteNN is trained that way). FocusLiteNN weights that are not shipped yet are skipped, with
a message saying which file is missing, so fusion runs on whatever models exist.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from ..fqa.focuslitenn import FocusLiteNN, load_model, weights_path
from ..fqa.heatmap import TileScorer, focuslitenn_scorer, metric_scorer
from ..fqa.metrics import METRICS

FOCUSLITENN_KERNELS = (1, 2, 10)

#: The classical metrics fused by default, chosen on the tuning seeds (engine/fusion/evaluate.py,
#: TUNING_SEEDS) for errors that are nearly independent of each other and of FocusLiteNN's: a
#: band-pass energy (DoG), a spectral-shape measure (its content contrast cancels) and Vollath's
#: autocorrelation. The fusion assumes models independent given the latent quality (Eq. 4.4):
#: near-copies (abs_difference / contrast / wavelet_detail; energy / variance of the Laplacian)
#: or gradient energies sharing one content error (brenner, tenengrad, variance) would out-vote
#: the rest. Any metric of `METRICS` can still be fused by name.
FUSION_METRICS = ("difference_of_gaussians", "spectral_entropy", "autocorrelation")


@dataclass
class ModelSet:
    """Named models, each with a patch scorer ((N, h, w, 3) uint8 → (N,)) and a tile scorer
    for heatmaps; ``skipped`` lists the models left out and why."""

    patch_scorers: dict[str, Callable[[np.ndarray], np.ndarray]] = field(default_factory=dict)
    tile_scorers: dict[str, TileScorer] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return list(self.patch_scorers)

    def score_patches(self, patches: np.ndarray) -> np.ndarray:
        """(N, h, w, 3) uint8 → (N, M) scores, higher = blurrier."""
        return np.stack([np.asarray(f(patches), np.float64) for f in self.patch_scorers.values()], 1)


def _focuslitenn_patch_scorer(model: FocusLiteNN, batch: int = 32):
    @torch.inference_mode()
    def score(patches: np.ndarray) -> np.ndarray:
        out = []
        for k in range(0, len(patches), batch):
            x = torch.from_numpy(np.ascontiguousarray(patches[k:k + batch])).permute(0, 3, 1, 2).float() / 255.0
            out.append(model(x).numpy())
        return np.concatenate(out) if out else np.zeros(0)
    return score


def _metric_patch_scorer(metric):
    return lambda patches: metric.blur_score(metric.score_patches(patches))


def default_models(metrics: list[str] | None = None, focuslitenn: bool = True) -> ModelSet:
    """FocusLiteNN-1/2/10 (those whose weights exist) and the classical metrics
    (`FUSION_METRICS`, or the names in ``metrics``)."""
    ms = ModelSet()
    if focuslitenn:
        for k in FOCUSLITENN_KERNELS:
            path = weights_path(k)
            if not path.exists():
                ms.skipped.append(f"focuslitenn-{k}: {path} not found (train it with `finefocus fqa train`)")
                continue
            model = load_model(path)
            ms.patch_scorers[f"focuslitenn-{k}"] = _focuslitenn_patch_scorer(model)
            ms.tile_scorers[f"focuslitenn-{k}"] = focuslitenn_scorer(model)
    names = list(FUSION_METRICS) if metrics is None else list(metrics)
    for name in names:
        if name not in METRICS:
            raise ValueError(f"unknown metric {name!r}; known: {', '.join(METRICS)}")
        ms.patch_scorers[name] = _metric_patch_scorer(METRICS[name])
        ms.tile_scorers[name] = metric_scorer(METRICS[name])
    return ms


def random_models(n_patches: int, k: int, seed: int) -> tuple[list[str], np.ndarray]:
    """K "metrics" that output uniform random numbers in [0, 1) (thesis Table 4.4): names and
    (N, K) scores, reproducible from ``seed``."""
    rng = np.random.default_rng([seed, 4_4])
    return [f"random-{i + 1}" for i in range(k)], rng.uniform(0, 1, (n_patches, k))
