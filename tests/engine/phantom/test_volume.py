"""The tissue volume: stain vectors, irregular fibres, coarse levels that keep the fine level's
mean transmittance, and IHC without eosin."""
import numpy as np
import pytest

from engine.phantom import TissueParams, TissueVolume
from engine.phantom.layout import FIBRE_FAMILIES, Sampler, fibre_mean, fibres
from engine.phantom.noise import value_noise_aniso
from engine.phantom.stains import OD_VECTORS, stain_set

# A level-0 region of the default seed-0 slide that holds glands and stroma (tests/render).
X0, Y0 = 58 * 512 - 256, 48 * 512 - 256


def test_stain_vectors_are_unit_and_ordered_like_real_stains():
    for name in ("he", "ihc"):
        m = stain_set(name).od_matrix()
        assert np.allclose(np.linalg.norm(m, axis=1), 1.0, atol=1e-6)
    h, e = np.asarray(OD_VECTORS["haematoxylin"]), np.asarray(OD_VECTORS["eosin"])
    assert h[0] / h[1] > 2 * e[0] / e[1]          # haematoxylin absorbs red, eosin green
    dab = np.asarray(OD_VECTORS["dab"])
    assert dab[2] > dab[1] > dab[0]               # DAB is brown: absorbs blue most


def test_anisotropic_noise_is_streaky_along_its_direction():
    g = np.arange(400) * 0.25
    s = Sampler(g, g, 0.25, grid=True)
    n = value_noise_aniso(s.X, s.Y, 0.0, 2.0, 20.0, 3, 11)      # streaks along x
    assert n.min() >= -1 and n.max() <= 1
    along = np.abs(np.diff(n, axis=1)).mean()
    across = np.abs(np.diff(n, axis=0)).mean()
    assert across > 4 * along


def test_collagen_fibres_are_irregular_not_periodic():
    """Across a fibre family the density must not repeat with a period (the old cartoon had
    cosine stripes): no autocorrelation peak above 0.5 beyond the first fibre width."""
    p = TissueParams()
    ang = FIBRE_FAMILIES[0][0]
    t = np.arange(2048) * 0.25                      # 512 µm across the family's direction
    xs, ys = -np.sin(ang) * t + 3000.0, np.cos(ang) * t + 3000.0
    s = Sampler(xs, ys, 0.25, grid=False)
    lo, hi = fibres(s, 5, p, 0.5)
    f = (lo + hi) - (lo + hi).mean()
    ac = np.correlate(f, f, "full")[len(f) - 1:]
    ac = ac / ac[0]
    lags_um = np.arange(len(ac)) * 0.25
    assert ac[(lags_um > 4.0) & (lags_um < 60.0)].max() < 0.5
    assert 0.05 < fibre_mean(p, 1.0) < fibre_mean(p, 0.0) < 0.9
    assert f.std() > 0.05                             # there are fibres and gaps


@pytest.fixture(scope="module")
def volume():
    return TissueVolume(0)


def _mean_transmittance(vol, level, n0):
    k = 2 ** level
    b = vol.block(level, X0 // k, Y0 // k, n0 // k)
    return np.power(10.0, -b.od.sum(axis=1)).mean(axis=(1, 2))


def test_coarse_levels_keep_the_fine_levels_mean_transmittance(volume):
    fine = _mean_transmittance(volume, 0, 512)
    assert fine.max() < 0.95                        # there is tissue here
    for level in (4, 5):
        coarse = _mean_transmittance(volume, level, 512)
        assert np.abs(coarse - fine).max() < 0.03, (level, fine, coarse)


def test_ihc_has_no_eosin_and_dab_in_epithelium():
    vol = TissueVolume(0, stain="ihc")
    assert "eosin" not in vol.stains.absorbers
    b = vol.block(0, X0, Y0, 384)
    od = b.od.sum(axis=1)                           # (3, n, n) per-channel OD
    # DAB-stained pixels are brown: blue OD well above red OD somewhere (membranes, cytoplasm).
    assert ((od[2] - od[0]) > 0.15).mean() > 0.01


def test_the_shipped_calibration_is_the_measured_one(volume):
    """engine/phantom/calibration_table.py must match the default tissue as it is now (rerun
    tools/make_calibration_table.py after changing the tissue)."""
    from engine.phantom.calibration_table import TABLE
    assert volume.calibration_key() in TABLE, "calibration table is stale"
    fresh = volume.measure_calibration()
    for name, v in TABLE[volume.calibration_key()].items():
        assert np.allclose(v, fresh[name], atol=1e-4), name
