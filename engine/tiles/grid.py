"""Pure geometry of the tile grid: which tiles exist, where they lie, which ones a view needs.

Units: a tile's extent is in px of its level (``lx, ly, w, h``); views and tile rectangles on
screen are in level-0 px (floats), as everywhere else in FineFocus.
"""
from __future__ import annotations

import math

from ..slides.base import Slide

#: Tile sizes the store uses are kept within these bounds (px of a level).
MIN_TILE, MAX_TILE = 384, 1024


def tile_size_for(slide: Slide) -> int:
    """A square tile size (px) for ``slide``: its natural tile width, doubled up to at least
    384 px (240 → 480, 256 → 512) and capped at 1024 px, so the grid follows the backend's
    tiles where it can and the viewer keeps few, large tile items."""
    t = int(max(slide.tile_size[0], 1))
    while t < MIN_TILE:
        t *= 2
    return min(t, MAX_TILE)


def grid_shape(slide: Slide, level: int, tile_size: int) -> tuple[int, int]:
    """(columns, rows) of tiles covering ``level``."""
    lv = slide.levels[level]
    return math.ceil(lv.width / tile_size), math.ceil(lv.height / tile_size)


def tile_bounds(slide: Slide, level: int, col: int, row: int, tile_size: int) -> tuple[int, int, int, int]:
    """``(lx, ly, w, h)`` of a tile in px of ``level``, clipped to the level (edge tiles are
    smaller than ``tile_size``; a tile wholly outside has w or h <= 0)."""
    lv = slide.levels[level]
    lx, ly = col * tile_size, row * tile_size
    return lx, ly, min(tile_size, lv.width - lx), min(tile_size, lv.height - ly)


def level_px_to_level0(slide: Slide, level: int, lx: int) -> int:
    """The level-0 px coordinate whose ``read_region`` start maps back exactly to level px
    ``lx`` (``floor(x / downsample) == lx``), also for non-integer downsamples."""
    ds = slide.levels[level].downsample
    return int(math.ceil(lx * ds)) if ds != 1 else int(lx)


def tile_rect_level0(slide: Slide, level: int, col: int, row: int,
                     tile_size: int) -> tuple[float, float, float, float]:
    """``(x, y, w, h)`` in level-0 px that a tile covers on the slide."""
    ds = slide.levels[level].downsample
    lx, ly, w, h = tile_bounds(slide, level, col, row, tile_size)
    return lx * ds, ly * ds, w * ds, h * ds


def level_for_scale(slide: Slide, level0_px_per_screen_px: float) -> int:
    """The pyramid level that fits a zoom: the coarsest level that still has at least one of
    its px per screen px (OpenSlide's best-level rule)."""
    return slide.best_level_for_downsample(max(level0_px_per_screen_px, 1e-9))


def visible_tiles(slide: Slide, level: int, tile_size: int,
                  rect_level0: tuple[float, float, float, float]) -> list[tuple[int, int]]:
    """Grid cells ``(col, row)`` of ``level`` that intersect ``rect_level0 = (x, y, w, h)``
    (level-0 px), nearest to the rectangle's centre first (the order tiles are loaded in)."""
    x, y, w, h = rect_level0
    ds = slide.levels[level].downsample
    cols, rows = grid_shape(slide, level, tile_size)
    span = tile_size * ds
    c0 = max(0, int(math.floor(x / span)))
    r0 = max(0, int(math.floor(y / span)))
    c1 = min(cols - 1, int(math.ceil((x + w) / span)) - 1)
    r1 = min(rows - 1, int(math.ceil((y + h) / span)) - 1)
    if c1 < c0 or r1 < r0:
        return []
    cx, cy = (x + w / 2) / span - 0.5, (y + h / 2) / span - 0.5
    cells = [(c, r) for r in range(r0, r1 + 1) for c in range(c0, c1 + 1)]
    cells.sort(key=lambda cr: (cr[0] - cx) ** 2 + (cr[1] - cy) ** 2)
    return cells
