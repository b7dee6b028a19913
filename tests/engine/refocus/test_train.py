"""A real (tiny) training run: it logs, validates, saves the best weights and resumes."""
import json

import torch

from engine.refocus.train import TrainConfig, train
from engine.refocus.weights import load_model


def test_train_saves_best_weights_and_resumes(refocus_checkpoints, tmp_path):
    ck = tmp_path / "ck"
    ck.mkdir()
    for sub in ("data", "val"):
        (ck / sub).mkdir()
        for f in (refocus_checkpoints / sub).glob("*.npz"):
            (ck / sub / f.name).symlink_to(f)
    out = tmp_path / "w.pt"
    cfg = TrainConfig(out=out, checkpoints=ck, slides=1, steps=2, batch=2, crop=32, val_every=1, val_examples=1,
                      channels=(4, 8, 8), depth=4)
    logs = []
    first = train(cfg, log=logs.append)
    assert first["step"] == 2 and [h[0] for h in first["history"]["val"]] == [0, 1, 2]
    assert (ck / "last.pt").exists() and (ck / "curve.png").exists() and out.exists()
    model, meta = load_model(out)
    assert model.config["channels"] == [4, 8, 8] and meta["step"] in (1, 2)
    assert 0 < meta["val_ssim"] <= 1

    cfg.steps, cfg.resume = 3, True
    second = train(cfg, log=logs.append)
    assert second["step"] == 3 and [h[0] for h in second["history"]["val"]] == [0, 1, 2, 3]
    assert any("resumed from" in m and "at step 2" in m for m in logs)
    blob = torch.load(ck / "last.pt", weights_only=True)
    assert blob["step"] == 3 and len(json.loads(blob["history"])["val"]) == 4


def test_loss_weights_keep_the_default_run_and_follow_eq_5_13():
    from pathlib import Path

    import pytest

    from engine.refocus.train import loss_weights
    default = loss_weights(TrainConfig(out=Path("w.pt")))
    assert default == {"l1": 1.0, "ssim": 1.0, "dists": 0.0, "consistency": 0.05, "gan": 0.0}
    assert loss_weights(TrainConfig(out=Path("w.pt"), gan=True))["gan"] == pytest.approx(1 / 15)
    eq = loss_weights(TrainConfig(out=Path("w.pt"), recon="wsi-dists", gan=True))
    assert eq == {"l1": 0.0, "ssim": 0.0, "dists": 15.0, "consistency": 1.0, "gan": 1.0}
    assert loss_weights(TrainConfig(out=Path("w.pt"), recon="wsi-dists", w_consistency=0.0))["consistency"] == 0.0
    with pytest.raises(ValueError, match="recon"):
        loss_weights(TrainConfig(out=Path("w.pt"), recon="mse"))
