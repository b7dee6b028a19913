"""Coarse fallback: until a tile is read, the finest cached coarser pixels stand in for it."""
import numpy as np
import pytest

from engine.slides.array import ArraySlide
from engine.slides.base import Level, Slide
from engine.tiles import TileStore

from .slides import random_planes


@pytest.fixture
def store():
    s = TileStore(workers=2)
    yield s
    s.close()


def test_nothing_stands_in_before_anything_is_cached(store):
    slide = ArraySlide(random_planes(1))
    assert store.best_available(store.request(slide, 0, 1, 1, tile_size=256)) is None


def test_the_exact_tile_is_the_best_when_cached(store):
    slide = ArraySlide(random_planes(1))
    req = store.request(slide, 0, 1, 1, tile_size=256)
    exact = store.fetch(req).result(timeout=10)
    assert store.best_available(req) is exact


def test_a_coarser_tile_is_upsampled_to_stand_in(store):
    slide = ArraySlide(random_planes(1, size=(1024, 1024)))  # levels 1024, 512, 256
    coarse = store.fetch(store.request(slide, 2, 0, 0, tile_size=256)).result(timeout=10)  # ds 4, whole slide
    req = store.request(slide, 0, 1, 2, tile_size=256)  # level-0 px x 256..512, y 512..768
    stand_in = store.best_available(req)
    # Each level-2 px covers 4x4 level-0 px.
    expected = np.repeat(np.repeat(coarse[128:192, 64:128], 4, axis=0), 4, axis=1)
    np.testing.assert_array_equal(stand_in, expected)


def test_the_finest_cached_coarser_level_wins(store):
    slide = ArraySlide(random_planes(1, size=(1024, 1024)))
    store.fetch(store.request(slide, 2, 0, 0, tile_size=256)).result(timeout=10)
    mid = store.fetch(store.request(slide, 1, 0, 1, tile_size=256)).result(timeout=10)  # level-1 px y 256..512
    stand_in = store.best_available(store.request(slide, 0, 0, 2, tile_size=256))  # level-0 y 512..768
    expected = np.repeat(np.repeat(mid[0:128, 0:128], 2, axis=0), 2, axis=1)
    np.testing.assert_array_equal(stand_in, expected)


def test_a_stand_in_comes_only_from_the_same_plane(store):
    slide = ArraySlide(random_planes(2, size=(512, 512)), planes_um=[0.0, 2.0])
    store.fetch(store.request(slide, 1, 0, 0, plane=0, tile_size=256)).result(timeout=10)
    assert store.best_available(store.request(slide, 0, 0, 0, plane=1, tile_size=256)) is None
    assert store.best_available(store.request(slide, 0, 0, 0, plane=0, tile_size=256)) is not None


class UnevenSlide(Slide):
    """Two levels with a non-power-of-two downsample (2.5), as some scanners write."""

    def __init__(self, level0, level1):
        self._arrays = [level0, level1]
        self.levels = (Level(500, 500, 1.0), Level(200, 200, 2.5))
        self.tile_size = (100, 100)

    def _read(self, level, lx, ly, w, h, plane):
        return self._arrays[level][ly:ly + h, lx:lx + w]


def test_a_stand_in_can_join_several_coarse_tiles():
    rng = np.random.default_rng(3)
    level1 = rng.integers(0, 256, (200, 200, 3), dtype=np.uint8)
    slide = UnevenSlide(np.zeros((500, 500, 3), np.uint8), level1)
    store = TileStore(workers=2)
    try:
        # With 100 px tiles, level-0 tile (2, 2) covers x, y 200..300 -> level-1 px 80..120,
        # across the level-1 tile boundary at 100: four coarse tiles make the stand-in.
        for c in range(2):
            for r in range(2):
                store.fetch(store.request(slide, 1, c, r, tile_size=100)).result(timeout=10)
        stand_in = store.best_available(store.request(slide, 0, 2, 2, tile_size=100))
        idx = np.floor((200 + np.arange(100) + 0.5) / 2.5).astype(int)
        np.testing.assert_array_equal(stand_in, level1[np.ix_(idx, idx)])
    finally:
        store.close()
