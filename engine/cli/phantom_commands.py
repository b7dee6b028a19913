"""`finefocus phantom ...`: write the virtual slide, render its ground truth, report its realism.

    finefocus phantom write OUT.ome.tiff --seed S --size W H --planes N --spacing UM [--stain he|ihc]
    finefocus phantom write OUT.ome.zarr ...      (an output ending in .zarr is written as OME-Zarr)
    finefocus phantom truth --seed S --region X,Y,W,H (--z UM | --focus-map MAP.tiff | --all-in-focus) --out FILE.png
    finefocus phantom realism [--json] [--tissue-version 1|2]
"""
from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

import numpy as np

from . import EXIT_USER_ERROR, UserError

__all__ = ["register"]


def register(sub) -> None:
    p = sub.add_parser("phantom", help="the virtual slide: write it, render its ground truth, check realism")
    psub = p.add_subparsers(dest="phantom_command", metavar="ACTION")
    p.set_defaults(handler=lambda args: (p.print_help(), EXIT_USER_ERROR)[1])

    w = psub.add_parser("write", help="write a phantom z-stack as a tiled pyramidal OME-TIFF "
                                      "(or OME-Zarr when OUT ends in .zarr)")
    w.add_argument("out", type=Path, help="output .ome.tiff, or .ome.zarr for OME-Zarr (NGFF 0.4)")
    _slide_args(w, size_required=True)
    w.add_argument("--planes", type=int, default=3, help="number of focal planes (default 3)")
    w.add_argument("--spacing", type=float, default=1.0, help="plane spacing in µm (default 1.0)")
    w.add_argument("--no-noise", action="store_true", help="no sensor noise")
    w.add_argument("--no-scanner-error", action="store_true", help="planes exactly at their nominal z")
    w.add_argument("--jpeg", type=int, default=None, metavar="Q", help="JPEG-compress tiles at quality Q")
    w.set_defaults(handler=_write)

    t = psub.add_parser("truth", help="render the ground truth of a region at a focus")
    _slide_args(t)
    t.add_argument("--region", required=True, help="X,Y,W,H: top-left in level-0 px, size in px of --level")
    t.add_argument("--level", type=int, default=0, help="pyramid level (default 0 = 0.25 µm/px)")
    g = t.add_mutually_exclusive_group(required=True)
    g.add_argument("--z", type=float, help="uniform focus in µm")
    g.add_argument("--focus-map", type=Path, help="TIFF of W×H focus values in µm")
    g.add_argument("--all-in-focus", action="store_true", help="focus each pixel at its best-focus depth z*")
    t.add_argument("--noise", action="store_true", help="add sensor noise (truth is noise-free by default)")
    t.add_argument("--out", type=Path, required=True, help="output PNG")
    t.set_defaults(handler=_truth)

    r = psub.add_parser("realism", help="compare the phantom's statistics with real images")
    r.add_argument("--json", action="store_true", help="print the report as JSON")
    r.add_argument("--tissue-version", type=int, choices=(1, 2), default=1,
                   help="phantom tissue model (default 1, what the shipped models were trained on)")
    r.set_defaults(handler=_realism)


def _slide_args(p, size_required: bool = False) -> None:
    p.add_argument("--seed", type=int, default=0)
    if size_required:   # the default slide (80000x60000 px per plane) is far too large to write
        p.add_argument("--size", type=int, nargs=2, metavar=("W", "H"), required=True,
                       help="level-0 size in px (0.25 µm/px)")
    else:
        p.add_argument("--size", type=int, nargs=2, metavar=("W", "H"), default=None,
                       help="level-0 size in px (default: the large default slide)")
    p.add_argument("--stain", choices=("he", "ihc"), default="he")


def _make_slide(args, **kw):
    from ..phantom.slide import DEFAULT_SIZE, PhantomSlide

    size = tuple(args.size) if args.size else DEFAULT_SIZE
    try:
        return PhantomSlide(seed=args.seed, size=size, stain=args.stain, **kw)
    except ValueError as exc:
        raise UserError(f"phantom: {exc}") from exc


