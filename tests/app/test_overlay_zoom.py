"""Overlays at any zoom, in the real window on the built-in slide (the 80 000 × 60 000 px
phantom): at fit zoom the FocusLiteNN overlay first shows an estimate from a few sampled level-0
patches, then refines it, and never scores the level-0 blocks of the whole slide (reads counted
on the real phantom); the dock says how many of the view's sampled patches are scored."""
import threading
from collections import Counter

import pytest

from engine.phantom import PhantomSlide

from .test_overlays import assert_overlay_shows

#: Bound on waiting for the overlay (its colour scale comes from four level-0 blocks of the
#: phantom, slow on a busy machine): not a speed test.
WAIT_MS = 600_000


class CountingPhantom(PhantomSlide):
    """The built-in slide, counting its reads as (level, w, h)."""

    def __init__(self):
        super().__init__()
        self.reads: Counter = Counter()
        self._count_lock = threading.Lock()

    def _read(self, level, lx, ly, w, h, plane):
        with self._count_lock:
            self.reads[level, w, h] += 1
        return super()._read(level, lx, ly, w, h, plane)


@pytest.mark.slow
def test_at_fit_zoom_the_built_in_slide_gets_an_estimate_without_scoring_the_whole_slide(window, qtbot):
    slide = CountingPhantom()
    window.set_slide(slide)
    canvas = window.canvas
    qtbot.waitUntil(canvas.is_settled, timeout=WAIT_MS)
    level = canvas.level
    assert slide.levels[level].downsample >= 64  # fit zoom
    window.overlay_menu.fill()
    window.overlay_menu.actions()["focuslitenn-1"].trigger()
    qtbot.waitUntil(window.overlays.ready, timeout=WAIT_MS)
    qtbot.waitUntil(canvas.overlay_settled, timeout=WAIT_MS)

    shown = canvas.overlay_source
    base = window.overlays._base
    steps = base.estimate_steps(level, canvas.overlay.tile_size)
    assert shown.root is base and shown is not base and shown.min_step in steps
    assert_overlay_shows(canvas, shown)  # exact tiles of the estimate, transparent on glass
    work = window.overlays.work()
    # what is left: the level's finest squares (one sampled patch each) over the view
    assert work.estimated and work.step == steps[-1] and 0 <= work.done < work.total
    assert work.shown_step == shown.min_step
    qtbot.waitUntil(lambda: "sampled patches" in window.overlay_panel.state.text(), timeout=5000)
    if shown.min_step > steps[-1]:  # the view stays: a finer estimate follows
        qtbot.waitUntil(lambda: canvas.overlay_source.min_step < shown.min_step, timeout=5000)

    W, H = slide.dimensions
    level0 = {(w, h): n for (lv, w, h), n in slide.reads.items() if lv == 0}
    area = sum(w * h * n for (w, h), n in level0.items())
    assert area < 0.01 * W * H  # never the level-0 blocks of the whole slide
    blocks = sum(n for (w, h), n in level0.items() if max(w, h) > 300)
    assert blocks <= 16  # only the few blocks near the centre the colour scale comes from
    patches = sum(n for (w, h), n in level0.items() if max(w, h) <= 300)
    assert patches >= 1  # the estimate's sampled patches
