"""The painting process of the autosave test: opens a real slide file, paints stroke after
stroke on its focus map, autosaves after each one and prints ``saved K DIGEST`` once the save
of stroke K returned — until it is killed. ``python -m tests.engine.focusmap.autosave_child SLIDE``
with FINEFOCUS_DATA_DIR set. `stroke` is shared with the test, which replays the strokes."""
import sys

import numpy as np


def stroke(fm, k: int) -> None:
    """Stroke ``k`` (0, 1, …): a brush or, every fifth, an eraser, at places and depths that
    depend only on ``k``."""
    rng = np.random.default_rng(1000 + k)
    pts = rng.uniform(0, 1, (6, 2)) * (fm.width, fm.height)
    if k % 5 == 4:
        fm.erase(pts, radius=float(rng.uniform(20, 60)))
    else:
        fm.paint(pts, radius=float(rng.uniform(30, 120)), z_um=float(rng.uniform(-2, 2)),
                 hardness=float(rng.uniform(0, 1)))


def main(slide_path: str) -> None:
    from engine.focusmap import FocusMap
    from engine.focusmap.autosave import FocusMapAutosave
    from engine.slides import open_slide

    slide = open_slide(slide_path)
    autosave = FocusMapAutosave(slide)
    fm = FocusMap(*slide.dimensions, default_um=0.5)
    print("ready", flush=True)
    k = 0
    while True:
        stroke(fm, k)
        autosave.save_if_changed(fm)
        print(f"saved {k} {fm.digest}", flush=True)
        k += 1


if __name__ == "__main__":
    main(sys.argv[1])
