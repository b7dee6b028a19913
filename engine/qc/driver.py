"""Run a QC batch: discover slides, skip finished ones, compute the rest on Dask distributed (or in
this process), write each result as it arrives, and the TSV and HTML report.

Where the work runs:

* default: a `distributed.LocalCluster` on this machine, ``workers`` processes (default: one per
  core) with one thread each, listening on 127.0.0.1 only;
* ``scheduler``: an existing cluster, by address (``tcp://host:port``) or scheduler file (the JSON
  ``dask scheduler --scheduler-file`` writes). Its workers must see the slides at the same absolute
  paths; results come back to this process, which alone writes into the output folder;
* ``workers=0``: no Dask, every task in this process in order (the reference the Dask runs equal).

Tasks: one `compute.plan_slide` per slide, then one `compute.compute_chunk` per tile chunk
(`engine.qc.plan`; a large slide's chunks spread over every worker) and one `finish.finish_slide`
that depends on them all. A failing task (a bad slide, a chunk that cannot be read) gives that
slide an error row; the batch goes on.
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from .compute import compute_chunk, plan_slide
from .config import QcConfig
from .discover import discover_slides
from .finish import finish_slide
from .outputs import error_row, finished_row, write_result, write_tsv
from .progress import ProgressBar


#: Priority of a slide's finishing task over any chunk (plans come first of all).
FINISH_PRIORITY = 10**9


class QcSetupError(ValueError):
    """The batch cannot start (no slides found, no scheduler at the address...): one line."""


@dataclass
class QcRun:
    """What a batch did: ``rows`` in discovery order; ``computed`` slides (not skipped) and the
    level-0 Mpx they hold over all planes; wall-clock ``seconds`` of the computation."""

    out: Path
    rows: list[dict]
    computed: int = 0
    skipped: int = 0
    errors: int = 0
    megapixels: float = 0.0
    seconds: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)


def describe_error(exc: BaseException) -> str:
    """One line for a failed slide: a slide error's own message (it names the file), else the
    exception's type and message."""
    from ..slides.base import SlideError

    text = str(exc) if isinstance(exc, SlideError) else f"{type(exc).__name__}: {exc}"
    return " ".join(text.split()) or type(exc).__name__


def run_qc(inputs: Sequence[str | os.PathLike], out: str | os.PathLike, *, scheduler: str | None = None,
           workers: int | None = None, config: QcConfig | None = None, progress: bool = True,
           report: bool = True) -> QcRun:
    """Check every slide of ``inputs`` (files or folders, `engine.qc.discover`) into ``out``."""
    config = config or QcConfig()
    out = Path(out).absolute()
    out.mkdir(parents=True, exist_ok=True)
    slides = discover_slides(inputs, skip=[out])
    if not slides:
        raise QcSetupError(f"{', '.join(map(str, inputs))}: no slides found")
    digest = config.digest()
    rows: dict[str, dict] = {}
    todo = []
    for p in slides:
        row = finished_row(out, str(p), digest)
        if row is not None:
            rows[str(p)] = row
        else:
            todo.append(str(p))
    bar = ProgressBar(len(slides), enabled=progress)
    for path, row in rows.items():
        bar.slide_done(path, row.get("verdict", ""), skipped=True)
    run = QcRun(out, [], skipped=len(rows))
    order = [str(p) for p in slides]

    def publish() -> None:
        run.rows = [rows[p] for p in order if p in rows]
        write_tsv(out, run.rows)
        if report:
            from .report import write_report

            write_report(out, run.rows)

    def on_result(path: str, res) -> None:
        rows[path] = write_result(out, res, digest)
        run.computed += 1
        run.megapixels += res.plan.megapixels
        bar.slide_done(path, rows[path]["verdict"])
        publish()

    def on_error(path: str, exc: BaseException) -> None:
        rows[path] = error_row(path, describe_error(exc))
        run.errors += 1
        bar.slide_done(path, "error")
        publish()

    t0 = time.perf_counter()
    try:
        if todo:
            if workers == 0 and scheduler is None:
                _run_here(todo, config, on_result, on_error, bar)
            else:
                with _client(scheduler, workers) as client:
                    _run_dask(client, todo, config, on_result, on_error, bar)
    finally:
        bar.close()
        run.seconds = time.perf_counter() - t0
        publish()
    run.counts = {}
    for r in run.rows:
        run.counts[r["verdict"]] = run.counts.get(r["verdict"], 0) + 1
    return run


def _run_here(todo: list[str], config: QcConfig, on_result: Callable, on_error: Callable, bar: ProgressBar) -> None:
    for path in todo:
        try:
            plan = plan_slide(path, config)
            bar.add_chunks(len(plan.chunks))
            chunks = []
            for i in range(len(plan.chunks)):
                chunks.append(compute_chunk(plan, i, config))
                bar.chunk_done()
            res = finish_slide(plan, config, *chunks)
        except Exception as exc:  # noqa: BLE001 - one bad slide never stops the batch
            on_error(path, exc)
            continue
        on_result(path, res)


class _client:
    """A `distributed.Client` on ``scheduler`` or on a new LocalCluster of ``workers`` processes."""

    def __init__(self, scheduler: str | None, workers: int | None):
        self.scheduler, self.workers = scheduler, workers
        self.cluster = self.client = None

    def __enter__(self):
        from distributed import Client, LocalCluster

        if self.scheduler:
            kw = ({"scheduler_file": self.scheduler} if Path(self.scheduler).is_file()
                  else {"address": self.scheduler})
            try:
                self.client = Client(timeout="10s", **kw)
            except (OSError, TimeoutError, ValueError) as exc:
                raise QcSetupError(f"{self.scheduler}: cannot reach the Dask scheduler ({describe_error(exc)})") from exc
            return self.client
        n = self.workers if self.workers else (os.cpu_count() or 1)
        self.cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                                    dashboard_address=None, silence_logs=logging.CRITICAL)
        self.client = Client(self.cluster)
        return self.client

    def __exit__(self, *exc):
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def _run_dask(client, todo: list[str], config: QcConfig, on_result: Callable, on_error: Callable,
              bar: ProgressBar) -> None:
    from distributed import as_completed

    kind: dict = {}  # future → (what, path)
    n = len(todo)
    pending = as_completed()
    for k, path in enumerate(todo):
        f = client.submit(plan_slide, path, config, pure=False, priority=2 * FINISH_PRIORITY + n - k)
        kind[f] = ("plan", path, k)
        pending.add(f)
    for f in pending:
        what, path, k = kind.pop(f)
        if what == "chunk":
            bar.chunk_done()
            continue
        if f.status != "finished":
            exc = f.exception()
            on_error(path, exc if exc is not None else RuntimeError(f"task {f.status}"))
            continue
        if what == "plan":
            plan = f.result()
            bar.add_chunks(len(plan.chunks))
            # Largest slides first (their chunks, then their fit, the longest task of a slide),
            # so the batch does not end on one big slide while the other workers idle.
            size = int(plan.megapixels * 100)
            chunks = [client.submit(compute_chunk, f, i, config, pure=False, priority=size)
                      for i in range(len(plan.chunks))]
            done = client.submit(finish_slide, f, config, *chunks, pure=False, priority=FINISH_PRIORITY + size)
            for c in chunks:
                kind[c] = ("chunk", path, k)
                pending.add(c)
            kind[done] = ("finish", path, k)
            pending.add(done)
        else:
            on_result(path, f.result())
