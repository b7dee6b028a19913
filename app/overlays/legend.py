"""`LegendBar`: the colour scale of the overlay in its own units (a score, or µm for a depth map).

Drawn with Qt from the source's colour map (``engine.colormaps.LUTS[source.cmap]``), its
``value_range`` (vmin, vmax) and ``label``, so units such as µm print as they should. A source
without those but with ``legend(width)`` (an RGB image) is shown as that image.
"""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRectF
from PySide6.QtGui import QColor, QImage, QPainter, QPixmap
from PySide6.QtWidgets import QLabel, QSizePolicy, QVBoxLayout, QWidget

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
    """The legend: a caption (the source's label, wrapped) over a horizontal colour bar with
    min / middle / max ticks; or a plain image for sources that draw their own legend."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.caption = QLabel(wordWrap=True, objectName="legendCaption")
        self.bar = _ColourBar(self)
        self.image = QLabel()
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        for w in (self.caption, self.bar, self.image):
            column.addWidget(w)
        self.clear()

    @property
    def label(self) -> str:
        return self.caption.text()

    @property
    def value_range(self) -> tuple[float, float] | None:
        return self.bar.value_range

    def ticks(self) -> list[tuple[float, str]]:
        """(fraction along the bar, text) of each tick; empty without a scale."""
        return self.bar.ticks()

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
            self.image.setPixmap(QPixmap.fromImage(qimg.copy()))
            self.image.show()
            return True
        return False

    def set_scale(self, lut: np.ndarray, vmin: float, vmax: float, label: str) -> None:
        """Colours ``lut`` (256, 3) uint8 from ``vmin`` to ``vmax`` (in the units of ``label``)."""
        self.caption.setText(label)
        self.caption.show()
        self.bar.set_scale(lut, vmin, vmax)
        self.bar.show()

    def clear(self) -> None:
        self.caption.setText("")
        self.bar.set_scale(None, 0.0, 0.0)
        self.image.clear()
        for w in (self.caption, self.bar, self.image):
            w.hide()


class _ColourBar(QWidget):
    """The bar and its ticks."""

    BAR_H, MARGIN = 14, 8

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setMinimumHeight(self.BAR_H + 8 + self.fontMetrics().height())
        self.value_range: tuple[float, float] | None = None
        self._image: QImage | None = None

    def set_scale(self, lut: np.ndarray | None, vmin: float, vmax: float) -> None:
        if lut is None:
            self.value_range, self._image = None, None
        else:
            row = np.ascontiguousarray(np.asarray(lut, np.uint8)[None])  # (1, 256, 3)
            self._image = QImage(row.data, 256, 1, 3 * 256, QImage.Format.Format_RGB888).copy()
            self.value_range = (float(vmin), float(vmax))
        self.update()

    def ticks(self) -> list[tuple[float, str]]:
        if self.value_range is None:
            return []
        vmin, vmax = self.value_range
        return [(f, format_tick(vmin + f * (vmax - vmin))) for f in (0.0, 0.5, 1.0)]

    def paintEvent(self, ev):  # noqa: N802 (Qt name)
        if self._image is None:
            return
        p = QPainter(self)
        fm = p.fontMetrics()
        m, w = self.MARGIN, self.width() - 2 * self.MARGIN
        p.drawImage(QRectF(m, 0, w, self.BAR_H), self._image)
        p.setPen(QColor(90, 90, 90))
        p.drawRect(QRectF(m, 0, w, self.BAR_H))
        p.setPen(self.palette().windowText().color())
        for frac, text in self.ticks():
            x = m + frac * w
            p.drawLine(int(x), self.BAR_H, int(x), self.BAR_H + 4)
            tw = fm.horizontalAdvance(text)
            p.drawText(int(min(max(x - tw / 2, 0), self.width() - tw)), self.BAR_H + 6 + fm.ascent(), text)
