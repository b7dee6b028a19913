"""The error dialog: non-modal (``QMessageBox.open``), so the window stays up and usable."""
from __future__ import annotations

from PySide6.QtWidgets import QMessageBox, QWidget

from engine.slides.base import SlideError


def describe(path: object, exc: BaseException) -> str:
    """One line naming the file and the reason: SlideError already does; anything else
    (an OSError, a library's ValueError) is prefixed with the path."""
    if isinstance(exc, SlideError):
        return str(exc)
    reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return f"{path}: {reason}"


def show_error(parent: QWidget, title: str, message: str) -> QMessageBox:
    """Show ``message`` in a window-modal box that does not block the event loop."""
    box = QMessageBox(QMessageBox.Icon.Critical, title, message, QMessageBox.StandardButton.Ok, parent)
    box.setObjectName("errorDialog")
    box.open()
    return box
