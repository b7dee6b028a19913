"""File ▸ Import / Export focus map… and Paint ▸ Focus everything in the real window: files
written through the engine's exchange reopen as the same map; a bad file is one line naming it
in the error dialog and never replaces the map being painted; the best-focus fill runs as a job."""
import json

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from engine.focusmap.exchange import import_focus_map

from .paint_helpers import drag


@pytest.fixture
def painted(window, stack, qtbot, monkeypatch, tmp_path):  # noqa: F811
    monkeypatch.setenv("FINEFOCUS_DATA_DIR", str(tmp_path / "data"))
    window.set_slide(stack)
    window.canvas.set_view_rect(100, 100, 300, 200)
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window)
    qtbot.keyClick(window, Qt.Key.Key_B)
    window.paint.panel.depth_um.setValue(0.7)
    drag(window.canvas, [(150, 150), (350, 250)])
    assert window.paint.map.painted.any()
    return window


def _finish(qtbot, task):
    qtbot.waitUntil(task.done, timeout=120000)
    return task.result()


@pytest.mark.parametrize("suffix", [".tiff", ".geojson"])
def test_export_then_import_gives_the_same_map(painted, qtbot, tmp_path, suffix):
    w, paint = painted, painted.paint
    out = tmp_path / f"map{suffix}"
    assert _finish(qtbot, paint.exchange.export_to(out)) == out and out.exists()
    assert str(out) in w.statusBar().currentMessage()
    values = paint.map.values.copy()
    reread = import_focus_map(out, w.slide.dimensions, stride=paint.map.stride)
    if suffix == ".tiff":
        np.testing.assert_array_equal(reread.values, values)
    else:  # GeoJSON quantises depths (engine.focusmap.geojson.GEOJSON_STEP_UM)
        assert (np.isfinite(reread.values) == np.isfinite(values)).all()
        assert np.nanmax(np.abs(reread.values - values)) <= 0.06
    assert paint.clear() and not paint.map.painted.any()
    assert _finish(qtbot, paint.exchange.import_from(out)) == out
    np.testing.assert_array_equal(paint.map.values, reread.values)
    assert paint.map.can_undo
    qtbot.keyClick(w, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)   # the import is one undo step
    assert not paint.map.painted.any()


@pytest.mark.parametrize("content", [b"{not json", json.dumps({"type": "FeatureCollection", "features": [
    {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1e12, 0], [0, 1e12], [0, 0]]]},
     "properties": {"focus_um": "deep"}}]}).encode()])
def test_a_bad_file_is_one_line_and_the_map_stays(painted, qtbot, tmp_path, content):
    w, paint = painted, painted.paint
    bad = tmp_path / "bad.geojson"
    bad.write_bytes(content)
    values, version = paint.map.values.copy(), paint.map.version
    assert _finish(qtbot, paint.exchange.import_from(bad)) is None
    text = w.error_dialog.text()
    assert str(bad) in text and "\n" not in text
    assert paint.map.version == version
    np.testing.assert_array_equal(paint.map.values, values)


def test_an_unwritable_export_is_an_error_naming_the_file(painted, qtbot, tmp_path):
    w, paint = painted, painted.paint
    out = tmp_path / "no-such-folder" / "map.tiff"
    assert _finish(qtbot, paint.exchange.export_to(out)) is None
    assert str(out) in w.error_dialog.text() and not out.exists()


@pytest.mark.slow
def test_focus_everything_fills_the_map_from_the_best_focus_on_a_worker(painted, qtbot):
    w, paint = painted, painted.paint
    before = paint.map.values.copy()
    assert paint.auto_region() == (0, 0, *w.slide.dimensions)     # a small slide: all of it
    qtbot.keyClick(w, Qt.Key.Key_F, Qt.KeyboardModifier.ShiftModifier)
    task = paint._job
    assert task is not None and w.jobs.isVisible()
    assert _finish(qtbot, task) == (0, 0, *w.slide.dimensions)
    fm = paint.map
    assert fm.painted.sum() > before[np.isfinite(before)].size       # more than the stroke
    lo, hi = min(w.slide.planes_um) - 1, max(w.slide.planes_um) + 1
    assert np.nanmin(fm.values) >= lo and np.nanmax(fm.values) <= hi
    assert "best focus" in w.statusBar().currentMessage()
    qtbot.keyClick(w, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)   # one undo step
    np.testing.assert_array_equal(fm.values, before)
