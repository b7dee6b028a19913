"""`PaintPanel`: the focus map's dock — the tools, the brush (size µm, target depth µm, hardness),
"Show map", the map's opacity, its legend in µm and a state line (painted area, autosave)."""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QCheckBox, QDoubleSpinBox, QFormLayout, QGridLayout, QLabel, QSizePolicy, QSlider,
                               QSpinBox, QToolButton, QVBoxLayout, QWidget)

from ..overlays.legend import LegendBar
from .map_layer import DEFAULT_OPACITY

#: Brush diameter (µm) of a new session, and its bounds.
DEFAULT_SIZE_UM = 40.0
SIZE_RANGE_UM = (2.0, 5000.0)
DEFAULT_HARDNESS_PERCENT = 50


class PaintPanel(QWidget):
    """Emits ``opacityChanged(fraction 0..1)`` and ``showChanged(bool)``."""

    opacityChanged = Signal(float)
    showChanged = Signal(bool)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.tools = QGridLayout()
        self.tools.setSpacing(2)
        self.size_um = QDoubleSpinBox(objectName="brushSize", suffix=" µm", decimals=0)
        self.size_um.setRange(*SIZE_RANGE_UM)
        self.size_um.setValue(DEFAULT_SIZE_UM)
        self.size_um.setToolTip("Brush diameter (µm)")
        self.depth_um = QDoubleSpinBox(objectName="brushDepth", suffix=" µm", decimals=2, singleStep=0.1)
        self.depth_um.setRange(-10.0, 10.0)
        self.depth_um.setToolTip("The focus the brush and the fill paint (µm; follows the focus knob)")
        self.hardness = QSpinBox(objectName="brushHardness", suffix=" %")
        self.hardness.setRange(0, 100)
        self.hardness.setValue(DEFAULT_HARDNESS_PERCENT)
        self.hardness.setToolTip("Share of the brush radius painted at full strength; the rest fades out")
        self.show_map = QCheckBox("Show map (M)", objectName="showMap", checked=True)
        self.show_map.setToolTip("Show the painted map and render the view through it")
        self.opacity = QSlider(Qt.Orientation.Horizontal, objectName="mapOpacity")
        self.opacity.setRange(0, 100)
        self.opacity.setValue(round(100 * DEFAULT_OPACITY))
        self.opacity.setToolTip("Opacity of the map's colours")
        self.legend = LegendBar()
        self.state = QLabel(wordWrap=True, objectName="paintState")
        form = QFormLayout()
        form.addRow("Size", self.size_um)
        form.addRow("Depth", self.depth_um)
        form.addRow("Hardness", self.hardness)
        form.addRow("Colours", self.opacity)
        column = QVBoxLayout(self)
        column.addLayout(self.tools)
        column.addLayout(form)
        column.addWidget(self.show_map)
        column.addWidget(self.legend)
        column.addWidget(self.state)
        column.addStretch(1)
        self.opacity.valueChanged.connect(lambda v: self.opacityChanged.emit(v / 100.0))
        self.show_map.toggled.connect(self.showChanged.emit)

    def add_tool(self, action, row: int, col: int) -> QToolButton:
        """A button for ``action`` (a tool or a command) in the tools grid."""
        button = QToolButton()
        button.setDefaultAction(action)
        button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        button.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.tools.addWidget(button, row, col)
        return button

    @property
    def hardness_fraction(self) -> float:
        return self.hardness.value() / 100.0

    def set_depth_range(self, lo: float, hi: float) -> None:
        """The depths (µm) the depth box accepts: the knob's travel."""
        self.depth_um.setRange(lo, hi)

    def set_legend(self, lut, vmin: float, vmax: float) -> None:
        self.legend.set_scale(lut, vmin, vmax, "Focus map: target focus (µm); unpainted places follow the knob")
