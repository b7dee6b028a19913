"""`finefocus fusion heatmap | eval` through the engine's CLI entry point, on a real slide file
and real phantom focal stacks; every user mistake exits 2 with one line naming the cause."""
import json

import numpy as np
import pytest
from PIL import Image

from engine.cli import main
from engine.fqa.heatmap import heatmap_geometry
from engine.fusion.evaluate import FUSION_VARIANTS, stacks_cache_path
from engine.slides import open_slide
from tests.cli import one_error_line
from tests.engine.fqa.real_tissue import cmu_region, gaussian_blur, write_ome_stack
from tests.engine.fusion.phantom_scores import SEED, STACKS, phantom_scores


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """A 2-plane OME-TIFF of real tissue, sharp at z = 0, blurred at z = 1.5 µm."""
    rgb = cmu_region()
    return str(write_ome_stack(tmp_path_factory.mktemp("ome") / "stack.ome.tiff",
                               [rgb, gaussian_blur(rgb, 1.5)], [0.0, 1.5]))


# ---------------------------------------------------------------------------- heatmap
def test_heatmap_writes_fused_and_uncertainty_grids_on_the_focuslitenn_geometry(stack, tmp_path, capsys):
    out = tmp_path / "fused.npy"
    assert main(["fusion", "heatmap", stack, "--z", "1.2", "--out", str(out), "--steps", "300", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    with open_slide(stack) as slide:
        geom = heatmap_geometry(slide)
    assert (doc["patch"], doc["stride"], doc["level"], doc["origin"]) == (235, 128, 0, [0, 0])
    assert doc["shape"] == list(geom.shape) and doc["plane"] == 1 and doc["z_um"] == 1.5
    fused, unc = np.load(out), np.load(tmp_path / "fused-uncertainty.npy")
    assert fused.dtype == unc.dtype == np.float32 and list(fused.shape) == list(unc.shape) == doc["shape"]
    tissue = np.isfinite(fused)
    np.testing.assert_array_equal(np.isfinite(unc), tissue)
    assert doc["fused"]["tissue_patches"] == tissue.sum() > 0 and (~tissue).any()
    assert ((fused[tissue] > 0) & (fused[tissue] < 1)).all() and (unc[tissue] > 0).all()
    assert doc["variant"] == "SF-ms" and doc["higher_is_blurrier"] is True
    assert doc["model_weights"] == "information"
    names = [m["name"] for m in doc["models"]]
    assert {"difference_of_gaussians", "spectral_entropy", "autocorrelation"} <= set(names)
    assert sum(m["weight"] for m in doc["models"]) == pytest.approx(1.0, abs=1e-4)
    assert all(m["scale"] > 0 for m in doc["models"])
    assert doc["uncertainty"]["out"] == str(tmp_path / "fused-uncertainty.npy")


def test_heatmap_in_plain_text_with_chosen_models_variant_and_png(stack, tmp_path, capsys):
    out, u, png = tmp_path / "f.npy", tmp_path / "u.npy", tmp_path / "f.png"
    assert main(["fusion", "heatmap", stack, "--out", str(out), "--uncertainty-out", str(u), "--png", str(png),
                 "--variant", "RF-ms", "--metrics", "brenner,tenengrad", "--no-focuslitenn", "--steps", "200"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"wrote {out} and {u}") and "RF-ms over 2 models" in line
    assert np.load(u).shape == np.load(out).shape
    assert np.asarray(Image.open(png)).ndim == 3


@pytest.mark.parametrize("argv, words", [
    (["--out", "{tmp}/fused.txt"], ["fused.txt", "--out must name a .npy file"]),
    (["--out", "{tmp}/missing/f.npy"], ["does not exist"]),
    (["--out", "{tmp}/f.npy", "--uncertainty-out", "{tmp}/f.npy"], ["must differ from --out"]),
    (["--out", "{tmp}/f.npy", "--variant", "XF"], ["--variant", "XF"]),
    (["--out", "{tmp}/f.npy", "--metrics", "sharpness"], ["--metrics", "sharpness"]),
    (["--out", "{tmp}/f.npy", "--metrics", "brenner", "--no-focuslitenn"], ["at least 2 models"]),
    (["--out", "{tmp}/f.npy", "--steps", "0"], ["--steps"]),
])
def test_heatmap_mistakes_exit_2_with_one_line(stack, tmp_path, capsys, argv, words):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert main(["fusion", "heatmap", stack, *argv]) == 2
    one_error_line(capsys, *words)


def test_heatmap_of_a_missing_file_or_of_bare_glass_exits_2(tmp_path, capsys):
    assert main(["fusion", "heatmap", str(tmp_path / "nope.svs"), "--out", str(tmp_path / "f.npy")]) == 2
    one_error_line(capsys, "nope.svs")
    glass = tmp_path / "glass.png"
    Image.fromarray(np.full((600, 600, 3), 245, np.uint8)).save(glass)
    assert main(["fusion", "heatmap", str(glass), "--out", str(tmp_path / "f.npy"), "--metrics",
                 "brenner,tenengrad"]) == 2
    one_error_line(capsys, "glass.png", "tissue patches")


# ---------------------------------------------------------------------------- eval
@pytest.fixture()
def cached_stacks(tmp_path, monkeypatch):
    """The small phantom stacks of seed SEED, where `fusion eval` finds rendered stacks."""
    monkeypatch.setenv("FINEFOCUS_CACHE", str(tmp_path))
    path = stacks_cache_path(SEED, STACKS)
    path.parent.mkdir(parents=True)
    phantom_scores().stacks.save(path)
    return path


def test_eval_compares_single_models_fusion_variants_and_rrf(cached_stacks, capsys):
    assert main(["fusion", "eval", "--seed", str(SEED), "--stacks", str(STACKS), "--random-models", "2",
                 "--steps", "150", "--protocol", "patch", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    methods = [r["method"] for r in doc["rows"]]
    singles = [r["method"] for r in doc["rows"] if r["kind"] == "single"]
    assert singles[-2:] == ["random-1", "random-2"] and len(singles) >= 5
    assert methods == singles + list(FUSION_VARIANTS) + ["RRF"]
    assert all(-1 <= r["srcc"] <= 1 and -1 <= r["plcc"] <= 1 for r in doc["rows"])
    for v in FUSION_VARIANTS:
        assert set(doc["weights"][v]) == set(singles)
        assert {"top_decile_rank_error", "rest_rank_error"} <= set(doc["uncertainty"][v])
    assert doc["seed"] == SEED and doc["random_models"] == 2 and doc["tuning_seed"] is False
    assert doc["stacks"] == STACKS and doc["patches"] > 0 and doc["protocol"] == "patch"
    assert doc["config"]["model_weights"] == "information"
    best_single = max(r["srcc"] for r in doc["rows"] if r["kind"] == "single")
    assert doc["linear_ceiling"]["srcc"] >= best_single - 1e-12
    assert set(doc["linear_ceiling"]["weights"]) == set(singles)


def test_eval_with_learned_model_weights(cached_stacks, capsys):
    assert main(["fusion", "eval", "--seed", str(SEED), "--stacks", str(STACKS), "--steps", "100",
                 "--model-weights", "learned", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["config"]["model_weights"] == "learned"


def test_eval_thesis_protocol_fuses_the_image_scores_fqa_eval_reports(capsys, tmp_path, monkeypatch):
    """Whole 1024-px images scored as `fqa score` scores them; `fusion eval` reuses `fqa eval`'s
    scores of the same stacks, so a single model's row agrees with it."""
    monkeypatch.chdir(tmp_path)
    assert main(["fqa", "eval", "--seed", "12", "--stacks", "1", "--json"]) == 0
    fqa = {r["model"]: r for r in json.loads(capsys.readouterr().out)["rows"]}
    assert main(["fusion", "eval", "--seed", "12", "--stacks", "1", "--steps", "100", "--protocol", "thesis",
                 "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["protocol"] == "thesis" and doc["images"] == 13
    rows = {r["method"]: r for r in doc["rows"]}
    assert rows["difference_of_gaussians"]["srcc"] == pytest.approx(fqa["difference_of_gaussians"]["srcc"], abs=1e-4)
    assert {"SF-ms", "RF-ms", "SF-m", "RRF"} <= set(rows)


def test_eval_prints_a_table_without_json(cached_stacks, capsys):
    assert main(["fusion", "eval", "--seed", str(SEED), "--stacks", str(STACKS), "--steps", "100"]) == 0
    out = capsys.readouterr().out
    assert "SRCC" in out and "RRF" in out and "SF-ms" in out and "linear ceiling" in out


@pytest.mark.parametrize("argv, words", [
    (["--seed", "1000001"], ["--seed 1000001", "training seeds"]),
    (["--seed", "-3"], ["--seed -3"]),
    (["--seed", "4", "--random-models", "-1"], ["--random-models"]),
    (["--seed", "4", "--stacks", "0"], ["--stacks"]),
    (["--seed", "4", "--steps", "0"], ["--steps"]),
    (["--seed", "4", "--metrics", "nope"], ["--metrics", "nope"]),
])
def test_eval_mistakes_exit_2_with_one_line(capsys, argv, words):
    assert main(["fusion", "eval", *argv]) == 2
    one_error_line(capsys, *words)
