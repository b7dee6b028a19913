"""`AutosaveDriver`: the window's side of `engine.focusmap.autosave.FocusMapAutosave`.

A 1 s QTimer asks the slide's autosave whether it is due (every ``AUTOSAVE_INTERVAL_S`` s) and,
when the map changed since the last save, hands a frozen copy of it (`FocusMap.frozen`, taken on
the UI thread) to a single-thread worker that writes it (atomic and durable). Closing the window
or opening another slide saves at once (`flush`). A failed write is one status-bar line; painting
goes on. Files live in the user's data folder (`engine.focusmap.autosave.autosave_folder`).
"""
from __future__ import annotations

import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal

from engine.focusmap import FocusMap
from engine.focusmap.autosave import FocusMapAutosave

log = logging.getLogger(__name__)

#: How often the timer looks (ms).
TICK_MS = 1000


def restored_message(autosave: FocusMapAutosave) -> str:
    """"restored your focus map from <time>" (the autosave file's modification time)."""
    try:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(Path(autosave.path).stat().st_mtime))
    except OSError:
        when = "an earlier session"
    return f"restored your focus map from {when}"


class AutosaveDriver(QObject):
    """Autosaves the map ``current_map()`` gives (None: nothing to save). Signals: ``saved(version)``
    after a write landed (or was not needed), ``failed(message)``."""

    saved = Signal(int)
    failed = Signal(str)

    def __init__(self, current_map, parent=None, folder=None):
        super().__init__(parent)
        self._current_map = current_map
        self.folder = folder
        self.autosave: FocusMapAutosave | None = None
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="finefocus-autosave")
        self._submitted: tuple[int, int] | None = None     # (id of the map, version) handed over
        #: The version of the map the last finished autosave holds (-1: none yet).
        self.saved_version = -1
        self._timer = QTimer(self, interval=TICK_MS)
        self._timer.timeout.connect(self.tick)
        self._timer.start()

    # ------------------------------------------------------------------ per slide
    def open(self, slide) -> tuple[FocusMap | None, str | None]:
        """Start autosaving for ``slide``: returns (the restored map or None, a status line:
        the restore or the damaged autosave's `problem`, or None). A slide with no stable key
        (in memory) gets no autosave."""
        self.autosave, self._submitted, self.saved_version = None, None, -1
        try:
            self.autosave = FocusMapAutosave(slide, folder=self.folder)
        except ValueError as exc:
            log.info("no focus map autosave: %s", exc)
            return None, None
        fm = self.autosave.restore()
        if self.autosave.problem:
            return None, f"focus map autosave: {self.autosave.problem}"
        if fm is None:
            return None, None
        self._submitted = (id(fm), fm.version)
        self.saved_version = fm.version
        return fm, restored_message(self.autosave)

    def adopt(self, fm: FocusMap) -> None:
        """``fm`` (a new, empty map) is what the autosave holds: nothing is written until it changes."""
        self._submitted = (id(fm), fm.version)

    # ------------------------------------------------------------------ saving
    def tick(self) -> None:
        """The timer: save when due and changed."""
        if self.autosave is not None and self.autosave.due(time.monotonic()):
            self.save()

    def save(self) -> Future | None:
        """Hand the current map's frozen copy to the worker unless that version was handed over
        already; the future of the write, or None."""
        fm = self._current_map()
        autosave = self.autosave
        if fm is None or autosave is None:
            return None
        mark = (id(fm), fm.version)
        if mark == self._submitted:
            return None
        self._submitted = mark
        frozen = fm.frozen()
        fut = self._worker.submit(autosave.save_if_changed, frozen)
        fut.add_done_callback(lambda f, v=frozen.version, a=autosave: self._landed(f, v, a))
        return fut

    def _landed(self, fut: Future, version: int, autosave) -> None:
        # On the worker thread: hand over to the UI thread through a queued signal.
        if fut.cancelled():
            return
        exc = fut.exception()
        if exc is not None:
            self._submitted = None                   # try again at the next tick
            self.failed.emit(f"cannot autosave the focus map to {autosave.path}: {exc}")
            return
        if autosave is self.autosave:
            self.saved_version = version
        self.saved.emit(version)

    def flush(self, timeout_s: float = 10.0) -> None:
        """Save now and wait for the worker (closing the window, opening another slide)."""
        fut = self.save()
        # Whatever is queued lands before this marker: the single worker runs in order.
        marker = self._worker.submit(lambda: None)
        try:
            marker.result(timeout=timeout_s)
            if fut is not None:
                fut.result(timeout=0)
        except Exception as exc:  # reported; closing goes on
            log.warning("focus map autosave on close failed: %s", exc)

    def close(self) -> None:
        """Save what is unsaved and stop (the window is closing)."""
        self._timer.stop()
        self.flush()
        self._worker.shutdown(wait=False)
