"""Progress and cancel for long work: `JobIndicator` runs a coroutine as an asyncio task on the
UI loop and shows a progress bar with a Cancel button while it runs."""
from __future__ import annotations

import asyncio
from typing import Awaitable, Callable

from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QToolButton, QWidget

#: A coroutine factory that receives ``progress(fraction in 0..1)``.
JobFactory = Callable[[Callable[[float], None]], Awaitable]


class JobIndicator(QWidget):
    """Shows the running job (label, progress, Cancel); hidden when idle. One job at a time:
    starting a new one cancels the previous."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.label = QLabel()
        self.bar = QProgressBar()
        self.bar.setMaximumWidth(140)
        self.bar.setTextVisible(False)
        self.cancel_button = QToolButton(text="Cancel")
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        for w in (self.label, self.bar, self.cancel_button):
            lay.addWidget(w)
        self.task: asyncio.Task | None = None
        self.cancel_button.clicked.connect(self.cancel)
        self.hide()

    def run(self, label: str, job: JobFactory) -> asyncio.Task:
        """Start ``job(progress)`` as a task; progress is indeterminate until reported."""
        self.cancel()
        self.label.setText(label)
        self.bar.setRange(0, 0)
        self.show()
        task = asyncio.get_running_loop().create_task(job(self._progress))
        self.task = task
        task.add_done_callback(self._done)
        return task

    def cancel(self) -> None:
        """Cancel the running job, if any."""
        if self.task is not None and not self.task.done():
            self.task.cancel()

    def _progress(self, fraction: float) -> None:
        self.bar.setRange(0, 1000)
        self.bar.setValue(int(max(0.0, min(1.0, fraction)) * 1000))

    def _done(self, task: asyncio.Task) -> None:
        if task is self.task:
            self.task = None
            self.hide()
