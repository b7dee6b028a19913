"""`FocusControl`: the fine-focus knob. A continuous z slider (µm) whose captured focal planes
show as ticks, the z in µm, and buttons.

* The slider moves in ``STEP_UM`` steps from ``BEYOND_UM`` below the lowest captured plane to
  ``BEYOND_UM`` above the highest; a z off the captured planes is shown refocused by the window
  (`engine.refocus.refocused_slide`). Without refocusing (``continuous=False``, e.g. no weights)
  it steps between the captured planes only.
* PageUp / PageDown go to the next captured plane above / below; ``]`` / ``[`` move
  ``FINE_STEP_UM`` (the window binds the keys).
* ``zChanged(z_um)`` is emitted on every change; ``plane`` is the captured plane at z (or the
  nearest one) and ``on_plane`` says whether z is exactly on it.
"""
from __future__ import annotations

import math

from PySide6.QtCore import QRect, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSlider, QStyle, QStyleOptionSlider, QToolButton, QWidget

#: Slider resolution, the fine-focus step and how far beyond the captured planes the knob goes (µm).
STEP_UM = 0.05
FINE_STEP_UM = 0.1
BEYOND_UM = 2.0


def format_z(z_um: float) -> str:
    """``z = +1.25 µm`` (sign always shown, 0 as ``0``)."""
    return "z = 0 µm" if abs(z_um) < 5e-4 else f"z = {z_um:+.2f} µm"


class PlaneTickSlider(QSlider):
    """A horizontal slider that marks the captured planes (slider values) with ticks below."""

    def __init__(self, parent=None):
        super().__init__(Qt.Orientation.Horizontal, parent)
        self.tick_values: tuple[int, ...] = ()

    def paintEvent(self, ev):  # noqa: N802 (Qt name)
        super().paintEvent(ev)
        if not self.tick_values:
            return
        p = QPainter(self)
        p.setPen(QPen(QColor(40, 110, 200) if self.isEnabled() else QColor(150, 150, 150), 2))
        for r in self.tick_rects():
            p.drawLine(r.x(), r.top(), r.x(), r.bottom())
        p.end()

    def tick_rects(self) -> list[QRect]:
        """Where the plane ticks are drawn: under the handle's centre at each tick value."""
        opt = QStyleOptionSlider()
        self.initStyleOption(opt)
        handle = self.style().subControlRect(QStyle.ComplexControl.CC_Slider, opt,
                                             QStyle.SubControl.SC_SliderHandle, self)
        span = self.width() - handle.width()
        return [QRect(handle.width() // 2 + QStyle.sliderPositionFromValue(self.minimum(), self.maximum(), v, span),
                      self.height() - 6, 1, 6) for v in self.tick_values]


