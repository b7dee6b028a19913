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
