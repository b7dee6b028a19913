"""The phantom seed policy: which phantom seeds train, validate, tune and evaluate.

Every phantom slide is a pure function of an integer seed, so a model trained on seed s and
evaluated on seed s has seen its test slide. This module is the one place that says which seed is
for what; every trainer, data builder and evaluator asks it.

Two sides, split at ``TRAINING.start`` (1 000 000):

* **evaluation side**, ``0 ≤ seed < 1 000 000`` (`EVALUATION`): the only seeds an evaluator
  accepts (`check_evaluation_seed`), never rendered by a trainer or data builder
  (`check_training_seed`). Three of them, `TUNING`, steered design choices; reports on them say
  so, and the figures we claim are measured on other ones.
* **training side**, ``seed ≥ 1 000 000``: the only seeds trainers and data builders render. Its
  named blocks keep training, validation (model selection) and calibration apart, so no model is
  selected on a slide it was fitted on.

The values are those every figure of the README was produced with; changing one changes what a
training run renders or an evaluation accepts.
"""
from __future__ import annotations

import operator
from dataclasses import dataclass

__all__ = ["SeedRange", "SeedPolicyError", "EVALUATION", "TUNING", "TRAINING", "DISTS_FIT", "DISTS_CLASSES",
           "DISTS_HELDOUT", "FQA_VALIDATION", "REFOCUS_VALIDATION", "VALIDATION", "QC_CALIBRATION",
           "PHANTOM_CALIBRATION", "CALIBRATION", "ALL_RANGES", "training_seeds", "is_evaluation_seed",
           "is_tuning_seed", "is_validation_seed", "check_training_seed", "check_evaluation_seed"]

POLICY = "engine/phantom/seeds.py"


@dataclass(frozen=True)
class SeedRange:
    """The seeds ``start ≤ seed < stop``, named and with the purpose they are reserved for."""
    name: str
    start: int
    stop: int
    purpose: str

    def __contains__(self, seed) -> bool:
        try:
            s = operator.index(seed)
        except TypeError:
            return False
        return self.start <= s < self.stop

    def __len__(self) -> int:
        return self.stop - self.start

    def first(self, n: int, offset: int = 0) -> tuple[int, ...]:
        """The ``n`` seeds from ``start + offset``; a `SeedPolicyError` if they leave the range."""
        lo = self.start + int(offset)
        if n < 0 or offset < 0 or lo + n > self.stop:
            raise SeedPolicyError(f"{n} {self.name} seeds from {lo}: the {self.name} range is "
                                  f"{self.start} to {self.stop - 1} ({POLICY})")
        return tuple(range(lo, lo + n))

    def disjoint(self, other: "SeedRange") -> bool:
        return self.stop <= other.start or other.stop <= self.start


class SeedPolicyError(ValueError):
    """A phantom seed used against the seed policy: a trainer or data builder given an evaluation
    (or tuning, or validation) seed, or an evaluator given a training-side seed. The message is one
    line naming the seed and the rule it breaks."""


# ------------------------------------------------------------------------- evaluation side
#: Held-out seeds: the only ones `fqa eval`, `fusion eval`, `refocus eval` and `refocus aif-eval`
#: accept, and never rendered for training, validation or calibration. The README's phantom
#: figures are on seeds 2, 3, 6, 7, 13, 17, 19 and 23.
EVALUATION = SeedRange("evaluation", 0, 1_000_000,
                       "held out from every trainer; the only seeds evaluators accept")

#: Tuning seeds: evaluation-side seeds whose results steered a choice (the fusion's
#: hyper-parameters and default models, `engine.fusion.evaluate`). Evaluators accept them (that is
#: how they were tuned on) and reports on them say ``tuning_seed: true``; trainers refuse them like
#: any evaluation seed; no figure we claim is measured on them. In the order reports list them.
TUNING = (101, 102, 11)

# --------------------------------------------------------------------------- training side
#: Training seeds of the models we train ourselves: FocusLiteNN's patch and image stacks
#: (`fqa train`: 1 000 000 + i for i < --seeds / --image-seeds) and the refocus model's crops
#: (`refocus data` / `refocus train`: 1 000 000 + i for i < --slides, or seeds chosen with
#: `refocus data --seeds`). Its start is where the training side begins: every seed at or above it
#: is a training-side seed.
TRAINING = SeedRange("training", 1_000_000, 1_100_000,
                     "FocusLiteNN patch and image stacks, refocus training crops")
#: WSI-DISTS: the focal stacks whose pairs fit the α/β weights (`engine.refocus.dists_train`,
#: the first 12: 9 H&E, 3 IHC).
DISTS_FIT = SeedRange("WSI-DISTS fit", 1_100_000, 1_200_000, "WSI-DISTS α/β fit pairs")
#: WSI-DISTS validation: held-out training-side stacks whose pairs report the distance's SRCC
#: (`refocus dists-train` report, `refocus dists-eval`; the first 4). Never fitted on.
DISTS_HELDOUT = SeedRange("WSI-DISTS held-out", 1_200_000, 1_300_000, "WSI-DISTS held-out report pairs")
#: WSI-DISTS: phantom slides used as classes of the feature classifier (the first 5: 3 H&E, 2 IHC).
DISTS_CLASSES = SeedRange("WSI-DISTS classes", 1_300_000, 1_400_000, "WSI-DISTS feature classes")
#: FocusLiteNN validation: the stacks (patch and image) that select the kept weights and calibrate
#: scores to µm (`fqa train`: 1 500 000 + i for i < --val-seeds / --image-val-seeds; also the seed
#: of their sensor noise). Never trained on.
FQA_VALIDATION = SeedRange("FocusLiteNN validation", 1_500_000, 1_600_000,
                           "FocusLiteNN validation and calibration stacks")
