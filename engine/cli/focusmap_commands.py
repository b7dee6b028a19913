"""`finefocus focusmap export` and `finefocus focusmap import`: focus maps to and from other tools.

* ``finefocus focusmap export MAP.npz (--geojson OUT.geojson | --tiff OUT.tiff) [--step UM]
  [--slide SLIDE]`` — a FineFocus focus map as QuPath-importable GeoJSON (one annotation per
  depth, quantised to ``--step`` µm, coordinates in level-0 px, the depth in
  ``properties.focus_um``) or as a float32 TIFF of its cells (exact; NaN = not painted). With
  ``--slide`` the map must fit that slide, its µm per px go into the file and each GeoJSON
  geometry names the captured plane nearest its depth in QuPath's ``plane.z``.
* ``finefocus focusmap import IN.(geojson|tiff) --slide SLIDE --out MAP.npz [--stride PX]
  [--default-um UM]`` — the other way; the file must fit the slide. ``--stride`` and
  ``--default-um`` are for files that do not say (a QuPath export, a foreign TIFF).

Formats and limits: `engine.focusmap.geojson`, `engine.focusmap.tiff`. A file that cannot be
taken is one line naming it and the reason (exit 2), and the output is written only once the
input was read in full (a ``.part`` file renamed), so a bad import never replaces a map.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import UserError


def register(sub) -> None:
    p = sub.add_parser("focusmap", help="export a focus map to GeoJSON / TIFF, or import one",
                       description="Exchange focus maps with other tools: QuPath GeoJSON annotations "
                                   "and float32 TIFF.")
    fsub = p.add_subparsers(dest="focusmap_command", metavar="ACTION")
    p.set_defaults(handler=lambda args: (p.print_help(), 2)[1])

    e = fsub.add_parser("export", help="write a focus map (.npz) as GeoJSON or TIFF",
                        description="Write a FineFocus focus map as QuPath-importable GeoJSON (one annotation "
                                    "per depth, coordinates in level-0 px, the depth in properties.focus_um) "
                                    "or as a float32 TIFF of its cells (exact; NaN = not painted).")
    e.add_argument("map", metavar="MAP.npz", help="a FineFocus focus map")
    out = e.add_mutually_exclusive_group(required=True)
    out.add_argument("--geojson", metavar="OUT.geojson", help="write QuPath GeoJSON here")
    out.add_argument("--tiff", metavar="OUT.tiff", help="write a float32 TIFF here")
    e.add_argument("--step", type=float, default=None, metavar="UM",
                   help="GeoJSON: depths are rounded to multiples of this many µm (default 0.05)")
    e.add_argument("--slide", metavar="SLIDE",
                   help="the map's slide: checked to fit, its µm per px written, and QuPath's plane.z "
                        "set to the captured plane nearest each depth")
    e.set_defaults(handler=export_command)

    i = fsub.add_parser("import", help="read a GeoJSON or TIFF focus map into a .npz",
                        description="Read a focus map from QuPath GeoJSON (properties.focus_um, "
                                    "measurements.focus_um or a 'Focus +1.25 µm' class) or a float32 TIFF, "
                                    "for a slide, and write it as a FineFocus focus map.")
    i.add_argument("path", metavar="IN", help="a .geojson / .json or .tif / .tiff file")
    i.add_argument("--slide", required=True, metavar="SLIDE", help="the slide the map is for")
    i.add_argument("--out", required=True, metavar="MAP.npz", help="where to write the focus map")
    i.add_argument("--stride", type=int, default=None, metavar="PX",
                   help="level-0 px per map cell, for files that do not say (default 32)")
    i.add_argument("--default-um", type=float, default=None, metavar="UM",
                   help="focus (µm) where nothing is painted, for files that do not say (default 0)")
    i.set_defaults(handler=import_command)


def _output(path: str, suffixes: tuple[str, ...], option: str) -> Path:
    p = Path(path)
    if p.suffix.lower() not in suffixes:
        raise UserError(f"{path}: {option} must name a {' or '.join(suffixes)} file")
    if not p.parent.is_dir():
        raise UserError(f"{path}: folder {p.parent} does not exist")
    if p.is_dir():
        raise UserError(f"{path}: is a folder")
    return p


def export_command(args: argparse.Namespace) -> int:
    from ..focusmap import FocusMap, FocusMapError
    from ..focusmap.geojson import GEOJSON_STEP_UM, write_geojson
    from ..focusmap.tiff import write_tiff

    if args.geojson:
        out = _output(args.geojson, (".geojson", ".json"), "--geojson")
    else:
        out = _output(args.tiff, (".tif", ".tiff"), "--tiff")
        if args.step is not None:
            raise UserError("--step goes with --geojson (a TIFF keeps every depth exactly)")
    planes = mpp = size = None
    if args.slide:
        from ..slides import open_slide

        with open_slide(args.slide) as slide:
            planes, mpp, size = list(slide.planes_um), slide.mpp, slide.dimensions
    try:
        fm = FocusMap.load(args.map, size=size)
        if args.geojson:
            step = GEOJSON_STEP_UM if args.step is None else args.step
            summary = write_geojson(fm, out, step_um=step, planes_um=planes, mpp=mpp)
            what = f"{summary.features} annotations of equal depth (step {step:g} µm), {summary.vertices:,} vertices"
        else:
            write_tiff(fm, out, mpp=mpp)
            rows, cols = fm.shape
            what = f"{cols} × {rows} cells of {fm.stride} px, float32 µm"
    except FocusMapError as exc:
        raise UserError(str(exc)) from None
    except OSError as exc:
        raise UserError(f"{out}: cannot write ({exc.strerror or exc})") from None
    print(f"wrote {out}: {what}", file=sys.stderr)
    return 0


def import_command(args: argparse.Namespace) -> int:
    from ..focusmap import FocusMapError
    from ..focusmap.exchange import import_focus_map, kind_of
    from ..slides import open_slide

    out = _output(args.out, (".npz",), "--out")
    if args.stride is not None and not 1 <= args.stride <= 4096:
        raise UserError(f"--stride must be 1 to 4096 level-0 px, got {args.stride}")
    try:
        if kind_of(args.path) == "npz":
            raise FocusMapError(f"{args.path}: already a FineFocus focus map; import reads .geojson or .tif(f)")
        with open_slide(args.slide) as slide:
            fm = import_focus_map(args.path, slide.dimensions, stride=args.stride, default_um=args.default_um)
        fm.save(out)
    except FocusMapError as exc:
        raise UserError(str(exc)) from None
    except OSError as exc:
        raise UserError(f"{out}: cannot write ({exc.strerror or exc})") from None
    rows, cols = fm.shape
    print(f"wrote {out}: {int(fm.painted.sum()):,} of {rows * cols:,} cells painted "
          f"({fm.stride} px per cell), from {args.path}", file=sys.stderr)
    return 0
