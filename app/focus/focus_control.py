"""`FocusControl`: the fine-focus knob. A continuous z slider (µm) whose captured focal planes
show as ticks, its range in µm at its ends, the z (readable and typed), and buttons.

* The slider moves in ``STEP_UM`` steps from ``BEYOND_UM`` below the lowest captured plane to
  ``BEYOND_UM`` above the highest; a z off the captured planes is shown refocused by the window
  (`engine.refocus.refocused_slide`). Without refocusing (``continuous=False``, e.g. no weights)
  it steps between the captured planes only.
* Steps: PageUp / PageDown go to the next captured plane above / below; ``]`` / ``[`` (and the
  wheel over the knob, Ctrl + wheel over the slide) move ``FINE_STEP_UM``, Ctrl + ``]`` / ``[``
  (Shift + wheel over the knob, Ctrl + Shift + wheel over the slide) ``COARSE_STEP_UM``. The
  window binds the keys (app/focus/actions.py), the wheel is app/focus/wheel.py.
* "Back to scan focus" (``back_to_scan_focus``, the 0 key, the ``Scan focus`` button) goes to the
  plane the slide was scanned in focus at: the captured plane nearest the nominal focus, 0 µm.
* A typed z (`ZEntry`, the Z key puts the cursor there) goes to that z, clamped to the range
  (``set_typed_z``); an unreadable one is refused with a message.
* Snap to captured planes (``set_snap``, the N key and the ``Snap`` button): steps, the wheel and
  a typed z land on captured planes, and a dragged knob sticks to a plane within ``MAGNET_UM``.
* At the end of its range (or with no captured plane further for a plane step) a step does not
  silently do nothing: the knob flashes that end (``flashing``) and says so (``message``).
* ``zChanged(z_um)`` is emitted on every change; ``plane`` is the captured plane at z (or the
  nearest one) and ``on_plane`` says whether z is exactly on it. ``in_gesture`` is True while the
  knob is dragged or the wheel turns (the window coalesces those changes: app/focus/dispatch.py);
  ``gestureFinished`` when that ends.
"""
from __future__ import annotations

import math

from PySide6.QtCore import QRect, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import (QAbstractSlider, QHBoxLayout, QLabel, QSlider, QStyle, QStyleOptionSlider,
                               QToolButton, QWidget)

from .wheel import WheelNotches, is_coarse
from .z_entry import ZEntry, parse_z

#: Slider resolution, the fine and coarse focus steps and how far beyond the captured planes the
#: knob goes (µm).
STEP_UM = 0.05
FINE_STEP_UM = 0.1
COARSE_STEP_UM = 0.5
BEYOND_UM = 2.0
#: With snapping on, a dragged knob within this distance of a captured plane sits on it (µm; at
#: most a third of the smallest plane spacing, so two planes' pulls never meet).
MAGNET_UM = 0.15
#: How long the end of the knob flashes when a step would go past it (ms).
FLASH_MS = 700
#: A wheel gesture ends this long after its last event (ms).
WHEEL_GESTURE_MS = 150

TOP, BOTTOM = "top", "bottom"


def format_z(z_um: float) -> str:
    """``z = +1.25 µm`` (sign always shown, 0 as ``0``)."""
    return "z = 0 µm" if abs(z_um) < 5e-4 else f"z = {z_um:+.2f} µm"


def format_um(z_um: float) -> str:
    """A z as short as it reads exactly: ``−3 µm``, ``+2.75 µm``, ``0 µm``."""
    if abs(z_um) < 5e-4:
        return "0 µm"
    text = f"{z_um:+.2f}".rstrip("0").rstrip(".")
    return text.replace("-", "\u2212") + " µm"


