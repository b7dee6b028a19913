"""Typing a focus: ``parse_z`` reads what a user types as a z in µm, `ZEntry` is the knob's box.

Accepted: ``1.25``, ``+1.25``, ``-0.5``, ``−0.5`` (the typographic minus), ``1,25`` (a decimal
comma), with or without a unit (``1.25 µm``, ``1.25um``, ``1.25 μm``, ``1.25 micron``). Anything
else (empty, ``abc``, ``1.2.3``, ``nan``, ``inf``, ``1e999``) is refused with a message saying what
to type. Clamping to the knob's range is the knob's business (`FocusControl.set_typed_z`).
"""
from __future__ import annotations

import math
import re

from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtWidgets import QLineEdit

_UNIT = re.compile(r"\s*(µm|μm|um|microns?|micrometers?|micrometres?)\s*$", re.IGNORECASE)
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")

#: What the box says when it cannot read the text.
HINT = "type a focus in µm, e.g. 1.25 or -0.5"


def parse_z(text: str) -> float:
    """The z in µm ``text`` names (see the module docstring); ValueError with a one-line reason."""
    raw = str(text)
    s = raw.strip().replace("\u2212", "-").replace("\u2013", "-")
    s = _UNIT.sub("", s).strip()
    if s.lower().startswith("z"):  # "z = 1.25", "z=1.25"
        s = s[1:].lstrip(" =:").strip()
    if s.count(",") == 1 and "." not in s:
        s = s.replace(",", ".")
    s = s.replace(" ", "")
    if not s:
        raise ValueError(f"no focus given: {HINT}")
    if not _NUMBER.fullmatch(s):
        raise ValueError(f"{raw.strip()!r} is not a number of µm: {HINT}")
    z = float(s)
    if not math.isfinite(z):
        raise ValueError(f"{raw.strip()!r} is not a finite number of µm: {HINT}")
    return z


class ZEntry(QLineEdit):
    """The box where a z is typed. Enter emits ``submitted(text)``; Esc puts the knob's z back
    (``show_z``). While the user edits, the knob's moves do not overwrite the text. A refused
    text stays (to be corrected), framed red, its reason in the tool tip (``show_error``)."""

    submitted = Signal(str)

    TIP = "Type a focus in µm and press Enter (Z)"

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("focusZEntry")
        self.setPlaceholderText("z µm")
        self.setToolTip(self.TIP)
        self.setFixedWidth(64)
        self.setAlignment(Qt.AlignmentFlag.AlignRight)
        self.error: str | None = None
        self._z = 0.0
        self.returnPressed.connect(lambda: self.submitted.emit(self.text()))

    def show_z(self, z_um: float, force: bool = False) -> None:
        """Show the knob's z (unless the user is editing, or ``force``)."""
        self._z = float(z_um)
        if force or not (self.hasFocus() and self.isModified()):
            self.setText(f"{self._z:+.2f}" if abs(self._z) >= 5e-4 else "0.00")
            self.setModified(False)
            self.show_error(None)

    def show_error(self, message: str | None) -> None:
        self.error = message
        self.setStyleSheet("" if message is None else "QLineEdit { border: 2px solid #d33; }")
        self.setToolTip(self.TIP if message is None else f"{message}\n{self.TIP}")

    def begin(self) -> None:
        """Put the cursor in the box with its text selected (the Z key)."""
        self.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.selectAll()

    def event(self, ev):
        # Esc is the window's "Pan (no tool)" shortcut: while typing here it is the box's own.
        if ev.type() == QEvent.Type.ShortcutOverride and ev.key() == Qt.Key.Key_Escape:
            ev.accept()
            return True
        return super().event(ev)

    def keyPressEvent(self, ev):  # noqa: N802 (Qt name)
        if ev.key() == Qt.Key.Key_Escape:
            self.show_z(self._z, force=True)
            self.clearFocus()
            return
        super().keyPressEvent(ev)
