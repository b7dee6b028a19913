"""`finefocus export ...`: whole-slide (or region) exports as pyramidal, tiled OME-TIFF.

    finefocus export aif SLIDE --out OUT.ome.tiff [--region X,Y,W,H] [--save-focus-map MAP.npz]
    finefocus export refocus SLIDE (--z UM | --focus-map MAP.npz) --out OUT.ome.tiff [--region X,Y,W,H]
    finefocus export depthmap SLIDE --out DEPTH.ome.tiff [--region X,Y,W,H]
        [--tile PX] [--compression zlib|jpeg|none] [--resume] [--quiet]

Progress goes to stderr (stage, done/total, seconds per tile, ETA). Ctrl-C stops after the tile
being computed: the finished tiles stay in OUT.partial (+ OUT.partial.json), OUT is not written,
and the same command with ``--resume`` continues without computing them again (exit 130 when
stopped). The engine side is `engine.export.whole_slide`.
"""
from __future__ import annotations

import signal
import sys
import threading
import time
from pathlib import Path

from . import UserError

__all__ = ["register", "ExportProgress"]

#: Least seconds between two progress updates on a terminal (the last of a stage always shows).
TTY_EVERY_S = 0.1
STAGE_UNITS = {"depth": "depth chunks", "tiles": "tiles", "pyramid": "pyramid tiles", "write": "tiles written"}


def register(sub) -> None:
    p = sub.add_parser("export", help="whole-slide exports as pyramidal OME-TIFF: aif, refocus, depthmap",
                       description="Compute a whole slide (or a region) tile by tile and write a pyramidal, "
                                   "tiled OME-TIFF with its µm per px. Ctrl-C stops cleanly between tiles; "
                                   "--resume continues an interrupted export.")
    esub = p.add_subparsers(dest="export_command", metavar="KIND")
    p.set_defaults(handler=lambda args: (p.print_help(), 2)[1])

    def common(q, out_help: str) -> None:
        q.add_argument("slide", metavar="SLIDE", help="slide file or folder, or phantom:<spec>")
        q.add_argument("--out", required=True, metavar="OUT.ome.tiff", help=out_help)
        q.add_argument("--region", metavar="X,Y,W,H", help="level-0 px (default: the whole slide)")
        q.add_argument("--tile", type=int, default=512, help="tile edge in px, a multiple of 16 (default 512)")
        q.add_argument("--compression", choices=("zlib", "jpeg", "none"), default="zlib",
                       help="zlib (lossless, default), jpeg (lossy, RGB only) or none")
        q.add_argument("--resume", action="store_true",
                       help="continue the interrupted export to OUT (OUT.partial) without recomputing its tiles")
        q.add_argument("--quiet", action="store_true", help="no progress on stderr")

    a = esub.add_parser("aif", help="all in focus: every place at its own best focus (multi-plane slides)",
                        description="Every place at the depth where FocusLiteNN finds the captured planes "
                                    "sharpest, rendered by the virtual refocusing model (as snapshot --all-in-focus).")
    common(a, "the OME-TIFF to write (RGB)")
    a.add_argument("--save-focus-map", metavar="MAP.npz", help="also write the focus map that was rendered")
    a.set_defaults(handler=_aif)

    r = esub.add_parser("refocus", help="the slide refocused to one z (or a focus map's) everywhere",
                        description="The slide at one focus everywhere (a captured plane's z: that plane), or "
                                    "at a focus map's focus, by the virtual refocusing model.")
    common(r, "the OME-TIFF to write (RGB)")
    focus = r.add_mutually_exclusive_group(required=True)
    focus.add_argument("--z", type=float, metavar="UM", help="focus in µm (the slide's plane frame)")
    focus.add_argument("--focus-map", metavar="MAP.npz", help="a FineFocus focus map of this slide")
    r.set_defaults(handler=_refocus)

    d = esub.add_parser("depthmap", help="the best-focus z (µm) as a float32 map (multi-plane slides)",
                        description="The best-focus depth z* in µm that the all-in-focus export renders, "
                                    "float32, one px per 32 level-0 px focus-map cell, NaN on glass.")
    common(d, "the OME-TIFF to write (float32, one channel)")
    d.set_defaults(handler=_depthmap)


# ---------------------------------------------------------------------------- progress
class ExportProgress:
    """``progress(stage, done, total)`` for the engine: on a terminal one line per stage,
    rewritten in place (at most every ``TTY_EVERY_S``); otherwise a line at the start and end
    of each stage and at most every ``every_s`` seconds between. Seconds per item and the ETA
    count only what this run computed (not what a resume took over)."""

    def __init__(self, label: str, stream=None, every_s: float = 5.0):
        self.label, self.stream, self.every_s = label, stream or sys.stderr, every_s
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.stage = None
        self.open_line = False
        self.start_done = 0
        self.t0 = self.last = 0.0

    def __call__(self, stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        if not total:
            return
        if stage != self.stage:
            if self.open_line:
                self.stream.write("\n")
            self.stage, self.start_done, self.t0, self.last = stage, done, now, -1e9
        every = TTY_EVERY_S if self.tty else self.every_s
        if now - self.last < every and done not in (self.start_done, total):
            return
        self.last = now
        pct = 100 * done // total if total else 100
        line = f"{self.label}: {STAGE_UNITS.get(stage, stage)} {done}/{total} ({pct}%)"
        made = done - self.start_done
        if made > 0:
            per = (now - self.t0) / made
            line += f", {per:.2f} s each"
            if done < total:
                line += f", ETA {_clock(per * (total - done))}"
        if self.tty:
            self.stream.write("\r" + line.ljust(78) + ("\n" if done == total else ""))
            self.open_line = done != total
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


def _clock(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


class _StopOnCtrlC:
    """While active, the first Ctrl-C (SIGINT) asks the export to stop after the tile being
    computed (``self()`` turns True); a second one stops at once (KeyboardInterrupt)."""

    def __init__(self):
        self.stop = threading.Event()
        self._old = None

    def __call__(self) -> bool:
        return self.stop.is_set()

    def _on_sigint(self, signum, frame) -> None:
        if self.stop.is_set():
            raise KeyboardInterrupt
        self.stop.set()
        print("\nfinefocus: stopping after the current tile (Ctrl-C again to stop at once)",
              file=sys.stderr, flush=True)

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, self._on_sigint)
        return self

    def __exit__(self, *exc) -> None:
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)


