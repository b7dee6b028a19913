"""Training WSI-DISTS (thesis Sec. 5.2.4): the slide feature extractor, then α/β by Eq. 5.11.

1. **Features** (the thesis fine-tunes VGG16 on Kimia Path24, 24 slides): ``SlideFeatures``
   learns to tell which of ``len(classes)`` slides a patch comes from — the real images of
   ``../shared/data`` (one class per slide or tile group) and phantom slides of training seeds
   (``PHANTOM_CLASSES``, H&E and IHC, all-in-focus and slightly defocused renders). Patches are
   64² px after a random rescale (×0.5–2, the real images are 0.5 µm/px, the phantom 0.25),
   flips / 90° turns and a mild colour jitter.
2. **α, β** (Eq. 5.11): pairs (y₁, y₂) of 128² px phantom patches of one place at two focus
   levels of the crop cache grid (``dataset.build_cache``: −3 … +3 µm every 0.25 µm) of the
   fit seeds ``FIT_SEEDS``. q = mean |z − z*| over the patch (µm, the defocus distance) and the
   target is |q₁ − q₂| / ``Q_SCALE_UM``. The fit pairs have both planes on the same side of the
   patch's mean z*: a pair at z* − 1 and z* + 1 µm has |q₁ − q₂| ≈ 0 although the two images
   show different layers of the section, so such pairs would teach D to ignore real
   differences. The scale (16 µm, targets ≲ 0.3) keeps the targets in D's natural range: with
   targets up to ~1 the L1 fit puts all the weight on the two or three most responsive channels
   and ranks held-out pairs worse (SRCC 0.82 against 0.93 on same-side pairs). The extractor is
   frozen, so each pair reduces to its per-channel luminance and structure terms
   (``pair_terms``) and the fit is a full-batch Adam on the softmax logits of α, β.
3. **Report** (``report``): on pairs of the held-out training seeds ``HELDOUT_SEEDS`` (never an
   evaluation seed), the Spearman rank correlation (SRCC) with |q₁ − q₂| of D, of D with
   uniform α, β (before the fit), of 1 − SSIM and of the mean absolute difference (L1), over
   all pairs and over the same-side pairs.

Everything is resumable from ``checkpoints`` (phantom renders, classifier steps, pair terms).
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..phantom.seeds import DISTS_CLASSES, DISTS_FIT, DISTS_HELDOUT, check_training_seed
from .dataset import build_cache, load_cache, tissue_positions, training_slide
from .image_metrics import ssim
from .wsi_dists import SlideFeatures, WSIDists, save_dists

__all__ = ["DistsConfig", "train_dists", "report", "PHANTOM_CLASSES", "REAL_CLASSES", "FIT_SEEDS",
           "HELDOUT_SEEDS", "Q_SCALE_UM", "sample_pairs", "pair_terms", "spearman"]

#: Phantom classes: (seed, stain) of training-range slides (seeds: `engine.phantom.seeds`).
PHANTOM_CLASSES = tuple(zip(DISTS_CLASSES.first(5), ("he", "he", "he", "ihc", "ihc")))
#: Real classes: name -> files under the data folder (../shared/data).
REAL_CLASSES = (("cmu-1", ("slides/cmu-1-small-region.svs",)),
                ("tcga-cr-7395", ("slides/tcga-cr-7395-01a-01-ts1.svs",)),
                ("kidney-ihc", ("slides/kidney-48-5.tif",)),
                ("colon-ihc", ("tiles/ihc.png",)),
                ("tcga-lung", ("tiles/tcga-lung-rgb.png",)),
                ("tcga-tissue", ("tiles/tissue-level0-4302-10273-4814-10785.png",
                                 "tiles/tissue-level0-7352-11762-7864-12274.png")))
FIT_SEEDS = DISTS_FIT.first(12)          # 9 H&E, 3 IHC
HELDOUT_SEEDS = DISTS_HELDOUT.first(4)
Q_SCALE_UM = 16.0
PATCH = 64
PAIR = 128
_PHANTOM_Z_UM = (-0.75, 0.0, 0.75)


@dataclass
class DistsConfig:
    out: Path
    checkpoints: Path = Path("checkpoints/wsi-dists")
    data: Path = Path("../shared/data")
    steps: int = 2400            # classifier steps
    batch: int = 32
    lr: float = 2e-3
    fit_pairs: int = 2400
    heldout_pairs: int = 800
    fit_iters: int = 1500
    fit_lr: float = 0.05
    crops_per_slide: int = 3
    resume: bool = False
    seed: int = 0
    threads: int = 1
    widths: tuple = (16, 32, 64, 96)
    phantom_classes: tuple = PHANTOM_CLASSES
    fit_seeds: tuple = FIT_SEEDS
    heldout_seeds: tuple = HELDOUT_SEEDS


# ---------------------------------------------------------------------- class images
def _phantom_slide(seed: int, stain: str):
    import dataclasses

    from ..phantom.slide import PhantomSlide
    base = training_slide(seed)
    return PhantomSlide(seed=seed, size=base.dimensions, planes=1, stain=stain, scanner_error=False, noise=False,
                        params=dataclasses.replace(base.params))


def phantom_class_images(folder: Path, seed: int, stain: str, regions: int = 4, log=print) -> list[np.ndarray]:
    """All-in-focus and ±0.75 µm renders of ``regions`` 256² tissue regions (cached as npz)."""
    check_training_seed(seed, "WSI-DISTS class images")   # engine.phantom.seeds
    path = Path(folder) / f"{seed}-{stain}.npz"
    if not path.exists():
        slide = _phantom_slide(seed, stain)
        imgs = []
        for x, y in tissue_positions(slide, regions, np.random.default_rng([seed, 9])):
            imgs.append(slide.all_in_focus(0, x, y, 256, 256))
            imgs += [slide.truth(0, x, y, 256, 256, z) for z in _PHANTOM_Z_UM]
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, images=np.stack(imgs))
        tmp.rename(path)
        log(f"rendered {len(imgs)} images of phantom class {seed} ({stain}) -> {path}")
    return list(np.load(path)["images"])


def real_class_images(data: Path) -> list[tuple[str, list[np.ndarray]]]:
    """(name, level-0 RGB images) of each real class."""
    from ..slides.open import open_slide

    out = []
    for name, files in REAL_CLASSES:
        imgs = []
        for f in files:
            s = open_slide(Path(data) / f)
            w, h = s.dimensions
            imgs.append(s.read_region(0, 0, 0, w, h))
        out.append((name, imgs))
    return out


class PatchSampler:
    """Random augmented class patches (B, 3, PATCH, PATCH) in [0, 1] and their labels."""

    def __init__(self, classes: list[list[np.ndarray]], seed: int):
        self.classes = classes
        self.rng = np.random.default_rng(seed)

    def _patch(self, img: np.ndarray) -> torch.Tensor:
        rng = self.rng
        scale = float(np.exp(rng.uniform(np.log(0.5), np.log(2.0))))
        side = int(min(round(PATCH / scale), img.shape[0], img.shape[1]))
        for _ in range(12):        # prefer tissue over glass
            y, x = int(rng.integers(0, img.shape[0] - side + 1)), int(rng.integers(0, img.shape[1] - side + 1))
            crop = img[y:y + side, x:x + side]
            if (crop.mean(2) < 215).mean() > 0.5:
                break
        t = torch.from_numpy(np.ascontiguousarray(crop)).float().permute(2, 0, 1)[None] / 255.0
        t = F.interpolate(t, size=(PATCH, PATCH), mode="bilinear", align_corners=False, antialias=side > PATCH)[0]
        t = torch.rot90(t, int(rng.integers(0, 4)), (1, 2))
        if rng.random() < 0.5:
            t = t.flip(2)
        gain = torch.from_numpy(rng.uniform(0.93, 1.07, 3).astype(np.float32))[:, None, None]
        t = (t * gain + float(rng.uniform(-0.04, 0.04))).clamp(0, 1)
        return t

    def batch(self, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        labels = self.rng.integers(0, len(self.classes), size)
        x = torch.stack([self._patch(self.classes[c][int(self.rng.integers(0, len(self.classes[c])))])
                         for c in labels])
        return x, torch.from_numpy(labels).long()


def _classifier_step_lr(cfg: DistsConfig, step: int) -> float:
    warm = min(1.0, (step + 1) / 50)
    return float(cfg.lr * warm * (0.05 + 0.95 * 0.5 * (1 + np.cos(np.pi * min(step, cfg.steps) / cfg.steps))))


def train_classifier(cfg: DistsConfig, classes: list[list[np.ndarray]], log=print) -> tuple[SlideFeatures, dict]:
    """Train (or resume) the slide classifier; checkpoint every 100 steps."""
    ck = Path(cfg.checkpoints) / "classifier.pt"
    net = SlideFeatures(tuple(cfg.widths), classes=len(classes))
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=1e-5)
    sampler = PatchSampler(classes, cfg.seed)
    step, history = 0, []
    if cfg.resume and ck.exists():
        blob = torch.load(ck, map_location="cpu", weights_only=True)
        net.load_state_dict(blob["state"])
        opt.load_state_dict(blob["optim"])
        step, history = int(blob["step"]), json.loads(blob["history"])
        sampler.rng.bit_generator.state = json.loads(blob["rng"])
        log(f"classifier resumed from {ck} at step {step}")
    net.train()
    acc, t0 = [], time.time()
    while step < cfg.steps:
        for g in opt.param_groups:
            g["lr"] = _classifier_step_lr(cfg, step)
        x, y = sampler.batch(cfg.batch)
        logits = net.classify(x)
        loss = F.cross_entropy(logits, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        acc.append((loss.item(), float((logits.argmax(1) == y).float().mean())))
        if step % 50 == 0 or step == cfg.steps:
            m = np.mean(acc, 0)
            history.append([step, float(m[0]), float(m[1])])
            log(f"classifier step {step} loss {m[0]:.3f} acc {m[1]:.3f} {(time.time() - t0) / len(acc):.2f}s/step")
            acc, t0 = [], time.time()
        if step % 100 == 0 or step == cfg.steps:
            ck.parent.mkdir(parents=True, exist_ok=True)
            torch.save({"state": net.state_dict(), "optim": opt.state_dict(), "step": step,
                        "history": json.dumps(history), "rng": json.dumps(sampler.rng.bit_generator.state)},
                       ck.with_suffix(".tmp"))
            ck.with_suffix(".tmp").replace(ck)
    net.eval()
    check = PatchSampler(classes, cfg.seed + 99_991)        # fresh random patches, other augmentations
    with torch.no_grad():
        right = 0
        for _ in range(8):
            x, y = check.batch(64)
            right += int((net.classify(x).argmax(1) == y).sum())
    return net, {"steps": step, "classes": len(classes), "accuracy_fresh_patches": round(right / 512, 4),
                 "history": history}


# ---------------------------------------------------------------------- pairs (Eq. 5.11)
def sample_pairs(cache: dict, count: int, rng: np.random.Generator, size: int = PAIR, same_side: bool = False):
    """``count`` pairs of one place at two grid focus levels: y1, y2 (count, 3, s, s) in [0, 1],
    q1, q2 (count,) = mean |z − z*| over the patch (µm) and whether both planes are on the same
    side of the patch's mean z* (only such pairs when ``same_side``)."""
    grid, z, zstar = cache["grid"], np.asarray(cache["z"], np.float32), cache["zstar"]
    K, Z, H, W = grid.shape[:4]
    y1, y2, q1, q2, side = [], [], [], [], []
    while len(y1) < count:
        k = int(rng.integers(0, K))
        i, j = rng.choice(Z, 2, replace=False)
        r, c = int(rng.integers(0, H - size + 1)), int(rng.integers(0, W - size + 1))
        zs = zstar[k, r:r + size, c:c + size]
        same = bool((z[i] - zs.mean()) * (z[j] - zs.mean()) >= 0)
        if same_side and not same:
            continue
        side.append(same)
        y1.append(grid[k, i, r:r + size, c:c + size])
        y2.append(grid[k, j, r:r + size, c:c + size])
        q1.append(float(np.abs(z[i] - zs).mean()))
        q2.append(float(np.abs(z[j] - zs).mean()))
    to = lambda a: torch.from_numpy(np.stack(a)).float().permute(0, 3, 1, 2) / 255.0  # noqa: E731
    return to(y1), to(y2), np.asarray(q1, np.float32), np.asarray(q2, np.float32), np.asarray(side)


