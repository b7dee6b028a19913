"""`finefocus fqa …`: focus quality from the command line.

* ``finefocus fqa score IMAGE_OR_SLIDE... [--model M] [--json]`` — one score per input: the mean
  patch score over tissue (235-px patches at stride 128 on level 0, plane nearest z = 0; higher =
  blurrier). Plain images and slides alike.
* ``finefocus fqa heatmap SLIDE [--z UM] [--model M] --out HEAT.npy [--png HEAT.png] [--json]`` —
  the whole-slide heatmap (NaN on glass) as a float32 .npy, with its geometry and summary.
* ``finefocus fqa depthmap SLIDE [--model M] --out DEPTH.npy [--png DEPTH.png] [--json]`` — the
  best-focus depth map (µm) of a multi-plane slide.

``--model`` is ``focuslitenn-1|2|10`` (shipped weights), a weights file, or the name of a classical
metric of `engine.fqa.metrics.METRICS` (e.g. ``brenner``, ``variance_of_laplacian``).

The ``train`` and ``eval`` subcommands live in `engine.fqa.train_cli` and `engine.fqa.eval_cli`;
`add_fqa_group` registers them (see REGISTERED_ELSEWHERE).
"""
from __future__ import annotations

import argparse
import importlib
import json
import math
import sys
from pathlib import Path

import numpy as np

from ..slides import open_slide
from . import UserError, check_output_path, progress_printer, save_png

#: Modules that add subcommands to the ``fqa`` group with their own ``register(group_subparsers)``
#: (the lead's training and evaluation commands). A module not written yet is skipped.
REGISTERED_ELSEWHERE = ("engine.fqa.train_cli", "engine.fqa.eval_cli")

DEFAULT_MODEL = "focuslitenn-1"


def register(sub) -> None:
    add_fqa_group(sub)


def add_fqa_group(sub) -> argparse._SubParsersAction:
    """Add the ``fqa`` command group to ``sub``; returns the group's subparsers object."""
    fqa = sub.add_parser("fqa", help="focus quality: scores, heatmaps, depth maps, training, evaluation",
                         description="Focus quality assessment with FocusLiteNN and classical metrics.")
    group = fqa.add_subparsers(dest="fqa_command", metavar="SUBCOMMAND")
    fqa.set_defaults(handler=lambda args: _group_help(fqa))

    s = group.add_parser("score", help="one focus score per image or slide (higher = blurrier)",
                         description="Mean patch score over tissue of each input (235-px patches at "
                                     "stride 128 on level 0; higher = blurrier).")
    s.add_argument("paths", nargs="+", metavar="IMAGE_OR_SLIDE")
    _model_arg(s)
    s.add_argument("--json", action="store_true", help="print a JSON list of {path, score, ...}")
    s.set_defaults(handler=score_command)

    h = group.add_parser("heatmap", help="whole-slide focus heatmap (.npy, optional PNG)",
                         description="Score every 235-px patch at stride 128 on level 0 (glass = NaN).")
    h.add_argument("path", metavar="SLIDE")
    h.add_argument("--z", type=float, metavar="UM", default=0.0,
                   help="focal position in µm: the nearest captured plane is scored (default 0)")
    _model_arg(h)
    h.add_argument("--out", required=True, metavar="HEAT.npy", help="float32 (rows, cols) scores")
    h.add_argument("--png", metavar="HEAT.png", help="colourised heatmap over a grey thumbnail, with legend")
    h.add_argument("--json", action="store_true", help="print geometry and summary as JSON")
    h.set_defaults(handler=heatmap_command)

    d = group.add_parser("depthmap", help="best-focus depth map of a multi-plane slide (.npy, optional PNG)",
                         description="Per patch, the z (µm, interpolated between planes) where the "
                                     "score is best.")
    d.add_argument("path", metavar="SLIDE")
    _model_arg(d)
    d.add_argument("--out", required=True, metavar="DEPTH.npy", help="float32 (rows, cols) depth in µm")
    d.add_argument("--png", metavar="DEPTH.png", help="colourised depth map over a grey thumbnail, with legend")
    d.add_argument("--json", action="store_true", help="print geometry and summary as JSON")
    d.set_defaults(handler=depthmap_command)

    # ---- train / eval: registered by their own modules (one line each) ----
    for name in REGISTERED_ELSEWHERE:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        module.register(group)
    return group


def _group_help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _model_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=DEFAULT_MODEL, metavar="M",
                   help="focuslitenn-1|2|10, a weights file, or a classical metric name (default focuslitenn-1)")


def _scorer(model: str):
    from ..fqa.heatmap_source import scorer_for

    try:
        return scorer_for(model)
    except FileNotFoundError:
        raise
    except ValueError:  # e.g. "focuslitenn-x"
        raise UserError(f"{model}: not a model name, weights file or metric name") from None
    except Exception as exc:  # a file that is not FocusLiteNN weights
        raise UserError(f"{model}: cannot load FocusLiteNN weights ({exc.__class__.__name__})") from None



