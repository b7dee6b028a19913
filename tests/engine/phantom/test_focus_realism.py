"""The focus-relevant realism measure (HF power fraction and its fall-off with defocus) and the
phantom's tissue version 2: known answers on synthetic images, v2 against the real images, and
v2 as deterministic and seamless as v1."""
from __future__ import annotations

import numpy as np
import pytest

from engine.phantom import realism_measures as M
from engine.phantom.optics import Optics, otf_defocus
from engine.phantom.render import BLOCK
from engine.phantom.slide import PhantomSlide
from engine.phantom.tissue_params import TissueParams, tissue_params
from tests.engine.phantom.test_realism import power_law_noise
from tests.paths import SHARED_DATA

UM = 0.5  # µm per px of the synthetic images


def grey(y: np.ndarray) -> np.ndarray:
    """uint8 RGB with every channel = y (grey levels), rounded."""
    return np.repeat(np.clip(np.round(y), 0, 255)[..., None], 3, axis=2).astype(np.uint8)


def power_law(n: int, exponent: float, seed: int = 0) -> np.ndarray:
    """Grey image (mean 120, σ 20) whose power spectrum falls as f^-exponent."""
    return power_law_noise(n, exponent, seed, mean=120.0, std=20.0)


class TestHFFraction:
    def test_two_equal_sinusoids_one_in_the_band_give_one_half(self):
        n = 256
        yy, xx = np.mgrid[:n, :n] * UM                    # µm
        # 0.75 cycles/µm (in the 0.5–1 band) and 0.125 cycles/µm (below it), same amplitude
        y = 120 + 10 * np.cos(2 * np.pi * 0.75 * xx) + 10 * np.cos(2 * np.pi * 0.125 * yy)
        frac = M.hf_fraction(grey(y), UM, tissue=np.ones((n, n), bool))
        assert frac == pytest.approx(0.5, abs=0.03)

    def test_a_power_law_spectrum_gives_its_analytic_share(self):
        # P ∝ f^-2: the share of [0.5, 1) in [f_min, 1) is ln 2 / ln(1 / f_min), f_min = 2 / 128 µm
        n = 256
        expected = np.log(2.0) / np.log(1.0 / (2.0 / (n * UM)))
        fracs = [M.hf_fraction(power_law(n, 2.0, seed), UM, tissue=np.ones((n, n), bool))
                 for seed in range(4)]
        assert np.mean(fracs) == pytest.approx(expected, rel=0.15)
        steep = M.hf_fraction(power_law(n, 3.0), UM, tissue=np.ones((n, n), bool))
        assert steep < 0.5 * expected                      # a softer spectrum has less HF power

    def test_glass_does_not_count(self):
        n = 256
        img = power_law(n, 2.0)
        tissue = np.zeros((n, n), bool)
        tissue[:, : n // 2] = True
        noisy_glass = img.copy()                           # white noise on the glass half
        rng = np.random.default_rng(3)
        noisy_glass[:, n // 2:] = np.clip(235 + rng.normal(0, 6, (n, n // 2, 1)), 0, 255).astype(np.uint8)
        a = M.hf_fraction(noisy_glass, UM, tissue=tissue)
        b = M.hf_fraction(img, UM, tissue=tissue)
        assert a == pytest.approx(b, rel=0.25)             # glass noise (HF-rich) is left out

    def test_band_above_nyquist_and_bare_glass_are_refused(self):
        img = power_law(64, 2.0)
        with pytest.raises(ValueError, match="Nyquist"):
            M.hf_fraction(img, UM, band=(1.0, 2.0))
        assert np.isnan(M.hf_fraction(img, UM, tissue=np.zeros((64, 64), bool)))


class TestDefocusBlur:
    def test_a_sinusoid_is_attenuated_by_the_otf_ratio(self):
        n, nu, dz = 256, 0.5, 1.0                          # 0.5 cycles/µm: 64 full periods
        x = np.arange(n) * UM
        od = 0.3 + 0.05 * np.cos(2 * np.pi * nu * x)[None, :] * np.ones((n, 1))
        img = np.repeat((255 * 10 ** -od)[..., None], 3, axis=2)
        out = M.defocus_blur(np.round(img).astype(np.uint8), UM, dz)
        g = Optics()
        expected = otf_defocus(nu, dz, g.wavelengths_um[1]) / otf_defocus(nu, 0.0, g.wavelengths_um[1])
        got_od = M.optical_density(out)[64:-64, 64:-64, 1]
        amp = (got_od.max() - got_od.min()) / 2
        assert amp / 0.05 == pytest.approx(abs(float(expected)), abs=0.04)

    def test_zero_defocus_is_the_identity_and_more_defocus_less_hf(self):
        img = power_law(128, 2.0)
        assert np.array_equal(M.defocus_blur(img, UM, 0.0), img)
        t = np.ones((128, 128), bool)
        hf = [M.hf_fraction(M.defocus_blur(img, UM, dz), UM, tissue=t) for dz in (0, 1, 2, 3)]
        assert hf[0] > hf[1] > hf[2] and hf[1] < 0.6 * hf[0]


# ----------------------------------------------------------------- tissue version 2

def test_version_1_is_the_default_and_its_identity_is_unchanged():
    s = PhantomSlide(seed=0, size=(4096, 4096))
    assert s.tissue_version == 1 and s.params == TissueParams()
    # The params digest of v1 is the one every cache and shipped model was keyed with.
    assert s.uid.endswith("params=76ba991154ec")
    v2 = PhantomSlide(seed=0, size=(4096, 4096), tissue_version=2)
    assert v2.params == tissue_params(2) and v2.uid != s.uid
    assert PhantomSlide.from_spec("phantom:v2,seed=3").params.tissue_version == 2
    assert PhantomSlide.from_spec("phantom:seed=3,version=2").tissue_version == 2
    assert PhantomSlide.from_spec("phantom:seed=3").tissue_version == 1
    with pytest.raises(ValueError, match="tissue version"):
        PhantomSlide(seed=0, size=(4096, 4096), tissue_version=3)


@pytest.fixture(scope="module")
def v2_slide():
    return PhantomSlide(seed=0, planes=3, spacing_um=1.0, tissue_version=2)


TISSUE_BLOCK = (60, 80)


def test_v2_one_large_read_equals_four_stitched_reads_bit_for_bit(v2_slide):
    bi, bj = TISSUE_BLOCK
    x, y = bj * BLOCK - 300, bi * BLOCK - 300          # straddles four render blocks
    whole = v2_slide.read_region(0, x, y, 1024, 1024, plane=1)
    parts = np.empty_like(whole)
    for dy in (0, 512):
        for dx in (0, 512):
            parts[dy:dy + 512, dx:dx + 512] = v2_slide.read_region(0, x + dx, y + dy, 512, 512, plane=1)
    assert np.array_equal(whole, parts)
    assert whole.mean() < 225                            # tissue, not glass


def test_v2_is_deterministic_across_instances_and_differs_from_v1(v2_slide):
    bi, bj = TISSUE_BLOCK
    x, y = bj * BLOCK + 40, bi * BLOCK + 40
    a = v2_slide.truth(0, x, y, 256, 256, 0.3)
    b = PhantomSlide(seed=0, planes=3, spacing_um=1.0, tissue_version=2).truth(0, x, y, 256, 256, 0.3)
    assert np.array_equal(a, b)
    v1 = PhantomSlide(seed=0, planes=3, spacing_um=1.0).truth(0, x, y, 256, 256, 0.3)
    assert not np.array_equal(a, v1)


def test_v2_coarse_level_keeps_the_mean_colour_of_level_0(v2_slide):
    bi, bj = TISSUE_BLOCK
    x, y = bj * BLOCK, bi * BLOCK
    fine = v2_slide.truth(0, x, y, 512, 512, 0.0).astype(float)
    coarse = v2_slide.truth(2, x, y, 128, 128, 0.0).astype(float)
    assert np.abs(fine.mean(axis=(0, 1)) - coarse.mean(axis=(0, 1))).max() < 6.0


needs_data = pytest.mark.skipif(not (SHARED_DATA / "tiles" / "tcga-lung-rgb.png").exists(),
                                reason=f"real images not found in {SHARED_DATA}")


@pytest.mark.slow
@needs_data
def test_v2_hf_at_best_focus_is_in_the_real_range_and_nearer_their_median_than_v1():
    """The report's protocol (seed 0, 4 block-aligned windows at their best focus) for both
    versions against the real H&E images' in-focus HF fractions (log scale)."""
    from engine.phantom.realism import make_phantom, phantom_focus_series, reference_stats
    refs = [r for r in reference_stats(SHARED_DATA, n_patches=4) if r.structural and r.family == "he"]
    real = np.array([r.summary["hf_best_focus"] for r in refs])
    assert len(real) >= 3
    med = np.log10(np.median(real))
    hf = {}
    for v in (1, 2):
        series, _ = phantom_focus_series(make_phantom(0, "he", 8192, tissue_version=v), 4)
        hf[v] = float(np.nanmedian(series[:, 0]))
    assert real.min() <= hf[2] <= real.max()
    assert abs(np.log10(hf[2]) - med) < abs(np.log10(hf[1]) - med)


def test_the_shipped_v2_calibration_is_the_measured_one():
    from engine.phantom.calibration_table import TABLE
    from engine.phantom.volume import TissueVolume
    vol = TissueVolume(0, params=tissue_params(2))
    assert vol.calibration_key() in TABLE
    fresh = vol.measure_calibration()
    for name, v in TABLE[vol.calibration_key()].items():
        assert np.allclose(fresh[name], v, atol=1e-5), name
