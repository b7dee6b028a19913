"""Training examples drawn from real phantom crops: planes, focus labels, targets and truth agree."""
import numpy as np
import pytest
import torch

from engine.refocus.dataset import FocalStackSampler, add_sensor_noise, interpolate_truth, load_cache, smooth_map


@pytest.fixture(scope="module")
def cache(refocus_checkpoints):
    return load_cache(sorted((refocus_checkpoints / "data").glob("*.npz")))


def test_cache_holds_a_focal_stack_with_its_truths(cache):
    grid, z = cache["grid"], cache["z"]
    assert grid.dtype == np.uint8 and grid.shape[1:] == (5, 64, 64, 3) and list(z) == [-1, -0.5, 0, 0.5, 1]
    # defocus changes the image: neighbouring planes differ, and differ more further apart
    d1 = np.abs(grid[:, 2].astype(float) - grid[:, 3]).mean()
    d2 = np.abs(grid[:, 2].astype(float) - grid[:, 4]).mean()
    assert 0 < d1 < d2
    assert cache["zstar"].shape == grid.shape[:1] + grid.shape[2:4] and cache["aif"].shape == grid.shape[:1] + grid.shape[2:]


@pytest.mark.parametrize("kind", FocalStackSampler.TARGET_KINDS)
def test_examples_of_every_target_kind(cache, kind):
    s = FocalStackSampler(cache, crop=32, max_planes=3, seed=4, focus_error_um=0.0)
    for n in (1, 2, 3):
        planes, focus, target, truth, got = s.example(n, kind=kind)
        assert planes.shape == (n, 3, 32, 32) and focus.shape == (n,) and target.shape == (32, 32)
        assert truth.shape == (3, 32, 32) and 0 <= float(truth.min()) and float(truth.max()) <= 1
        assert set(focus.tolist()) <= set(cache["z"].tolist()) and list(focus) == sorted(focus.tolist())
        assert got == kind or (kind == "between" and n == 1 and got == "beyond")
        if got == "on-plane":
            assert float(target[0, 0]) in focus.tolist()
            k = focus.tolist().index(float(target[0, 0]))
            # the truth is the noise-free version of that input plane
            assert (planes[k] - truth).abs().mean() < 0.02
        if got == "between":
            assert focus.min() <= float(target[0, 0]) <= focus.max()
        if got in ("on-plane", "between", "beyond"):
            assert target.eq(target[0, 0]).all()


def test_focused_stacks_put_a_plane_at_the_best_focus(cache):
    """As a scanner's autofocus: a lone plane sits on the grid plane nearest the region's z*,
    and a stack of three has it in the middle unless the stack would leave the grid."""
    at = dict(cache, zstar=np.full_like(cache["zstar"], 0.4))     # nearest grid plane: 0.5 µm
    s = FocalStackSampler(at, crop=32, max_planes=3, seed=5, focused_prob=1.0, focus_error_um=0.0)
    for _ in range(10):
        assert s.example(1)[1].tolist() == [0.5]
        focus = s.example(3)[1].tolist()
        assert focus[1] == 0.5 or focus in ([0.0, 0.5, 1.0], [-1.0, 0.0, 1.0])
    free = FocalStackSampler(at, crop=32, max_planes=3, seed=5, focused_prob=0.0, focus_error_um=0.0)
    assert {free.example(1)[1].item() for _ in range(30)} != {0.5}


def test_given_focus_carries_a_scanner_focus_error(cache):
    """The planes are captured on the grid; the z they are given with is off by N(0, 0.2 µm)."""
    s = FocalStackSampler(cache, crop=32, max_planes=3, seed=6, focus_error_um=0.2)
    z = np.asarray(cache["z"])
    errors = []
    for _ in range(40):
        planes, focus, target, truth, kind = s.example(1, kind="on-plane")
        true_z = float(target[0, 0])                          # on-plane: the plane's true focus
        assert np.isclose(z, true_z).any() and (planes[0] - truth).abs().mean() < 0.02
        errors.append(float(focus[0]) - true_z)
    assert 0.12 < np.std(errors) < 0.3 and abs(np.mean(errors)) < 0.1


def test_interpolated_truth_is_exact_on_grid_and_between_neighbours(cache):
    grid, z = cache["grid"][0], cache["z"]
    on = interpolate_truth(grid, z, np.full((64, 64), 0.5, np.float32))
    assert np.array_equal(on, grid[3].astype(np.float32))
    mid = interpolate_truth(grid, z, np.full((64, 64), 0.25, np.float32))
    assert np.allclose(mid, (grid[2].astype(np.float32) + grid[3]) / 2)


def test_smooth_map_spans_its_range_and_is_smooth():
    m = smooth_map(64, 64, np.random.default_rng(0), -1.0, 2.0)
    assert abs(m.min() + 1) < 1e-5 and abs(m.max() - 2) < 1e-5
    assert np.abs(np.diff(m, axis=1)).max() < 0.3


def test_sensor_noise_grows_with_intensity_and_is_quantised():
    g = torch.Generator().manual_seed(0)
    dark = add_sensor_noise(torch.full((1, 3, 64, 64), 0.1), g)
    bright = add_sensor_noise(torch.full((1, 3, 64, 64), 0.9), g)
    assert dark.std() < bright.std()
    assert torch.allclose(bright * 255, (bright * 255).round(), atol=1e-4)
    assert abs(float(bright.mean()) - 0.9) < 0.01
