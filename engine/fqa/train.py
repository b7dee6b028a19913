"""Train FocusLiteNN on focal stacks: `finefocus fqa train`.

Thesis Sec. 3.4.1: Adam, learning rate 0.01 decayed by 10× halfway (``decay_at``), negative-PLCC loss
(Eq. 3.7) on batches of 235×235 patches whose label is |z − z*| in µm (Eq. 3.9). Stacks come from
the phantom (training seeds only, see `engine.phantom.seeds`) and optionally
from a user's own multi-plane slides (`--stacks`), with the variation of `augment.py`.

Image-level term (optional): with whole-image stacks (`engine.fqa.image_stacks`), each step also
scores ``image_batch`` random planes of them as the thesis' test protocol and `fqa score` do (the
mean of an image's tissue-patch scores) and adds the negative PLCC of those image scores against
their labels |z − z*_image|, weighted by ``image_weight``: the pooled ranking of whole images is what
`fqa eval` measures, and a patch batch alone does not see how patch scores average over an image.
Weights are then selected by the mean of the patch and image validation SRCCs.

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
from .image_stacks import ImageStackSet, image_score, tissue_masks


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
    image_batch: int = 12          # whole images per step (with image stacks)
    image_weight: float = 1.0      # weight of the image-level loss against the patch loss


class CheckpointMismatch(ValueError):
    """A checkpoint from a run on other data (with or without image stacks) was asked to resume."""


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


class ImageTerm:
    """Whole-image stacks for the image-level loss, with their tissue masks (computed once)."""

    def __init__(self, train: ImageStackSet, val: ImageStackSet):
        self.train, self.val = train, val
        self.train_labels, self.val_labels = train.labels(), val.labels()
        self.train_tissue, self.val_tissue = tissue_masks(train), tissue_masks(val)

    def batch(self, g: torch.Generator, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """n random training planes with the patch variation of `augment_uint8`: stain, exposure
        and JPEG; no added noise (the images were rendered with the scanner's sensor noise) and no
        rotation (it would move the patch grid off the tissue mask). x (n, 3, H, W), labels, tissue."""
        s = torch.randint(0, len(self.train), (n,), generator=g).numpy()
        k = torch.randint(0, self.train.planes_per_stack, (n,), generator=g).numpy()
        imgs = np.stack([self.train.image(a, b) for a, b in zip(s, k)])
        x = augment_uint8(imgs, g, noise=False, orient=False)
        return x, torch.from_numpy(self.train_labels[s, k]), torch.from_numpy(self.train_tissue[s, k])

    @torch.inference_mode()
    def validate(self, model: FocusLiteNN, chunk: int = 8) -> dict:
        """SRCC / PLCC of whole-image scores on the validation image stacks (no augmentation)."""
        model.eval()
        S, Z = self.val.z.shape
        flat = [(a, b) for a in range(S) for b in range(Z)]
        preds = []
        for i in range(0, len(flat), chunk):
            part = flat[i:i + chunk]
            x = torch.from_numpy(np.stack([self.val.image(a, b) for a, b in part]))
            x = x.permute(0, 3, 1, 2).float().div_(255.0)
            t = torch.from_numpy(np.stack([self.val_tissue[a, b] for a, b in part]))
            preds.append(image_score(model, x, t).numpy())
        p = np.concatenate(preds)
        t = self.val_labels.reshape(-1)
        return {"srcc": srcc(p, t), "plcc": plcc(p, t)}


def train(cfg: TrainConfig, out: Path, checkpoint_dir: Path, stacks: StackSet | None, val: StackSet,
          resume: bool = False, log: Callable[[str], None] = print,
          init: FocusLiteNN | None = None, until: int | None = None,
          images: ImageTerm | None = None) -> dict:
    """Train, checkpointing as it goes; writes the weights with the best validation SRCC to
    ``out`` whenever they improve; returns a summary. ``init`` starts from a trained model
    (fine-tuning) instead of random weights; ``until`` stops (with a checkpoint) after that
    step, as an interruption would, so a later ``resume`` continues the same schedule.
    ``stacks`` None trains on ``images`` alone; with ``images``, the selection SRCC is the mean of
    the patch and image validation SRCCs."""
    if stacks is None and images is None:
        raise ValueError("nothing to train on: no patch stacks and no image stacks")
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
        if bool(blob.get("images", False)) != (images is not None):
            raise CheckpointMismatch(f"{ckpt}: that run {'used' if blob.get('images') else 'did not use'} image stacks; "
                             "resume it with the same data (or start a new --checkpoint-dir)")
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
        loss = torch.zeros(())
        if stacks is not None:
            x, y = _batch(stacks, g, cfg.batch)
            loss = loss + neg_plcc(model(x), y)
        if images is not None:
            x, y, t = images.batch(g, cfg.image_batch)
            loss = loss + cfg.image_weight * neg_plcc(image_score(model, x, t), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        if step % cfg.validate_every == 0 or step == cfg.steps:
            v = validate(model, val)
            msg = f"step {step} loss {loss.item():.4f} val_srcc {v['srcc']:.4f} val_plcc {v['plcc']:.4f}"
            score, extra = v["srcc"], {}
            if images is not None:
                vi = images.validate(model)
                extra = {"val_patch_srcc": v["srcc"], "val_image_srcc": vi["srcc"], "val_image_plcc": vi["plcc"]}
                score = 0.5 * (v["srcc"] + vi["srcc"])
                msg += f" val_image_srcc {vi['srcc']:.4f} val_image_plcc {vi['plcc']:.4f} selection {score:.4f}"
            log(f"{msg} ({time.time() - t0:.0f} s)")
            if score > best["val_srcc"]:
                best = {"val_srcc": score, "val_plcc": v["plcc"], "step": step, **extra,
                        "selection": "patch" if images is None else "mean of patch and image SRCC"}
                save_weights(calibrated(model, val), out, {"config": asdict(cfg), **best, "score_units": "µm"})
        if step % cfg.checkpoint_every == 0 or step == last:
            torch.save({"model": model.state_dict(), "opt": opt.state_dict(),
                        "rng": g.get_state(), "step": step, "best": best, "images": images is not None}, ckpt)
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
