"""`OverlayController`: which overlay is shown over which slide and plane, built off the UI thread.

The user picks an `OverlayKind` (or none); the controller builds its source for the slide and
the focal plane shown (on the window's worker threads: a factory may load weights, and the
first use of a heatmap picks its colour scale from a few computed blocks), hands it to the
canvas, which then fetches its tiles through the tile store like the slide's, and keeps the
sources it built (per kind and plane) so that going back to a plane is instant.

* Follows the focal plane: a kind with ``follows_plane`` has one source per plane; on a plane
  change the canvas switches to that plane's source (the old pixels stay until the new ones
  arrive). All planes of a slide share the colour scale of the first one built, so colours
  compare across planes.
* A newer choice supersedes an older one still being built: its result is dropped.
* A slow factory (``reports_progress``, e.g. fitting the fusion) reports progress through
  ``progress(fraction)`` and stops when the choice is superseded.
* ``cursor_at(x, y)``: the value under the cursor (``source.scores_for_region`` at level 0),
  read on a worker; requests made while one is running collapse into the newest.
* Follows the zoom (sources with ``estimate_steps``, e.g. every heatmap of
  `engine.fqa.heatmap_source`): at a level where the source estimates its values from sampled
  patches, the canvas draws ``source.sampled(step, revision)``: first about one sample per tile
  (seconds for a whole slide), then, each time the view is settled, squares half as large, down
  to the level's finest estimate; a view moved onto places without values starts over at the
  coarse step (a new revision: what is known already shows at its own detail at once). At a
  dense level the source itself is drawn. Tiles of stages or places no longer shown are
  cancelled by the tile store, running ones at their next patch. ``work()`` says how many of
  the view's patches are scored (``changed`` is emitted, at most once a second, while it moves).
"""
from __future__ import annotations

import asyncio
import itertools
import logging
import math
import threading
from collections import OrderedDict
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass

from PySide6.QtCore import QObject, QTimer, Signal

from engine.slides.base import Slide

from .legend import value_range_of
from .registry import OverlayKind

log = logging.getLogger(__name__)

#: Sources kept per slide (each holds its own bounded cache of computed values).
MAX_SOURCES = 12

#: After a view change or a settled view, the estimate is revised this much later (ms): the
#: canvas's own refreshes of one gesture collapse into one revision.
FOLLOW_DELAY_MS = 120

#: How often the work left for the view is looked at while the overlay is not settled (ms).
WORK_POLL_MS = 1000


@dataclass(frozen=True)
class OverlayWork:
    """What the overlay shown has computed for the view: ``done`` of ``total`` patches (at an
    estimated level: the level's sampled squares, one patch each); ``estimated``: the view's
    level shows an estimate from sampled patches, squares of ``step`` × ``step`` cells at the
    finest (``shown_step`` is the size drawn now)."""

    done: int = 0
    total: int = 0
    estimated: bool = False
    step: int = 1
    shown_step: int = 1

    @property
    def complete(self) -> bool:
        return self.done >= self.total


def value_at(source: Slide, x: float, y: float) -> float:
    """The source's value at level-0 px (x, y): NaN on glass (computes it if need be)."""
    return float(source.scores_for_region(0, int(math.floor(x)), int(math.floor(y)), 1, 1)[0, 0])


