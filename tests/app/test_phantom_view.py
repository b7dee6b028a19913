"""The built-in phantom (slow, computed tiles) in the real window: it opens through the same
path as a file, the UI keeps running while tiles are computed, and each plane shows the
phantom's own pixels."""
import numpy as np
import pytest

from .test_canvas import slide_pixels

SPEC = "phantom:size=1024x768,planes=3"


@pytest.mark.slow
def test_the_phantom_opens_and_steps_planes_with_its_own_pixels(window, qtbot):
    window.resize(520, 420)
    task = window.open_path(SPEC)
    qtbot.waitUntil(task.done, timeout=60000)
    slide = task.result()
    assert window.slide is slide and slide.format == "phantom" and slide.plane_count == 3
    assert slide.planes_um[1] == 0 and window.focus.plane == 1
    canvas = window.canvas
    canvas.set_view_rect(100, 100, 200, 150)  # one level-0 tile
    qtbot.waitUntil(lambda: canvas.layer.item_count() > 0, timeout=10000)
    qtbot.waitUntil(canvas.is_settled, timeout=120000)
    window.focus.step_up()
    qtbot.waitUntil(canvas.is_settled, timeout=120000)
    shown = canvas.visible_tiles()
    assert canvas.level == 0 and shown
    for req, pixels, exact in shown.values():
        assert exact and req.plane == 2  # opened at the z = 0 µm plane (1), one step up
        np.testing.assert_array_equal(pixels, slide_pixels(slide, req))
        assert not np.array_equal(pixels, slide_pixels(slide, req.with_plane(1)))
    assert window.recent.paths()[0] == SPEC
