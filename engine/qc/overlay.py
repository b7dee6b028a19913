"""Heatmap overlays on slide thumbnails: the thumbnail in grey, the grid's colours over it
(cells as `engine.fqa.heatmap_source.grid_at_thumbnail_px` places them, glass transparent) and a legend
in the grid's units below."""
from __future__ import annotations

import numpy as np

from ..colormaps import colorize, legend_image
from ..fqa.heatmap import HeatmapGeometry
from ..fqa.heatmap_source import grid_at_thumbnail_px

#: Colour scales of the QC overlays: (vmin, vmax, colour map, legend label). Fixed scales, so
#: colours mean the same on every slide of a report; the depth map spans the slide's planes.
SCALES = {
    "defocus_um": (0.0, 3.0, "focus", "estimated defocus (um); out of focus >= 1.5 um"),
    "fused": (0.0, 1.0, "focus", "fused IQA blur score (0-1 on this slide, higher = blurrier)"),
    "uncertainty": (0.0, 0.3, "uncertainty", "fused score uncertainty (s.d.)"),
    "depth_um": (None, None, "viridis", "best-focus z (um)"),
}


def overlay(thumb: np.ndarray, values: np.ndarray, geom: HeatmapGeometry, size_level0: tuple[int, int],
            vmin: float, vmax: float, cmap: str, label: str | None, alpha: float = 0.55) -> np.ndarray:
    """uint8 RGB: ``values`` (rows, cols on ``geom``) over the grey ``thumb`` of a slide of
    ``size_level0`` = (W, H) level-0 px, with a legend from ``vmin`` to ``vmax`` below it (none
    when ``label`` is None: the picture is then the thumbnail's size)."""
    th, tw = thumb.shape[:2]
    grey = (thumb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32))[..., None].repeat(3, 2)
    v = grid_at_thumbnail_px(values, geom, (th, tw), size_level0)
    rgba = colorize(v, vmin, vmax, cmap)
    a = (rgba[..., 3:4] / 255.0) * alpha
    pic = (grey * (1 - a) + rgba[..., :3] * a + 0.5).astype(np.uint8)
    if label is None:
        return pic
    legend = legend_image(vmin, vmax, label, cmap, width=max(min(tw, 420), 300))
    out = np.full((th + legend.shape[0] + 4, max(tw, legend.shape[1]), 3), 255, np.uint8)
    out[:th, :tw] = pic
    out[th + 4:, :legend.shape[1]] = legend
    return out


def scale_for(kind: str, planes_um: tuple[float, ...]) -> tuple[float, float, str, str]:
    vmin, vmax, cmap, label = SCALES[kind]
    if kind == "depth_um":
        vmin, vmax = float(planes_um[0]), float(planes_um[-1])
    return vmin, vmax, cmap, label
