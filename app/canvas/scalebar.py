"""Scale bar: a nice round length (1, 2 or 5 × 10^k µm) drawn over the bottom-left of the view."""
from __future__ import annotations

import math

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPen
from PySide6.QtWidgets import QWidget


def nice_length(max_value: float) -> float:
    """The largest 1, 2 or 5 × 10^k not above ``max_value`` (> 0)."""
    if max_value <= 0:
        raise ValueError("max_value must be positive")
    exp = math.floor(math.log10(max_value))
    for mant in (5, 2, 1):
        v = mant * 10.0 ** exp
        if v <= max_value * (1 + 1e-9):
            return v
    return 10.0 ** exp


def format_length_um(um: float) -> str:
    """``1 mm``, ``200 µm``, ``0.5 µm``..."""
    if um >= 1000:
        return f"{um / 1000:g} mm"
    return f"{um:g} µm"


class ScaleBar(QWidget):
    """Overlay widget: a bar of a round length in µm (or in px when the slide has no µm per
    px), for ``screen_px_per_um`` set through ``set_scale``."""

    MAX_PX = 160

    def __init__(self, parent: QWidget):
        super().__init__(parent)
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.resize(self.MAX_PX + 24, 40)
        self.bar_px = 0.0
        self.label = ""

    def set_scale(self, screen_px_per_level0_px: float, mpp: float | None) -> None:
        """Update for a zoom (screen px per level-0 px) and the slide's µm per level-0 px."""
        if screen_px_per_level0_px <= 0:
            self.bar_px, self.label = 0.0, ""
        elif mpp:
            um = nice_length(self.MAX_PX / screen_px_per_level0_px * mpp)
            self.bar_px, self.label = um / mpp * screen_px_per_level0_px, format_length_um(um)
        else:
            px = nice_length(self.MAX_PX / screen_px_per_level0_px)
            self.bar_px, self.label = px * screen_px_per_level0_px, f"{px:g} px"
        self.update()

    def paintEvent(self, event):  # noqa: N802 (Qt name)
        if self.bar_px <= 0:
            return
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.fillRect(QRectF(0, 0, self.bar_px + 16, 36), QColor(255, 255, 255, 200))
        p.fillRect(QRectF(8, 26, self.bar_px, 5), QColor(20, 20, 20))
        p.setPen(QPen(QColor(20, 20, 20)))
        font = QFont(p.font())
        font.setPointSize(9)
        p.setFont(font)
        p.drawText(QRectF(8, 4, self.bar_px + 80, 20), Qt.AlignmentFlag.AlignLeft, self.label)
        p.end()
