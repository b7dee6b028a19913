"""The optics follow the Born & Wolf defocus model (TSVA Eq. 1) for a 40×/0.75 NA objective."""
import numpy as np
import pytest

from engine.phantom.optics import (Optics, OTFTable, SpectralGrid, airy_first_zero_um, otf_defocus,
                                   psf_born_wolf, psf_kernel)

NA = 0.75
GREEN = 0.54


def _encircled_radius(dz_um, wl=GREEN, fraction=0.5):
    """Radius (µm) that holds ``fraction`` of the PSF's energy."""
    r = np.linspace(0, 16, 2401)
    h = psf_born_wolf(r, dz_um, wl, NA)
    e = np.cumsum(h * 2 * np.pi * r) * (r[1] - r[0])
    return float(np.interp(fraction, e, r))


@pytest.mark.parametrize("dz", [0.0, -4.0])
def test_psf_sums_to_one(dz):
    kern = psf_kernel(dz, GREEN, px_um=0.08, radius_px=140)
    assert kern.sum() == pytest.approx(1.0, abs=0.012)


def test_psf_is_radially_symmetric():
    kern = psf_kernel(2.0, GREEN, px_um=0.1, radius_px=40)
    np.testing.assert_allclose(kern, kern.T, rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(kern, kern[::-1, :], rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(kern, np.rot90(kern), rtol=1e-6, atol=1e-12)
    # Same radius, different direction: (3, 4) and (5, 0) px are both 5 px from the centre.
    c = 40
    assert kern[c + 3, c + 4] == pytest.approx(kern[c, c + 5], rel=1e-9)


@pytest.mark.parametrize("wl", [0.61, 0.54, 0.46])
def test_in_focus_psf_first_dark_ring_is_the_airy_radius(wl):
    r = np.linspace(0.25, 0.65, 4001)
    h = psf_born_wolf(r, 0.0, wl, NA)
    first_min = r[np.argmin(h)]
    assert first_min == pytest.approx(0.61 * wl / NA, rel=0.01)
    assert airy_first_zero_um(wl, NA) == pytest.approx(0.61 * wl / NA, rel=0.001)


def test_blur_radius_grows_linearly_at_the_rate_the_na_predicts():
    dzs = np.array([4.0, 7.0, 10.0])
    radii = np.array([_encircled_radius(d) for d in dzs])
    slope, intercept = np.polyfit(dzs, radii, 1)
    # Geometric defocus disc of radius Δz·NA/n holds half its light within radius/√2.
    assert slope == pytest.approx(NA / np.sqrt(2), rel=0.08)
    residual = radii - (slope * dzs + intercept)
    assert np.abs(residual).max() < 0.05 * radii.max()


def test_psf_is_symmetric_about_focus_without_aberration():
    r = np.linspace(0, 5, 501)
    for dz in (0.5, 2.0, 5.0):
        np.testing.assert_allclose(psf_born_wolf(r, dz, GREEN), psf_born_wolf(r, -dz, GREEN), rtol=1e-9)


def test_defocus_spreads_light():
    assert psf_born_wolf(0.0, 2.0, GREEN) < 0.2 * psf_born_wolf(0.0, 0.0, GREEN)


@pytest.mark.parametrize("dz", [0.0, -3.0])
def test_otf_is_the_fourier_transform_of_the_psf(dz):
    px = 0.1
    kern = psf_kernel(dz, GREEN, px_um=px, radius_px=127)
    fft = np.real(np.fft.rfft2(np.fft.ifftshift(kern)))
    nu = np.fft.rfftfreq(kern.shape[0], px)
    keep = nu < 3.0
    np.testing.assert_allclose(fft[0, keep], otf_defocus(nu[keep], dz, GREEN, NA), atol=0.012)


def test_otf_cuts_off_at_two_na_over_lambda():
    o = Optics()
    for c, wl in enumerate(o.wavelengths_um):
        cut = o.cutoff_cycles_per_um(c)
        assert cut == pytest.approx(2 * NA / wl)
        assert otf_defocus(cut * 1.01, 0.0, wl, NA) == 0.0
        assert otf_defocus(cut * 0.95, 0.0, wl, NA) > 0.0


def test_otf_table_interpolates_the_analytic_otf():
    table = OTFTable(Optics())
    nu = np.array([[0.0, 0.3, 1.1], [1.7, 2.2, 2.9]])
    idx = table.radial_index(nu)
    got = table.otf2d(1, table.key(1.5), idx)
    np.testing.assert_allclose(got, otf_defocus(nu, 1.5, 0.54, NA), atol=2e-3)


@pytest.mark.parametrize("dz", [0.0, 0.37, -2.5, 7.1, -18.0])
def test_otf_table_profiles_are_the_analytic_otf(dz):
    table = OTFTable(Optics())
    for c, wl in enumerate(Optics().wavelengths_um):
        key = table.key(dz)
        np.testing.assert_allclose(table.profile(c, key), otf_defocus(table.nu, key * 0.01, wl, NA), atol=2e-5)


def test_half_maps_multiply_like_the_full_transfer_function():
    n, px = 64, 0.25
    grid = SpectralGrid(n, px)
    table = OTFTable(Optics())
    half = table.otf2d(1, table.key(1.2), table.radial_index(grid.nu_half))
    full = table.otf2d(1, table.key(1.2), table.radial_index(grid.nu))
    spec = np.fft.rfft2(np.random.default_rng(0).random((n, n))).astype(np.complex64)
    out = np.empty_like(spec)
    np.testing.assert_allclose(grid.apply_half(spec, half, out), spec * full, rtol=1e-6, atol=1e-6)
