"""Help ▸ Shortcuts: every key of the window's menus (read from their actions, so the list
cannot drift from what the keys do) and the mouse gestures of the canvas and the paint tools."""
from __future__ import annotations

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QHeaderView, QTableWidget, QTableWidgetItem, QVBoxLayout

from .focus.actions import MOUSE as FOCUS_MOUSE

#: Gestures no action lists: (what you do, what it does).
MOUSE = [
    ("Drag (no tool)", "Pan"),
    ("Middle drag, right drag, Space + drag", "Pan while a paint tool is active"),
    ("Wheel over the slide", "Zoom"),
    *FOCUS_MOUSE,
    ("Left drag with B / E / S", "Paint / erase / smooth a stroke"),
    ("Left drag with F", "Fill a lasso to the brush depth (Shift: a rectangle)"),
]


def shortcut_rows(window) -> list[tuple[str, str]]:
    """(keys, action text) of every action of ``window`` with a shortcut, in menu order."""
    rows, seen = [], set()
    for act in window.findChildren(QAction):
        keys = [k.toString(QKeySequence.SequenceFormat.NativeText) for k in act.shortcuts()]
        if not keys or id(act) in seen:
            continue
        seen.add(id(act))
        rows.append((", ".join(keys), act.text().replace("&", "")))
    return rows


class ShortcutsDialog(QDialog):
    """A table of keys and gestures (non-modal)."""

    def __init__(self, window):
        super().__init__(window)
        self.setWindowTitle("FineFocus — shortcuts")
        self.setObjectName("shortcutsDialog")
        rows = shortcut_rows(window) + MOUSE
        self.table = QTableWidget(len(rows), 2, self)
        self.table.setHorizontalHeaderLabels(["Keys / mouse", "Does"])
        for i, (keys, text) in enumerate(rows):
            self.table.setItem(i, 0, QTableWidgetItem(keys))
            self.table.setItem(i, 1, QTableWidgetItem(text))
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.table.resizeColumnToContents(0)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        column = QVBoxLayout(self)
        column.addWidget(self.table)
        column.addWidget(buttons)
        self.resize(560, 620)

    def rows(self) -> list[tuple[str, str]]:
        return [(self.table.item(i, 0).text(), self.table.item(i, 1).text()) for i in range(self.table.rowCount())]
