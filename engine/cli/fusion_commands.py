"""`finefocus fusion …`: unsupervised fusion of focus-quality models (thesis Ch. 4).

* ``finefocus fusion heatmap SLIDE --out FUSED.npy [--uncertainty-out U.npy] [--z UM]
  [--variant SF-ms|RF-ms|SF-m] [--metrics a,b,…] [--png FUSED.png] [--json]`` — every model
  scores every 235-px patch at stride 128 on level 0 of the plane nearest ``--z`` (the
  FocusLiteNN heatmap geometry), the fusion is fitted on the slide's own tissue patches (no
  labels) and the fused score (z ∈ (0, 1), higher = blurrier, relative to this slide) and its
  uncertainty are written as float32 (rows, cols) .npy grids, NaN on glass. The JSON gives the
  geometry, each model's weight and overall scale ω̃, and summaries.
* ``finefocus fusion eval --seed S [--random-models K] [--stacks N] [--json]`` — phantom
  z-stacks of seed S: SRCC and PLCC against |z − z*| of each single model, each fusion variant
  and RRF, the fitted model weights, the uncertainty check and the label-chosen linear ceiling
  (`engine.fusion.evaluate`).

``--metrics`` replaces the default classical metrics (`engine.fusion.inputs.FUSION_METRICS`);
FocusLiteNN models are used whenever their weights exist (``--no-focuslitenn`` leaves them out).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

from ..slides import open_slide
from . import UserError, check_output_path, progress_printer, save_png


def register(sub) -> None:
    fusion = sub.add_parser("fusion", help="fused focus quality: heatmaps with uncertainty, evaluation",
                            description="Unsupervised MAP fusion of FocusLiteNN and classical metrics "
                                        "(thesis Ch. 4), with a per-patch uncertainty.")
    group = fusion.add_subparsers(dest="fusion_command", metavar="SUBCOMMAND")
    fusion.set_defaults(handler=lambda args: _group_help(fusion))

    h = group.add_parser("heatmap", help="fused focus heatmap and its uncertainty of one slide (.npy)",
                         description="Fit the fusion on the slide's own patch scores and write the "
                                     "fused score and its uncertainty per patch (glass = NaN).")
    h.add_argument("path", metavar="SLIDE")
    h.add_argument("--out", required=True, metavar="FUSED.npy", help="float32 (rows, cols) fused scores")
    h.add_argument("--uncertainty-out", metavar="U.npy",
                   help="float32 (rows, cols) uncertainty (default: FUSED-uncertainty.npy beside --out)")
    h.add_argument("--z", type=float, default=0.0, metavar="UM",
                   help="focal position in µm: the nearest captured plane is scored (default 0)")
    _model_args(h)
    h.add_argument("--png", metavar="FUSED.png", help="colourised fused heatmap over a grey thumbnail")
    h.add_argument("--json", action="store_true", help="print geometry, model weights and summaries as JSON")
    h.set_defaults(handler=heatmap_command)

    e = group.add_parser("eval", help="fusion vs single models vs RRF on phantom z-stacks",
                         description="SRCC and PLCC against |z - z*| on phantom focal stacks of one seed.")
    e.add_argument("--seed", type=int, required=True, metavar="S", help="phantom evaluation seed (ranges: engine/phantom/seeds.py)")
    e.add_argument("--random-models", type=int, default=0, metavar="K",
                   help="add K models that output uniform random numbers (thesis Table 4.4)")
    e.add_argument("--stacks", type=int, default=None, metavar="N", help="focal stacks to render (default 32; rendered once, then cached)")
    e.add_argument("--protocol", choices=("patch", "thesis"), default="patch",
                   help="patch: single 235-px patches, the heatmap cells `fusion heatmap` fuses (default); "
                        "thesis: whole 1024-px images scored as `fqa score` does")
    _model_args(e, variant=False)
    e.add_argument("--json", action="store_true", help="print the full report as JSON")
    e.set_defaults(handler=eval_command)


def _model_args(p: argparse.ArgumentParser, variant: bool = True) -> None:
    if variant:
        p.add_argument("--variant", default="SF-ms", metavar="V", help="SF-ms (default), RF-ms or SF-m")
    p.add_argument("--metrics", metavar="A,B,...",
                   help="classical metrics to fuse (comma-separated; default: the fusion's curated set)")
    p.add_argument("--no-focuslitenn", action="store_true", help="fuse classical metrics only")
    p.add_argument("--steps", type=int, default=None, metavar="N",
                   help="optimisation steps of each fit (default: the tuned 1500)")
    p.add_argument("--model-weights", choices=("information", "learned"), default="information",
                   help="each model's weight: its share of the information f'^2/Var about the fused score "
                        "under the fitted observation model (default), or a free parameter of the fit")


def _group_help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _models(args):
    from ..fusion.inputs import default_models

    metrics = None if args.metrics is None else [m.strip() for m in args.metrics.split(",") if m.strip()]
    try:
        models = default_models(metrics, focuslitenn=not args.no_focuslitenn)
    except ValueError as exc:
        raise UserError(f"--metrics: {exc}") from None
    if len(models.names) < 2:
        raise UserError(f"--metrics: fusion needs at least 2 models, got {len(models.names)} "
                        f"({', '.join(models.names) or 'none'})")
    return models


def _config(args, variant: str = "SF-ms"):
    from ..fusion.fit import VARIANTS, FusionConfig

    if variant not in VARIANTS:
        raise UserError(f"--variant: unknown fusion variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    if args.steps is not None and args.steps < 1:
        raise UserError(f"--steps must be >= 1, got {args.steps}")
    extra = {} if args.steps is None else {"steps": args.steps}
    return FusionConfig(variant=variant, model_weights=args.model_weights, **extra)



def _save_npy(path: Path, values: np.ndarray) -> None:
    try:
        np.save(path, np.asarray(values, np.float32))
    except OSError as exc:
        raise UserError(f"{path}: cannot write ({exc.strerror or exc})") from exc


def _stats(values: np.ndarray) -> dict:
    v = values[np.isfinite(values)]
    out = {"patches": int(values.size), "tissue_patches": int(v.size)}
    if v.size:
        p5, med, p95 = np.percentile(v, [5, 50, 95])
        out.update(min=float(v.min()), max=float(v.max()), mean=float(v.mean()), median=float(med),
                   p5=float(p5), p95=float(p95))
    return out



# ---------------------------------------------------------------------------- heatmap
def heatmap_command(args: argparse.Namespace) -> int:
    from ..fusion.heatmap_source import CMAPS, LABELS, color_ranges, fit_digest
    from ..fusion.slide_fit import NotEnoughTissue, fit_slide

    out = check_output_path(args.out, ".npy", "--out")
    u_out = (check_output_path(args.uncertainty_out, ".npy", "--uncertainty-out") if args.uncertainty_out
             else out.with_name(out.stem + "-uncertainty.npy"))
    if u_out.resolve() == out.resolve():
        raise UserError(f"{u_out}: --uncertainty-out must differ from --out")
    png = check_output_path(args.png, ".png", "--png") if args.png else None
    if not math.isfinite(args.z):
        raise UserError(f"--z must be a number of µm, got {args.z}")
    config = _config(args, args.variant)
    models = _models(args)
    with open_slide(args.path) as slide:
        plane = slide.nearest_plane(args.z)
        try:
            fusion = fit_slide(slide, models, plane=plane, config=config,
                               progress=progress_printer(not args.json and sys.stderr.isatty(), 'scoring'))
        except NotEnoughTissue as exc:
            raise UserError(f"{args.path}: {exc}") from None
        _save_npy(out, fusion.fused)
        _save_npy(u_out, fusion.uncertainty)
        ranges = color_ranges(fusion)
        if png is not None:
            from ..fqa.heatmap_source import overview_png

            save_png(png, overview_png(slide, fusion.fused, fusion.geometry, ranges["fused"],
                                        LABELS["fused"], CMAPS["fused"], plane))
        res = fusion.result
        doc = {"path": str(args.path), "variant": res.config.variant, "model_weights": res.config.model_weights,
               **fusion.geometry.as_dict(),
               "plane": plane, "z_um": fusion.z_um, "mpp": list(slide.mpp) if slide.mpp else None,
               "higher_is_blurrier": True, "fit_id": fit_digest(fusion),
               "fit_seconds": round(fusion.fit_seconds, 3),
               "models": [{"name": n, "weight": res.weights[n], "scale": res.scales[n]} for n in res.names],
               "skipped": fusion.skipped,
               "fused": {**_stats(fusion.fused), "color_range": list(ranges["fused"]), "out": str(out)},
               "uncertainty": {**_stats(fusion.uncertainty), "color_range": list(ranges["uncertainty"]),
                               "out": str(u_out)},
               "png": str(png) if png else None}
    if args.json:
        print(json.dumps(doc, indent=2, ensure_ascii=False))
    else:
        top = max(res.names, key=lambda n: res.weights[n])
        print(f"wrote {out} and {u_out}: {fusion.geometry.shape[0]}x{fusion.geometry.shape[1]} patches "
              f"({doc['fused']['tissue_patches']} tissue), {res.config.variant} over {len(res.names)} models "
              f"(largest weight: {top} {res.weights[top]:.2f}), fit in {fusion.fit_seconds:.1f} s")
    return 0



# ---------------------------------------------------------------------------- eval
def eval_command(args: argparse.Namespace) -> int:
    from ..fusion.evaluate import DEFAULT_STACKS, evaluate_seed
    from ..phantom.seeds import SeedPolicyError, check_evaluation_seed

    try:
        check_evaluation_seed(args.seed, f"fusion eval --seed {args.seed}")
    except SeedPolicyError as exc:
        raise UserError(str(exc)) from None
    if args.random_models < 0:
        raise UserError(f"--random-models must be >= 0, got {args.random_models}")
    stacks = DEFAULT_STACKS if args.stacks is None else args.stacks
    if stacks < 1:
        raise UserError(f"--stacks must be >= 1, got {stacks}")
    config = _config(args)
    models = _models(args)
    progress = None if args.json else (lambda step: print(f"  {step}…", file=sys.stderr, flush=True))
    report = evaluate_seed(args.seed, models, stacks=stacks, random_k=args.random_models, config=config,
                           progress=progress, protocol=args.protocol)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    unit = "images" if args.protocol == "thesis" else "patches"
    print(f"phantom seed {args.seed} ({args.protocol} protocol): {report[unit]} {unit} of {stacks} stacks"
          + (" (a tuning seed)" if report["tuning_seed"] else ""))
    print(f"{'method':28s} {'SRCC':>7s} {'PLCC':>7s}")
    for r in report["rows"]:
        print(f"{r['method']:28s} {r['srcc']:7.4f} {r['plcc']:7.4f}")
    ceiling = report["linear_ceiling"]
    print(f"label-chosen linear ceiling: SRCC {ceiling['srcc']:.4f} at weights "
          + ", ".join(f"{n} {w:.2f}" for n, w in ceiling["weights"].items() if w > 0))
    return 0
