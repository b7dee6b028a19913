"""Tiles of slides for the viewer and the exports: frozen requests, a byte-bounded cache, a
worker pool with shared jobs and generation-based cancellation, and coarse fallback."""
from .cache import DEFAULT_MAX_BYTES, TileCache
from .grid import (grid_shape, level_for_scale, tile_bounds, tile_rect_level0, tile_size_for,
                   visible_tiles)
from .request import TileRequest
from .store import PINNED, StoreStats, TileStore

__all__ = ["TileRequest", "TileCache", "TileStore", "StoreStats", "PINNED", "DEFAULT_MAX_BYTES",
           "grid_shape", "level_for_scale", "tile_bounds", "tile_rect_level0", "tile_size_for",
           "visible_tiles"]
