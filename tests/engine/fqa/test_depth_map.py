"""Best-focus depth maps: the parabola through the best plane and its neighbours, and real
tissue z-stacks (OME-TIFF) whose sharpest plane is known because we blurred the others."""
import numpy as np
import pytest

from engine.fqa.depth_map import DepthMapSlide, best_focus_depth, compute_depth_map, parabola_vertex
from engine.slides import open_slide
from tests.engine.fqa.kernel_model import write_laplacian_weights
from tests.engine.fqa.real_tissue import cmu_region, gaussian_blur, write_ome_stack

#: Gaussian σ (px) per µm of defocus for the synthetic stacks.
SIGMA_PER_UM = 1.2


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return write_laplacian_weights(tmp_path_factory.mktemp("weights") / "log.pt")


@pytest.fixture(scope="module")
def tissue():
    return cmu_region()


def defocus_stack(folder, tissue, planes_um, focus_um):
    """An OME-TIFF z-stack of real tissue in focus at ``focus_um``: plane z is blurred by a
    Gaussian of σ = SIGMA_PER_UM·|z − focus|."""
    planes = [gaussian_blur(tissue, SIGMA_PER_UM * abs(z - focus_um)) for z in planes_um]
    return write_ome_stack(folder / f"focus{focus_um:+g}.ome.tiff", planes, planes_um)


# ------------------------------------------------------------------ the parabola
def test_the_vertex_of_a_parabola_through_unevenly_spaced_planes():
    z = np.array([[-1.0], [0.5], [2.0]])
    for true in (-0.7, 0.1, 0.5, 1.9):
        s = 3.0 * (z - true) ** 2 + 1.0
        assert parabola_vertex(z, s)[0] == pytest.approx(true)


def test_equal_scores_keep_the_middle_plane():
    assert parabola_vertex(np.array([[0.0], [1.0], [2.0]]), np.ones((3, 1)))[0] == 1.0


def test_depth_interpolates_between_planes_and_never_extrapolates():
    z = np.array([-2.0, -1.0, 0.0, 1.0, 2.0])
    truth = np.array([-1.4, -0.25, 0.4, 1.3, 1.8, 2.7, -3.0])
    scores = (z[:, None] - truth[None]) ** 2
    depth = best_focus_depth(scores, z)
    np.testing.assert_allclose(depth[:4], truth[:4], atol=1e-6)
    # best plane at an end of the stack (1.8 lies nearer the last plane): that plane itself
    np.testing.assert_allclose(depth[4:], [2.0, 2.0, -2.0])


def test_glass_everywhere_is_nan_and_a_glass_neighbour_keeps_the_best_plane():
    z = [0.0, 1.0, 2.0]
    s = np.array([[np.nan, 3.0], [np.nan, 1.0], [np.nan, np.nan]])
    depth = best_focus_depth(s, z)
    assert np.isnan(depth[0]) and depth[1] == 1.0


def test_bad_planes_are_refused():
    with pytest.raises(ValueError, match="ascending"):
        best_focus_depth(np.zeros((3, 2)), [0.0, 2.0, 1.0])
    with pytest.raises(ValueError, match="score planes"):
        best_focus_depth(np.zeros((2, 2)), [0.0, 1.0, 2.0])


# ------------------------------------------------------------------ real tissue stacks
def test_the_sharp_plane_wins(tmp_path, tissue, weights):
    path = defocus_stack(tmp_path, tissue, [-2.0, -1.0, 0.0, 1.0, 2.0], focus_um=0.0)
    with open_slide(path) as slide:
        depth, scores, geom = compute_depth_map(slide, weights)
    tissue_cells = np.isfinite(depth)
    assert scores.shape == (5,) + geom.shape and depth.shape == geom.shape
    assert tissue_cells.sum() > 20 and np.isnan(depth[:, 0]).all()
    assert np.all(np.nanargmin(np.where(np.isfinite(scores), scores, np.inf), axis=0)[tissue_cells] == 2)
    assert np.all(np.abs(depth[tissue_cells]) < 0.5)


