"""`finefocus` headless command line: the front door of the engine.

Each subcommand lives in a small module of this package that exposes
``register(subparsers)``; the handler it sets returns an exit status. A user's mistake
(a bad file, a bad argument) prints one line naming the file and the reason and exits 2,
with no traceback. The viewer commands (`finefocus [PATH]`, `finefocus view`) are added by
``app.cli``, which wraps this parser: the engine never imports the app.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from ..slides.base import SlideError

#: Modules of this package that register subcommands, in the order `--help` lists them.
COMMAND_MODULES = (
    "slide_commands", "phantom_commands", "fqa_commands", "fusion_commands", "refocus_commands",
    "focusmap_commands",
    "export_commands",
    "qc_commands",
)

EXIT_USER_ERROR = 2


class UserError(Exception):
    """A mistake in the user's input: printed as one line, exit status 2."""


def check_output_path(path: str, suffix: str, option: str):
    """``path`` as a Path if it names a ``suffix`` file in an existing folder, else a UserError
    naming ``option``."""
    from pathlib import Path

    p = Path(path)
    if p.suffix.lower() != suffix:
        raise UserError(f"{path}: {option} must name a {suffix} file")
    if not p.parent.is_dir():
        raise UserError(f"{path}: folder {p.parent} does not exist")
    return p


def save_png(path, rgb) -> None:
    """Write a uint8 image to ``path`` as PNG; a path that cannot be written is a UserError."""
    from PIL import Image

    try:
        Image.fromarray(rgb).save(path)
    except OSError as exc:
        raise UserError(f"{path}: cannot write ({exc.strerror or exc})") from exc


def progress_printer(enabled: bool, label: str = ""):
    """A ``progress(fraction)`` callback printing every 10 % to stderr, or None when disabled."""
    if not enabled:
        return None
    last = [-1]
    prefix = f"{label} " if label else ""

    def report(f: float) -> None:
        pct = int(f * 100) // 10 * 10
        if pct != last[0]:
            last[0] = pct
            print(f"  {prefix}{pct}%", file=sys.stderr, flush=True)
    return report


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="finefocus",
        description="FineFocus: whole-slide viewer with a virtual fine-focus knob.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:  # a command group not built yet
            if exc.name == f"{__name__}.{name}":
                continue
            raise
        module.register(sub)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run a parsed command, turning user errors into one line on stderr and exit 2."""
    try:
        return int(args.handler(args) or 0)
    except (SlideError, UserError, FileNotFoundError, PermissionError, IsADirectoryError) as exc:
        print(f"finefocus: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. `finefocus info --json | head`
        sys.stderr.close()
        return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return EXIT_USER_ERROR
    return run(args)
