"""Heatmaps at any zoom: a read at a coarse level scores sampled level-0 patches (one per square
of cells, each read inside one native tile), never every patch under it; what is computed
already shows at its own detail; long reads stop between patches when their tile store job is
cancelled, and a closed store refuses work.

The base is a real in-memory slide that counts its reads (tests/engine/tiles/slides.py): 4096 ×
3072 px of texture at 0.25 µm/px in 512-px tiles, levels at downsample 1–16."""
import threading

import numpy as np
import pytest

from engine.fqa.heatmap import PATCH
from engine.fqa.heatmap_source import DENSE_CELL_PX, HeatmapSlide
from engine.tiles import TileStore
from tests.slide_files import textured_plane

from ..tiles.slides import CountingSlide

SIZE = (4096, 3072)
METRIC = "brenner"  # a classical metric: fast, and scored exactly like FocusLiteNN's blocks


@pytest.fixture(scope="module")
def pixels():
    return textured_plane(*SIZE, 0, seed=5)


@pytest.fixture
def slide(pixels):
    s = CountingSlide([pixels], mpp=(0.25, 0.25))
    s.tile_size = (512, 512)  # as stored by a scanner writing 512-px tiles
    return s


def level0_reads(slide):
    return {k: n for k, n in slide.reads.items() if k[0] == 0}


def test_the_zoom_rule_is_dense_while_a_cell_spans_32_px_then_squares_of_sampled_patches(slide):
    hm = HeatmapSlide(slide, METRIC, value_range=(0, 1))
    assert [lv.downsample for lv in slide.levels] == [1, 2, 4, 8, 16]
    # a cell is 128 level-0 px: dense up to downsample 128 / 32 = 4
    assert DENSE_CELL_PX == 32
    assert [hm.sample_step(lv) for lv in range(5)] == [1, 1, 1, 2, 4]
    # from about one sample per 512-px tile (8192 level-0 px = 64 cells) to the level's finest
    assert hm.estimate_steps(4) == [64, 32, 16, 8, 4]
    assert hm.estimate_steps(1) == [1]


