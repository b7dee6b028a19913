"""Run the real viewer (`app.main.run_viewer`) in this process, on the built-in slide with an
overlay at fit zoom, for the tests that time how fast the process ends (tests/app/test_shutdown.py).

    python -m tests.app.viewer_process MODE [OVERLAY]

Prints ``computing S`` (flushed) once the overlay's tiles are being computed (the overlay is
built and the canvas waits for its tiles), and ``first-pixels S`` when the first exact overlay
tile is on screen (S = seconds since the window opened). MODE ``close``: 2 s after ``computing`` the script
prints ``closing`` and calls ``window.close()``; MODE ``wait``: it waits (for a signal from the
test). The process is expected to end by itself: the test measures how long that takes.
"""
from __future__ import annotations

import os
import sys
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def main(mode: str, overlay: str = "focuslitenn-1") -> None:
    from PySide6.QtCore import QTimer

    from app import main as viewer
    from app.window import MainWindow
    from engine.slides import open_slide

    slide = open_slide(None)
    app = viewer.application()
    t0 = time.monotonic()
    said: set[str] = set()

    def say(word: str, extra: str = "") -> None:
        if word not in said:
            said.add(word)
            print(f"{word} {extra}".strip(), flush=True)

    def window() -> MainWindow | None:
        return next((w for w in app.topLevelWidgets() if isinstance(w, MainWindow)), None)

    def close(w: MainWindow) -> None:
        say("closing")
        w.close()

    def poll() -> None:
        w = window()
        if w is not None and w.canvas.overlay_source is not None:
            if any(exact for _, _, exact in w.canvas.visible_overlay_tiles().values()):
                say("first-pixels", f"{time.monotonic() - t0:.2f}")
            if w.overlays.ready() and not w.canvas.overlay_settled() and "computing" not in said:
                say("computing", f"{time.monotonic() - t0:.2f}")
                if mode == "close":
                    QTimer.singleShot(2000, lambda: close(w))
        QTimer.singleShot(100, poll)

    QTimer.singleShot(100, poll)
    viewer.run_viewer(slide, overlay=overlay)


if __name__ == "__main__":
    main(*sys.argv[1:])
