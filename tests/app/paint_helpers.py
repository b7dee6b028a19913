"""Driving the paint tools with real mouse events on the canvas (shared by the paint tests and
the autosave driver script)."""
from __future__ import annotations

from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtTest import QTest


def viewport_pos(canvas, x: float, y: float) -> QPoint:
    """The viewport position (px) of level-0 px (x, y)."""
    scene = canvas.vb.mapViewToScene(QPointF(x, y))
    return canvas.mapFromScene(scene)


def drag(canvas, points, button=Qt.MouseButton.LeftButton, modifiers=Qt.KeyboardModifier.NoModifier) -> None:
    """Press at the first of ``points`` (level-0 px), move through the rest, release at the last."""
    vp = canvas.viewport()
    pos = [viewport_pos(canvas, x, y) for x, y in points]
    QTest.mousePress(vp, button, modifiers, pos[0])
    for p in pos[1:]:
        QTest.mouseMove(vp, p)
    QTest.mouseRelease(vp, button, modifiers, pos[-1])
