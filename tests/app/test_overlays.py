"""Overlays in the real window: View ▸ Overlay puts a computed source (FocusLiteNN or classical
heatmap, best-focus depth map) over the slide. Its tiles come through the tile store off the UI
thread, are transparent on glass, follow the focal plane, and come with an opacity, a legend in
units and the value under the cursor in the status bar.

The slide is a real focus bracket written by Pillow (one PNG per plane, z in the file names):
textured tissue on the left, empty glass on the right, each plane blurred by its distance from
the in-focus plane. The heatmaps use the shipped FocusLiteNN weights (values are not pinned:
the weights are retrained from time to time)."""
import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt
from scipy import ndimage

from app.overlays import OverlayKind, register_overlay, unregister_overlay
from app.overlays.controller import value_at
from app.overlays.legend import format_tick
from engine.slides import open_slide
from engine.slides.array import ArraySlide
from tests.slide_files import textured_plane

from ..engine.tiles.slides import CountingSlide
from .test_canvas import slide_pixels

PLANES_UM = (-1.0, 0.0, 1.0)
SIZE = (1024, 768)
#: Tissue left of this x (level-0 px); glass from here to the right edge.
GLASS_FROM_X = 560
TISSUE_POINT = (245.0, 373.0)  # the centre of heatmap cell (row 2, col 1): tissue
GLASS_POINT = (900.0, 400.0)


def tissue_and_glass(width: int, height: int, seed: int = 11) -> np.ndarray:
    """(height, width, 3) uint8: textured tissue left of GLASS_FROM_X, bright glass right of it."""
    img = textured_plane(width, height, 0, seed=seed)
    glass = 244 + np.random.default_rng(seed).integers(0, 8, (height, width - GLASS_FROM_X, 3))
    img[:, GLASS_FROM_X:] = glass.astype(np.uint8)
    return img


@pytest.fixture(scope="module")
def bracket(tmp_path_factory):
    """A plane-set folder: ``bracket_z<z>um.png`` per plane, plane z = 0 sharp, the others
    Gaussian-blurred by 1.5 px per µm of defocus."""
    from PIL import Image

    folder = tmp_path_factory.mktemp("bracket")
    sharp = tissue_and_glass(*SIZE)
    for z in PLANES_UM:
        sigma = 1.5 * abs(z)
        img = sharp if sigma == 0 else ndimage.gaussian_filter(sharp, (sigma, sigma, 0))
        Image.fromarray(img).save(folder / f"bracket_z{z:+g}um.png")
    return folder


@pytest.fixture
def slide(bracket):
    with open_slide(bracket) as s:
        yield s


def choose(window, qtbot, key):
    """Pick ``key`` in View ▸ Overlay and wait until its tiles are on screen."""
    window.overlay_menu.fill()  # as when the user opens the menu
    window.overlay_menu.actions()[key].trigger()
    qtbot.waitUntil(window.overlays.ready, timeout=30000)
    qtbot.waitUntil(window.canvas.overlay_settled, timeout=30000)


def assert_overlay_shows(canvas, source):
    """Every visible overlay tile shows the source's exact colours, transparent exactly where
    the source has no value (glass). Returns the fraction of transparent pixels."""
    shown = canvas.visible_overlay_tiles()
    assert shown, "no overlay tiles on screen"
    clear = total = 0
    for (level, col, row), (req, rgba, exact) in shown.items():
        assert exact and req.slide_uid == source.uid
        rgb = slide_pixels(source, req)
        ds = source.levels[req.level].downsample
        values = source.scores_for_region(req.level, int(req.col * req.tile_size * ds),
                                          int(req.row * req.tile_size * ds), rgb.shape[1], rgb.shape[0])
        transparent = rgba[..., 3] == 0
        np.testing.assert_array_equal(transparent, np.isnan(values))
        assert (rgba[..., 3][~transparent] == 255).all()
        np.testing.assert_array_equal(rgba[..., :3][~transparent], rgb[~transparent])
        clear += transparent.sum()
        total += transparent.size
    return clear / total


def screen_pixel(canvas, x, y):
    """The colour drawn at level-0 px (x, y), from a grab of the canvas."""
    p = canvas.mapFromScene(canvas.vb.mapViewToScene(QPointF(x, y)))
    return canvas.grab().toImage().pixelColor(p).getRgb()[:3]