def _stats(values: np.ndarray) -> dict:
    v = values[np.isfinite(values)]
    out = {"patches": int(values.size), "tissue_patches": int(v.size), "glass_patches": int(values.size - v.size)}
    if v.size:
        p5, med, p95 = np.percentile(v, [5, 50, 95])
        out.update(min=float(v.min()), max=float(v.max()), mean=float(v.mean()), median=float(med),
                   p5=float(p5), p95=float(p95))
    else:
        out.update(min=None, max=None, mean=None, median=None, p5=None, p95=None)
    return out


def _save_npy(path: Path, values: np.ndarray) -> None:
    try:
        np.save(path, values.astype(np.float32))
    except OSError as exc:
        raise UserError(f"{path}: cannot write ({exc.strerror or exc})") from exc




# ---------------------------------------------------------------------------- score
def score_command(args: argparse.Namespace) -> int:
    from ..fqa.heatmap import PATCH, compute_heatmap

    scorer, model_id, _ = _scorer(args.model)
    results = []
    for path in args.paths:
        with open_slide(path) as slide:
            W, H = slide.dimensions
            if W < PATCH or H < PATCH:
                raise UserError(f"{path}: {W}x{H} px is smaller than one {PATCH}-px patch")
            plane = slide.nearest_plane(0.0)
            maps, geom = compute_heatmap(slide, {"s": scorer}, plane=plane)
        s = maps["s"]
        tissue = s[np.isfinite(s)]
        results.append({"path": str(path), "score": float(tissue.mean()) if tissue.size else None,
                        "tissue_patches": int(tissue.size), "patches": int(s.size),
                        "model": args.model, "z_um": float(slide.planes_um[plane])})
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for r in results:
            score = "no tissue" if r["score"] is None else f"{r['score']:.4f}"
            print(f"{r['path']}\t{score}\t({r['tissue_patches']}/{r['patches']} tissue patches)")
    return 0


# ---------------------------------------------------------------------------- heatmap
def heatmap_command(args: argparse.Namespace) -> int:
    from ..colormaps import robust_range
    from ..fqa.heatmap import compute_heatmap
    from ..fqa.heatmap_source import overview_png

    out = check_output_path(args.out, ".npy", "--out")
    png = check_output_path(args.png, ".png", "--png") if args.png else None
    if not math.isfinite(args.z):
        raise UserError(f"--z must be a number of µm, got {args.z}")
    scorer, model_id, label = _scorer(args.model)
    with open_slide(args.path) as slide:
        plane = slide.nearest_plane(args.z)
        maps, geom = compute_heatmap(slide, {"s": scorer}, plane=plane,
                                     progress=progress_printer(not args.json and sys.stderr.isatty()))
        values = maps["s"]
        _save_npy(out, values)
        vrange = robust_range(values)
        if png is not None:
            save_png(png, overview_png(slide, values, geom, vrange, label, "focus", plane))
        doc = {"path": str(args.path), "model": args.model, "model_id": model_id, **geom.as_dict(),
               "plane": plane, "z_um": float(slide.planes_um[plane]),
               "mpp": list(slide.mpp) if slide.mpp else None, "higher_is_blurrier": True,
               "stats": _stats(values), "color_range": list(vrange),
               "out": str(out), "png": str(png) if png else None}
    _report(doc, args.json, f"wrote {out}: {geom.shape[0]}x{geom.shape[1]} patches "
                            f"({doc['stats']['tissue_patches']} tissue), plane z = {doc['z_um']:+g} µm")
    return 0


# ---------------------------------------------------------------------------- depthmap
def depthmap_command(args: argparse.Namespace) -> int:
    from ..fqa.depth_map import compute_depth_map
    from ..fqa.heatmap_source import overview_png

    out = check_output_path(args.out, ".npy", "--out")
    png = check_output_path(args.png, ".png", "--png") if args.png else None
    _scorer(args.model)  # fail early on a bad model
    with open_slide(args.path) as slide:
        if slide.plane_count < 2:
            raise UserError(f"{args.path}: a depth map needs a multi-plane slide (this one has 1 focal plane)")
        depth, scores, geom = compute_depth_map(slide, args.model,
                                                progress=progress_printer(not args.json and sys.stderr.isatty()))
        _save_npy(out, depth)
        zr = (float(slide.planes_um[0]), float(slide.planes_um[-1]))
        if png is not None:
            save_png(png, overview_png(slide, depth, geom, zr, "best-focus z (µm)", "viridis",
                                        slide.nearest_plane(0.0)))
        doc = {"path": str(args.path), "model": args.model, **geom.as_dict(),
               "planes_um": [float(z) for z in slide.planes_um], "units": "µm",
               "mpp": list(slide.mpp) if slide.mpp else None,
               "stats": _stats(depth), "out": str(out), "png": str(png) if png else None}
    median = doc["stats"]["median"]
    _report(doc, args.json, f"wrote {out}: {geom.shape[0]}x{geom.shape[1]} patches, best-focus z median "
                            + ("n/a (no tissue)" if median is None else f"{median:+.3g} µm"))
    return 0


def _report(doc: dict, as_json: bool, line: str) -> None:
    print(json.dumps(doc, indent=2, ensure_ascii=False) if as_json else line)
