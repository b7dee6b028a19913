"""RefocusNet's two halves: a target-independent field, cheap decodes, any plane count and size."""
import pytest
import torch

from engine.refocus.baselines import blend, linear_weights
from engine.refocus.model import MAX_PLANES, RefocusNet
from engine.refocus.radiance import Radiance

TINY = dict(depth=4, channels=(4, 8, 8))


def _stack(n, h=40, w=48, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(1, n, 3, h, w, generator=g), torch.linspace(-1, 1, n)[None]


def _perturbed(model):
    """The model with its zero-initialised head and SFT layers given random weights."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
    return model.eval()


def test_field_is_computed_once_and_decoded_at_any_target():
    model = _perturbed(RefocusNet(**TINY))
    stack, focus = _stack(3)
    with torch.no_grad():
        field = model.encode(stack, focus)
        a = model.decode(field, torch.tensor([0.3]))
        b = model.decode(field, torch.tensor([-0.8]))
        again = model(stack, focus, torch.tensor([0.3]))
    assert isinstance(field, Radiance) and field.depth == 4 and field.size == (40, 48)
    assert a.shape == (1, 3, 40, 48) and float(a.min()) >= 0 and float(a.max()) <= 1
    assert torch.allclose(a, again, atol=1e-5)
    assert (a - b).abs().mean() > 1e-4


def test_uniform_target_fast_path_equals_the_per_pixel_path():
    """A uniform target decodes on (B, 1, 1) maps with cached blurs; a map that differs from it
    by 1e-6 µm in one corner pixel takes the per-pixel path: the images must agree."""
    model = _perturbed(RefocusNet(**TINY))
    stack, focus = _stack(2, 64, 64)
    with torch.no_grad():
        field = model.encode(stack, focus)
        for t in (0.5, -2.0):
            uni = model.decode(field, torch.tensor([t]))
            same = model.decode(field, torch.full((1, 64, 64), t))
            nudged = torch.full((1, 64, 64), t)
            nudged[0, 0, 0] += 1e-6
            per = model.decode(field, nudged)
            assert torch.equal(uni, same)
            assert torch.allclose(uni, per, atol=1e-5)


def test_untrained_model_starts_from_the_linear_blend():
    model = RefocusNet(**TINY).eval()
    stack, focus = _stack(3, 32, 32)
    t = torch.full((1, 32, 32), 0.25)
    with torch.no_grad():
        out = model(stack, focus, t)
    fmap = focus[:, :, None, None].expand(1, 3, 32, 32)
    assert torch.allclose(out, blend(stack, linear_weights(fmap, t)).clamp(0, 1), atol=1e-6)


@pytest.mark.parametrize("n", [1, 2, 5, MAX_PLANES])
def test_any_plane_count_and_per_pixel_focus_maps(n):
    model = RefocusNet(**TINY).eval()
    stack, _ = _stack(n, 24, 24)
    focus = torch.randn(1, n, 24, 24)
    with torch.no_grad():
        assert model(stack, focus, torch.tensor([0.0])).shape == (1, 3, 24, 24)


def test_bad_inputs_raise_value_errors():
    model = RefocusNet(**TINY)
    stack, focus = _stack(3)
    with pytest.raises(ValueError, match="planes"):
        model.encode(torch.rand(1, MAX_PLANES + 1, 3, 16, 16), torch.zeros(1, MAX_PLANES + 1))
    with pytest.raises(ValueError, match="focus maps"):
        model.encode(stack, torch.zeros(1, 2))
    field = model.encode(stack, focus)
    with pytest.raises(ValueError, match="target map"):
        model.decode(field, torch.zeros(1, 8, 8))
    with pytest.raises(ValueError, match="pool"):
        RefocusNet(pool="median")


def test_radiance_select_half_precision_and_size():
    model = RefocusNet(**TINY).eval()
    stack = torch.rand(2, 2, 3, 32, 32)
    with torch.no_grad():
        field = model.encode(stack, torch.tensor([[0.0, 1.0], [-1.0, 0.5]]))
        one = field.select(1)
        half = field.to(torch.float16)
        out_full = model.decode(one, torch.tensor([0.2]))
        out_half = model.decode(half.select(1), torch.tensor([0.2]))
        out_batch = model.decode(field, torch.tensor([0.2, 0.2]))
    assert torch.allclose(out_batch[1:2], out_full, atol=1e-6)     # the cached blurs follow select()
    assert one.batch == 1 and half.nbytes < field.nbytes
    assert (out_full - out_half).abs().max() < 2e-2


def test_a_field_without_fine_keys_pools_the_finest_scale_with_the_coarser_attention():
    """fine_keys=False: keys at 1/4 and 1/8 px only; the finest scale's pooling weights are the
    1/4-px attention upsampled, so they still sum to 1 over depth and follow the target."""
    model = _perturbed(RefocusNet(**TINY, fine_keys=False))
    stack, focus = _stack(3, 64, 64)
    with torch.no_grad():
        field = model.encode(stack, focus)
        a = model.decode(field, torch.tensor([0.4]))
        b = model.decode(field, torch.tensor([-0.9]))
        compact = model.decode(field.compact().dense(), torch.tensor([0.4]))
    assert len(field.keys) == 2 and field.keys[0].shape[-2:] == (16, 16)
    assert (a - b).abs().mean() > 1e-4
    assert (a - compact).abs().max() < 0.02
    full = RefocusNet(**TINY)
    with torch.no_grad():
        assert field.compact().nbytes < full.encode(stack, focus).compact().nbytes
    again = RefocusNet.from_config(model.config)
    again.load_state_dict(model.state_dict())
    with torch.no_grad():
        assert torch.equal(again.eval().decode(again.encode(stack, focus), torch.tensor([0.4])), a)


def test_a_trained_model_converts_into_the_smaller_field_and_keeps_its_output():
    """`without_fine_keys` keeps every weight but the 1/2-px key head: a fine-tuning start whose
    output stays close to the original's (the finest scale's attention becomes the 1/4-px one)."""
    model = _perturbed(RefocusNet(**TINY))
    small = model.without_fine_keys()
    assert small.config["fine_keys"] is False and model.config["fine_keys"] is True
    stack, focus = _stack(3, 64, 64)
    with torch.no_grad():
        a, b = model(stack, focus, torch.tensor([0.2])), small(stack, focus, torch.tensor([0.2]))
        assert len(small.encode(stack, focus).keys) == 2
    assert 0 < float((a - b).abs().mean()) < 0.05
    assert small.without_fine_keys() is small
