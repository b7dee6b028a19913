"""The tile store: reads off the caller's thread, caches, shares duplicate work, cancels work a
newer view no longer wants, and serves any Slide (read or computed) keyed by its uid."""
import numpy as np
import pytest

from engine.slides.array import ArraySlide
from engine.slides.base import CorruptSlideError
from engine.tiles import TileStore, tile_bounds

from .slides import CountingSlide, random_planes


@pytest.fixture
def store():
    s = TileStore(workers=1)
    yield s
    s.close()


def expected_tile(slide, req):
    lx, ly, w, h = tile_bounds(slide, req.level, req.col, req.row, req.tile_size)
    ds = slide.levels[req.level].downsample
    return slide.read_region(req.level, int(lx * ds), int(ly * ds), w, h, req.plane)


def test_fetched_tiles_are_the_slides_pixels_for_every_level_and_plane(store):
    slide = ArraySlide(random_planes(2), planes_um=[-1.0, 1.0])
    for level in range(slide.level_count):
        for plane in range(2):
            for col, row in [(0, 0), (1, 1)]:
                req = store.request(slide, level, col, row, plane, tile_size=256)
                if min(tile_bounds(slide, level, col, row, req.tile_size)[2:]) <= 0:
                    continue  # the coarsest levels have a single tile
                got = store.fetch(req).result(timeout=10)
                np.testing.assert_array_equal(got, expected_tile(slide, req))


def test_a_cached_tile_is_returned_at_once_without_reading_again(store):
    slide = CountingSlide(random_planes(1))
    req = store.request(slide, 0, 2, 1, tile_size=256)
    first = store.fetch(req).result(timeout=10)
    second = store.fetch(req)
    assert second.done()
    assert second.result() is first
    assert sum(slide.reads.values()) == 1
    assert store.cached(req) is first


def test_duplicate_requests_share_one_job(store):
    slide = CountingSlide(random_planes(1))
    slide.gate.clear()
    req = store.request(slide, 0, 0, 0, tile_size=256)
    futures = [store.fetch(req, generation=g) for g in (1, 1, 2)]
    assert slide.entered.wait(5)
    assert store.pending() == 1
    slide.gate.set()
    results = [f.result(timeout=10) for f in futures]
    assert all(r is results[0] for r in results)
    assert slide.reads[0, 0, 0, 0] == 1
    assert store.stats.shared == 2


def test_a_newer_generation_cancels_queued_tiles_it_no_longer_wants(store):
    slide = CountingSlide(random_planes(1))
    slide.gate.clear()
    g1 = store.next_generation()
    running = store.fetch(store.request(slide, 0, 0, 0, tile_size=256), g1)
    assert slide.entered.wait(5)  # the single worker is now busy with tile (0, 0)
    dropped = store.fetch(store.request(slide, 0, 1, 0, tile_size=256), g1)
    kept = store.fetch(store.request(slide, 0, 2, 0, tile_size=256), g1)

    g2 = store.next_generation()
    assert g2 > g1
    kept_again = store.fetch(store.request(slide, 0, 2, 0, tile_size=256), g2)   # still visible in the new view
    new = store.fetch(store.request(slide, 0, 3, 0, tile_size=256), g2)
    assert store.cancel_superseded(g2) == 1
    assert dropped.cancelled()

    slide.gate.set()
    for f in (running, kept, kept_again, new):
        assert f.result(timeout=10).shape == (256, 256, 3)
    assert (0, 256, 0, 0) not in slide.reads
    assert store.stats.cancelled == 1


def test_pinned_requests_are_never_cancelled_by_generations(store):
    slide = CountingSlide(random_planes(1))
    slide.gate.clear()
    store.fetch(store.request(slide, 0, 0, 0, tile_size=256), store.next_generation())
    assert slide.entered.wait(5)
    pinned = store.fetch(store.request(slide, 0, 1, 0, tile_size=256))
    assert store.cancel_superseded(store.next_generation()) == 0
    slide.gate.set()
    assert pinned.result(timeout=10).shape == (256, 256, 3)


def test_a_caller_giving_up_does_not_cancel_the_job_for_the_others(store):
    slide = CountingSlide(random_planes(1))
    slide.gate.clear()
    req = store.request(slide, 1, 0, 0, tile_size=256)
    quitter, stayer = store.fetch(req), store.fetch(req)
    assert quitter.cancel()
    slide.gate.set()
    np.testing.assert_array_equal(stayer.result(timeout=10), expected_tile(slide, req))


def test_slides_with_different_uids_never_share_tiles(store):
    """A computed slide (here: another plane set of the same geometry) has its own uid."""
    a = ArraySlide(random_planes(1, seed=1))
    b = ArraySlide(random_planes(1, seed=2))
    ra, rb = store.request(a, 0, 0, 0, tile_size=256), store.request(b, 0, 0, 0, tile_size=256)
    assert ra != rb and ra.slide_uid == a.uid
    ta, tb = store.fetch(ra).result(timeout=10), store.fetch(rb).result(timeout=10)
    assert not np.array_equal(ta, tb)
    np.testing.assert_array_equal(tb, expected_tile(b, rb))


def test_a_read_error_reaches_the_caller_and_is_not_cached(store):
    class BrokenSlide(ArraySlide):
        def _read(self, level, lx, ly, w, h, plane):
            raise CorruptSlideError("broken.tif", "tile 0 is not valid JPEG")

    slide = BrokenSlide(random_planes(1))
    req = store.request(slide, 0, 0, 0, tile_size=256)
    with pytest.raises(CorruptSlideError, match="broken.tif: tile 0"):
        store.fetch(req).result(timeout=10)
    assert store.cached(req) is None and store.stats.failed == 1


def test_claiming_a_job_for_a_newer_generation_spares_it(store):
    slide = CountingSlide(random_planes(1))
    slide.gate.clear()
    g1 = store.next_generation()
    store.fetch(store.request(slide, 0, 0, 0, tile_size=256), g1)
    assert slide.entered.wait(5)
    queued_req = store.request(slide, 0, 1, 0, tile_size=256)
    queued = store.fetch(queued_req, g1)
    g2 = store.next_generation()
    assert store.claim(queued_req, g2)
    assert not store.claim(store.request(slide, 0, 5, 0, tile_size=256), g2)  # nothing under way
    assert store.cancel_superseded(g2) == 0
    slide.gate.set()
    assert queued.result(timeout=10).shape == (256, 256, 3)