def looks_the_same(a, b, grey_levels=10):
    """Two screen colours equal within the slide's own pixel noise: the docks may resize the
    canvas between two grabs, moving the sampled screen px by a fraction of a slide px."""
    return int(np.abs(np.subtract(a, b)).max()) <= grey_levels


def move_mouse_to(qtbot, canvas, x, y):
    p = canvas.mapFromScene(canvas.vb.mapViewToScene(QPointF(x, y)))
    qtbot.mouseMove(canvas.viewport(), p)


def test_the_overlay_menu_offers_heatmaps_metrics_and_a_depth_map_for_stacks(window, slide):
    window.set_slide(slide)
    window.overlay_menu.fill()
    acts = window.overlay_menu.actions()
    assert acts[None].isChecked()  # no overlay at first
    assert acts["focuslitenn-1"].isEnabled()
    assert acts["metric:variance_of_laplacian"].isEnabled() and acts["metric:brenner"].isEnabled()
    assert acts["depth"].isEnabled()  # three planes
    titles = [a.text() for a in window.overlay_menu.menu.actions()]
    assert "Focus quality — FocusLiteNN-1" in titles and "Best-focus depth map" in titles
    window.set_slide(ArraySlide([tissue_and_glass(600, 400)], mpp=(0.25, 0.25)))
    window.overlay_menu.fill()
    assert not window.overlay_menu.actions()["depth"].isEnabled()  # one plane: no depth map


def test_a_focuslitenn_overlay_arrives_tile_by_tile_transparent_on_glass_and_turns_off(window, qtbot, slide):
    window.set_slide(slide)
    canvas = window.canvas
    qtbot.waitUntil(canvas.is_settled, timeout=10000)
    plain_tissue = screen_pixel(canvas, *TISSUE_POINT)
    plain_glass = screen_pixel(canvas, *GLASS_POINT)
    window.overlay_panel.opacity.setValue(100)
    choose(window, qtbot, "focuslitenn-1")
    source = canvas.overlay_source
    assert source is window.overlays.source and "focuslitenn-1" in source.uid and source.plane == 1  # z = 0
    assert canvas.is_settled() and canvas.overlay.item_count() > 0
    clear = assert_overlay_shows(canvas, source)
    assert 0.3 < clear < 0.6  # the glass on the right (~45% of the slide) is see-through
    # On screen: the glass looks as without overlay, the tissue is coloured.
    assert looks_the_same(screen_pixel(canvas, *GLASS_POINT), plain_glass)
    assert not looks_the_same(screen_pixel(canvas, *TISSUE_POINT), plain_tissue)
    assert window.overlay_menu.actions()["focuslitenn-1"].isChecked()

    window.overlay_menu.fill()
    window.overlay_menu.actions()[None].trigger()
    qtbot.waitUntil(canvas.is_settled, timeout=10000)
    assert canvas.overlay_source is None and canvas.overlay.item_count() == 0
    assert looks_the_same(screen_pixel(canvas, *TISSUE_POINT), plain_tissue)
    assert window.overlay_panel.title.text().startswith("No overlay")
    qtbot.keyClick(window, Qt.Key.Key_O)  # "O" brings the last overlay back (its tiles are cached)
    assert canvas.overlay_source is source
    qtbot.waitUntil(canvas.overlay_settled, timeout=10000)
    qtbot.keyClick(window, Qt.Key.Key_O)
    assert canvas.overlay_source is None


def test_the_overlay_follows_the_focal_plane_on_one_colour_scale(window, qtbot, slide):
    window.set_slide(slide)
    canvas = window.canvas
    canvas.set_view_rect(0, 0, 700, 500)
    choose(window, qtbot, "focuslitenn-1")
    first = canvas.overlay_source
    assert_overlay_shows(canvas, first)
    qtbot.keyClick(window, Qt.Key.Key_PageUp)
    qtbot.waitUntil(lambda: canvas.overlay_source is not first, timeout=30000)
    qtbot.waitUntil(canvas.is_settled, timeout=30000)
    second = canvas.overlay_source
    assert first.plane == 1 and canvas.plane == 2 and second.plane == 2  # from z = 0 to +1 µm
    assert second.value_range == first.value_range  # colours compare across planes
    assert_overlay_shows(canvas, second)
    # The blurred plane scores differently from the sharp one where there is tissue.
    a, b = first.cells(0, 3, 0, 3), second.cells(0, 3, 0, 3)
    assert np.isfinite(a).all() and not np.allclose(a, b)
    qtbot.keyClick(window, Qt.Key.Key_PageDown)  # back: the plane's source is reused at once
    assert canvas.overlay_source is first


