"""Real-texture training stacks: real in-focus images imaged as thin layers through the optics."""
import numpy as np
import pytest
import torch

from engine.phantom.texture_layers import Z_GRID_UM
from engine.refocus.dataset import FocalStackSampler, jpeg_roundtrip, scanner_variation
from engine.phantom.texture_layers import (REAL_TEXTURES, _glass, _optical_density, build_texture_cache,
                                           load_textures, render_layers, texture_crops)
from tests.paths import SHARED_DATA


def _grad_energy(img):
    gy, gx = np.gradient(img.astype(np.float64).mean(2))
    return float((gx * gx + gy * gy).mean())


def _texture():
    """A real-looking texture without ../shared/data: stained blobs and fibres on glass."""
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:96, 0:96]
    od = np.zeros((96, 96, 3))
    for _ in range(25):
        cy, cx, r = rng.uniform(0, 96), rng.uniform(0, 96), rng.uniform(2, 6)
        od += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))[..., None] * np.array([0.6, 0.8, 0.3])
    od += 0.15 * (1 + np.sin(xx * 0.9 + yy * 0.4))[..., None] * np.array([0.1, 0.3, 0.1])
    return np.clip(240 * 10 ** -od, 0, 255).astype(np.uint8)


def test_the_layer_in_focus_is_the_capture_itself_and_defocus_only_blurs():
    crop = _texture()
    glass = _glass(crop)
    z = [-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0]
    stack = render_layers([(_optical_density(crop, glass), np.zeros((96, 96)))], glass, z, na=0.75)
    assert stack.shape == (7, 96, 96, 3) and stack.dtype == np.uint8
    assert np.abs(stack[3].astype(int) - crop.astype(int)).mean() < 0.1
    energy = [_grad_energy(s) for s in stack]
    assert energy[3] == max(energy)
    assert energy[0] < energy[1] < energy[2] < energy[3] > energy[4] > energy[5] > energy[6]


def test_a_higher_aperture_blurs_more_at_the_same_defocus():
    crop = _texture()
    glass = _glass(crop)
    layers = [(_optical_density(crop, glass), np.zeros((96, 96)))]
    low = render_layers(layers, glass, [1.5], na=0.5)[0]
    high = render_layers(layers, glass, [1.5], na=0.95)[0]
    assert _grad_energy(high) < _grad_energy(low)


def test_a_tilted_layer_is_in_focus_where_its_depth_is():
    crop = _texture()
    glass = _glass(crop)
    z0 = np.tile(np.linspace(-1.0, 1.0, 96), (96, 1))                  # left at −1 µm, right at +1 µm
    stack = render_layers([(_optical_density(crop, glass), z0)], glass, [-1.0, 1.0], na=0.75)
    left, right = slice(0, 24), slice(72, 96)
    assert _grad_energy(stack[0][:, left]) > _grad_energy(stack[1][:, left])
    assert _grad_energy(stack[1][:, right]) > _grad_energy(stack[0][:, right])


def test_scanner_variation_changes_planes_and_truth_alike():
    rng = np.random.default_rng(0)
    planes = torch.rand(3, 3, 32, 32) * 0.8 + 0.1
    truth = planes[1].clone()
    for seed in range(20):
        p, t = scanner_variation(planes, truth, np.random.default_rng(seed))
        assert p.shape == planes.shape and t.shape == truth.shape
        assert torch.allclose(p[1], t, atol=1e-6)                          # the same change on both
        assert float(p.min()) >= 0 and float(p.max()) <= 1
    smooth = torch.from_numpy(_texture()).permute(2, 0, 1).float()[None].repeat(2, 1, 1, 1) / 255.0
    out = jpeg_roundtrip(smooth, 70)
    assert out.shape == smooth.shape and 0 < float((out - smooth).abs().mean()) < 0.03
    del rng


needs_data = pytest.mark.skipif(not (SHARED_DATA / REAL_TEXTURES[0].relpath).exists(),
                                reason=f"the real images of {SHARED_DATA} are not there")


@needs_data
def test_texture_crops_from_the_real_images_train_the_sampler(tmp_path):
    paths = build_texture_cache(tmp_path, 1, crops_per_file=3, data_dir=SHARED_DATA, log=lambda m: None)
    assert [p.name for p in paths] == ["texture-0.npz"]
    with np.load(paths[0]) as f:
        grid, z, zstar, aif = f["grid"], f["z"], f["zstar"], f["aif"]
    assert grid.shape == (3, len(Z_GRID_UM), 256, 256, 3) and np.allclose(z, Z_GRID_UM)
    assert zstar.shape == (3, 256, 256) and aif.shape == (3, 256, 256, 3)
    # each crop is sharpest near its layer's depth
    for k in range(3):
        best = int(np.argmax([_grad_energy(g) for g in grid[k]]))
        assert abs(Z_GRID_UM[best] - float(np.median(zstar[k]))) <= 1.0
    again = build_texture_cache(tmp_path, 1, crops_per_file=3, data_dir=SHARED_DATA, log=lambda m: 1 / 0)
    assert again == paths                                                  # present: not rendered again
    sampler = FocalStackSampler({"grid": grid, "z": z, "zstar": zstar, "aif": aif}, crop=64, augment=True)
    planes, focus, target, truth, kinds = sampler.batch(2, n=3)
    assert planes.shape == (2, 3, 3, 64, 64) and truth.shape == (2, 3, 64, 64)


@needs_data
def test_only_images_never_the_evaluation_stacks_are_textures():
    names = [r.relpath for r in REAL_TEXTURES]
    assert names and not any("stacks/" in n for n in names)
    assert len(load_textures(SHARED_DATA)) == len(names)


def test_texture_crops_work_on_any_image_list():
    crops = texture_crops([(np.tile(_texture(), (3, 3, 1)), 0.5)], 2, np.random.default_rng(1), size=128,
                          z_grid=np.array([-1.0, 0.0, 1.0]))
    assert crops["grid"].shape == (2, 3, 128, 128, 3)
