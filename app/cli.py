"""The `finefocus` console script: the engine's headless commands plus the viewer.

* ``finefocus [PATH]`` opens the viewer on PATH (no PATH: the built-in virtual slide);
* ``finefocus view [PATH] --screenshot OUT.png`` opens the real window offscreen, waits until
  the visible tiles are painted, saves a PNG of the window and exits 0;
* every other subcommand is the engine's (``engine.cli``).

A bad PATH prints one line naming the file and the reason and exits 2; so does a missing system
library of Qt's xcb plugin when the window would use X11 (``app/system_check.py``). Qt is imported only when
a window is needed, so headless commands run without a display.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from engine import cli as engine_cli
from engine.cli import EXIT_USER_ERROR, UserError

USAGE_NOTE = ("Run `finefocus [PATH]` to open the viewer on PATH (no PATH: the built-in "
              "virtual slide).")


def build_parser() -> argparse.ArgumentParser:
    """The engine's parser with the `view` subcommand added."""
    parser = engine_cli.build_parser()
    parser.epilog = USAGE_NOTE
    parser.add_argument("--self-test", action="store_true",
                        help="open the built-in slide, refocus a tile, compute a heatmap tile, exit 0 if all work")
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    view = sub.add_parser("view", help="open the viewer; with --screenshot, save a PNG of it and exit",
                          description="Open the viewer on PATH (default: the built-in slide).")
    view.add_argument("path", nargs="?", metavar="PATH", help="slide file or folder")
    view.add_argument("--screenshot", metavar="OUT.png", type=Path,
                      help="render the window offscreen, wait until painted, save it, exit")
    view.add_argument("--size", default="1280x800", metavar="WxH", help="window size for --screenshot (px)")
    view.add_argument("--z", type=float, metavar="µm", help="focus (µm): a captured plane as scanned, any other z refocused by the model")
    view.add_argument("--region", metavar="X,Y,W,H",
                      help="show this rectangle (level-0 px) instead of the whole slide")
    view.add_argument("--overlay", metavar="KEY",
                      help="show an overlay: focuslitenn-1, metric:NAME, depth, fused, … (View ▸ Overlay)")
    view.add_argument("--opacity", type=float, metavar="0..1", help="overlay opacity (default 0.5)")
    view.add_argument("--timeout", type=float, default=300.0, metavar="S",
                      help="give up waiting for tiles after S seconds (default 300)")
    view.set_defaults(handler=view_command)
    return parser


def _open(path: str | None):
    from engine.slides import open_slide

    return open_slide(path)


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise UserError(f"--size {text}: expected WxH, e.g. 1280x800") from None
    if not (64 <= w <= 8192 and 64 <= h <= 8192):
        raise UserError(f"--size {text}: width and height must be 64..8192 px")
    return w, h


def _region(text: str | None) -> tuple[float, float, float, float] | None:
    if text is None:
        return None
    try:
        x, y, w, h = (float(v) for v in text.split(","))
    except ValueError:
        raise UserError(f"--region {text}: expected X,Y,W,H in level-0 px") from None
    if w <= 0 or h <= 0:
        raise UserError(f"--region {text}: width and height must be positive")
    return x, y, w, h


def _check_overlay(key: str | None, slide) -> None:
    """A UserError unless overlay ``key`` exists and suits ``slide``."""
    if key is None:
        return
    from .overlays.registry import overlay_kind

    try:
        kind = overlay_kind(key)
    except KeyError as exc:
        raise UserError(f"--overlay {key}: {exc.args[0]}") from None
    if not kind.available(slide):
        raise UserError(f"{slide.path or 'the slide'}: overlay {key!r} needs at least "
                        f"{kind.min_planes} focal planes, the slide has {slide.plane_count}")


def viewer_argv(argv: list[str], commands) -> list[str]:
    """``finefocus [PATH]`` means ``finefocus view [PATH]``; other command lines are unchanged."""
    if not argv or (argv[0] not in commands and not argv[0].startswith("-")):
        return ["view", *argv]
    return argv


def view_command(args: argparse.Namespace) -> int:
    """Open the slide first (a bad file is one line and exit 2, before any window), then the
    window; or, with --screenshot, paint it offscreen and save it."""
    size = _size(args.size)
    region = _region(args.region)
    if args.screenshot is not None:
        out = args.screenshot
        if out.parent and not out.parent.exists():
            raise UserError(f"{out}: folder {out.parent} does not exist")
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    if args.opacity is not None and not 0 <= args.opacity <= 1:
        raise UserError(f"--opacity {args.opacity:g}: must lie in 0..1")
    slide = _open(args.path)
    _check_overlay(args.overlay, slide)
    from .system_check import EXIT_MISSING_LIBRARIES, check_xcb

    problem = check_xcb()           # on X11: Qt's xcb plugin's system libraries, before any window
    if problem is not None:
        print(problem, file=sys.stderr)
        return EXIT_MISSING_LIBRARIES
    if args.screenshot is None:
        from .main import run_viewer

        return run_viewer(slide, z_um=args.z, region=region, overlay=args.overlay, opacity=args.opacity)
    from .main import screenshot

    elapsed = screenshot(slide, args.screenshot, size=size, z_um=args.z, region=region,
                         timeout_s=args.timeout, overlay=args.overlay, opacity=args.opacity)
    if elapsed is None:
        print(f"finefocus: error: {args.screenshot}: tiles still loading after {args.timeout:g} s; "
              "saved what was painted", file=sys.stderr)
        return 1
    print(f"{args.screenshot}: painted in {elapsed:.2f} s")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv == ["--self-test"]:  # built-in slide, one refocused tile, one heatmap tile (app/self_test.py)
        from .self_test import run_self_test

        return run_self_test(sys.stdout)
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    args = parser.parse_args(viewer_argv(argv, commands))
    if not getattr(args, "handler", None):
        parser.print_help()
        return EXIT_USER_ERROR
    return engine_cli.run(args)
