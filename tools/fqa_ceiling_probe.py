"""How high can any focus-quality score rank |z − z*| on the phantom? Two reference figures for
the FocusLiteNN target (issue 5), measured on the validation seeds (training range) and on the
evaluation stacks of ``--seed``:

1. **Stack-aware sharpness.** The noise-free energy of Laplacian, the measure that *defines* z*
   (`PhantomSlide.best_focus_of_region`), read with knowledge of the whole stack: each patch's
   energy divided by its stack's maximum. Within a stack this orders the planes by exactly the
   sharpness z* is the peak of; its SRCC with |z − z*| is below 1 because a section 3–6 µm thick
   holds detail at several depths (a plane 2 µm above z* can be sharper than one 1 µm below).
   No single-image score has that knowledge, so this is an optimistic reference.
2. **A deep CNN.** A 5-layer convolutional network (~75 k parameters, mean and s.d. pooling)
   trained exactly as `finefocus fqa train` trains FocusLiteNN: the same stacks, augmentation,
   negative-PLCC loss and validation. What a model 500× larger than FocusLiteNN-1 reaches.

    .venv/bin/python tools/fqa_ceiling_probe.py [--seed 3 7 13] [--steps 3000] [--resume]
                                                [--fusion-seeds 101 102 11]

Prints JSON. Checkpoints in ``checkpoints/fqa-deep/``: ``--resume`` continues an interrupted run,
or, once it has finished, only evaluates its best weights again. Not a product model.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from engine.evaluation import plcc, srcc  # noqa: E402
from engine.fqa.augment import augment_uint8  # noqa: E402
from engine.fqa.dataset import StackSet, cached_phantom_stacks, with_sensor_noise  # noqa: E402
from engine.fqa.evaluate import evaluation_stacks  # noqa: E402
from engine.fqa.metrics import METRICS, to_gray  # noqa: E402
from engine.fqa.train import neg_plcc  # noqa: E402
from engine.fqa.train_cli import VAL_SEED_BASE  # noqa: E402
from engine.phantom.seeds import FQA_VALIDATION, training_seeds  # noqa: E402


class DeepFocusProbe(nn.Module):
    """Conv 5×5/2 → 3×3/2 ×3 → 3×3, BatchNorm + ReLU, then mean and s.d. pooling and an MLP."""

    def __init__(self):
        super().__init__()
        chans = [(3, 16, 5, 2), (16, 32, 3, 2), (32, 48, 3, 2), (48, 64, 3, 2), (64, 64, 3, 1)]
        layers = []
        for cin, cout, k, s in chans:
            layers += [nn.Conv2d(cin, cout, k, s, k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Linear(128, 32), nn.ReLU(inplace=True), nn.Linear(32, 1))

    def forward(self, x):
        f = self.features((x - 0.5) / 0.25)
        return self.head(torch.cat([f.mean((2, 3)), f.std((2, 3))], 1)).squeeze(1)


def stack_aware_sharpness(stacks: StackSet) -> dict:
    met = METRICS["energy_of_laplacian"]
    S, Z = stacks.labels.shape
    e = met.score_patches(to_gray(stacks.images.reshape((-1,) + stacks.images.shape[2:]))).reshape(S, Z)
    score = -np.log(e / e.max(1, keepdims=True) + 1e-12)   # higher = blurrier
    within = float(np.nanmean([srcc(score[i], stacks.labels[i]) for i in range(S)]))
    return {"pooled_srcc": round(float(srcc(score.ravel(), stacks.labels.ravel())), 4),
            "mean_within_stack_srcc": round(within, 4)}


@torch.inference_mode()
def scores(model: nn.Module, stacks: StackSet) -> np.ndarray:
    model.eval()
    x = torch.from_numpy(stacks.images.reshape((-1,) + stacks.images.shape[2:])).permute(0, 3, 1, 2)
    return torch.cat([model(b.float().div(255.0)) for b in x.split(64)]).numpy()


def fusion_with(model: nn.Module, seed: int) -> dict:
    """SF-ms on the `fusion eval` patches of ``seed`` with the CNN added to the default fused
    models: every model's SRCC, the fused SRCC and the fitted weights."""
    from engine.fusion.evaluate import compare_methods, phantom_eval_stacks, score_stacks
    from engine.fusion.inputs import default_models

    @torch.inference_mode()
    def cnn(patches: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(patches)).permute(0, 3, 1, 2)
        return torch.cat([model(b.float().div(255.0)) for b in x.split(64)]).numpy()

    models = default_models()
    models.patch_scorers["deep-cnn"] = cnn
    sc, lab = score_stacks(phantom_eval_stacks(seed), models, noise_seed=seed)
    res = compare_methods(sc, lab, models.names, variants=("SF-ms",))
    return {"seed": seed, "srcc": {r["method"]: round(float(r["srcc"]), 4) for r in res["rows"]},
            "weights": {k: round(v["weight"], 3) for k, v in res["weights"]["SF-ms"].items()}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, nargs="+", default=[3], help="evaluation seed(s) (as `fqa eval`)")
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seeds", type=int, default=16, help="phantom training seeds")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--fusion-seeds", type=int, nargs="*", default=[],
                    help="also fuse the CNN with the default fused models on these seeds' `fusion eval` patches")
    ap.add_argument("--checkpoint-dir", type=Path, default=REPO / "checkpoints" / "fqa-deep")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    data = REPO / "checkpoints" / "fqa-data"
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    train = cached_phantom_stacks(data, training_seeds(a.seeds), 48, log=log)
    val_clean = cached_phantom_stacks(data, list(FQA_VALIDATION.first(4)), 32, log=log)
    val = with_sensor_noise(val_clean, VAL_SEED_BASE)
    out = {"validation": {"stack_aware_sharpness_noise_free": stack_aware_sharpness(val_clean)}}

    torch.manual_seed(0)
    model = DeepFocusProbe()
    opt = torch.optim.Adam(model.parameters(), lr=a.lr)
    g = torch.Generator().manual_seed(0)
    step, best = 0, -2.0
    ck = a.checkpoint_dir / "last.pt"
    a.checkpoint_dir.mkdir(parents=True, exist_ok=True)
    if a.resume and ck.exists():
        blob = torch.load(ck, weights_only=True)
        model.load_state_dict(blob["model"]), opt.load_state_dict(blob["opt"]), g.set_state(blob["rng"])
        step, best = int(blob["step"]), float(blob["best"])
    t0 = time.time()
    while step < a.steps:
        for group in opt.param_groups:
            group["lr"] = a.lr * (0.1 if step >= a.steps // 2 else 1.0)
        model.train()
        s = torch.randint(0, len(train), (a.batch,), generator=g).numpy()
        z = (torch.rand(a.batch, generator=g).numpy() * train.images.shape[1]).astype(int)
        imgs, lab = train.patches(s, z)
        loss = neg_plcc(model(augment_uint8(imgs, g)), torch.from_numpy(lab).float())
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        if step % 250 == 0 or step == a.steps:
            v = srcc(scores(model, val), val.labels.ravel())
            log(f"step {step} loss {loss.item():.4f} val_srcc {v:.4f} ({time.time() - t0:.0f} s)")
            if v > best:
                best = v
                torch.save(model.state_dict(), a.checkpoint_dir / "best.pt")
            torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "rng": g.get_state(),
                        "step": step, "best": best}, ck)
    model.load_state_dict(torch.load(a.checkpoint_dir / "best.pt", weights_only=True))
    pv = scores(model, val)
    out["validation"]["deep_cnn"] = {"srcc": round(float(srcc(pv, val.labels.ravel())), 4),
                                     "plcc": round(float(plcc(pv, val.labels.ravel())), 4)}
    out["evaluation_seeds"] = []
    for seed in a.seed:
        ev = evaluation_stacks(seed)
        pe = scores(model, ev)
        out["evaluation_seeds"].append({"seed": seed, "deep_cnn": {"srcc": round(float(srcc(pe, ev.labels.ravel())), 4),
                                                                   "plcc": round(float(plcc(pe, ev.labels.ravel())), 4)}})
    if a.fusion_seeds:
        out["fusion_with_cnn"] = [fusion_with(model, seed) for seed in a.fusion_seeds]
    n_par = sum(p.numel() for p in model.parameters())
    out["deep_cnn_parameters"] = int(n_par)
    out["steps"] = step
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
