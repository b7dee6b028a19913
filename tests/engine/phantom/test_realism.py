"""Realism measures: known answers on synthetic images, sane spreads on the real ones, and the
report on a small phantom configuration (when the phantom exists)."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from scipy import ndimage as ndi

from engine.phantom import realism_measures as M
from tests.paths import SHARED_DATA

UM = 0.5  # µm per px of the synthetic images


def beer_lambert(od_h: np.ndarray, od_e: np.ndarray | None = None) -> np.ndarray:
    """uint8 RGB of haematoxylin (and eosin) amounts in decadic OD, skimage's stain vectors."""
    from skimage.color import rgb_from_hed
    od = od_h[..., None] * rgb_from_hed[0]
    if od_e is not None:
        od = od + od_e[..., None] * rgb_from_hed[1]
    return np.clip(np.round(255.0 * 10.0 ** (-od)), 0, 255).astype(np.uint8)


def power_law_noise(n: int, exponent: float, seed: int = 0, mean: float = 150.0, std: float = 30.0) -> np.ndarray:
    """uint8 grey-as-RGB image (``mean``, ``std`` grey levels) whose power spectrum falls as f^-exponent."""
    rng = np.random.default_rng(seed)
    f = np.hypot(*np.meshgrid(np.fft.fftfreq(n), np.fft.fftfreq(n)))
    f[0, 0] = 1.0
    spec = (rng.normal(size=(n, n)) + 1j * rng.normal(size=(n, n))) * f ** (-exponent / 2)
    spec[0, 0] = 0
    x = np.real(np.fft.ifft2(spec))
    x = mean + std * x / x.std()
    return np.repeat(np.clip(x, 0, 255)[..., None], 3, axis=2).astype(np.uint8)


