"""Start the viewer: the QApplication, the qasync event loop, the window.

The whole app runs on one qasync loop: Qt events and asyncio tasks share the UI thread, and
anything slow (opening files, reading or computing tiles) runs on workers whose futures the UI
awaits.
"""
from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

import pyqtgraph as pg
import qasync
from PySide6.QtWidgets import QApplication

from engine.cli import UserError
from engine.slides.base import Slide

from .window import MainWindow

#: Window size of `finefocus view --screenshot` (px).
SCREENSHOT_SIZE = (1280, 800)


def application() -> QApplication:
    """The QApplication (created once)."""
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("FineFocus")
    app.setOrganizationName("FineFocus")
    pg.setConfigOptions(imageAxisOrder="row-major", antialias=False)
    return app


def event_loop(app: QApplication) -> qasync.QEventLoop:
    """A qasync loop over ``app``, installed as the asyncio event loop."""
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    return loop


def show_slide(window: MainWindow, slide: Slide, z_um: float | None = None,
               region: tuple[float, float, float, float] | None = None,
               overlay: str | None = None, opacity: float | None = None) -> None:
    """Put ``slide`` in ``window`` at focus ``z_um`` (µm; default: its plane nearest 0 µm),
    showing ``region`` (level-0 px x, y, w, h)
    or the whole slide, with the overlay ``overlay`` (a key of app/overlays/registry.py) at
    ``opacity`` (0..1) if given."""
    window.set_slide(slide)
    if z_um is not None:
        window.focus.set_z(z_um)
    if region is not None:
        window.canvas.set_view_rect(*region)
    if opacity is not None:
        window.overlay_panel.opacity.setValue(round(100 * opacity))
    if overlay is not None:
        window.set_overlay(overlay)


def run_viewer(slide: Slide | None = None, path: str | None = None, z_um: float | None = None,
               region: tuple[float, float, float, float] | None = None,
               overlay: str | None = None, opacity: float | None = None) -> int:
    """Show the window on ``slide`` (already open) or open ``path`` in it; run until closed."""
    app = application()
    loop = event_loop(app)
    window = MainWindow()
    window.show()

    async def start():
        if slide is not None:
            show_slide(window, slide, z_um, region, overlay, opacity)
        else:
            window.open_path(path)

    loop.create_task(start())
    app.lastWindowClosed.connect(loop.stop)
    with loop:
        loop.run_forever()
    window.store.close()
    return 0


def _unwritable_reason(path) -> str:
    """Why a file cannot be written at ``path``, in a few words."""
    p = Path(path)
    if p.is_dir():
        return "it is a folder"
    if not p.parent.is_dir():
        return f"no folder {p.parent}"
    if not os.access(p.parent, os.W_OK):
        return f"folder {p.parent} is not writable"
    return "the image could not be saved there"


async def until_painted(window: MainWindow, timeout_s: float, poll_s: float = 0.02) -> bool:
    """Wait until the visible tiles (slide and overlay) show their exact pixels and the overview
    is drawn; False on timeout."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if window.overlays.ready() and window.canvas.is_settled() and window.overview_ready():
            return True
        await asyncio.sleep(poll_s)
    return False


def screenshot(slide: Slide, out: Path, size: tuple[int, int] = SCREENSHOT_SIZE, z_um: float | None = None,
               region: tuple[float, float, float, float] | None = None,
               timeout_s: float = 300.0, overlay: str | None = None,
               opacity: float | None = None) -> float | None:
    """Open the real window on ``slide`` (at focus ``z_um`` µm, showing ``region`` or the whole
    slide), wait until it is painted, save a PNG of it to ``out``. Returns seconds to a
    complete paint, or None on timeout."""
    app = application()
    loop = event_loop(app)
    window = MainWindow()
    window.resize(*size)
    window.show()

    async def shoot():
        t0 = time.perf_counter()
        show_slide(window, slide, z_um, region, overlay, opacity)
        painted = await until_painted(window, timeout_s)
        elapsed = time.perf_counter() - t0
        app.processEvents()
        if not window.grab().save(str(out), "PNG"):
            raise UserError(f"{out}: cannot write the PNG ({_unwritable_reason(out)})")
        window.canvas.stop()
        await asyncio.sleep(0)  # let the cancelled tile tasks finish before the loop closes
        return elapsed if painted else None

    try:
        with loop:
            return loop.run_until_complete(shoot())
    finally:
        window.store.close()
        window.close()
