"""The renderer: exact, seamless, deterministic ground truth at any focus."""
from dataclasses import replace

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter, laplace, uniform_filter

from engine.phantom import PhantomRenderer, TissueParams, TissueVolume
from engine.phantom.render import BLOCK
from engine.phantom.slide import PhantomSlide

# Blocks of the default slide (seed 0) that hold tissue, and one on glass.
TISSUE_BLOCKS = [(60, 80), (48, 58)]


@pytest.fixture(scope="module")
def slide():
    return PhantomSlide(seed=0, planes=3, spacing_um=1.0, scanner_error=True, noise=True)


def _origin(block, offset=0):
    bi, bj = block
    return bj * BLOCK + offset, bi * BLOCK + offset


def test_zero_stain_renders_white_glass():
    params = replace(TissueParams(), tissue_cover=-10.0, dust=False, bubbles=False, ink=False)
    renderer = PhantomRenderer(TissueVolume(0, (20000, 20000), params))
    img = renderer.render(0, 4096, 4096, 300, 200, 1.3)
    expected = np.floor(np.asarray(params.white_rgb) + 0.5).astype(np.uint8)
    assert (img == expected).all()
    assert (240 <= expected).all() and (expected <= 250).all()


def test_tissue_is_there_and_stained(slide):
    x, y = _origin(TISSUE_BLOCKS[0])
    img = slide.truth(0, x, y, 256, 256, 0.0).astype(float)
    assert img.mean() < 225                    # tissue, not glass
    assert img[..., 1].mean() < img[..., 0].mean()   # eosin/haematoxylin absorb green most


def test_one_large_read_equals_four_stitched_reads_bit_for_bit(slide):
    x, y = _origin(TISSUE_BLOCKS[0], offset=-300)     # straddles four render blocks
    whole = slide.read_region(0, x, y, 1024, 1024, plane=1)
    parts = np.empty_like(whole)
    for dy in (0, 512):
        for dx in (0, 512):
            parts[dy:dy + 512, dx:dx + 512] = slide.read_region(0, x + dx, y + dy, 512, 512, plane=1)
    assert np.array_equal(whole, parts)


def test_truth_with_a_map_is_seamless_too(slide):
    x, y = _origin(TISSUE_BLOCKS[0], offset=-200)
    fmap = np.add.outer(np.linspace(-1, 1, 512), np.linspace(0, 0.6, 512))
    whole = slide.truth(0, x, y, 512, 512, fmap)
    parts = np.empty_like(whole)
    for dy in (0, 256):
        for dx in (0, 256):
            parts[dy:dy + 256, dx:dx + 256] = slide.truth(0, x + dx, y + dy, 256, 256,
                                                          fmap[dy:dy + 256, dx:dx + 256])
    assert np.array_equal(whole, parts)


def test_a_constant_focus_map_equals_the_uniform_render(slide):
    x, y = _origin(TISSUE_BLOCKS[0], offset=40)
    for z in (0.0, 0.73, -1.25):
        uniform = slide.truth(0, x, y, 200, 160, z)
        mapped = slide.truth(0, x, y, 200, 160, np.full((160, 200), z))
        assert np.array_equal(uniform, mapped)


def test_each_pixel_shows_its_own_focal_plane(slide):
    x, y = _origin(TISSUE_BLOCKS[0], offset=64)
    fmap = np.zeros((128, 256))
    fmap[:, 128:] = -2.0
    mixed = slide.truth(0, x, y, 256, 128, fmap)
    assert np.array_equal(mixed[:, :128], slide.truth(0, x, y, 256, 128, 0.0)[:, :128])
    assert np.array_equal(mixed[:, 128:], slide.truth(0, x, y, 256, 128, -2.0)[:, 128:])


def test_rendering_is_deterministic_across_calls_and_instances(slide):
    x, y = _origin(TISSUE_BLOCKS[1], offset=100)
    a = slide.read_region(0, x, y, 128, 128, plane=0)
    b = PhantomSlide(seed=0, planes=3, spacing_um=1.0).read_region(0, x, y, 128, 128, plane=0)
    assert np.array_equal(a, b)
    assert np.array_equal(a, slide.read_region(0, x, y, 128, 128, plane=0))
    other = PhantomSlide(seed=1, planes=3, spacing_um=1.0).read_region(0, x, y, 128, 128, plane=0)
    assert not np.array_equal(a, other)


def test_planes_differ_and_noise_is_independent_per_plane(slide):
    x, y = _origin(TISSUE_BLOCKS[0])
    p0 = slide.read_region(0, x, y, 128, 128, plane=0).astype(int)
    p2 = slide.read_region(0, x, y, 128, 128, plane=2).astype(int)
    assert np.abs(p0 - p2).mean() > 2


