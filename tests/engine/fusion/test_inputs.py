"""The models fusion combines: shipped FocusLiteNN weights (as one family) and classical metrics,
all oriented higher = blurrier."""
import numpy as np
import pytest

from engine.fqa.focuslitenn import load_model, weights_path
from engine.fqa.metrics import METRICS
from engine.fusion.inputs import FOCUSLITENN_KERNELS, FUSION_METRICS, default_models, random_models
from tests.engine.fusion.phantom_scores import phantom_scores


def _patches():
    images = phantom_scores().stacks.images
    return images[:2].reshape((-1,) + images.shape[2:])[::3]


def test_the_default_metrics_are_known_and_scored_higher_is_blurrier():
    ms = default_models(focuslitenn=False)
    assert ms.names == list(FUSION_METRICS) and set(ms.names) <= set(METRICS)
    patches = _patches()
    scores = ms.score_patches(patches)
    assert scores.shape == (len(patches), len(FUSION_METRICS)) and np.isfinite(scores).all()
    dog = METRICS["difference_of_gaussians"]
    np.testing.assert_allclose(scores[:, 0], -dog.score_patches(patches), rtol=1e-6)
    with pytest.raises(ValueError, match="unknown metric"):
        default_models(["sharpness"], focuslitenn=False)


def test_shipped_focuslitenns_enter_as_one_family_scoring_their_mean():
    shipped = [k for k in FOCUSLITENN_KERNELS if weights_path(k).exists()]
    if len(shipped) < 2:
        pytest.skip(f"only {len(shipped)} FocusLiteNN weights shipped so far")
    family = default_models(focuslitenn=True)
    separate = default_models(focuslitenn=True, focuslitenn_family=False)
    name = "focuslitenn-" + "+".join(map(str, shipped))
    assert family.names[0] == name and separate.names[:len(shipped)] == [f"focuslitenn-{k}" for k in shipped]
    patches = _patches()
    np.testing.assert_allclose(family.score_patches(patches)[:, 0],
                               separate.score_patches(patches)[:, :len(shipped)].mean(1), rtol=1e-5)
    import torch
    x = torch.from_numpy(patches).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        direct = np.mean([load_model(weights_path(k))(x).numpy() for k in shipped], 0)
    np.testing.assert_allclose(family.score_patches(patches)[:, 0], direct, rtol=1e-4, atol=1e-5)


def test_random_models_are_uniform_and_reproducible():
    names, a = random_models(500, 2, 7)
    assert names == ["random-1", "random-2"] and a.shape == (500, 2)
    assert ((a >= 0) & (a < 1)).all() and abs(a.mean() - 0.5) < 0.05
    np.testing.assert_array_equal(a, random_models(500, 2, 7)[1])
    assert not np.array_equal(a, random_models(500, 2, 8)[1])
