"""`Overview`: a thumbnail of the whole slide with the current view drawn on it; click or
drag on it to move the view there."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget


class Overview(QWidget):
    """Emits ``navigate(x, y)``: the level-0 px point the user clicked."""

    navigate = Signal(float, float)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setMinimumSize(160, 120)
        self.setMaximumHeight(240)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
        self._image: QImage | None = None
        self._pixels: np.ndarray | None = None
        self.slide_size = (1, 1)
        self.view = QRectF()

    def set_thumbnail(self, pixels: np.ndarray | None, slide_size: tuple[int, int]) -> None:
        """Show ``pixels`` ((h, w, 3) uint8) as the whole slide of ``slide_size`` level-0 px."""
        self.slide_size = slide_size
        if pixels is None:
            self._image = self._pixels = None
        else:
            self._pixels = np.ascontiguousarray(pixels)
            h, w = self._pixels.shape[:2]
            self._image = QImage(self._pixels.data, w, h, 3 * w, QImage.Format.Format_RGB888)
        self.update()

    def set_view(self, x: float, y: float, w: float, h: float) -> None:
        self.view = QRectF(x, y, w, h)
        self.update()

    def _target(self) -> QRectF:
        """Where the slide is drawn in the widget (aspect kept, centred at the top)."""
        W, H = self.slide_size
        s = min(self.width() / W, self.height() / H)
        return QRectF((self.width() - W * s) / 2, 0, W * s, H * s)

    def paintEvent(self, event):  # noqa: N802
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(43, 43, 43))
        if self._image is None:
            p.end()
            return
        t = self._target()
        p.drawImage(t, self._image)
        s = t.width() / self.slide_size[0]
        v = QRectF(t.x() + self.view.x() * s, t.y() + self.view.y() * s,
                   self.view.width() * s, self.view.height() * s).intersected(t.adjusted(-1, -1, 1, 1))
        p.setPen(QPen(QColor(230, 40, 40), 2))
        p.drawRect(v)
        p.end()

    def _emit_at(self, pos: QPointF) -> None:
        if self._image is None:
            return
        t = self._target()
        s = t.width() / self.slide_size[0]
        self.navigate.emit((pos.x() - t.x()) / s, (pos.y() - t.y()) / s)

    def mousePressEvent(self, e):  # noqa: N802
        if e.button() == Qt.MouseButton.LeftButton:
            self._emit_at(e.position())

    def mouseMoveEvent(self, e):  # noqa: N802
        if e.buttons() & Qt.MouseButton.LeftButton:
            self._emit_at(e.position())
