"""Coarse fallback: build a stand-in for a tile that is not cached yet from cached tiles of a
coarser level (same slide, same plane), upsampled by nearest neighbour.

This is what lets a dragging or zooming user see pixels at once: blurry, but in the right
place, until the exact tile arrives.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ..slides.base import Slide
from .grid import tile_bounds
from .request import TileRequest

Lookup = Callable[[TileRequest], "np.ndarray | None"]


def coarser_stand_in(slide: Slide, request: TileRequest, lookup: Lookup) -> tuple[np.ndarray, int] | None:
    """``(pixels, level)`` for ``request`` built from the finest coarser level whose tiles
    covering the request's area are all available through ``lookup``; None if no level is.

    ``pixels`` has the shape the exact tile will have, so it can stand in pixel for pixel."""
    lx, ly, w, h = tile_bounds(slide, request.level, request.col, request.row, request.tile_size)
    if w <= 0 or h <= 0:
        return None
    ds = slide.levels[request.level].downsample
    ts = request.tile_size
    for coarse in range(request.level + 1, len(slide.levels)):
        cds = slide.levels[coarse].downsample
        lv = slide.levels[coarse]
        ratio = ds / cds  # coarse px per requested-level px
        # Coarse px sampled by the centres of the requested tile's pixels.
        sx = np.minimum(np.floor((lx + np.arange(w) + 0.5) * ratio).astype(np.int64), lv.width - 1)
        sy = np.minimum(np.floor((ly + np.arange(h) + 0.5) * ratio).astype(np.int64), lv.height - 1)
        c0, c1 = int(sx[0]) // ts, int(sx[-1]) // ts
        r0, r1 = int(sy[0]) // ts, int(sy[-1]) // ts
        parts = _gather(request, coarse, range(c0, c1 + 1), range(r0, r1 + 1), lookup)
        if parts is not None:
            mosaic = _mosaic(parts, c0, c1, r0, r1, ts)
            return mosaic[np.ix_(sy - r0 * ts, sx - c0 * ts)], coarse
    return None


def _gather(request: TileRequest, level: int, cols: range, rows: range, lookup: Lookup) -> dict | None:
    """Tiles ``(c, r) -> pixels`` of ``level`` for every cell given, or None if one is missing."""
    parts = {}
    for r in rows:
        for c in cols:
            tile = lookup(TileRequest(request.slide_uid, level, c, r, request.plane, request.tile_size))
            if tile is None:
                return None
            parts[c, r] = tile
    return parts


def _mosaic(parts: dict, c0: int, c1: int, r0: int, r1: int, ts: int) -> np.ndarray:
    """Join tiles ``(c, r) -> pixels`` of one level into one array whose origin is the
    top-left of tile ``(c0, r0)``; edge tiles may be smaller than ``ts``."""
    if len(parts) == 1:
        return next(iter(parts.values()))
    last_w = parts[c1, r0].shape[1]
    last_h = parts[c0, r1].shape[0]
    out = np.empty(((r1 - r0) * ts + last_h, (c1 - c0) * ts + last_w, 3), np.uint8)
    for (c, r), tile in parts.items():
        y, x = (r - r0) * ts, (c - c0) * ts
        out[y:y + tile.shape[0], x:x + tile.shape[1]] = tile
    return out
