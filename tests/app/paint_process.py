"""Run the real viewer (`app.main.run_viewer`) on the built-in slide and paint in it, for the
autosave test (tests/app/test_paint_autosave.py). Run with ``FINEFOCUS_DATA_DIR`` set.

    python -m tests.app.paint_process paint OUT.npy
        paints three strokes with the brush and a fill through the real tools (mouse events on the
        canvas), waits until the window's own autosave timer has saved the last of them, writes
        the map's cells (µm, NaN = unpainted) to OUT.npy and prints ``saved VERSION``; then waits
        (the test kills it with SIGKILL).
    python -m tests.app.paint_process report OUT.npy
        opens the same slide, writes the restored map's cells to OUT.npy and prints
        ``restored MESSAGE`` (the status bar's line), then closes the window.
"""
from __future__ import annotations

import os
import sys

import numpy as np

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

#: (tool key, depth µm, level-0 points): the strokes painted, over the slide's tissue.
STROKES = [
    ("B", 0.8, [(2000, 2000), (2600, 2100), (3200, 2300)]),
    ("B", -0.6, [(2200, 3000), (2300, 3400)]),
    ("F", 1.4, [(3500, 3000), (4200, 3000), (3900, 3700)]),
]


def main(mode: str, out: str) -> None:
    from PySide6.QtCore import Qt, QTimer
    from PySide6.QtTest import QTest

    from app import main as viewer
    from app.window import MainWindow
    from engine.slides import open_slide

    from .paint_helpers import drag

    slide = open_slide(None)
    app = viewer.application()
    state = {"painted": False, "said": False}

    def window() -> MainWindow | None:
        return next((w for w in app.topLevelWidgets() if isinstance(w, MainWindow)), None)

    def paint(w: MainWindow) -> None:
        w.canvas.set_view_rect(1500, 1500, 3500, 2500)
        for key, depth, points in STROKES:
            QTest.keyClick(w, getattr(Qt.Key, f"Key_{key}"))
            w.paint.panel.depth_um.setValue(depth)
            drag(w.canvas, points)
        QTest.keyClick(w, Qt.Key.Key_Escape)
        state["painted"] = True

    def poll() -> None:
        w = window()
        if w is not None and w.slide is not None and w.paint.map is not None:
            fm = w.paint.map
            if mode == "paint":
                if not state["painted"]:
                    paint(w)
                elif not state["said"] and w.paint.autosaver.saved_version == fm.version:
                    np.save(out, fm.values)
                    state["said"] = True
                    print(f"saved {fm.version} {len(STROKES)}", flush=True)
            elif not state["said"]:
                np.save(out, fm.values)
                state["said"] = True
                print(f"restored {w.statusBar().currentMessage()}", flush=True)
                QTimer.singleShot(0, w.close)
        QTimer.singleShot(100, poll)

    QTimer.singleShot(100, poll)
    viewer.run_viewer(slide)


if __name__ == "__main__":
    main(*sys.argv[1:])
