"""Training the refocus model on phantom focal stacks (and optionally the user's own stacks).

Loss per step (a batch of B crops, one plane count N ∈ 1..5)::

    L = w_l1 · |ŷ − y|₁ + w_ssim · (1 − SSIM(ŷ, y)) + w_cons · L_consis

L_consis is Eq. 5.4: every ``consistency_every`` steps with N ≥ 2, the planes are split into
two disjoint subsets, both are encoded onto the same depth bins and the mean squared difference
of their latents is averaged over the three scales.

Runs are resumable: every ``val_every`` steps the model, optimiser, step and history go to
``<checkpoints>/last.pt`` and the validation SSIM (fixed examples of a held-out training-range
slide, seed 2 000 000, never an evaluation seed) is logged; the best model so far is written to
``out`` (a weights file, see ``weights.py``), every validated model to
``<checkpoints>/snapshots/step-N.pt`` (for ablations at equal steps) and the curve to
``<checkpoints>/curve.png``.
``resume`` continues from ``last.pt``, or — when no checkpoint is left — fine-tunes the shipped
weights. Training data come from the crop cache (``dataset.build_cache``); files added to it while
training are picked up at the next validation.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .curve import plot_curves
from .dataset import FocalStackSampler, PlaneHoldoutSampler, build_cache, load_cache
from .image_metrics import ssim
from .model import RefocusNet
from .weights import load_model, save_weights, shipped_weights

__all__ = ["TrainConfig", "train", "TRAIN_SEED0", "VAL_SEED", "validation_set", "validate"]

TRAIN_SEED0 = 1_000_000
VAL_SEED = 2_000_000


@dataclass
class TrainConfig:
    out: Path
    checkpoints: Path = Path("checkpoints/refocus")
    slides: int = 2                 # training slides rendered into the cache before starting if missing
    steps: int = 6000
    batch: int = 4
    crop: int = 96
    lr: float = 1e-3
    w_l1: float = 1.0
    w_ssim: float = 1.0
    w_consistency: float = 0.05
    consistency_every: int = 8
    pool: str = "fsca"
    channels: tuple[int, int, int] = (12, 16, 32)
    depth: int = 8
    val_every: int = 200
    val_examples: int = 6           # per plane count 1..5
    resume: bool = False
    until: int | None = None        # stop after this step (the schedule still follows ``steps``)
    stacks: list = field(default_factory=list)   # opened multi-plane Slide objects to fine-tune on
    seed: int = 0
    threads: int = 1


def _lr(cfg: TrainConfig, step: int) -> float:
    warm = min(1.0, (step + 1) / 100)
    return cfg.lr * warm * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(step, cfg.steps) / cfg.steps)))


def validation_set(cache: dict, crop: int, per_n: int, seed: int = 123) -> list:
    """Fixed validation batches: for N = 1..5, ``per_n`` examples (all target kinds)."""
    s = FocalStackSampler(cache, crop=crop, seed=seed)
    out = []
    for n in range(1, 6):
        ex = [s.example(n, kind=FocalStackSampler.TARGET_KINDS[k % 5]) for k in range(per_n)]
        out.append(tuple(torch.stack([e[j] for e in ex]) for j in range(4)))
    return out


@torch.no_grad()
def validate(model: RefocusNet, vset: list) -> dict:
    """Mean SSIM overall and per plane count."""
    model.eval()
    res = {}
    for n, (planes, focus, target, truth) in enumerate(vset, start=1):
        res[f"fs{n}"] = float(ssim(model(planes, focus, target), truth).mean())
    model.train()
    res["all"] = float(np.mean(list(res.values())))
    return res


def consistency_loss(model: RefocusNet, planes: torch.Tensor, focus: torch.Tensor, rng: np.random.Generator):
    """Eq. 5.4 on two disjoint random subsets of the planes (same depth bins)."""
    n = planes.shape[1]
    perm = rng.permutation(n)
    k = int(rng.integers(1, n))
    a, b = np.sort(perm[:k]), np.sort(perm[k:])
    z = model.default_bins(focus[:, :, None, None])
    ra = model.encode(planes[:, a], focus[:, a], z)
    rb = model.encode(planes[:, b], focus[:, b], z)
    return sum(F.mse_loss(x, y) for x, y in zip(ra.latents, rb.latents)) / 3


def train(cfg: TrainConfig, log=print) -> dict:
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    ck = Path(cfg.checkpoints)
    data_dir, val_dir = ck / "data", ck / "val"
    build_cache(data_dir, range(TRAIN_SEED0, TRAIN_SEED0 + cfg.slides), log=log)
    build_cache(val_dir, [VAL_SEED], crops_per_slide=8, log=log)
    paths = sorted(data_dir.glob("*[0-9].npz"))
    sampler = FocalStackSampler(load_cache(paths), crop=cfg.crop, seed=cfg.seed + len(paths))
    vset = validation_set(load_cache(sorted(val_dir.glob("*[0-9].npz"))), cfg.crop, cfg.val_examples)
    user = None
    if cfg.stacks:
        from .dataset import slide_stack_crops
        parts = [slide_stack_crops(s, 16, np.random.default_rng(cfg.seed + i)) for i, s in enumerate(cfg.stacks)]
        user = [PlaneHoldoutSampler(p, crop=cfg.crop, seed=cfg.seed + i) for i, p in enumerate(parts)]

    last = ck / "last.pt"
    history = {"loss": [], "val": []}
    step, best = 0, -1.0
    if cfg.resume and last.exists():
        blob = torch.load(last, map_location="cpu", weights_only=True)
        c = blob["config"]
        model = RefocusNet(depth=c["depth"], channels=tuple(c["channels"]), bin_step_um=c["bin_step_um"],
                           pool=c["pool"], image_attention=c.get("image_attention", False))
        model.load_state_dict(blob["state"])
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
        opt.load_state_dict(blob["optim"])
        step, best = int(blob["step"]), float(blob["best"])
        history = json.loads(blob["history"])
        log(f"resumed from {last} at step {step} (best val SSIM {best:.4f})")
    else:
        if cfg.resume and shipped_weights() is not None:
            model, _ = load_model(shipped_weights())
            log(f"no checkpoint in {ck}: fine-tuning the shipped weights {shipped_weights()}")
        else:
            model = RefocusNet(depth=cfg.depth, channels=cfg.channels, pool=cfg.pool)
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    model.train()
    rng = np.random.default_rng(cfg.seed + step)
    log(f"training {model.parameter_count()} parameters on {len(paths)} slides, steps {step}..{cfg.steps}")
    t0, acc = time.time(), []
    stop = min(cfg.steps, cfg.until or cfg.steps)
    if step == 0:   # the starting model (untrained: the linear blend) opens the curve
        v = validate(model, vset)
        history["val"].append([0, v["all"], *[v[f"fs{n}"] for n in range(1, 6)]])
        log("val step 0: " + " ".join(f"{k} {x:.4f}" for k, x in v.items()))
    while step < stop:
        for g in opt.param_groups:
            g["lr"] = _lr(cfg, step)
        src = user[step % len(user)] if user and step % 2 else sampler
        planes, focus, target, truth, _ = src.batch(cfg.batch)
        out = model(planes, focus, target)
        l1 = (out - truth).abs().mean()
        ls = 1 - ssim(out, truth).mean()
        loss = cfg.w_l1 * l1 + cfg.w_ssim * ls
        lc = torch.zeros(())
        if cfg.w_consistency > 0 and planes.shape[1] >= 2 and step % cfg.consistency_every == 0:
            lc = consistency_loss(model, planes, focus, rng)
            loss = loss + cfg.w_consistency * lc
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        acc.append((l1.item(), ls.item(), lc.item()))
        if step % 25 == 0:
            m = np.mean(acc, 0)
            history["loss"].append([step, float(m[0]), float(m[1]), float(m[2])])
            log(f"step {step} l1 {m[0]:.4f} 1-ssim {m[1]:.4f} cons {m[2]:.5f} lr {_lr(cfg, step):.2e} "
                f"{(time.time() - t0) / len(acc):.2f}s/step")
            acc, t0 = [], time.time()
        if step % cfg.val_every == 0 or step == stop:
            v = validate(model, vset)
            save_weights(model, ck / "snapshots" / f"step-{step:06d}.pt", {"step": step, "val_ssim": v["all"]})
            history["val"].append([step, v["all"], *[v[f"fs{n}"] for n in range(1, 6)]])
            improved = v["all"] > best
            if improved:
                best = v["all"]
                save_weights(model, cfg.out, {"step": step, "val_ssim": best})
            torch.save({"config": dict(model.config), "state": model.state_dict(), "optim": opt.state_dict(),
                        "step": step, "best": best, "history": json.dumps(history)}, ck / "last.tmp")
            (ck / "last.tmp").replace(last)
            plot_curves(ck / "curve.png", {
                "val SSIM (all)": [(h[0], h[1]) for h in history["val"]],
                "val SSIM FS=1": [(h[0], h[2]) for h in history["val"]],
                "val SSIM FS=3": [(h[0], h[4]) for h in history["val"]]},
                title=f"refocus: validation SSIM (held-out slide 2000000, {cfg.crop} px crops)", ylabel="SSIM")
            log(f"val step {step}: " + " ".join(f"{k} {x:.4f}" for k, x in v.items())
                + (" (best, saved)" if improved else ""))
            new = sorted(data_dir.glob("*[0-9].npz"))
            if len(new) > len(paths):
                paths = new
                sampler = FocalStackSampler(load_cache(paths), crop=cfg.crop, seed=cfg.seed + step)
                log(f"now training on {len(paths)} slides")
    return {"step": step, "best_val_ssim": best, "history": history}
