"""The fine-focus knob: a continuous z slider with the captured planes as ticks. Between, beyond
and (for a single-plane slide) without captured planes the window shows the slide refocused by
the shipped model; on a captured plane it shows the plane as scanned. A focus change after the
first only reruns the decoder on the cached radiance of the view."""
import numpy as np
import pytest
from PySide6.QtCore import Qt

from app.focus import FocusControl
from app.focus.focus_control import BEYOND_UM, FINE_STEP_UM
from engine.refocus.refocused_slide import RefocusedSlide

from .test_canvas import slide_pixels


def test_the_slider_is_continuous_with_a_tick_per_captured_plane(qtbot):
    fc = FocusControl()
    qtbot.addWidget(fc)
    fc.resize(600, 40)
    fc.set_planes((-1.0, 0.0, 1.5))
    assert fc.z_um == 0.0 and fc.plane == 1 and fc.on_plane and "plane 2/3" in fc.label.text()
    assert len(fc.slider.tick_values) == 3
    xs = [r.x() for r in fc.slider.tick_rects()]
    assert xs == sorted(xs) and xs[0] > 0 and (xs[1] - xs[0]) / (xs[2] - xs[1]) == pytest.approx(1 / 1.5, rel=0.05)
    got = []
    fc.zChanged.connect(got.append)
    fc.set_z(0.62)
    assert fc.z_um == pytest.approx(0.6) and not fc.on_plane and got == [fc.z_um]
    # Off the planes the label says the view is being refocused until the window reports it done.
    assert "z = +0.60 µm" in fc.label.text() and "refocusing…" in fc.label.text()
    fc.set_state("refocused")
    assert "refocused" in fc.label.text()
    fc.fine_up()
    assert fc.z_um == pytest.approx(0.6 + FINE_STEP_UM)
    fc.step_up()  # to the next captured plane above
    assert fc.z_um == 1.5 and fc.on_plane
    fc.set_z(99)  # clamped to the knob's travel beyond the planes
    assert fc.z_um == pytest.approx(1.5 + BEYOND_UM)
    fc.step_down()
    assert fc.z_um == 1.5
    fc.set_planes((0.0,))  # one plane: still a knob, from −2 to +2 µm
    assert fc.slider.isEnabled() and fc.on_plane and "(single plane)" in fc.label.text()
    fc.fine_down()
    assert fc.z_um == pytest.approx(-FINE_STEP_UM) and not fc.on_plane


def test_without_refocusing_it_steps_between_planes_only(qtbot):
    fc = FocusControl()
    qtbot.addWidget(fc)
    fc.set_planes((-1.0, 0.0, 1.0), continuous=False)
    assert fc.slider.maximum() == 2 and fc.plane == 1
    fc.set_z(0.4)
    assert fc.z_um == 0.0 and fc.on_plane
    fc.fine_up()
    assert fc.z_um == 1.0


@pytest.mark.parametrize("planes_um", [
    tuple(0.125 * i for i in range(-3, 4)),     # 7 planes 0.125 µm apart (odd multiples of STEP / 2)
    (-0.375, 0.0, 0.375),
    tuple(0.175 * i for i in range(-4, 5)),
])
def test_every_captured_plane_is_reached_exactly_whatever_its_spacing(qtbot, planes_um):
    fc = FocusControl()
    qtbot.addWidget(fc)
    fc.set_planes(planes_um)
    n = len(planes_um)
    assert fc.z_um == min(planes_um, key=abs) and fc.on_plane
    fc.set_plane(0)
    for i in range(n):
        assert fc.plane == i and fc.on_plane and fc.z_um == planes_um[i], (i, fc.z_um)
        assert f"plane {i + 1}/{n}" in fc.label.text()
        fc.step_up()
    fc.set_z((planes_um[1] + planes_um[2]) / 2)  # between two planes: refocused
    assert not fc.on_plane and "refocusing…" in fc.label.text()
    assert round(fc.z_um / 0.05, 6) == round(fc.z_um / 0.05)  # off the planes z reads on the 0.05 µm grid


