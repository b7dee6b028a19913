"""The all-in-focus snapshot of a region: `all_in_focus_region(slide, (x, y, w, h))`.

Every place of the region at its own best focus: the depths FocusLiteNN finds sharpest over the
slide's captured planes (`engine.focusmap.auto.best_focus_fill`, glass keeping the plane nearest
z = 0) rendered by the virtual refocusing model (`FocusMappedSlide`). The one code path of
`finefocus snapshot --all-in-focus` and the viewer's File ▸ Export all-in-focus snapshot.
Level 0 only (the depths are found at full resolution); x, y, w, h in level-0 px. Glass (no
depth found) shows the captured plane nearest z = 0.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ..focusmap import FocusMap
from ..focusmap.auto import best_focus_fill
from ..slides.base import Slide

__all__ = ["all_in_focus_region", "all_in_focus_map", "AllInFocus"]

#: Rows rendered between two looks at ``cancelled`` (level-0 px; a multiple of the 128 µm blocks
#: at 0.25 µm/px, so a strip decodes each block row once).
RENDER_ROWS = 512


class AllInFocus:
    """The result: ``pixels`` uint8 (h, w, 3), the ``focus_map`` used (whole-slide geometry, the
    cells centred in the region filled) and the estimated ``depth_um`` grid (NaN = glass; it
    covers the margin read around the region too)."""

    def __init__(self, pixels: np.ndarray, focus_map: FocusMap, depth_um: np.ndarray):
        self.pixels, self.focus_map, self.depth_um = pixels, focus_map, depth_um

    def describe(self) -> str:
        known = self.depth_um[np.isfinite(self.depth_um)]
        if not known.size:
            return "all in focus (best focus unknown: no tissue found)"
        return f"all in focus (best focus {known.min():+.2f} to {known.max():+.2f} µm)"


def all_in_focus_map(slide: Slide) -> FocusMap:
    """The empty focus map an all-in-focus rendering fills: the slide's geometry, and the
    captured plane nearest z = 0 where no depth is found (glass)."""
    return FocusMap(*slide.dimensions, default_um=slide.planes_um[slide.nearest_plane(0.0)])


def all_in_focus_region(slide: Slide, region: tuple[int, int, int, int], *, cache=None,
                        cancelled: Callable[[], bool] | None = None) -> AllInFocus:
    """The all-in-focus snapshot of ``region``; ValueError (naming the slide) when it cannot be made."""
    from ..refocus.focus_mapped_slide import FocusMappedSlide

    x, y, w, h = region
    fm = all_in_focus_map(slide)
    depth = best_focus_fill(slide, fm, region, cancelled=cancelled)
    mapped = FocusMappedSlide(slide, fm, cache=cache)
    pixels = np.empty((h, w, 3), np.uint8)
    for top in range(0, h, RENDER_ROWS):          # in strips, so a cancel is heard between them
        if cancelled is not None and cancelled():
            raise InterruptedError("all-in-focus export cancelled")
        rows = min(RENDER_ROWS, h - top)
        pixels[top:top + rows] = mapped.read_region(0, x, y + top, w, rows)
    return AllInFocus(pixels, fm, depth)