@torch.no_grad()
def pair_terms(model: WSIDists, y1: torch.Tensor, y2: torch.Tensor, chunk: int = 16) -> torch.Tensor:
    """Per pair, the luminance and structure terms of Eq. 5.9 for every layer channel:
    (P, 2, Σ C_l), so that D = 1 − Σ softmax(logits) · terms."""
    from .wsi_dists import _C1, _C2
    out = []
    for s in range(0, len(y1), chunk):
        a, b = y1[s:s + chunk], y2[s:s + chunk]
        n = len(a)
        s1s, s2s = [], []
        for f in model.layers(torch.cat([a, b])):
            fx, fy = f[:n].flatten(2), f[n:].flatten(2)
            mx, my = fx.mean(2), fy.mean(2)
            vx, vy = fx.var(2, unbiased=False), fy.var(2, unbiased=False)
            cxy = ((fx - mx[..., None]) * (fy - my[..., None])).mean(2)
            s1s.append((2 * mx * my + _C1) / (mx * mx + my * my + _C1))
            s2s.append((2 * cxy + _C2) / (vx + vy + _C2))
        out.append(torch.stack([torch.cat(s1s, 1), torch.cat(s2s, 1)], 1))
    return torch.cat(out)


def _digest(model: WSIDists) -> str:
    import hashlib
    h = hashlib.sha1()
    for v in model.features.state_dict().values():
        h.update(v.detach().numpy().tobytes())
    return h.hexdigest()[:16]


