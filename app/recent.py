"""Recent files, kept in QSettings (most recent first)."""
from __future__ import annotations

from PySide6.QtCore import QSettings

KEY = "recent_files"


class RecentFiles:
    """The last ``limit`` slides opened, as absolute paths, stored in ``settings``."""

    def __init__(self, settings: QSettings, limit: int = 10):
        self.settings = settings
        self.limit = limit

    def paths(self) -> list[str]:
        value = self.settings.value(KEY, [])
        if isinstance(value, str):  # QSettings returns a lone string for one-element lists
            value = [value]
        return [str(v) for v in (value or [])]

    def add(self, path: str) -> None:
        paths = [path] + [p for p in self.paths() if p != path]
        self.settings.setValue(KEY, paths[: self.limit])
        self.settings.sync()

    def clear(self) -> None:
        self.settings.setValue(KEY, [])
        self.settings.sync()