def test_focus_between_planes_is_interpolated(tmp_path, tissue, weights):
    path = defocus_stack(tmp_path, tissue, [-1.0, 0.0, 1.0, 2.0], focus_um=0.3)
    with open_slide(path) as slide:
        depth, _, _ = compute_depth_map(slide, weights)
    d = depth[np.isfinite(depth)]
    between = (d > 0.0) & (d < 1.0)
    assert between.mean() >= 0.95, "the parabola should put z* strictly between the planes at 0 and 1 µm"
    assert 0.05 < np.median(d) < 0.5  # nearer the plane at 0 µm, where the tissue is sharper


def test_a_classical_metric_finds_the_same_plane(tmp_path, tissue):
    path = defocus_stack(tmp_path, tissue, [-1.0, 0.0, 1.0], focus_um=-1.0)
    with open_slide(path) as slide:
        depth, _, _ = compute_depth_map(slide, "variance_of_laplacian")
    d = depth[np.isfinite(depth)]
    assert d.size > 20 and np.all(d == -1.0)


def test_the_depth_map_as_a_computed_slide(tmp_path, tissue, weights):
    path = defocus_stack(tmp_path, tissue, [-1.0, 0.0, 1.0, 2.0], focus_um=0.3)
    with open_slide(path) as slide:
        expected, _, geom = compute_depth_map(slide, weights)
        dm = DepthMapSlide(slide, weights, block_patches=4)
        assert dm.uid.startswith(slide.uid + "|depthmap|")
        assert dm.value_range == (-1.0, 2.0) and dm.planes_um == (0.0,) and dm.geometry == geom
        np.testing.assert_allclose(dm.grid(), expected, atol=1e-6)
        rgb = dm.read_region(0, 0, 0, *dm.dimensions)
        glass = np.isnan(dm.scores_for_region(0, 0, 0, *dm.dimensions))
        assert np.all(rgb[glass] == 255) and not np.all(rgb[~glass] == 255)


def test_a_single_plane_slide_has_no_depth_map(tmp_path, tissue, weights):
    path = write_ome_stack(tmp_path / "one.ome.tiff", [tissue], [0.0])
    with open_slide(path) as slide:
        with pytest.raises(ValueError, match="at least 2 focal planes"):
            DepthMapSlide(slide, weights)
        with pytest.raises(ValueError, match="at least 2 focal planes"):
            compute_depth_map(slide, weights)


def sparse_dots(size: int = 760, coverage: float = 0.2, seed: int = 4) -> np.ndarray:
    """Dark round dots (3 px radius) on white glass covering about ``coverage`` of the image:
    pale, sparse tissue whose sharp plane has fewer tissue pixels than its blurred ones."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    img = np.full((size, size, 3), 240, np.uint8)
    ink = np.zeros((size, size), bool)
    while ink.mean() < coverage:
        cy, cx = rng.integers(0, size, 2)
        ys, xs = slice(max(cy - 4, 0), cy + 5), slice(max(cx - 4, 0), cx + 5)
        ink[ys, xs] |= (yy[ys, xs] - cy) ** 2 + (xx[ys, xs] - cx) ** 2 <= 9
    img[ink] = (70, 40, 110)
    return img


def test_sparse_tissue_glass_in_its_sharp_plane_still_finds_the_sharp_plane(tmp_path, weights):
    """Blur spreads dark pixels: a cell can be glass (< 25 % tissue pixels) in its sharp plane and
    tissue in the blurred ones. One tissue mask for all planes keeps the sharp plane in the race."""
    from engine.fqa.heatmap import heatmap_geometry, tissue_scorer
    from engine.fqa.tissue import tissue_pixels

    sharp = sparse_dots()
    planes_um = [-1.0, 0.0, 1.0]
    path = write_ome_stack(tmp_path / "sparse.ome.tiff", [gaussian_blur(sharp, 3.0), sharp, gaussian_blur(sharp, 3.0)],
                           planes_um)
    with open_slide(path) as slide:
        geom = heatmap_geometry(slide)
        per_plane = [tissue_scorer(slide.read_region(0, 0, 0, *slide.dimensions, p), 235, 128) for p in range(3)]
        assert tissue_pixels(sharp).mean() < 0.25 and not per_plane[1].any() and per_plane[0].all()
        depth, scores, _ = compute_depth_map(slide, weights)
        lazy = DepthMapSlide(slide, weights).cells(0, geom.shape[0], 0, geom.shape[1])
    assert np.isfinite(depth).all() and np.isfinite(scores).all()
    assert np.all(np.abs(depth) < 0.5), depth
    np.testing.assert_allclose(lazy, depth, atol=1e-5)