class OverlayController(QObject):
    """Signals: ``changed()`` when the kind, the source shown or the preparing state changes;
    ``readout(str)`` with the text for the value under the cursor ("" for none);
    ``failed(str)`` when a source cannot be built (the overlay is turned off);
    ``progress(fraction)`` while a slow source is being built."""

    changed = Signal()
    progress = Signal(float)
    readout = Signal(str)
    failed = Signal(str)

    def __init__(self, canvas, executor: Executor, parent=None):
        super().__init__(parent)
        self.canvas = canvas
        #: Reads the value under the cursor (short jobs).
        self.executor = executor
        #: Builds sources, one at a time (a fit of the fusion may take minutes: it must not hold
        #: up the window's other one-off work, such as opening a file).
        self.build_executor = ThreadPoolExecutor(1, thread_name_prefix="finefocus-overlay")
        self.kind: OverlayKind | None = None
        self.slide: Slide | None = None
        self.plane = 0
        self._sources: OrderedDict[tuple, Slide] = OrderedDict()
        self._ranges: dict[str, tuple[float, float]] = {}  # kind key → colour scale on this slide
        self._task: asyncio.Task | None = None
        self._stop = threading.Event()  # set: the build under way (if any) is to stop
        self._cursor: tuple[float, float] | None = None
        self._readout_task: asyncio.Task | None = None
        self._shown_kind: str | None = None  # key of the kind whose source the canvas draws
        self._base: Slide | None = None  # the built source shown (the canvas may draw a sampled view of it)
        self._revision = itertools.count(1)
        self._view_key: tuple | None = None  # (level, view rect) the estimate was last revised for
        self._work = OverlayWork()
        self._follow_timer = QTimer(self, singleShot=True, interval=FOLLOW_DELAY_MS)
        self._follow_timer.timeout.connect(self._follow_view)
        self._work_timer = QTimer(self, interval=WORK_POLL_MS)
        self._work_timer.timeout.connect(self._poll_work)
        canvas.viewChanged.connect(self._schedule_follow)
        canvas.settled.connect(self._schedule_follow)

    # ------------------------------------------------------------------ state
    @property
    def source(self) -> Slide | None:
        """The source the canvas draws now."""
        return self.canvas.overlay_source

    @property
    def preparing(self) -> bool:
        """True while the chosen overlay's source is being built."""
        return self._task is not None and not self._task.done()

    def ready(self) -> bool:
        """True when the chosen overlay (or none) is what the canvas draws."""
        return not self.preparing and (self.kind is None) == (self.source is None)

    def set_slide(self, slide: Slide | None, plane: int = 0) -> None:
        """A new slide: forget the old slide's sources; keep the kind if it suits the new one."""
        self._cancel()
        for src in self._sources.values():
            self.canvas.store.forget(src)
        self._sources.clear()
        self._ranges.clear()
        self._shown_kind = None
        self._base = None
        self.slide, self.plane = slide, plane
        if self.kind is not None and not self.kind.available(slide):
            self.kind = None
        self._update()

    def set_kind(self, kind: OverlayKind | None) -> None:
        """Show overlay ``kind`` (None: no overlay)."""
        if kind is not None and not kind.available(self.slide):
            raise ValueError(f"overlay {kind.title!r} is not available for this slide")
        self.kind = kind
        self._update()

    def set_plane(self, plane: int) -> None:
        """The canvas now shows focal ``plane``: a per-plane overlay follows it. The same plane
        again (the focus moved between planes) changes nothing: an overlay being built goes on."""
        if plane == self.plane:
            return
        self.plane = plane
        if self.kind is not None and self.kind.follows_plane:
            self._update()

    # ------------------------------------------------------------------ building sources
    def _key(self) -> tuple:
        return (self.kind.key, self.plane if self.kind.follows_plane else None)

    def _cancel(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
        # Tell a build under way on its thread to stop now: the task's own CancelledError may
        # never be delivered (the window closing stops the loop first), and a fused fit would
        # then run on for minutes and hold the process at exit.
        self._stop.set()
        self._task = None

    def _update(self) -> None:
        self._cancel()
        if self.kind is None or self.slide is None:
            self._show(None)
            return
        key = self._key()
        cached = self._sources.get(key)
        if cached is not None:
            self._sources.move_to_end(key)
            self._show(cached)
            return
        if self._shown_kind != self.kind.key:  # another kind: off with the old one while building
            self.canvas.set_overlay(None)
            self._shown_kind = None
            self._base = None
        self._stop = threading.Event()
        self._task = asyncio.get_running_loop().create_task(
            self._prepare(self.kind, self.slide, self.plane, key, self._stop))
        self.changed.emit()

    async def _prepare(self, kind: OverlayKind, slide: Slide, plane: int, key: tuple,
                       stop: threading.Event) -> None:
        loop = asyncio.get_running_loop()
        value_range = self._ranges.get(kind.key) if kind.follows_plane else None
        extra = {}
        if kind.reports_progress:
            def progress(fraction: float) -> None:  # called on the worker
                if not stop.is_set():
                    loop.call_soon_threadsafe(self._progress, key, fraction)

            extra = {"progress": progress, "cancelled": stop.is_set}
        try:
            source = await loop.run_in_executor(self.build_executor, lambda: _build(kind, slide, plane, value_range,
                                                                              **extra))
        except asyncio.CancelledError:
            stop.set()
            raise
        except Exception as exc:  # e.g. missing weights: say so, turn the overlay off
            if slide is self.slide and kind == self.kind:
                log.warning("overlay %s failed: %s", kind.key, exc)
                self.kind = None
                self._task = None
                self._show(None)
                self.failed.emit(f"{kind.title}: {exc}")
            return
        if slide is not self.slide:
            return
        self._sources[key] = source
        while len(self._sources) > MAX_SOURCES:
            _, old = self._sources.popitem(last=False)
            if old is not self._base:
                self.canvas.store.forget(old)
        if kind.follows_plane and kind.key not in self._ranges:
            rng = value_range_of(source)
            if rng is not None:
                self._ranges[kind.key] = rng
        if kind == self.kind and key == self._key():
            self._task = None
            self._show(source)

    def _progress(self, key: tuple, fraction: float) -> None:
        if self.preparing and self.kind is not None and key == self._key():
            self.progress.emit(fraction)

    def _show(self, source: Slide | None) -> None:
        kind = self.kind.key if source is not None and self.kind is not None else None
        self._base = source
        self._view_key = self._current_view()
        # Another plane of the same overlay: its old pixels stand in until the new ones arrive.
        self.canvas.set_overlay(self._for_view(source, restart=True),
                                keep_pixels=kind is not None and kind == self._shown_kind)
        self._shown_kind = kind
        self._work = self.work()
        if source is not None:
            self._work_timer.start()
        else:
            self._work_timer.stop()
        self.changed.emit()
        self._request_readout()

    def close(self) -> None:
        """Stop building sources (a build under way is told to stop; its result is dropped)
        and revising estimates."""
        self._cancel()
        self._follow_timer.stop()
        self._work_timer.stop()
        self.build_executor.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------------ following the zoom
    def _steps(self, source) -> list[int]:
        """The estimate's square sizes at the canvas's level (cells, coarse to fine; [1]: dense)."""
        steps = getattr(source, "estimate_steps", None)
        if steps is None or self.canvas.slide is None:
            return [1]
        return steps(self.canvas.level, self.canvas.overlay.tile_size)

    def _current_view(self) -> tuple | None:
        if self.canvas.slide is None:
            return None
        return (self.canvas.level, *(round(v) for v in self.canvas.view_rect()))

    def _for_view(self, source, restart: bool):
        """What the canvas should draw of ``source`` at its level: the source at a dense level,
        else a sampled view (a first, coarse one when ``restart``)."""
        if source is None:
            return None
        steps = self._steps(source)
        if steps == [1]:
            return source
        shown = self.canvas.overlay_source
        if not restart and shown is not None and getattr(shown, "root", None) is source and shown is not source:
            return shown
        return source.sampled(steps[0], next(self._revision))

    def _schedule_follow(self, *_) -> None:
        if self._base is not None:
            self._follow_timer.start()

    def _follow_view(self) -> None:
        """Revise what is drawn for the view (see the module docstring)."""
        base = self._base
        if base is None or self.kind is None or self.canvas.overlay_source is None:
            return
        view = self._current_view()
        moved, self._view_key = view != self._view_key, view
        shown = self.canvas.overlay_source
        steps = self._steps(base)
        settled = self.canvas.overlay_settled()
        if steps == [1]:
            target = base
        elif shown is base or (moved and not settled):  # places without values: a quick estimate first
            target = base.sampled(steps[0], next(self._revision))
        elif settled and shown.min_step > steps[-1]:  # this estimate is on screen: a finer one
            target = base.sampled(max(steps[-1], shown.min_step // 2), next(self._revision))
        else:
            target = shown
        if target is not shown:
            self.canvas.set_overlay(target, keep_pixels=True)
            self.changed.emit()
        self._poll_work()

    def work(self) -> OverlayWork:
        """How much of the view the overlay shown has computed (see `OverlayWork`)."""
        base, canvas = self._base, self.canvas
        if base is None or canvas.slide is None or not hasattr(base, "view_progress"):
            return OverlayWork()
        level = canvas.level
        done, total = base.view_progress(level, canvas.view_rect())
        step = base.sample_step(level)
        shown = canvas.overlay_source
        return OverlayWork(done, total, step > 1, step, max(step, getattr(shown, "min_step", 1)) if step > 1 else 1)

    def _poll_work(self) -> None:
        work = self.work()
        if work != self._work:
            self._work = work
            self.changed.emit()

    # ------------------------------------------------------------------ cursor read-out
    def cursor_at(self, x: float, y: float) -> None:
        """The cursor is at level-0 px (x, y): read the overlay's value there (off the UI thread)."""
        self._cursor = (x, y)
        self._request_readout()

    def _request_readout(self) -> None:
        if self._readout_task is None or self._readout_task.done():
            self._readout_task = asyncio.get_running_loop().create_task(self._read_values())

    async def _read_values(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            source, kind, pos = self.source, self.kind, self._cursor
            if source is None or kind is None or pos is None or not hasattr(source, "scores_for_region") \
                    or not _inside(source, *pos):
                self.readout.emit("")
                return
            try:
                value = await loop.run_in_executor(self.executor, value_at, source, *pos)
            except Exception as exc:  # the tiles report the same failure; keep the bar quiet
                log.debug("overlay read-out failed: %s", exc)
                value = math.nan
            if source is self.source and pos == self._cursor:
                self.readout.emit(kind.readout(value))
                return


def _build(kind: OverlayKind, slide: Slide, plane: int, value_range, **extra) -> Slide:
    """Runs on a worker: the source, with its colour scale settled (that may compute a few blocks)."""
    source = kind.make(slide, plane, value_range, **extra)
    value_range_of(source)
    return source


def _inside(slide: Slide, x: float, y: float) -> bool:
    W, H = slide.dimensions
    return 0 <= x < W and 0 <= y < H
