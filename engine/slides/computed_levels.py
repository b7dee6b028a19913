"""Coarser pyramid levels computed on demand from a level-0 reader, with a bounded cache.

For images that store only full resolution (a plain TIFF, PNG or JPEG). Level ``k`` is the 2×2
box average of level ``k-1`` (`box_downsample2`, odd edges replicated), so its size is
``ceil(size_{k-1} / 2)`` and its downsample is ``2**k`` (nominal). Levels ≥ 1 are built tile by
tile (``TILE`` px of that level) from the level below and kept in an LRU cache bounded in bytes;
nothing ever holds a whole level in memory.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Callable

import numpy as np

from .array import box_downsample2
from .base import Level

#: Edge of a computed tile, px of its level (even, so tiles of level k map onto level k-1 exactly).
TILE = 256

#: Reads level 0 of one plane: (plane, x, y, w, h) in level-0 px -> (h, w, 3) uint8.
Level0Reader = Callable[[int, int, int, int, int], np.ndarray]


def computed_levels(width: int, height: int, min_size: int = 512) -> tuple[Level, ...]:
    """Level sizes for a 2× pyramid over a ``width``×``height`` image, down to a long side of
    at most ``min_size`` px."""
    levels = [Level(int(width), int(height), 1.0)]
    w, h = int(width), int(height)
    while max(w, h) > min_size:
        w, h = -(-w // 2), -(-h // 2)
        levels.append(Level(w, h, float(2 ** len(levels))))
    return tuple(levels)


class ComputedPyramid:
    """Serves ``read(level, plane, lx, ly, w, h)`` (px of ``level``) for a pyramid whose level 0
    comes from ``read_level0`` and whose coarser levels are computed and cached (≤ ``max_bytes``).
    Thread-safe."""

    def __init__(self, levels: tuple[Level, ...], read_level0: Level0Reader,
                 max_bytes: int = 64 << 20):
        self.levels = levels
        self._read0 = read_level0
        self._cache: OrderedDict[tuple[int, int, int, int], np.ndarray] = OrderedDict()
        self._bytes = 0
        self._max_bytes = int(max_bytes)
        self._lock = threading.Lock()

    def read(self, level: int, plane: int, lx: int, ly: int, w: int, h: int) -> np.ndarray:
        if level == 0:
            return self._read0(plane, lx, ly, w, h)
        out = np.empty((h, w, 3), np.uint8)
        for ty in range(ly // TILE, (ly + h - 1) // TILE + 1):
            for tx in range(lx // TILE, (lx + w - 1) // TILE + 1):
                tile = self._tile(level, plane, tx, ty)
                x0, y0 = tx * TILE, ty * TILE
                ix0, iy0 = max(lx, x0), max(ly, y0)
                ix1, iy1 = min(lx + w, x0 + tile.shape[1]), min(ly + h, y0 + tile.shape[0])
                out[iy0 - ly:iy1 - ly, ix0 - lx:ix1 - lx] = tile[iy0 - y0:iy1 - y0, ix0 - x0:ix1 - x0]
        return out

    def _tile(self, level: int, plane: int, tx: int, ty: int) -> np.ndarray:
        key = (level, plane, tx, ty)
        with self._lock:
            tile = self._cache.get(key)
            if tile is not None:
                self._cache.move_to_end(key)
                return tile
        below = self.levels[level - 1]
        x0, y0 = 2 * tx * TILE, 2 * ty * TILE
        w = min(2 * TILE, below.width - x0)
        h = min(2 * TILE, below.height - y0)
        tile = box_downsample2(self.read(level - 1, plane, x0, y0, w, h))
        tile.setflags(write=False)
        with self._lock:
            if key not in self._cache:
                self._cache[key] = tile
                self._bytes += tile.nbytes
                while self._bytes > self._max_bytes and len(self._cache) > 1:
                    _, old = self._cache.popitem(last=False)
                    self._bytes -= old.nbytes
        return tile

    @property
    def cached_bytes(self) -> int:
        return self._bytes
