"""Evaluation of refocusing on phantom stacks of one seed, against the phantom's ground truth.

The slide of seed S (stain and thickness drawn from the seed, as for training) is captured
every 0.5 µm over the input planes' range (e.g. −2 … +2 µm for FS = 5) with sensor noise and no
scanner focus error; ``stacks``
tissue regions of ``size``² px (level 0) are used. For FS = n the inputs are n captured planes
1 µm apart centred on z = 0, given with their nominal z as focus maps. Targets (truth rendered
noise-free by the phantom):

* ``on-plane``: each input plane's z;
* ``between``: z_i + 0.25, + 0.5 and + 0.75 µm between neighbouring inputs (FS ≥ 2);
* ``beyond``: 0.5 and 1 µm below the lowest and above the highest input;
* ``map``: two smooth random per-pixel maps spanning the inputs ± 0.5 µm;
* ``all-in-focus``: the best-focus map z* as target, the all-in-focus image as truth.

Methods: each given model (``finefocus`` and ablations), ``nearest`` and ``linear`` (see
``baselines``; they get the same per-pixel target), ``optics`` (what the phantom's own optics
predict from the nearest input plane, best focus estimated from the inputs; see
``optics_baseline``) and ``focus-stack`` (all-in-focus only).
Rows give the mean SSIM, MS-SSIM, PSNR (dB) and WSI-DISTS distance (``wsi_dists``, lower is
better; the shipped ``resources/weights/wsi-dists.pt`` unless another model is given, ``None``
when there is none) per (fs, target, method); target ``all`` averages every image of that FS.
"""
from __future__ import annotations

import numpy as np
import torch

from ..phantom.seeds import check_evaluation_seed
from .baselines import blend, focus_stack, linear_weights, nearest_weights
from .dataset import smooth_map, tissue_positions, training_slide
from .image_metrics import as_tensor, ms_ssim, psnr, ssim
from .optics_baseline import OpticsRefocus

__all__ = ["evaluate", "summarise", "CAPTURE_SPACING_UM", "input_planes_um"]

CAPTURE_SPACING_UM = 0.5
TARGETS = ("on-plane", "between", "beyond", "map", "all-in-focus")


def input_planes_um(n: int) -> list[float]:
    """The z (µm) of the n input planes: 1 µm apart, centred on 0."""
    return [round((k - (n - 1) / 2) * 1.0, 4) for k in range(n)]


def _targets(zin: list[float], size: int, rng: np.random.Generator) -> list[tuple[str, object]]:
    out: list[tuple[str, object]] = [("on-plane", z) for z in zin]
    for a, b in zip(zin[:-1], zin[1:]):
        out += [("between", a + f * (b - a)) for f in (0.25, 0.5, 0.75)]
    lo, hi = zin[0], zin[-1]
    out += [("beyond", lo - 0.5), ("beyond", lo - 1.0), ("beyond", hi + 0.5), ("beyond", hi + 1.0)]
    out += [("map", smooth_map(size, size, rng, lo - 0.5, hi + 0.5)) for _ in range(2)]
    return out


def _plane_index(planes_um, z: float) -> int:
    i = int(np.argmin([abs(p - z) for p in planes_um]))
    assert abs(planes_um[i] - z) < 1e-6, (planes_um, z)
    return i


def _dists(dists):
    """The WSI-DISTS model to score with: ``dists`` itself, the shipped one (None) or none (False)."""
    if dists is False:
        return None
    if dists is not None:
        return dists
    from .wsi_dists import load_dists, shipped_dists
    return load_dists(shipped_dists())[0] if shipped_dists() is not None else None


