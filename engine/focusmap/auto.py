"""Auto-fill a focus map from focus quality: every place at the depth where it is sharpest.

`best_focus_fill(slide, fm, region)` estimates the best-focus depth over a level-0 region of a
multi-plane slide (`engine.fqa.depth_map`: each 235-px patch scored on every captured plane by
FocusLiteNN, the sharpest plane refined by a parabola through its neighbours, µm; glass stays
unknown) and fills those depths into the map's cells centred in the region (one undo step). The
region is read with a margin of one patch so its border cells are scored with their context, as
the heatmaps score them; the margin's cells are not changed.
"""
from __future__ import annotations

import numpy as np

from ..slides.array import ArraySlide
from ..slides.base import Slide
from .focus_map import FocusMap

__all__ = ["best_focus_fill", "MAX_AUTO_MPX"]

#: Largest region (level-0 megapixels, margin included) read for one auto-fill: every plane of
#: it is held in memory at once.
MAX_AUTO_MPX = 64


def best_focus_fill(slide: Slide, fm: FocusMap, region: tuple[int, int, int, int], *,
                    model: str = "focuslitenn-1", only_unpainted: bool = False,
                    progress=None, cancelled=None) -> np.ndarray:
    """Fill ``fm`` over ``region`` (x, y, w, h level-0 px) with the slide's estimated best-focus
    depths; returns the depth grid (rows, cols) µm that was used (NaN = glass)."""
    from ..fqa.depth_map import compute_depth_map
    from ..fqa.heatmap import PATCH

    if slide.plane_count < 2:
        raise ValueError(f"{slide.path}: finding the best focus needs at least 2 focal planes, the slide has 1")
    x, y, w, h = region
    W, H = slide.dimensions
    x0, y0 = max(0, x - PATCH), max(0, y - PATCH)
    x1, y1 = min(W, x + w + PATCH), min(H, y + h + PATCH)
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"{slide.path}: region {x},{y},{w},{h} lies outside the {W} × {H} px slide")
    if (x1 - x0) * (y1 - y0) * slide.plane_count > MAX_AUTO_MPX * 1e6:
        raise ValueError(f"{slide.path}: region {w} × {h} px on {slide.plane_count} planes is too large to "
                         f"find the best focus in one go (limit {MAX_AUTO_MPX} Mpx over all planes)")
    planes = [slide.read_region(0, x0, y0, x1 - x0, y1 - y0, i) for i in range(slide.plane_count)]
    crop = ArraySlide(planes, planes_um=list(slide.planes_um), mpp=slide.mpp, path=str(slide.path),
                      min_size=max(x1 - x0, y1 - y0))       # level 0 only: no pyramid to build
    depth, _, geom = compute_depth_map(crop, model, progress=progress, cancelled=cancelled)
    # cell (i, j) of the depth map is the patch at crop px (origin + j·stride, …): its centre
    centre = (x0 + geom.origin[0] + geom.patch / 2, y0 + geom.origin[1] + geom.patch / 2)
    fm.fill(depth, origin=centre, spacing=geom.stride, only_unpainted=only_unpainted, region=region)
    return depth
