"""Real scores for fusion tests: a few small focal stacks of the phantom (exact labels |z − z*|
in µm, `engine.fqa.dataset.phantom_stacks`) with scanner noise, scored by the real models (the
shipped FocusLiteNN weights that exist, and the default classical metrics). Rendered once per
test session and shared by the test modules that need them."""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

#: An evaluation seed (below the training seeds, not one of the fusion's tuning seeds).
SEED = 3
STACKS = 8


@dataclass(frozen=True)
class PhantomScores:
    stacks: object           # engine.fqa.dataset.StackSet
    scores: np.ndarray       # (N, M), higher = blurrier
    labels: np.ndarray       # (N,) |z − z*| µm
    names: tuple[str, ...]


@functools.lru_cache(maxsize=1)
def phantom_scores() -> PhantomScores:
    from engine.fqa.dataset import phantom_stacks
    from engine.fusion.evaluate import score_stacks
    from engine.fusion.inputs import default_models

    stacks = phantom_stacks([SEED], STACKS, rng_seed=SEED, span_um=2.0, step_um=1.0)
    models = default_models()
    scores, labels = score_stacks(stacks, models, noise_seed=SEED)
    return PhantomScores(stacks, scores, labels, tuple(models.names))
