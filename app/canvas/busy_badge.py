"""`BusyBadge`: a small box over the top centre of the view saying what is still being computed
for it ("Refocusing… 3 / 12 blocks") with a progress bar; hidden when nothing is."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QWidget


class BusyBadge(QWidget):
    """Overlay widget of a canvas: ``show_progress(text, done, total)`` or ``clear()``."""

    def __init__(self, parent: QWidget):
        super().__init__(parent)
        self.setObjectName("busyBadge")
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground)
        self.setStyleSheet("#busyBadge { background: rgba(30, 30, 30, 200); border-radius: 6px; }"
                           "QLabel { color: white; }")
        self.label = QLabel()
        self.bar = QProgressBar()
        self.bar.setTextVisible(False)
        self.bar.setFixedWidth(120)
        self.bar.setFixedHeight(10)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(10, 6, 10, 6)
        lay.addWidget(self.label)
        lay.addWidget(self.bar)
        self.hide()

    @property
    def text(self) -> str:
        """What the badge says ('' when hidden)."""
        return self.label.text() if self.isVisible() else ""

    def show_progress(self, text: str, done: int, total: int) -> None:
        """Show ``text`` and ``done`` of ``total`` (total 0: busy without a count)."""
        self.label.setText(text)
        if total > 0:
            self.bar.setRange(0, total)
            self.bar.setValue(min(done, total))
        else:
            self.bar.setRange(0, 0)
        self.adjustSize()
        self._place()
        self.show()
        self.raise_()

    def clear(self) -> None:
        self.hide()

    def _place(self) -> None:
        parent = self.parentWidget()
        if parent is not None:
            self.move(max(0, (parent.width() - self.width()) // 2), 12)