# ---------------------------------------------------------------------------- commands
def _region(text: str | None):
    if text is None:
        return None
    try:
        x, y, w, h = (int(v) for v in text.split(","))
    except ValueError:
        raise UserError(f"--region must be X,Y,W,H integers, got {text!r}") from None
    if w <= 0 or h <= 0:
        raise UserError(f"--region width and height must be positive, got {w}x{h}")
    return x, y, w, h


def _out(path: str) -> Path:
    p = Path(path)
    if p.suffix.lower() not in (".tif", ".tiff"):
        raise UserError(f"{path}: --out must name a .ome.tiff (or .tif) file")
    if p.is_dir():
        raise UserError(f"{path}: --out is a folder; the export is one file")
    if not p.parent.is_dir():
        raise UserError(f"{path}: folder {p.parent} does not exist")
    return p


def _run(args, kind: str, export) -> int:
    """Open the slide, run ``export(slide, out, **common)`` under Ctrl-C handling, report."""
    from ..export.whole_slide import ExportError, ExportInterrupted, partial_paths
    from ..slides import open_slide

    out = _out(args.out)
    region = _region(args.region)
    data, sidecar = partial_paths(out)
    if not args.resume and (data.exists() or sidecar.exists()):
        raise UserError(f"{data}: an interrupted export to {out.name} is there; continue it with --resume, "
                        f"or delete {data.name} and {sidecar.name} to start over")
    if args.resume and not sidecar.exists():
        print(f"finefocus: nothing to resume for {out} (no {sidecar.name}): starting",
              file=sys.stderr)
    progress = None if args.quiet else ExportProgress(f"export {kind}")
    with open_slide(args.slide) as slide, _StopOnCtrlC() as stop:
        try:
            result = export(slide, out, region=region, tile=args.tile, compression=args.compression,
                            resume=args.resume, progress=progress, cancelled=stop)
        except ExportError as exc:
            raise UserError(str(exc)) from None
        except ExportInterrupted as exc:
            print(f"finefocus: interrupted: {exc.stage} {exc.done}/{exc.total} done; kept in {exc.partial} "
                  f"(+ .json). Run the same command with --resume to continue.", file=sys.stderr)
            return 130
    w, h = result.size
    mpp = f"{result.mpp[0]:.4g} µm/px" if result.mpp else "µm/px unknown"
    unit = "depth chunks and tiles" if kind == "aif" else ("depth chunks" if kind == "depthmap" else "tiles")
    per = f" ({result.seconds / result.computed:.2f} s each)" if result.computed else ""
    reused = f", {result.reused} reused from the interrupted export" if args.resume else ""
    print(f"wrote {out}: {w}x{h} px, {result.levels} level{'s' if result.levels != 1 else ''}, {mpp}, "
          f"{result.what}; {result.computed} {unit} computed{per}{reused}, {result.seconds:.1f} s",
          file=sys.stderr)
    if getattr(args, "save_focus_map", None):
        try:
            result.focus_map.save(args.save_focus_map)
        except OSError as exc:
            raise UserError(f"{args.save_focus_map}: cannot write ({exc.strerror or exc})") from exc
    return 0


def _aif(args) -> int:
    from ..export.whole_slide import export_all_in_focus

    if args.save_focus_map and not args.save_focus_map.lower().endswith(".npz"):
        raise UserError(f"{args.save_focus_map}: --save-focus-map must name a .npz file")
    return _run(args, "aif", export_all_in_focus)


def _refocus(args) -> int:
    import math

    from ..export.whole_slide import export_refocused

    if args.z is not None:
        if not math.isfinite(args.z):
            raise UserError(f"--z must be a finite number of µm, got {args.z}")
        return _run(args, "refocus", lambda slide, out, **kw: export_refocused(slide, out, z_um=args.z, **kw))

    def with_map(slide, out, **kw):
        from ..focusmap import FocusMap, FocusMapError

        try:
            fm = FocusMap.load(args.focus_map, size=slide.dimensions)
        except FocusMapError as exc:
            raise UserError(str(exc)) from None
        return export_refocused(slide, out, focus_map=fm, **kw)
    return _run(args, "refocus", with_map)


def _depthmap(args) -> int:
    from ..export.whole_slide import export_depth_map

    if args.compression == "jpeg":
        raise UserError(f"{args.out}: a depth map is float32; --compression jpeg is for 8-bit images")
    return _run(args, "depthmap", export_depth_map)
