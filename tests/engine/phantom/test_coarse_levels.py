"""The built-in slide's coarse levels (rendered from band-limited statistics, not cells) agree
with its level 0 area-averaged to the same pitch: mean colour and structure, not a mosaic of
pixel-sized patches."""
import numpy as np
import pytest

from engine.phantom.layout import Sampler, looseness, looseness_area
from engine.phantom.slide import PhantomSlide
from engine.phantom.tissue_params import TissueParams

LUMA = np.array([0.299, 0.587, 0.114])
#: 512 µm of stroma (dense and loose), glands and fat on the default slide, level-0 px.
X0, Y0, N0 = 24576, 24576, 2048


@pytest.fixture(scope="module")
def slide_and_level0():
    slide = PhantomSlide(noise=False, scanner_error=False)
    return slide, slide.truth(0, X0, Y0, N0, N0, 0.0).astype(np.float64)


def test_level_6_agrees_with_level_0_area_averaged(slide_and_level0):
    """Level 6 (16 µm/px, 32 × 32 px) of the region against its level 0 (0.25 µm/px) averaged
    over 64 × 64 px boxes. The centre-sampled loose-stroma weight gave a mean abs difference
    of 11.5 grey levels and a luma correlation of 0.918; its pixel-area fraction gives 9.0 and
    0.959."""
    slide, fine = slide_and_level0
    d = 64
    n = N0 // d
    ref = fine.reshape(n, d, n, d, 3).mean(axis=(1, 3))
    coarse = slide.truth(6, X0, Y0, n, n, 0.0).astype(np.float64)
    mean_abs = np.abs(coarse - ref).mean()
    corr = np.corrcoef((coarse @ LUMA).ravel(), (ref @ LUMA).ravel())[0, 1]
    mean_diff = np.abs(coarse.reshape(-1, 3).mean(0) - ref.reshape(-1, 3).mean(0))
    assert mean_diff.max() < 4.0, mean_diff             # grey levels per channel
    assert mean_abs < 10.0, mean_abs                    # grey levels
    assert corr > 0.945, corr


@pytest.mark.parametrize("px_um", [16.0, 32.0, 64.0])
def test_the_coarse_loose_fraction_is_the_pixel_mean_of_the_fine_field(px_um):
    """The fraction of loose stroma of a coarse pixel (levels 6–8) is the mean of the fine
    looseness over the pixel (sampled every 1 µm here), within 0.03; the value at the pixel's
    centre is off by 0.15–0.4."""
    p = TissueParams()
    n, f = 40, int(px_um)
    xf = 6000.0 + (np.arange(n * f) + 0.5) * px_um / f
    truth = looseness(Sampler(xf, xf, px_um / f, True), 0, p).reshape(n, f, n, f).mean(axis=(1, 3))
    xc = 6000.0 + (np.arange(n) + 0.5) * px_um
    coarse = Sampler(xc, xc, px_um, True)
    assert np.abs(looseness_area(coarse, 0, p) - truth).mean() < 0.03
    assert np.abs(looseness(coarse, 0, p) - truth).mean() > 0.1     # what the mosaic was
    # Limiting the work to a mask leaves the masked pixels exact and the others 0.
    where = np.zeros((n, n), bool)
    where[5:20, 10:30] = True
    part = looseness_area(coarse, 0, p, where=where)
    np.testing.assert_allclose(part[where], looseness_area(coarse, 0, p)[where], atol=1e-6)
