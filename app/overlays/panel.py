"""`OverlayPanel`: the overlay's dock content — what is shown, its opacity, its legend in units."""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSlider, QVBoxLayout, QWidget

from .legend import LegendBar

#: Opacity of a new overlay, in percent.
DEFAULT_OPACITY_PERCENT = 50


class OverlayPanel(QWidget):
    """Title and state of the overlay, an opacity slider (0–100 %) and the legend.
    Emits ``opacityChanged(fraction 0..1)``."""

    opacityChanged = Signal(float)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.title = QLabel(wordWrap=True, objectName="overlayTitle")
        self.state = QLabel(objectName="overlayState")
        self.opacity = QSlider(Qt.Orientation.Horizontal, objectName="overlayOpacity")
        self.opacity.setRange(0, 100)
        self.opacity.setValue(DEFAULT_OPACITY_PERCENT)
        self.opacity.setToolTip("Overlay opacity")
        self.opacity_label = QLabel()
        self.opacity_label.setMinimumWidth(40)
        self.legend = LegendBar()
        row = QHBoxLayout()
        row.addWidget(QLabel("Opacity"))
        row.addWidget(self.opacity, 1)
        row.addWidget(self.opacity_label)
        column = QVBoxLayout(self)
        column.addWidget(self.title)
        column.addLayout(row)
        column.addWidget(self.legend)
        column.addWidget(self.state)
        column.addStretch(1)
        self.opacity.valueChanged.connect(self._opacity_changed)
        self._opacity_changed(self.opacity.value())
        self.show_overlay(None, None, False)

    @property
    def opacity_fraction(self) -> float:
        return self.opacity.value() / 100.0

    def show_overlay(self, title: str | None, source, preparing: bool) -> None:
        """Describe the overlay ``title`` (None: no overlay) whose source is ``source`` (None
        while it is being built)."""
        if title is None:
            self.title.setText("No overlay (View ▸ Overlay)")
        else:
            self.title.setText(f"<b>{title}</b>")
        self.opacity.setEnabled(title is not None)
        has_legend = self.legend.show_source(source)
        self.legend.setVisible(has_legend)
        self.set_state("preparing…" if preparing else "")

    def set_state(self, text: str) -> None:
        self.state.setText(text)

    def _opacity_changed(self, percent: int) -> None:
        self.opacity_label.setText(f"{percent} %")
        self.opacityChanged.emit(percent / 100.0)
