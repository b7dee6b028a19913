"""Heatmaps as computed slides: same geometry as their base, lazily computed blocks in a bounded
cache, raw scores per pixel, colours with glass white (RGB) or transparent (RGBA), and tiles
served by the real tile store."""
import threading

import numpy as np
import pytest

from engine.colormaps import colorize
from engine.fqa.heatmap import compute_heatmap, focuslitenn_scorer
from engine.fqa.heatmap_source import HeatmapSlide, cell_indices
from engine.slides import ArraySlide, open_slide
from engine.tiles import TileStore
from tests.engine.fqa.kernel_model import laplacian_model, write_laplacian_weights
from tests.engine.fqa.real_tissue import cmu_region, gaussian_blur, write_ome_stack

RANGE = (-60.0, -5.0)


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return write_laplacian_weights(tmp_path_factory.mktemp("weights") / "log.pt")


@pytest.fixture(scope="module")
def stack_path(tmp_path_factory):
    """A two-plane OME-TIFF of the CMU crop (z = 0 sharp, z = 2 µm blurred), 1280×1280 px."""
    rgb = cmu_region()
    return write_ome_stack(tmp_path_factory.mktemp("ome") / "two.ome.tiff", [rgb, gaussian_blur(rgb, 2.0)],
                           [0.0, 2.0])


@pytest.fixture()
def base(stack_path):
    with open_slide(stack_path) as slide:
        yield slide


@pytest.fixture(scope="module")
def expected(stack_path):
    with open_slide(stack_path) as slide:
        return compute_heatmap(slide, {"f": focuslitenn_scorer(laplacian_model())}, plane=0)


def test_a_heatmap_has_the_geometry_of_its_base_and_one_plane(base, weights, expected):
    hm = HeatmapSlide(base, weights, plane=1, value_range=RANGE)
    assert hm.levels == base.levels and hm.mpp == base.mpp and hm.dimensions == base.dimensions
    assert hm.planes_um == (2.0,) and hm.format == "heatmap"
    assert hm.geometry == expected[1]


def test_uid_folds_base_model_plane_and_colour_scale(base, weights, tmp_path):
    a = HeatmapSlide(base, weights, plane=0, value_range=RANGE)
    assert a.uid.startswith(base.uid + "|heatmap|")
    assert "plane=0" in a.uid and "z=0" in a.uid
    assert a.uid == HeatmapSlide(base, weights, plane=0, value_range=RANGE).uid
    other_weights = laplacian_model()
    other_weights.w_max.data.fill_(-2.0)
    others = [HeatmapSlide(base, weights, plane=1, value_range=RANGE),
              HeatmapSlide(base, weights, plane=0, value_range=(0.0, 1.0)),
              HeatmapSlide(base, other_weights, plane=0, value_range=RANGE),
              HeatmapSlide(base, "brenner", plane=0, value_range=RANGE)]
    assert len({a.uid} | {o.uid for o in others}) == 5


def test_the_grid_is_the_whole_slide_heatmap(base, weights, expected):
    hm = HeatmapSlide(base, weights, value_range=RANGE, block_patches=4)
    np.testing.assert_allclose(hm.grid(), expected[0]["f"], atol=1e-5, equal_nan=True)


def test_scores_per_pixel_take_the_cell_centred_under_them(base, weights, expected):
    hm = HeatmapSlide(base, weights, value_range=RANGE)
    grid = expected[0]["f"]
    geom = hm.geometry
    r, c = np.argwhere(np.isfinite(grid))[5]
    # cell (r, c) is shown on [128c + 53.5, 128c + 181.5) in x, likewise in y: the pixels
    # whose centres lie there are 128c + 53 … 128c + 180
    x0, y0 = 128 * c + 53, 128 * r + 53
    block = hm.scores_for_region(0, x0, y0, 128, 128)
    assert np.all(block == grid[r, c])
    assert list(cell_indices(np.array([53.4, 53.5, 181.4, 181.5]), geom, 0)) == [0, 0, 0, 1]
    # border cells reach the outer edges of their patches; beyond the last patch, no cell
    n = geom.shape[1]
    end = (n - 1) * 128 + 235
    assert list(cell_indices(np.array([-0.5, 0.0, end - 0.5, end + 0.5]), geom, 0)) == [-1, 0, n - 1, -1]
    assert np.isnan(hm.scores_for_region(0, end, 0, 1280 - end, 10)).all()
    left = hm.scores_for_region(0, x0 - 1, y0, 1, 1)[0, 0]
    assert left == grid[r, c - 1] or (np.isnan(left) and np.isnan(grid[r, c - 1]))