class PlaneTickSlider(QSlider):
    """A horizontal slider that marks the captured planes (slider values) with ticks below (the
    scan focus's taller) and, while ``flash_side`` is set, that end in red. Its wheel events go to
    ``wheeled(delta, modifiers)``."""

    wheeled = Signal(int, object)

    def __init__(self, parent=None):
        super().__init__(Qt.Orientation.Horizontal, parent)
        self.tick_values: tuple[int, ...] = ()
        self.scan_value: int | None = None
        self.flash_side: str | None = None

    def wheelEvent(self, ev):  # noqa: N802 (Qt name)
        from .wheel import wheel_delta

        self.wheeled.emit(wheel_delta(ev), ev.modifiers())
        ev.accept()

    def paintEvent(self, ev):  # noqa: N802 (Qt name)
        super().paintEvent(ev)
        p = QPainter(self)
        if self.flash_side is not None:
            w = max(14, self.width() // 8)
            x = self.width() - w if self.flash_side == TOP else 0
            p.fillRect(QRect(x, 0, w, self.height()), QColor(220, 50, 50, 110))
            p.setPen(QPen(QColor(210, 40, 40), 2))
            p.drawRect(self.rect().adjusted(1, 1, -1, -1))
        colour = QColor(40, 110, 200) if self.isEnabled() else QColor(150, 150, 150)
        for v, r in zip(self.tick_values, self.tick_rects()):
            scan = v == self.scan_value
            p.setPen(QPen(QColor(20, 150, 70) if scan and self.isEnabled() else colour, 3 if scan else 2))
            p.drawLine(r.x(), r.top() - (3 if scan else 0), r.x(), r.bottom())
        p.end()

    def x_of(self, value: int) -> int:
        """The x (px) of the handle's centre at ``value``."""
        opt = QStyleOptionSlider()
        self.initStyleOption(opt)
        handle = self.style().subControlRect(QStyle.ComplexControl.CC_Slider, opt,
                                             QStyle.SubControl.SC_SliderHandle, self)
        span = self.width() - handle.width()
        return handle.width() // 2 + QStyle.sliderPositionFromValue(self.minimum(), self.maximum(), value, span)

    def tick_rects(self) -> list[QRect]:
        """Where the plane ticks are drawn: under the handle's centre at each tick value."""
        return [QRect(self.x_of(v), self.height() - 6, 1, 6) for v in self.tick_values]


class FocusControl(QWidget):
    """The z control of the window (see the module docstring). Emits ``zChanged(float)``,
    ``message(str)`` (for the status bar), ``limitReached(str)`` (``"top"`` / ``"bottom"``),
    ``snapChanged(bool)`` and ``gestureFinished()``."""

    zChanged = Signal(float)
    message = Signal(str)
    limitReached = Signal(str)
    snapChanged = Signal(bool)
    gestureFinished = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.planes_um: tuple[float, ...] = (0.0,)
        self.continuous = True
        self.snap = False
        #: The end flashing now ("top" / "bottom") or None.
        self.flashing: str | None = None
        #: What the view shows off the captured planes ("refocusing… 2 / 9 blocks", "refocused",
        #: "blend: zoom in to refocus"), set by the window as the work progresses.
        self.state = "refocusing…"
        self._emitted_z: float | None = None
        self._notches = WheelNotches()
        self._wheeling = False
        self.title = QLabel("Focus")
        self.scan = QToolButton(text="Scan focus", objectName="scanFocusButton",
                                toolTip="Back to the scan focus: the captured plane nearest 0 µm (0)")
        self.down = QToolButton(text="−", toolTip="Previous plane (Page Down); fine focus: [, coarse: Ctrl+[")
        self.up = QToolButton(text="+", toolTip="Next plane (Page Up); fine focus: ], coarse: Ctrl+]")
        self.lo_label = QLabel(objectName="focusRangeLow")
        self.hi_label = QLabel(objectName="focusRangeHigh")
        self.slider = PlaneTickSlider()
        self.slider.setMinimumWidth(160)
        self.slider.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.z_entry = ZEntry()
        self.snap_button = QToolButton(text="Snap", checkable=True, objectName="snapButton",
                                       toolTip="Snap to the captured planes (N): steps land on them and a "
                                               f"dragged knob sticks to one within {MAGNET_UM:g} µm")
        self.label = QLabel()
        self.label.setMinimumWidth(170)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(6, 0, 6, 0)
        lay.setSpacing(4)
        for w in (self.title, self.scan, self.down, self.lo_label, self.slider, self.hi_label, self.up,
                  self.z_entry, self.snap_button, self.label):
            lay.addWidget(w)
        self._flash_timer = QTimer(self, singleShot=True, interval=FLASH_MS)
        self._flash_timer.timeout.connect(self._end_flash)
        self._wheel_timer = QTimer(self, singleShot=True, interval=WHEEL_GESTURE_MS)
        self._wheel_timer.timeout.connect(self._end_wheel)
        self.slider.valueChanged.connect(self._changed)
        self.slider.actionTriggered.connect(self._slider_action)
        self.slider.sliderReleased.connect(self.gestureFinished.emit)
        self.slider.wheeled.connect(self.wheel)
        self.down.clicked.connect(self.step_down)
        self.up.clicked.connect(self.step_up)
        self.scan.clicked.connect(self.back_to_scan_focus)
        self.snap_button.toggled.connect(self.set_snap)
        self.z_entry.submitted.connect(self.set_typed_z)
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

    def _z_of(self, value: int) -> float:
        """The z at slider ``value`` (a captured plane's own z on its tick)."""
        ticks = self.slider.tick_values
        if value in ticks:
            return self.planes_um[ticks.index(value)]
        return round(self._lo_um() + value * STEP_UM, 6)

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
        return self._z_of(self.slider.value())

    @property
    def range_um(self) -> tuple[float, float]:
        """The lowest and highest z the knob reaches (µm)."""
        return self._z_of(self.slider.minimum()), self._z_of(self.slider.maximum())

    @property
    def scan_focus_um(self) -> float:
        """The scan focus: the captured plane nearest the nominal focus (0 µm), the z a slide
        opens at."""
        return min(self.planes_um, key=abs)

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

    @property
    def in_gesture(self) -> bool:
        """True while the knob is dragged or the wheel is turning it."""
        return self.slider.isSliderDown() or self._wheeling

    def magnet_um(self) -> float:
        """The drag magnet's radius with snapping on (µm)."""
        gaps = [b - a for a, b in zip(self.planes_um, self.planes_um[1:])]
        return min([MAGNET_UM] + [g / 3 for g in gaps])

    # ------------------------------------------------------------------ setting
    def set_planes(self, planes_um, z_um: float | None = None, continuous: bool = True) -> None:
        """Show the planes of a new slide (z in µm, ascending) and go to ``z_um`` (default: the
        scan focus, the plane nearest 0 µm). ``continuous`` allows any z between and beyond the
        planes. Emits nothing."""
        self.planes_um = tuple(float(z) for z in planes_um)
        self.continuous = bool(continuous)
        n = len(self.planes_um)
        self.slider.blockSignals(True)
        if self.continuous:
            top = int(math.ceil((max(self.planes_um) + BEYOND_UM - self._lo_um()) / STEP_UM - 1e-9))
            self.slider.setRange(0, top)
            self.slider.setSingleStep(int(round(FINE_STEP_UM / STEP_UM)))
            self.slider.setPageStep(int(round(COARSE_STEP_UM / STEP_UM)))
            self.slider.tick_values = tuple(self._value(z) for z in self.planes_um)
        else:
            self.slider.setRange(0, n - 1)
            self.slider.setSingleStep(1)
            self.slider.setPageStep(1)
            self.slider.tick_values = tuple(range(n))
        self.slider.scan_value = self.slider.tick_values[self.planes_um.index(self.scan_focus_um)]
        z = self.scan_focus_um if z_um is None else float(z_um)
        self.slider.setValue(self._value(z))
        self.slider.blockSignals(False)
        movable = self.continuous or n > 1
        for w in (self.slider, self.up, self.down, self.scan, self.z_entry):
            w.setEnabled(movable)
        self.snap_button.setEnabled(self.continuous and n > 1)
        lo, hi = self.range_um
        self.lo_label.setText(format_um(lo))
        self.hi_label.setText(format_um(hi))
        planes = ", ".join(format_um(p) for p in self.planes_um)
        self.slider.setToolTip(f"Focus from {format_um(lo)} to {format_um(hi)}; captured planes (ticks): {planes}; "
                               f"scan focus {format_um(self.scan_focus_um)} (green)")
        self._emitted_z = self.z_um
        self._end_flash()
        self.slider.update()
        self._update_label()

    def set_z(self, z_um: float) -> None:
        """Go to ``z_um`` (clamped to the slider's range; the nearest plane when not continuous)."""
        self.slider.setValue(self._value(z_um))

    def set_plane(self, plane: int) -> None:
        """Go to captured plane ``plane`` (clamped to the planes)."""
        self.set_z(self.planes_um[max(0, min(plane, len(self.planes_um) - 1))])

    def set_snap(self, on: bool) -> None:
        """Snap to the captured planes (see the module docstring); ``snapChanged`` tells the
        window's menu. Turning it on does not move the knob."""
        on = bool(on)
        if on == self.snap:
            return
        self.snap = on
        self.snap_button.setChecked(on)
        self.snapChanged.emit(on)
        self.message.emit("Snap to captured planes: on (steps land on the planes; N turns it off)" if on
                          else "Snap to captured planes: off")

    def toggle_snap(self) -> None:
        self.set_snap(not self.snap)

    def back_to_scan_focus(self) -> None:
        """Go to the scan focus (see ``scan_focus_um``) and say so."""
        z = self.scan_focus_um
        i = self.planes_um.index(z)
        where = f"plane {i + 1}/{len(self.planes_um)}, {format_z(z)}"
        if self.on_plane and self.plane == i:
            self.message.emit(f"Already at the scan focus ({where})")
            return
        self.set_z(z)
        self.message.emit(f"Back to the scan focus ({where})")

    def set_typed_z(self, text: str) -> bool:
        """Go to the z ``text`` names (`parse_z`), clamped to the knob's range (and to the nearest
        captured plane with snapping on or without refocusing), saying what was done; an
        unreadable text is refused with a message and the box framed red. Returns success."""
        try:
            wanted = parse_z(text)
        except ValueError as exc:
            msg = f"Focus: {exc}"
            self.z_entry.show_error(msg)
            self.message.emit(msg)
            return False
        lo, hi = self.range_um
        notes = []
        target = wanted
        if target > hi or target < lo:
            target = min(hi, max(lo, target))
            notes.append(f"{format_um(wanted)} is outside the knob's range {format_um(lo)} … {format_um(hi)}")
            self._flash(TOP if wanted > hi else BOTTOM)
        if self.snap or not self.continuous:
            near = min(self.planes_um, key=lambda p: abs(p - target))
            if abs(near - target) > 1e-9:
                why = "snap is on" if self.continuous else "without refocusing the knob shows captured planes only"
                notes.append(f"{why}: the nearest captured plane")
            target = near
        self.set_z(target)
        got = self.z_um
        if not notes and abs(got - wanted) > 1e-6:
            notes.append(f"{format_um(wanted)} rounded to the knob's {STEP_UM:g} µm steps")
        self.z_entry.show_z(got, force=True)
        self.z_entry.clearFocus()
        self.message.emit(f"Focus {format_z(got)}" + (f" ({'; '.join(notes)})" if notes else ""))
        return True

    def edit_z(self) -> None:
        """Put the cursor in the z box (the Z key)."""
        self.z_entry.begin()

    # ------------------------------------------------------------------ steps
    def step_up(self) -> None:
        """The next captured plane above z (towards the objective); at the highest one it says so."""
        above = [p for p in self.planes_um if p > self.z_um + STEP_UM / 2]
        if above:
            self.set_z(above[0])
        else:
            self._limit(TOP, plane=True)

    def step_down(self) -> None:
        below = [p for p in self.planes_um if p < self.z_um - STEP_UM / 2]
        if below:
            self.set_z(below[-1])
        else:
            self._limit(BOTTOM, plane=True)

    def step_by(self, delta_um: float) -> None:
        """Move z by ``delta_um`` (a fine or coarse step, or several); to the next captured plane in
        that direction with snapping on or without refocusing. A step that would pass the end of
        the range stops there and says so."""
        if delta_um == 0:
            return
        if self.snap or not self.continuous:
            (self.step_up if delta_um > 0 else self.step_down)()
            return
        lo, hi = self.range_um
        target = self.z_um + delta_um
        self.set_z(target)
        if target > hi + 1e-9:
            self._limit(TOP)
        elif target < lo - 1e-9:
            self._limit(BOTTOM)

    def fine_up(self) -> None:
        """z + FINE_STEP_UM (the next plane when not continuous or snapping)."""
        self.step_by(FINE_STEP_UM)

    def fine_down(self) -> None:
        self.step_by(-FINE_STEP_UM)

    def coarse_up(self) -> None:
        """z + COARSE_STEP_UM (the next plane when not continuous or snapping)."""
        self.step_by(COARSE_STEP_UM)

    def coarse_down(self) -> None:
        self.step_by(-COARSE_STEP_UM)

    def wheel(self, delta: int, modifiers) -> None:
        """A wheel (or trackpad) event of ``delta`` angle units: fine steps a notch, coarse with
        Shift or Alt (see app/focus/wheel.py). The changes are a gesture until the wheel rests."""
        if not self.slider.isEnabled():
            return
        notches = self._notches.add(delta)
        self._wheeling = True
        self._wheel_timer.start()
        if not notches:
            return
        if self.snap or not self.continuous:
            for _ in range(abs(notches)):
                before = self.z_um
                (self.step_up if notches > 0 else self.step_down)()
                if self.z_um == before:
                    break
            return
        self.step_by(notches * (COARSE_STEP_UM if is_coarse(modifiers) else FINE_STEP_UM))

    def wheelEvent(self, ev):  # noqa: N802 (Qt name): the wheel over the labels and buttons too
        from .wheel import wheel_delta

        self.wheel(wheel_delta(ev), ev.modifiers())
        ev.accept()

    def _end_wheel(self) -> None:
        self._wheeling = False
        self.gestureFinished.emit()

    # ------------------------------------------------------------------ the end of the range
    def _limit(self, side: str, plane: bool = False) -> None:
        """Say that a step towards ``side`` cannot go on, and flash that end."""
        lo, hi = self.range_um
        up = side == TOP
        if plane and self.continuous:
            edge = max(self.planes_um) if up else min(self.planes_um)
            further = "] or the wheel go on refocused" if (up and self.z_um < hi) or (not up and self.z_um > lo) \
                else "the knob is at its end too"
            text = (f"Focus: no captured plane {'above' if up else 'below'} {format_um(self.z_um)} "
                    f"(the {'highest' if up else 'lowest'} is {format_um(edge)}; {further})")
        elif not self.continuous:
            text = (f"Focus: at the {'highest' if up else 'lowest'} captured plane ({format_um(hi if up else lo)}); "
                    "no refocusing weights to go further")
        else:
            text = (f"Focus at the {'top' if up else 'bottom'} of its range ({format_um(hi if up else lo)}, "
                    f"{BEYOND_UM:g} µm {'above the highest' if up else 'below the lowest'} captured plane)")
        self._flash(side)
        self.message.emit(text)
        self.limitReached.emit(side)

    def _flash(self, side: str) -> None:
        self.flashing = side
        self.slider.flash_side = side
        style = "QLabel { color: #d33; font-weight: bold; }"
        (self.hi_label if side == TOP else self.lo_label).setStyleSheet(style)
        (self.lo_label if side == TOP else self.hi_label).setStyleSheet("")
        self.slider.update()
        self._flash_timer.start()

    def _end_flash(self) -> None:
        self._flash_timer.stop()
        self.flashing = None
        self.slider.flash_side = None
        self.lo_label.setStyleSheet("")
        self.hi_label.setStyleSheet("")
        self.slider.update()

    # ------------------------------------------------------------------ reactions
    def set_state(self, text: str) -> None:
        """What the view shows at a z off the captured planes (the label's second half)."""
        if text != self.state:
            self.state = text
            self._update_label()

    def _slider_action(self, action: int) -> None:
        """A click on the groove (a page step): with snapping on, to the next plane that way;
        at the end of the range, say so."""
        act = QAbstractSlider.SliderAction
        if action not in (act.SliderPageStepAdd.value, act.SliderPageStepSub.value,
                          act.SliderSingleStepAdd.value, act.SliderSingleStepSub.value):
            return
        up = action in (act.SliderPageStepAdd.value, act.SliderSingleStepAdd.value)
        if self.slider.value() == (self.slider.maximum() if up else self.slider.minimum()):
            self._limit(TOP if up else BOTTOM)
            return
        if self.snap and self.continuous:
            z = self.z_um
            planes = [p for p in self.planes_um if (p > z + STEP_UM / 2 if up else p < z - STEP_UM / 2)]
            if planes:
                self.slider.setSliderPosition(self._value(planes[0] if up else planes[-1]))
            else:
                self.slider.setSliderPosition(self.slider.value())
                self._limit(TOP if up else BOTTOM, plane=True)

    def _magnet(self, value: int) -> int:
        """With snapping on, a dragged knob's value pulled onto a plane's tick within the magnet."""
        if not (self.snap and self.continuous and self.slider.isSliderDown()):
            return value
        z = self._z_of(value)
        radius = self.magnet_um() + 1e-9
        near = min(range(len(self.planes_um)), key=lambda i: abs(self.planes_um[i] - z))
        if abs(self.planes_um[near] - z) <= radius:
            return self.slider.tick_values[near]
        return value

    def _changed(self, value: int) -> None:
        snapped = self._magnet(value)
        if snapped != value:
            self.slider.blockSignals(True)
            self.slider.setValue(snapped)
            self.slider.blockSignals(False)
        z = self.z_um
        if z == self._emitted_z:
            return  # held on a plane by the magnet: nothing new to show
        self._emitted_z = z
        self.state = "refocusing…"  # until the window says the view is done
        if self.flashing is not None:
            lo, hi = self.range_um
            if lo < z < hi:
                self._end_flash()
        self._update_label()
        self.zChanged.emit(z)

    def _update_label(self) -> None:
        n = len(self.planes_um)
        z = self.z_um
        if self.on_plane:
            where = "(single plane)" if n == 1 else f"plane {self.plane + 1}/{n}"
            if n > 1 and self.plane == self.planes_um.index(self.scan_focus_um):
                where += ", scan focus"
        else:
            where = self.state
        self.label.setText(f"{format_z(z)}   {where}")
        self.z_entry.show_z(z)