def test_the_legend_shows_the_scale_in_units_and_opacity_applies_to_the_tiles(window, qtbot, slide):
    window.set_slide(slide)
    choose(window, qtbot, "metric:tenengrad")
    source, legend = window.canvas.overlay_source, window.overlay_panel.legend
    assert legend.isVisible() and legend.label == source.label and "Eq. 2.15" in legend.label
    vmin, vmax = source.value_range
    assert [t for _, t in legend.ticks()] == [format_tick(vmin), format_tick((vmin + vmax) / 2), format_tick(vmax)]
    window.overlay_panel.opacity.setValue(80)
    items = [t.item for t in window.canvas.overlay._tiles.values()]
    assert items and all(abs(i.opacity() - 0.8) < 1e-9 for i in items)
    assert int(window.settings.value("overlay/opacity_percent")) == 80  # remembered for next time

    window.overlay_menu.fill()
    window.overlay_menu.actions()["depth"].trigger()
    # While the depth map is being built, no colours or legend of the heatmap linger.
    assert window.overlays.preparing and window.canvas.overlay_source is None
    assert window.canvas.overlay.item_count() == 0 and legend.label == ""
    choose(window, qtbot, "depth")
    depth = window.canvas.overlay_source
    assert legend.label == depth.label and "µm" in legend.label
    assert legend.value_range == (PLANES_UM[0], PLANES_UM[-1])
    assert "Best-focus depth map" in window.overlay_panel.title.text()
    assert assert_overlay_shows(window.canvas, depth) > 0.3


def test_the_status_bar_reads_the_value_under_the_cursor(window, qtbot, slide):
    window.set_slide(slide)
    canvas = window.canvas
    choose(window, qtbot, "focuslitenn-1")
    source, readout = canvas.overlay_source, window.readouts.overlay
    move_mouse_to(qtbot, canvas, *TISSUE_POINT)
    expected = f"FocusLiteNN-1 {value_at(source, *TISSUE_POINT):.4g}"
    qtbot.waitUntil(lambda: readout.text() == expected, timeout=10000)
    move_mouse_to(qtbot, canvas, *GLASS_POINT)
    qtbot.waitUntil(lambda: readout.text() == "FocusLiteNN-1 glass", timeout=10000)

    choose(window, qtbot, "depth")  # the read-out follows the overlay, in µm
    move_mouse_to(qtbot, canvas, *TISSUE_POINT)
    z = value_at(canvas.overlay_source, *TISSUE_POINT)
    assert PLANES_UM[0] <= z <= PLANES_UM[-1]
    qtbot.waitUntil(lambda: readout.text() == f"best focus z = {z:+.2f} µm", timeout=10000)


def test_overlay_tiles_compute_off_the_ui_thread_with_coarse_stand_ins(window, qtbot):
    """A plugged-in kind whose heatmap reads a twin of the slide held at a gate: the slide's own
    tiles and the UI go on while the overlay waits, coarser overlay tiles stand in, superseded
    overlay tiles are cancelled, and the exact tiles arrive once the gate opens."""
    planes = [tissue_and_glass(1600, 1400)]  # fitted: level 1
    shown = ArraySlide(planes, mpp=(0.25, 0.25))
    twin = CountingSlide(planes, mpp=(0.25, 0.25))

    def make(base, plane, value_range):
        from engine.fqa.heatmap_source import HeatmapSlide

        return HeatmapSlide(twin, "focuslitenn-1", plane=plane, value_range=value_range, cache_bytes=0)

    register_overlay(OverlayKind("test:gated", "Gated heatmap", make))
    try:
        window.set_slide(shown)
        canvas = window.canvas
        choose(window, qtbot, "test:gated")
        coarse = canvas.level
        twin.gate.clear()
        canvas.zoom(6.0, center=(400, 700))
        canvas.refresh()
        assert canvas.level < coarse
        stand_ins = canvas.visible_overlay_tiles()
        assert stand_ins and all(not exact and px is not None and px.shape[2] == 4
                                 for _, px, exact in stand_ins.values())
        qtbot.waitUntil(canvas.layer.is_complete, timeout=10000)  # the slide's tiles came anyway
        assert not canvas.overlay_settled()
        uid = canvas.overlay_source.uid
        asked = {}
        for k in range(1, 5):  # pan while the overlay is held: queued overlay tiles are dropped
            canvas.pan(300, 0 if k % 2 else 300)
            canvas.refresh()
            asked.update({r: f for r, f in canvas._inflight.items() if r.slide_uid == uid})
        twin.gate.set()
        qtbot.waitUntil(canvas.is_settled, timeout=30000)
        assert canvas.overlay_settled()
        assert any(f.cancelled() for f in asked.values())
        final = {req for req, _, _ in canvas.visible_overlay_tiles().values()}
        assert not any(f.cancelled() for r, f in asked.items() if r in final)
        assert_overlay_shows(canvas, canvas.overlay_source)
    finally:
        twin.gate.set()
        unregister_overlay("test:gated")