def discs(diam_um: float, n_side: int = 5, size: int = 256) -> np.ndarray:
    """Haematoxylin discs of a known diameter on pale eosin 'cytoplasm'."""
    yy, xx = np.mgrid[:size, :size]
    h = np.zeros((size, size))
    r = diam_um / UM / 2
    for cy in np.linspace(size / (2 * n_side), size - size / (2 * n_side), n_side):
        for cx in np.linspace(size / (2 * n_side), size - size / (2 * n_side), n_side):
            h[(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = 0.8
    return beer_lambert(h, np.full((size, size), 0.25))


class TestColour:
    def test_pure_haematoxylin_gives_its_optical_density(self):
        img = beer_lambert(np.full((8, 8), 0.6))
        hed = M.stain_od(img)
        assert hed[..., 0].mean() == pytest.approx(0.6, abs=0.02)
        assert np.abs(hed[..., 1:]).max() < 0.03

    def test_eosin_only_has_no_haematoxylin(self):
        img = beer_lambert(np.zeros((8, 8)), np.full((8, 8), 0.4))
        hed = M.stain_od(img)
        assert hed[..., 1].mean() == pytest.approx(0.4, abs=0.02)
        assert hed[..., 0].max() < 0.03

    def test_tissue_mask_separates_stained_tissue_from_glass(self):
        od = np.zeros((200, 200))
        od[:, 100:] = 0.3
        mask = M.tissue_mask(beer_lambert(np.zeros_like(od), od), UM)
        assert mask[:, 110:].all() and not mask[:, :90].any()
        glass = M.glass_mask(beer_lambert(np.zeros_like(od), od), UM)
        assert glass[:, :90].all() and not glass[:, 110:].any()

    def test_quantile_distance_of_a_shift_is_the_shift(self):
        v = np.random.default_rng(1).normal(size=20000)
        assert M.quantile_distance(M.quantiles(v), M.quantiles(v + 0.3)) == pytest.approx(0.3)
        assert M.quantile_distance(M.quantiles(v), M.quantiles(v)) == 0.0


class TestGradient:
    def test_a_ramp_has_its_slope_over_mean_luminance(self):
        x = np.linspace(100, 200, 101)  # 1 grey level per px
        img = np.repeat(np.tile(x, (50, 1))[..., None], 3, axis=2).astype(np.uint8)
        g = M.normalised_gradient(img, UM)
        expected = (1 / 255) / (150 / 255) / UM
        assert np.median(g[:, 2:-2]) == pytest.approx(expected, rel=0.02)

    def test_blur_moves_the_distribution_left(self):
        img = discs(6.0)
        blurred = np.stack([ndi.gaussian_filter(img[..., c].astype(float), 2.0)
                            for c in range(3)], axis=2).round().astype(np.uint8)
        sharp_q = M.quantiles(M.normalised_gradient(img, UM))
        blur_q = M.quantiles(M.normalised_gradient(blurred, UM))
        assert blur_q[-1] < 0.6 * sharp_q[-1]
        assert M.quantile_distance(sharp_q, blur_q) > 0.01


class TestSpectrum:
    @pytest.mark.parametrize("exponent", [2.0, 3.0])
    def test_slope_of_power_law_noise(self, exponent):
        img = power_law_noise(256, exponent)
        f, p = M.radial_power_spectrum(img, UM)
        assert M.spectrum_slope(f, p) == pytest.approx(-exponent, abs=0.2)

    def test_frequencies_run_to_nyquist_in_cycles_per_um(self):
        f, _ = M.radial_power_spectrum(power_law_noise(128, 2.0), UM)
        assert f[-1] < 1.0 / (2 * UM) and f[-1] > 0.8 / (2 * UM)
        assert np.all(np.diff(f) > 0)

    def test_log_spectrum_distance_of_a_tenfold_power_is_one_decade(self):
        p = np.geomspace(1, 1e-4, 20)
        assert M.log_spectrum_distance(p, 10 * p) == pytest.approx(1.0)

    def test_non_square_patch_is_refused(self):
        with pytest.raises(ValueError, match="square"):
            M.radial_power_spectrum(np.zeros((10, 12, 3), np.uint8), UM)


class TestNuclei:
    @pytest.mark.parametrize("diam_um", [5.0, 8.0, 12.0])
    def test_discs_of_known_diameter(self, diam_um):
        d = M.nucleus_diameters_um(discs(diam_um), UM)
        assert len(d) == 25
        assert np.median(d) == pytest.approx(diam_um, rel=0.1)

    def test_touching_nuclei_are_split(self):
        size = 128
        yy, xx = np.mgrid[:size, :size]
        h = np.zeros((size, size))
        for cx in (50, 64):  # two 8 µm discs, centres 7 µm apart: they overlap
            h[(yy - 64) ** 2 + (xx - cx) ** 2 <= 8 ** 2] = 0.8
        d = M.nucleus_diameters_um(beer_lambert(h, np.full((size, size), 0.25)), UM)
        assert len(d) == 2

    def test_no_nuclei_in_plain_eosin(self):
        img = beer_lambert(np.zeros((128, 128)), np.full((128, 128), 0.3))
        assert M.nucleus_diameters_um(img, UM).size == 0


# ----------------------------------------------------------------- real images and report

needs_data = pytest.mark.skipif(not (SHARED_DATA / "tiles" / "tcga-lung-rgb.png").exists(),
                                reason=f"real images not found in {SHARED_DATA}")


@pytest.fixture(scope="module")
def real_stats():
    from engine.phantom.realism import reference_stats
    return reference_stats(SHARED_DATA, n_patches=2)


@needs_data
def test_every_reference_has_a_known_scale_or_is_colour_only():
    from engine.phantom.realism_references import REFERENCES
    # Every real tissue image is a reference; the focal stacks in stacks/ (a single cell and a
    # microfossil, not tissue) are for the z-stack readers and `refocus eval-real`, not realism.
    names = {p.name for p in SHARED_DATA.rglob("*") if p.suffix in (".svs", ".tif", ".png")
             and "stacks" not in p.relative_to(SHARED_DATA).parts}
    assert names <= {r.name for r in REFERENCES}
    for r in REFERENCES:
        assert r.structural == (r.um_per_px is not None and r.um_per_px <= 0.5)


@needs_data
def test_real_to_real_distances_are_finite_and_nonzero(real_stats):
    from engine.phantom.realism import MEASURES, compare, references_for
    for measure in MEASURES:
        refs = references_for(measure, "he", real_stats)
        row = compare(measure, refs[0], refs)
        pairs = [d for _, _, d in row["real_to_real"]["pairs"]]
        assert pairs, measure
        assert all(np.isfinite(d) and d > 0 for d in pairs), (measure, pairs)


@needs_data
def test_real_he_statistics_are_in_plausible_ranges(real_stats):
    he = {s.name: s.summary for s in real_stats if s.structural and s.family == "he"}
    for name, s in he.items():
        assert 0.05 < s["H_median"] < 0.6, name
        assert 225 < s["glass_grey"] < 255, name
        assert -4.5 < s["spectrum_slope"] < -1.5, name
        assert 2.5 <= s["nucleus_diameter_median_um"] < 12, name


def upsampled_slide(img: np.ndarray):
    """An ArraySlide at 0.25 µm/px holding a 0.5 µm/px image (each pixel repeated 2×2)."""
    from engine.slides.array import ArraySlide
    big = np.repeat(np.repeat(img, 2, axis=0), 2, axis=1)
    return ArraySlide([big], mpp=(0.25, 0.25))


@needs_data
def test_a_real_image_in_the_phantom_role_sits_inside_the_spread(real_stats):
    from engine.phantom.realism import realism_report
    from engine.phantom.realism_references import load_image
    lung = load_image(SHARED_DATA / "tiles" / "tcga-lung-rgb.png")
    rep = realism_report(n_patches=2, stains=("he",), slides={"he": upsampled_slide(lung)},
                         references=real_stats)
    verdicts = {r["measure"]: r["verdict"] for r in rep["rows"]}
    assert verdicts["colour_hed"] == "inside"
    assert verdicts["gradient"] == "inside"
    assert verdicts["spectrum"] == "inside"
    assert rep["rows"][0]["phantom_to_real"]["tcga-lung-rgb.png"] < 0.02


@needs_data
def test_a_flat_pink_cartoon_falls_outside(real_stats):
    from engine.phantom.realism import realism_report
    yy, xx = np.mgrid[:512, :512]  # 0.5 µm/px: flat 10 µm discs every 20 µm on flat pink
    h = 0.9 * (((yy % 40) - 20) ** 2 + ((xx % 40) - 20) ** 2 < 10 ** 2)
    cartoon = beer_lambert(h, np.full(h.shape, 0.6))
    rep = realism_report(n_patches=2, stains=("he",), slides={"he": upsampled_slide(cartoon)},
                         references=real_stats)
    verdicts = {r["measure"]: r["verdict"] for r in rep["rows"]}
    assert verdicts["nuclei"] == "outside"
    assert verdicts["colour_hed"] == "outside"


@pytest.mark.skipif(importlib.util.find_spec("engine.phantom.slide") is None,
                    reason="engine/phantom/slide.py (PhantomSlide) not written yet")
@pytest.mark.slow
@needs_data
def test_report_runs_on_a_small_configuration(real_stats):
    from engine.phantom.realism import MEASURES, realism_report
    rep = realism_report(seed=0, n_patches=2, stains=("he",), phantom_size_px=2048,
                         references=real_stats)
    rows = {r["measure"]: r for r in rep["rows"]}
    assert set(rows) == set(MEASURES) or "all" in rows
    for r in rows.values():
        assert r["verdict"] in ("inside", "outside", "n/a")
        for d in r.get("phantom_to_real", {}).values():
            assert np.isfinite(d) and d >= 0
    assert rep["images"]["phantom-he"]["patches"] >= 1


@needs_data
def test_the_report_is_deterministic(real_stats):
    from engine.phantom.realism import realism_report
    from engine.phantom.realism_references import load_image
    lung = load_image(SHARED_DATA / "tiles" / "tcga-lung-rgb.png")
    runs = [realism_report(n_patches=2, stains=("he",), slides={"he": upsampled_slide(lung)},
                           references=real_stats)["rows"] for _ in range(2)]
    assert runs[0] == runs[1]
