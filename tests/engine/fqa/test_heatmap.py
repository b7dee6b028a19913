"""Whole-slide FocusLiteNN heatmaps on real files: geometry, glass, the fully convolutional
computation against patch-by-patch scoring, independence from the tiling, and blur."""
import numpy as np
import pytest
import torch

from engine.fqa.focuslitenn import KERNEL, STRIDE
from engine.fqa.heatmap import (GRID_STRIDE, PATCH, BlockConv, compute_heatmap, focuslitenn_scorer,
                                metric_scorer)
from engine.fqa.metrics import METRICS
from engine.fqa.tissue import MIN_TISSUE_FRACTION, OD_THRESHOLD, optical_density_sum
from engine.slides import ArraySlide, open_slide
from tests.engine.fqa.kernel_model import load_laplacian_model
from tests.engine.fqa.real_tissue import CMU_MPP, cmu_region, psf_blur, require, write_ome_stack
from tests.paths import SHARED_DATA


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return load_laplacian_model(tmp_path_factory.mktemp("weights"))


@pytest.fixture(scope="module")
def tissue():
    return cmu_region()


@pytest.fixture(scope="module")
def ome(tmp_path_factory, tissue):
    """A one-plane OME-TIFF of the CMU crop, 1280×1280 px (glass left, tissue right)."""
    return write_ome_stack(tmp_path_factory.mktemp("ome") / "cmu.ome.tiff", [tissue], [0.0])


@pytest.fixture(scope="module")
def heat(ome, model):
    with open_slide(ome) as slide:
        maps, geom = compute_heatmap(slide, {"f": focuslitenn_scorer(model)})
    return maps["f"], geom


def test_geometry_is_235_px_patches_at_stride_128_on_level_0(heat):
    values, geom = heat
    n = (1280 - PATCH) // GRID_STRIDE + 1
    assert (geom.patch, geom.stride, geom.level, geom.origin) == (235, 128, 0, (0, 0))
    assert geom.shape == (n, n) == values.shape
    assert geom.cell_rect_level0(2, 3) == (3 * 128, 2 * 128, 235, 235)
    assert geom.as_dict()["shape"] == [n, n]


def test_glass_patches_are_nan_and_tissue_patches_are_scored(heat, tissue):
    values, geom = heat
    for r in range(geom.shape[0]):
        for c in range(geom.shape[1]):
            x, y, w, h = (int(v) for v in geom.cell_rect_level0(r, c))
            frac = (optical_density_sum(tissue[y:y + h, x:x + w]) > OD_THRESHOLD).mean()
            assert np.isfinite(values[r, c]) == (frac >= MIN_TISSUE_FRACTION), (r, c, frac)
    assert np.isnan(values[:, 0]).all()  # the left column lies on glass
    assert np.isfinite(values).sum() >= values.size // 3


