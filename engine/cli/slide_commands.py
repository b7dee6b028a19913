"""`finefocus info` and `finefocus snapshot`: look into a slide without the viewer.

* ``finefocus info PATH [--json]`` — format, level sizes and downsamples, µm per pixel, focal
  planes (µm), associated images and vendor properties.
* ``finefocus snapshot PATH --level L --region X,Y,W,H [--z UM | --plane I] --out FILE.png`` —
  read one region (X, Y in level-0 px; W, H in px of level L) into a PNG: ``--plane`` a captured
  plane as it is, ``--z`` the focus as the viewer's knob shows it (a captured plane's z reads
  that plane, any other z is refocused, `engine.refocus.refocused_slide`).
  With ``--focus-map MAP.npz`` every place is rendered at the map's focus, with
  ``--all-in-focus [--save-focus-map MAP.npz]`` at its estimated best focus (`engine.focusmap`),
  by the virtual refocusing model (`engine.refocus.focus_mapped_slide`).

PATH may be ``phantom:<spec>`` for the built-in phantom. Bad input raises `SlideError` or
`UserError`, which the CLI prints as one line and exit status 2.
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from ..slides import open_slide
from . import UserError


def register(sub) -> None:
    p = sub.add_parser("info", help="describe a slide: format, levels, µm per pixel, focal planes",
                       description="Describe a slide: format, level sizes and downsamples, "
                                   "µm per pixel, focal planes (µm) and vendor properties.")
    p.add_argument("path", metavar="PATH", help="slide file or folder, or phantom:<spec>")
    p.add_argument("--json", action="store_true", help="print the description as JSON")
    p.set_defaults(handler=info_command)

    s = sub.add_parser(
        "snapshot", help="read one region of a slide into a PNG (headless)",
        description="Read one region of one focal plane of a slide into a PNG, without the viewer.")
    s.add_argument("path", metavar="PATH", help="slide file or folder, or phantom:<spec>")
    s.add_argument("--level", type=int, default=0, help="pyramid level (0 = full resolution)")
    s.add_argument("--region", required=True, metavar="X,Y,W,H",
                   help="X,Y: top-left in level-0 px; W,H: size in px of the chosen level")
    planes = s.add_mutually_exclusive_group()
    planes.add_argument("--z", type=float, metavar="UM",
                        help="focal position in µm, as the viewer's focus knob shows it: a captured "
                             "plane's z reads that plane, any other z is refocused by the virtual "
                             "refocusing model. Default: the plane nearest 0 µm")
    planes.add_argument("--plane", type=int, metavar="I", help="index of a captured focal plane to read as it is")
    planes.add_argument("--focus-map", metavar="MAP.npz",
                        help="render every place at the focus a focus map gives it (a FineFocus focus map, "
                             "e.g. written by --save-focus-map), by the virtual refocusing model")
    planes.add_argument("--all-in-focus", action="store_true",
                        help="every place at its own best focus: the depth where FocusLiteNN finds the "
                             "captured planes sharpest (a multi-plane slide, level 0), rendered by the "
                             "virtual refocusing model")
    s.add_argument("--save-focus-map", metavar="MAP.npz",
                   help="with --all-in-focus: also write the estimated focus map (to reuse or repaint)")
    s.add_argument("--out", required=True, metavar="FILE.png", help="where to write the PNG")
    s.set_defaults(handler=snapshot_command)


# ---------------------------------------------------------------------------- info
def info_command(args: argparse.Namespace) -> int:
    path = args.path
    with open_slide(path) as slide:
        info = slide.info()
    if args.json:
        print(json.dumps(info, indent=2, ensure_ascii=False))
    else:
        print(format_info(info))
    return 0


def format_info(info: dict) -> str:
    """A readable summary of ``Slide.info()``."""
    mpp = info.get("mpp")
    lines = [
        f"path:     {info.get('path')}",
        f"format:   {info['format']}",
        f"size:     {info['width']} x {info['height']} px"
        + (f"  ({info['width'] * mpp[0] / 1000:.2f} x {info['height'] * mpp[1] / 1000:.2f} mm)"
           if mpp else ""),
        f"µm/px:    {mpp[0]:.4g} x {mpp[1]:.4g}" if mpp else "µm/px:    unknown",
        f"planes:   {len(info['planes_um'])} at z = "
        + ", ".join(f"{z:+.3g}" for z in info["planes_um"]) + " µm",
        f"levels:   {len(info['levels'])}",
    ]
    for i, lv in enumerate(info["levels"]):
        lines.append(f"  [{i}] {lv['width']} x {lv['height']} px, downsample {lv['downsample']:.4g}")
    if info.get("display_range"):
        lo, hi = info["display_range"]
        src = (info.get("properties") or {}).get("display.range_source", "")
        lines.append(f"display:  samples {lo:.6g} to {hi:.6g} shown as 0 to 255"
                     + (f" ({src})" if src else ""))
    for note in info.get("notes") or ():
        lines.append(f"note:     {note}")
    if info.get("associated_images"):
        lines.append("associated images: " + ", ".join(info["associated_images"]))
    props = info.get("properties") or {}
    if props:
        lines.append(f"properties ({len(props)}):")
        for key in sorted(props):
            value = props[key].replace("\n", " ")
            lines.append(f"  {key} = {value[:100]}{'…' if len(value) > 100 else ''}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- snapshot
def parse_region(text: str) -> tuple[int, int, int, int]:
    try:
        x, y, w, h = (int(v) for v in text.split(","))
    except ValueError:
        raise UserError(f"--region must be X,Y,W,H integers, got {text!r}") from None
    if w <= 0 or h <= 0:
        raise UserError(f"--region width and height must be positive, got {w}x{h}")
    if w * h > 100_000_000:
        raise UserError(f"--region {w}x{h} px is too large for a snapshot (limit 100 Mpx)")
    return x, y, w, h


def snapshot_command(args: argparse.Namespace) -> int:
    from PIL import Image

    x, y, w, h = parse_region(args.region)
    if not args.out.lower().endswith(".png"):
        raise UserError(f"{args.out}: --out must name a .png file")
    if args.save_focus_map and not args.all_in_focus:
        raise UserError("--save-focus-map goes with --all-in-focus")
    with open_slide(args.path) as slide:
        if not 0 <= args.level < slide.level_count:
            raise UserError(f"{slide.path}: level {args.level} does not exist "
                            f"(levels 0..{slide.level_count - 1})")
        if args.focus_map or args.all_in_focus:
            pixels, what = _focus_mapped_pixels(slide, args, (x, y, w, h))
        else:
            if args.plane is None and args.z is not None and not _on_a_plane(slide, args.z):
                return _write(_refocused_pixels(slide, args, (x, y, w, h)), args, w, h)
            if args.plane is None:
                plane = slide.nearest_plane(args.z if args.z is not None else 0.0)
            elif 0 <= args.plane < slide.plane_count:
                plane = args.plane
            else:
                raise UserError(f"{slide.path}: plane {args.plane} does not exist "
                                f"(planes 0..{slide.plane_count - 1})")
            pixels = slide.read_region(args.level, x, y, w, h, plane)
            what = f"plane {plane} (z = {slide.planes_um[plane]:+g} µm)"
    return _write((pixels, what), args, w, h)


def _write(result: tuple[np.ndarray, str], args, w: int, h: int) -> int:
    from PIL import Image

    pixels, what = result
    try:
        Image.fromarray(pixels).save(args.out)
    except OSError as exc:
        raise UserError(f"{args.out}: cannot write ({exc.strerror or exc})") from exc
    print(f"wrote {args.out}: {w}x{h} px, level {args.level}, {what}", file=sys.stderr)
    return 0


def _on_a_plane(slide, z_um: float) -> bool:
    """Whether ``z_um`` is a captured plane's z (as the viewer's knob matches it, µm)."""
    from ..refocus.refocused_slide import ON_PLANE_UM

    return any(abs(p - z_um) <= ON_PLANE_UM for p in slide.planes_um)


def _refocused_pixels(slide, args, region: tuple[int, int, int, int]) -> tuple[np.ndarray, str]:
    """The region at ``args.z`` off the captured planes, as the viewer shows it (`RefocusedSlide`:
    the model at level 0, the blend of the planes around z at coarser levels)."""
    import math

    from ..refocus.refocused_slide import RefocusedSlide

    if not math.isfinite(args.z):
        raise UserError(f"--z must be a finite number of µm, got {args.z}")
    x, y, w, h = region
    view = RefocusedSlide(slide, args.z)
    how = "refocused by the model" if args.level == 0 else "blend of the planes around z (coarse level)"
    return view.read_region(args.level, x, y, w, h), f"z = {args.z:+g} µm, {how}"


def _focus_mapped_pixels(slide, args, region: tuple[int, int, int, int]) -> tuple[np.ndarray, str]:
    """The region rendered at a focus map's depths (``--focus-map``) or at the estimated best
    focus (``--all-in-focus``), and a description for the report line."""
    from ..export.all_in_focus import all_in_focus_region
    from ..focusmap import FocusMap, FocusMapError
    from ..refocus.focus_mapped_slide import FocusMappedSlide

    x, y, w, h = region
    if args.all_in_focus:
        if args.level != 0:
            raise UserError(f"--all-in-focus reads level 0 (the depths are found at full resolution); got --level {args.level}")
        if args.save_focus_map and not args.save_focus_map.lower().endswith(".npz"):
            raise UserError(f"{args.save_focus_map}: --save-focus-map must name a .npz file")
        try:
            result = all_in_focus_region(slide, region)
        except ValueError as exc:
            raise UserError(str(exc)) from None
        if args.save_focus_map:
            try:
                result.focus_map.save(args.save_focus_map)
            except OSError as exc:
                raise UserError(f"{args.save_focus_map}: cannot write ({exc.strerror or exc})") from exc
        return result.pixels, result.describe()
    try:
        fm = FocusMap.load(args.focus_map, size=slide.dimensions)
    except FocusMapError as exc:
        raise UserError(str(exc)) from None
    return FocusMappedSlide(slide, fm).read_region(args.level, x, y, w, h), f"focus map {args.focus_map}"