@torch.no_grad()
def evaluate(seed: int, models: dict, fs=(1, 2, 3, 5), stacks: int = 4, size: int = 256, log=None,
             dists=None) -> list[dict]:
    """``dists``: a ``WSIDists`` model, None (the shipped weights when present) or False (no column).
    ``seed`` must be an evaluation seed (`engine.phantom.seeds.check_evaluation_seed`)."""
    check_evaluation_seed(seed, "refocus eval")
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    dists = _dists(dists)
    extent = max(abs(z) for n in fs for z in input_planes_um(n))
    slide = training_slide(seed, planes=int(round(2 * extent / CAPTURE_SPACING_UM)) + 1,
                           spacing_um=CAPTURE_SPACING_UM, noise=True)
    rng = np.random.default_rng([seed, 11])
    positions = tissue_positions(slide, stacks, rng, size=size)
    scores: dict[tuple, list] = {}

    def add(n, kind, outs: dict, truth):
        """Score each method's output of one target (WSI-DISTS in one batch: truth features once)."""
        d = dists(torch.cat(list(outs.values())), truth).tolist() if dists is not None else [float("nan")] * len(outs)
        for (method, out), di in zip(outs.items(), d):
            s, m, p = float(ssim(out, truth)[0]), float(ms_ssim(out, truth)[0]), float(psnr(out, truth)[0])
            for k in (kind, "all"):
                scores.setdefault((n, k, method), []).append((s, m, p, di))

    for ri, (x, y) in enumerate(positions):
        captured = {}
        zstar = torch.from_numpy(slide.best_focus_map(0, x, y, size, size))[None]
        aif = as_tensor(slide.all_in_focus(0, x, y, size, size))
        for n in fs:
            zin = input_planes_um(n)
            for z in zin:
                if z not in captured:
                    captured[z] = as_tensor(slide.read_region(0, x, y, size, size, _plane_index(slide.planes_um, z)))[0]
            stack = torch.stack([captured[z] for z in zin])[None]                 # (1, n, 3, H, W)
            focus = torch.tensor(zin, dtype=torch.float32)[None, :, None, None].expand(1, n, size, size)
            fields = {name: m.encode(stack, focus) for name, m in models.items()}
            optics = OpticsRefocus(stack[0].permute(0, 2, 3, 1).numpy(), zin, slide.mpp[0], optics=slide.optics)
            targets = _targets(zin, size, np.random.default_rng([seed, ri, n]))
            targets.append(("all-in-focus", zstar[0].numpy()))
            for kind, tz in targets:
                if n == 1 and kind == "between":
                    continue
                tmap = torch.as_tensor(np.broadcast_to(np.asarray(tz, np.float32), (size, size)).copy())[None]
                if kind == "all-in-focus":
                    truth = aif
                else:
                    truth = as_tensor(slide.truth(0, x, y, size, size, tz if np.ndim(tz) else float(tz)))
                outs = {name: m.decode(fields[name], tmap) for name, m in models.items()}
                outs["nearest"] = blend(stack, nearest_weights(focus, tmap))
                outs["linear"] = blend(stack, linear_weights(focus, tmap))
                outs["optics"] = torch.from_numpy(optics.refocus(tmap[0].numpy())).permute(2, 0, 1)[None]
                if kind == "all-in-focus":
                    outs["focus-stack"] = focus_stack(stack)
                add(n, kind, outs, truth)
        if log:
            log(f"region {ri + 1}/{len(positions)} at ({x}, {y}) done")
    rows = []
    for (n, kind, method), vals in sorted(scores.items(), key=lambda kv: (kv[0][0], _order(kv[0][1]), kv[0][2])):
        v = np.asarray(vals)
        rows.append({"fs": n, "target": kind, "method": method, "ssim": round(float(v[:, 0].mean()), 4),
                     "ms_ssim": round(float(v[:, 1].mean()), 4), "psnr": round(float(v[:, 2].mean()), 2),
                     "wsi_dists": None if dists is None else round(float(v[:, 3].mean()), 5),
                     "images": len(vals)})
    return rows


def _order(kind: str) -> int:
    return (*TARGETS, "all").index(kind)


def summarise(rows: list[dict]) -> list[dict]:
    """The rows in (fs, target, method) order (they already are: kept for printing)."""
    return list(rows)
