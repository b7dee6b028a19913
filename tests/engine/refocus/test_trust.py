"""The model's trust on a stack, measured on the stack's own planes: a model whose corrections
do not match the stack falls back to the blend; the shipped model keeps its corrections on the
phantom it was made for."""
import numpy as np
import torch

from engine.refocus.model import RefocusNet
from engine.refocus.native_pitch import to_native_pitch
from engine.refocus.trust import apply_trust, loo_trust, slide_trust
from engine.refocus.refocused_slide import RefocusedSlide, shipped_model
from engine.slides.array import ArraySlide
from tests.slide_files import textured_plane


def _wild(seed=1):
    """A model with random corrections: what it adds to the blend has nothing to do with optics."""
    model = RefocusNet(depth=4, channels=(4, 8, 8))
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=g))
    return model.eval()


def _stack(n=4, side=64):
    planes = np.stack([textured_plane(side, side, i, seed=2) for i in range(n)]).astype(np.float32) / 255.0
    return torch.from_numpy(planes).permute(0, 3, 1, 2)[None]


def test_a_model_that_does_not_know_the_stack_falls_back_to_the_blend():
    stack = _stack()
    z = [-1.0, 0.0, 1.0, 2.0]
    alpha, info = loo_trust(_wild(), stack, z)
    assert info["held_out"] == 4 and info["gain_db"] < 0         # its corrections make things worse
    assert alpha < 0.2
    out = torch.rand(1, 3, 64, 64)
    base = torch.rand(1, 3, 64, 64)
    assert torch.equal(apply_trust(out, base, 1.0), out)
    assert torch.allclose(apply_trust(out, base, 0.0), base)
    mixed = to_native_pitch(out, stack, torch.tensor([z]), torch.tensor([0.5]), None, (64, 64), 0.0)
    from engine.refocus.baselines import blend, linear_weights
    f = torch.tensor(z).view(1, 4, 1, 1).expand(1, 4, 64, 64)
    assert torch.allclose(mixed, blend(stack, linear_weights(f, torch.full((1, 64, 64), 0.5))), atol=1e-6)


def test_one_plane_is_trusted_as_it_is():
    assert loo_trust(_wild(), _stack(1), [0.0]) == (1.0, {"held_out": 0, "gain_db": 0.0})


def test_the_shipped_model_keeps_its_corrections_on_the_phantom():
    from engine.phantom import PhantomSlide

    slide = PhantomSlide(seed=5, size=(2048, 2048), planes=5, spacing_um=1.0, scanner_error=False)
    model = shipped_model()
    alpha = slide_trust(model, slide, list(range(5)), 1.0)
    assert alpha > 0.6


def test_the_viewer_applies_the_slides_trust():
    planes = [textured_plane(160, 160, 0, seed=3)] * 3
    slide = ArraySlide(planes, planes_um=[-1.0, 0.0, 1.0])
    view = RefocusedSlide(slide, 0.4, model=_wild())
    assert view.trust() < 0.2
    got = view.read_region(0, 0, 0, 160, 160).astype(int)
    assert np.abs(got - np.asarray(planes[0], int)).mean() < 3     # all planes equal: the blend is the plane
