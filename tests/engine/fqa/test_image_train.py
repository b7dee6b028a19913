"""FocusLiteNN's image-level training term on real phantom image stacks: the differentiable
image score is `fqa score`'s score, the cache of rendered image stacks is reused, a run with
image stacks resumes exactly, and `fqa train --image-seeds` trains on images alone."""
import json

import numpy as np
import pytest
import torch

from engine.cli import main
from engine.fqa.dataset import TRAINING_SEED_BASE, cached_phantom_stacks
from engine.fqa.evaluate import image_scores
from engine.fqa.focuslitenn import load_model
from engine.fqa.heatmap import focuslitenn_scorer
from engine.fqa.image_stacks import ImageStackSet, cached_image_stacks, image_score, tissue_masks
from engine.fqa.train import CheckpointMismatch, ImageTerm, TrainConfig, neg_plcc, train
from engine.fqa.train_cli import VAL_SEED_BASE

PX = 512  # small images keep the rendering short; the code is the same at 1024


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory):
    """An image-stack cache as `fqa train --image-seeds 1 --image-stacks-per-seed 1` fills it."""
    folder = tmp_path_factory.mktemp("fqa-images")
    cached_image_stacks(folder, [TRAINING_SEED_BASE], 1, image=PX)
    cached_image_stacks(folder, [VAL_SEED_BASE], 1, image=PX)
    return folder


@pytest.fixture(scope="module")
def term(image_dir):
    return ImageTerm(cached_image_stacks(image_dir, [TRAINING_SEED_BASE], 1, image=PX),
                     cached_image_stacks(image_dir, [VAL_SEED_BASE], 1, image=PX))


def test_image_stacks_are_labelled_by_the_image_s_own_sharpest_plane(term):
    st = term.train
    assert len(st) == 1 and st.planes_per_stack == 13
    assert st.image(0, 4).shape == (PX, PX, 3) and st.image(0, 4).dtype == np.uint8
    lab = st.labels()[0]
    assert lab.min() < 0.5 and lab.max() > 2.4  # planes span z* ± 3 µm
    np.testing.assert_allclose(lab, np.abs(st.z[0] - st.zstar[0]), atol=1e-6)
    assert term.train_tissue.shape == (1, 13, 3, 3) and term.train_tissue.any()


@pytest.mark.parametrize("side", [PX, 491])  # 491: the grid's last patch ends at the image's edge
def test_the_differentiable_image_score_is_the_score_fqa_score_gives(term, side):
    model = load_model("focuslitenn-1")
    for k in (0, 6, 12):
        rgb = term.train.image(0, k)[:side, :side].copy()
        want = image_scores(rgb, {"f": focuslitenn_scorer(model)})[0]["f"]
        one = ImageStackSet((rgb[None, None],), np.zeros((1, 1), np.float32), np.zeros(1, np.float32))
        tissue = torch.from_numpy(tissue_masks(one)[0])
        assert tissue.shape == (1, 3, 3)
        x = torch.from_numpy(rgb[None]).permute(0, 3, 1, 2).float() / 255
        with torch.no_grad():
            got = image_score(model, x, tissue).item()
        # the same patches, cells and tissue mask: the same number up to float rounding
        assert got == pytest.approx(want, abs=1e-4)


def test_the_image_loss_follows_the_label_and_has_a_gradient(term):
    model = load_model("focuslitenn-1")
    g = torch.Generator().manual_seed(0)
    x, y, t = term.batch(g, 6)
    assert x.shape == (6, 3, PX, PX) and y.shape == (6,) and t.shape == (6, 3, 3)
    loss = neg_plcc(image_score(model, x, t), y)
    assert loss.item() < -0.5  # the shipped model already correlates with |z − z*| on images
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_a_resumed_run_with_image_stacks_ends_where_an_uninterrupted_one_does(term, tmp_path):
    cfg = TrainConfig(steps=4, batch=4, image_batch=3, checkpoint_every=2, validate_every=2)
    val = cached_phantom_stacks(tmp_path / "d", [VAL_SEED_BASE], 1, step_um=1.0)
    whole = train(cfg, tmp_path / "a.pt", tmp_path / "ck-a", None, val, log=lambda m: None, images=term)
    train(cfg, tmp_path / "b.pt", tmp_path / "ck-b", None, val, log=lambda m: None, until=2, images=term)
    resumed = train(cfg, tmp_path / "b.pt", tmp_path / "ck-b", None, val, resume=True, log=lambda m: None,
                    images=term)
    assert resumed["steps"] == whole["steps"] == 4
    assert {"val_patch_srcc", "val_image_srcc"} <= set(whole)
    a = torch.load(tmp_path / "ck-a" / "last.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "ck-b" / "last.pt", weights_only=True)["model"]
    for k in a:
        torch.testing.assert_close(a[k], b[k])
    with pytest.raises(CheckpointMismatch, match="image stacks"):  # resuming it on other data is refused
        train(cfg, tmp_path / "b.pt", tmp_path / "ck-b", val, val, resume=True, log=lambda m: None)


def test_the_train_command_trains_on_image_stacks_alone(image_dir, tmp_path, capsys):
    cached = {p: p.stat().st_mtime_ns for p in image_dir.rglob("*.npy")}
    out = tmp_path / "w.pt"
    args = ["fqa", "train", "--kernels", "1", "--init", "focuslitenn-1", "--out", str(out), "--seeds", "0",
            "--val-seeds", "1", "--val-stacks-per-seed", "1", "--plane-step", "1",
            "--data-dir", str(tmp_path / "data"), "--image-seeds", "1", "--image-stacks-per-seed", "1",
            "--image-val-seeds", "1", "--image-px", str(PX), "--image-batch", "3", "--image-dir", str(image_dir),
            "--checkpoint-dir", str(tmp_path / "ck"), "--steps", "2", "--validate-every", "2", "--lr", "0.001"]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "val_image_srcc" in text
    summary = json.loads("{" + text.split("\n{", 1)[1])
    assert summary["steps"] == 2 and -1 <= summary["val_image_srcc"] <= 1
    assert {p: p.stat().st_mtime_ns for p in image_dir.rglob("*.npy")} == cached  # renders reused
    assert load_model(out).kernels == 1


@pytest.mark.parametrize("bad, says", [
    (["--seeds", "0"], "nothing to train on"),
    (["--image-seeds", "-1"], "--image-seeds must be 0 or more"),
    (["--image-seeds", "1", "--image-val-seeds", "0"], "--image-val-seeds"),
    (["--image-seeds", "1", "--image-px", "200"], "smaller than one 235-px patch"),
    (["--image-seeds", "1", "--image-batch", "1"], "at least 2 images"),
    (["--image-seeds", "1", "--image-weight", "-1"], "--image-weight must be positive"),
])
def test_counts_that_cannot_work_are_one_line_before_any_rendering(tmp_path, capsys, bad, says):
    assert main(["fqa", "train", "--out", str(tmp_path / "w.pt"), "--checkpoint-dir", str(tmp_path / "ck"),
                 "--data-dir", str(tmp_path / "data"), "--image-dir", str(tmp_path / "img")] + bad) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and says in err
    assert not (tmp_path / "data").exists() and not (tmp_path / "img").exists()
