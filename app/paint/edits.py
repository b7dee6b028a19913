"""Map edits the engine's `FocusMap` does not have by name, built from its own undoable steps:
fill a drawn region (a lasso polygon or a rectangle) to one depth, smooth the painted depths
under a brush, clear everything. Each is one undo step. Pure NumPy, no Qt.

Coordinates are level-0 px; depths are µm in the slide's z frame.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy import ndimage

from engine.focusmap import FocusMap

__all__ = ["fill_polygon", "smooth_under", "clear", "cells_in_polygon", "SMOOTH_SIGMA_CELLS"]

#: Blur of the smooth tool, in map cells (a cell is ``stride`` level-0 px).
SMOOTH_SIGMA_CELLS = 1.5


def cells_in_polygon(fm: FocusMap, polygon: Sequence[tuple[float, float]]):
    """``(r0, c0, inside)``: the bounding box of the cells whose centres lie inside ``polygon``
    (level-0 px vertices; three or more, or two opposite corners of a rectangle) and the bool
    mask of those cells in it; None when no cell centre is inside."""
    pts = np.asarray(polygon, np.float64).reshape(-1, 2)
    if len(pts) == 2:
        (xa, ya), (xb, yb) = pts
        pts = np.array([(xa, ya), (xb, ya), (xb, yb), (xa, yb)])
    if len(pts) < 3:
        return None
    s = fm.stride
    rows, cols = fm.shape
    c0 = max(0, int(np.floor(pts[:, 0].min() / s)))
    c1 = min(cols, int(np.ceil(pts[:, 0].max() / s)) + 1)
    r0 = max(0, int(np.floor(pts[:, 1].min() / s)))
    r1 = min(rows, int(np.ceil(pts[:, 1].max() / s)) + 1)
    if c1 <= c0 or r1 <= r0:
        return None
    yy, xx = np.mgrid[r0:r1, c0:c1]
    centres = np.stack([(xx.ravel() + 0.5) * s, (yy.ravel() + 0.5) * s], 1)
    inside = _inside(pts, centres).reshape(r1 - r0, c1 - c0)
    if not inside.any():
        return None
    return r0, c0, inside


def _inside(poly: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Even-odd rule: which of ``pts`` (N, 2) lie inside the closed polygon ``poly`` (V, 2)."""
    x, y = pts[:, 0], pts[:, 1]
    inside = np.zeros(len(pts), bool)
    xa, ya = poly[:, 0], poly[:, 1]
    xb, yb = np.roll(xa, -1), np.roll(ya, -1)
    for x0, y0, x1, y1 in zip(xa, ya, xb, yb):
        if y0 == y1:
            continue
        crosses = (y0 > y) != (y1 > y)
        xi = x0 + (y - y0) * (x1 - x0) / (y1 - y0)
        inside ^= crosses & (x < xi)
    return inside


def _put(fm: FocusMap, r0: int, c0: int, grid: np.ndarray) -> None:
    """Write the finite cells of ``grid`` (NaN: leave as is) at (r0, c0) as one undo step,
    through `FocusMap.fill` with a depth grid on the map's own cells."""
    s = fm.stride
    rows, cols = grid.shape
    fm.fill(grid, origin=((c0 + 0.5) * s, (r0 + 0.5) * s), spacing=s,
            region=(c0 * s, r0 * s, cols * s, rows * s))


def fill_polygon(fm: FocusMap, polygon: Sequence[tuple[float, float]], z_um: float) -> bool:
    """Every cell centred inside ``polygon`` (level-0 px) takes ``z_um`` (µm); one undo step.
    False when the region holds no cell centre (nothing changed)."""
    if not np.isfinite(z_um):
        raise ValueError(f"focus must be a finite number of µm, got {z_um}")
    found = cells_in_polygon(fm, polygon)
    if found is None:
        return False
    r0, c0, inside = found
    before = fm.version
    _put(fm, r0, c0, np.where(inside, np.float32(z_um), np.float32(np.nan)))
    return fm.version != before


def smooth_under(fm: FocusMap, points: Sequence[tuple[float, float]], radius: float,
                 sigma_cells: float = SMOOTH_SIGMA_CELLS) -> bool:
    """Blur the painted depths (µm) of the cells within ``radius`` level-0 px of ``points``:
    each such painted cell takes the Gaussian-weighted mean of the painted cells around it
    (unpainted cells neither change nor count). One undo step; False when nothing changed."""
    if radius <= 0:
        raise ValueError(f"brush radius must be > 0 level-0 px, got {radius}")
    pts = [(float(x), float(y)) for x, y in points]
    if not pts:
        return False
    s = fm.stride
    rows, cols = fm.shape
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    pad = int(np.ceil(3 * sigma_cells)) + 1
    c0 = max(0, int((min(xs) - radius) // s) - pad)
    c1 = min(cols, int((max(xs) + radius) // s) + 1 + pad)
    r0 = max(0, int((min(ys) - radius) // s) - pad)
    r1 = min(rows, int((max(ys) + radius) // s) + 1 + pad)
    if c1 <= c0 or r1 <= r0:
        return False
    vals = fm.values[r0:r1, c0:c1]
    painted = np.isfinite(vals)
    if not painted.any():
        return False
    weight = ndimage.gaussian_filter(painted.astype(np.float64), sigma_cells, mode="constant")
    total = ndimage.gaussian_filter(np.where(painted, vals, 0.0).astype(np.float64), sigma_cells, mode="constant")
    blurred = np.where(weight > 1e-9, total / np.maximum(weight, 1e-12), np.nan)
    yy = (np.arange(r0, r1) + 0.5) * s
    xx = (np.arange(c0, c1) + 0.5) * s
    under = np.zeros(vals.shape, bool)
    for px, py in pts:
        under |= np.hypot(xx[None, :] - px, yy[:, None] - py) <= radius
    take = under & painted
    if not take.any():
        return False
    before = fm.version
    _put(fm, r0, c0, np.where(take, blurred, np.nan).astype(np.float32))
    return fm.version != before


def clear(fm: FocusMap) -> bool:
    """Every cell back to "not painted" (one undo step); False when nothing was painted."""
    if not fm.painted.any():
        return False
    fm.replace(FocusMap(fm.width, fm.height, fm.default_um, fm.stride))
    return True