def _pairs(cfg: DistsConfig, name: str, seeds, count: int, model: WSIDists, log=print, same_side=False) -> dict:
    """Pair terms, q's and the SSIM / L1 baselines of ``count`` pairs of ``seeds`` (cached)."""
    path = Path(cfg.checkpoints) / f"pairs-{name}.pt"
    key = json.dumps({"seeds": list(seeds), "count": count, "features": _digest(model), "same_side": same_side})
    if path.exists():
        blob = torch.load(path, map_location="cpu", weights_only=True)
        if blob["key"] == key:
            return blob
    paths = build_cache(Path(cfg.checkpoints) / f"stacks-{name}", seeds, crops_per_slide=cfg.crops_per_slide, log=log)
    cache = load_cache(paths)
    rng = np.random.default_rng([cfg.seed, len(name)])
    y1, y2, q1, q2, side = sample_pairs(cache, count, rng, same_side=same_side)
    terms = pair_terms(model, y1, y2)
    blob = {"key": key, "terms": terms, "same_side": torch.from_numpy(side), "q1": torch.from_numpy(q1),
            "q2": torch.from_numpy(q2), "one_minus_ssim": 1 - ssim(y1, y2), "l1": (y1 - y2).abs().mean((1, 2, 3))}
    torch.save(blob, path)
    log(f"{count} {name} pairs of seeds {seeds[0]}..{seeds[-1]}: terms {tuple(terms.shape)} -> {path}")
    return blob


