"""`finefocus qc SLIDES_OR_FOLDERS... --out DIR [--scheduler ADDRESS] [--workers N]`: batch focus QC.

Per slide: the FocusLiteNN heatmap over tissue and its estimated defocus in µm, the fused-IQA
heatmap, the best-focus depth map (multi-plane slides), the out-of-focus fraction of the tissue and
a verdict (pass / review / rescan; thresholds in `engine.qc.verdict`). Writes ``DIR/qc.tsv``,
``DIR/report.html`` and ``DIR/slides/<id>/`` (heatmaps .npy, overlays .png; `engine.qc.outputs`).
Finished slides are skipped when the command is run again. Exit status 0 when every slide was
checked, 1 when some had errors (their rows say why), 2 for a usage mistake.
"""
from __future__ import annotations

import argparse
import sys

from . import UserError


def register(sub) -> None:
    p = sub.add_parser("qc", help="batch focus QC of many slides (TSV + HTML report), on Dask",
                       description="Focus QC of every slide in the files and folders given: heatmaps, "
                                   "out-of-focus fraction and a pass / review / rescan verdict per slide.")
    p.add_argument("inputs", nargs="+", metavar="SLIDES_OR_FOLDERS",
                   help="slide files or folders (searched recursively for slides)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created; a rerun resumes)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="an existing Dask scheduler: tcp://host:port or a scheduler file "
                        "(default: a local cluster on this machine)")
    p.add_argument("--workers", type=int, metavar="N",
                   help="worker processes of the local cluster (1 thread each; default: one per core; "
                        "0 = no Dask, in this process)")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(handler=qc_command)


def qc_command(args: argparse.Namespace) -> int:
    from ..qc.discover import NoSuchInput
    from ..qc.driver import QcSetupError, run_qc

    if args.workers is not None and args.workers < 0:
        raise UserError(f"--workers {args.workers}: must be 0 or more")
    if args.scheduler and args.workers is not None:
        raise UserError("--workers sizes the local cluster; it cannot be combined with --scheduler")
    try:
        run = run_qc(args.inputs, args.out, scheduler=args.scheduler, workers=args.workers,
                     progress=not args.quiet)
    except (NoSuchInput, QcSetupError) as exc:
        raise UserError(str(exc)) from None
    except FileExistsError as exc:
        raise UserError(f"{args.out}: cannot create the output folder ({exc.strerror})") from None
    counts = ", ".join(f"{n} {v}" for v, n in sorted(run.counts.items()))
    print(f"{len(run.rows)} slides ({counts}); {run.computed + run.errors} checked now, {run.skipped} done before; "
          f"{run.out / 'qc.tsv'}, {run.out / 'report.html'}", file=sys.stdout)
    return 1 if run.errors or any(r.get("verdict") == "error" for r in run.rows) else 0
