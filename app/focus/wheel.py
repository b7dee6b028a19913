"""Focus on the mouse wheel (and a trackpad's two-finger scroll).

* Over the focus knob: the wheel is fine focus (``FINE_STEP_UM`` a notch), Shift or Alt + wheel
  coarse focus (``COARSE_STEP_UM``).
* Over the slide: the wheel zooms as before (the ViewBox's); Ctrl + wheel is fine focus and
  Ctrl + Shift (or Alt) + wheel coarse focus (`SlideWheelFocus`, an event filter on the
  canvas's viewport that takes only those wheel events).

A notch is 120 units of ``angleDelta``; a trackpad or a high-resolution wheel sends smaller
deltas, which `WheelNotches` adds up into whole notches (the remainder is kept, and dropped when
the direction turns), so a slow scroll steps as a notched wheel would. Alt + wheel comes as a
horizontal delta on some platforms (X11, Windows) and Shift + wheel on macOS: the horizontal
delta counts when there is no vertical one. Wheel up (away from you) focuses up (z +, towards
the objective), the knob's right; ``inverted()`` (natural scrolling) is honoured as QSlider does.
"""
from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt

NOTCH = 120

#: Modifiers that make a wheel step coarse.
COARSE_MODIFIERS = Qt.KeyboardModifier.ShiftModifier | Qt.KeyboardModifier.AltModifier


def wheel_delta(ev) -> int:
    """The wheel event's delta along its main axis (vertical, else horizontal), in angle units,
    positive for up / away from the user."""
    d = ev.angleDelta()
    delta = d.y() if d.y() else d.x()
    return -delta if ev.inverted() else delta


def is_coarse(modifiers) -> bool:
    return bool(modifiers & COARSE_MODIFIERS)


class WheelNotches:
    """Adds angle deltas up into whole notches (see the module docstring)."""

    def __init__(self):
        self.rest = 0

    def add(self, delta: int) -> int:
        """Whole notches in ``delta`` and what is left from before (signed)."""
        if delta == 0:
            return 0
        if self.rest and (self.rest > 0) != (delta > 0):
            self.rest = 0  # the hand turned back: start afresh
        total = self.rest + delta
        notches = int(total / NOTCH)  # towards zero
        self.rest = total - notches * NOTCH
        return notches


class SlideWheelFocus(QObject):
    """Ctrl (+ Shift / Alt) + wheel over ``canvas`` focuses ``focus`` (a `FocusControl`); every
    other wheel event goes on to the canvas (zoom). ``handled`` counts the events it took."""

    def __init__(self, canvas, focus):
        super().__init__(canvas)
        self.focus = focus
        self.handled = 0
        canvas.viewport().installEventFilter(self)

    def eventFilter(self, obj, ev):  # noqa: N802 (Qt name)
        if ev.type() != QEvent.Type.Wheel or not (ev.modifiers() & Qt.KeyboardModifier.ControlModifier):
            return False
        self.handled += 1
        self.focus.wheel(wheel_delta(ev), ev.modifiers())
        ev.accept()
        return True
