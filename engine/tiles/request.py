"""`TileRequest`: a frozen value naming one tile of one slide's pixels.

A tile is cell ``(col, row)`` of a square grid of ``tile_size`` px laid over pyramid ``level``
(in px *of that level*), in focal ``plane`` (an index into ``slide.planes_um``). The request
carries the slide's ``uid`` rather than the slide, so it is hashable, comparable and cheap; a
computed slide (a refocused view, a heatmap) has its own uid, so its tiles never collide with
the tiles of the slide it was computed from.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class TileRequest:
    """One tile: ``slide_uid``, pyramid ``level``, grid cell ``(col, row)`` in tiles of
    ``tile_size`` level px, focal ``plane`` index."""

    slide_uid: str
    level: int
    col: int
    row: int
    plane: int
    tile_size: int

    @property
    def key(self) -> tuple:
        """The cache key: (slide uid, level, col, row, plane, tile size)."""
        return (self.slide_uid, self.level, self.col, self.row, self.plane, self.tile_size)

    def with_plane(self, plane: int) -> "TileRequest":
        return TileRequest(self.slide_uid, self.level, self.col, self.row, plane, self.tile_size)
