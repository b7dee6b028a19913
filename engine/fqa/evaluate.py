"""Focus-quality evaluation on phantom z-stacks: every model and metric side by side.

Protocol (thesis Sec. 3.4.2 adapted to the phantom): ``n_stacks`` focal stacks of 235×235 px
patches are rendered from phantom seed S (never a training seed), planes at the stack's z* plus
offsets from −3 to +3 µm every 0.5 µm (jittered, snapped to 0.1 µm), as the phantom's scanner
captures them (its sensor noise, as in the real scans FocusPath holds) unless ``noise=False``. Every patch of every stack is
pooled: SRCC, PLCC and KRCC between a model's blur score (higher = blurrier) and the truth
|z − z*| in µm; ROC-AUC and PR-AUC for "blurry" = |z − z*| ≥ 1 µm (about one depth of field of a
0.75 NA objective in green light, λ/NA² ≈ 0.96 µm). ``ms_per_mpx`` is the scoring time per
megapixel of patches on this machine, measured in the same run.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from ..evaluation import correlation_row
from .dataset import TRAINING_SEED_BASE, StackSet, phantom_digest, phantom_stacks
from .focuslitenn import load_model, weights_path
from .metrics import METRICS, to_gray

BLURRY_UM = 1.0
SHIPPED_KERNELS = (1, 2, 10)


class TrainingSeedError(ValueError):
    pass


#: Rendered evaluation stacks are kept here (per phantom version), so a second evaluation of the
#: same seed only scores.
EVAL_CACHE = Path("checkpoints") / "fqa-eval"


def evaluation_stacks(seed: int, n_stacks: int = 96, noise: bool = True, cache: Path | None = EVAL_CACHE) -> StackSet:
    """The stacks `evaluate` scores, rendered once per (seed, stacks, noise, phantom version)."""
    if seed >= TRAINING_SEED_BASE:
        raise TrainingSeedError(f"seed {seed} is a training seed (≥ {TRAINING_SEED_BASE}); evaluate on another")
    if seed < 0:
        raise TrainingSeedError(f"seed {seed} is negative")
    path = None
    if cache is not None:
        path = Path(cache) / f"eval-{seed}-{n_stacks}-{'noisy' if noise else 'clean'}-{phantom_digest()}.npz"
        if path.exists():
            return StackSet.load(path)
    stacks = phantom_stacks([seed], n_stacks, rng_seed=seed + 7, noise=noise)
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.stem + ".part.npz")
            stacks.save(tmp)
            tmp.replace(path)
        except OSError:
            pass  # a read-only working folder: evaluate without the cache
    return stacks


def _flat(stacks: StackSet) -> tuple[np.ndarray, np.ndarray]:
    imgs = stacks.images.reshape((-1,) + stacks.images.shape[2:])
    return imgs, stacks.labels.reshape(-1)


def blur_scores(imgs: np.ndarray, models: dict) -> dict[str, tuple[np.ndarray, float]]:
    """{name: (scores oriented higher = blurrier, seconds)} for FocusLiteNN models and metrics."""
    out = {}
    x = torch.from_numpy(imgs).permute(0, 3, 1, 2).float().div_(255.0)
    for name, model in models.items():
        t = time.perf_counter()
        with torch.inference_mode():
            s = torch.cat([model(b) for b in x.split(256)]).numpy()
        out[name] = (s, time.perf_counter() - t)
    gray = to_gray(imgs)
    for name, metric in METRICS.items():
        t = time.perf_counter()
        s = metric.blur_score(metric.score_patches(gray))
        out[name] = (s, time.perf_counter() - t)
    return out


def shipped_models(extra: list[str] | None = None) -> dict:
    models = {}
    for k in SHIPPED_KERNELS:
        if weights_path(k).exists():
            models[f"focuslitenn-{k}"] = load_model(f"focuslitenn-{k}")
    for path in extra or []:
        models[Path(path).stem] = load_model(path)
    return models


def evaluate(seed: int, n_stacks: int = 96, extra_models: list[str] | None = None, noise: bool = True) -> dict:
    """The evaluation table as a dict: {"seed", "patches", "rows": [{"model", srcc, ...}]}."""
    stacks = evaluation_stacks(seed, n_stacks, noise)
    imgs, labels = _flat(stacks)
    mpx = imgs.shape[0] * imgs.shape[1] * imgs.shape[2] / 1e6
    rows = []
    for name, (scores, secs) in blur_scores(imgs, shipped_models(extra_models)).items():
        row = {"model": name, **correlation_row(scores, labels, BLURRY_UM), "ms_per_mpx": 1000 * secs / mpx}
        rows.append({k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()})
    rows.sort(key=lambda r: -r["srcc"] if np.isfinite(r["srcc"]) else 2)
    return {"seed": seed, "stacks": n_stacks, "patches": int(len(labels)), "blurry_um": BLURRY_UM,
            "sensor_noise": noise, "rows": rows}
