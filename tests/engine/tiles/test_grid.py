"""Tile grid geometry: tiles cover each level exactly, and a view asks for the tiles it shows."""
import numpy as np

from engine.slides.array import ArraySlide
from engine.tiles import grid
from engine.slides.base import Level


def slide(w=1500, h=1000):
    return ArraySlide([np.zeros((h, w, 3), np.uint8)])


def test_edge_tiles_are_clipped_to_the_level():
    s = slide()
    assert grid.grid_shape(s, 0, 256) == (6, 4)
    assert grid.tile_bounds(s, 0, 5, 3, 256) == (1280, 768, 220, 232)
    assert grid.tile_rect_level0(s, 1, 2, 1, 256) == (1024.0, 512.0, 238 * 2.0, 244 * 2.0)


def test_tile_size_follows_the_backend_within_bounds():
    s = slide()
    s.tile_size = (240, 240)
    assert grid.tile_size_for(s) == 480
    s.tile_size = (256, 256)
    assert grid.tile_size_for(s) == 512
    s.tile_size = (512, 512)
    assert grid.tile_size_for(s) == 512
    s.tile_size = (4096, 4096)
    assert grid.tile_size_for(s) == 1024


def test_visible_tiles_are_those_under_the_view_centre_first():
    s = slide()
    cells = grid.visible_tiles(s, 0, 256, (300, 300, 400, 200))  # x 300..700, y 300..500
    assert sorted(cells) == [(1, 1), (2, 1)]
    assert grid.visible_tiles(s, 0, 256, (5000, 5000, 10, 10)) == []
    everything = grid.visible_tiles(s, 1, 256, (-100, -100, 4000, 4000))
    assert len(everything) == 3 * 2
    centre = grid.visible_tiles(s, 0, 256, (0, 0, 1500, 1000))[0]
    assert centre in [(2, 1), (3, 1), (2, 2), (3, 2)]


def test_level_for_scale_picks_the_coarsest_level_with_enough_pixels():
    s = slide()
    assert grid.level_for_scale(s, 0.5) == 0   # zoomed in past 1:1
    assert grid.level_for_scale(s, 1.9) == 0
    assert grid.level_for_scale(s, 2.0) == 1
    assert grid.level_for_scale(s, 100) == len(s.levels) - 1


def test_level_px_maps_back_exactly_for_non_integer_downsamples():
    s = slide()
    s.levels = (Level(1500, 1000, 1.0), Level(375, 250, 4.0003))
    for lx in range(0, 375):
        x0 = grid.level_px_to_level0(s, 1, lx)
        assert int(np.floor(x0 / 4.0003)) == lx
