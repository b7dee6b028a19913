"""`finefocus refocus data | train | eval | apply` through the engine's CLI entry point, on real
phantom crops and slides, with a really trained (tiny) model and the shipped weights."""
import json

import numpy as np
import pytest
from PIL import Image

from engine.cli import main
from engine.phantom.slide import PhantomSlide
from engine.refocus.weights import load_model, shipped_weights
from tests.cli import one_error_line
from tests.engine.refocus.phantom_crops import write_cache


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("refocus-cli")
    write_cache(root / "data", 1_000_000)
    (root / "val").mkdir()
    (root / "val" / "2000000.npz").write_bytes((root / "data" / "1000000.npz").read_bytes())
    return root


@pytest.fixture(scope="module")
def trained(checkpoints, tmp_path_factory):
    out = tmp_path_factory.mktemp("w") / "refocus-tiny.pt"
    assert main(["refocus", "train", "--out", str(out), "--checkpoints", str(checkpoints), "--slides", "1",
                 "--steps", "2", "--batch", "1", "--crop", "32", "--val-every", "1"]) == 0
    return out


def test_train_writes_weights_and_reports_json(trained, checkpoints, capsys):
    model, meta = load_model(trained)
    assert meta["step"] in (1, 2) and (checkpoints / "curve.png").exists()


def test_resume_continues_the_checkpoint(trained, checkpoints, capsys):
    capsys.readouterr()
    assert main(["refocus", "train", "--out", str(trained), "--checkpoints", str(checkpoints), "--slides", "1",
                 "--steps", "3", "--batch", "1", "--crop", "32", "--val-every", "1", "--resume"]) == 0
    out = capsys.readouterr().out
    assert "resumed from" in out and json.loads(out.strip().splitlines()[-1])["step"] == 3


def test_eval_rows_cover_targets_and_methods(trained, capsys):
    capsys.readouterr()
    assert main(["refocus", "eval", "--seed", "3", "--stacks", "1", "--fs", "1", "2", "--size", "64",
                 "--weights", str(trained), "--ablation", f"again={trained}", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    keys = {(r["fs"], r["target"], r["method"]) for r in rows}
    for fs in (1, 2):
        for t in ("on-plane", "beyond", "map", "all-in-focus", "all"):
            for m in ("finefocus", "again", "nearest", "linear", "optics"):
                assert (fs, t, m) in keys
        assert (fs, "all-in-focus", "focus-stack") in keys
    assert (2, "between", "linear") in keys and (1, "between", "linear") not in keys
    for r in rows:
        assert 0 < r["ssim"] <= 1 and 0 < r["ms_ssim"] <= 1 and r["psnr"] > 10
    same = {(r["fs"], r["target"]): r["ssim"] for r in rows if r["method"] == "finefocus"}
    assert all(same[(r["fs"], r["target"])] == r["ssim"] for r in rows if r["method"] == "again")
    near = {(r["fs"], r["target"]): r["ssim"] for r in rows if r["method"] == "nearest"}
    lin = {(r["fs"], r["target"]): r["ssim"] for r in rows if r["method"] == "linear"}
    assert near[(1, "on-plane")] == lin[(1, "on-plane")]         # one plane: both return it


def test_apply_refocuses_a_phantom_region(trained, tmp_path, capsys):
    out = tmp_path / "r.png"
    spec = "phantom:seed=3,size=4096x4096,planes=3,spacing=1,scanner=0"
    assert main(["refocus", "apply", spec, "--region", "1024,1024,40,48", "--z", "0.5",
                 "--weights", str(trained), "--out", str(out)]) == 0
    img = np.asarray(Image.open(out))
    assert img.shape == (48, 40, 3) and img.dtype == np.uint8
    assert json.loads(capsys.readouterr().out)["planes_um"] == [-1.0, 0.0, 1.0]


@pytest.mark.parametrize("argv, words", [
    (["refocus", "eval", "--seed", "1000001", "--json"], ["training seed"]),
    (["refocus", "eval", "--seed", "3", "--weights", "/nonexistent/w.pt"], ["/nonexistent/w.pt"]),
    (["refocus", "train", "--out", "x.pt", "--crop", "30"], ["--crop"]),
    (["refocus", "data", "--seeds", "1000009", "7"], ["training seeds"]),
    (["refocus", "apply", "phantom:seed=3,size=4096x4096", "--region", "1,2,3", "--z", "0", "--out", "x.png"],
     ["--region"]),
])
def test_user_mistakes_exit_2_with_one_line(argv, words, capsys, trained):
    if "--weights" not in argv and argv[1] in ("apply",):
        argv = argv + ["--weights", str(trained)]
    assert main(argv) == 2
    one_error_line(capsys, *words)


def test_eval_rejects_a_file_that_is_not_weights(tmp_path, capsys):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a torch file")
    assert main(["refocus", "eval", "--seed", "3", "--weights", str(bad)]) == 2
    one_error_line(capsys, str(bad))


def test_train_fine_tunes_on_a_real_multi_plane_file(checkpoints, ome_zstack, tmp_path, capsys):
    path, _ = ome_zstack
    ck = tmp_path / "ck"
    for sub in ("data", "val"):
        (ck / sub).mkdir(parents=True)
        for f in (checkpoints / sub).glob("*.npz"):
            (ck / sub / f.name).symlink_to(f)
    out = tmp_path / "tuned.pt"
    assert main(["refocus", "train", "--out", str(out), "--checkpoints", str(ck), "--slides", "1",
                 "--stacks", str(path), "--steps", "2", "--batch", "1", "--crop", "32", "--val-every", "2"]) == 0
    assert load_model(out)[1]["step"] == 2


def test_train_rejects_a_single_plane_stack(tmp_path, capsys):
    single = tmp_path / "one.png"
    Image.fromarray(np.full((300, 300, 3), 128, np.uint8)).save(single)
    assert main(["refocus", "train", "--out", str(tmp_path / "w.pt"), "--stacks", str(single)]) == 2
    one_error_line(capsys, "one.png", "at least 2")


def test_curves_plot_the_validation_history(trained, checkpoints, tmp_path, capsys):
    capsys.readouterr()
    out = tmp_path / "curve.png"
    assert main(["refocus", "curves", f"tiny={checkpoints}", "--out", str(out), "--json"]) == 0
    runs = json.loads(capsys.readouterr().out)
    assert [r["step"] for r in runs["tiny"]][:3] == [0, 1, 2] and all(0 < r["val_ssim"] <= 1 for r in runs["tiny"])
    assert Image.open(out).size == (720, 420)
    assert main(["refocus", "curves", f"none={tmp_path}", "--out", str(out)]) == 2
    one_error_line(capsys, "last.pt")
