"""`finefocus fqa score | heatmap | depthmap` through the engine's CLI entry point, on real files,
with a real (hand-set) FocusLiteNN weights file."""
import json

import numpy as np
import pytest
from PIL import Image

from engine.cli import main
from tests.cli import one_error_line
from tests.engine.fqa.kernel_model import write_laplacian_weights
from tests.engine.fqa.real_tissue import CMU, cmu_region, gaussian_blur, psf_blur, require, write_ome_stack

GEOMETRY_KEYS = {"patch", "stride", "level", "origin", "shape"}


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return str(write_laplacian_weights(tmp_path_factory.mktemp("weights") / "log.pt"))


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """A 3-plane OME-TIFF of real tissue, sharp at z = +1 µm."""
    rgb = cmu_region()
    planes = [gaussian_blur(rgb, s) for s in (2.4, 1.2, 0.0)]
    return str(write_ome_stack(tmp_path_factory.mktemp("ome") / "stack.ome.tiff", planes, [-1.0, 0.0, 1.0]))


# ---------------------------------------------------------------------------- score
def test_score_gives_one_score_per_image_or_slide(weights, tmp_path, capsys):
    rgb = cmu_region((600, 1500, 1024, 1024))
    sharp, blurred = tmp_path / "sharp.png", tmp_path / "blurred.png"
    Image.fromarray(rgb).save(sharp)
    Image.fromarray(psf_blur(rgb, 2.0, 0.499)).save(blurred)
    assert main(["fqa", "score", str(sharp), str(blurred), str(require(CMU)), "--model", weights, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["path"] for r in rows] == [str(sharp), str(blurred), str(CMU)]
    assert all({"path", "score"} <= set(r) and isinstance(r["score"], float) for r in rows)
    assert rows[1]["score"] > rows[0]["score"]  # higher = blurrier
    assert rows[2]["tissue_patches"] < rows[2]["patches"]


def test_score_with_a_classical_metric_and_in_plain_text(tmp_path, capsys):
    path = tmp_path / "tile.png"
    Image.fromarray(cmu_region((600, 1500, 512, 512))).save(path)
    assert main(["fqa", "score", str(path), "--model", "brenner"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(str(path)) and "tissue patches" in line


def test_score_of_an_image_smaller_than_a_patch_is_refused(tmp_path, weights, capsys):
    path = tmp_path / "small.png"
    Image.fromarray(np.full((100, 300, 3), 128, np.uint8)).save(path)
    assert main(["fqa", "score", str(path), "--model", weights]) == 2
    one_error_line(capsys, "small.png", "smaller than one 235-px patch")


# ---------------------------------------------------------------------------- heatmap
def test_heatmap_writes_scores_geometry_and_a_png(weights, tmp_path, capsys):
    out, png = tmp_path / "heat.npy", tmp_path / "heat.png"
    assert main(["fqa", "heatmap", str(require(CMU)), "--model", weights, "--out", str(out),
                 "--png", str(png), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert GEOMETRY_KEYS | {"model", "z_um", "plane", "stats"} <= set(doc)
    assert (doc["patch"], doc["stride"], doc["level"], doc["origin"]) == (235, 128, 0, [0, 0])
    assert doc["shape"] == [(2967 - 235) // 128 + 1, (2220 - 235) // 128 + 1]
    values = np.load(out)
    assert values.dtype == np.float32 and list(values.shape) == doc["shape"]
    assert np.isnan(values).sum() == doc["stats"]["glass_patches"] > 0
    assert doc["stats"]["tissue_patches"] > 0 and doc["stats"]["min"] <= doc["stats"]["median"] <= doc["stats"]["max"]
    picture = np.asarray(Image.open(png))
    assert picture.ndim == 3 and picture.shape[0] > 500


def test_heatmap_of_a_chosen_plane(weights, stack, tmp_path, capsys):
    out = tmp_path / "h.npy"
    assert main(["fqa", "heatmap", stack, "--z", "0.8", "--model", weights, "--out", str(out), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["plane"] == 2 and doc["z_um"] == 1.0 and doc["png"] is None


def test_heatmap_refuses_a_wrong_output_name(weights, stack, tmp_path, capsys):
    assert main(["fqa", "heatmap", stack, "--model", weights, "--out", str(tmp_path / "h.txt")]) == 2
    one_error_line(capsys, "h.txt", ".npy")


# ---------------------------------------------------------------------------- depthmap
def test_depthmap_finds_the_sharp_plane(weights, stack, tmp_path, capsys):
    out, png = tmp_path / "depth.npy", tmp_path / "depth.png"
    assert main(["fqa", "depthmap", stack, "--model", weights, "--out", str(out), "--png", str(png),
                 "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert GEOMETRY_KEYS | {"planes_um", "stats", "model"} <= set(doc)
    assert doc["planes_um"] == [-1.0, 0.0, 1.0]
    depth = np.load(out)
    assert list(depth.shape) == doc["shape"]
    assert np.all(depth[np.isfinite(depth)] == 1.0)  # the sharp plane is the last: no extrapolation
    assert doc["stats"]["median"] == 1.0
    assert Image.open(png).size[0] > 0


def test_depthmap_of_a_single_plane_slide_is_refused(weights, tmp_path, capsys):
    assert main(["fqa", "depthmap", str(require(CMU)), "--model", weights, "--out", str(tmp_path / "d.npy")]) == 2
    one_error_line(capsys, "cmu-1-small-region.svs", "multi-plane")


# ---------------------------------------------------------------------------- bad input
def test_a_missing_file_is_one_line_and_exit_2(weights, tmp_path, capsys):
    missing = tmp_path / "nope.svs"
    assert main(["fqa", "heatmap", str(missing), "--model", weights, "--out", str(tmp_path / "h.npy")]) == 2
    one_error_line(capsys, "nope.svs")
    assert main(["fqa", "score", str(missing), "--model", weights]) == 2
    one_error_line(capsys, "nope.svs")


def test_a_bad_model_is_one_line_and_exit_2(stack, tmp_path, capsys):
    assert main(["fqa", "score", stack, "--model", "focuslitenn-x"]) == 2
    one_error_line(capsys, "focuslitenn-x")
    assert main(["fqa", "score", stack, "--model", str(tmp_path / "none.pt")]) == 2
    one_error_line(capsys, "none.pt")
    not_weights = tmp_path / "junk.pt"
    not_weights.write_bytes(b"not a torch file")
    assert main(["fqa", "score", stack, "--model", str(not_weights)]) == 2
    one_error_line(capsys, "junk.pt", "cannot load")


def test_a_file_that_is_not_a_slide_is_one_line_and_exit_2(weights, tmp_path, capsys):
    junk = tmp_path / "junk.svs"
    junk.write_bytes(b"\x00" * 1000)
    assert main(["fqa", "depthmap", str(junk), "--model", weights, "--out", str(tmp_path / "d.npy")]) == 2
    one_error_line(capsys, "junk.svs")


def test_the_fqa_group_lists_its_subcommands(capsys):
    with pytest.raises(SystemExit):
        main(["fqa", "--help"])
    out = capsys.readouterr().out
    for name in ("score", "heatmap", "depthmap", "train", "eval"):
        assert name in out


# ---------------------------------------------------------------------------- eval
def test_eval_prints_every_model_and_metric_side_by_side(weights, capsys, tmp_path, monkeypatch):
    from engine.fqa.evaluate import SHIPPED_KERNELS
    from engine.fqa.focuslitenn import weights_path
    from engine.fqa.metrics import METRICS

    monkeypatch.chdir(tmp_path)  # the rendered stacks are cached under ./checkpoints/fqa-eval
    assert main(["fqa", "eval", "--seed", "11", "--stacks", "3", "--protocol", "patch", "--model", weights,
                 "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert len(list((tmp_path / "checkpoints" / "fqa-eval").glob("eval-11-3-noisy-*.npz"))) == 1
    assert doc["seed"] == 11 and doc["protocol"] == "patch" and doc["patches"] == 3 * 13
    rows = {r["model"]: r for r in doc["rows"]}
    shipped = {f"focuslitenn-{k}" for k in SHIPPED_KERNELS if weights_path(k).exists()}
    assert set(rows) == set(METRICS) | shipped | {"log"}
    for r in rows.values():
        assert {"srcc", "plcc", "krcc", "roc_auc", "pr_auc", "ms_per_mpx"} <= set(r)
        assert -1 <= r["srcc"] <= 1 and 0 <= r["roc_auc"] <= 1 and r["ms_per_mpx"] > 0
    assert rows["log"]["srcc"] > 0.5  # the hand-set LoG model sees defocus
    srccs = [r["srcc"] for r in doc["rows"]]
    assert srccs == sorted(srccs, reverse=True)


def test_eval_thesis_protocol_scores_whole_images_as_fqa_score_does(weights, capsys, tmp_path, monkeypatch):
    """The default protocol: one stack of 13 whole 1024-px phantom images, each image scored as
    `fqa score` scores it; the hand-set LoG model orders the planes by defocus."""
    from engine.fqa.metrics import METRICS

    monkeypatch.chdir(tmp_path)  # the image scores are cached under ./checkpoints/fqa-eval
    assert main(["fqa", "eval", "--seed", "11", "--stacks", "1", "--model", weights, "--json"]) == 0
    assert len(list((tmp_path / "checkpoints" / "fqa-eval").glob("images-11-1-1024-noisy-*.npz"))) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["protocol"] == "thesis" and doc["images"] == 13 and doc["image_px"] == 1024
    assert (doc["patch"], doc["stride"]) == (235, 128)
    rows = {r["model"]: r for r in doc["rows"]}
    assert set(METRICS) | {"log"} <= set(rows)
    assert rows["log"]["srcc"] > 0.5
    for r in rows.values():
        assert {"srcc", "plcc", "krcc", "roc_auc", "pr_auc", "ms_per_mpx"} <= set(r) and r["ms_per_mpx"] > 0
        assert r["within_stack_srcc"] == pytest.approx(r["srcc"], abs=1e-4)  # one stack: the same figure


def test_within_stack_srcc_ignores_scale_across_stacks():
    from engine.fqa.evaluate import within_stack_srcc
    from engine.evaluation import srcc

    labels = np.tile(np.arange(5.0), 2)
    stack = np.repeat([0, 1], 5)
    pred = labels + 10 * stack  # each stack perfectly ordered, on different scales
    pred[[0, 1]] = pred[[1, 0]]  # one swap in the first stack
    assert within_stack_srcc(pred, labels, stack) == pytest.approx((0.9 + 1.0) / 2)
    assert srcc(pred, labels) < 0.6


@pytest.mark.parametrize("model", ["weights", "energy_of_laplacian", "tenengrad", "difference_of_gaussians"])
def test_eval_image_score_is_the_score_of_fqa_score(model, weights, capsys, tmp_path):
    """The thesis protocol's score of an image is what `fqa score` prints for it, for a
    FocusLiteNN and for metrics whose filters reach past the image's edges."""
    from engine.fqa.evaluate import image_scores
    from engine.fqa.heatmap_source import scorer_for

    name = weights if model == "weights" else model
    rgb = psf_blur(cmu_region((600, 1500, 1024, 1024)), 1.0, 0.499)
    path = tmp_path / "plane.png"
    Image.fromarray(rgb).save(path)
    assert main(["fqa", "score", str(path), "--model", name, "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    scores, took = image_scores(rgb, {"m": scorer_for(name)[0]})
    assert scores["m"] == pytest.approx(row["score"], rel=1e-6) and took["m"] > 0


def test_score_of_a_cropped_field_sees_no_false_edge_at_its_border(tmp_path, capsys):
    """Context past an image's edges is its edge pixels, not white: a blurred tissue crop scores
    the same whether or not it is framed by more of itself."""
    from engine.fqa.evaluate import image_scores
    from engine.fqa.heatmap_source import scorer_for

    big = psf_blur(cmu_region((600, 1500, 1024, 1024)), 1.5, 0.499)
    crop = big[256:256 + 2 * 128 + 235, 256:256 + 2 * 128 + 235]  # 3×3 patches
    sc = {"m": scorer_for("energy_of_laplacian")[0]}
    inner = image_scores(crop, sc)[0]["m"]
    # the same 9 patches scored inside the big image: rows/cols 2–4 of its 7×7 grid
    from engine.fqa.heatmap import compute_heatmap
    from engine.slides.array import ArraySlide

    grid = compute_heatmap(ArraySlide([big], min_size=1 << 30), sc, prefetch=False)[0]["m"]
    framed = float(np.nanmean(grid[2:5, 2:5]))
    assert inner == pytest.approx(framed, rel=0.05)


@pytest.mark.parametrize("protocol", ["thesis", "patch"])
def test_eval_refuses_an_unreadable_model_in_one_line(protocol, tmp_path, capsys):
    bad = tmp_path / "notes.pt"
    bad.write_text("not weights")
    assert main(["fqa", "eval", "--seed", "11", "--stacks", "1", "--protocol", protocol, "--model", str(bad),
                 "--json"]) == 2
    one_error_line(capsys, "notes.pt", "cannot load")


def test_eval_refuses_bad_arguments_in_one_line(capsys):
    assert main(["fqa", "eval", "--seed", "11", "--stacks", "0", "--json"]) == 2
    one_error_line(capsys, "--stacks 0", "at least one stack")


def test_eval_refuses_a_training_seed(capsys):
    assert main(["fqa", "eval", "--seed", "1000000", "--json"]) == 2
    one_error_line(capsys, "1000000", "training seed")
