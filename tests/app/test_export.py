"""File ▸ Export all-in-focus snapshot of the view: the visible region of the real built-in slide,
every place at its estimated best focus, written on a worker while the window stays responsive;
a slide it cannot be made for gives the error dialog, and the window stays up."""
import numpy as np
from PIL import Image

from engine.slides.array import ArraySlide


def test_the_view_is_exported_all_in_focus_as_the_engine_makes_it(window, qtbot, tmp_path):
    from engine.export.all_in_focus import all_in_focus_region

    task = window.open_path(None)
    qtbot.waitUntil(task.done, timeout=60000)
    window.canvas.set_view_rect(20000, 20000, 300, 200)
    assert window.aif_action.isEnabled()  # the built-in slide has three focal planes
    out = tmp_path / "view-aif.png"
    task = window.export_all_in_focus(out)
    assert window.jobs.isVisible() and "all-in-focus" in window.jobs.label.text()
    qtbot.waitUntil(task.done, timeout=180000)
    assert task.result() == out and window.error_dialog is None
    x, y, w, h = window.canvas.view_rect()
    got = np.asarray(Image.open(out))
    assert abs(got.shape[1] - w) <= 2 and abs(got.shape[0] - h) <= 2
    assert "wrote" in window.statusBar().currentMessage() and "all in focus" in window.statusBar().currentMessage()
    region = (int(x), int(y), got.shape[1], got.shape[0])
    np.testing.assert_array_equal(got, all_in_focus_region(window.slide, region).pixels)


def test_a_single_plane_slide_cannot_be_exported_all_in_focus_and_says_why(window, qtbot, tmp_path):
    flat = np.full((600, 800, 3), 200, np.uint8)
    window.set_slide(ArraySlide([flat], mpp=(0.25, 0.25), path="flat.png"))
    # The menu offers it disabled, with the reason as its tooltip; called anyway, it says why.
    assert not window.aif_action.isEnabled() and "several focal planes" in window.aif_action.toolTip()
    window.aif_action.trigger()
    assert window.error_dialog is None
    task = window.export_all_in_focus(tmp_path / "x.png")
    qtbot.waitUntil(task.done, timeout=30000)
    assert task.result() is None
    assert window.error_dialog is not None and window.error_dialog.isVisible()
    assert "at least 2 focal planes" in window.error_dialog.text()
    assert not (tmp_path / "x.png").exists() and window.isVisible()
