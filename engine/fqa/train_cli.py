"""`finefocus fqa train`: train FocusLiteNN on phantom z-stacks (and optionally your own)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from .dataset import TRAINING_SEED_BASE, StackSet, phantom_stacks, slide_stacks
from .focuslitenn import weights_path
from .train import TrainConfig, train


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train FocusLiteNN (resumable)",
                       description="Train an N-kernel FocusLiteNN with the negative-PLCC loss on phantom "
                                   f"focal stacks (seeds {TRAINING_SEED_BASE} and up, never used for evaluation), "
                                   "optionally fine-tuning on your own multi-plane slides.")
    p.add_argument("--kernels", type=int, default=1, help="number of 7×7 kernels N (1, 2 or 10 ship)")
    p.add_argument("--out", type=Path, default=None, help="weights file (default: the shipped resource path)")
    p.add_argument("--checkpoint-dir", type=Path, default=None,
                   help="checkpoints and cached stacks (default: checkpoints/fqa-<N>k)")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    p.add_argument("--stacks", nargs="*", default=[], metavar="SLIDE",
                   help="multi-plane slides (any format FineFocus opens) to add to training")
    p.add_argument("--stacks-per-slide", type=int, default=64)
    p.add_argument("--seeds", type=int, default=12, help="number of phantom training seeds")
    p.add_argument("--stacks-per-seed", type=int, default=24)
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--batch", type=int, default=48)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--seed", type=int, default=0, help="seed of the optimiser, sampling and augmentation")
    p.set_defaults(handler=_train)


def _stacks(args, ckdir: Path) -> tuple[StackSet, StackSet]:
    """Training and validation stacks, rendered once and cached next to the checkpoints."""
    cache_train, cache_val = ckdir / "stacks-train.npz", ckdir / "stacks-val.npz"
    if cache_train.exists() and cache_val.exists():
        return StackSet.load(cache_train), StackSet.load(cache_val)
    ckdir.mkdir(parents=True, exist_ok=True)
    seeds = [TRAINING_SEED_BASE + i for i in range(args.seeds)]
    val_seeds = [TRAINING_SEED_BASE + 500_000 + i for i in range(2)]
    print(f"rendering {args.seeds * args.stacks_per_seed} training stacks from phantom seeds "
          f"{seeds[0]}..{seeds[-1]}", flush=True)
    tr = phantom_stacks(seeds, args.stacks_per_seed, rng_seed=1,
                        progress=lambda f: print(f"  {100 * f:.0f}%", flush=True) if int(f * 100) % 10 == 0 else None)
    va = phantom_stacks(val_seeds, 12, rng_seed=2)
    if args.stacks:
        from ..slides import open_slide

        slides = [open_slide(s) for s in args.stacks]
        tr = StackSet.concat([tr, slide_stacks(slides, args.stacks_per_slide, rng_seed=3)])
    tr.save(cache_train)
    va.save(cache_val)
    return tr, va


def _train(args) -> int:
    out = args.out or weights_path(args.kernels)
    ckdir = args.checkpoint_dir or Path("checkpoints") / f"fqa-{args.kernels}k"
    stacks, val = _stacks(args, ckdir)
    cfg = TrainConfig(kernels=args.kernels, steps=args.steps, batch=args.batch, lr=args.lr, seed=args.seed,
                      stack_paths=[str(s) for s in args.stacks])
    summary = train(cfg, Path(out), ckdir, stacks, val, resume=args.resume, log=lambda m: print(m, flush=True))
    print(json.dumps(summary, indent=2))
    return 0
