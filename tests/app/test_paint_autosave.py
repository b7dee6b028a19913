"""The focus map's autosave in the real app: strokes painted through the real tools in a viewer
process survive SIGKILL after an autosave and come back when the slide is reopened in a new
process; in this process, the save on close, the restore message and a damaged autosave."""
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from app.window import MainWindow
from engine.focusmap.autosave import FocusMapAutosave
from engine.slides.array import ArraySlide
from engine.tiles import TileStore

from .paint_helpers import drag

ROOT = Path(__file__).resolve().parents[2]


def _viewer(mode: str, out: Path, data: Path) -> subprocess.Popen:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "FINEFOCUS_DATA_DIR": str(data)}
    return subprocess.Popen([sys.executable, "-m", "tests.app.paint_process", mode, str(out)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _line(proc: subprocess.Popen, word: str) -> str:
    for line in proc.stdout:
        if line.startswith(word):
            return line.strip()
    proc.wait(timeout=30)
    raise AssertionError(f"the viewer ended (code {proc.returncode}) without saying {word!r}: {proc.stderr.read()[-3000:]}")


@pytest.mark.slow
def test_strokes_before_the_last_autosave_survive_sigkill(tmp_path):
    data = tmp_path / "data"
    painter = _viewer("paint", tmp_path / "painted.npy", data)
    try:
        said = _line(painter, "saved")
    finally:
        painter.send_signal(signal.SIGKILL)
        painter.wait(timeout=30)
    assert painter.returncode == -signal.SIGKILL
    version, strokes = map(int, said.split()[1:])
    assert version == strokes == 3
    painted = np.load(tmp_path / "painted.npy")
    assert np.isfinite(painted).sum() > 100
    assert len(list((data / "focusmaps").glob("*.npz"))) == 1       # in the data folder, one per slide
    reader = _viewer("report", tmp_path / "restored.npy", data)
    try:
        said = _line(reader, "restored")
        reader.wait(timeout=60)
    finally:
        if reader.poll() is None:
            reader.kill()
    assert "restored your focus map from" in said
    restored = np.load(tmp_path / "restored.npy")
    np.testing.assert_array_equal(restored, painted)
    # Each stroke's depth is where it was painted (cells of 32 px).
    for depth in (0.8, -0.6, 1.4):
        assert np.any(np.isclose(restored, depth)), depth
    assert restored[2000 // 32, 2000 // 32] == pytest.approx(0.8)
    assert restored[3200 // 32, 2250 // 32] == pytest.approx(-0.6)
    assert restored[3200 // 32, 3900 // 32] == pytest.approx(1.4)


@pytest.fixture
def keyed_slide(tmp_path):
    """A small slide with a file path (so it has an autosave key), 1024 × 768 px, 2 planes."""
    from .conftest import gradient_planes

    f = tmp_path / "slide.tif"
    f.write_bytes(b"stand-in")
    return ArraySlide(gradient_planes(1024, 768, 2), planes_um=[0.0, 1.0], mpp=(0.25, 0.25), path=str(f))


def _new_window(qtbot, settings):
    w = MainWindow(store=TileStore(workers=2), settings=settings)
    qtbot.addWidget(w)
    w.resize(900, 650)
    w.show()
    qtbot.waitExposed(w)
    w.activateWindow()                  # the tools' single-key shortcuts act in the active window
    qtbot.waitUntil(lambda: QApplication.activeWindow() is w)
    return w


def test_closing_saves_and_reopening_restores_with_a_message(qtbot, qt_loop, settings, keyed_slide, tmp_path,
                                                              monkeypatch):
    monkeypatch.setenv("FINEFOCUS_DATA_DIR", str(tmp_path / "data"))
    w = _new_window(qtbot, settings)
    w.set_slide(keyed_slide)
    assert w.paint.autosaver.autosave is not None
    path = w.paint.autosaver.autosave.path
    assert path.parent == tmp_path / "data" / "focusmaps"
    w.canvas.set_view_rect(100, 100, 400, 300)
    qtbot.keyClick(w, Qt.Key.Key_B)
    drag(w.canvas, [(200, 200), (300, 220)])
    values = w.paint.map.values.copy()
    assert w.paint.map.version == 1 and np.isfinite(values).any()
    w.close()                                      # saves before the clean-up
    assert path.exists()
    w2 = _new_window(qtbot, settings)
    w2.set_slide(keyed_slide)
    assert "restored your focus map from" in w2.statusBar().currentMessage()
    np.testing.assert_array_equal(w2.paint.map.values, values)
    assert w2.paint.map.default_um == w2.focus.z_um    # unpainted places follow the knob
    w2.close()


def test_a_damaged_autosave_is_reported_and_set_aside(qtbot, qt_loop, settings, keyed_slide, tmp_path, monkeypatch):
    monkeypatch.setenv("FINEFOCUS_DATA_DIR", str(tmp_path / "data"))
    target = FocusMapAutosave(keyed_slide).path
    target.parent.mkdir(parents=True)
    target.write_bytes(b"PK\x03\x04 not really a zip")
    w = _new_window(qtbot, settings)
    w.set_slide(keyed_slide)
    message = w.statusBar().currentMessage()
    assert message.startswith("focus map autosave:") and str(target) in message and "moved aside" in message
    assert not w.paint.map.painted.any()
    assert list(target.parent.glob("*.damaged-*.npz"))
    w.close()
