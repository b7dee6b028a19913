"""`PaintInput`: the canvas's mouse while a paint tool is active.

An event filter on the `SlideCanvas`'s viewport: a left-button drag becomes a stroke, reported
as ``started(x, y, modifiers)``, ``moved(x, y)`` and ``finished(x, y)`` in level-0 px (mouse
positions mapped through the ViewBox); a right-button drag, or a left one with Space held,
pans; the middle button and the wheel stay the ViewBox's (pan, zoom). With no tool active
(``active`` False) every event goes to the ViewBox as before.
"""
from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, QPointF, Qt, Signal


class PaintInput(QObject):
    """Strokes and pans from the mouse over ``canvas`` (see the module docstring)."""

    started = Signal(float, float, object)
    moved = Signal(float, float)
    finished = Signal(float, float)
    hovered = Signal(float, float)

    def __init__(self, canvas):
        super().__init__(canvas)
        self.canvas = canvas
        self.active = False
        self.space_held = False
        self._stroke = False
        self._pan_from: QPointF | None = None
        canvas.viewport().installEventFilter(self)
        canvas.installEventFilter(self)
        canvas.viewport().setMouseTracking(True)

    def to_level0(self, pos) -> tuple[float, float]:
        """A viewport position (px) as level-0 px of the slide."""
        p = self.canvas.vb.mapSceneToView(self.canvas.mapToScene(pos.toPoint() if hasattr(pos, "toPoint") else pos))
        return p.x(), p.y()

    @property
    def stroking(self) -> bool:
        return self._stroke

    def eventFilter(self, obj, ev):  # noqa: N802 (Qt name)
        t = ev.type()
        if obj is self.canvas:
            if t in (QEvent.Type.KeyPress, QEvent.Type.KeyRelease) and ev.key() == Qt.Key.Key_Space:
                if not ev.isAutoRepeat():
                    self.space_held = t == QEvent.Type.KeyPress
                return self.active
            return False
        if not self.active:
            return False
        if t == QEvent.Type.MouseButtonPress:
            pos = ev.position()
            if ev.button() == Qt.MouseButton.RightButton or \
                    (ev.button() == Qt.MouseButton.LeftButton and self.space_held):
                self._pan_from = pos
                return True
            if ev.button() == Qt.MouseButton.LeftButton:
                self._stroke = True
                self.started.emit(*self.to_level0(pos), ev.modifiers())
                return True
            return False
        if t == QEvent.Type.MouseMove:
            pos = ev.position()
            if self._pan_from is not None:
                sx, sy = self.canvas.vb.viewPixelSize()
                d = pos - self._pan_from
                self._pan_from = pos
                self.canvas.pan(-d.x() * sx, -d.y() * sy)
                return True
            x, y = self.to_level0(pos)
            self.hovered.emit(x, y)
            if self._stroke:  # the scene does not see these moves: keep the position readout live
                self.moved.emit(x, y)
                self.canvas.cursorMoved.emit(x, y)
                return True
            return False
        if t == QEvent.Type.MouseButtonRelease:
            if self._pan_from is not None and ev.button() in (Qt.MouseButton.RightButton, Qt.MouseButton.LeftButton):
                self._pan_from = None
                return True
            if self._stroke and ev.button() == Qt.MouseButton.LeftButton:
                self._stroke = False
                self.finished.emit(*self.to_level0(ev.position()))
                return True
            return False
        if t == QEvent.Type.MouseButtonDblClick and ev.button() == Qt.MouseButton.LeftButton:
            return True
        return False

    def cancel(self) -> None:
        """Forget a stroke or pan under way (Esc, another tool)."""
        self._stroke = False
        self._pan_from = None