def test_a_coarse_read_scores_one_patch_per_square_never_every_patch(slide):
    hm = HeatmapSlide(slide, METRIC, value_range=(0, 1))
    lv = slide.levels[4]
    coarse = hm.scores_for_region(4, 0, 0, lv.width, lv.height)
    reads = level0_reads(slide)
    rows, cols = hm.geometry.shape  # 23 × 31 cells; squares of 4 × 4 cells: 6 × 8
    squares = -(-rows // 4) * -(-cols // 4)
    assert len(hm.cache) == 0  # no dense block
    assert len(hm.samples) == squares and sum(reads.values()) == squares
    assert all(n == 1 for n in reads.values())
    # each read is one patch with its halo, inside one native tile of the slide (512 px)
    tile = slide.tile_size[0]
    for (_, lx, ly, _), _ in reads.items():
        assert (lx // tile, ly // tile) == ((lx + PATCH + 24) // tile, (ly + PATCH + 24) // tile)
    # the sampled values are the dense ones, and every pixel of a square shows its sample
    grid = hm.grid()
    for (r, c), v in hm.samples._entries.items():
        assert v[0][0, 0] == grid[r, c] or (np.isnan(v[0][0, 0]) and np.isnan(grid[r, c]))
    square_px = 4 * 128 // 16  # level-4 px per square
    top_left = coarse[:square_px, :square_px]
    assert np.isfinite(top_left).all() and (top_left == top_left[-1, -1]).all()


def test_what_is_computed_shows_at_its_own_detail_in_a_coarse_read(slide):
    hm = HeatmapSlide(slide, METRIC, value_range=(0, 1))
    fine = hm.scores_for_region(0, 0, 0, *SIZE)  # every block, as the viewer computes them zoomed in
    before = sum(slide.reads.values())
    lv = slide.levels[4]
    coarse = hm.scores_for_region(4, 0, 0, lv.width, lv.height)
    assert sum(slide.reads.values()) == before and len(hm.samples) == 0  # nothing new scored
    np.testing.assert_array_equal(coarse, fine[8::16, 8::16])  # a level-4 px shows the cell under its centre


def test_a_sampled_view_shares_the_values_under_its_own_uid(slide):
    hm = HeatmapSlide(slide, METRIC, value_range=(0, 1))
    first = hm.sampled(64, 1)
    assert first.uid != hm.uid and first.uid.startswith(hm.uid) and first.root is hm
    assert hm.sampled(64, 2).uid != first.uid and hm.sampled(1) is hm
    assert first.read_step(4) == 64 and first.read_step(0) == 1 and hm.read_step(4) == 4
    lv = slide.levels[4]
    rough = first.scores_for_region(4, 0, 0, lv.width, lv.height)
    assert len(hm.samples) == 1  # the whole slide is one square of 64 cells
    assert np.nanmin(rough) == np.nanmax(rough)
    done, total = hm.view_progress(4, (0, 0, *SIZE))
    assert total == 6 * 8 and done <= 1
    hm.scores_for_region(4, 0, 0, lv.width, lv.height)  # the level's finest
    assert hm.view_progress(4, (0, 0, *SIZE)) == (48, 48)
    # the finer samples now show in a new revision of the rough view: nothing is scored again
    n = len(hm.samples)
    again = hm.sampled(64, 3).scores_for_region(4, 0, 0, lv.width, lv.height)
    assert len(hm.samples) == n
    np.testing.assert_array_equal(again, hm.scores_for_region(4, 0, 0, lv.width, lv.height))


def test_a_superseded_running_read_stops_at_its_next_patch_and_its_callers_are_cancelled(slide):
    hm = HeatmapSlide(slide, METRIC, value_range=(0, 1))
    store = TileStore(workers=1)
    try:
        slide.gate.clear()
        fut = store.fetch(store.request(hm, 4, 0, 0), generation=1)  # the whole level: 48 samples
        assert slide.entered.wait(10)  # the worker is inside its first patch
        store.cancel_superseded(2)
        slide.gate.set()
        with pytest.raises(Exception) as err:
            fut.result(timeout=30)
        assert fut.cancelled(), err.value
        assert sum(slide.reads.values()) <= 2 and store.stats.cancelled == 1 and store.stats.failed == 0
        # a newer caller gets a job of its own, which runs to the end
        again = store.fetch(store.request(hm, 4, 0, 0), generation=3).result(timeout=60)
        assert again.shape[:2] == (slide.levels[4].height, slide.levels[4].width)
        assert len(hm.samples) == 48
    finally:
        slide.gate.set()
        store.close()


def test_a_closed_store_stops_running_reads_and_refuses_new_work(slide):
    hm = HeatmapSlide(slide, METRIC, value_range=(0, 1))
    store = TileStore(workers=1)
    try:
        slide.gate.clear()
        running = store.fetch(store.request(hm, 4, 0, 0))  # pinned: no generation cancels it
        queued = store.fetch(store.request(hm, 0, 1, 1))
        assert slide.entered.wait(10)
        store.close()
        slide.gate.set()
        done = threading.Event()
        running.add_done_callback(lambda f: done.set())
        assert done.wait(30) and running.cancelled() and queued.cancelled()
        assert sum(slide.reads.values()) <= 2
        assert store.closed and store.fetch(store.request(hm, 0, 0, 0)).cancelled()
    finally:
        slide.gate.set()
        store.close()


def test_a_read_told_to_stop_and_wanted_again_still_delivers(slide):
    """Panning away and back: the read the first view started is told to stop, the second view
    claims it again; it goes on (or runs again) and its callers get the tile."""
    hm = HeatmapSlide(slide, METRIC, value_range=(0, 1))
    store = TileStore(workers=1)
    try:
        slide.gate.clear()
        req = store.request(hm, 4, 0, 0)
        first = store.fetch(req, generation=1)
        assert slide.entered.wait(10)
        store.cancel_superseded(2)  # the view moved away
        assert store.claim(req, 3)  # ... and came back
        second = store.fetch(req, generation=3)
        slide.gate.set()
        tile = second.result(timeout=60)
        assert first.result(timeout=60) is tile
        assert tile.shape[:2] == (slide.levels[4].height, slide.levels[4].width)
        assert store.stats.cancelled == 0 and store.stats.reads == 1
    finally:
        slide.gate.set()
        store.close()
