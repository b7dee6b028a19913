"""The shipped FocusLiteNN weights: present for 1, 2 and 10 kernels, tiny, loadable with
weights_only=True, trained (their metadata records the validation they passed)."""
import pytest
import torch

from engine.fqa.evaluate import SHIPPED_KERNELS
from engine.fqa.focuslitenn import FocusLiteNN, load_model, weights_path


@pytest.mark.parametrize("kernels", SHIPPED_KERNELS)
def test_shipped_weights_load_safely_and_are_tiny(kernels):
    path = weights_path(kernels)
    assert path.exists(), f"{path} missing: train with `finefocus fqa train --kernels {kernels}`"
    assert path.stat().st_size < 20_000
    blob = torch.load(path, map_location="cpu", weights_only=True)
    assert blob["kernels"] == kernels
    meta = blob["meta"]
    assert meta["config"]["kernels"] == kernels and meta["score_units"] == "µm"
    assert 0.5 < meta["val_srcc"] <= 1.0
    model = load_model(f"focuslitenn-{kernels}")
    assert isinstance(model, FocusLiteNN) and model.parameter_count() == kernels * (7 * 7 * 3 + 1) + 2 * kernels + 1