def fit_weights(model: WSIDists, blob: dict, iters: int, lr: float, log=print) -> list:
    """Eq. 5.11: minimise mean |D(y1, y2) − |q1 − q2| / Q| over the logits (full batch)."""
    target = (blob["q1"] - blob["q2"]).abs() / Q_SCALE_UM
    terms = blob["terms"]
    opt = torch.optim.Adam([model.logits], lr=lr)
    curve = []
    for it in range(iters):
        w = torch.softmax(model.logits.flatten(), 0).view(2, -1)
        d = 1 - (terms * w[None]).sum((1, 2))
        loss = (d - target).abs().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if it % 250 == 0 or it == iters - 1:
            curve.append([it, round(loss.item(), 5)])
            log(f"alpha/beta fit iter {it} L1 {loss.item():.4f}")
    return curve


def spearman(a, b) -> float:
    """Spearman rank correlation (average ranks for ties)."""
    from scipy.stats import spearmanr
    return float(spearmanr(np.asarray(a), np.asarray(b)).statistic)


def _distances(model: WSIDists, blob: dict) -> torch.Tensor:
    with torch.no_grad():
        w = torch.softmax(model.logits.flatten(), 0).view(2, -1)
        return 1 - (blob["terms"] * w[None]).sum((1, 2))