def test_between_and_beyond_planes_the_view_is_refocused_and_only_decoded_again(window, qtbot, stack):
    window.set_slide(stack)
    canvas = window.canvas
    canvas.set_view_rect(100, 100, 300, 200)  # inside one 512-px block
    qtbot.waitUntil(canvas.is_settled, timeout=60000)
    assert canvas.level == 0 and canvas.source is stack
    window.focus.set_z(0.25)
    source = canvas.source
    assert isinstance(source, RefocusedSlide) and source.z_um == 0.25 and source.base is stack
    # At once, before the model's tiles arrive: the cached plane at 0 µm stands in (plane +1 µm
    # was never shown, so it is not cached and the blend falls back to the one plane it has).
    for req, pixels, exact in canvas.visible_tiles().values():
        assert not exact and req.slide_uid == source.uid
        np.testing.assert_array_equal(pixels, slide_pixels(stack, req.with_plane(1)))
    window.focus.set_z(0.5)
    source = canvas.source
    qtbot.waitUntil(canvas.is_settled, timeout=120000)
    shown = canvas.visible_tiles()
    assert shown
    for req, pixels, exact in shown.values():
        assert exact and req.slide_uid == source.uid
        np.testing.assert_array_equal(pixels, slide_pixels(source, req))
        assert not np.array_equal(pixels, slide_pixels(stack, req.with_plane(1)))
    encoded = window.radiance_cache().computed
    assert encoded >= 1
    qtbot.keyClick(window, Qt.Key.Key_BracketRight)  # fine focus: +0.1 µm
    assert canvas.source.z_um == pytest.approx(0.6)
    qtbot.waitUntil(canvas.is_settled, timeout=60000)
    window.focus.set_z(-1.0 - 1.5)  # beyond the lowest plane
    qtbot.waitUntil(canvas.is_settled, timeout=60000)
    assert canvas.source.z_um == pytest.approx(-2.5)
    assert window.radiance_cache().computed == encoded  # the same view: decoder only
    qtbot.keyClick(window, Qt.Key.Key_PageUp)  # back onto a captured plane: the scan itself
    assert canvas.source is stack and canvas.plane == 0 and window.focus.on_plane
    qtbot.waitUntil(canvas.is_settled, timeout=60000)
    for req, pixels, exact in canvas.visible_tiles().values():
        np.testing.assert_array_equal(pixels, slide_pixels(stack, req))


# ---------------------------------------------------------------------- the knob's extras (issue 19)
from PySide6.QtCore import QPoint, QPointF  # noqa: E402
from PySide6.QtGui import QWheelEvent  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from app.focus.focus_control import COARSE_STEP_UM, FLASH_MS, STEP_UM, format_um  # noqa: E402
from app.focus.view_source import ViewRefocusedSlide, blend_in_place  # noqa: E402
from app.focus.z_entry import parse_z  # noqa: E402

CTRL = Qt.KeyboardModifier.ControlModifier
SHIFT = Qt.KeyboardModifier.ShiftModifier
NONE = Qt.KeyboardModifier.NoModifier


def wheel(widget, delta=120, modifiers=NONE, pos=None, inverted=False):
    """A real wheel event of ``delta`` angle units over ``widget`` (its centre by default)."""
    pos = QPointF(widget.width() / 2, widget.height() / 2) if pos is None else pos
    ev = QWheelEvent(pos, QPointF(widget.mapToGlobal(pos.toPoint())), QPoint(0, 0), QPoint(0, delta),
                     Qt.MouseButton.NoButton, modifiers, Qt.ScrollPhase.NoScrollPhase, inverted)
    QApplication.sendEvent(widget, ev)


def knob(qtbot, planes=(-1.0, 0.0, 1.5), **kw):
    fc = FocusControl()
    qtbot.addWidget(fc)
    fc.resize(900, 40)
    fc.show()
    qtbot.waitExposed(fc)
    fc.set_planes(planes, **kw)
    messages = []
    fc.message.connect(messages.append)
    return fc, messages


def drag_knob(slider, values, release=True):
    """Press the knob's handle and drag it through slider ``values`` (real mouse events)."""
    y = slider.height() // 2
    QTest.mousePress(slider, Qt.MouseButton.LeftButton, NONE, QPoint(slider.x_of(slider.value()), y))
    for v in values:
        QTest.mouseMove(slider, QPoint(slider.x_of(v), y))
    if release:
        QTest.mouseRelease(slider, Qt.MouseButton.LeftButton, NONE, QPoint(slider.x_of(values[-1]), y))


