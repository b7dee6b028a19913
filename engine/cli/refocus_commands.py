"""`finefocus refocus ...`: train, evaluate and apply the virtual refocusing model.

    finefocus refocus data [--slides K] [--checkpoints DIR]
    finefocus refocus train --out PATH [--resume] [--stacks SLIDE ...] [--steps N] [--checkpoints DIR]
                            [--recon l1-ssim|wsi-dists] [--gan] [--init WEIGHTS]
    finefocus refocus eval --seed S [--stacks N] [--fs 1 2 3 5] [--weights PATH] [--ablation NAME=PATH ...]
                           [--dists-weights PATH] --json
    finefocus refocus eval-real SLIDE ... [--weights PATH] [--region X,Y,W,H | --max-px N] [--json]
    finefocus refocus curves NAME=CHECKPOINTS_DIR ... --out CURVE.png [--json]
    finefocus refocus dists-train --out resources/weights/wsi-dists.pt [--resume] [--checkpoints DIR] [--data DIR]
    finefocus refocus dists-eval [--weights PATH] [--checkpoints DIR] --json
    finefocus refocus apply SLIDE --region X,Y,W,H --z UM [UM ...] --out FILE.png [--planes I ...] [--weights PATH]
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from . import EXIT_USER_ERROR, UserError

__all__ = ["register"]


def register(sub) -> None:
    p = sub.add_parser("refocus", help="virtual refocusing: train, evaluate, apply")
    psub = p.add_subparsers(dest="refocus_command", metavar="ACTION")
    p.set_defaults(handler=lambda args: (p.print_help(), EXIT_USER_ERROR)[1])

    d = psub.add_parser("data", help="render the phantom training crops into the cache")
    d.add_argument("--slides", type=int, default=12, help="number of training slides (default 12)")
    d.add_argument("--seeds", type=int, nargs="+", default=None, metavar="SEED",
                   help="render exactly these training seeds (engine/phantom/seeds.py) instead of the first --slides")
    d.add_argument("--checkpoints", type=Path, default=Path("checkpoints/refocus"))
    d.add_argument("--tissue-version", type=int, choices=(1, 2), default=1, help="phantom tissue model (default 1)")
    d.add_argument("--textures", type=int, default=0, metavar="FILES",
                   help="also render FILES cache files of 16 real-texture crops each (../shared/data images "
                        "as thin layers through the optics; default 0)")
    d.set_defaults(handler=_data)

    t = psub.add_parser("train", help="train on phantom focal stacks (resumable)")
    t.add_argument("--out", type=Path, required=True, help="weights file written with the best model")
    t.add_argument("--resume", action="store_true",
                   help="continue from the last checkpoint (or the shipped weights when there is none)")
    t.add_argument("--stacks", nargs="+", default=[], metavar="SLIDE",
                   help="multi-plane slides of your own to fine-tune on (held-out planes as targets)")
    t.add_argument("--steps", type=int, default=3000, help="total optimiser steps (default 3000)")
    t.add_argument("--until", type=int, default=None, help="stop after this step (schedule still over --steps)")
    t.add_argument("--batch", type=int, default=4)
    t.add_argument("--crop", type=int, default=96, help="training crop side in px, a multiple of 8 (default 96)")
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--pool", choices=("fsca", "max", "mean"), default="fsca", help="depth pooling (ablation)")
    t.add_argument("--no-consistency", action="store_true", help="drop the 3-D consistency loss (ablation)")
    t.add_argument("--slides", type=int, default=2, help="phantom slides to render first if the cache is empty")
    t.add_argument("--val-every", type=int, default=200)
    t.add_argument("--checkpoints", type=Path, default=Path("checkpoints/refocus"))
    t.add_argument("--threads", type=int, default=1)
    t.add_argument("--recon", choices=("l1-ssim", "wsi-dists"), default="l1-ssim",
                   help="reconstruction loss: L1 + SSIM (default) or WSI-DISTS weighted as thesis Eq. 5.13")
    t.add_argument("--gan", action="store_true", help="add the LSGAN loss with a conditional discriminator (Eq. 5.12)")
    t.add_argument("--init", type=Path, default=None,
                   help="refocus weights to start from when the checkpoints folder has no last.pt")
    t.add_argument("--dists-weights", type=Path, default=None,
                   help="WSI-DISTS weights for --recon wsi-dists (default: the shipped ones)")
    t.add_argument("--channels", type=int, nargs=3, default=None, metavar=("C1", "C2", "C3"),
                   help="latent channels at 1/2, 1/4, 1/8 px of a new model (default 12 16 32)")
    t.add_argument("--no-fine-keys", action="store_true",
                   help="a new model keeps FSCA keys at 1/4 and 1/8 px only (a smaller field)")
    t.add_argument("--tissue-version", type=int, choices=(1, 2), default=1,
                   help="phantom tissue model of the slides rendered first (default 1)")
    t.add_argument("--textures", type=int, default=0, metavar="FILES",
                   help="real-texture cache files to render first (see `refocus data --textures`)")
    t.add_argument("--augment", action="store_true", help="stain, grey, 0.5 µm/px and JPEG variation")
    t.set_defaults(handler=_train)

    e = psub.add_parser("eval", help="evaluate on phantom stacks of one seed against the ground truth")
    e.add_argument("--seed", type=int, required=True, help="phantom evaluation seed (ranges: engine/phantom/seeds.py)")
    e.add_argument("--stacks", type=int, default=4, help="number of tissue regions (default 4)")
    e.add_argument("--fs", type=int, nargs="+", default=[1, 2, 3, 5], help="input plane counts")
    e.add_argument("--size", type=int, default=256, help="region side in px (default 256)")
    e.add_argument("--weights", type=Path, default=None, help="refocus weights (default: the shipped ones)")
    e.add_argument("--ablation", nargs="*", default=[], metavar="NAME=PATH",
                   help="extra trained models reported as methods NAME")
    e.add_argument("--dists-weights", type=Path, default=None,
                   help="WSI-DISTS weights for the wsi_dists column (default: the shipped ones)")
    e.add_argument("--json", action="store_true", help="print the rows as JSON")
    e.set_defaults(handler=_eval)

    r = psub.add_parser("eval-real", help="hold out each interior plane of your own z-stacks and refocus to it",
                        description="For every multi-plane slide: each interior focal plane is held out and "
                                    "refocused to from its two neighbours (fs=2) and from all other planes "
                                    "(fs=all, at most 16), by finefocus, linear, nearest and optics; SSIM, PSNR "
                                    "and the sharpness ratio against the real plane.")
    r.add_argument("slides", nargs="+", metavar="SLIDE", help="slides with at least 3 focal planes")
    r.add_argument("--weights", type=Path, default=None, help="refocus weights (default: the shipped ones)")
    r.add_argument("--region", default=None, help="X,Y,W,H in level-0 px (default: the whole plane, or its centre)")
    r.add_argument("--max-px", type=int, default=512,
                   help="without --region: planes bigger than this (level-0 px a side) are cut to their centre "
                        "(default 512)")
    r.add_argument("--json", action="store_true", help="print rows and means as JSON")
    r.set_defaults(handler=_eval_real)

    f = psub.add_parser("aif-eval", help="all-in-focus export (estimated depths) against the truth and baselines",
                        description="SSIM against the phantom's exact all-in-focus image of the all-in-focus "
                                    "export (`snapshot --all-in-focus`), the same rendering at the exact depths, "
                                    "classical focus stacking and the captured planes.")
    f.add_argument("--seed", type=int, required=True, help="phantom evaluation seed (ranges: engine/phantom/seeds.py)")
    f.add_argument("--regions", type=int, default=4, help="tissue regions (default 4)")
    f.add_argument("--size", type=int, default=512, help="region side in level-0 px (default 512)")
    f.add_argument("--json", action="store_true", help="print the report as JSON")
    f.set_defaults(handler=_aif_eval)

    c = psub.add_parser("curves", help="plot the validation SSIM of one or more training runs")
    c.add_argument("runs", nargs="+", metavar="NAME=DIR", help="a run's name and its --checkpoints folder")
    c.add_argument("--out", type=Path, required=True, help="output PNG")
    c.add_argument("--json", action="store_true", help="also print the curves as JSON")
    c.set_defaults(handler=_curves)

    w = psub.add_parser("dists-train", help="train the WSI-DISTS perceptual distance (features, then alpha/beta)")
    w.add_argument("--out", type=Path, required=True, help="WSI-DISTS weights file to write")
    w.add_argument("--resume", action="store_true", help="continue the feature training from its checkpoint")
    w.add_argument("--checkpoints", type=Path, default=Path("checkpoints/wsi-dists"))
    w.add_argument("--data", type=Path, default=Path("../shared/data"),
                   help="folder of the real slide images (slides/, tiles/) used as classes")
    w.add_argument("--steps", type=int, default=2400, help="feature (classifier) steps (default 2400)")
    w.add_argument("--threads", type=int, default=1)
    w.set_defaults(handler=_dists_train)

    v = psub.add_parser("dists-eval", help="SRCC of WSI-DISTS, 1-SSIM and L1 with the defocus difference")
    v.add_argument("--weights", type=Path, default=None, help="WSI-DISTS weights (default: the shipped ones)")
    v.add_argument("--checkpoints", type=Path, default=Path("checkpoints/wsi-dists"),
                   help="where the held-out phantom stacks are cached")
    v.add_argument("--pairs", type=int, default=800)
    v.add_argument("--json", action="store_true")
    v.set_defaults(handler=_dists_eval)

    a = psub.add_parser("apply", help="refocus a region of a slide to a focus and write a PNG")
    a.add_argument("slide", help="slide path or phantom spec")
    a.add_argument("--region", required=True, help="X,Y,W,H in level-0 px")
    a.add_argument("--z", type=float, nargs="+", required=True,
                   help="target focus in µm (the slide's plane frame); several give a strip: input, then each z")
    a.add_argument("--planes", type=int, nargs="+", default=None, help="input plane indices (default all, ≤ 16)")
    a.add_argument("--weights", type=Path, default=None)
    a.add_argument("--out", type=Path, required=True)
    a.set_defaults(handler=_apply)


def _weights(path: Path | None):
    from ..refocus.weights import load_model, shipped_weights

    path = path or shipped_weights()
    if path is None:
        raise UserError("refocus: no weights given and none shipped in resources/weights/refocus.pt")
    if not Path(path).exists():
        raise UserError(f"{path}: no such weights file")
    try:
        return load_model(path)[0]
    except Exception as exc:  # any unreadable or foreign file
        raise UserError(f"{path}: not refocus weights ({str(exc).splitlines()[0]})") from exc


def _data(args) -> int:
    from ..phantom.seeds import SeedPolicyError, check_training_seed, training_seeds
    from ..refocus.dataset import build_cache
    from ..refocus.train import VAL_SEED

    if args.slides < 1:
        raise UserError("refocus data: --slides must be >= 1")
    try:
        seeds = args.seeds if args.seeds else training_seeds(args.slides)
        for s in seeds:
            check_training_seed(s, "refocus data", allow_validation=False)
    except SeedPolicyError as exc:
        raise UserError(str(exc)) from None
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    build_cache(args.checkpoints / "val", [VAL_SEED], crops_per_slide=8, log=log)
    build_cache(args.checkpoints / "data", seeds, log=log, tissue_version=args.tissue_version)
    if args.textures > 0:
        from ..phantom.texture_layers import build_texture_cache
        if not build_texture_cache(args.checkpoints / "data", args.textures, log=log):
            raise UserError("refocus data: --textures needs the real images of ../shared/data "
                            "(or $FINEFOCUS_SHARED_DATA); none found")
    return 0


def _train(args) -> int:
    from ..refocus.train import TrainConfig, train
    from ..slides.open import open_slide

    if args.steps < 1 or args.batch < 1 or not args.lr > 0:
        raise UserError("refocus train: --steps, --batch and --lr must be positive")
    if args.crop < 16 or args.crop % 8 or args.crop > 256:
        raise UserError(f"refocus train: --crop must be a multiple of 8 in 16..256, got {args.crop}")
    if args.init is not None:
        _weights(args.init)                    # readable refocus weights, or exit 2 naming the file
    if args.recon == "wsi-dists":
        _dists_weights(args.dists_weights)     # readable WSI-DISTS weights, or exit 2 naming the file
    stacks = []
    for s in args.stacks:
        slide = open_slide(s)
        if len(slide.planes_um) < 2:
            raise UserError(f"{s}: has {len(slide.planes_um)} focal plane; fine-tuning needs at least 2")
        stacks.append(slide)
    cfg = TrainConfig(out=args.out, checkpoints=args.checkpoints, slides=args.slides, steps=args.steps,
                      batch=args.batch, crop=args.crop, lr=args.lr, pool=args.pool, resume=args.resume, stacks=stacks,
                      w_consistency=0.0 if args.no_consistency else TrainConfig.w_consistency,
                      val_every=args.val_every, threads=args.threads, until=args.until, recon=args.recon,
                      gan=args.gan, init=args.init, dists_weights=args.dists_weights,
                      channels=tuple(args.channels) if args.channels else TrainConfig.channels, fine_keys=not args.no_fine_keys,
                      tissue_version=args.tissue_version, textures=args.textures, augment=args.augment)
    result = train(cfg, log=lambda m: print(m, flush=True))
    print(json.dumps({"step": result["step"], "best_val_ssim": result["best_val_ssim"], "out": str(args.out)}))
    return 0


def _eval(args) -> int:
    from ..phantom.seeds import SeedPolicyError, check_evaluation_seed
    from ..refocus.evaluate import evaluate, summarise

    try:
        check_evaluation_seed(args.seed, "refocus eval")
    except SeedPolicyError as exc:
        raise UserError(str(exc)) from None
    if args.stacks < 1 or any(n < 1 or n > 16 for n in args.fs) or args.size < 64:
        raise UserError("refocus eval: --stacks >= 1, --fs in 1..16 and --size >= 64")
    models = {"finefocus": _weights(args.weights)}
    for item in args.ablation:
        if "=" not in item:
            raise UserError(f"refocus eval: --ablation expects NAME=PATH, got {item!r}")
        name, path = item.split("=", 1)
        models[name] = _weights(Path(path))
    dists = _dists_weights(args.dists_weights)[0] if args.dists_weights is not None else None
    rows = evaluate(args.seed, models, fs=args.fs, stacks=args.stacks, size=args.size, dists=dists)
    if args.json:
        print(json.dumps({"seed": args.seed, "stacks": args.stacks, "size": args.size, "rows": rows}))
    else:
        for r in summarise(rows):
            d = "-" if r["wsi_dists"] is None else f"{r['wsi_dists']:.4f}"
            print(f"FS={r['fs']:<2} {r['target']:<13} {r['method']:<12} SSIM {r['ssim']:.4f}  "
                  f"MS-SSIM {r['ms_ssim']:.4f}  PSNR {r['psnr']:.2f}  WSI-DISTS {d}")
    return 0


def _eval_real(args) -> int:
    from ..refocus.eval_real import NoInteriorPlane, evaluate_real
    from ..slides.open import open_slide

    if args.max_px < 16:
        raise UserError(f"refocus eval-real: --max-px must be at least 16, got {args.max_px}")
    region = None
    if args.region is not None:
        try:
            region = tuple(int(v) for v in args.region.split(","))
        except ValueError:
            region = ()
        if len(region) != 4:
            raise UserError(f"refocus eval-real: --region must be X,Y,W,H, got {args.region!r}")
    model = _weights(args.weights)
    slides = []
    try:
        for path in args.slides:
            slide = open_slide(path)
            slides.append(slide)
            if len(slide.planes_um) < 3:
                n = len(slide.planes_um)
                raise UserError(f"{path}: {n} focal plane{'s' if n != 1 else ''}; eval-real needs at least 3 "
                                "(an interior plane to hold out between two others)")
        log = None if args.json else (lambda m: print(m, file=sys.stderr, flush=True))
        reports = []
        for path, slide in zip(args.slides, slides):
            try:
                reports.append(evaluate_real(slide, path, model, region=region, max_px=args.max_px, log=log))
            except (NoInteriorPlane, ValueError) as exc:
                raise UserError(f"{path}: {exc}") from None
    finally:
        for slide in slides:
            slide.close()
    if args.json:
        print(json.dumps({"slides": [{k: v for k, v in r.items() if k not in ("rows", "means")} for r in reports],
                          "rows": [row for r in reports for row in r["rows"]],
                          "means": [m for r in reports for m in r["means"]]}))
    else:
        for r in reports:
            mpp = "µm/px not stated: 0.25 assumed" if r["mpp_assumed"] else f"{r['mpp'][0]:g} µm/px"
            x, y, w, h = r["region"]
            print(f"{r['slide']}: {len(r['planes_um'])} planes, {mpp}, region {x},{y},{w},{h}; "
                  f"means over {len(r['planes_um']) - 2} held-out planes")
            print(f"  {'fs':<4} {'method':<10} {'SSIM':>7} {'PSNR dB':>8} {'sharpness':>10}")
            for m in r["means"]:
                print(f"  {str(m['fs']):<4} {m['method']:<10} {m['ssim']:>7.4f} {m['psnr']:>8.2f} "
                      f"{m['sharpness_ratio']:>10.3f}")
    return 0


def _aif_eval(args) -> int:
    from ..focusmap.evaluate import evaluate_all_in_focus

    try:
        report = evaluate_all_in_focus(args.seed, args.regions, args.size,
                                       log=None if args.json else (lambda m: print(m, file=sys.stderr)))
    except ValueError as exc:
        raise UserError(f"refocus aif-eval: {exc}") from None
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for r in report["rows"]:
            print(f"{r['method']:<32} SSIM {r['ssim']:.4f}")
    return 0


def _dists_weights(path: Path | None):
    from ..refocus.wsi_dists import load_dists, shipped_dists

    path = path or shipped_dists()
    if path is None:
        raise UserError("refocus: no WSI-DISTS weights given and none shipped in resources/weights/wsi-dists.pt")
    if not Path(path).exists():
        raise UserError(f"{path}: no such weights file")
    try:
        return load_dists(path)
    except Exception as exc:  # any unreadable or foreign file
        raise UserError(f"{path}: not WSI-DISTS weights ({str(exc).splitlines()[0]})") from exc


def _dists_train(args) -> int:
    from ..refocus.dists_train import REAL_CLASSES, DistsConfig, train_dists

    if args.steps < 1:
        raise UserError("refocus dists-train: --steps must be positive")
    for _, files in REAL_CLASSES:
        for f in files:
            if not (args.data / f).exists():
                raise UserError(f"{args.data / f}: missing (the real images of --data are classes of the features)")
    cfg = DistsConfig(out=args.out, checkpoints=args.checkpoints, data=args.data, steps=args.steps,
                      resume=args.resume, threads=args.threads)
    result = train_dists(cfg, log=lambda m: print(m, file=sys.stderr, flush=True))
    print(json.dumps(result))
    return 0


def _dists_eval(args) -> int:
    import torch

    from ..refocus.dists_train import DistsConfig, HELDOUT_SEEDS, _pairs, report

    if args.pairs < 10:
        raise UserError("refocus dists-eval: --pairs must be >= 10")
    model, meta = _dists_weights(args.weights)
    torch.set_num_threads(1)
    cfg = DistsConfig(out=Path("unused"), checkpoints=args.checkpoints, heldout_pairs=args.pairs)
    blob = _pairs(cfg, "heldout", HELDOUT_SEEDS, args.pairs, model, log=lambda m: print(m, file=sys.stderr, flush=True))
    res = {"seeds": [HELDOUT_SEEDS[0], HELDOUT_SEEDS[-1]], **report(model, blob)}
    if args.json:
        print(json.dumps(res))
    else:
        for k, v in res["srcc"].items():
            print(f"SRCC {k:<22} all pairs {v:.4f}  same-side pairs {res.get('srcc_same_side', {}).get(k, float('nan')):.4f}")
    return 0


def _curves(args) -> int:
    import torch

    from ..refocus.curve import plot_curves
    from ..refocus.train import VAL_SEED

    series, table = {}, {}
    for item in args.runs:
        name, _, folder = item.rpartition("=")
        name = name or Path(folder).name
        last = Path(folder) / "last.pt"
        if not last.exists():
            raise UserError(f"{last}: no training checkpoint there")
        try:
            hist = json.loads(torch.load(last, map_location="cpu", weights_only=True)["history"])
        except Exception as exc:  # any unreadable or foreign file
            raise UserError(f"{last}: not a refocus training checkpoint ({str(exc).splitlines()[0]})") from exc
        series[name] = [(h[0], h[1]) for h in hist["val"]]
        table[name] = [{"step": h[0], "val_ssim": round(h[1], 4), **{f"fs{n}": round(h[1 + n], 4) for n in range(1, 6)}}
                       for h in hist["val"]]
    plot_curves(args.out, series, title=f"refocus: validation SSIM, held-out slide {VAL_SEED} (FS 1-5, all targets)",
                ylabel="SSIM")
    if args.json:
        print(json.dumps(table))
    return 0


def _apply(args) -> int:
    import torch
    from PIL import Image

    from ..refocus.refocused_slide import model_scale
    from ..slides.open import open_slide

    model = _weights(args.weights)
    slide = open_slide(args.slide)
    try:
        x, y, w, h = (int(v) for v in args.region.split(","))
    except ValueError as exc:
        raise UserError(f"refocus apply: --region must be X,Y,W,H, got {args.region!r}") from exc
    if w < 8 or h < 8:
        raise UserError("refocus apply: the region must be at least 8x8 px")
    idx = args.planes if args.planes is not None else list(range(min(16, len(slide.planes_um))))
    if any(not 0 <= i < len(slide.planes_um) for i in idx) or not 1 <= len(idx) <= 16:
        raise UserError(f"{args.slide}: plane indices must be in 0..{len(slide.planes_um) - 1} (1 to 16 of them)")
    planes = np.stack([slide.read_region(0, x, y, w, h, i) for i in idx])
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    scale = model_scale(slide.mpp)
    x_in = torch.from_numpy(planes).float().permute(0, 3, 1, 2) / 255.0
    if scale != 1.0:   # the model works at 0.25 µm/px: resample there and back
        x_in = torch.nn.functional.interpolate(x_in, scale_factor=scale, mode="bicubic", align_corners=False)
    with torch.no_grad():
        field = model.encode(x_in.clamp(0, 1)[None], torch.tensor([[slide.planes_um[i] for i in idx]]))
        outs = []
        for z in args.z:
            o = model.decode(field, torch.tensor([float(z)]))
            if scale != 1.0:
                o = torch.nn.functional.interpolate(o, size=(h, w), mode="bicubic", align_corners=False)
            outs.append((o[0].permute(1, 2, 0).clamp(0, 1) * 255 + 0.5).to(torch.uint8).numpy())
    img = outs[0] if len(outs) == 1 else np.concatenate([planes[0], *outs], axis=1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(args.out)
    print(json.dumps({"out": str(args.out), "planes_um": [slide.planes_um[i] for i in idx], "z_um": args.z,
                      "resampled_x": round(scale, 3)}))
    return 0
