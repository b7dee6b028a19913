"""`OverlayMenu`: View ▸ Overlay — one checkable entry per overlay on offer, "None" first.

Filled each time it opens (and on demand), so it always lists the registry's kinds and enables
only those that suit the slide shown (e.g. no depth map for a single plane). Kinds with a
``group`` go to a submenu of that name (the classical metrics).
"""
from __future__ import annotations

from typing import Callable

from PySide6.QtGui import QAction, QActionGroup
from PySide6.QtWidgets import QMenu

from engine.slides.base import Slide

from .registry import overlay_kinds


class OverlayMenu:
    """Fills ``menu``; ``choose(key or None)`` is called when the user picks an entry;
    ``current()`` gives the key shown now and ``slide()`` the slide shown."""

    def __init__(self, menu: QMenu, choose: Callable[[str | None], None],
                 current: Callable[[], str | None], slide: Callable[[], Slide | None]):
        self.menu = menu
        self._choose, self._current, self._slide = choose, current, slide
        self._group: QActionGroup | None = None
        menu.aboutToShow.connect(self.fill)

    def fill(self) -> None:
        menu = self.menu
        menu.clear()
        if self._group is not None:
            self._group.deleteLater()
        self._group = group = QActionGroup(menu)
        current, slide = self._current(), self._slide()

        def add(target: QMenu, text: str, key: str | None, enabled: bool = True) -> None:
            act = target.addAction(text)
            act.setCheckable(True)
            act.setChecked(key == current)
            act.setEnabled(enabled)
            act.setData(key)
            group.addAction(act)
            act.triggered.connect(lambda *_, k=key: self._choose(k))

        add(menu, "&None", None)
        submenus: dict[str, QMenu] = {}
        for kind in overlay_kinds():
            target = menu
            if kind.group:
                if kind.group not in submenus:
                    submenus[kind.group] = menu.addMenu(kind.group)
                target = submenus[kind.group]
            add(target, kind.title, kind.key, kind.available(slide))

    def actions(self) -> dict[str | None, QAction]:
        """``key → QAction`` of the entries as last filled (None: the "None" entry)."""
        found = {}
        stack = [self.menu]
        while stack:
            for act in stack.pop().actions():
                if act.menu() is not None:
                    stack.append(act.menu())
                elif act.isCheckable():
                    found[act.data()] = act
        return found

    def sync(self) -> None:
        """Check the entry of the overlay shown now."""
        current = self._current()
        for key, act in self.actions().items():
            act.setChecked(key == current)