#: Focus-QC calibration (`engine.qc.calibration`: one slide, 1 900 000).
QC_CALIBRATION = SeedRange("focus-QC calibration", 1_900_000, 2_000_000, "focus-QC defocus calibration")
#: Refocus validation: the one held-out training-side slide whose fixed crops select the refocus
#: weights during training (`refocus train`, the curves of `refocus curves`). Never trained on.
REFOCUS_VALIDATION = SeedRange("refocus validation", 2_000_000, 2_000_001, "refocus validation slide")
#: The phantom's own calibration: the pure-compartment squares its coarse levels are calibrated on
#: (`engine.phantom.volume.CALIBRATION_SEED`).
PHANTOM_CALIBRATION = SeedRange("phantom calibration", 7_000_001, 7_000_002,
                                "phantom coarse-level calibration squares")

#: Validation blocks: model selection only; trainers never fit on them.
VALIDATION = (FQA_VALIDATION, DISTS_HELDOUT, REFOCUS_VALIDATION)
#: Calibration blocks (neither training nor evaluation data).
CALIBRATION = (QC_CALIBRATION, PHANTOM_CALIBRATION)
#: Every named block, evaluation side first.
ALL_RANGES = (EVALUATION, TRAINING, DISTS_FIT, DISTS_HELDOUT, DISTS_CLASSES, FQA_VALIDATION, QC_CALIBRATION,
              REFOCUS_VALIDATION, PHANTOM_CALIBRATION)

_EVAL_RULE = (f"seeds {EVALUATION.start} to {EVALUATION.stop - 1} are held out for evaluation, "
              f"training seeds are >= {TRAINING.start}")


def training_seeds(n: int, start: int = TRAINING.start) -> list[int]:
    """The ``n`` consecutive training seeds from ``start`` (default: the first of `TRAINING`),
    each checked by `check_training_seed` (no evaluation, tuning or validation seed)."""
    if n < 0:
        raise SeedPolicyError(f"training seeds: need a count >= 0, got {n}")
    out = list(range(int(start), int(start) + n))
    for s in out:
        check_training_seed(s, f"{n} training seeds from {start}", allow_validation=False)
    return out


def is_evaluation_seed(seed) -> bool:
    """True for an evaluation-side seed (0 ≤ seed < 1 000 000, the tuning seeds included)."""
    return seed in EVALUATION


def is_tuning_seed(seed) -> bool:
    return is_evaluation_seed(seed) and int(seed) in TUNING


def is_validation_seed(seed) -> bool:
    return any(seed in r for r in VALIDATION)


def _validation_block(seed) -> SeedRange | None:
    return next((r for r in VALIDATION if seed in r), None)


def check_training_seed(seed, what: str, *, allow_validation: bool = True) -> None:
    """The one check of every trainer and data builder: raise `SeedPolicyError` for a seed they
    must not render — an evaluation seed (tuning seeds included) or a negative one, and, with
    ``allow_validation=False`` (a trainer's own training seeds), a validation seed. ``what`` names
    the caller in the message."""
    s = operator.index(seed)
    if s < 0:
        raise SeedPolicyError(f"{what}: seed {s} is negative (phantom seeds are >= 0; {_EVAL_RULE}; {POLICY})")
    if is_tuning_seed(s):
        raise SeedPolicyError(f"{what}: seed {s} is a tuning seed, held out from training "
                              f"({_EVAL_RULE}; {POLICY})")
    if is_evaluation_seed(s):
        raise SeedPolicyError(f"{what}: seed {s} is an evaluation seed ({_EVAL_RULE}; {POLICY})")
    block = _validation_block(s)
    if block is not None and not allow_validation:
        raise SeedPolicyError(f"{what}: seed {s} is a validation seed ({block.purpose}, {block.start} to "
                              f"{block.stop - 1}); training seeds are >= {TRAINING.start} outside the "
                              f"validation ranges ({POLICY})")


def check_evaluation_seed(seed, what: str) -> None:
    """The one check of every evaluator: raise `SeedPolicyError` unless ``seed`` is on the
    evaluation side (0 ≤ seed < 1 000 000; tuning seeds are accepted, reports flag them)."""
    s = operator.index(seed)
    rule = f"evaluate on a seed from {EVALUATION.start} to {EVALUATION.stop - 1}; {POLICY}"
    if s < 0:
        raise SeedPolicyError(f"{what}: seed {s} is negative ({rule})")
    if not is_evaluation_seed(s):
        raise SeedPolicyError(f"{what}: seed {s} is a training seed (seeds >= {TRAINING.start} are "
                              f"training seeds; {rule})")
