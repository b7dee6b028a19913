"""`finefocus --self-test` (in app/: it checks the Qt bindings too): a quick end-to-end check that an installation (a venv or the desktop
bundle) works: the built-in slide opens, one tile is refocused by the shipped model, one focus
heatmap tile is computed, and the Qt bindings the viewer needs load. One line per step on stdout;
returns 0 when every step passed, 1 otherwise (the failing step names what broke)."""
from __future__ import annotations

import os
import time
from typing import Callable, TextIO

#: The checked tile: level-0 px of the built-in slide (tissue at its centre), edge in px.
TILE = 256


def _steps() -> list[tuple[str, Callable[[dict], str]]]:
    def open_builtin(s: dict) -> str:
        from engine.slides import open_slide

        slide = s["slide"] = open_slide(None)
        W, H = slide.dimensions
        s["xy"] = (W // 2, H // 2)
        return f"{slide.format} {W}x{H} px, planes {', '.join(f'{z:+g}' for z in slide.planes_um)} µm"

    def refocus(s: dict) -> str:
        import numpy as np

        from engine.refocus.refocused_slide import RefocusedSlide

        slide, (x, y) = s["slide"], s["xy"]
        z = (slide.planes_um[0] + slide.planes_um[1]) / 2  # between two captured planes: the model decodes
        rgb = RefocusedSlide(slide, z).read_region(0, x, y, TILE, TILE)
        assert rgb.shape == (TILE, TILE, 3) and rgb.dtype == np.uint8 and rgb.std() > 1, "blank refocused tile"
        return f"{TILE}x{TILE} px tile at z = {z:+g} µm, mean {rgb.mean():.0f}"

    def heatmap(s: dict) -> str:
        import numpy as np

        from engine.fqa.heatmap_source import HeatmapSlide

        slide, (x, y) = s["slide"], s["xy"]
        hm = HeatmapSlide(slide, "focuslitenn-1", plane=slide.nearest_plane(0.0), value_range=(0.0, 3.0))
        v = hm.scores_for_region(0, x, y, 512, 512)
        finite = v[np.isfinite(v)]
        assert finite.size, "no tissue score in the heatmap tile"
        return f"FocusLiteNN-1 tile, median score {float(np.median(finite)):.2f}"

    def qt(s: dict) -> str:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        import PySide6
        from PySide6.QtGui import QImage

        img = QImage(8, 8, QImage.Format.Format_RGB888)
        assert not img.isNull()
        return f"PySide6 {PySide6.__version__}"

    return [("open the built-in slide", open_builtin), ("refocus a tile", refocus),
            ("compute a heatmap tile", heatmap), ("load Qt", qt)]


def run_self_test(out: TextIO) -> int:
    """Run every step (module docstring), printing one line each; 0 when all passed."""
    state: dict = {}
    t_all = time.perf_counter()
    for name, step in _steps():
        t = time.perf_counter()
        try:
            detail = step(state)
        except Exception as exc:  # noqa: BLE001 - the report names any failure
            print(f"self-test: FAIL {name}: {type(exc).__name__}: {exc}", file=out, flush=True)
            return 1
        print(f"self-test: ok   {name} ({time.perf_counter() - t:.1f} s): {detail}", file=out, flush=True)
    print(f"self-test: passed in {time.perf_counter() - t_all:.1f} s", file=out, flush=True)
    return 0
