"""`PlaneControl`: the z control. A slider with one tick per captured focal plane, the z of the
shown plane in µm, and buttons; PageUp / PageDown step planes (the window binds them).

Later the refocus issue turns it into a continuous z slider; the captured planes stay as ticks.
"""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSlider, QToolButton, QWidget


def format_z(z_um: float) -> str:
    """``z = +1.25 µm`` (sign always shown, 0 as ``0``)."""
    return "z = 0 µm" if z_um == 0 else f"z = {z_um:+.2f} µm"


class PlaneControl(QWidget):
    """Steps between the captured planes ``planes_um`` (µm). Emits ``planeChanged(index)``."""

    planeChanged = Signal(int)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.planes_um: tuple[float, ...] = (0.0,)
        self.title = QLabel("Focus")
        self.down = QToolButton(text="−", toolTip="Previous plane (Page Down)")
        self.up = QToolButton(text="+", toolTip="Next plane (Page Up)")
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setTickPosition(QSlider.TickPosition.TicksBelow)
        self.slider.setTickInterval(1)
        self.slider.setPageStep(1)
        self.slider.setMinimumWidth(160)
        self.slider.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.label = QLabel()
        self.label.setMinimumWidth(190)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(6, 0, 6, 0)
        for w in (self.title, self.down, self.slider, self.up, self.label):
            lay.addWidget(w)
        self.slider.valueChanged.connect(self._changed)
        self.down.clicked.connect(self.step_down)
        self.up.clicked.connect(self.step_up)
        self.set_planes((0.0,))

    @property
    def plane(self) -> int:
        return self.slider.value()

    @property
    def z_um(self) -> float:
        return self.planes_um[self.plane]

    def set_planes(self, planes_um, plane: int = 0) -> None:
        """Show the planes of a new slide (z in µm, ascending) and select ``plane``."""
        self.planes_um = tuple(float(z) for z in planes_um)
        n = len(self.planes_um)
        self.slider.blockSignals(True)
        self.slider.setRange(0, n - 1)
        self.slider.setValue(plane)
        self.slider.blockSignals(False)
        for w in (self.slider, self.up, self.down):
            w.setEnabled(n > 1)
        self._update_label()

    def set_plane(self, plane: int) -> None:
        self.slider.setValue(max(0, min(plane, len(self.planes_um) - 1)))

    def step_up(self) -> None:
        """Next plane (higher z, towards the objective)."""
        self.set_plane(self.plane + 1)

    def step_down(self) -> None:
        self.set_plane(self.plane - 1)

    def _changed(self, value: int) -> None:
        self._update_label()
        self.planeChanged.emit(value)

    def _update_label(self) -> None:
        n = len(self.planes_um)
        if n == 1:
            self.label.setText(f"{format_z(self.planes_um[0])} (single plane)")
        else:
            self.label.setText(f"{format_z(self.z_um)}   plane {self.plane + 1}/{n}")