def test_the_wheel_over_the_knob_steps_fine_and_with_shift_coarse_and_a_trackpad_adds_up(qtbot):
    fc, _ = knob(qtbot)
    wheel(fc.slider)  # one notch up: fine focus, not Qt's three single steps
    assert fc.z_um == pytest.approx(FINE_STEP_UM)
    wheel(fc.slider, -120)
    assert fc.z_um == 0.0 and fc.on_plane
    wheel(fc.slider, 120, SHIFT)
    assert fc.z_um == pytest.approx(COARSE_STEP_UM)
    wheel(fc.slider, -240, Qt.KeyboardModifier.AltModifier)  # two coarse notches down
    assert fc.z_um == pytest.approx(-COARSE_STEP_UM)
    for _ in range(3):  # a trackpad: 40 units a time; three make one notch
        wheel(fc.slider, 40)
    assert fc.z_um == pytest.approx(-COARSE_STEP_UM + FINE_STEP_UM)
    wheel(fc.slider, 60)
    wheel(fc.slider, -60)  # turned back: the half notch is dropped, nothing moves
    assert fc.z_um == pytest.approx(-0.4)
    wheel(fc.slider, 120, inverted=True)  # natural scrolling: the fingers' direction
    assert fc.z_um == pytest.approx(-0.5)
    wheel(fc, 120)  # over the knob's labels and buttons (they pass the wheel on to it)
    assert fc.z_um == pytest.approx(-0.4)


def test_ctrl_wheel_over_the_slide_focuses_and_the_plain_wheel_still_zooms(window, qtbot, stack):
    window.set_slide(stack)
    canvas, focus = window.canvas, window.focus
    canvas.set_view_rect(100, 100, 400, 300)
    vp = canvas.viewport()
    view = canvas.view_rect()
    wheel(vp, 120, CTRL)  # fine focus up, the view does not zoom
    assert focus.z_um == pytest.approx(FINE_STEP_UM) and canvas.view_rect() == view
    qtbot.waitUntil(lambda: isinstance(canvas.source, RefocusedSlide) and canvas.source.z_um == pytest.approx(0.1),
                    timeout=5000)
    wheel(vp, 120, CTRL | SHIFT)  # coarse
    assert focus.z_um == pytest.approx(FINE_STEP_UM + COARSE_STEP_UM)
    wheel(vp, -240, CTRL)
    assert focus.z_um == pytest.approx(COARSE_STEP_UM - FINE_STEP_UM)
    qtbot.waitUntil(lambda: canvas.source.z_um == pytest.approx(0.4), timeout=5000)
    assert window.focus_extras.wheel.handled == 3
    z = focus.z_um
    wheel(vp, 120)  # no modifier: zoom, as before
    qtbot.waitUntil(lambda: canvas.view_rect()[2] < view[2] * 0.99, timeout=5000)
    assert focus.z_um == z and window.focus_extras.wheel.handled == 3


def test_a_typed_z_goes_there_clamped_and_bad_text_is_refused_with_a_reason(qtbot):
    fc, messages = knob(qtbot)
    assert fc.set_typed_z("1.25") and fc.z_um == 1.25 and not fc.on_plane
    assert fc.z_entry.text() == "+1.25" and messages[-1] == "Focus z = +1.25 µm"
    for text, z in (("−0.5 µm", -0.5), ("0,75", 0.75), ("z = -1", -1.0), (" +2.5um ", 2.5)):
        assert fc.set_typed_z(text) and fc.z_um == z, text
    fc.set_typed_z("1.23")  # between the knob's 0.05 µm steps: rounded, and it says so
    assert fc.z_um == 1.25 and "rounded" in messages[-1]
    for bad in ("", "abc", "1.2.3", "nan", "inf", "1e999", "--1"):
        before = fc.z_um
        assert not fc.set_typed_z(bad)
        assert fc.z_um == before and fc.z_entry.error and "µm" in messages[-1], bad
        assert "border" in fc.z_entry.styleSheet()
    fc.set_typed_z("9")  # beyond the top: clamped, said, the top flashes
    lo, hi = fc.range_um
    assert (lo, hi) == (-3.0, 3.5) and fc.z_um == hi and fc.flashing == "top"
    assert "outside the knob's range" in messages[-1] and fc.z_entry.error is None
    fc.set_typed_z("-40")
    assert fc.z_um == lo and fc.flashing == "bottom"
    with pytest.raises(ValueError, match="not a number"):
        parse_z("12 mm")
    fc.set_planes((-1.0, 0.0, 1.0), continuous=False)  # without refocusing: the nearest plane
    fc.set_typed_z("0.7")
    assert fc.z_um == 1.0 and "captured planes only" in messages[-1]


