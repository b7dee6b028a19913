"""Training the refocus model on phantom focal stacks (and optionally the user's own stacks).

Loss per step (a batch of B crops, one plane count N ∈ 1..5), ``recon="l1-ssim"`` (default)::

    L = w_l1 · |ŷ − y|₁ + w_ssim · (1 − SSIM(ŷ, y)) + w_cons · L_consis [+ w_gan · L_GAN_G]

or, ``recon="wsi-dists"``, thesis Eq. 5.13 with the WSI-DISTS distance (``wsi_dists``, the
shipped weights unless ``dists_weights`` is given) as the reconstruction loss::

    L = λ_r · D(ŷ, y) + λ_c · L_consis [+ L_GAN_G]          λ_r = 15, λ_c = 1

(λ_c = 0 when ``w_consistency`` is 0, the no-consistency ablation). L_consis is Eq. 5.4: every
``consistency_every`` steps with N ≥ 2, the planes are split into two disjoint subsets, both
are encoded onto the same depth bins and the mean squared difference of their latents is
averaged over the three scales. With ``gan`` the conditional patch discriminator
D(x | f_t) of ``discriminator.py`` is trained alongside by its own Adam optimiser (same
learning-rate schedule) on the LSGAN losses of Eq. 5.12; its weight in the generator's loss
is 1 (Eq. 5.13) with WSI-DISTS and 1/15 with L1 + SSIM (the same ratio to the reconstruction
weight); ``w_gan`` overrides it.

Runs are resumable: every ``val_every`` steps the model, optimiser, step and history go to
``<checkpoints>/last.pt`` (with the discriminator and its optimiser when there is one, the loss
options and the random states, so a resumed run continues exactly as an uninterrupted one;
older checkpoints without them still resume) and the validation SSIM (fixed examples of a held-out training-range
slide, ``VAL_SEED``: `engine.phantom.seeds.REFOCUS_VALIDATION`, never an evaluation seed) is logged; the best model so far is written to
``out`` (a weights file, see ``weights.py``), every validated model to
``<checkpoints>/snapshots/step-N.pt`` (for ablations at equal steps) and the curve to
``<checkpoints>/curve.png``.
``resume`` continues from ``last.pt``, or — when no checkpoint is left — fine-tunes ``init``
(or, when that is not given, the shipped weights). Training data come from the crop cache (``dataset.build_cache``); files added to it while
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

from ..phantom.seeds import REFOCUS_VALIDATION, TRAINING, training_seeds
from .curve import plot_curves
from .dataset import FocalStackSampler, PlaneHoldoutSampler, build_cache, load_cache
from .discriminator import FocusDiscriminator, lsgan_d_loss, lsgan_g_loss, relative_target
from .image_metrics import ssim
from .model import RefocusNet
from .weights import load_model, save_weights, shipped_weights

__all__ = ["TrainConfig", "train", "TRAIN_SEED0", "VAL_SEED", "validation_set", "validate", "RECON_LOSSES",
           "loss_weights"]

TRAIN_SEED0 = TRAINING.start              # engine.phantom.seeds
VAL_SEED = REFOCUS_VALIDATION.start
RECON_LOSSES = ("l1-ssim", "wsi-dists")


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
    fine_keys: bool = True          # FSCA keys at all three scales (False: at 1/4 and 1/8 px only)
    tissue_version: int = 1         # phantom tissue model of the training slides rendered first
    textures: int = 0               # real-texture cache files (16 crops each) rendered first (phantom.texture_layers)
    augment: bool = False           # stain / grey / pitch / JPEG variation (dataset.scanner_variation)
    val_every: int = 200
    val_examples: int = 6           # per plane count 1..5
    resume: bool = False
    until: int | None = None        # stop after this step (the schedule still follows ``steps``)
    stacks: list = field(default_factory=list)   # opened multi-plane Slide objects to fine-tune on
    seed: int = 0
    threads: int = 1
    recon: str = "l1-ssim"          # reconstruction loss: "l1-ssim" or "wsi-dists" (Eq. 5.13)
    gan: bool = False               # LSGAN with a conditional patch discriminator (Eq. 5.12)
    lambda_r: float = 15.0          # Eq. 5.13 weights (used with recon="wsi-dists")
    lambda_c: float = 1.0
    w_gan: float | None = None      # None: 1 with wsi-dists, 1/15 with l1-ssim
    dists_weights: Path | None = None   # WSI-DISTS weights (None: the shipped ones)
    init: Path | None = None        # weights to start from when there is no checkpoint (ablations)


def loss_weights(cfg: TrainConfig) -> dict:
    """The weight of each loss term for ``cfg`` (0 for the terms not used)."""
    if cfg.recon not in RECON_LOSSES:
        raise ValueError(f"recon must be one of {RECON_LOSSES}, got {cfg.recon!r}")
    if cfg.recon == "wsi-dists":
        w = {"l1": 0.0, "ssim": 0.0, "dists": cfg.lambda_r,
             "consistency": cfg.lambda_c if cfg.w_consistency > 0 else 0.0, "gan": 1.0}
    else:
        w = {"l1": cfg.w_l1, "ssim": cfg.w_ssim, "dists": 0.0, "consistency": cfg.w_consistency, "gan": 1 / 15}
    if cfg.w_gan is not None:
        w["gan"] = cfg.w_gan
    if not cfg.gan:
        w["gan"] = 0.0
    return w


def _dists_model(cfg: TrainConfig):
    from .wsi_dists import load_dists, shipped_dists
    path = cfg.dists_weights or shipped_dists()
    if path is None:
        raise FileNotFoundError("recon='wsi-dists' needs WSI-DISTS weights: none given and none shipped "
                                "(train them with `finefocus refocus dists-train`)")
    return load_dists(path)[0]


def _random_states(sampler, rng) -> str:
    return json.dumps({"sampler": sampler.rng.bit_generator.state, "rng": rng.bit_generator.state})


def _lr(cfg: TrainConfig, step: int) -> float:
    warm = min(1.0, (step + 1) / 100)
    return cfg.lr * warm * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(step, cfg.steps) / cfg.steps)))


def validation_set(cache: dict, crop: int, per_n: int, seed: int = 123) -> list:
    """Fixed validation batches: for N = 1..5, ``per_n`` examples (all target kinds)."""
    s = FocalStackSampler(cache, crop=crop, seed=seed, focused_prob=0.0, focus_error_um=0.0)   # the same set as ever
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
    build_cache(data_dir, training_seeds(cfg.slides), log=log, tissue_version=cfg.tissue_version)
    if cfg.textures:
        from ..phantom.texture_layers import build_texture_cache
        build_texture_cache(data_dir, cfg.textures, log=log)
    build_cache(val_dir, [VAL_SEED], crops_per_slide=8, log=log)
    paths = sorted(data_dir.glob("*[0-9].npz"))
    sampler = FocalStackSampler(load_cache(paths), crop=cfg.crop, seed=cfg.seed + len(paths), augment=cfg.augment)
    vset = validation_set(load_cache(sorted(val_dir.glob("*[0-9].npz"))), cfg.crop, cfg.val_examples)
    user = None
    if cfg.stacks:
        from .dataset import slide_stack_crops
        parts = [slide_stack_crops(s, 16, np.random.default_rng(cfg.seed + i)) for i, s in enumerate(cfg.stacks)]
        user = [PlaneHoldoutSampler(p, crop=cfg.crop, seed=cfg.seed + i) for i, p in enumerate(parts)]

    last = ck / "last.pt"
    weights = loss_weights(cfg)
    dists = _dists_model(cfg) if weights["dists"] > 0 else None
    history = {"loss": [], "val": []}
    step, best, blob = 0, -1.0, {}
    if cfg.resume and last.exists():
        blob = torch.load(last, map_location="cpu", weights_only=True)
        c = blob["config"]
        model = RefocusNet.from_config(c)
        model.load_state_dict(blob["state"])
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
        opt.load_state_dict(blob["optim"])
        step, best = int(blob["step"]), float(blob["best"])
        history = json.loads(blob["history"])
        log(f"resumed from {last} at step {step} (best val SSIM {best:.4f})")
    else:
        start = cfg.init or (shipped_weights() if cfg.resume else None)
        if start is not None:
            model, _ = load_model(start)
            log(f"no checkpoint in {ck}: fine-tuning the weights {start}")
            if not cfg.fine_keys and model.config["fine_keys"]:
                model = model.without_fine_keys()
                log("  into a field without 1/2-px keys (the finest scale pools with the 1/4-px attention)")
        else:
            model = RefocusNet(depth=cfg.depth, channels=cfg.channels, pool=cfg.pool, fine_keys=cfg.fine_keys)
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    model.train()
    disc = FocusDiscriminator() if cfg.gan else None          # created after the model: same model init
    opt_d = torch.optim.Adam(disc.parameters(), lr=cfg.lr) if disc is not None else None
    if disc is not None and "disc_state" in blob:
        disc.load_state_dict(blob["disc_state"])
        opt_d.load_state_dict(blob["disc_optim"])
    elif disc is not None and blob:
        log(f"{last} has no discriminator: starting a new one")
    rng = np.random.default_rng(cfg.seed + step)
    if "random_states" in blob:      # continue the random streams exactly where the checkpoint left them
        states = json.loads(blob["random_states"])
        sampler.rng.bit_generator.state = states["sampler"]
        rng.bit_generator.state = states["rng"]
        sampler.gen.set_state(blob["sampler_gen"])
        torch.set_rng_state(blob["torch_rng"])
    log(f"training {model.parameter_count()} parameters on {len(paths)} slides, steps {step}..{cfg.steps}"
        + f" (recon {cfg.recon}{', LSGAN' if disc is not None else ''})")
    t0, acc = time.time(), []
    stop = min(cfg.steps, cfg.until or cfg.steps)
    if step == 0:   # the starting model (untrained: the linear blend) opens the curve
        v = validate(model, vset)
        history["val"].append([0, v["all"], *[v[f"fs{n}"] for n in range(1, 6)]])
        log("val step 0: " + " ".join(f"{k} {x:.4f}" for k, x in v.items()))
    while step < stop:
        for g in (*opt.param_groups, *(opt_d.param_groups if opt_d is not None else ())):
            g["lr"] = _lr(cfg, step)
        src = user[step % len(user)] if user and step % 2 else sampler
        planes, focus, target, truth, _ = src.batch(cfg.batch)
        out = model(planes, focus, target)
        l1 = (out - truth).abs().mean()
        ls = 1 - ssim(out, truth).mean()
        loss = weights["l1"] * l1 + weights["ssim"] * ls
        extra = {}
        if dists is not None:
            dist = dists(out, truth).mean()
            extra["dists"] = dist.detach()
            loss = loss + weights["dists"] * dist
        if disc is not None:    # Eq. 5.12: one discriminator step, then the generator's LSGAN term
            rel = relative_target(target, focus)
            ld = lsgan_d_loss(disc(truth, rel), disc(out.detach(), rel))
            opt_d.zero_grad(set_to_none=True)
            ld.backward()
            opt_d.step()
            extra["gan_d"] = ld.detach()
            lg = lsgan_g_loss(disc(out, rel))
            extra["gan_g"] = lg.detach()
            loss = loss + weights["gan"] * lg
        lc = torch.zeros(())
        if weights["consistency"] > 0 and planes.shape[1] >= 2 and step % cfg.consistency_every == 0:
            lc = consistency_loss(model, planes, focus, rng)
            loss = loss + weights["consistency"] * lc
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        acc.append((l1.item(), ls.item(), lc.item(), *(v.item() for v in extra.values())))
        if step % 25 == 0:
            m = np.mean(acc, 0)
            history["loss"].append([step, *(float(v) for v in m)])
            more = "".join(f" {k} {v:.4f}" for k, v in zip(extra, m[3:]))
            log(f"step {step} l1 {m[0]:.4f} 1-ssim {m[1]:.4f} cons {m[2]:.5f}{more} lr {_lr(cfg, step):.2e} "
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
            ckpt = {"config": dict(model.config), "state": model.state_dict(), "optim": opt.state_dict(),
                    "step": step, "best": best, "history": json.dumps(history),
                    "losses": json.dumps({"recon": cfg.recon, "gan": cfg.gan, "weights": weights}),
                    "random_states": _random_states(sampler, rng), "sampler_gen": sampler.gen.get_state(),
                    "torch_rng": torch.get_rng_state()}
            if disc is not None:
                ckpt["disc_state"], ckpt["disc_optim"] = disc.state_dict(), opt_d.state_dict()
            torch.save(ckpt, ck / "last.tmp")
            (ck / "last.tmp").replace(last)
            plot_curves(ck / "curve.png", {
                "val SSIM (all)": [(h[0], h[1]) for h in history["val"]],
                "val SSIM FS=1": [(h[0], h[2]) for h in history["val"]],
                "val SSIM FS=3": [(h[0], h[4]) for h in history["val"]]},
                title=f"refocus: validation SSIM (held-out slide {VAL_SEED}, {cfg.crop} px crops)", ylabel="SSIM")
            log(f"val step {step}: " + " ".join(f"{k} {x:.4f}" for k, x in v.items())
                + (" (best, saved)" if improved else ""))
            new = sorted(data_dir.glob("*[0-9].npz"))
            if len(new) > len(paths):
                paths = new
                sampler = FocalStackSampler(load_cache(paths), crop=cfg.crop, seed=cfg.seed + step, augment=cfg.augment)
                log(f"now training on {len(paths)} slides")
    return {"step": step, "best_val_ssim": best, "history": history}
