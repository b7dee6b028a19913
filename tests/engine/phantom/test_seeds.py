"""The phantom seed policy (engine/phantom/seeds.py): disjoint named ranges with today's values,
one check every trainer and data builder refuses evaluation seeds through, and one check every
evaluator refuses training seeds through — exercised on the real trainers, data builders,
evaluators and CLI commands (each refuses before it renders anything)."""
import itertools

import pytest

from engine.cli import main
from engine.phantom import seeds
from engine.phantom.seeds import (ALL_RANGES, DISTS_CLASSES, DISTS_FIT, DISTS_HELDOUT, EVALUATION, FQA_VALIDATION,
                                  PHANTOM_CALIBRATION, QC_CALIBRATION, REFOCUS_VALIDATION, TRAINING, TUNING,
                                  VALIDATION, SeedPolicyError, check_evaluation_seed, check_training_seed,
                                  training_seeds)
from tests.cli import one_error_line

#: The seeds the README's phantom figures are measured on (fqa 3/7/13, fusion 7/13/17/19/23,
#: refocus 2, all-in-focus 2/6).
README_EVALUATION_SEEDS = (2, 3, 6, 7, 13, 17, 19, 23)


# ------------------------------------------------------------------------------ the ranges
def test_the_named_ranges_are_disjoint():
    for a, b in itertools.combinations(ALL_RANGES, 2):
        assert max(a.start, b.start) >= min(a.stop, b.stop), (a.name, b.name)
        assert a.disjoint(b) and b.disjoint(a)
    assert {r.name for r in ALL_RANGES} == {"evaluation", "training", "WSI-DISTS fit", "WSI-DISTS held-out",
                                             "WSI-DISTS classes", "FocusLiteNN validation", "focus-QC calibration",
                                             "refocus validation", "phantom calibration"}
    assert set(VALIDATION) == {FQA_VALIDATION, DISTS_HELDOUT, REFOCUS_VALIDATION}
    # the evaluation side lies wholly below the training side
    assert all(r.start >= EVALUATION.stop for r in ALL_RANGES if r is not EVALUATION)


def test_tuning_seeds_are_evaluation_side_seeds_apart_from_the_ones_the_readme_reports():
    assert TUNING == (101, 102, 11)
    for t in TUNING:
        assert t in EVALUATION and seeds.is_tuning_seed(t) and seeds.is_evaluation_seed(t)
        assert not any(t in r for r in ALL_RANGES if r is not EVALUATION)
    for s in README_EVALUATION_SEEDS:
        assert seeds.is_evaluation_seed(s) and not seeds.is_tuning_seed(s)


def test_the_ranges_are_today_s_ranges_and_every_consumer_takes_its_seeds_from_them():
    """The values every README figure was produced with; each module's constant is the policy's."""
    from engine.fqa.dataset import TRAINING_SEED_BASE
    from engine.fqa.train_cli import VAL_SEED_BASE
    from engine.fusion.evaluate import TUNING_SEEDS
    from engine.phantom.volume import CALIBRATION_SEED
    from engine.refocus.dists_train import FIT_SEEDS, HELDOUT_SEEDS, PHANTOM_CLASSES
    from engine.refocus.train import TRAIN_SEED0, VAL_SEED

    assert (EVALUATION.start, EVALUATION.stop) == (0, 1_000_000)
    assert TRAINING_SEED_BASE == TRAIN_SEED0 == TRAINING.start == 1_000_000
    assert training_seeds(3) == [1_000_000, 1_000_001, 1_000_002]
    assert VAL_SEED_BASE == FQA_VALIDATION.start == 1_500_000
    assert VAL_SEED == REFOCUS_VALIDATION.start == 2_000_000
    assert FIT_SEEDS == tuple(range(1_100_000, 1_100_012)) and all(s in DISTS_FIT for s in FIT_SEEDS)
    assert HELDOUT_SEEDS == (1_200_000, 1_200_001, 1_200_002, 1_200_003) and all(s in DISTS_HELDOUT for s in HELDOUT_SEEDS)
    assert PHANTOM_CLASSES == ((1_300_000, "he"), (1_300_001, "he"), (1_300_002, "he"), (1_300_003, "ihc"),
                               (1_300_004, "ihc"))
    assert all(s in DISTS_CLASSES for s, _ in PHANTOM_CLASSES)
    assert TUNING_SEEDS == TUNING
    assert CALIBRATION_SEED == 7_000_001 and CALIBRATION_SEED in PHANTOM_CALIBRATION
    assert 1_900_000 in QC_CALIBRATION     # engine/qc/calibration.py's seed


