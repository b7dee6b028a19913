"""The canvas shows a slide's exact pixels at the level that fits the zoom, pans and zooms over
the tile store, steps focal planes, and never blocks while tiles are read."""
import numpy as np
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication

from engine.tiles import tile_bounds

from ..engine.tiles.slides import CountingSlide
from .conftest import gradient_planes


def slide_pixels(slide, req):
    lx, ly, w, h = tile_bounds(slide, req.level, req.col, req.row, req.tile_size)
    ds = slide.levels[req.level].downsample
    return slide.read_region(req.level, int(lx * ds), int(ly * ds), w, h, req.plane)


def assert_view_shows_slide(canvas, slide, plane):
    """Every tile item of the current level shows exactly the slide's pixels of ``plane``."""
    shown = canvas.visible_tiles()
    assert shown, "no tiles on screen"
    for (level, col, row), (req, pixels, exact) in shown.items():
        assert exact and req.plane == plane
        np.testing.assert_array_equal(pixels, slide_pixels(slide, req))


def settle(qtbot, canvas):
    qtbot.waitUntil(canvas.is_settled, timeout=10000)


def test_a_new_slide_is_fitted_and_shown_with_its_own_pixels(window, qtbot, zstack):
    window.set_slide(zstack)
    canvas = window.canvas
    settle(qtbot, canvas)
    x, y, w, h = canvas.view_rect()
    assert x <= 0 and y <= 0 and x + w >= 3000 and y + h >= 2000  # whole slide in view
    assert canvas.level > 0  # a fitted 3000 px slide in a ~700 px canvas uses a coarse level
    assert_view_shows_slide(canvas, zstack, plane=1)  # opened at z = 0 µm


def test_zooming_in_switches_to_a_finer_level_with_exact_pixels(window, qtbot, zstack):
    window.set_slide(zstack)
    canvas = window.canvas
    settle(qtbot, canvas)
    coarse = canvas.level
    canvas.zoom(8.0, center=(1500, 1000))
    settle(qtbot, canvas)
    assert canvas.level < coarse
    x, y, w, h = canvas.view_rect()
    assert abs(x + w / 2 - 1500) < 1 and abs(y + h / 2 - 1000) < 1
    assert_view_shows_slide(canvas, zstack, plane=1)
    # Only tiles of the view (plus the coarsest level's backdrop) stay alive.
    assert canvas.layer.item_count() <= 2 * len(canvas.layer._current) + 8


