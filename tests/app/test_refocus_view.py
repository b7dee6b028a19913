"""Off the captured planes the window is honest and never thrashes: a second z on the same view
encodes nothing even when the view's radiance exceeds the cache's own budget; while blocks are
computed the label and a badge say "refocusing… n / m blocks", and "refocused" only when every
visible tile is; the captured planes around z show at full resolution at once; a view too large
for the radiance cap shows the blend of the planes and says so."""
import numpy as np
import pytest

from engine.phantom import PhantomSlide
from engine.refocus.refocused_slide import RefocusedSlide
from engine.slides.array import ArraySlide

from .test_canvas import slide_pixels


def plane_blend(source, stack, req):
    """The linear blend of the captured planes around the source's z for tile ``req``."""
    acc = sum(w * slide_pixels(stack, req.with_plane(i)).astype(np.float32) for i, w in source.blend_weights)
    return np.clip(acc + 0.5, 0, 255).astype(np.uint8)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def stack():
    """Three captured planes (−1, 0, +1 µm) of a phantom region, 1024 × 1024 px at 0.25 µm/px."""
    ph = PhantomSlide(seed=11, size=(2048, 2048), planes=3)
    return ArraySlide([ph.read_region(0, 0, 0, 1024, 1024, i) for i in range(3)],
                      planes_um=list(ph.planes_um), mpp=(0.25, 0.25))


@pytest.fixture
def small_window(qtbot, qt_loop, settings):
    """A window whose radiance cache keeps one block's field off the view: a view of four blocks
    does not fit it."""
    from app.window import MainWindow
    from engine.tiles import TileStore

    probe = ArraySlide([np.zeros((64, 64, 3), np.uint8)] * 3, planes_um=[-1.0, 0.0, 1.0], mpp=(0.25, 0.25))
    one_block = RefocusedSlide(probe, 0.5).block_radiance_bytes()
    w = MainWindow(store=TileStore(workers=2), settings=settings, radiance_bytes=one_block)
    qtbot.addWidget(w)
    w.resize(900, 700)
    w.show()
    qtbot.waitExposed(w)
    yield w
    w.store.close()


def test_a_second_z_on_a_view_larger_than_the_cache_budget_encodes_nothing(small_window, qtbot, stack):
    window, canvas = small_window, small_window.canvas
    window.set_slide(stack)
    canvas.set_view_rect(262, 262, 500, 500)   # blocks (0..1, 0..1) of 512 px
    qtbot.waitUntil(canvas.is_settled, timeout=60000)
    assert canvas.level == 0
    cache = window.radiance_cache()
    window.focus.set_z(0.5)
    plan = window.refocus_view.plan
    assert plan is not None and plan.fits and len(plan.blocks) == 4
    assert cache.max_bytes < plan.need_bytes   # a plain LRU would evict what the next turn needs
    assert "refocusing… 0 / 4 blocks" in window.focus.label.text()
    assert canvas.busy.isVisible() and "4 blocks" in canvas.busy.text
    seen = set()

    def done():
        seen.add(window.focus.state)
        return canvas.is_settled()

    qtbot.waitUntil(done, timeout=180000)
    assert window.focus.state == "refocused" and "refocused" in window.focus.label.text()
    assert not canvas.busy.isVisible()
    assert any(s.startswith("refocusing… ") for s in seen)
    encoded = cache.computed
    assert encoded == 4 and cache.nbytes > cache.max_bytes
    for z in (0.6, -1.7):
        window.focus.set_z(z)
        qtbot.waitUntil(canvas.is_settled, timeout=60000)
        assert canvas.source.z_um == pytest.approx(z)
        assert cache.computed == encoded   # decoder only
        for req, pixels, exact in canvas.visible_tiles().values():
            assert exact
            np.testing.assert_array_equal(pixels, slide_pixels(canvas.source, req))


def test_panning_off_plane_shows_the_planes_around_z_at_full_resolution_first(window, qtbot, stack):
    canvas = window.canvas
    window.set_slide(stack)
    canvas.set_view_rect(0, 0, 400, 300)
    qtbot.waitUntil(canvas.is_settled, timeout=60000)
    window.focus.set_z(0.4)     # between 0 and +1 µm
    source = canvas.source
    assert isinstance(source, RefocusedSlide) and [i for i, _ in source.blend_weights] == [1, 2]
    canvas.set_view_rect(560, 600, 400, 300)  # a region none of whose planes was read yet

    def blend_shown():
        tiles = canvas.visible_tiles()
        if not tiles:
            return False
        for req, pixels, exact in tiles.values():
            if exact or pixels is None:
                return False
            if not np.array_equal(pixels, plane_blend(source, stack, req)):
                return False
        return True

    qtbot.waitUntil(blend_shown, timeout=20000)   # long before the model's tiles
    qtbot.waitUntil(canvas.is_settled, timeout=180000)
    for req, pixels, exact in canvas.visible_tiles().values():
        assert exact and req.slide_uid == source.uid


def test_a_view_over_the_radiance_cap_shows_the_blend_and_says_why(qtbot, qt_loop, settings, stack):
    from app.window import MainWindow
    from engine.tiles import TileStore

    window = MainWindow(store=TileStore(workers=2), settings=settings, radiance_cap_bytes=1 << 20)
    qtbot.addWidget(window)
    window.resize(900, 700)
    window.show()
    qtbot.waitExposed(window)
    try:
        canvas = window.canvas
        window.set_slide(stack)
        canvas.set_view_rect(262, 262, 500, 500)
        qtbot.waitUntil(canvas.is_settled, timeout=60000)
        window.focus.set_z(0.5)
        source = canvas.source
        assert isinstance(source, RefocusedSlide) and source.blend_only
        assert "zoom in to refocus" in window.focus.label.text()
        assert "GiB of radiance" in window.statusBar().currentMessage()
        qtbot.waitUntil(canvas.is_settled, timeout=60000)
        assert window.radiance_cache().computed == 0
        for req, pixels, exact in canvas.visible_tiles().values():
            np.testing.assert_array_equal(pixels, plane_blend(source, stack, req))
    finally:
        window.store.close()
