"""Start the viewer: the QApplication, the qasync event loop, the window.

The whole app runs on one qasync loop: Qt events and asyncio tasks share the UI thread, and
anything slow (opening files, reading or computing tiles) runs on workers whose futures the UI
awaits.

Ending: closing the window, File ▸ Quit (Ctrl+Q) and SIGTERM / SIGINT (Ctrl+C in the terminal)
all close the window, which cancels every queued and running job (`MainWindow.closeEvent`); once
the loop has ended, `run_viewer` syncs the settings, flushes its output and ends the process with
``os._exit`` — see `exit_now` for why. A second signal ends it at once.
"""
from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

import pyqtgraph as pg
import qasync
from PySide6.QtCore import QSocketNotifier, QTimer
from PySide6.QtWidgets import QApplication

from engine.cli import UserError
from engine.slides.base import Slide

from .window import MainWindow

#: Window size of `finefocus view --screenshot` (px).
SCREENSHOT_SIZE = (1280, 800)

#: Seconds the process may take, from the window closing, to clean up before it ends anyway.
EXIT_GRACE_S = 2.0


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
    # Ends the process EXIT_GRACE_S after the window closed, whatever the clean-up is doing.
    app.lastWindowClosed.connect(lambda: _exit_after(EXIT_GRACE_S, 0))
    notifier = close_on_signals(window)
    with loop:
        loop.run_forever()
    notifier.setEnabled(False)
    window.store.close()
    window.settings.sync()
    code = 128 + notifier.received[0] if notifier.received else 0  # the shell's convention
    exit_now(code)
    return code  # not reached


def close_on_signals(window, signals=(signal.SIGTERM, signal.SIGINT)) -> QSocketNotifier:
    """Make ``signals`` close ``window`` (the same path as its close button), a second one end
    the process at once; the notifier's ``received`` lists the signals that came. Python runs a signal handler only when the interpreter gets control, which
    a Qt loop waiting for events never gives it: the signal module writes to a socket
    (``signal.set_wakeup_fd``) that a QSocketNotifier watches, so the handler runs at once."""
    reader, writer = _socketpair()
    signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
    received: list[int] = []

    def handler(signum, frame):
        received.append(signum)
        if len(received) > 1:
            exit_now(128 + signum)
        QTimer.singleShot(0, window.close)
        _exit_after(EXIT_GRACE_S, 128 + signum)  # if closing itself hangs

    for sig in signals:
        signal.signal(sig, handler)
    notifier = QSocketNotifier(reader.fileno(), QSocketNotifier.Type.Read, window)

    def drain():  # the bytes only woke the loop; the handler has run by now
        try:
            reader.recv(64)
        except OSError:
            pass

    notifier.activated.connect(drain)
    notifier._sockets = (reader, writer)  # keep them open as long as the notifier lives
    notifier.received = received
    return notifier


def _socketpair():
    import socket

    reader, writer = socket.socketpair()
    reader.setblocking(False)
    writer.setblocking(False)
    return reader, writer


def exit_now(code: int) -> None:
    """End the process now, with ``code``, after flushing output and logs.

    Why ``os._exit`` rather than returning: a worker thread cannot be killed, and the workers of
    `concurrent.futures` are not daemon threads — at exit Python joins every one of them, so one
    thread still inside a long read (a codec, the phantom's renderer, torch) would hold the closed
    window's process for as long as that read takes (minutes, before the fix). The window has
    already cancelled all work and the settings are synced; nothing is left that the process must
    wait for, and open files are closed by the OS. (Daemon workers would need our own executor for
    every pool, including torch's and the libraries', and still leave a read running at exit.)"""
    try:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)


def _exit_after(seconds: float, code: int) -> None:
    """End the process with ``code`` in ``seconds`` unless it has ended by then (a daemon timer)."""
    timer = threading.Timer(seconds, exit_now, (code,))
    timer.daemon = True
    timer.start()


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
