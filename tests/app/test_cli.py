"""`finefocus`: the viewer commands on top of the engine's, with one-line errors and Qt loaded
only when a window is needed."""
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from app.cli import build_parser, main, viewer_argv
from tests.paths import REPO


@pytest.fixture
def ome_path(ome_zstack):
    return ome_zstack[0]


def finefocus(*args, timeout=120):
    env_code = "import sys; from app.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", env_code, *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout,
                          env={"QT_QPA_PLATFORM": "offscreen", "PATH": "/usr/bin:/bin", "HOME": str(REPO)})


def test_a_bare_path_or_nothing_means_the_viewer():
    commands = {"info", "snapshot", "view"}
    assert viewer_argv([], commands) == ["view"]
    assert viewer_argv(["slide.svs"], commands) == ["view", "slide.svs"]
    assert viewer_argv(["info", "slide.svs"], commands) == ["info", "slide.svs"]
    assert viewer_argv(["--help"], commands) == ["--help"]
    args = build_parser().parse_args(["view", "a.svs", "--screenshot", "o.png", "--z", "1.5"])
    assert args.path == "a.svs" and args.z == 1.5 and args.handler.__name__ == "view_command"


def test_view_screenshot_writes_a_png_of_the_painted_window(ome_path, tmp_path):
    out = tmp_path / "shot.png"
    run = finefocus("view", ome_path, "--screenshot", out, "--size", "800x600", "--z", "1")
    assert run.returncode == 0, run.stderr
    assert "painted in" in run.stdout
    img = np.asarray(Image.open(out).convert("RGB"))
    assert img.shape == (600, 800, 3)
    # The canvas (left of the side panel, between menu and focus bar) holds the file's textured
    # pixels: many distinct colours, not an empty grey view.
    canvas = img[60:400, 60:400]
    assert len(np.unique(canvas.reshape(-1, 3), axis=0)) > 1000


def test_a_bad_path_is_one_line_and_exit_2(tmp_path):
    empty = tmp_path / "empty.svs"
    empty.write_bytes(b"")
    run = finefocus("view", empty, "--screenshot", tmp_path / "never.png")
    assert run.returncode == 2
    assert run.stderr.strip().count("\n") == 0 and "empty.svs" in run.stderr
    assert "Traceback" not in run.stderr
    assert not (tmp_path / "never.png").exists()


def test_a_bad_bare_path_fails_before_any_window(tmp_path, capsys):
    assert main([str(tmp_path / "missing.svs")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "missing.svs" in err


def test_headless_commands_never_import_qt(ome_path):
    code = ("import sys; from app.cli import main; rc = main(['info', sys.argv[1], '--json']); "
            "print('QT' if any(m.startswith(('PySide6', 'pyqtgraph', 'qasync')) for m in sys.modules) "
            "else 'NO-QT', file=sys.stderr); sys.exit(rc)")
    run = subprocess.run([sys.executable, "-c", code, str(ome_path)], cwd=REPO, capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert '"planes_um"' in run.stdout and run.stderr.strip().endswith("NO-QT")


def test_a_screenshot_that_cannot_be_written_is_one_line_and_exit_2(ome_path, tmp_path):
    folder = tmp_path / "shot.png"
    folder.mkdir()
    run = finefocus("view", ome_path, "--screenshot", folder, "--size", "400x300")
    assert run.returncode == 2, run.stderr
    errors = [line for line in run.stderr.splitlines() if line.startswith("finefocus")]  # (Qt's offscreen notes aside)
    assert len(errors) == 1 and "shot.png" in errors[0] and "it is a folder" in errors[0]
    assert "Traceback" not in run.stderr