def report(model: WSIDists, blob: dict) -> dict:
    """SRCC with |q1 − q2| of D, of uniform-weight D, of 1 − SSIM and of L1 on the pairs of
    ``blob`` (all of them, and those with both planes on one side of focus)."""
    dq = (blob["q1"] - blob["q2"]).abs().numpy()
    scores = {"wsi_dists": _distances(model, blob).numpy(), "dists_uniform_weights": 1 - blob["terms"].mean((1, 2)).numpy(),
              "one_minus_ssim": blob["one_minus_ssim"].numpy(), "l1": blob["l1"].numpy()}
    same = blob["same_side"].numpy().astype(bool)
    out = {"pairs": int(len(dq)), "same_side_pairs": int(same.sum())}
    for name, mask in (("srcc", np.ones_like(same)), ("srcc_same_side", same)):
        if mask.sum() > 2:
            out[name] = {k: round(spearman(v[mask], dq[mask]), 4) for k, v in scores.items()}
    out["eq_5_11_l1"] = round(float(np.abs(scores["wsi_dists"] - dq / Q_SCALE_UM).mean()), 4)
    return out


def train_dists(cfg: DistsConfig, log=print) -> dict:
    for seed in [s for s, _ in cfg.phantom_classes] + list(cfg.fit_seeds):   # before any work
        check_training_seed(seed, "WSI-DISTS training", allow_validation=False)
    for seed in cfg.heldout_seeds:
        check_training_seed(seed, "WSI-DISTS held-out pairs")
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    ck = Path(cfg.checkpoints)
    classes = [imgs for _, imgs in real_class_images(cfg.data)]
    names = [n for n, _ in REAL_CLASSES]
    for seed, stain in cfg.phantom_classes:
        classes.append(phantom_class_images(ck / "classes", seed, stain, log=log))
        names.append(f"phantom-{seed}-{stain}")
    net, cls_info = train_classifier(cfg, classes, log=log)
    model = WSIDists(net)
    model.requires_grad_(False)
    model.logits.requires_grad_(True)
    fit = _pairs(cfg, "fit", cfg.fit_seeds, cfg.fit_pairs, model, log=log, same_side=True)
    held = _pairs(cfg, "heldout", cfg.heldout_seeds, cfg.heldout_pairs, model, log=log)
    curve = fit_weights(model, fit, cfg.fit_iters, cfg.fit_lr, log=log)
    result = {"classifier": {k: v for k, v in cls_info.items() if k != "history"}, "class_names": names,
              "fit": {"seeds": [cfg.fit_seeds[0], cfg.fit_seeds[-1]], **report(model, fit), "curve": curve},
              "heldout": {"seeds": [cfg.heldout_seeds[0], cfg.heldout_seeds[-1]], **report(model, held)},
              "q_scale_um": Q_SCALE_UM, "parameters": sum(p.numel() for p in model.features.parameters())}
    save_dists(model, cfg.out, {"report": json.dumps(result)})
    log(f"WSI-DISTS written to {cfg.out}")
    return result
