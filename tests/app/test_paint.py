"""Painting a focus map in the real window: tools driven by mouse events on the canvas and by
their keys, the view rendered through the map (each tile equal to the engine's
`FocusMappedSlide` of that version), undo / redo, the layer, eraser, fill, smooth, clear."""
import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QMessageBox

from app.paint.controller import BRUSH, ERASER, FILL
from app.paint.mapped_source import MappedSource
from engine.focusmap import FocusMap
from engine.refocus.focus_mapped_slide import FocusMappedSlide

from .paint_helpers import drag
from .test_canvas import slide_pixels


@pytest.fixture
def painting(window, stack, monkeypatch, tmp_path, qtbot):
    monkeypatch.setenv("FINEFOCUS_DATA_DIR", str(tmp_path / "data"))
    window.set_slide(stack)
    window.canvas.set_view_rect(100, 100, 300, 200)
    window.activateWindow()             # the tools' single-key shortcuts act in the active window
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window)
    return window


def key(qtbot, window, k, mods=Qt.KeyboardModifier.NoModifier):
    qtbot.keyClick(window, k, mods)


def test_the_tools_have_single_keys_and_esc_goes_back_to_pan(painting, qtbot):
    w, paint = painting, painting.paint
    for k, tool in ((Qt.Key.Key_B, BRUSH), (Qt.Key.Key_E, ERASER), (Qt.Key.Key_F, FILL), (Qt.Key.Key_S, "smooth")):
        key(qtbot, w, k)
        assert paint.tool == tool and paint.input.active
    key(qtbot, w, Qt.Key.Key_Escape)
    assert paint.tool is None and not paint.input.active
    # No tool: a left drag pans as before and paints nothing.
    before = w.canvas.view_rect()
    drag(w.canvas, [(200, 200), (260, 230)])
    assert w.canvas.view_rect() != before and not paint.map.painted.any()
    dialog = paint.show_shortcuts()
    rows = dict(dialog.rows())
    for keys in ("B", "E", "F", "S", "Esc", "Ctrl+Z", "Ctrl+Shift+Z, Ctrl+Y", "M", "Shift+F"):
        assert keys in rows, keys
    assert rows["B"] == "Brush" and "Pan" in rows["Esc"]
    dialog.close()