# ------------------------------------------------------------------------------ the checks
def test_the_training_check_refuses_evaluation_tuning_negative_and_where_asked_validation_seeds():
    for s in (0, 7, 999_999):
        with pytest.raises(SeedPolicyError, match=rf"^x: seed {s} is an evaluation seed .*training seeds are >= 1000000"):
            check_training_seed(s, "x")
    with pytest.raises(SeedPolicyError, match="seed 11 is a tuning seed"):
        check_training_seed(11, "x")
    with pytest.raises(SeedPolicyError, match="seed -1 is negative"):
        check_training_seed(-1, "x")
    for s in (1_000_000, 1_000_010, 1_300_004, 3_000_000):
        check_training_seed(s, "x", allow_validation=False)
    for s in (1_500_000, 1_200_003, 2_000_000):
        check_training_seed(s, "x")                      # a data builder may render validation data
        with pytest.raises(SeedPolicyError, match=f"seed {s} is a validation seed"):
            check_training_seed(s, "x", allow_validation=False)
    # training_seeds never hands out a validation or evaluation seed
    with pytest.raises(SeedPolicyError, match="seed 1200000 is a validation seed"):
        training_seeds(2, start=1_199_999)
    with pytest.raises(SeedPolicyError, match="evaluation seed"):
        training_seeds(1, start=5)
    with pytest.raises(SeedPolicyError, match="FocusLiteNN validation seeds"):
        FQA_VALIDATION.first(100_001)
    assert issubclass(SeedPolicyError, ValueError)


def test_the_evaluation_check_refuses_training_side_and_negative_seeds_and_accepts_tuning_seeds():
    for s in (0, 2, 999_999, *TUNING):
        check_evaluation_seed(s, "x")
    for s in (1_000_000, 1_500_000, 2_000_000, 7_000_001):
        with pytest.raises(SeedPolicyError, match=rf"^x: seed {s} is a training seed .*from 0 to 999999"):
            check_evaluation_seed(s, "x")
    with pytest.raises(SeedPolicyError, match="seed -1 is negative"):
        check_evaluation_seed(-1, "x")


# ---------------------------------------------------- trainers and data builders refuse evaluation seeds
def _builders(tmp):
    from engine.fqa.dataset import cached_phantom_stacks
    from engine.fqa.image_stacks import cached_image_stacks, render_image_stacks
    from engine.refocus.dataset import build_cache
    from engine.refocus.dists_train import phantom_class_images

    return {
        "fqa patch stacks": lambda s: cached_phantom_stacks(tmp / "fqa", [1_000_000, s], 1),
        "fqa image stacks": lambda s: cached_image_stacks(tmp / "img", [s], 1, image=256),
        "fqa image render": lambda s: render_image_stacks(tmp, s, 1, image=256),
        "refocus crops": lambda s: build_cache(tmp / "crops", [s], crops_per_slide=1),
        "WSI-DISTS classes": lambda s: phantom_class_images(tmp / "classes", s, "he"),
    }


@pytest.mark.parametrize("builder", ["fqa patch stacks", "fqa image stacks", "fqa image render", "refocus crops",
                                     "WSI-DISTS classes"])
@pytest.mark.parametrize("seed", [3, 11, 999_999, -2])
def test_every_data_builder_refuses_an_evaluation_seed_before_rendering(tmp_path, builder, seed):
    with pytest.raises(SeedPolicyError, match=f"seed {seed} is (an evaluation|a tuning|negative)"):
        _builders(tmp_path)[builder](seed)
    assert list(tmp_path.rglob("*.np[yz]")) == []        # nothing rendered, not even the training seed


def test_the_wsi_dists_trainer_refuses_evaluation_and_validation_seeds_before_any_work(tmp_path):
    from engine.refocus.dists_train import DistsConfig, train_dists

    base = dict(out=tmp_path / "w.pt", checkpoints=tmp_path / "ck", data=tmp_path / "no-data")
    with pytest.raises(SeedPolicyError, match="WSI-DISTS training: seed 13 is an evaluation seed"):
        train_dists(DistsConfig(**base, phantom_classes=((1_300_000, "he"), (13, "ihc"))))
    with pytest.raises(SeedPolicyError, match="WSI-DISTS training: seed 2000000 is a validation seed"):
        train_dists(DistsConfig(**base, fit_seeds=(1_100_000, 2_000_000)))
    with pytest.raises(SeedPolicyError, match="WSI-DISTS held-out pairs: seed 7 is an evaluation seed"):
        train_dists(DistsConfig(**base, heldout_seeds=(7,)))
    assert not (tmp_path / "ck").exists() and not (tmp_path / "w.pt").exists()


