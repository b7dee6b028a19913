"""Evaluate fusion on phantom z-stacks: `finefocus fusion eval --seed S [--protocol thesis|patch]`.

Phantom focal stacks of seed S (exact labels |z − z*| in µm, `engine.fqa.dataset`), as the
phantom's scanner captures them (its sensor noise, the noise `finefocus fqa eval` and
FocusLiteNN's validation see), are scored by every model; each single model, each fusion variant
(fitted unsupervised on these same scores, as on a user's slide) and RRF are compared by SRCC and
PLCC against the labels. ``random_models`` adds K models that output uniform random numbers
(thesis Table 4.4). Protocols, as in `engine.fqa.evaluate`:

* ``patch`` (default): single 235-px patches, each with its own z*: the unit the product fuses
  (`finefocus fusion heatmap` fits on one slide's heatmap cells).
* ``thesis``: whole 1024-px images, each scored as `finefocus fqa score` scores an image
  (thesis Ch. 4 fuses the FQA scores of FocusPath's images). The scores are the very ones
  `fqa eval --seed S` computes for the same number of stacks (shared cache,
  `engine.fqa.evaluate.image_score_table`).

Seeds (`engine.phantom.seeds`): training seeds are refused. The fusion hyper-parameters
were picked on ``TUNING_SEEDS`` only; evaluate on any other seed for an honest figure.

``linear_ceiling``: the best SRCC a search found for a non-negative weighting of the models'
standardised scores with the weights chosen using the labels (`linear_fusion_ceiling`), the
yardstick that tells "the fit chose badly" from "even label-chosen weights barely beat the best
model here".

The uncertainty check: patches in the top decile of the fused score's uncertainty against the
rest, by fused error = |percentile rank of the fused score − percentile rank of the label|
(scale free), and by |label − a + b·z| in µm after a least-squares line of the labels on z
(the line uses the labels: it is only a yardstick, not part of the fusion).
"""
from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from scipy.stats import rankdata

from ..evaluation import plcc, srcc
from ..fqa.dataset import StackSet, with_sensor_noise
from ..phantom.seeds import TUNING, check_evaluation_seed, is_tuning_seed
from .fit import FusionConfig, FusionResult, fit_fusion
from .inputs import ModelSet, random_models
from .rrf import rrf

#: Seeds whose results steered a choice (hyper-parameters, default models, the FocusLiteNN family
#: rule of `inputs.default_models`): reports on them say ``tuning_seed: true``.
TUNING_SEEDS = TUNING
FUSION_VARIANTS = ("SF-ms", "RF-ms", "SF-m")
DEFAULT_STACKS = 32


def phantom_digest() -> str:
    """8 hex digits of the phantom's and the stack sampler's source code: cached stacks rendered
    by another version of the phantom are not reused."""
    import hashlib

    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha1()
    for f in sorted((root / "phantom").glob("*.py")) + [root / "fqa" / "dataset.py"]:
        h.update(f.name.encode() + f.read_bytes())
    return h.hexdigest()[:8]


def stacks_cache_path(seed: int, stacks: int, cache: Path | None = None) -> Path:
    return (cache or cache_dir()) / f"stacks-seed{seed}-n{stacks}-{phantom_digest()}.npz"


def cache_dir() -> Path:
    """Where rendered evaluation stacks are kept: $FINEFOCUS_CACHE/fusion or ~/.cache/finefocus/fusion."""
    root = os.environ.get("FINEFOCUS_CACHE")
    return (Path(root) if root else Path.home() / ".cache" / "finefocus") / "fusion"


def phantom_eval_stacks(seed: int, stacks: int = DEFAULT_STACKS, cache: Path | None = None) -> StackSet:
    """``stacks`` noise-free stacks of phantom seed ``seed`` (cached on disk after the first render)."""
    from ..fqa.dataset import phantom_stacks

    check_evaluation_seed(seed, "fusion eval")   # engine.phantom.seeds
    path = stacks_cache_path(seed, stacks, cache)
    if path.exists():
        return StackSet.load(path)
    s = phantom_stacks([seed], stacks, rng_seed=seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".part.npz")
    s.save(tmp)
    tmp.replace(path)
    return s