@pytest.mark.slow
def test_a_stroke_paints_the_map_and_the_view_renders_through_it(painting, qtbot, stack):
    w, paint, canvas = painting, painting.paint, painting.canvas
    qtbot.waitUntil(canvas.is_settled, timeout=60000)
    assert canvas.level == 0 and canvas.source is stack and w.focus.on_plane   # z = 0, a plane
    key(qtbot, w, Qt.Key.Key_B)
    paint.panel.size_um.setValue(40)            # 40 µm: a radius of 80 level-0 px at 0.25 µm/px
    paint.panel.hardness.setValue(50)
    paint.panel.depth_um.setValue(1.0)
    assert paint.radius_px == pytest.approx(80)
    drag(canvas, [(180, 200), (240, 205), (300, 210)])
    fm = paint.map
    assert fm.version == 1 and fm.can_undo
    s = fm.stride
    # Cells within the hard core (40 px) of the path take the depth; cells beyond the radius stay unpainted.
    assert fm.values[200 // s, 240 // s] == pytest.approx(1.0)
    assert fm.values[205 // s, 300 // s] == pytest.approx(1.0)
    assert np.isnan(fm.values[200 // s, 500 // s]) and np.isnan(fm.values[600 // s, 240 // s])
    rim = fm.values[(205 + 70) // s, 240 // s]
    assert 0.0 < rim < 1.0                          # the soft edge
    assert paint.layer.image.isVisible() and paint.layer.box is not None
    # On a captured plane the view now renders through the map.
    src = canvas.source
    assert isinstance(src, MappedSource) and src.base is stack and src.focus_map.version == 1
    assert src.cache is w.radiance_cache()
    # The view's radiance stays protected, as for the knob (the same fields: decoder only).
    plan = w.refocus_view.plan
    assert plan is not None and plan.fits and w.refocus_view.source is src
    assert w.radiance_cache().protected == {src.radiance_key(bx, by) for bx, by in plan.blocks}
    qtbot.waitUntil(canvas.is_settled, timeout=180000)
    engine = FocusMappedSlide(stack, FocusMap(fm.width, fm.height, w.focus.z_um, fm.stride, fm.values.copy()),
                              cache=w.radiance_cache())
    shown = canvas.visible_tiles()
    assert shown
    for req, pixels, exact in shown.values():
        assert exact and req.slide_uid == src.uid
        np.testing.assert_array_equal(pixels, slide_pixels(engine, req))
    # A second stroke in another 128-µm block re-decodes only that block: the decoded block the
    # stroke did not reach is taken over from the previous version, pixel for pixel the same.
    canvas.set_view_rect(300, 100, 400, 250)          # blocks (0, 0), (1, 0) and those below, level 0
    qtbot.waitUntil(canvas.is_settled, timeout=300000)
    first = canvas.source
    blocks = set(first.decoded_blocks._entries)
    assert canvas.level == 0 and first is src and {(0, 0), (1, 0)} <= blocks
    drag(canvas, [(690, 150), (700, 150)])
    assert fm.version == 2
    second = canvas.source
    assert isinstance(second, MappedSource) and second.uid != first.uid and second.focus_map.version == 2
    qtbot.waitUntil(canvas.is_settled, timeout=300000)
    assert second.reused_blocks == len(blocks) - 1        # all but block (1, 0), which the stroke touched
    assert set(second.decoded_blocks._entries) == blocks
    engine = FocusMappedSlide(stack, FocusMap(fm.width, fm.height, w.focus.z_um, fm.stride, fm.values.copy()),
                              cache=w.radiance_cache())
    for req, pixels, exact in canvas.visible_tiles().values():
        assert exact and req.slide_uid == second.uid
        np.testing.assert_array_equal(pixels, slide_pixels(engine, req))
    # The superseded version's tiles are gone from the store.
    assert not any(getattr(k, "slide_uid", "").startswith(first.uid) for k in list(w.store.cache._entries))


def test_undo_and_redo_by_their_keys(painting, qtbot):
    w, paint = painting, painting.paint
    key(qtbot, w, Qt.Key.Key_B)
    paint.panel.depth_um.setValue(-1.0)
    drag(w.canvas, [(200, 200), (260, 200)])
    after = paint.map.values.copy()
    assert paint.map.painted.any() and paint.undo_action.isEnabled()
    key(qtbot, w, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert not paint.map.painted.any() and paint.redo_action.isEnabled()
    assert not isinstance(w.canvas.source, MappedSource) and w.canvas.source is w.slide   # nothing painted: the scan
    assert not paint.layer.image.isVisible()
    key(qtbot, w, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    np.testing.assert_array_equal(paint.map.values, after)
    assert isinstance(w.canvas.source, MappedSource) and paint.layer.image.isVisible()


def test_the_map_layer_toggles_and_so_does_rendering_through_it(painting, qtbot):
    w, paint = painting, painting.paint
    key(qtbot, w, Qt.Key.Key_B)
    drag(w.canvas, [(200, 200), (210, 200)])
    assert paint.layer.image.isVisible() and isinstance(w.canvas.source, MappedSource)
    legend = paint.panel.legend
    assert "µm" in legend.label and legend.value_range == (-3.0, 3.0)   # planes −1…+1 µm, ±2 µm beyond
    key(qtbot, w, Qt.Key.Key_M)
    assert not paint.layer.image.isVisible() and not paint.panel.show_map.isChecked()
    assert w.canvas.source is w.slide
    assert paint.map.painted.any()                  # hidden, not lost
    paint.panel.show_map.setChecked(True)
    assert paint.layer.image.isVisible() and paint.show_action.isChecked()
    assert isinstance(w.canvas.source, MappedSource)
    paint.panel.opacity.setValue(20)
    assert paint.layer.image.opacity() == pytest.approx(0.2)


def test_eraser_fill_smooth_and_clear(painting, qtbot):
    w, paint = painting, painting.paint
    fm, s = paint.map, paint.map.stride
    key(qtbot, w, Qt.Key.Key_F)
    paint.panel.depth_um.setValue(0.5)
    # A lasso: a triangle; cells centred inside take the depth, others not.
    drag(w.canvas, [(120, 120), (380, 120), (120, 280), (121, 121)])
    assert fm.version == 1
    assert fm.values[130 // s, 130 // s] == pytest.approx(0.5)
    assert np.isnan(fm.values[270 // s, 370 // s])
    # Shift: a rectangle.
    paint.panel.depth_um.setValue(-0.5)
    drag(w.canvas, [(300, 200), (390, 290)], modifiers=Qt.KeyboardModifier.ShiftModifier)
    assert fm.version == 2 and fm.values[270 // s, 370 // s] == pytest.approx(-0.5)
    # Smooth: painted cells under the brush move toward their painted neighbours.
    key(qtbot, w, Qt.Key.Key_S)
    paint.panel.size_um.setValue(30)
    edge = fm.values[(200 + s // 2) // s, (300 + s // 2) // s]
    drag(w.canvas, [(300, 200), (305, 200)])
    assert fm.version == 3
    smoothed = fm.values[(200 + s // 2) // s, (300 + s // 2) // s]
    assert edge == pytest.approx(-0.5) and -0.5 < smoothed < 0.5
    # Eraser.
    key(qtbot, w, Qt.Key.Key_E)
    paint.panel.size_um.setValue(20)
    drag(w.canvas, [(140, 140), (150, 140)])
    assert np.isnan(fm.values[140 // s, 140 // s]) and fm.version == 4
    # Clear asks first.
    box = paint.ask_clear()
    assert isinstance(box, QMessageBox) and fm.painted.any()
    box.button(QMessageBox.StandardButton.Cancel).click()
    assert fm.painted.any()
    box = paint.ask_clear()
    box.button(QMessageBox.StandardButton.Yes).click()
    qtbot.waitUntil(lambda: not fm.painted.any())
    assert w.canvas.source is w.slide
    key(qtbot, w, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert fm.painted.any()


def test_right_drag_and_space_drag_pan_while_a_tool_is_active(painting, qtbot):
    w, paint = painting, painting.paint
    key(qtbot, w, Qt.Key.Key_B)
    before = w.canvas.view_rect()
    drag(w.canvas, [(200, 200), (250, 220)], button=Qt.MouseButton.RightButton)
    after = w.canvas.view_rect()
    assert after[0] == pytest.approx(before[0] - 50, abs=2) and after[1] == pytest.approx(before[1] - 20, abs=2)
    assert not paint.map.painted.any()
    qtbot.keyPress(w.canvas, Qt.Key.Key_Space)
    drag(w.canvas, [(200, 200), (230, 200)])
    qtbot.keyRelease(w.canvas, Qt.Key.Key_Space)
    assert w.canvas.view_rect()[0] == pytest.approx(after[0] - 30, abs=2)
    assert not paint.map.painted.any()


def test_a_rendered_version_samples_the_map_exactly_as_the_engine():
    """`VersionedMap.z_region` reads only the cells around a region: the same values as
    `FocusMap.z_region` over the whole grid, inside, at the edges and beyond them."""
    from app.paint.mapped_source import versioned

    rng = np.random.default_rng(3)
    fm = FocusMap(1000, 700, 0.3)

    fm.values[:] = np.where(rng.random(fm.shape) < 0.5, rng.normal(0, 1, fm.shape), np.nan).astype(np.float32)
    v = versioned(fm, -0.4, "t")
    plain = FocusMap(fm.width, fm.height, -0.4, fm.stride, fm.values.copy())
    for x, y, w, h, ow, oh in [(0, 0, 1000, 700, 50, 35), (-64, -64, 576, 576, 144, 144), (517, 301, 97, 33, 97, 33),
                               (900, 650, 200, 100, 40, 20), (3.5, 7.25, 16, 16, 16, 16)]:
        np.testing.assert_array_equal(v.z_region(x, y, w, h, ow, oh), plain.z_region(x, y, w, h, ow, oh))
    assert v.frozen() is v and v.digest != versioned(fm, -0.3, "t").digest
