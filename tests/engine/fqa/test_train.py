"""FocusLiteNN training on real phantom focal stacks: the loss, labels, reproducible resumption
and the weights file format (`finefocus fqa train` through the CLI entry point)."""
import json

import numpy as np
import pytest
import torch
from scipy import stats

from engine.cli import main
from engine.fqa.dataset import TRAINING_SEED_BASE, StackSet, cached_phantom_stacks, with_sensor_noise
from engine.fqa.focuslitenn import FocusLiteNN, load_model
from engine.fqa.metrics import METRICS, to_gray
from engine.fqa.train import TrainConfig, neg_plcc, train
from engine.fqa.train_cli import VAL_SEED_BASE

SEED = TRAINING_SEED_BASE


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """A stack cache as `fqa train` fills it: two focal stacks of the first training seed and one
    of the first validation seed (planes 1 µm apart over ±3 µm), rendered once."""
    folder = tmp_path_factory.mktemp("fqa-data")
    cached_phantom_stacks(folder, [SEED], 2, step_um=1.0)
    cached_phantom_stacks(folder, [VAL_SEED_BASE], 1, step_um=1.0)
    return folder


@pytest.fixture(scope="module")
def stacks(data_dir):
    return cached_phantom_stacks(data_dir, [SEED], 2, step_um=1.0)


def test_labels_are_the_distance_to_the_patch_s_sharpest_plane(stacks):
    assert stacks.images.shape[0] == 2 and stacks.images.shape[2:] == (235, 235, 3)
    for img, lab, z in zip(stacks.images, stacks.labels, stacks.z_um):
        # one z* per stack: the labels are |z − z*| for a single z*
        k = int(np.argmin(lab))
        fits = [np.abs(z - (z[k] + s * lab[k])) for s in (-1, 1)]
        assert min(np.abs(f - lab).max() for f in fits) < 0.01
        # and z* is where the (noise-free) patch itself is sharpest
        energy = [METRICS["energy_of_laplacian"].score_patches(to_gray(p[None]))[0] for p in img]
        assert lab[int(np.argmax(energy))] <= lab.min() + 0.5
    assert (stacks.labels.min(axis=1) < 0.5).all() and (stacks.labels.max(axis=1) > 2.4).all()


def test_validation_stacks_carry_the_scanner_s_sensor_noise(stacks):
    grey = np.full((1, 2, 235, 235, 3), 200, np.uint8)
    flat = StackSet(grey, np.zeros((1, 2), np.float32), np.zeros((1, 2), np.float32))
    noisy = with_sensor_noise(flat, 5).images.astype(np.float64)
    # Poisson–Gaussian at 200 grey levels: sqrt(200 · 255 / 12000 + 0.9²) ≈ 2.25 grey levels
    assert noisy[0, 0].std() == pytest.approx(np.sqrt(200 * 255 / 12000 + 0.81), rel=0.05)
    assert noisy[0, 0].mean() == pytest.approx(200, abs=0.1)
    assert np.abs(noisy[0, 0] - noisy[0, 1]).mean() > 1  # a new noise field per plane
    again = with_sensor_noise(stacks, 5)
    np.testing.assert_array_equal(again.images, with_sensor_noise(stacks, 5).images)  # reproducible
    np.testing.assert_array_equal(again.labels, stacks.labels)
    assert (again.images != stacks.images).mean() > 0.3


def test_the_loss_is_minus_pearson():
    rng = np.random.default_rng(0)
    a, b = rng.random(20), rng.random(20)
    want = -stats.pearsonr(a, b).statistic
    assert neg_plcc(torch.tensor(a), torch.tensor(b)).item() == pytest.approx(want, abs=1e-6)


def test_a_resumed_run_ends_where_an_uninterrupted_one_does(stacks, tmp_path):
    cfg = TrainConfig(steps=6, batch=4, checkpoint_every=2, validate_every=3)
    whole = train(cfg, tmp_path / "a.pt", tmp_path / "ck-a", stacks, stacks, log=lambda m: None)
    train(cfg, tmp_path / "b.pt", tmp_path / "ck-b", stacks, stacks, log=lambda m: None, until=3)
    assert torch.load(tmp_path / "ck-b" / "last.pt", weights_only=True)["step"] == 3
    resumed = train(cfg, tmp_path / "b.pt", tmp_path / "ck-b", stacks, stacks, resume=True, log=lambda m: None)
    assert resumed["steps"] == whole["steps"] == 6
    a = torch.load(tmp_path / "ck-a" / "last.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "ck-b" / "last.pt", weights_only=True)["model"]
    for k in a:
        torch.testing.assert_close(a[k], b[k])


def test_the_train_command_writes_small_weights_that_load_safely(data_dir, tmp_path, capsys):
    cached = {p: p.stat().st_mtime_ns for p in data_dir.glob("*.npz")}
    out = tmp_path / "w.pt"
    args = ["fqa", "train", "--kernels", "2", "--out", str(out), "--batch", "4", "--plane-step", "1",
            "--seeds", "1", "--stacks-per-seed", "2", "--val-seeds", "1", "--val-stacks-per-seed", "1",
            "--data-dir", str(data_dir), "--checkpoint-dir", str(tmp_path / "ck")]
    assert main(args + ["--steps", "4"]) == 0
    summary = json.loads("{" + capsys.readouterr().out.split("\n{", 1)[1])
    assert summary["kernels"] == 2 and summary["steps"] == 4
    assert {p: p.stat().st_mtime_ns for p in data_dir.glob("*.npz")} == cached  # rendered stacks reused
    blob = torch.load(out, map_location="cpu", weights_only=True)
    assert blob["kernels"] == 2 and out.stat().st_size < 10_000
    model = load_model(out)
    assert isinstance(model, FocusLiteNN) and model.parameter_count() == 2 * (7 * 7 * 3 + 1) + 2 * 2 + 1
    # Scores are calibrated to µm on the validation stacks (as scanned, with sensor noise): least
    # squares leaves a zero mean residual.
    val = with_sensor_noise(cached_phantom_stacks(data_dir, [VAL_SEED_BASE], 1, step_um=1.0), VAL_SEED_BASE)
    with torch.no_grad():
        x = torch.from_numpy(val.images[0]).permute(0, 3, 1, 2).float() / 255
        assert model(x).mean().item() == pytest.approx(float(val.labels.mean()), abs=1e-3)
    assert main(args + ["--steps", "6", "--resume"]) == 0
    assert "resumed from" in capsys.readouterr().out
    assert torch.load(tmp_path / "ck" / "last.pt", weights_only=True)["step"] == 6


def test_a_kernel_count_that_differs_from_the_initial_weights_is_refused(data_dir, tmp_path, capsys):
    init = tmp_path / "one.pt"
    from engine.fqa.focuslitenn import save_weights
    save_weights(FocusLiteNN(1), init)
    assert main(["fqa", "train", "--kernels", "2", "--init", str(init), "--out", str(tmp_path / "w.pt"),
                 "--data-dir", str(data_dir), "--checkpoint-dir", str(tmp_path / "ck")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "one.pt" in err and "1 kernels" in err