def score_stacks(stack_set: StackSet, models: ModelSet, *, noise_seed: int | None) -> tuple[np.ndarray, np.ndarray]:
    """(N, M) scores of every patch of every stack and their (N,) labels in µm."""
    if noise_seed is not None:
        stack_set = with_sensor_noise(stack_set, noise_seed)
    imgs = stack_set.images.reshape((-1,) + stack_set.images.shape[2:])
    return models.score_patches(imgs), stack_set.labels.reshape(-1).astype(np.float64)


def uncertainty_check(fused: np.ndarray, uncertainty: np.ndarray, labels: np.ndarray) -> dict:
    """Fused error in the top uncertainty decile against the rest (see module docstring)."""
    n = len(fused)
    rank_err = np.abs(rankdata(fused) / n - rankdata(labels) / n)
    A = np.stack([np.ones(n), fused], 1)
    coef, *_ = np.linalg.lstsq(A, labels, rcond=None)
    um_err = np.abs(labels - A @ coef)
    top = uncertainty >= np.quantile(uncertainty, 0.9)
    return {"top_decile_rank_error": float(rank_err[top].mean()), "rest_rank_error": float(rank_err[~top].mean()),
            "top_decile_error_um": float(um_err[top].mean()), "rest_error_um": float(um_err[~top].mean()),
            "top_decile_patches": int(top.sum())}


def linear_fusion_ceiling(scores: np.ndarray, labels: np.ndarray, names: Sequence[str]) -> dict:
    """The best SRCC against the labels found for a fusion of the form the encoder computes (a
    non-negative weighting, summing to 1, of the standardised scores), with the weights chosen
    *using the labels*: a yardstick for the fusion rows, not a method. Local search (weight moved
    between pairs of models in steps of 0.2 down to 0.01 while the SRCC rises), started from every
    single model and from equal weights; the best end point is reported. It is never below the
    best single model, and a search can miss a better weighting, so it is a lower bound of the
    true optimum; it does not cover rank fusion or per-patch weights either. A model whose
    scores are constant (SRCC undefined) starts no search."""
    x = np.asarray(scores, np.float64)
    std = x.std(0)
    x = (x - x.mean(0)) / np.where(std > 0, std, 1.0)
    m = x.shape[1]

    def score(w: np.ndarray) -> float:
        r = srcc(x @ w, labels)
        return r if np.isfinite(r) else -np.inf

    def climb(w: np.ndarray) -> tuple[np.ndarray, float]:
        best = score(w)
        for step in (0.2, 0.1, 0.05, 0.02, 0.01):
            improved = True
            while improved:
                improved = False
                for i in range(m):
                    for j in range(m):
                        if i == j or w[i] < step - 1e-12:
                            continue
                        trial = w.copy()
                        trial[i] -= step
                        trial[j] += step
                        r = score(trial)
                        if r > best + 1e-9:
                            w, best, improved = trial, r, True
        return w, best

    starts = [np.eye(m)[j] for j in range(m) if std[j] > 0] + [np.full(m, 1.0 / m)]
    w, best = max((climb(s) for s in starts), key=lambda t: t[1])
    return {"srcc": float(best) if np.isfinite(best) else float("nan"),
            "weights": {n: round(float(v), 4) for n, v in zip(names, w)}}


