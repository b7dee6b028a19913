"""The classical baselines on hand-built stacks whose right answer is known."""
import torch

from engine.refocus.baselines import blend, focus_stack, gaussian_blur, linear_weights, nearest_weights


def _focus(zs, h=4, w=5):
    return torch.tensor(zs, dtype=torch.float32)[None, :, None, None].expand(1, len(zs), h, w).clone()


def test_linear_weights_interpolate_between_and_clamp_beyond():
    f = _focus([-1.0, 0.0, 1.0])
    for t, want in [(0.25, [0, 0.75, 0.25]), (-1.0, [1, 0, 0]), (0.0, [0, 1, 0]),
                    (-2.5, [1, 0, 0]), (3.0, [0, 0, 1]), (-0.5, [0.5, 0.5, 0])]:
        w = linear_weights(f, torch.full((1, 4, 5), t))
        assert torch.allclose(w[0, :, 2, 3], torch.tensor(want, dtype=torch.float32), atol=1e-6), t
        assert torch.allclose(w.sum(1), torch.ones(1, 4, 5))


def test_linear_weights_follow_per_pixel_focus_maps_in_any_plane_order():
    f = _focus([1.0, -1.0])
    f[0, 0, :, :2] = 0.0                       # left of plane 0 is focused at 0 µm
    w = linear_weights(f, torch.zeros(1, 4, 5))
    assert torch.allclose(w[0, 0, :, :2], torch.ones(4, 2))
    assert torch.allclose(w[0, :, :, 3], torch.full((2, 4), 0.5))


def test_nearest_weights_pick_the_closest_plane():
    f = _focus([-1.0, 0.0, 1.0])
    w = nearest_weights(f, torch.full((1, 4, 5), 0.7))
    assert w[0, 2].eq(1).all() and w[0, :2].eq(0).all()


def test_blend_and_focus_stack_take_the_sharp_half_of_each_plane():
    g = torch.Generator().manual_seed(0)
    sharp = torch.rand(1, 3, 64, 64, generator=g)
    soft = gaussian_blur(sharp, 3.0)
    a = torch.cat([sharp[..., :32], soft[..., 32:]], -1)
    b = torch.cat([soft[..., :32], sharp[..., 32:]], -1)
    stack = torch.stack([a, b], 1)
    out = focus_stack(stack)
    inner = (slice(None), slice(None), slice(8, -8))
    assert (out - sharp)[..., 8:-8, 8:24].abs().max() < 1e-4
    assert (out - sharp)[..., 8:-8, 40:56].abs().max() < 1e-4
    assert (out - sharp)[inner].abs().mean() < 0.2 * (a - sharp)[inner].abs().mean()
    half = blend(stack, torch.full((1, 2, 64, 64), 0.5))
    assert torch.allclose(half, (a + b) / 2)
