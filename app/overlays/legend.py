"""`LegendBar`: the colour scale of the overlay in its own units (a score, or µm for a depth map).

Drawn with Qt from the source's colour map (``engine.colormaps.LUTS[source.cmap]``), its
``value_range`` (vmin, vmax) and ``label``, so units such as µm print as they should. A source
without those but with ``legend(width)`` (an RGB image) is shown as that image.
"""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPixmap
from PySide6.QtWidgets import QSizePolicy, QWidget

from engine.colormaps import LUTS


def value_range_of(source) -> tuple[float, float] | None:
    """``source.value_range`` (a property or a method) as (vmin, vmax), or None."""
    r = getattr(source, "value_range", None)
    if callable(r):
        r = r()
    return None if r is None else (float(r[0]), float(r[1]))


def format_tick(value: float) -> str:
    """A tick label: 3 significant digits, no trailing noise (−0 shown as 0)."""
    text = f"{value:.3g}"
    return "0" if text in ("-0", "0") else text.replace("-", "−")


class LegendBar(QWidget):
    """A horizontal colour bar with min / middle / max ticks and a label, or a plain image."""

    BAR_H, MARGIN = 14, 8

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setMinimumHeight(64)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.label = ""
        self.value_range: tuple[float, float] | None = None
        self._lut: np.ndarray | None = None
        self._bar: QImage | None = None
        self._image: QPixmap | None = None

    def show_source(self, source) -> bool:
        """Show the legend of ``source`` (None: nothing); returns whether there is one."""
        self.clear()
        if source is None:
            return False
        rng, cmap = value_range_of(source), getattr(source, "cmap", None)
        if rng is not None and cmap in LUTS:
            self.set_scale(LUTS[cmap], rng[0], rng[1], str(getattr(source, "label", "")))
            return True
        if hasattr(source, "legend"):
            img = np.ascontiguousarray(source.legend(max(self.width(), 240))[..., :3])
            qimg = QImage(img.data, img.shape[1], img.shape[0], 3 * img.shape[1], QImage.Format.Format_RGB888)
            self._image = QPixmap.fromImage(qimg.copy())
            self.setMinimumHeight(img.shape[0])
            self.update()
            return True
        return False

    def set_scale(self, lut: np.ndarray, vmin: float, vmax: float, label: str) -> None:
        """Colours ``lut`` (256, 3) uint8 from ``vmin`` to ``vmax`` (in the units of ``label``)."""
        self._lut = np.ascontiguousarray(np.asarray(lut, np.uint8)[None])  # (1, 256, 3)
        self._bar = QImage(self._lut.data, 256, 1, 3 * 256, QImage.Format.Format_RGB888).copy()
        self.value_range, self.label, self._image = (float(vmin), float(vmax)), label, None
        self.setMinimumHeight(64)
        self.update()

    def clear(self) -> None:
        self.label, self.value_range, self._lut, self._bar, self._image = "", None, None, None, None
        self.update()

    def ticks(self) -> list[tuple[float, str]]:
        """(fraction along the bar, text) of each tick; empty without a scale."""
        if self.value_range is None:
            return []
        vmin, vmax = self.value_range
        return [(f, format_tick(vmin + f * (vmax - vmin))) for f in (0.0, 0.5, 1.0)]

    def paintEvent(self, ev):  # noqa: N802 (Qt name)
        p = QPainter(self)
        if self._image is not None:
            p.drawPixmap(0, 0, self._image)
            return
        if self._bar is None:
            return
        m, w = self.MARGIN, self.width() - 2 * self.MARGIN
        fm = p.fontMetrics()
        p.setPen(self.palette().windowText().color())
        p.drawText(QRectF(m, 0, w, fm.height()), Qt.AlignmentFlag.AlignLeft, self.label)
        top = fm.height() + 4
        p.drawImage(QRectF(m, top, w, self.BAR_H), self._bar)
        p.setPen(QColor(90, 90, 90))
        p.drawRect(QRectF(m, top, w, self.BAR_H))
        p.setPen(self.palette().windowText().color())
        for frac, text in self.ticks():
            x = m + frac * w
            p.drawLine(int(x), top + self.BAR_H, int(x), top + self.BAR_H + 4)
            tw = fm.horizontalAdvance(text)
            p.drawText(int(min(max(x - tw / 2, 0), self.width() - tw)), top + self.BAR_H + 6 + fm.ascent(), text)
