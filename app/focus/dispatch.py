"""`FocusDispatch`: hands the knob's focus changes to the view, coalescing those of a gesture.

A focus change costs the UI thread a re-plan of the view, stand-ins for every visible tile and
a new tile generation (`RefocusView.show`, `SlideCanvas.set_source`). A drag of the knob (or a
trackpad's stream of wheel events) makes a change on every mouse move, 60 or more a second:
handled one by one they queue up behind each other and the event loop does not get a turn
between them, so the window stalls and the view lags behind the hand.

While a gesture is under way (``focus.in_gesture``) the changes are coalesced: the newest z
replaces any still waiting (the superseded ones are never rendered, so their tiles are never
asked for), and at most one is handed on every ``frame_ms``, on its own event-loop turn; the
gesture's end (release) hands on the last z at once. A single change (a key, a button, a typed
z, ``set_z``) is handed on at once, as before.
"""
from __future__ import annotations

import time

from PySide6.QtCore import QObject, QTimer

#: At most one focus change of a gesture every this many ms (the view's frame rate while dragging).
FRAME_MS = 40


class FocusDispatch(QObject):
    """Calls ``apply(z_um)`` for the focus changes of ``focus`` (see the module docstring).
    ``dispatched`` and ``coalesced`` count the changes handed on and those dropped as superseded."""

    def __init__(self, focus, apply, parent=None, frame_ms: int = FRAME_MS):
        super().__init__(parent)
        self.focus, self.apply, self.frame_ms = focus, apply, int(frame_ms)
        self.pending: float | None = None
        self.dispatched = 0
        self.coalesced = 0
        self._last = float("-inf")
        self._timer = QTimer(self, singleShot=True)
        self._timer.timeout.connect(self.flush)
        focus.zChanged.connect(self._changed)
        focus.gestureFinished.connect(self.flush)

    def _changed(self, z_um: float) -> None:
        if not self.focus.in_gesture:
            self._timer.stop()
            self.pending = None
            self._dispatch(z_um)
            return
        if self.pending is not None:
            self.coalesced += 1
        self.pending = z_um
        if not self._timer.isActive():
            since = (time.perf_counter() - self._last) * 1000
            self._timer.start(int(max(0.0, self.frame_ms - since)))

    def flush(self) -> None:
        """Hand on the z still waiting, if any (the gesture ended, or its frame came)."""
        self._timer.stop()
        if self.pending is not None:
            z, self.pending = self.pending, None
            self._dispatch(z)

    def _dispatch(self, z_um: float) -> None:
        self._last = time.perf_counter()
        self.dispatched += 1
        self.apply(z_um)
