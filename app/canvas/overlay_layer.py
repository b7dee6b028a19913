"""`OverlayLayer`: the tiles of a computed source (a heatmap, a depth map) drawn over the slide.

It is a `TileLayer` whose source has the slide's geometry, so its tiles are the slide's tiles:
same level, same grid cells, same requests path through the tile store (exact tile if cached,
else a coarser cached overlay tile stands in, else the previous pixels stay until the new ones
arrive). Differences from the slide's layer:

* pure white pixels (255, 255, 255) — where the source has no value, e.g. glass — are drawn
  fully transparent (the sources' colour maps never contain pure white);
* items sit above every slide tile and share one opacity (0 = invisible, 1 = opaque);
* no whole-slide backdrop: a coarse overlay tile costs the computation of its whole area, so
  only what the view needs is computed;
* a tile that fails to compute is drawn transparent (the canvas reports the error).
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg

from .tile_layer import TileLayer, _Tile

#: Z values of overlay items start above every slide tile (those use 10 + level count − level).
OVERLAY_Z = 1000


def white_to_transparent(rgb: np.ndarray) -> np.ndarray:
    """(h, w, 3) uint8 → (h, w, 4) uint8 RGBA, alpha 0 where the pixel is pure white, else 255."""
    h, w = rgb.shape[:2]
    out = np.empty((h, w, 4), np.uint8)
    out[..., :3] = rgb
    out[..., 3] = 255
    out[..., 3][(rgb == 255).all(axis=2)] = 0
    return out


class OverlayLayer(TileLayer):
    """The overlay's tile items; ``opacity`` applies to all of them."""

    def __init__(self, viewbox: pg.ViewBox, store):
        super().__init__(viewbox, store)
        self.opacity = 0.5

    @property
    def backdrop_level(self) -> int | None:
        return None

    def set_opacity(self, opacity: float) -> None:
        """Opacity of the whole overlay, 0..1."""
        self.opacity = float(min(max(opacity, 0.0), 1.0))
        for tile in self._tiles.values():
            tile.item.setOpacity(self.opacity)

    def mark_failed(self, request) -> None:
        tile = self._tiles.get((request.level, request.col, request.row))
        if tile is None or tile.wanted != request:
            return
        tile.item.setVisible(False)
        tile.shown, tile.failed = request, True

    def _add(self, key, req) -> _Tile:
        tile = super()._add(key, req)
        tile.item.setZValue(OVERLAY_Z + tile.item.zValue())
        tile.item.setOpacity(self.opacity)
        return tile

    @staticmethod
    def _set_pixels(tile: _Tile, pixels: np.ndarray, exact) -> None:
        rgba = pixels if pixels.ndim == 3 and pixels.shape[2] == 4 else white_to_transparent(pixels)
        TileLayer._set_pixels(tile, rgba, exact)