@pytest.mark.slow
def test_the_fused_iqa_overlay_is_fitted_off_the_ui_thread_and_shares_its_fit(window, qtbot, slide):
    """Fused IQA (thesis Ch. 4): fitted unsupervised on the slide's own patch scores, with
    progress in the dock; its uncertainty reuses the same fit."""
    window.set_slide(slide)
    window.overlay_menu.fill()
    acts = window.overlay_menu.actions()
    if "fused" not in acts:
        pytest.skip("engine.fusion provides no fused heatmap source (FusedHeatmapSlide, fit_slide)")
    states = []
    window.overlays.progress.connect(states.append)
    acts["fused"].trigger()
    assert window.overlays.preparing and window.overlay_panel.state.text().startswith("preparing")
    qtbot.waitUntil(window.overlays.ready, timeout=180000)
    qtbot.waitUntil(window.canvas.overlay_settled, timeout=30000)
    fused = window.canvas.overlay_source
    assert states and 0 < max(states) <= 1
    assert window.overlay_panel.legend.label == fused.label
    assert assert_overlay_shows(window.canvas, fused) > 0.3
    choose(window, qtbot, "fused-uncertainty")  # no second fit: ready at once
    unc = window.canvas.overlay_source
    assert unc is not fused and unc.fusion is fused.fusion
    assert_overlay_shows(window.canvas, unc)


def test_view_names_a_bad_overlay_in_one_line_and_exits_2(tmp_path, capsys):
    from PIL import Image

    from app.cli import main

    single = tmp_path / "single.png"
    Image.fromarray(tissue_and_glass(640, 480)).save(single)
    out = tmp_path / "never.png"
    assert main(["view", str(single), "--overlay", "depth", "--screenshot", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "single.png" in err and "2 focal planes" in err
    assert main(["view", str(single), "--overlay", "no-such", "--screenshot", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no-such" in err and "focuslitenn-1" in err
    assert main(["view", str(single), "--overlay", "focuslitenn-1", "--opacity", "2", "--screenshot", str(out)]) == 2
    assert "--opacity" in capsys.readouterr().err and not out.exists()


def start_fused_fit(window, slide) -> None:
    """Open ``slide`` and choose the fused-IQA overlay: its fit starts off the UI thread."""
    window.set_slide(slide)
    window.overlay_menu.fill()
    acts = window.overlay_menu.actions()
    if "fused" not in acts:
        pytest.skip("engine.fusion provides no fused heatmap source")
    acts["fused"].trigger()


def test_fine_focus_between_planes_does_not_restart_an_overlay_being_built(window, qtbot, slide):
    """The fused fit runs for the nearest plane; turning the knob by 0.1 µm keeps that plane
    nearest, so the fit goes on instead of starting again at every step."""
    start_fused_fit(window, slide)
    task, plane = window.overlays._task, window.focus.plane
    assert task is not None and not task.done()
    for _ in range(2):
        qtbot.keyClick(window, Qt.Key.Key_BracketRight)
    assert window.focus.plane == plane and not window.focus.on_plane
    assert window.overlays._task is task and not task.cancelled()
    qtbot.waitUntil(window.overlays.ready, timeout=180000)
    assert window.canvas.overlay_source is not None


def test_closing_stops_an_overlay_build_on_its_thread(window, qtbot, slide):
    """The fused fit is told to stop at once: it must not run on for minutes after the window
    closed (the cancelled task may never run again to pass the word)."""
    start_fused_fit(window, slide)
    stop = window.overlays._stop
    assert window.overlays.preparing and not stop.is_set()
    window.overlays.close()
    assert stop.is_set()
