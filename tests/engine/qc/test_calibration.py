"""FocusLiteNN score → µm (engine/qc/calibration.py)."""
import numpy as np
import pytest

from engine.fqa.dataset import TRAINING_SEED_BASE
from engine.fqa.heatmap_source import scorer_for
from engine.qc.calibration import CALIBRATION_SEED, fit_calibration, load_calibration


def test_the_stored_map_was_fitted_on_a_training_range_seed_that_evaluation_refuses():
    cal = load_calibration()
    # evaluators accept only seeds below TRAINING_SEED_BASE (engine/fqa/evaluate.py)
    assert cal.meta["seed"] == CALIBRATION_SEED >= TRAINING_SEED_BASE
    # and not one of the seeds training (BASE + i) or validation (BASE + 500 000 + i) draw
    assert CALIBRATION_SEED - TRAINING_SEED_BASE >= 600_000


def test_the_stored_map_belongs_to_the_shipped_weights_and_is_monotone():
    import hashlib

    from engine.fqa.focuslitenn import load_model

    cal = load_calibration()
    net = load_model(cal.model)
    digest = hashlib.sha1(b"".join(p.detach().numpy().tobytes() for p in net.state_dict().values())).hexdigest()[:12]
    assert cal.meta["weights_sha1_12"] == digest
    assert np.all(np.diff(cal.scores) > 0) and np.all(np.diff(cal.defocus_um) >= 0)
    assert 0 <= cal.defocus_um[0] < 1.0 and 2.0 < cal.defocus_um[-1] <= 3.0  # labels span 0–3 µm
    scorer_for(cal.model)  # a model QC can load


def test_fitting_recovers_a_known_monotone_relation_and_keeps_nan():
    rng = np.random.default_rng(0)
    labels = rng.uniform(0, 3, 4000)
    scores = np.log1p(labels) + rng.normal(0, 0.01, labels.size)  # monotone, nearly noise-free
    cal = fit_calibration(scores, labels, "toy")
    probe = np.log1p(np.array([0.5, 1.5, 2.5]))
    assert cal(probe) == pytest.approx([0.5, 1.5, 2.5], abs=0.1)
    assert np.isnan(cal(np.array([np.nan]))[0])
    assert cal(np.array([-10.0, 10.0])).tolist() == pytest.approx([cal.defocus_um[0], cal.defocus_um[-1]])
