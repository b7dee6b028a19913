"""A slide finer than the model keeps its own pixels: the model adds its correction of the blend
to the blend at the slide's pitch (`native_pitch.to_native_pitch`), in eval-real and the viewer."""
import numpy as np
import torch
import torch.nn.functional as F

from engine.refocus.baselines import blend, linear_weights
from engine.refocus.model import RefocusNet
from engine.refocus.native_pitch import to_native_pitch
from engine.refocus.refocused_slide import RefocusedSlide
from engine.refocus.eval_real import _finefocus
from engine.slides.array import ArraySlide
from tests.slide_files import textured_plane


def _native_blend(planes, zin, z):
    x = torch.from_numpy(planes).permute(0, 3, 1, 2).float()[None] / 255.0
    h, w = planes.shape[1:3]
    f = torch.tensor(zin, dtype=torch.float32)[None, :, None, None].expand(1, len(zin), h, w)
    return blend(x, linear_weights(f, torch.full((1, h, w), float(z))))


def _planes(h=96, w=96):
    return np.stack([textured_plane(w, h, i, seed=4) for i in range(2)])


def test_an_untrained_model_returns_the_native_blend_pixel_for_pixel():
    """The untrained decoder is the linear blend; at a finer pitch the output must be the blend of
    the slide's own pixels (with plain resampling it would be a blurred copy)."""
    planes = _planes()
    model = RefocusNet(depth=4, channels=(4, 8, 8)).eval()
    got = _finefocus(model, planes, [-0.5, 0.5], 0.1, 0.5)
    want = (_native_blend(planes, [-0.5, 0.5], 0.1)[0].permute(1, 2, 0) * 255 + 0.5).to(torch.uint8).numpy()
    assert np.abs(got.astype(int) - want.astype(int)).max() <= 1
    x = torch.from_numpy(planes).permute(0, 3, 1, 2).float() / 255.0
    small = F.interpolate(x, scale_factor=0.5, mode="bicubic", align_corners=False)
    resampled = F.interpolate(small, size=(96, 96), mode="bicubic", align_corners=False)
    assert np.abs(got.astype(float) - want).mean() < 0.5 * float((resampled * 255 - x * 255).abs().mean())


def test_a_coarser_slide_is_area_averaged_back():
    out = torch.rand(1, 3, 64, 64)
    got = to_native_pitch(out, torch.rand(1, 2, 3, 64, 64), torch.tensor([[0.0, 1.0]]), torch.tensor([0.5]), None,
                          (32, 32))
    assert torch.allclose(got, F.avg_pool2d(out, 2), atol=1e-6)


def test_the_viewer_keeps_a_fine_slides_pixels_too():
    planes = _planes(200, 200)
    slide = ArraySlide([planes[0], planes[1]], planes_um=[-0.5, 0.5], mpp=(0.125, 0.125))
    model = RefocusNet(depth=4, channels=(4, 8, 8)).eval()
    view = RefocusedSlide(slide, 0.1, model=model)
    got = view.read_region(0, 40, 40, 100, 100)
    want = (_native_blend(planes[:, 40:140, 40:140], [-0.5, 0.5], 0.1)[0].permute(1, 2, 0) * 255 + 0.5)
    assert np.abs(got.astype(int) - want.to(torch.uint8).numpy().astype(int)).max() <= 1
