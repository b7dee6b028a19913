"""`finefocus info` and `finefocus snapshot` through the engine's CLI entry point."""
import json

import numpy as np
import pytest
from PIL import Image

from engine.cli import main
from tests.cli import one_error_line


def test_info_json_describes_an_ome_zstack(ome_zstack, capsys):
    path, _ = ome_zstack
    assert main(["info", str(path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["format"] == "ome-tiff"
    assert (info["width"], info["height"]) == (1536, 1024)
    assert info["levels"] == [{"width": 1536, "height": 1024, "downsample": 1.0},
                              {"width": 768, "height": 512, "downsample": 2.0},
                              {"width": 384, "height": 256, "downsample": 4.0}]
    assert info["mpp"] == [0.25, 0.25]
    assert info["planes_um"] == [-1.0, 0.0, 1.0]


def test_info_json_of_a_dicom_folder(dicom_zstack, capsys):
    assert main(["info", str(dicom_zstack[0]), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["format"] == "dicom" and info["planes_um"] == [-1.0, 0.0, 1.0]


def test_info_human_form_is_a_readable_summary(ome_zstack, capsys):
    assert main(["info", str(ome_zstack[0])]) == 0
    out = capsys.readouterr().out
    assert "format:   ome-tiff" in out
    assert "1536 x 1024 px" in out
    assert "3 at z = -1, +0, +1 µm" in out
    assert "[2] 384 x 256 px, downsample 4" in out


def test_snapshot_reads_the_nearest_plane(ome_zstack, tmp_path, capsys):
    path, expected = ome_zstack
    out = tmp_path / "snap.png"
    # z = 0.7 µm: nearest captured plane is +1 µm (index 2); level 1, region in level-0 px.
    assert main(["snapshot", str(path), "--level", "1", "--region", "200,100,300,150",
                 "--z", "0.7", "--out", str(out)]) == 0
    got = np.asarray(Image.open(out))
    assert np.array_equal(got, expected[1][2][50:200, 100:400])
    assert "plane 2" in capsys.readouterr().err


def test_snapshot_by_plane_index(ome_zstack, tmp_path):
    path, expected = ome_zstack
    out = tmp_path / "p0.png"
    assert main(["snapshot", str(path), "--region", "0,0,64,64", "--plane", "0", "--out", str(out)]) == 0
    assert np.array_equal(np.asarray(Image.open(out)), expected[0][0][:64, :64])


@pytest.mark.parametrize("name", ["missing", "zero_bytes", "empty_directory", "text_as_svs",
                                  "truncated_svs", "absurd_dimensions", "symlink_loop",
                                  "path_under_file"])
def test_info_on_bad_input_exits_2_with_one_line(bad_corpus, name, capsys):
    path = bad_corpus[name]
    assert main(["info", str(path), "--json"]) == 2
    err = one_error_line(capsys)
    assert str(path) in err


def test_snapshot_of_a_corrupt_tile_exits_2_with_one_line(bad_corpus, tmp_path, capsys):
    path = bad_corpus["corrupt_tile"]
    assert main(["snapshot", str(path), "--region", "0,0,128,128", "--out", str(tmp_path / "x.png")]) == 2
    assert str(path) in one_error_line(capsys)


@pytest.mark.parametrize("args, message", [
    (["--region", "1,2,3"], "X,Y,W,H"),
    (["--region", "0,0,0,10"], "positive"),
    (["--region", "0,0,10,10", "--level", "7"], "level 7 does not exist"),
    (["--region", "0,0,10,10", "--plane", "5"], "plane 5 does not exist"),
])
def test_snapshot_bad_arguments_exit_2(ome_zstack, tmp_path, capsys, args, message):
    argv = ["snapshot", str(ome_zstack[0]), *args, "--out", str(tmp_path / "x.png")]
    assert main(argv) == 2
    assert message in one_error_line(capsys)