def test_the_mouse_wheel_zooms_about_the_cursor(window, qtbot, zstack):
    window.set_slide(zstack)
    canvas = window.canvas
    settle(qtbot, canvas)
    before = canvas.view_rect()
    vp = canvas.viewport()
    pos = QPointF(vp.width() / 2, vp.height() / 2)
    event = QWheelEvent(pos, vp.mapToGlobal(pos), QPoint(0, 0), QPoint(0, 120 * 4),
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier,
                        Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(vp, event)
    qtbot.waitUntil(lambda: canvas.view_rect()[2] < before[2] * 0.9, timeout=5000)
    settle(qtbot, canvas)
    assert_view_shows_slide(canvas, zstack, plane=1)


def test_dragging_with_the_mouse_pans_and_loads_the_new_tiles(window, qtbot, zstack):
    window.set_slide(zstack)
    canvas = window.canvas
    canvas.set_view_rect(1000, 600, 400, 300)
    settle(qtbot, canvas)
    assert canvas.level == 0
    x0, y0, _, _ = canvas.view_rect()
    vp = canvas.viewport()
    start = QPoint(vp.width() // 2, vp.height() // 2)
    qtbot.mousePress(vp, Qt.MouseButton.LeftButton, pos=start)
    for step in range(1, 11):
        qtbot.mouseMove(vp, start - QPoint(30 * step, 0))
    qtbot.mouseRelease(vp, Qt.MouseButton.LeftButton, pos=start - QPoint(300, 0))
    qtbot.waitUntil(lambda: canvas.view_rect()[0] > x0 + 50, timeout=5000)
    settle(qtbot, canvas)
    assert abs(canvas.view_rect()[1] - y0) < 1  # a horizontal drag keeps y
    assert_view_shows_slide(canvas, zstack, plane=1)


def test_panning_by_api_moves_the_view_by_level0_pixels(window, qtbot, zstack):
    window.set_slide(zstack)
    canvas = window.canvas
    canvas.set_view_rect(0, 0, 600, 400)
    settle(qtbot, canvas)
    x0, y0, w, h = canvas.view_rect()
    canvas.pan(1200, 500)
    x1, y1, _, _ = canvas.view_rect()
    assert abs(x1 - x0 - 1200) < 1e-6 and abs(y1 - y0 - 500) < 1e-6
    settle(qtbot, canvas)
    assert_view_shows_slide(canvas, zstack, plane=1)


def test_stepping_planes_shows_that_planes_pixels(window, qtbot, zstack):
    window.set_slide(zstack)
    canvas = window.canvas
    canvas.set_view_rect(800, 500, 900, 600)
    settle(qtbot, canvas)
    assert window.focus.plane == 1 and canvas.plane == 1  # opened at the nominal z = 0 µm
    assert "z = 0 µm" in window.focus.label.text()
    before = canvas.grab().toImage()
    qtbot.keyClick(window, Qt.Key.Key_PageDown)
    assert window.focus.plane == 0 and canvas.plane == 0
    assert "-1.00 µm" in window.focus.label.text()
    settle(qtbot, canvas)
    assert_view_shows_slide(canvas, zstack, plane=0)
    assert canvas.grab().toImage() != before  # what is on screen changed too
    qtbot.keyClick(window, Qt.Key.Key_PageUp)
    settle(qtbot, canvas)
    assert_view_shows_slide(canvas, zstack, plane=1)
    qtbot.keyClick(window, Qt.Key.Key_PageUp)
    settle(qtbot, canvas)
    assert "+1.50 µm" in window.focus.label.text()
    assert_view_shows_slide(canvas, zstack, plane=2)
    qtbot.keyClick(window, Qt.Key.Key_PageUp)  # already at the top plane: stays
    assert canvas.plane == 2
    for _ in range(2):
        qtbot.keyClick(window, Qt.Key.Key_PageDown)
    settle(qtbot, canvas)
    assert_view_shows_slide(canvas, zstack, plane=0)


def test_the_window_stays_responsive_while_slow_tiles_load(window, qtbot):
    """Tiles held at a gate: the UI shows the slide at once (no frozen thread), and a newer
    view cancels the queued tiles of the old one."""
    slide = CountingSlide(gradient_planes(2048, 2048, 1))
    slide.gate.clear()
    window.set_slide(slide)
    canvas = window.canvas
    qtbot.waitUntil(lambda: canvas.layer.item_count() > 0, timeout=5000)
    assert not canvas.is_settled()
    for k in range(6):  # pan around while the worker is stuck
        canvas.set_view_rect(300 * k, 300 * k, 300, 300)
        canvas.refresh()  # returns at once: nothing on the UI thread waits for the worker
    assert window.store.stats.cancelled > 0
    slide.gate.set()
    settle(qtbot, canvas)
    assert_view_shows_slide(canvas, slide, plane=0)


def test_coarse_pixels_stand_in_until_the_fine_tiles_arrive(window, qtbot):
    slide = CountingSlide(gradient_planes(2048, 2048, 1))
    window.set_slide(slide)
    canvas = window.canvas
    settle(qtbot, canvas)  # the fitted, coarse level is cached now
    slide.gate.clear()
    canvas.zoom(8.0)
    canvas.refresh()
    shown = canvas.visible_tiles()
    assert shown and all(not exact for _, _, exact in shown.values())
    assert any(px is not None for _, px, _ in shown.values())  # stand-ins drawn at once
    slide.gate.set()
    settle(qtbot, canvas)
    assert_view_shows_slide(canvas, slide, plane=0)


def test_zoom_in_past_the_limit_never_zooms_out(window, qtbot, zstack):
    window.set_slide(zstack)
    canvas = window.canvas
    canvas.set_view_rect(100, 100, 20, 15)  # far past 16 screen px per slide px (the wheel allows it)
    before = canvas.view_rect()
    canvas.zoom(2.0)
    after = canvas.view_rect()
    assert after[2] <= before[2] * 1.0001


def test_a_new_slide_never_shows_the_old_slides_overview(window, qtbot, zstack):
    from engine.slides.array import ArraySlide

    window.set_slide(zstack)
    qtbot.waitUntil(lambda: window.overview.slide_size == zstack.dimensions, timeout=10000)
    other = ArraySlide([np.full((300, 500, 3), 200, np.uint8)])
    window.set_slide(other)
    assert window.overview.slide_size == other.dimensions  # at once, before its thumbnail loads
