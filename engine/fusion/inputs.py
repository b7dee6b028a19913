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
    #: Each model as the mean of named scorers (`engine.fqa.heatmap_source.scorer_for` names):
    #: how the image-level evaluation reuses `finefocus fqa eval`'s scores of the same images.
    components: dict[str, list[str]] = field(default_factory=dict)

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


def _mean_of(scorers: list[Callable]) -> Callable:
    """A scorer returning the mean of ``scorers``' outputs (patch or tile scorers alike)."""
    def score(*args, **kwargs):
        return np.mean([np.asarray(f(*args, **kwargs), np.float64) for f in scorers], axis=0).astype(np.float32)
    return score


def default_models(metrics: list[str] | None = None, focuslitenn: bool = True,
                   focuslitenn_family: bool = True) -> ModelSet:
    """FocusLiteNN-1/2/10 (those whose weights exist) and the classical metrics
    (`FUSION_METRICS`, or the names in ``metrics``).

    With ``focuslitenn_family`` (the default) the FocusLiteNNs enter as one model, the mean of
    their scores (named e.g. ``focuslitenn-1+2+10``): one architecture trained on the same
    phantom data, their errors are strongly correlated, and the fusion, which assumes models
    independent given the latent quality (Eq. 4.4), would let the three out-vote every other
    model (seen on phantom seed 11: weights 0.21/0.33/0.43 for FocusLiteNN-1/2/10, 0.03 for
    DoG, the best single model, and a fused SRCC 0.15 below it; seed 11 has therefore joined the
    tuning seeds). Their scores share units (µm of estimated defocus when trained with
    calibration), so their plain mean is meaningful."""
    ms = ModelSet()
    if focuslitenn:
        nets = {}
        for k in FOCUSLITENN_KERNELS:
            path = weights_path(k)
            if not path.exists():
                ms.skipped.append(f"focuslitenn-{k}: {path} not found (train it with `finefocus fqa train`)")
                continue
            nets[k] = load_model(path)
        if focuslitenn_family and len(nets) > 1:
            name = "focuslitenn-" + "+".join(str(k) for k in nets)
            ms.patch_scorers[name] = _mean_of([_focuslitenn_patch_scorer(m) for m in nets.values()])
            ms.tile_scorers[name] = _mean_of([focuslitenn_scorer(m) for m in nets.values()])
            ms.components[name] = [f"focuslitenn-{k}" for k in nets]
        else:
            for k, model in nets.items():
                ms.patch_scorers[f"focuslitenn-{k}"] = _focuslitenn_patch_scorer(model)
                ms.tile_scorers[f"focuslitenn-{k}"] = focuslitenn_scorer(model)
                ms.components[f"focuslitenn-{k}"] = [f"focuslitenn-{k}"]
    names = list(FUSION_METRICS) if metrics is None else list(metrics)
    for name in names:
        if name not in METRICS:
            raise ValueError(f"unknown metric {name!r}; known: {', '.join(METRICS)}")
        ms.patch_scorers[name] = _metric_patch_scorer(METRICS[name])
        ms.tile_scorers[name] = metric_scorer(METRICS[name])
        ms.components[name] = [name]
    return ms


def random_models(n_patches: int, k: int, seed: int) -> tuple[list[str], np.ndarray]:
    """K "metrics" that output uniform random numbers in [0, 1) (thesis Table 4.4): names and
    (N, K) scores, reproducible from ``seed``."""
    rng = np.random.default_rng([seed, 4_4])
    return [f"random-{i + 1}" for i in range(k)], rng.uniform(0, 1, (n_patches, k))
