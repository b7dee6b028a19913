"""`PhantomSlide`: the virtual slide as a Slide — geometry, specs, captured planes, sensor."""
import numpy as np
import pytest

from engine.phantom import PhantomSlide
from engine.phantom.render import BLOCK
from engine.slides.base import SlideError

SEED, SIZE = 7, (640, 480)       # a small slide with tissue in its middle


def test_the_default_slide_is_large_with_three_planes_and_a_pyramid_down_to_one_block():
    slide = PhantomSlide.from_spec(None)
    assert slide.dimensions == (80000, 60000) and slide.mpp == (0.25, 0.25)
    assert slide.planes_um == (-1.0, 0.0, 1.0)
    ds = [lv.downsample for lv in slide.levels]
    assert ds == [2.0 ** k for k in range(len(ds))]
    last = slide.levels[-1]
    assert max(last.width, last.height) <= BLOCK < max(slide.levels[-2].width, slide.levels[-2].height)


def test_specs_set_every_option():
    s = PhantomSlide.from_spec("phantom:seed=3,size=6000x4000,planes=5,spacing=0.5,stain=ihc,noise=0,scanner=0,jpeg=80")
    assert (s.seed, s.dimensions, s.stain, s.noise, s.scanner_error, s.jpeg_quality) == \
        (3, (6000, 4000), "ihc", False, False, 80)
    assert s.planes_um == (-1.0, -0.5, 0.0, 0.5, 1.0)
    assert s.uid != PhantomSlide.from_spec("phantom:seed=3,size=6000x4000,planes=5,spacing=0.5").uid


@pytest.mark.parametrize("spec, needle", [
    ("phantom:planes=0", "planes must be >= 1"),
    ("phantom:size=10x10", "at least 64x64"),
    ("phantom:spacing=0", "spacing must be positive"),
    ("phantom:stain=pas", "stain must be"),
    ("phantom:seed=x", "bad value for seed"),
    ("phantom:color=1", "unknown phantom option"),
    ("phantom:seed", "expected key=value"),
])
def test_bad_specs_are_one_line_slide_errors(spec, needle):
    with pytest.raises(SlideError) as err:
        PhantomSlide.from_spec(spec)
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_the_overview_is_rendered_at_its_own_level_from_one_block():
    slide = PhantomSlide(seed=SEED + 1, size=(4000, 3000), noise=False, scanner_error=False)
    top = slide.level_count - 1
    lv = slide.levels[top]
    img = slide.read_region(top, 0, 0, lv.width, lv.height)
    assert img.shape == (lv.height, lv.width, 3)
    # Only the coarsest level's one block was sampled: no finer level was touched.
    mine = [k[1:] for k in slide.renderer._spectra._data if k[0] == slide.renderer._volume_key]
    assert mine == [(top, 0, 0)]


def test_captured_planes_are_the_truth_at_their_depth_without_scanner_error_or_noise():
    slide = PhantomSlide(seed=SEED, size=SIZE, planes=3, spacing_um=0.7, noise=False, scanner_error=False)
    for i, z in enumerate(slide.planes_um):
        assert np.array_equal(slide.read_region(0, 128, 96, 200, 150, i), slide.truth(0, 128, 96, 200, 150, z))


def test_the_scanner_misses_focus_smoothly_and_the_planes_keep_their_spacing():
    slide = PhantomSlide(seed=SEED, size=(80000, 60000), planes=3, spacing_um=1.0)
    err = slide.captured_focus_map(6, 0, 0, 1250, 938, 1) - slide.planes_um[1]
    assert 0.05 < float(np.std(err)) < 1.5 and float(np.abs(err).max()) < 4.0
    assert float(np.abs(np.diff(err, axis=1)).mean()) < 0.05          # smooth between neighbours
    spacing = slide.captured_focus_map(6, 0, 0, 64, 64, 2) - slide.captured_focus_map(6, 0, 0, 64, 64, 0)
    np.testing.assert_allclose(spacing, 2.0, atol=1e-5)


def test_sensor_noise_has_the_poisson_gaussian_variance_and_is_keyed_by_plane():
    clean = PhantomSlide(seed=SEED, size=SIZE, planes=2, noise=False, scanner_error=False)
    noisy = PhantomSlide(seed=SEED, size=SIZE, planes=2, noise=True, scanner_error=False)
    a = clean.read_region(0, 0, 0, 512, 480, 0).astype(np.float64)
    b = noisy.read_region(0, 0, 0, 512, 480, 0).astype(np.float64)
    glass = (a > 238).all(axis=-1)                 # bright pixels: I ≈ 240–250 grey levels
    assert glass.mean() > 0.05
    sensor = noisy.renderer.sensor
    expected = np.sqrt(a[glass].mean() * 255.0 / sensor.full_well_e + sensor.read_noise_dn ** 2)
    assert np.std((b - a)[glass]) == pytest.approx(expected, rel=0.1)
    assert abs(np.mean((b - a)[glass])) < 0.15
    other = noisy.read_region(0, 0, 0, 512, 480, 1).astype(np.float64) - clean.read_region(0, 0, 0, 512, 480, 1)
    assert abs(np.corrcoef((b - a)[glass].ravel(), other[glass].ravel())[0, 1]) < 0.05


def test_jpeg_compression_is_lossy_but_close():
    plain = PhantomSlide(seed=SEED, size=SIZE, planes=1, noise=False, scanner_error=False)
    jpeg = PhantomSlide(seed=SEED, size=SIZE, planes=1, noise=False, scanner_error=False, jpeg_quality=80)
    a = plain.read_region(0, 0, 0, 512, 480).astype(int)
    b = jpeg.read_region(0, 0, 0, 512, 480).astype(int)
    assert not np.array_equal(a, b) and np.abs(a - b).mean() < 3.0