def test_each_score_is_the_model_on_its_patch_snapped_to_the_5_px_grid(heat, tissue, model):
    values, geom = heat
    n_cells = (PATCH - KERNEL) // STRIDE + 1
    checked = 0
    for r, c in zip(*np.nonzero(np.isfinite(values))):
        y0 = -(-(r * GRID_STRIDE) // STRIDE) * STRIDE
        x0 = -(-(c * GRID_STRIDE) // STRIDE) * STRIDE
        size = (n_cells - 1) * STRIDE + KERNEL
        crop = tissue[y0:y0 + size, x0:x0 + size]
        with torch.inference_mode():
            expected = model(torch.from_numpy(crop).permute(2, 0, 1)[None].float() / 255.0).item()
        assert values[r, c] == pytest.approx(expected, abs=1e-4), (r, c)
        checked += 1
    assert checked > 20


def test_block_convolution_equals_the_model_response_for_any_tile_size(model):
    rng = np.random.default_rng(0)
    conv = BlockConv(model)
    for h, w in [(7, 7), (21, 33), (22, 34), (236, 240), (241, 239)]:
        rgb = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        with torch.inference_mode():
            expected = model.response_map(torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255.0)[0]
            got = conv(rgb)
        assert got.shape == expected.shape
        assert torch.allclose(got, expected, atol=1e-4)


@pytest.mark.parametrize("tile_patches,prefetch", [(1, False), (3, True), (4, False), (32, True)])
def test_scores_do_not_depend_on_the_tiling(ome, model, heat, tile_patches, prefetch):
    with open_slide(ome) as slide:
        maps, geom = compute_heatmap(slide, {"f": focuslitenn_scorer(model)}, tile_patches=tile_patches,
                                     prefetch=prefetch)
    np.testing.assert_array_equal(np.isnan(maps["f"]), np.isnan(heat[0]))
    np.testing.assert_allclose(maps["f"], heat[0], atol=1e-5, equal_nan=True)


def test_several_scorers_share_one_pass_and_one_tissue_mask(ome, model, heat):
    with open_slide(ome) as slide:
        maps, _ = compute_heatmap(slide, {"f": focuslitenn_scorer(model),
                                          "brenner": metric_scorer(METRICS["brenner"])})
    np.testing.assert_array_equal(np.isnan(maps["brenner"]), np.isnan(heat[0]))
    np.testing.assert_allclose(maps["f"], heat[0], atol=1e-5, equal_nan=True)


def test_progress_reaches_one_and_cancel_stops(ome, model):
    seen = []
    with open_slide(ome) as slide:
        compute_heatmap(slide, {"f": focuslitenn_scorer(model)}, tile_patches=4, progress=seen.append)
        assert seen[-1] == 1.0 and seen == sorted(seen)
        with pytest.raises(InterruptedError):
            compute_heatmap(slide, {"f": focuslitenn_scorer(model)}, tile_patches=4, cancelled=lambda: True)


def test_an_all_glass_slide_is_all_nan(model):
    glass = ArraySlide([np.full((600, 700, 3), 242, np.uint8)])
    maps, geom = compute_heatmap(glass, {"f": focuslitenn_scorer(model)})
    assert geom.shape == (3, 4) and np.isnan(maps["f"]).all()


#: Every real image in ../shared/data with tissue; the kidney TIFF is glass with one small speck
#: of tissue, too little for a patch (see the glass test below).
REAL_IMAGES = ["slides/cmu-1-small-region.svs", "slides/tcga-cr-7395-01a-01-ts1.svs",
               "tiles/tcga-lung-rgb.png", "tiles/ihc.png",
               "tiles/tissue-level0-4302-10273-4814-10785.png", "tiles/tissue-level0-7352-11762-7864-12274.png"]


def _shipped_models():
    from engine.fqa.evaluate import SHIPPED_KERNELS
    from engine.fqa.focuslitenn import load_model, weights_path

    return {f"focuslitenn-{k}": load_model(f"focuslitenn-{k}") for k in SHIPPED_KERNELS if weights_path(k).exists()}


@pytest.mark.parametrize("name", REAL_IMAGES)
def test_a_copy_defocused_2_um_by_the_psf_scores_blurrier_in_99_percent_of_tissue(name, model):
    """For the shipped, trained models and the hand-set LoG model alike."""
    with open_slide(require(SHARED_DATA / name)) as slide:
        W, H = slide.dimensions
        w, h = min(W, 1536), min(H, 1536)
        rgb = slide.read_region(0, (W - w) // 2, (H - h) // 2, w, h)
        mpp = slide.mpp[0] if slide.mpp else CMU_MPP  # the PNG tiles come from 0.5 µm/px scans
    models = {"log": model, **_shipped_models()}
    assert len(models) == 4, "shipped weights missing from resources/weights"
    scorers = {k: focuslitenn_scorer(m) for k, m in models.items()}
    sharp = compute_heatmap(ArraySlide([rgb]), scorers)[0]
    blurred = compute_heatmap(ArraySlide([psf_blur(rgb, 2.0, mpp)]), scorers)[0]
    for k in models:
        both = np.isfinite(sharp[k]) & np.isfinite(blurred[k])
        assert both.sum() >= 4, "too little tissue to judge"
        assert (blurred[k][both] > sharp[k][both]).mean() >= 0.99, k


def test_the_real_kidney_scan_is_glass_with_a_speck_and_scores_nan_throughout(model):
    with open_slide(require(SHARED_DATA / "slides" / "kidney-48-5.tif")) as slide:
        rgb = slide.read_region(0, 0, 0, *slide.dimensions)
    dark = rgb.min(axis=2) < 200  # the speck: about 4 000 stained pixels (0.3 %) on bright glass
    assert 0 < dark.mean() < 0.01
    heat = compute_heatmap(ArraySlide([rgb]), {"f": focuslitenn_scorer(model)})[0]["f"]
    assert heat.size >= 20 and np.isnan(heat).all()


def test_a_heatmap_on_level_1_scores_that_level_s_pixels(tissue, model):
    pyramid = ArraySlide([tissue])  # level 1 = 2×2 box average, 640×640 px
    level1 = pyramid.read_region(1, 0, 0, 640, 640)
    maps, geom = compute_heatmap(pyramid, {"f": focuslitenn_scorer(model)}, level=1, tile_patches=2)
    direct, _ = compute_heatmap(ArraySlide([level1]), {"f": focuslitenn_scorer(model)})
    assert (geom.level, geom.downsample, geom.shape) == (1, 2.0, ((640 - 235) // 128 + 1,) * 2)
    assert geom.cell_rect_level0(1, 2) == (2 * 128 * 2.0, 128 * 2.0, 235 * 2.0, 235 * 2.0)
    np.testing.assert_allclose(maps["f"], direct["f"], atol=1e-5, equal_nan=True)


@pytest.mark.parametrize("width", [491, 1131])   # (W − 235) ≡ 256 (mod 640): the last patch's grid starts 4 px in
def test_a_patch_at_the_slide_edge_is_scored_from_its_own_pixels_only(width):
    """No pooling window reaches past its patch: the patch that ends at the slide's right edge
    scores as it does when the slide goes on (no white padding read)."""
    from engine.fqa.focuslitenn import load_model

    rgb = cmu_region()[-300:, -(width + 1):]   # tissue on the right of the region
    scorer = {"f": focuslitenn_scorer(load_model("focuslitenn-1"))}
    edge, _ = compute_heatmap(ArraySlide([rgb[:, :width]]), scorer)
    wider, _ = compute_heatmap(ArraySlide([rgb]), scorer)
    assert edge["f"].shape == wider["f"].shape and np.isfinite(edge["f"][:, -1]).all()
    np.testing.assert_allclose(edge["f"], wider["f"], atol=1e-5)  # NaN (glass) where both are


def test_classical_metric_heatmaps_do_not_depend_on_the_block_size():
    """Every block is read with a halo, so the metrics' filters see a patch's real neighbours
    whichever block it falls in: no seams, and tiles of any size agree."""
    from engine.fqa.heatmap import metric_scorer

    slide = ArraySlide([cmu_region()[-900:, -1100:]])
    names = ["brenner", "tenengrad", "difference_of_gaussians", "wavelet_ratio", "energy_of_laplacian"]
    scorers = {n: metric_scorer(METRICS[n]) for n in names}
    small, _ = compute_heatmap(slide, scorers, tile_patches=2, prefetch=False)
    large, _ = compute_heatmap(slide, scorers, tile_patches=8, prefetch=False)
    for n in names:
        assert np.isfinite(large[n]).sum() > 10
        np.testing.assert_allclose(small[n], large[n], rtol=1e-5, err_msg=n)