def _local_laplacian_energy(img, size=64):
    g = img.astype(np.float32).mean(-1)
    return uniform_filter(laplace(g) ** 2, size)[size // 2::size, size // 2::size]


def _gaussian_laplacian_energy(img, sigma_px, points):
    """Laplacian energy of the luma in a Gaussian window of σ = ``sigma_px`` at ``points``."""
    g = img.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    return gaussian_filter(laplace(g) ** 2, sigma_px, truncate=3.0)[points]


def _at(curves, zs, zq):
    """Each curve (axis 0 over the focal planes ``zs``) linearly interpolated at its own zq."""
    flat = curves.reshape(len(zs), -1)
    return np.array([np.interp(q, zs, flat[:, i]) for i, q in enumerate(np.ravel(zq))]).reshape(np.shape(zq))


SWEEP_UM = np.round(np.arange(-4.0, 4.01, 0.25), 2)


@pytest.fixture(scope="module")
def focus_stacks(slide):
    """256² regions of the tissue blocks rendered at 0.25 µm steps: this test's own focus sweep."""
    out = {}
    for block in TISSUE_BLOCKS:
        x, y = _origin(block, offset=128)
        out[block] = (x, y, [slide.truth(0, x, y, 256, 256, float(z)) for z in SWEEP_UM])
    return out


@pytest.mark.parametrize("block", TISSUE_BLOCKS)
def test_each_region_is_sharpest_at_its_best_focus_depth(slide, focus_stacks, block):
    # Regions of 64 px (16 µm): their image's Laplacian energy, measured here on the rendered
    # truth, peaks at the region's z* (a patch label).
    x, y, stack = focus_stacks[block]
    energy = np.stack([_local_laplacian_energy(img) for img in stack])           # (Z, 4, 4)
    zreg = np.array([[slide.best_focus_of_region(0, x + 64 * j, y + 64 * i, 64, 64) for j in range(4)]
                     for i in range(4)])
    rich = energy.max(axis=0) > 0.2 * energy.max()
    assert rich.sum() >= 8
    sharpest = SWEEP_UM[np.argmax(energy, axis=0)]
    assert np.median(np.abs(sharpest - zreg)[rich]) <= 0.2
    # A region holding two layers of nearly equal detail may peak at either: everywhere the
    # image at z* is as sharp as the sharpest plane of the sweep.
    best = energy.max(axis=0)[rich]
    assert (_at(energy, SWEEP_UM, zreg)[rich] >= 0.9 * best).all()
    # Defocus blurs: 3 µm away from z* (three depths of field) the detail is mostly gone.
    for dz in (-3.0, 3.0):
        assert np.median(_at(energy, SWEEP_UM, np.clip(zreg + dz, -4, 4))[rich] / best) < 0.4


@pytest.mark.parametrize("block", TISSUE_BLOCKS)
def test_each_pixel_is_sharpest_at_its_best_focus_depth(slide, focus_stacks, block):
    # The per-pixel map at its stated scale: Laplacian energy in a Gaussian window of σ = 4 µm
    # (16 px) around each of 64 points peaks at z* of that point.
    x, y, stack = focus_stacks[block]
    zstar = slide.best_focus_map(0, x, y, 256, 256)
    pts = (slice(48, 208, 20), slice(48, 208, 20))
    energy = np.stack([_gaussian_laplacian_energy(img, 16, pts) for img in stack])  # (Z, 8, 8)
    rich = energy.max(axis=0) > 0.05 * energy.max()
    assert rich.sum() >= 32
    sharpest = SWEEP_UM[np.argmax(energy, axis=0)]
    assert np.median(np.abs(sharpest - zstar[pts])[rich]) <= 0.2
    assert (_at(energy, SWEEP_UM, zstar[pts])[rich] >= 0.85 * energy.max(axis=0)[rich]).all()


@pytest.mark.parametrize("block", TISSUE_BLOCKS)
def test_the_all_in_focus_truth_is_as_sharp_as_the_sharpest_plane(slide, focus_stacks, block):
    x, y, stack = focus_stacks[block]
    energy = np.stack([_local_laplacian_energy(img, 32) for img in stack])     # (Z, 8, 8)
    rich = energy.max(axis=0) > 0.2 * energy.max()
    aif = _local_laplacian_energy(slide.all_in_focus(0, x, y, 256, 256), 32)
    ratio = aif[rich] / energy.max(axis=0)[rich]
    # One depth per pixel cannot be sharp for two layers at once, so single windows may lose
    # some detail to another layer; on average the all-in-focus image is as sharp as any plane.
    assert ratio.mean() >= 0.9 and ratio.min() >= 0.6
    # ... and sharper overall than the best single plane (the section is not flat).
    single = max(float((e[rich] / energy.max(axis=0)[rich]).mean()) for e in energy)
    assert ratio.mean() > single


def test_coarse_level_matches_the_downsampled_fine_level_in_colour(slide):
    x, y = _origin(TISSUE_BLOCKS[0], offset=-256)
    fine = slide.truth(0, x, y, 1024, 1024, 0.0).astype(np.float64)
    for level in (2, 4):
        k = 2 ** level
        coarse = slide.truth(level, x, y, 1024 // k, 1024 // k, 0.0).astype(np.float64)
        down = fine.reshape(1024 // k, k, 1024 // k, k, 3).mean(axis=(1, 3))
        mean_diff = np.abs(coarse.mean(axis=(0, 1)) - down.mean(axis=(0, 1)))
        assert mean_diff.max() < 8.0, (level, mean_diff)
        if level == 2:    # structure, not just colour: the images correlate
            r = np.corrcoef(coarse[..., 1].ravel(), down[..., 1].ravel())[0, 1]
            assert r > 0.8
