"""`finefocus fqa train`: train FocusLiteNN on phantom z-stacks (and optionally your own)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..phantom.seeds import FQA_VALIDATION, SeedPolicyError, training_seeds
from .dataset import IMAGE_PX, TRAINING_SEED_BASE, StackSet, cached_phantom_stacks, slide_stacks, with_sensor_noise
from .focuslitenn import load_model, weights_path
from .train import CheckpointMismatch, TrainConfig, train
from ..cli import UserError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train FocusLiteNN (resumable)",
                       description="Train an N-kernel FocusLiteNN with the negative-PLCC loss on phantom "
                                   f"focal stacks (seeds {TRAINING_SEED_BASE} and up, never used for evaluation), "
                                   "optionally fine-tuning on your own multi-plane slides.")
    p.add_argument("--kernels", type=int, default=1, help="number of 7×7 kernels N (1, 2 or 10 ship)")
    p.add_argument("--out", type=Path, default=None, help="weights file (default: the shipped resource path)")
    p.add_argument("--checkpoint-dir", type=Path, default=None,
                   help="checkpoints of this run (default: checkpoints/fqa-<N>k)")
    p.add_argument("--data-dir", type=Path, default=Path("checkpoints") / "fqa-data",
                   help="cache of rendered phantom stacks, one file per seed, shared by runs "
                        "(default: checkpoints/fqa-data)")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    p.add_argument("--stacks", nargs="*", default=[], metavar="SLIDE",
                   help="multi-plane slides (any format FineFocus opens) to add to training")
    p.add_argument("--stacks-per-slide", type=int, default=64)
    p.add_argument("--init", default=None, metavar="WEIGHTS",
                   help="start from these weights (a file or focuslitenn-N) instead of random ones; "
                        "with --stacks and no --init, the shipped N-kernel weights (fine-tuning)")
    p.add_argument("--seeds", type=int, default=16,
                   help="number of phantom training seeds of patch stacks (0: train on image stacks alone)")
    p.add_argument("--stacks-per-seed", type=int, default=48)
    p.add_argument("--plane-step", type=float, default=0.5,
                   help="µm between the planes of a phantom stack (planes span ±3 µm around z*)")
    p.add_argument("--val-seeds", type=int, default=4, help="number of phantom validation seeds")
    p.add_argument("--val-stacks-per-seed", type=int, default=32)
    p.add_argument("--image-seeds", type=int, default=0,
                   help="phantom training seeds of whole-image stacks for the image-level loss "
                        "(the thesis' test protocol: an image scores the mean of its tissue patches); 0: none")
    p.add_argument("--image-stacks-per-seed", type=int, default=16)
    p.add_argument("--image-val-seeds", type=int, default=3, help="validation seeds of image stacks")
    p.add_argument("--image-px", type=int, default=IMAGE_PX, help="side of the images (px; FocusPath's 1024)")
    p.add_argument("--image-batch", type=int, default=12, help="whole images per step")
    p.add_argument("--image-weight", type=float, default=1.0, help="weight of the image-level loss")
    p.add_argument("--image-dir", type=Path, default=Path("checkpoints") / "fqa-images",
                   help="cache of rendered image stacks, one folder per seed (default: checkpoints/fqa-images)")
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--batch", type=int, default=48)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--validate-every", type=int, default=100, help="steps between validations (and checkpoints)")
    p.add_argument("--seed", type=int, default=0, help="seed of the optimiser, sampling and augmentation")
    p.set_defaults(handler=_train)


#: Validation: phantom seeds of their own (training side, never evaluation seeds; engine.phantom.seeds).
VAL_SEED_BASE = FQA_VALIDATION.start


def _stacks(args, ckdir: Path) -> tuple[StackSet, StackSet]:
    """Training and validation stacks. Phantom stacks are rendered once per seed into the shared
    ``--data-dir`` (a seed already rendered by an earlier version of the phantom is reused);
    stacks from the user's slides are cached in the run's checkpoint folder."""
    log = lambda m: print(m, flush=True)  # noqa: E731
    seeds = training_seeds(args.seeds)
    if seeds:
        print(f"phantom training seeds {seeds[0]}..{seeds[-1]} x {args.stacks_per_seed} stacks "
              f"(cache {args.data_dir})", flush=True)
    tr = (cached_phantom_stacks(args.data_dir, seeds, args.stacks_per_seed, step_um=args.plane_step, log=log)
          if seeds else None)
    va = cached_phantom_stacks(args.data_dir, list(FQA_VALIDATION.first(args.val_seeds)),
                               args.val_stacks_per_seed, step_um=args.plane_step, log=log)
    # Validate on scanned images (sensor noise), as the models are used and evaluated.
    va = with_sensor_noise(va, VAL_SEED_BASE)
    if args.stacks:
        from ..slides import open_slide

        cache = ckdir / "stacks-user.npz"
        if cache.exists():
            user = StackSet.load(cache)
        else:
            slides = []
            for path in args.stacks:
                try:
                    slides.append(open_slide(path))
                except Exception as exc:  # noqa: BLE001 - any reason a slide cannot be opened
                    raise UserError(f"{path}: cannot open as a slide ({exc})") from None
            try:
                user = slide_stacks(slides, args.stacks_per_slide, rng_seed=3)
            except ValueError as exc:
                raise UserError(str(exc)) from None
            ckdir.mkdir(parents=True, exist_ok=True)
            user.save(cache)
        print(f"{len(user)} stacks from {len(args.stacks)} slide(s)", flush=True)
        tr = user if tr is None else StackSet.concat([tr, user])
    return tr, va


def _check_counts(args) -> None:
    """One-line errors for counts that cannot work, before anything is rendered."""
    from .focuslitenn import PATCH

    for flag in ("seeds", "image_seeds", "val_seeds", "stacks_per_seed", "val_stacks_per_seed"):
        if getattr(args, flag) < 0:
            raise UserError(f"--{flag.replace('_', '-')} must be 0 or more (got {getattr(args, flag)})")
    try:   # the seed counts fit the policy's training and validation ranges (engine.phantom.seeds)
        training_seeds(max(args.seeds, args.image_seeds))
        FQA_VALIDATION.first(max(args.val_seeds, args.image_val_seeds if args.image_seeds > 0 else 0))
    except SeedPolicyError as exc:
        raise UserError(str(exc)) from None
    if args.seeds == 0 and args.image_seeds == 0 and not args.stacks:
        raise UserError("nothing to train on: --seeds and --image-seeds are 0 and no --stacks given")
    if args.seeds > 0 and args.stacks_per_seed < 1:
        raise UserError("--stacks-per-seed must be at least 1 with --seeds")
    if args.val_seeds < 1 or args.val_stacks_per_seed < 1:
        raise UserError("--val-seeds and --val-stacks-per-seed must be at least 1 (validation and calibration)")
    if args.image_seeds > 0:
        if args.image_val_seeds < 1 or args.image_stacks_per_seed < 1:
            raise UserError("--image-val-seeds and --image-stacks-per-seed must be at least 1 with --image-seeds")
        if args.image_px < PATCH:
            raise UserError(f"--image-px {args.image_px} is smaller than one {PATCH}-px patch")
        if args.image_batch < 2:
            raise UserError(f"--image-batch {args.image_batch}: a correlation needs at least 2 images")
        if not args.image_weight > 0:
            raise UserError(f"--image-weight must be positive (got {args.image_weight})")


def _image_term(args):
    """The image-level loss's stacks (`--image-seeds`), or None. Same seed ranges as the patch
    stacks (training and validation seeds, never evaluation seeds); other regions of them."""
    if args.image_seeds <= 0:
        return None
    from .image_stacks import cached_image_stacks
    from .train import ImageTerm

    log = lambda m: print(m, flush=True)  # noqa: E731
    tr = cached_image_stacks(args.image_dir, training_seeds(args.image_seeds),
                             args.image_stacks_per_seed, image=args.image_px, log=log)
    va = cached_image_stacks(args.image_dir, list(FQA_VALIDATION.first(args.image_val_seeds)),
                             args.image_stacks_per_seed, image=args.image_px, log=log)
    print(f"{len(tr)} training and {len(va)} validation image stacks (cache {args.image_dir})", flush=True)
    return ImageTerm(tr, va)


def _train(args) -> int:
    import torch

    # One thread: a training step is small, and on a shared machine extra OpenMP threads only
    # spin (the batch preparation is the larger part and runs on this thread anyway).
    torch.set_num_threads(1)
    out = args.out or weights_path(args.kernels)
    ckdir = args.checkpoint_dir or Path("checkpoints") / f"fqa-{args.kernels}k"
    init = None
    init_name = args.init or (f"focuslitenn-{args.kernels}" if args.stacks and weights_path(args.kernels).exists() else None)
    if init_name:
        try:
            init = load_model(init_name)
        except FileNotFoundError as exc:
            raise UserError(str(exc)) from None
        if init.kernels != args.kernels:
            raise UserError(f"{init_name}: has {init.kernels} kernels, --kernels is {args.kernels}")
        print(f"starting from {init_name}", flush=True)
    _check_counts(args)
    stacks, val = _stacks(args, ckdir)
    images = _image_term(args)
    cfg = TrainConfig(kernels=args.kernels, steps=args.steps, batch=args.batch, lr=args.lr, seed=args.seed,
                      validate_every=args.validate_every, checkpoint_every=args.validate_every,
                      stack_paths=[str(s) for s in args.stacks], image_batch=args.image_batch,
                      image_weight=args.image_weight)
    try:
        summary = train(cfg, Path(out), ckdir, stacks, val, resume=args.resume, log=lambda m: print(m, flush=True),
                        init=init, images=images)
    except CheckpointMismatch as exc:
        raise UserError(str(exc)) from None
    print(json.dumps(summary, indent=2))
    return 0
