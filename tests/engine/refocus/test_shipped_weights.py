"""The shipped refocus weights on a phantom region of an evaluation seed (never trained on):
they load with weights_only, give a captured plane back and beat the linear blend between planes."""
import numpy as np
import pytest
import torch

from engine.refocus.baselines import blend, linear_weights
from engine.refocus.dataset import tissue_positions, training_slide
from engine.refocus.image_metrics import as_tensor, ssim
from engine.refocus.weights import load_model, save_weights, shipped_weights

pytestmark = pytest.mark.skipif(shipped_weights() is None, reason="no shipped refocus weights")


@pytest.fixture(scope="module")
def region():
    """Three captured (noisy) planes at −1, 0, +1 µm of a 128² tissue region, and the slide."""
    slide = training_slide(5, planes=3, spacing_um=1.0, noise=True)
    x, y = tissue_positions(slide, 1, np.random.default_rng(5), size=128)[0]
    planes = torch.stack([as_tensor(slide.read_region(0, x, y, 128, 128, i))[0] for i in range(3)])[None]
    return slide, (x, y), planes


def test_shipped_weights_roundtrip(tmp_path):
    model, meta = load_model(shipped_weights())
    assert meta["val_ssim"] > 0.9
    save_weights(model, tmp_path / "w.pt", meta)
    again, meta2 = load_model(tmp_path / "w.pt")
    assert meta2 == meta
    for a, b in zip(model.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)
    assert shipped_weights().stat().st_size < 20 << 20


def test_refocus_to_a_captured_plane_gives_it_back(region):
    slide, (x, y), planes = region
    model, _ = load_model(shipped_weights())
    focus = torch.tensor([[-1.0, 0.0, 1.0]])
    with torch.no_grad():
        field = model.encode(planes, focus)
        for i, z in enumerate((-1.0, 0.0, 1.0)):
            out = model.decode(field, torch.tensor([z]))
            truth = as_tensor(slide.truth(0, x, y, 128, 128, z))
            assert float(ssim(out, truth)) >= 0.98, z
            assert float(ssim(out, planes[:, i])) >= 0.95, z


def test_between_planes_beats_the_linear_blend(region):
    slide, (x, y), planes = region
    model, _ = load_model(shipped_weights())
    focus = torch.tensor([[-1.0, 0.0, 1.0]])
    fmap = focus[:, :, None, None].expand(1, 3, 128, 128)
    with torch.no_grad():
        field = model.encode(planes, focus)
        for z in (-0.5, 0.5):
            t = torch.full((1, 128, 128), z)
            truth = as_tensor(slide.truth(0, x, y, 128, 128, z))
            ours = float(ssim(model.decode(field, t), truth))
            linear = float(ssim(blend(planes, linear_weights(fmap, t)), truth))
            assert ours > linear, (z, ours, linear)