def compare_methods(scores: np.ndarray, labels: np.ndarray, names: Sequence[str], *,
                    variants: Sequence[str] = FUSION_VARIANTS, config: FusionConfig | None = None,
                    progress: Callable[[str], None] | None = None) -> dict:
    """Rows {method, kind, srcc, plcc} for each single model, each fusion variant and RRF, the
    fitted per-model weights and scales, the uncertainty check of each variant and the
    label-chosen `linear_fusion_ceiling` (a yardstick, not a row)."""
    base = config or FusionConfig()
    rows = [{"method": n, "kind": "single", "srcc": srcc(scores[:, j], labels), "plcc": plcc(scores[:, j], labels)}
            for j, n in enumerate(names)]
    weights, uncertainty = {}, {}
    for v in variants:
        if progress:
            progress(v)
        res: FusionResult = fit_fusion(scores, names, replace(base, variant=v))
        rows.append({"method": v, "kind": "fusion", "srcc": srcc(res.fused, labels), "plcc": plcc(res.fused, labels)})
        weights[v] = {n: {"weight": res.weights[n], "scale": res.scales[n]} for n in names}
        uncertainty[v] = uncertainty_check(res.fused, res.uncertainty, labels)
    r = rrf(scores)
    rows.append({"method": "RRF", "kind": "rank fusion", "srcc": srcc(r, labels), "plcc": plcc(r, labels)})
    return {"rows": rows, "weights": weights, "uncertainty": uncertainty,
            "linear_ceiling": linear_fusion_ceiling(scores, labels, names)}


def score_images(seed: int, stacks: int, models: ModelSet, *, noise: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(N, M) scores of every image of the thesis protocol's ``stacks`` stacks of ``seed`` and their
    (N,) labels in µm; a model that is the mean of several scorers (`ModelSet.components`) scores
    an image by the mean of their image scores (the same tissue patches count for each)."""
    from ..fqa.evaluate import image_score_table
    from ..fqa.heatmap_source import scorer_for

    atoms = sorted({a for comps in models.components.values() for a in comps})
    table = image_score_table(seed, stacks, {a: scorer_for(a)[:2] for a in atoms}, noise)
    scores = np.stack([np.mean([table.scores[a] for a in models.components[n]], 0) for n in models.names], 1)
    return scores, table.labels.astype(np.float64)


PROTOCOLS = ("patch", "thesis")


def evaluate_seed(seed: int, models: ModelSet, *, stacks: int = DEFAULT_STACKS, random_k: int = 0,
                  noise: bool = True, config: FusionConfig | None = None,
                  progress: Callable[[str], None] | None = None, protocol: str = "patch") -> dict:
    """The full `fusion eval` report for phantom seed ``seed``."""
    check_evaluation_seed(seed, "fusion eval")   # engine.phantom.seeds
    if random_k < 0:
        raise ValueError(f"--random-models must be >= 0, got {random_k}")
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol {protocol!r}: not one of {', '.join(PROTOCOLS)}")
    if progress:
        progress("stacks and scores")
    if protocol == "thesis":
        scores, labels = score_images(seed, stacks, models, noise=noise)
    else:
        s = phantom_eval_stacks(seed, stacks)
        scores, labels = score_stacks(s, models, noise_seed=seed if noise else None)
    names = models.names
    if random_k:
        rnames, rscores = random_models(len(labels), random_k, seed)
        names, scores = names + rnames, np.concatenate([scores, rscores], 1)
    cfg = config or FusionConfig()
    out = compare_methods(scores, labels, names, config=cfg, progress=progress)
    unit = "images" if protocol == "thesis" else "patches"
    out.update({"seed": seed, "protocol": protocol, unit: int(len(labels)), "tuning_seed": is_tuning_seed(seed),
                "stacks": stacks, "noise": noise, "random_models": random_k, "skipped": models.skipped,
                "config": {"steps": cfg.steps, "lr": cfg.lr, "scale_floor": cfg.scale_floor,
                           "leave_one_out": cfg.leave_one_out, "model_weights": cfg.model_weights,
                           "seed": cfg.seed,
                           "tuned_on_seeds": list(TUNING_SEEDS)}})
    return out