def test_coarse_levels_sample_the_same_cells(weights):
    pyramid = ArraySlide([cmu_region()], mpp=(0.499, 0.499))  # levels at downsample 1, 2, 4, 8
    hm = HeatmapSlide(pyramid, weights, value_range=RANGE)
    assert [lv.downsample for lv in hm.levels] == [1.0, 2.0, 4.0, 8.0]
    fine = hm.scores_for_region(0, 0, 0, *hm.dimensions)
    lv = hm.levels[2]
    coarse = hm.scores_for_region(2, 0, 0, lv.width, lv.height)
    # a level-2 pixel shows the cell under its centre, level-0 px 4·i + 2
    np.testing.assert_array_equal(coarse, fine[2::4, 2::4])
    assert hm.read_region(2, 0, 0, lv.width, lv.height).shape == (lv.height, lv.width, 3)


def test_pixels_are_the_colour_map_with_glass_white_or_transparent(base, weights):
    hm = HeatmapSlide(base, weights, value_range=RANGE)
    x, y, w, h = 0, 300, 900, 500
    values = hm.scores_for_region(0, x, y, w, h)
    rgb = hm.read_region(0, x, y, w, h)
    rgba = hm.read_rgba(0, x, y, w, h)
    colours = colorize(values, *RANGE)
    glass = np.isnan(values)
    assert glass.any() and (~glass).any()
    assert np.all(rgb[glass] == 255)
    assert np.all(rgba[..., 3][glass] == 0) and np.all(rgba[..., 3][~glass] == 255)
    np.testing.assert_array_equal(rgb[~glass], colours[..., :3][~glass])
    assert not (rgb[~glass] == 255).all(axis=-1).any()  # pure white means "no value" only
    assert hm.legend().shape == (60, 320, 3)


def test_blocks_are_computed_lazily_once_and_the_cache_is_bounded(base, weights):
    hm = HeatmapSlide(base, weights, value_range=RANGE, block_patches=4)
    hm.read_region(0, 700, 700, 64, 64)
    assert hm.cache.computed == 1
    hm.read_region(0, 700, 700, 64, 64)
    assert hm.cache.computed == 1
    small = HeatmapSlide(base, weights, value_range=RANGE, block_patches=4, cache_bytes=2 * 4 * 4 * 4)
    full = small.grid()
    n_blocks = 3 * 3  # a 9×9 grid in blocks of 4×4 cells
    assert small.geometry.shape == (9, 9) and small.cache.computed == n_blocks
    assert small.cache.nbytes <= 2 * 4 * 4 * 4 and len(small.cache) < n_blocks
    np.testing.assert_array_equal(small.grid(), full)  # evicted blocks are computed again
    assert small.cache.computed > n_blocks


def test_concurrent_readers_share_each_block(base, weights):
    hm = HeatmapSlide(base, weights, value_range=RANGE, block_patches=4)
    out, barrier = [], threading.Barrier(6)

    def read():
        barrier.wait()
        out.append(hm.read_region(0, 0, 0, 1280, 1280))

    threads = [threading.Thread(target=read) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    n_blocks = -(-hm.geometry.shape[0] // 4) * -(-hm.geometry.shape[1] // 4)
    assert hm.cache.computed == n_blocks
    assert all(np.array_equal(o, out[0]) for o in out)


def test_the_tile_store_serves_heatmap_tiles(base, weights):
    hm = HeatmapSlide(base, weights, value_range=RANGE)
    store = TileStore(workers=2)
    try:
        req = store.request(hm, 0, 1, 1)
        tile = store.fetch(req).result(timeout=60)
        ts = req.tile_size
        np.testing.assert_array_equal(tile, hm.read_region(0, ts, ts, ts, ts))
        assert store.request(hm, 0, 1, 1).slide_uid != store.request(base, 0, 1, 1).slide_uid
    finally:
        store.close()


def test_automatic_colour_scale_comes_from_tissue_near_the_centre(base, weights, expected):
    hm = HeatmapSlide(base, weights)
    vmin, vmax = hm.value_range
    finite = expected[0]["f"][np.isfinite(expected[0]["f"])]
    assert finite.min() <= vmin < vmax <= finite.max()
    assert "range=auto" in hm.uid


def test_a_classical_metric_heatmap_source(base):
    hm = HeatmapSlide(base, "variance_of_laplacian", value_range=(-1e-3, 0.0))
    grid = hm.grid()
    assert np.isfinite(grid).any() and np.isnan(grid).any()
    assert "variance_of_laplacian" in hm.label


def test_a_plane_that_does_not_exist_is_refused(base, weights):
    with pytest.raises(ValueError, match="plane 2"):
        HeatmapSlide(base, weights, plane=2)
