"""Classical sharpness metrics (thesis Ch. 2) on real tissue: dense grids equal separate
patches, and every metric ranks a copy defocused through the phantom's PSF as blurrier."""
import re

import numpy as np
import pytest

from engine.fqa.metrics import METRICS, to_gray, window_means
from tests.engine.fqa.real_tissue import CMU_MPP, cmu_region, psf_blur


@pytest.fixture(scope="module")
def tissue():
    return cmu_region((600, 1500, 512, 512))  # H&E, no glass


def test_at_least_eight_metrics_each_named_with_its_equation():
    assert len(METRICS) >= 8
    for name, m in METRICS.items():
        assert m.name == name and re.match(r"Eq\. 2\.\d+", m.equation), (name, m.equation)


def test_window_means_equal_direct_means():
    rng = np.random.default_rng(0)
    v = rng.random((50, 61)).astype(np.float32)
    got = window_means(v, 20, 7)
    want = np.array([[v[r:r + 20, c:c + 20].mean() for c in range(0, 61 - 20 + 1, 7)]
                     for r in range(0, 50 - 20 + 1, 7)])
    np.testing.assert_allclose(got, want, rtol=1e-5)


@pytest.mark.parametrize("name", sorted(m for m in METRICS if METRICS[m].per_patch is None))
def test_a_dense_grid_equals_scoring_each_window(name, tissue):
    m = METRICS[name]
    gray = to_gray(tissue[:200, :260])
    grid = m.score_grid(gray, 64, 48)
    # Per-pixel maps see the whole image (filters near a window's edge read its neighbours), so
    # compare with each window scored inside the whole image: the same map, one window mean.
    maps = m.maps(gray)
    for r in range(grid.shape[0]):
        for c in range(grid.shape[1]):
            means = [x[48 * r:48 * r + 64, 48 * c:48 * c + 64].mean(dtype=np.float64) for x in maps]
            want = means[0] if m.combine is None else m.combine([np.array(x) for x in means])
            assert grid[r, c] == pytest.approx(float(want), rel=1e-4, abs=1e-9)


@pytest.mark.parametrize("name", sorted(METRICS))
def test_defocus_through_the_psf_scores_blurrier(name, tissue):
    m = METRICS[name]
    sharp = to_gray(tissue)[None]
    scores = [m.blur_score(m.score_patches(sharp))[0]]
    for dz in (1.0, 3.0):
        scores.append(m.blur_score(m.score_patches(to_gray(psf_blur(tissue, dz, CMU_MPP))[None]))[0])
    if name in ("variance", "normalized_variance", "entropy"):
        # First-order statistics barely see 1 µm at 0.5 µm/px; they must still see 3 µm.
        assert scores[2] > scores[0], scores
    else:
        assert scores[0] < scores[1] < scores[2], scores
