"""The focus knob's extras in the window: its keys (View menu actions, so Help ▸ Shortcuts lists
them), Ctrl + wheel over the slide, the knob's messages in the status bar, and the coalescing of a
drag's focus changes (`FocusDispatch`). The knob's own steps (Page Up / Down, ``[`` ``]``) stay
where the window defines them."""
from __future__ import annotations

from PySide6.QtGui import QAction, QKeySequence

from .dispatch import FocusDispatch
from .focus_control import COARSE_STEP_UM
from .wheel import SlideWheelFocus

#: (text, keys, method of FocusControl) of the keys added to the View menu.
KEYS = [
    (f"Coarse focus up (+{COARSE_STEP_UM:g} µm)", ["Ctrl+]"], "coarse_up"),
    (f"Coarse focus down (−{COARSE_STEP_UM:g} µm)", ["Ctrl+["], "coarse_down"),
    ("Back to scan &focus", ["0"], "back_to_scan_focus"),
    ("&Type a focus (z in µm)…", ["Z"], "edit_z"),
]

#: Mouse gestures of the knob for Help ▸ Shortcuts: (what you do, what it does).
MOUSE = [
    ("Ctrl + wheel over the slide; wheel over the focus knob", "Fine focus (0.1 µm a notch; a trackpad too)"),
    ("Ctrl + Shift (or Alt) + wheel over the slide; Shift + wheel over the knob",
     f"Coarse focus ({COARSE_STEP_UM:g} µm a notch)"),
    ("Drag the focus knob", "Focus at any z (with Snap on it sticks to a captured plane nearby)"),
    ("Type a z in the box beside the knob, Enter", "Go to that focus (µm; Esc puts the knob's z back)"),
]


class FocusExtras:
    """Wires the knob of ``window`` (its ``focus``, ``canvas`` and status bar) to the menu ``menu``
    and calls ``apply(z_um)`` for its focus changes (coalesced while dragging)."""

    def __init__(self, window, menu, apply):
        focus = window.focus
        self.focus = focus
        self.actions: dict[str, QAction] = {}
        for text, keys, method in KEYS:
            act = QAction(text, window)
            act.setShortcuts([QKeySequence(k) for k in keys])
            act.triggered.connect(lambda *_, m=method: getattr(focus, m)())
            menu.addAction(act)
            self.actions[method] = act
        self.snap_action = QAction("&Snap to captured planes", window, checkable=True)
        self.snap_action.setShortcut(QKeySequence("N"))
        self.snap_action.setToolTip("Steps, the wheel and a typed z land on the captured planes")
        self.snap_action.triggered.connect(lambda on: focus.set_snap(on))
        focus.snapChanged.connect(self.snap_action.setChecked)
        menu.addAction(self.snap_action)
        self.actions["snap"] = self.snap_action
        focus.message.connect(lambda text: window.statusBar().showMessage(text, 4000))
        self.wheel = SlideWheelFocus(window.canvas, focus)
        self.dispatch = FocusDispatch(focus, apply, window)
