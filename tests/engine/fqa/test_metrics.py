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


def _decimated_haar(x):
    """One level of the orthonormal 2D Haar DWT: (LL, |HL| + |LH| + |HH|) on 2×2 blocks."""
    a, b, c, d = x[0::2, 0::2], x[0::2, 1::2], x[1::2, 0::2], x[1::2, 1::2]
    detail = (np.abs(a - b + c - d) + np.abs(a + b - c - d) + np.abs(a - b - c + d)) / 2
    return (a + b + c + d) / 2, detail


def test_wavelet_ratio_is_eq_2_14_on_the_orthonormal_dwt(tissue):
    """The undecimated maps, read on the decimated grid, are the orthonormal DWT's coefficients
    (up to the 2^i normalisation); the ratio ‖LL³‖₁ / Σ_{i=2,3} ‖D^i‖₁ (Eq. 2.14) then follows."""
    from engine.fqa.metrics import _haar_step, _wavelet_ratio

    g = to_gray(tissue[:128, :128]).astype(np.float64)
    ll, dets = g, {}
    for i in (1, 2, 3):
        ll, dets[i] = _decimated_haar(ll)
    ll1, _ = _haar_step(g, 1)
    ll2, d2 = _haar_step(ll1, 2)
    ll3, d3 = _haar_step(ll2, 4)
    # Away from the right/bottom edge (edge-replicated taps), sampled maps equal the coefficients.
    np.testing.assert_allclose(4 * d2[0:120:4, 0:120:4], dets[2][:30, :30], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(8 * d3[0:112:8, 0:112:8], dets[3][:14, :14], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(8 * ll3[0:112:8, 0:112:8], ll[:14, :14], rtol=1e-4)
    want = np.abs(ll).sum() / (dets[2].sum() + dets[3].sum())
    got = _wavelet_ratio([ll3[::8, ::8].mean(), d2[::4, ::4].mean(), d3[::8, ::8].mean()])
    assert got == pytest.approx(want, rel=0.02)  # the last row/column of taps is edge-replicated
