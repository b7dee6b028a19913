"""The `optics` refocus baseline on real phantom renders, the foreground mask, and eval-real on
real multi-plane slides (ArraySlide, OME-TIFF written by tifffile), with the shipped model."""
import math

import numpy as np
import pytest

from engine.phantom.optics import Optics
from engine.refocus.eval_real import METHODS, NoInteriorPlane, evaluate_real, input_planes, region_of
from engine.refocus.image_metrics import as_tensor, ssim
from engine.refocus.optics_baseline import OpticsRefocus, best_focus_map, estimate_best_focus
from engine.refocus.sharpness import foreground_mask, gradient_energy
from engine.slides.array import ArraySlide
from tests.slide_files import textured_plane, write_ome_zstack


def _ssim(a, b) -> float:
    a = np.asarray(a)
    a = a if a.dtype == np.uint8 else np.clip(a * 255 + 0.5, 0, 255).astype(np.uint8)
    return float(ssim(as_tensor(a), as_tensor(b))[0])


@pytest.fixture(scope="module")
def phantom_region():
    """A 128² tissue region of a small phantom and its region best focus z* (µm)."""
    from engine.phantom import PhantomSlide

    slide = PhantomSlide(seed=5, size=(2048, 2048), planes=5, spacing_um=1.0, scanner_error=False)
    coarse = slide.truth(4, 0, 0, 128, 128, 0.0).mean(2) < 225          # level 4: 16 level-0 px each
    frac = coarse.reshape(16, 8, 16, 8).mean((1, 3))
    r, c = np.unravel_index(np.argmax(frac), frac.shape)
    assert frac[r, c] > 0.9
    x, y = int(c) * 128, int(r) * 128
    return slide, (x, y), slide.best_focus_of_region(0, x, y, 128, 128)


@pytest.mark.slow
def test_optics_reproduces_a_phantom_defocus_better_than_the_plane_itself(phantom_region):
    slide, (x, y), zstar = phantom_region
    sharp = slide.truth(0, x, y, 128, 128, zstar)
    for dz in (2.0, -2.0):
        truth = slide.truth(0, x, y, 128, 128, zstar + dz)
        pred = OpticsRefocus(sharp[None], [zstar], slide.mpp[0], optics=slide.optics, best_focus_um=zstar)
        got, nearest = _ssim(pred.refocus(zstar + dz), truth), _ssim(sharp, truth)
        assert got > nearest + 0.1 and got > 0.9, (dz, got, nearest)


@pytest.mark.slow
def test_best_focus_estimated_from_a_phantom_stack_is_near_the_truth(phantom_region):
    slide, (x, y), zstar = phantom_region
    zs = np.arange(-3.0, 3.01, 1.0)
    stack = np.stack([slide.truth(0, x, y, 128, 128, float(z)) for z in zs])
    assert abs(estimate_best_focus(stack, zs) - zstar) < 0.5
    assert abs(float(np.median(best_focus_map(stack, zs, slide.mpp[0]))) - zstar) < 0.5


def _gaussian_stack(zs, z_true, size=96):
    """A texture blurred by a Gaussian whose σ (px) grows with the distance from ``z_true``."""
    from scipy.ndimage import gaussian_filter

    base = textured_plane(size, size, 0).astype(np.float64)
    planes = []
    for z in zs:
        s = 0.3 + 2.0 * abs(z - z_true)
        planes.append(np.clip(gaussian_filter(base, (s, s, 0)), 0, 255).astype(np.uint8))
    return np.stack(planes)


def test_best_focus_is_refined_between_planes_and_clamped_at_the_ends():
    zs = [-1.0, -0.5, 0.0, 0.5, 1.0]
    est = estimate_best_focus(_gaussian_stack(zs, 0.3), zs)
    assert 0.0 < est < 0.5 and abs(est - 0.3) < 0.2
    assert estimate_best_focus(_gaussian_stack(zs, 3.0), zs) == 1.0      # peak not bracketed
    assert estimate_best_focus(_gaussian_stack([0.7], 3.0), [0.7]) == 0.7
    m = best_focus_map(_gaussian_stack(zs, 0.3), zs, 0.25)
    assert m.shape == (96, 96) and np.all((m >= -1) & (m <= 1)) and abs(float(np.median(m)) - 0.3) < 0.2


def test_optics_keeps_a_plane_at_its_own_distance_and_a_flat_field_flat():
    img = textured_plane(64, 48, 1)
    o = OpticsRefocus(img[None], [0.5], 0.25, best_focus_um=0.0)
    assert np.array_equal(np.clip(o.refocus(0.5) * 255 + 0.5, 0, 255).astype(np.uint8), img)
    assert np.array_equal(np.clip(o.refocus(-0.5) * 255 + 0.5, 0, 255).astype(np.uint8)[..., 1], img[..., 1])
    achromatic = OpticsRefocus(img[None], [0.5], 0.25, optics=Optics(focal_shift_um=(0.0, 0.0, 0.0)), best_focus_um=0.0)
    assert np.array_equal(np.clip(achromatic.refocus(-0.5) * 255 + 0.5, 0, 255).astype(np.uint8), img)  # |Δz| equal
    blurred = o.refocus(2.5)
    assert gradient_energy(blurred) < 0.8 * gradient_energy(img)
    flat = np.full((1, 40, 40, 3), 180, np.uint8)
    out = OpticsRefocus(flat, [0.0], 0.25, best_focus_um=1.0).refocus(-2.0)
    assert np.allclose(out * 255, 180, atol=0.01)


