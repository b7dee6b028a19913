"""`finefocus export aif | refocus | depthmap` through the CLI: a real z-stack file exported,
Ctrl-C (SIGINT) sent to a real export subprocess after its first tile leaves no output file and a
partial export that `--resume` finishes to the same pixels, computing only the missing tiles;
bad input is one error line naming the file and the reason."""
import json
import os
import re
import signal
import subprocess
import sys

import numpy as np
import pytest
import tifffile

from engine.cli import main
from engine.focusmap import FocusMap
from engine.export.whole_slide import partial_paths
from tests import slide_files
from tests.cli import one_error_line
from tests.paths import REPO
from tests.zstack_files import write_imagej_rgb

TILE = "64"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    return str(write_imagej_rgb(tmp_path_factory.mktemp("stack") / "stack.tif", n_planes=4, size=(384, 256))[0])


def _level0(path):
    with tifffile.TiffFile(path) as tif:
        return tif.series[0].levels[0].asarray()


def test_refocus_export_reports_progress_and_writes_the_file(tmp_path, capsys):
    small, _ = write_imagej_rgb(tmp_path / "small.tif", n_planes=3, size=(256, 64))    # one block
    out = tmp_path / "r.ome.tiff"
    assert main(["export", "refocus", str(small), "--z", "0.3", "--out", str(out), "--tile", TILE]) == 0
    err = capsys.readouterr().err
    assert "export refocus: tiles 0/4 (0%)" in err and "tiles 4/4 (100%)" in err
    assert re.search(r"wrote .*r\.ome\.tiff: 256x64 px, 3 levels, 0\.25 µm/px, refocused at z = \+0\.3 µm; "
                     r"4 tiles computed", err), err
    assert _level0(out).shape == (64, 256, 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.ome.tiff", "small.tif"]


@pytest.fixture(scope="module")
def strip(tmp_path_factory):
    """1280 × 32 px at 0.25 µm/px: three of the model's 512-px blocks, one 512-px tile each (so
    every tile takes an encode: a Ctrl-C after the first lands while the second is computed)."""
    return str(write_imagej_rgb(tmp_path_factory.mktemp("strip") / "strip.tif", n_planes=3, size=(1280, 32))[0])


def test_ctrl_c_stops_between_tiles_and_resume_finishes_with_the_same_pixels(strip, tmp_path, capsys):
    import pty

    full = tmp_path / "full.ome.tiff"
    argv = ["export", "refocus", strip, "--z", "0.25", "--tile", "512", "--out"]
    assert main(argv + [str(full), "--quiet"]) == 0
    out = tmp_path / "cut.ome.tiff"
    master, slave = pty.openpty()               # a terminal: every finished tile is reported at once
    proc = subprocess.Popen([sys.executable, "-m", "engine", *argv, str(out)], cwd=REPO, stderr=slave,
                            stdout=subprocess.DEVNULL)
    os.close(slave)
    seen, sent = "", False
    while True:
        try:
            chunk = os.read(master, 4096).decode()
        except OSError:                         # the terminal closed: the process has ended
            break
        if not chunk:
            break
        seen += chunk
        if not sent and "tiles 1/3" in seen:    # after the first tile: the next block is still to encode
            proc.send_signal(signal.SIGINT)
            sent = True
    os.close(master)
    assert proc.wait(timeout=120) == 130, seen
    assert sent and "stopping after the current tile" in seen and "--resume" in seen, seen
    data, sidecar = partial_paths(out)
    assert not out.exists() and not out.with_name(out.name + ".part").exists()
    done = len(json.loads(sidecar.read_text())["tiles"])
    assert data.exists() and 1 <= done < 3, seen
    capsys.readouterr()
    assert main(argv + [str(out), "--resume"]) == 0
    err = capsys.readouterr().err
    assert f"{3 - done} tiles computed" in err and f"{done} reused from the interrupted export" in err, err
    assert np.array_equal(_level0(out), _level0(full))
    assert not data.exists() and not sidecar.exists()


def test_aif_export_of_a_region_saves_the_focus_map_it_rendered(stack, tmp_path, capsys):
    out, fm = tmp_path / "aif.ome.tiff", tmp_path / "map.npz"
    assert main(["export", "aif", stack, "--region", "64,32,256,192", "--out", str(out), "--tile", "128",
                 "--save-focus-map", str(fm), "--quiet"]) == 0
    assert "all in focus" in capsys.readouterr().err
    assert _level0(out).shape == (192, 256, 3)
    assert FocusMap.load(fm).painted.any()
    # the saved map, rendered by `export refocus --focus-map`, is the same all-in-focus image
    again = tmp_path / "mapped.ome.tiff"
    assert main(["export", "refocus", stack, "--focus-map", str(fm), "--region", "64,32,256,192", "--out", str(again),
                 "--tile", "128", "--quiet"]) == 0
    assert np.array_equal(_level0(again), _level0(out))


def test_depthmap_export_is_float32(stack, tmp_path, capsys):
    out = tmp_path / "depth.tiff"
    assert main(["export", "depthmap", stack, "--out", str(out), "--quiet"]) == 0
    assert "best-focus z in µm" in capsys.readouterr().err
    assert _level0(out).dtype == np.float32


def test_bad_input_is_one_line_naming_the_file_and_reason(stack, tmp_path, capsys):
    svs, _ = slide_files.write_svs_like(tmp_path / "flat.svs", size=(512, 384))
    missing = tmp_path / "nope.svs"
    cases = [
        (["export", "aif", str(missing), "--out", str(tmp_path / "a.ome.tiff")], ("nope.svs",)),
        (["export", "aif", str(svs), "--out", str(tmp_path / "a.ome.tiff")], ("flat.svs", "1 focal plane")),
        (["export", "depthmap", str(svs), "--out", str(tmp_path / "d.ome.tiff")], ("flat.svs", "1 focal plane")),
        (["export", "refocus", stack, "--z", "1", "--out", str(tmp_path / "r.png")], ("r.png", ".ome.tiff")),
        (["export", "refocus", stack, "--z", "1", "--out", str(tmp_path / "no" / "r.ome.tiff")],
         ("r.ome.tiff", "does not exist")),
        (["export", "refocus", stack, "--z", "1", "--region", "1,2,3", "--out", str(tmp_path / "r.ome.tiff")],
         ("--region",)),
        (["export", "depthmap", stack, "--compression", "jpeg", "--out", str(tmp_path / "d.ome.tiff")],
         ("d.ome.tiff", "jpeg")),
    ]
    for argv, words in cases:
        capsys.readouterr()
        assert main(argv) == 2, argv
        one_error_line(capsys, *words)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["flat.svs"]


def test_an_unwritable_output_is_named(stack, capsys):
    target = "/sys/finefocus-export-test.ome.tiff"      # sysfs: no new files, even for root
    try:
        open(target + ".partial", "wb").close()
    except OSError:
        pass
    else:
        os.unlink(target + ".partial")
        pytest.skip("/sys is writable here")
    assert main(["export", "refocus", stack, "--z", "1", "--out", target]) == 2
    one_error_line(capsys, target, "cannot write")


def test_a_resume_of_another_export_is_refused(stack, tmp_path, capsys):
    out = tmp_path / "x.ome.tiff"
    data, sidecar = partial_paths(out)
    assert main(["export", "refocus", stack, "--z", "1", "--out", str(out), "--tile", TILE, "--quiet"]) == 0
    sidecar.write_text(json.dumps({"format": "finefocus-export-partial-1", "header": {"kind": "aif"},
                                   "end": 0, "tiles": {}}))
    data.write_bytes(b"")
    capsys.readouterr()
    assert main(["export", "refocus", stack, "--z", "1", "--out", str(out), "--quiet"]) == 2
    one_error_line(capsys, "x.ome.tiff.partial", "--resume")
    assert main(["export", "refocus", stack, "--z", "1", "--out", str(out), "--quiet", "--resume"]) == 2
    one_error_line(capsys, "x.ome.tiff.partial.json", "different export", "kind")


def test_progress_lines_give_done_total_and_an_eta_from_this_runs_tiles(monkeypatch):
    import io

    from engine.cli import export_commands

    clock = iter([0.0, 10.0, 20.0, 22.0, 26.0, 30.0])
    monkeypatch.setattr(export_commands.time, "monotonic", lambda: next(clock))
    stream = io.StringIO()
    report = export_commands.ExportProgress("export aif", stream, every_s=5.0)
    report("tiles", 40, 100)            # resumed: 40 tiles taken over, not counted in the rate
    report("tiles", 50, 100)            # 10 tiles in 10 s
    report("tiles", 60, 100)
    report("tiles", 60, 100)            # 2 s after the last line: not shown
    report("tiles", 61, 100)            # 6 s after: shown
    report("pyramid", 0, 0)             # an empty stage prints nothing
    lines = stream.getvalue().splitlines()
    assert lines[0] == "export aif: tiles 40/100 (40%)"
    assert lines[1] == "export aif: tiles 50/100 (50%), 1.00 s each, ETA 0:00:50"
    assert lines[2] == "export aif: tiles 60/100 (60%), 1.00 s each, ETA 0:00:40"
    assert lines[3].startswith("export aif: tiles 61/100 (61%), 1.24 s each, ETA 0:00:48")
    assert len(lines) == 4
