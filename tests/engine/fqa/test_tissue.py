"""The tissue mask: the fast product test decides every colour as the optical-density sum does,
and patch fractions are exact counts."""
import numpy as np

from engine.fqa.tissue import (MIN_TISSUE_FRACTION, OD_THRESHOLD, optical_density_sum, tissue_patches,
                               tissue_pixels, window_fractions)


def test_product_test_agrees_with_optical_density_for_every_colour():
    v = np.arange(256, dtype=np.uint8)
    r, g = np.meshgrid(v, v, indexing="ij")
    for b in range(256):
        rgb = np.stack([r, g, np.full_like(r, b)], axis=-1)
        assert np.array_equal(tissue_pixels(rgb), optical_density_sum(rgb) > OD_THRESHOLD), f"blue = {b}"


def test_glass_is_not_tissue_and_stain_is():
    glass = np.full((4, 4, 3), 240, np.uint8)
    eosin = np.tile(np.array([230, 150, 200], np.uint8), (4, 4, 1))
    assert not tissue_pixels(glass).any()
    assert tissue_pixels(eosin).all()


def test_window_fractions_are_exact_counts():
    rng = np.random.default_rng(3)
    mask = rng.random((700, 530)) < 0.3
    patch, stride = 235, 128
    got = window_fractions(mask, patch, stride)
    rows, cols = (700 - patch) // stride + 1, (530 - patch) // stride + 1
    assert got.shape == (rows, cols)
    for r in range(rows):
        for c in range(cols):
            window = mask[r * stride:r * stride + patch, c * stride:c * stride + patch]
            assert got[r, c] == np.float32(window.sum() / patch ** 2)


def test_window_fractions_when_the_last_window_ends_at_the_edge():
    mask = np.ones((235 + 128, 235 + 2 * 128), bool)
    assert np.array_equal(window_fractions(mask, 235, 128), np.ones((2, 3), np.float32))
    assert window_fractions(mask[:200], 235, 128).shape == (0, 3)


def test_a_patch_is_tissue_from_a_quarter_of_its_pixels():
    rgb = np.full((235, 235, 3), 250, np.uint8)
    n = int(np.ceil(MIN_TISSUE_FRACTION * 235 * 235))
    flat = rgb.reshape(-1, 3)
    flat[:n - 1] = (120, 60, 140)
    assert not tissue_patches(rgb, 235, 128)[0, 0]
    flat[n - 1] = (120, 60, 140)
    assert tissue_patches(rgb, 235, 128)[0, 0]
