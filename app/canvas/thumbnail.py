"""The whole slide as one small image, for the overview: the coarsest level's tiles through the
tile store (shared with the canvas's backdrop), or ``slide.thumbnail`` on a worker when that
level is too large to take whole."""
from __future__ import annotations

import asyncio
from concurrent.futures import Executor

import numpy as np

from engine.slides.base import Slide
from engine.tiles import TileStore, grid_shape, tile_size_for

from .tile_layer import MAX_BACKDROP_TILES


async def whole_slide_image(store: TileStore, slide: Slide, plane: int = 0, max_size: int = 512,
                            executor: Executor | None = None) -> np.ndarray:
    """An (h, w, 3) uint8 image of the whole slide in ``plane``, computed off the UI thread
    (on the store's workers, or on ``executor`` for ``slide.thumbnail``)."""
    level = slide.level_count - 1
    ts = tile_size_for(slide)
    cols, rows = grid_shape(slide, level, ts)
    if cols * rows > MAX_BACKDROP_TILES:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(executor, slide.thumbnail, max_size, plane)
    reqs = {(c, r): store.request(slide, level, c, r, plane, ts) for r in range(rows) for c in range(cols)}
    tiles = await asyncio.gather(*(asyncio.wrap_future(store.fetch(q)) for q in reqs.values()))
    lv = slide.levels[level]
    out = np.empty((lv.height, lv.width, 3), np.uint8)
    for (c, r), px in zip(reqs, tiles):
        out[r * ts:r * ts + px.shape[0], c * ts:c * ts + px.shape[1]] = px
    return out