def test_typing_a_z_in_the_window_is_not_taken_by_the_zoom_and_focus_keys(window, qtbot, stack):
    window.set_slide(stack)
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window)
    canvas, focus = window.canvas, window.focus
    canvas.set_view_rect(100, 100, 400, 300)
    view = canvas.view_rect()
    qtbot.keyClick(window, Qt.Key.Key_Z)  # the Z key puts the cursor in the box
    assert focus.z_entry.hasFocus()
    qtbot.keyClicks(focus.z_entry, "-0.5")  # "-" zooms out and "0" is the scan focus, elsewhere
    qtbot.keyClick(focus.z_entry, Qt.Key.Key_Return)
    assert focus.z_um == -0.5 and canvas.view_rect() == view
    assert isinstance(canvas.source, RefocusedSlide) and canvas.source.z_um == -0.5
    assert "z = -0.50 µm" in window.statusBar().currentMessage()
    qtbot.keyClick(window, Qt.Key.Key_Z)
    qtbot.keyClicks(focus.z_entry, "abc")
    qtbot.keyClick(focus.z_entry, Qt.Key.Key_Return)
    assert focus.z_um == -0.5 and "not a number" in window.statusBar().currentMessage()
    qtbot.keyClick(focus.z_entry, Qt.Key.Key_Escape)  # Esc puts the knob's z back
    assert focus.z_entry.text() == "-0.50" and focus.z_entry.error is None


