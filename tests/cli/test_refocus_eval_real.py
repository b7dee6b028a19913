"""`finefocus refocus eval-real` through the CLI entry point, on multi-plane files written by
tifffile and Pillow, with the shipped refocusing weights."""
import json
import math

import numpy as np
import pytest
from PIL import Image

from engine.cli import main
from tests.cli import one_error_line
from tests.slide_files import write_ome_zstack


@pytest.fixture(scope="module")
def stack4(tmp_path_factory):
    path, _ = write_ome_zstack(tmp_path_factory.mktemp("er") / "four.ome.tif", planes_um=(-1.0, 0.0, 1.0, 2.0),
                               size=(64, 48), mpp=0.25)
    return path


def test_json_rows_and_means(stack4, capsys):
    assert main(["refocus", "eval-real", str(stack4), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["slides"][0]["slide"] == str(stack4) and doc["slides"][0]["planes_um"] == [-1.0, 0.0, 1.0, 2.0]
    rows = doc["rows"]
    assert {(r["target"], r["fs"], r["method"]) for r in rows} == {
        (z, fs, m) for z in (0.0, 1.0) for fs in (2, "all") for m in ("finefocus", "linear", "nearest", "optics")}
    for r in rows:
        assert set(r) >= {"slide", "fs", "target", "method", "ssim", "psnr", "sharpness_ratio"}
        assert all(math.isfinite(r[k]) for k in ("ssim", "psnr", "sharpness_ratio"))
    assert len(doc["means"]) == 8 and all(m["targets"] == 2 for m in doc["means"])


def test_text_table_and_region(stack4, capsys):
    assert main(["refocus", "eval-real", str(stack4), "--region", "8,8,32,24"]) == 0
    out = capsys.readouterr().out
    assert "region 8,8,32,24" in out and "0.25 µm/px" in out
    for m in ("finefocus", "linear", "nearest", "optics"):
        assert m in out


def test_a_stack_without_interior_plane_is_one_line_naming_the_file(tmp_path, capsys):
    two, _ = write_ome_zstack(tmp_path / "two.ome.tif", planes_um=(0.0, 1.0), size=(64, 48))
    assert main(["refocus", "eval-real", str(two)]) == 2
    one_error_line(capsys, "two.ome.tif", "2 focal planes", "at least 3")
    single = tmp_path / "one.png"
    Image.fromarray(np.full((40, 40, 3), 128, np.uint8)).save(single)
    assert main(["refocus", "eval-real", str(single)]) == 2
    one_error_line(capsys, "one.png", "1 focal plane")


@pytest.mark.parametrize("extra, words", [
    (["--region", "1,2,3"], ["--region"]),
    (["--region", "40,0,64,48"], ["four.ome.tif", "not inside"]),
    (["--max-px", "4"], ["--max-px"]),
    (["--weights", "/nonexistent/w.pt"], ["/nonexistent/w.pt"]),
])
def test_user_mistakes_exit_2_with_one_line(stack4, extra, words, capsys):
    assert main(["refocus", "eval-real", str(stack4), *extra]) == 2
    one_error_line(capsys, *words)


def test_a_missing_file_is_one_line(tmp_path, capsys):
    assert main(["refocus", "eval-real", str(tmp_path / "nope.tif")]) == 2
    one_error_line(capsys, "nope.tif")
