"""`TileLayer`: the tiles of one slide on a pyqtgraph ViewBox, one ImageItem per tile.

Items are placed in level-0 px (``ImageItem.setRect``), so every level shares the ViewBox's
coordinates. The layer shows at once what the store has (the exact tile, or a coarser cached
stand-in) and records which tiles still need a fetch; the canvas fetches them and hands the
pixels back through ``apply`` on the UI thread.

Live items stay bounded: the tiles of the current view, the few tiles of the coarsest level
(a backdrop for the whole slide) and, only until the current view is complete, the previous
level's tiles that keep the picture filled while zooming.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QTransform

from engine.slides.base import Slide
from engine.tiles import TileRequest, TileStore, tile_bounds, tile_rect_level0

#: The coarsest level is kept as a permanent backdrop when it has at most this many tiles.
MAX_BACKDROP_TILES = 16


@dataclass
class _Tile:
    item: pg.ImageItem
    wanted: TileRequest            # the request this item should finally show
    shown: TileRequest | None = None  # whose exact pixels it shows (None: stand-in or empty)
    failed: bool = False  # the read of `shown` failed: a grey placeholder is drawn instead

#: Drawn where a tile could not be read (uint8 grey).
FAILED_GREY = 200


def same_geometry(a: Slide, b: Slide) -> bool:
    """True when ``a`` and ``b`` have the same pyramid (level sizes and downsamples)."""
    return tuple(a.levels) == tuple(b.levels)


class TileLayer:
    """Tile items of ``slide`` in ``viewbox``; tile pixels come from ``store``."""

    def __init__(self, viewbox: pg.ViewBox, store: TileStore):
        self.viewbox = viewbox
        self.store = store
        self.slide: Slide | None = None
        self.tile_size = 512
        self._tiles: dict[tuple[int, int, int], _Tile] = {}
        self._current: list[tuple[int, int, int]] = []  # keys the present view needs
        self.level = 0
        self.plane = 0

    # ------------------------------------------------------------------ state
    def reset(self, slide: Slide | None, tile_size: int) -> None:
        """Remove every item and start over with ``slide``."""
        for key in list(self._tiles):
            self._remove(key)
        self.slide, self.tile_size, self._current = slide, tile_size, []

    def switch(self, source: Slide | None, tile_size: int, keep_pixels: bool = False) -> None:
        """Show ``source`` from now on. With ``keep_pixels`` and the same geometry (another focal
        plane or focus of the same slide, another plane's overlay of the same kind) the items of
        the current level and the backdrop stay and their pixels show until the new source's
        tiles replace them; otherwise the layer starts over."""
        if not keep_pixels or source is None or self.slide is None or not same_geometry(source, self.slide) \
                or tile_size != self.tile_size:
            self.reset(source, tile_size)
        else:
            self.slide = source
            self._drop(lambda k: k[0] != self.level and k[0] != self.backdrop_level)

    @property
    def backdrop_level(self) -> int | None:
        """The coarsest level, if small enough to keep whole as a backdrop."""
        if self.slide is None:
            return None
        lv = self.slide.level_count - 1
        lvl = self.slide.levels[lv]
        n = -(-lvl.width // self.tile_size) * -(-lvl.height // self.tile_size)
        return lv if n <= MAX_BACKDROP_TILES else None

    def view_keys(self) -> list[tuple[int, int, int]]:
        """``(level, col, row)`` of the tiles the current view needs."""
        return list(self._current)

    def item_count(self) -> int:
        return len(self._tiles)

    def is_complete(self) -> bool:
        """True when every tile of the current view shows its exact pixels."""
        return all(self._tiles[k].shown == self._tiles[k].wanted for k in self._current if k in self._tiles)

    def shown_tiles(self) -> dict[tuple[int, int, int], tuple[TileRequest, np.ndarray, bool]]:
        """``(level, col, row) -> (wanted request, displayed pixels, exact?)`` for every item."""
        return {k: (t.wanted, t.item.image, t.shown == t.wanted and not t.failed)
                for k, t in self._tiles.items()}

    # ------------------------------------------------------------------ updates
    def mark_failed(self, request: TileRequest) -> None:
        """The read of ``request`` failed: draw a grey placeholder and count it as done."""
        tile = self._tiles.get((request.level, request.col, request.row))
        if tile is None or tile.wanted != request:
            return
        lx, ly, w, h = tile_bounds(self.slide, request.level, request.col, request.row, request.tile_size)
        self._set_pixels(tile, np.full((h, w, 3), FAILED_GREY, np.uint8), request)
        tile.failed = True

    def show(self, level: int, plane: int, cells: list[tuple[int, int]]) -> list[TileRequest]:
        """Make the layer show ``cells`` of ``level`` in ``plane``; returns the requests still
        to fetch (nearest the view centre first; the backdrop's last)."""
        slide = self.slide
        if plane != self.plane:
            self._drop(lambda k: k[0] != level and k[0] != self.backdrop_level)
        self.level, self.plane = level, plane
        keys = [(level, c, r) for c, r in cells]
        back = self.backdrop_level
        if back is not None and back != level:
            cols = -(-slide.levels[back].width // self.tile_size)
            rows = -(-slide.levels[back].height // self.tile_size)
            keys += [(back, c, r) for r in range(rows) for c in range(cols)]
        self._current = [(level, c, r) for c, r in cells]
        missing = []
        for key in keys:
            req = self.store.request(slide, key[0], key[1], key[2], plane, self.tile_size)
            tile = self._tiles.get(key) or self._add(key, req)
            tile.wanted = req
            if tile.shown == req:
                continue
            exact = self.store.cached(req)
            if exact is not None:
                self._set_pixels(tile, exact, req)
                continue
            stand_in = self.store.best_available(req)
            if stand_in is not None:
                self._set_pixels(tile, stand_in, None)
            missing.append(req)
        self._prune()
        return missing

    def update_stand_in(self, request: TileRequest) -> bool:
        """Redraw the stand-in of ``request`` from what is cached now (its sources arrived), if
        an item still wants it and does not show its exact pixels yet; returns whether it did."""
        tile = self._tiles.get((request.level, request.col, request.row))
        if tile is None or tile.wanted != request or tile.shown == request:
            return False
        pixels = self.store.best_available(request)
        if pixels is None:
            return False
        self._set_pixels(tile, pixels, None)
        return True

    def apply(self, request: TileRequest, pixels: np.ndarray) -> bool:
        """Show fetched ``pixels`` if an item still wants them; returns whether it did."""
        tile = self._tiles.get((request.level, request.col, request.row))
        if tile is None or tile.wanted != request or tile.shown == request:
            return False
        self._set_pixels(tile, pixels, request)
        if self.is_complete():
            self._prune()
        return True

    # ------------------------------------------------------------------ items
    def _add(self, key, req: TileRequest) -> _Tile:
        level, col, row = key
        item = pg.ImageItem(axisOrder="row-major")
        item.setZValue(10 + self.slide.level_count - level)  # finer levels on top
        # One image px = `downsample` level-0 px, placed at the tile's level-0 corner.
        x, y, _, _ = tile_rect_level0(self.slide, level, col, row, self.tile_size)
        ds = self.slide.levels[level].downsample
        transform = QTransform()
        transform.translate(x, y)
        transform.scale(ds, ds)
        item.setTransform(transform)
        item.setVisible(False)  # until it has pixels
        self.viewbox.addItem(item, ignoreBounds=True)
        tile = _Tile(item, req)
        self._tiles[key] = tile
        return tile

    @staticmethod
    def _set_pixels(tile: _Tile, pixels: np.ndarray, exact: TileRequest | None) -> None:
        tile.item.setImage(pixels, autoLevels=False, levels=None)
        tile.item.setVisible(True)
        tile.shown = exact
        tile.failed = False

    def _remove(self, key) -> None:
        tile = self._tiles.pop(key)
        self.viewbox.removeItem(tile.item)

    def _drop(self, doomed) -> None:
        for key in [k for k in self._tiles if doomed(k)]:
            self._remove(key)

    def _prune(self) -> None:
        """Drop items the view no longer needs: off-view tiles of the current level at once;
        other levels once the view is complete or when they outnumber the view's tiles."""
        keep = set(self._current)
        back = self.backdrop_level
        self._drop(lambda k: k[0] == self.level and k not in keep)
        others = [k for k in self._tiles if k[0] not in (self.level, back)]
        if others and (self.is_complete() or len(others) > 2 * len(keep) + 8):
            self._drop(lambda k: k[0] not in (self.level, back))
