"""Train FocusLiteNN on focal stacks: `finefocus fqa train`.

Thesis Sec. 3.4.1: Adam, learning rate 0.01 decayed by 10× halfway (``decay_at``), negative-PLCC loss
(Eq. 3.7) on batches of 235×235 patches whose label is |z − z*| in µm (Eq. 3.9). Stacks come from
the phantom (training seeds only, see `engine.fqa.dataset.TRAINING_SEED_BASE`) and optionally
from a user's own multi-plane slides (`--stacks`), with the variation of `augment.py`.

Checkpoints: every ``checkpoint_every`` steps the model, optimiser, step and RNG state go to
``<checkpoint_dir>/last.pt``; `resume=True` continues from there. The rendered stacks are cached
in ``<checkpoint_dir>/stacks.npz`` so a resumed run does not render them again.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..evaluation import plcc, srcc
from .augment import augment_uint8
from .dataset import StackSet
from .focuslitenn import FocusLiteNN, save_weights


@dataclass
class TrainConfig:
    kernels: int = 1
    steps: int = 3000
    batch: int = 48
    lr: float = 0.01
    decay_at: float = 0.5          # fraction of steps after which lr drops 10×
    seed: int = 0
    checkpoint_every: int = 250
    validate_every: int = 250
    stack_paths: list[str] = field(default_factory=list)


def neg_plcc(pred: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
    """Negative Pearson correlation (Eq. 3.7) of a batch: the thesis's training loss."""
    p = pred - pred.mean()
    t = label - label.mean()
    return -(p * t).sum() / (p.norm() * t.norm() + 1e-8)


def _batch(stacks: StackSet, g: torch.Generator, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """n random (patch, label) pairs, patches float (n, 3, 235, 235) in [0, 1]."""
    s = torch.randint(0, len(stacks), (n,), generator=g).numpy()
    z = (torch.rand(n, generator=g).numpy() * stacks.planes_per_stack(s)).astype(int)
    imgs, labels = stacks.patches(s, z)
    return augment_uint8(imgs, g), torch.from_numpy(labels).float()


def train(cfg: TrainConfig, out: Path, checkpoint_dir: Path, stacks: StackSet, val: StackSet,
          resume: bool = False, log: Callable[[str], None] = print,
          init: FocusLiteNN | None = None, until: int | None = None) -> dict:
    """Train, checkpointing as it goes; writes the weights with the best validation SRCC to
    ``out`` whenever they improve; returns a summary. ``init`` starts from a trained model
    (fine-tuning) instead of random weights; ``until`` stops (with a checkpoint) after that
    step, as an interruption would, so a later ``resume`` continues the same schedule."""
    torch.manual_seed(cfg.seed)
    model = FocusLiteNN(cfg.kernels)
    if init is not None:
        if init.kernels != cfg.kernels:
            raise ValueError(f"initial model has {init.kernels} kernels, the run {cfg.kernels}")
        model.load_state_dict(init.state_dict())
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    decay_step = max(1, int(cfg.steps * cfg.decay_at))
    g = torch.Generator().manual_seed(cfg.seed)
    step, best = 0, {"val_srcc": -2.0}
    ckpt = checkpoint_dir / "last.pt"
    if resume and ckpt.exists():
        blob = torch.load(ckpt, map_location="cpu", weights_only=True)
        model.load_state_dict(blob["model"])
        opt.load_state_dict(blob["opt"])
        g.set_state(blob["rng"])
        step, best = int(blob["step"]), dict(blob["best"])
        log(f"resumed from {ckpt} at step {step}")
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    last = cfg.steps if until is None else min(cfg.steps, until)
    while step < last:
        for group in opt.param_groups:  # the schedule is a function of the step alone
            group["lr"] = cfg.lr * (0.1 if step >= decay_step else 1.0)
        model.train()
        x, y = _batch(stacks, g, cfg.batch)
        loss = neg_plcc(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        if step % cfg.validate_every == 0 or step == cfg.steps:
            v = validate(model, val)
            log(f"step {step} loss {loss.item():.4f} val_srcc {v['srcc']:.4f} val_plcc {v['plcc']:.4f} "
                f"({time.time() - t0:.0f} s)")
            if v["srcc"] > best["val_srcc"]:
                best = {"val_srcc": v["srcc"], "val_plcc": v["plcc"], "step": step}
                save_weights(calibrated(model, val), out, {"config": asdict(cfg), **best, "score_units": "µm"})
        if step % cfg.checkpoint_every == 0 or step == last:
            torch.save({"model": model.state_dict(), "opt": opt.state_dict(),
                        "rng": g.get_state(), "step": step, "best": best}, ckpt)
    summary = {"out": str(out), "kernels": cfg.kernels, "steps": step, **best,
               "parameters": model.parameter_count()}
    (checkpoint_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def calibrated(model: FocusLiteNN, val: StackSet) -> FocusLiteNN:
    """A copy of ``model`` whose score is in µm of defocus: the least-squares affine map from
    its scores to the labels |z − z*| on ``val`` folded into w_max, w_min and the offset
    (Eq. 3.5 is linear in them). Correlations are unchanged; heatmaps read in µm."""
    import copy

    p, t = _predictions(model, val)
    a, b = np.polyfit(p.astype(np.float64), t.astype(np.float64), 1)
    out = copy.deepcopy(model)
    with torch.no_grad():
        out.w_max.mul_(float(a))
        out.w_min.mul_(float(a))
        out.offset.copy_(out.offset * float(a) + float(b))
    return out.eval()


@torch.inference_mode()
def _predictions(model: FocusLiteNN, val: StackSet) -> tuple[np.ndarray, np.ndarray]:
    model.eval()
    preds, labels = [], []
    for imgs, lab in val.iter_stacks():
        x = torch.from_numpy(imgs).permute(0, 3, 1, 2).float().div_(255.0)
        preds.append(model(x).numpy())
        labels.append(lab)
    return np.concatenate(preds), np.concatenate(labels)


@torch.inference_mode()
def validate(model: FocusLiteNN, val: StackSet) -> dict:
    """SRCC / PLCC of the model on every patch of a held-out stack set (no augmentation)."""
    p, t = _predictions(model, val)
    return {"srcc": srcc(p, t), "plcc": plcc(p, t)}