def test_snap_lands_steps_and_a_typed_z_on_planes_and_a_drag_sticks_within_the_magnet(qtbot):
    fc, messages = knob(qtbot)
    fc.set_z(0.3)
    fc.snap_button.click()  # on: it does not move the knob
    assert fc.snap and fc.z_um == pytest.approx(0.3) and "Snap" in messages[-1]
    fc.fine_up()  # a fine step lands on the next plane up
    assert fc.z_um == 1.5 and fc.on_plane
    wheel(fc.slider, -120)
    assert fc.z_um == 0.0 and fc.on_plane
    fc.coarse_down()
    assert fc.z_um == -1.0
    fc.set_typed_z("1.1")
    assert fc.z_um == 1.5 and "snap is on" in messages[-1]
    # Drag: within the magnet (0.15 µm) of the plane at 0 the knob sits on it; farther it is free.
    got = []
    fc.zChanged.connect(got.append)
    v0 = fc._value(0.0)
    near, far = v0 + 2, v0 + 8  # 0.10 and 0.40 µm above the plane
    drag_knob(fc.slider, [fc._value(-0.5), fc._value(-0.1), near], release=False)
    assert fc.slider.isSliderDown() and fc.z_um == 0.0 and fc.on_plane
    QTest.mouseMove(fc.slider, QPoint(fc.slider.x_of(far), fc.slider.height() // 2))
    assert fc.z_um == pytest.approx(0.4) and not fc.on_plane
    QTest.mouseRelease(fc.slider, Qt.MouseButton.LeftButton, NONE, QPoint(fc.slider.x_of(far), fc.slider.height() // 2))
    assert got.count(0.0) == 1  # held on the plane: one change, not one per mouse move
    fc.set_snap(False)
    fc.fine_up()
    assert fc.z_um == pytest.approx(0.5)
    # Without snapping a drag passes a plane freely.
    drag_knob(fc.slider, [v0 - 1, v0 + 1])
    assert fc.z_um == pytest.approx(0.05) and not fc.on_plane
    assert fc.magnet_um() == pytest.approx(0.15)
    fc.set_planes(tuple(0.125 * i for i in range(-3, 4)))  # close planes: the pulls never meet
    assert fc.magnet_um() == pytest.approx(0.125 / 3)


def test_back_to_scan_focus_by_key_and_button(window, qtbot, stack):
    window.set_slide(stack)
    canvas, focus = window.canvas, window.focus
    assert focus.scan_focus_um == 0.0 and "scan focus" in focus.label.text()
    focus.set_z(0.7)
    assert isinstance(canvas.source, RefocusedSlide)
    qtbot.keyClick(window, Qt.Key.Key_0)
    assert focus.z_um == 0.0 and focus.on_plane and canvas.source is stack and canvas.plane == 1
    assert "Back to the scan focus (plane 2/3" in window.statusBar().currentMessage()
    focus.set_plane(0)
    focus.scan.click()
    assert focus.z_um == 0.0 and canvas.plane == 1
    focus.scan.click()
    assert "Already at the scan focus" in window.statusBar().currentMessage()
    # The scan focus is the captured plane nearest the nominal focus, whatever the planes.
    focus.set_planes((-0.6, 0.4, 1.4))
    focus.set_z(-0.6)
    focus.back_to_scan_focus()
    assert focus.z_um == 0.4


def test_the_range_is_labelled_in_um_and_the_planes_are_ticked(qtbot):
    fc, _ = knob(qtbot)
    assert fc.lo_label.text() == "\u22123 µm" and fc.hi_label.text() == "+3.5 µm"
    assert format_um(2.75) == "+2.75 µm" and format_um(0) == "0 µm"
    assert fc.slider.scan_value == fc._value(0.0) == fc.slider.tick_values[1]
    assert "captured planes (ticks): \u22121 µm, 0 µm, +1.5 µm" in fc.slider.toolTip()
    xs = [r.x() for r in fc.slider.tick_rects()]
    lo_x, hi_x = fc.slider.x_of(fc.slider.minimum()), fc.slider.x_of(fc.slider.maximum())
    # Each tick sits where the handle is at its z: proportional along the range.
    for x, z in zip(xs, (-1.0, 0.0, 1.5)):
        assert (x - lo_x) / (hi_x - lo_x) == pytest.approx((z + 3.0) / 6.5, abs=0.01)
    image = fc.slider.grab().toImage()  # the ticks are painted: blue, the scan focus's green
    y = fc.slider.height() - 2
    blue, green = image.pixelColor(xs[0], y), image.pixelColor(xs[1], y)
    assert blue.blue() > blue.red() + 80 and green.green() > green.red() + 80 and green.green() > green.blue() + 40
    fc.set_planes((-1.0, 0.0, 1.0), continuous=False)
    assert fc.lo_label.text() == "\u22121 µm" and fc.hi_label.text() == "+1 µm"


def test_at_the_end_of_the_range_a_step_says_so_and_the_end_flashes(window, qtbot, stack):
    window.set_slide(stack)
    focus = window.focus
    limits = []
    focus.limitReached.connect(limits.append)
    lo, hi = focus.range_um
    focus.set_z(hi - STEP_UM)
    qtbot.keyClick(window, Qt.Key.Key_BracketRight)  # half a step left: goes to the end, says so
    assert focus.z_um == hi and limits == ["top"] and focus.flashing == "top"
    qtbot.keyClick(window, Qt.Key.Key_BracketRight)  # at the end: stays, says so again
    assert focus.z_um == hi and limits == ["top", "top"]
    assert "top of its range (+3 µm" in window.statusBar().currentMessage()
    assert "#d33" in focus.hi_label.styleSheet() and focus.lo_label.styleSheet() == ""
    image = focus.slider.grab().toImage()  # the knob's top end is painted red
    px = image.pixelColor(focus.slider.width() - 4, focus.slider.height() // 2)
    assert px.red() > px.green() + 40
    qtbot.waitUntil(lambda: focus.flashing is None, timeout=FLASH_MS + 2000)
    assert focus.hi_label.styleSheet() == ""
    qtbot.keyClick(window, Qt.Key.Key_PageUp)  # no captured plane above the top one
    assert focus.z_um == hi and "no captured plane above" in window.statusBar().currentMessage()
    focus.set_z(lo)
    wheel(focus.slider, -120)
    assert limits[-1] == "bottom" and focus.flashing == "bottom" and "bottom of its range" in \
        window.statusBar().currentMessage()
    focus.set_planes(stack.planes_um, continuous=False)  # without refocusing: the last plane
    focus.set_plane(0)
    qtbot.keyClick(window, Qt.Key.Key_BracketLeft)
    assert focus.z_um == -1.0 and "lowest captured plane" in window.statusBar().currentMessage()


def test_the_new_keys_act_and_are_listed_in_help_shortcuts(window, qtbot, stack):
    window.set_slide(stack)
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window)
    focus = window.focus
    qtbot.keyClick(window, Qt.Key.Key_BracketRight, CTRL)
    assert focus.z_um == pytest.approx(COARSE_STEP_UM)
    qtbot.keyClick(window, Qt.Key.Key_BracketLeft, CTRL)
    assert focus.z_um == 0.0
    qtbot.keyClick(window, Qt.Key.Key_N)
    assert focus.snap and window.focus_extras.snap_action.isChecked() and focus.snap_button.isChecked()
    focus.snap_button.click()
    assert not focus.snap and not window.focus_extras.snap_action.isChecked()
    dialog = window.paint.show_shortcuts()
    rows = dict(dialog.rows())
    dialog.close()
    for keys, text in (("Ctrl+]", "Coarse focus up"), ("Ctrl+[", "Coarse focus down"), ("0", "Back to scan focus"),
                       ("Z", "Type a focus"), ("N", "Snap to captured planes"), ("]", "Fine focus up"),
                       ("PgUp", "Focus up")):
        assert keys in rows and rows[keys].startswith(text), (keys, rows.get(keys))
    gestures = " | ".join(rows)
    assert "Ctrl + wheel over the slide" in gestures and "Shift + wheel over the knob" in gestures
    assert "Type a z in the box" in gestures and "Drag the focus knob" in gestures


def test_a_drag_is_coalesced_only_the_newest_z_is_rendered_and_the_release_is_exact(window, qtbot, stack):
    window.set_slide(stack)
    canvas, focus, dispatch = window.canvas, window.focus, window.focus_extras.dispatch
    canvas.set_view_rect(100, 100, 300, 200)
    qtbot.waitUntil(canvas.is_settled, timeout=60000)
    shown = []
    focus.zChanged.connect(shown.append)
    before = dispatch.dispatched
    slider = focus.slider
    values = list(range(slider.value() + 1, slider.value() + 31))  # 30 mouse moves, no loop turn between
    drag_knob(slider, values, release=False)
    assert len(shown) == 30 and dispatch.dispatched - before <= 1  # none queued behind each other
    qtbot.waitUntil(lambda: dispatch.pending is None, timeout=5000)
    assert canvas.source.z_um == pytest.approx(focus.z_um)  # the newest z, on its own loop turn
    assert dispatch.coalesced >= 28
    QTest.mouseRelease(slider, Qt.MouseButton.LeftButton, NONE, QPoint(slider.x_of(values[-1]), slider.height() // 2))
    end_z = focus._lo_um() + values[-1] * STEP_UM  # 1.5 µm above the scan focus
    assert focus.z_um == pytest.approx(end_z) == pytest.approx(1.5) and not focus.on_plane
    assert dispatch.pending is None and canvas.source.z_um == pytest.approx(end_z)
    source = canvas.source
    assert type(source) is ViewRefocusedSlide and source.uid == RefocusedSlide(stack, source.z_um).uid
    assert source.radiance_key(1, 2) == RefocusedSlide.radiance_key(source, 1, 2)  # the engine's keys
    # Its stand-in is the engine's, bit for bit, at a fraction of the cost.
    for req, pixels, exact in canvas.visible_tiles().values():
        if not exact:
            engine_stand_in = RefocusedSlide.stand_in(source, canvas.store.cache.peek, req)
            np.testing.assert_array_equal(source.stand_in(canvas.store.cache.peek, req), engine_stand_in)
    rng = np.random.default_rng(3)
    a, b = (rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in range(2))
    for w in (0.0, 0.13, 0.5, 0.77, 1.0):
        np.testing.assert_array_equal(blend_in_place([(1 - w, a), (w, b)]), RefocusedSlide._mix([(1 - w, a), (w, b)]))
