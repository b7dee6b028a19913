"""Fused and uncertainty heatmaps of a real slide (a two-plane OME-TIFF of CMU-1 tissue written by
tifffile): the fit on the slide's own patches, the FocusLiteNN heatmap geometry, and the computed
slide sources the viewer overlays through the tile store."""
import numpy as np
import pytest

from engine.colormaps import colorize
from engine.fqa.heatmap import compute_heatmap, heatmap_geometry
from engine.fusion import FusionConfig
from engine.fusion.heatmap_source import FusedHeatmapSlide, fusion_sources
from engine.fusion.inputs import default_models
from engine.fusion.slide_fit import NotEnoughTissue, fit_slide
from engine.slides import ArraySlide, open_slide
from engine.tiles import TileStore
from tests.engine.fqa.real_tissue import cmu_region, gaussian_blur, write_ome_stack

CONFIG = FusionConfig(steps=300)


@pytest.fixture(scope="module")
def stack_path(tmp_path_factory):
    """CMU-1 tissue (glass on the left), sharp at z = 0 and blurred at z = 2 µm, 1280×1280 px."""
    rgb = cmu_region()
    return write_ome_stack(tmp_path_factory.mktemp("ome") / "two.ome.tiff", [rgb, gaussian_blur(rgb, 2.0)],
                           [0.0, 2.0])


@pytest.fixture(scope="module")
def models():
    return default_models()


@pytest.fixture(scope="module")
def fusion(stack_path, models):
    with open_slide(stack_path) as slide:
        return fit_slide(slide, models, plane=0, config=CONFIG)


@pytest.fixture()
def base(stack_path):
    with open_slide(stack_path) as slide:
        yield slide


def test_the_fit_uses_the_focuslitenn_heatmap_geometry_and_its_tissue(base, models, fusion):
    first = fusion.result.names[0]
    reference, geom = compute_heatmap(base, {first: models.tile_scorers[first]}, plane=0)
    assert fusion.geometry == geom == heatmap_geometry(base)
    assert (geom.patch, geom.stride, geom.level) == (235, 128, 0)
    assert fusion.fused.shape == fusion.uncertainty.shape == geom.shape
    np.testing.assert_array_equal(fusion.score_grids[first], reference[first])
    tissue = np.isfinite(reference[first])
    assert 0 < tissue.sum() < tissue.size                  # glass on the left, tissue on the right
    np.testing.assert_array_equal(np.isfinite(fusion.fused), tissue)
    np.testing.assert_array_equal(np.isfinite(fusion.uncertainty), tissue)
    assert (fusion.uncertainty[tissue] > 0).all()
    assert sum(fusion.result.weights.values()) == pytest.approx(1.0, abs=1e-5)


def test_sources_have_the_base_geometry_and_show_the_fitted_grids(base, fusion):
    fused, unc = fusion_sources(base, fusion)
    for src in (fused, unc):
        assert src.levels == base.levels and src.mpp == base.mpp and src.dimensions == base.dimensions
        assert src.planes_um == (0.0,) and src.geometry == fusion.geometry
        assert src.uid.startswith(base.uid + "|fusion|")
    assert fused.uid != unc.uid
    np.testing.assert_array_equal(fused.grid(), fusion.fused)
    np.testing.assert_array_equal(unc.grid(), fusion.uncertainty)
    assert (fused.cmap, unc.cmap) == ("focus", "uncertainty")
    lo, hi = unc.value_range
    assert lo == 0 and hi > 0


def test_pixels_are_the_colour_map_with_glass_transparent_or_white(base, fusion):
    fused, _ = fusion_sources(base, fusion)
    rgba = fused.read_rgba(0, 0, 0, 1280, 1280)
    values = fused.scores_for_region(0, 0, 0, 1280, 1280)
    np.testing.assert_array_equal(rgba, colorize(values, *fused.value_range, cmap="focus"))
    rgb = fused.read_region(0, 0, 0, 1280, 1280)
    assert (rgb[np.isnan(values)] == 255).all() and np.isfinite(values).any()


def test_the_tile_store_serves_fused_tiles(base, fusion):
    fused, unc = fusion_sources(base, fusion)
    store = TileStore(workers=2)
    try:
        for src in (fused, unc):
            req = store.request(src, 0, 1, 1)
            tile = store.fetch(req).result(timeout=120)
            ts = req.tile_size
            np.testing.assert_array_equal(tile, src.read_region(0, ts, ts, ts, ts))
    finally:
        store.close()


def test_another_plane_is_fused_lazily_by_the_fitted_encoder(base, models, fusion):
    fused, unc = fusion_sources(base, fusion, plane=1)
    assert fused.planes_um == (2.0,) and "plane=1" in fused.uid
    values = fused.grid()
    assert fused.blocks.cache.computed > 0
    computed = fused.blocks.cache.computed
    u = unc.grid()
    assert fused.blocks.cache.computed == computed          # the uncertainty reuses the blocks
    grids, _ = compute_heatmap(base, models.tile_scorers, plane=1)
    expected, expected_u = fusion.fuse_scores(grids)
    np.testing.assert_allclose(values, expected, rtol=1e-5)
    np.testing.assert_allclose(u, expected_u, rtol=1e-5)
    tissue = np.isfinite(values) & np.isfinite(fusion.fused)
    assert np.median(values[tissue]) > np.median(fusion.fused[tissue])   # the blurred plane is blurrier


def test_bad_requests_are_refused(base, fusion):
    with pytest.raises(ValueError, match="kind"):
        FusedHeatmapSlide(base, fusion, "sharpness")
    with pytest.raises(ValueError, match="plane"):
        fusion_sources(base, fusion, plane=5)
    glass = ArraySlide([np.full((600, 600, 3), 245, np.uint8)])
    with pytest.raises(NotEnoughTissue):
        fit_slide(glass, default_models(), config=CONFIG)


def test_a_fit_of_another_slide_is_refused_with_the_reason(fusion):
    other = ArraySlide([cmu_region()[:700, :900]], mpp=(0.25, 0.25))
    with pytest.raises(ValueError, match="another slide's patch grid"):
        FusedHeatmapSlide(other, fusion)