def test_optics_per_pixel_target_follows_the_map():
    img = textured_plane(64, 64, 2)
    o = OpticsRefocus(img[None], [0.0], 0.25, best_focus_um=0.0)
    target = np.zeros((64, 64))
    target[:, 32:] = 2.0
    out = o.refocus(target)
    assert np.allclose(out[:, :32], img[:, :32] / 255.0, atol=1e-6)
    assert np.allclose(out[:, 40:], o.refocus(2.0)[:, 40:], atol=1e-5)


def test_optics_tie_goes_to_the_plane_nearer_best_focus():
    planes = np.stack([textured_plane(32, 32, i) for i in range(2)])
    o = OpticsRefocus(planes, [0.0, 1.0], 0.25, best_focus_um=0.9)
    assert o.nearest_plane(0.5, 0.9) == 1 and o.nearest_plane(0.5, 0.1) == 0


def test_foreground_excludes_white_glass_and_flat_grey():
    tex = textured_plane(120, 60, 0)
    img = np.full((60, 180, 3), 245, np.uint8)
    img[:, 60:] = 128
    img[:, 120:] = tex[:, :60]
    m = foreground_mask(img)
    assert m[:, :50].mean() < 0.01 and m[:, 70:110].mean() < 0.01 and m[:, 130:].mean() > 0.9
    assert foreground_mask(np.full((30, 30, 3), 245, np.uint8)).all()          # nothing: the whole image


def test_inputs_and_region():
    zs = [0.3 * i for i in range(20)]
    assert input_planes(zs, 5, 2) == [4, 6]
    got = input_planes(zs, 5, "all")
    assert len(got) == 16 and 5 not in got and got == sorted(got) and max(got) == 16 and min(got) == 0
    assert input_planes([0.0, 1.0, 2.0], 1, "all") == [0, 2]
    assert region_of((100, 60), 512) == (0, 0, 100, 60)
    assert region_of((2000, 1000), 512) == (744, 244, 512, 512)


@pytest.mark.slow
def test_eval_real_on_an_ome_tiff_zstack_gives_every_interior_plane_and_method(tmp_path):
    from engine.slides.open import open_slide

    zs = (-1.0, -0.5, 0.0, 0.5, 1.0)
    path, _ = write_ome_zstack(tmp_path / "z.ome.tif", planes_um=zs, size=(96, 80), mpp=0.25)
    slide = open_slide(path)
    assert len(slide.planes_um) == 5
    rep = evaluate_real(slide, "z.ome.tif")
    assert rep["region"] == [0, 0, 96, 80] and rep["mpp_assumed"] is False
    keys = {(r["plane"], r["fs"], r["method"]) for r in rep["rows"]}
    assert keys == {(k, fs, m) for k in (1, 2, 3) for fs in (2, "all") for m in METHODS}
    for r in rep["rows"]:
        assert r["target"] == zs[r["plane"]]
        assert all(math.isfinite(r[c]) for c in ("ssim", "psnr", "sharpness_ratio")), r
        assert -1 <= r["ssim"] <= 1 and r["psnr"] > 0 and r["sharpness_ratio"] > 0
    assert {(m["fs"], m["method"]) for m in rep["means"]} == {(fs, m) for fs in (2, "all") for m in METHODS}
    assert all(m["targets"] == 3 for m in rep["means"])


@pytest.mark.slow
def test_linear_on_identical_planes_is_exact_and_a_region_is_cut_from_the_centre():
    img = textured_plane(300, 200, 3)
    slide = ArraySlide([img] * 4, planes_um=[0.0, 1.0, 2.0, 3.0], mpp=(0.25, 0.25))
    rep = evaluate_real(slide, "same", max_px=48)
    assert rep["region"] == [126, 76, 48, 48]
    for r in rep["rows"]:
        if r["method"] in ("linear", "nearest"):
            assert r["ssim"] == 1.0 and r["psnr"] == 100.0 and r["sharpness_ratio"] == 1.0, r
    three = ArraySlide([img] * 3, planes_um=[0.0, 1.0, 2.0], mpp=(0.25, 0.25))
    rep = evaluate_real(three, "same", region=(10, 20, 40, 30))
    assert rep["region"] == [10, 20, 40, 30] and len(rep["rows"]) == 2 * len(METHODS)


def test_eval_real_refuses_stacks_without_an_interior_plane_and_bad_regions():
    img = textured_plane(64, 64, 0)
    for n in (1, 2):
        with pytest.raises(NoInteriorPlane, match=f"{n} focal plane"):
            evaluate_real(ArraySlide([img] * n, planes_um=list(range(n)), mpp=(0.25, 0.25)), "x")
    slide = ArraySlide([img] * 3, planes_um=[0, 1, 2], mpp=None)
    with pytest.raises(ValueError, match="not inside"):
        evaluate_real(slide, "x", region=(60, 0, 32, 32))
    assert evaluate_real(slide, "x", max_px=32)["mpp_assumed"] is True