def _write(args) -> int:
    zarr_out = args.out.name.lower().endswith(".zarr")
    try:
        if zarr_out:
            from ..export.ome_zarr import write_ome_zarr as write
        else:
            from ..export.ome_tiff import write_ome_tiff as write
    except ModuleNotFoundError as exc:
        kind = "OME-Zarr" if zarr_out else "OME-TIFF"
        print(f"finefocus: error: the {kind} writer is not available ({exc.name})", file=sys.stderr)
        return EXIT_USER_ERROR
    if args.planes < 1 or not args.spacing > 0:
        raise UserError(f"{args.out}: --planes must be >= 1 and --spacing > 0")
    if zarr_out:
        from ..slides.ome_zarr import looks_like_zarr

        if args.out.exists() and not (args.out.is_dir() and looks_like_zarr(args.out)):
            raise UserError(f"{args.out}: exists and is not an OME-Zarr folder; not replaced")
    elif args.out.is_dir():
        raise UserError(f"{args.out}: is a directory")
    slide = _make_slide(args, planes=args.planes, spacing_um=args.spacing, noise=not args.no_noise,
                        scanner_error=not args.no_scanner_error, jpeg_quality=args.jpeg)
    args.out.parent.mkdir(parents=True, exist_ok=True) if args.out.parent != Path("") else None
    write(args.out, slide, progress=_progress_printer(f"writing {args.out}"))
    W, H = slide.dimensions
    print(f"wrote {args.out}: {W}x{H} px, {len(slide.levels)} levels, planes_um={list(slide.planes_um)}")
    return 0


def _progress_printer(label: str):
    """A ``progress(done, total)`` that redraws one status line on an interactive stderr."""
    if not sys.stderr.isatty():
        return None
    last = [-1]

    def progress(done: int, total: int) -> None:
        pct = int(100 * done / max(total, 1))
        if pct != last[0]:
            last[0] = pct
            print(f"\r{label}: {pct}% ({done}/{total} tiles)", end="" if done < total else "\n",
                  file=sys.stderr, flush=True)
    return progress


def _parse_region(text: str) -> tuple[int, int, int, int]:
    try:
        x, y, w, h = (int(v) for v in text.split(","))
    except ValueError:
        raise UserError(f"--region must be X,Y,W,H integers, got {text!r}") from None
    if w <= 0 or h <= 0:
        raise UserError(f"--region size must be positive, got {w}x{h}")
    if w * h > 8192 * 8192:
        raise UserError(f"--region {w}x{h} is too large (at most 8192x8192 px)")
    return x, y, w, h


def _truth(args) -> int:
    from PIL import Image

    x, y, w, h = _parse_region(args.region)
    slide = _make_slide(args, planes=1, noise=False, scanner_error=False)
    if not 0 <= args.level < slide.level_count:
        raise UserError(f"--level must be 0..{slide.level_count - 1}")
    W, H = slide.dimensions
    ds = 2 ** args.level
    if x < 0 or y < 0 or x + w * ds > W or y + h * ds > H:
        raise UserError(f"--region {x},{y},{w},{h} (level {args.level}) is not inside the {W}x{H} px slide")
    if args.all_in_focus:
        img = slide.all_in_focus(args.level, x, y, w, h, noise=args.noise)
    elif args.focus_map is not None:
        fmap = _read_focus_map(args.focus_map, w, h)
        img = slide.truth(args.level, x, y, w, h, fmap, noise=args.noise)
    else:
        img = slide.truth(args.level, x, y, w, h, float(args.z), noise=args.noise)
    Image.fromarray(img).save(args.out)
    print(f"wrote {args.out}: {w}x{h} px at level {args.level}")
    return 0


def _read_focus_map(path: Path, w: int, h: int) -> np.ndarray:
    import tifffile

    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        arr = np.asarray(tifffile.imread(path), np.float64)
    except Exception as exc:  # tifffile raises many kinds for bad files
        raise UserError(f"{path}: not a readable TIFF focus map ({exc})") from None
    arr = np.squeeze(arr)
    if arr.shape != (h, w):
        raise UserError(f"{path}: focus map is {arr.shape[-1]}x{arr.shape[0]} px, the region is {w}x{h}")
    if not np.isfinite(arr).all():
        raise UserError(f"{path}: focus map has non-finite values")
    return arr


def _realism(args) -> int:
    try:
        realism = importlib.import_module("engine.phantom.realism")
    except ModuleNotFoundError as exc:
        if exc.name == "engine.phantom.realism":
            print("finefocus: error: the realism report is not available (engine.phantom.realism is missing)",
                  file=sys.stderr)
            return EXIT_USER_ERROR
        raise
    report = realism.realism_report(tissue_version=getattr(args, "tissue_version", 1))
    if args.json:
        print(json.dumps(report, indent=2, default=float))
    else:
        _print_table(report)
    return 0


def _print_table(report: dict, indent: str = "") -> None:
    for k, v in report.items():
        if isinstance(v, dict):
            print(f"{indent}{k}:")
            _print_table(v, indent + "  ")
        elif isinstance(v, float):
            print(f"{indent}{k:<32} {v:.4g}")
        else:
            print(f"{indent}{k:<32} {v}")