class FocusControl(QWidget):
    """The z control of the window (see the module docstring). Emits ``zChanged(float)``."""

    zChanged = Signal(float)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.planes_um: tuple[float, ...] = (0.0,)
        self.continuous = True
        #: What the view shows off the captured planes ("refocusing… 2 / 9 blocks", "refocused",
        #: "blend: zoom in to refocus"), set by the window as the work progresses.
        self.state = "refocusing…"
        self.title = QLabel("Focus")
        self.down = QToolButton(text="−", toolTip="Previous plane (Page Down); fine focus: [")
        self.up = QToolButton(text="+", toolTip="Next plane (Page Up); fine focus: ]")
        self.slider = PlaneTickSlider()
        self.slider.setMinimumWidth(220)
        self.slider.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.label = QLabel()
        self.label.setMinimumWidth(230)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(6, 0, 6, 0)
        for w in (self.title, self.down, self.slider, self.up, self.label):
            lay.addWidget(w)
        self.slider.valueChanged.connect(self._changed)
        self.down.clicked.connect(self.step_down)
        self.up.clicked.connect(self.step_up)
        self.set_planes((0.0,))

    # ------------------------------------------------------------------ z ↔ slider
    def _lo_um(self) -> float:
        """z of slider value 0: BEYOND_UM below the lowest plane, rounded down to the STEP_UM grid
        so z between planes reads in round steps (0.05 µm) whatever the planes' offsets."""
        if not self.continuous:
            return min(self.planes_um)
        return math.floor((min(self.planes_um) - BEYOND_UM) / STEP_UM + 1e-9) * STEP_UM

    def _value(self, z_um: float) -> int:
        if not self.continuous:
            return min(range(len(self.planes_um)), key=lambda i: abs(self.planes_um[i] - z_um))
        return int(round((z_um - self._lo_um()) / STEP_UM))

    def _tick_plane(self) -> int | None:
        """The captured plane whose tick the slider is on, or None between ticks. A plane is
        matched by its slider value, never by comparing floats: a plane an odd multiple of
        STEP_UM / 2 from the slider's origin (0.125 µm spacing, say) would otherwise be missed."""
        v = self.slider.value()
        if not self.continuous:
            return v
        ticks = self.slider.tick_values
        return ticks.index(v) if v in ticks else None

    @property
    def z_um(self) -> float:
        """The focus shown (µm): a captured plane's own z on its tick."""
        i = self._tick_plane()
        if i is not None:
            return self.planes_um[i]
        return round(self._lo_um() + self.slider.value() * STEP_UM, 6)

    @property
    def plane(self) -> int:
        """The captured plane at z, or the nearest one."""
        i = self._tick_plane()
        if i is not None:
            return i
        z = self.z_um
        return min(range(len(self.planes_um)), key=lambda k: abs(self.planes_um[k] - z))

    @property
    def on_plane(self) -> bool:
        """Whether the slider is on a captured plane's tick (its pixels are shown as scanned)."""
        return self._tick_plane() is not None

    # ------------------------------------------------------------------ setting
    def set_planes(self, planes_um, z_um: float | None = None, continuous: bool = True) -> None:
        """Show the planes of a new slide (z in µm, ascending) and go to ``z_um`` (default: the
        plane nearest 0 µm). ``continuous`` allows any z between and beyond the planes."""
        self.planes_um = tuple(float(z) for z in planes_um)
        self.continuous = bool(continuous)
        n = len(self.planes_um)
        self.slider.blockSignals(True)
        if self.continuous:
            top = int(math.ceil((max(self.planes_um) + BEYOND_UM - self._lo_um()) / STEP_UM - 1e-9))
            self.slider.setRange(0, top)
            self.slider.setSingleStep(int(round(FINE_STEP_UM / STEP_UM)))
            self.slider.setPageStep(int(round(0.5 / STEP_UM)))
            self.slider.tick_values = tuple(self._value(z) for z in self.planes_um)
        else:
            self.slider.setRange(0, n - 1)
            self.slider.setSingleStep(1)
            self.slider.setPageStep(1)
            self.slider.tick_values = tuple(range(n))
        z = min(self.planes_um, key=abs) if z_um is None else float(z_um)
        self.slider.setValue(self._value(z))
        self.slider.blockSignals(False)
        movable = self.continuous or n > 1
        for w in (self.slider, self.up, self.down):
            w.setEnabled(movable)
        self.slider.update()
        self._update_label()

    def set_z(self, z_um: float) -> None:
        """Go to ``z_um`` (clamped to the slider's range; the nearest plane when not continuous)."""
        self.slider.setValue(self._value(z_um))

    def set_plane(self, plane: int) -> None:
        """Go to captured plane ``plane`` (clamped to the planes)."""
        self.set_z(self.planes_um[max(0, min(plane, len(self.planes_um) - 1))])

    def step_up(self) -> None:
        """The next captured plane above z (towards the objective); stays at the top one."""
        above = [p for p in self.planes_um if p > self.z_um + STEP_UM / 2]
        if above:
            self.set_z(above[0])

    def step_down(self) -> None:
        below = [p for p in self.planes_um if p < self.z_um - STEP_UM / 2]
        if below:
            self.set_z(below[-1])

    def fine_up(self) -> None:
        """z + FINE_STEP_UM (the next plane when not continuous)."""
        if self.continuous:
            self.set_z(self.z_um + FINE_STEP_UM)
        else:
            self.step_up()

    def fine_down(self) -> None:
        if self.continuous:
            self.set_z(self.z_um - FINE_STEP_UM)
        else:
            self.step_down()

    # ------------------------------------------------------------------ reactions
    def set_state(self, text: str) -> None:
        """What the view shows at a z off the captured planes (the label's second half)."""
        if text != self.state:
            self.state = text
            self._update_label()

    def _changed(self, _value: int) -> None:
        self.state = "refocusing…"  # until the window says the view is done
        self._update_label()
        self.zChanged.emit(self.z_um)

    def _update_label(self) -> None:
        n = len(self.planes_um)
        z = self.z_um
        if self.on_plane:
            where = "(single plane)" if n == 1 else f"plane {self.plane + 1}/{n}"
        else:
            where = self.state
        self.label.setText(f"{format_z(z)}   {where}")