def test_the_refocus_trainer_takes_its_slides_from_the_training_range_only(tmp_path):
    """`refocus train --slides K` renders slides 1 000 000 … 1 000 000 + K − 1: so many that they
    would reach the WSI-DISTS held-out seeds is refused, before any rendering."""
    from engine.refocus.train import TrainConfig, train

    with pytest.raises(SeedPolicyError, match="seed 1200000 is a validation seed"):
        train(TrainConfig(out=tmp_path / "w.pt", checkpoints=tmp_path / "ck", slides=200_001, steps=1))
    assert not (tmp_path / "ck").exists()


@pytest.mark.parametrize("argv, words", [
    (["refocus", "data", "--seeds", "1000009", "7"], ["refocus data", "seed 7 is an evaluation seed", "training seeds"]),
    (["refocus", "data", "--seeds", "101"], ["seed 101 is a tuning seed"]),
    (["refocus", "data", "--seeds", "2000000"], ["seed 2000000 is a validation seed", "refocus validation"]),
    (["refocus", "data", "--seeds", "1500002"], ["seed 1500002 is a validation seed", "FocusLiteNN"]),
    (["fqa", "train", "--seeds", "200001"], ["seed 1200000 is a validation seed"]),
    (["fqa", "train", "--val-seeds", "100001"], ["FocusLiteNN validation seeds", "1500000 to 1599999"]),
])
def test_training_commands_refuse_evaluation_and_validation_seeds_in_one_line(argv, words, tmp_path, capsys):
    argv = argv + (["--checkpoints", str(tmp_path)] if argv[0] == "refocus" else
                   ["--out", str(tmp_path / "w.pt"), "--data-dir", str(tmp_path / "d"),
                    "--checkpoint-dir", str(tmp_path / "ck")])
    assert main(argv) == 2
    one_error_line(capsys, *words)
    assert list(tmp_path.rglob("*.np[yz]")) == []


# --------------------------------------------------------------- evaluators refuse training seeds
def _evaluators(tmp):
    from engine.focusmap.evaluate import evaluate_all_in_focus
    from engine.fqa.evaluate import evaluation_stacks, image_score_table
    from engine.fusion.evaluate import phantom_eval_stacks
    from engine.refocus.evaluate import evaluate

    return {
        "fqa patch": lambda s: evaluation_stacks(s, 1, cache=tmp),
        "fqa thesis": lambda s: image_score_table(s, 1, {}, cache=tmp),
        "fusion": lambda s: phantom_eval_stacks(s, 1, cache=tmp),
        "refocus": lambda s: evaluate(s, {}, fs=(1,), stacks=1, dists=False),
        "all-in-focus": lambda s: evaluate_all_in_focus(s, regions=1, size=256),
    }


@pytest.mark.parametrize("evaluator", ["fqa patch", "fqa thesis", "fusion", "refocus", "all-in-focus"])
@pytest.mark.parametrize("seed", [1_000_000, 1_500_000, 2_000_000, -1])
def test_every_evaluator_refuses_a_training_seed(tmp_path, evaluator, seed):
    with pytest.raises(SeedPolicyError, match=f"seed {seed} is (a training seed|negative)"):
        _evaluators(tmp_path)[evaluator](seed)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv, words", [
    (["fqa", "eval", "--seed", "1000000", "--json"], ["seed 1000000 is a training seed"]),
    (["fusion", "eval", "--seed", "1000001"], ["--seed 1000001", "training seeds"]),
    (["fusion", "eval", "--seed", "-3"], ["--seed -3", "negative"]),
    (["refocus", "eval", "--seed", "2000000"], ["refocus eval", "seed 2000000 is a training seed"]),
    (["refocus", "eval", "--seed", "-1"], ["refocus eval", "seed -1 is negative"]),
    (["refocus", "aif-eval", "--seed", "1000001"], ["refocus aif-eval", "seed 1000001 is a training seed"]),
])
def test_evaluation_commands_refuse_training_seeds_in_one_line(argv, words, capsys):
    assert main(argv) == 2
    one_error_line(capsys, *words, "from 0 to 999999", "engine/phantom/seeds.py")
