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


def test_snapshot_at_a_captured_planes_z_reads_that_plane(ome_zstack, tmp_path, capsys):
    path, expected = ome_zstack
    out = tmp_path / "snap.png"
    # z = +1 µm is captured plane 2; level 1, region in level-0 px.
    assert main(["snapshot", str(path), "--level", "1", "--region", "200,100,300,150",
                 "--z", "1", "--out", str(out)]) == 0
    got = np.asarray(Image.open(out))
    assert np.array_equal(got, expected[1][2][50:200, 100:400])
    assert "plane 2" in capsys.readouterr().err


def test_snapshot_off_the_planes_refocuses_as_the_viewer_does(ome_zstack, tmp_path, capsys):
    from engine.refocus.refocused_slide import RefocusedSlide
    from engine.slides import open_slide

    path, expected = ome_zstack
    for level, z in ((1, 0.7), (0, 0.4)):
        out = tmp_path / f"z{level}.png"
        assert main(["snapshot", str(path), "--level", str(level), "--region", "200,100,96,80",
                     "--z", str(z), "--out", str(out)]) == 0
        got = np.asarray(Image.open(out))
        with open_slide(path) as slide:
            want = RefocusedSlide(slide, z).read_region(level, 200, 100, 96, 80)
        np.testing.assert_array_equal(got, want)
        lv = 2 ** level
        assert not np.array_equal(got, expected[level][2][100 // lv:100 // lv + 80, 200 // lv:200 // lv + 96])
        assert f"z = +{z:g} µm" in capsys.readouterr().err


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


#: The built-in virtual slide (80 000 × 60 000 px, planes at −1, 0, +1 µm) and a region of tissue.
PHANTOM, REGION = "phantom:", "20000,20000,600,500"


def test_all_in_focus_snapshot_and_its_focus_map_reused(tmp_path, capsys):
    out, fmap = tmp_path / "aif.png", tmp_path / "aif.npz"
    assert main(["snapshot", PHANTOM, "--region", REGION, "--all-in-focus",
                 "--save-focus-map", str(fmap), "--out", str(out)]) == 0
    assert "all in focus (best focus" in capsys.readouterr().err
    aif = np.asarray(Image.open(out))
    assert aif.shape == (500, 600, 3)
    from engine.focusmap import FocusMap

    fm = FocusMap.load(fmap, size=(80_000, 60_000))
    rows, cols = np.nonzero(fm.painted)
    # exactly the cells centred in the region (tissue here: every one of them)
    assert (rows.min() + 0.5) * 32 >= 20000 and (rows.max() + 0.5) * 32 < 20500
    assert (cols.min() + 0.5) * 32 >= 20000 and (cols.max() + 0.5) * 32 < 20600
    assert rows.size == 16 * 19
    depths = fm.values[fm.painted]
    assert depths.min() >= -1.0 - 1e-6 and depths.max() <= 1.0 + 1e-6 and depths.std() > 0
    again = tmp_path / "again.png"
    assert main(["snapshot", PHANTOM, "--region", REGION, "--focus-map", str(fmap),
                 "--out", str(again)]) == 0
    np.testing.assert_array_equal(np.asarray(Image.open(again)), aif)
    plane = tmp_path / "plane.png"
    assert main(["snapshot", PHANTOM, "--region", REGION, "--z", "0",
                 "--out", str(plane)]) == 0
    assert not np.array_equal(np.asarray(Image.open(plane)), aif)


def test_focus_map_mistakes_exit_2_with_one_line(tmp_path, capsys):
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"no map here")
    other = tmp_path / "other.npz"
    from engine.focusmap import FocusMap

    FocusMap(100, 100).save(other)
    cases = [
        (["--focus-map", str(junk)], str(junk)),
        (["--focus-map", str(other)], "made for a 100 × 100 px slide"),
        (["--z", "0", "--save-focus-map", str(tmp_path / "m.npz")], "--save-focus-map goes with --all-in-focus"),
        (["--all-in-focus", "--level", "1"], "--all-in-focus reads level 0"),
        (["--all-in-focus", "--save-focus-map", str(tmp_path / "m.txt")], "must name a .npz file"),
    ]
    for args, words in cases:
        argv = ["snapshot", PHANTOM, "--region", "0,0,64,64", *args, "--out", str(tmp_path / "x.png")]
        assert main(argv) == 2, args
        assert words in one_error_line(capsys), args


def test_all_in_focus_of_a_single_plane_slide_says_why_not(tmp_path, capsys):
    flat = tmp_path / "flat.ome.tiff"
    assert main(["phantom", "write", str(flat), "--seed", "4", "--size", "300", "300", "--planes", "1"]) == 0
    capsys.readouterr()
    assert main(["snapshot", str(flat), "--region", "0,0,64,64", "--all-in-focus",
                 "--out", str(tmp_path / "x.png")]) == 2
    assert "at least 2 focal planes" in one_error_line(capsys)
