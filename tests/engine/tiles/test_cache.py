"""The tile cache keeps at most its byte budget and forgets the least recently used first."""
import numpy as np
import pytest

from engine.tiles import TileCache


def tile(n_bytes_side=16, value=0):
    return np.full((n_bytes_side, n_bytes_side, 3), value, np.uint8)  # 768 bytes at 16²


def test_never_holds_more_bytes_than_its_budget():
    cache = TileCache(max_bytes=3 * 768)
    for i in range(10):
        cache.put(i, tile())
        assert cache.nbytes <= 3 * 768
    assert len(cache) == 3
    assert cache.nbytes == 3 * 768
    assert cache.evictions == 7


def test_evicts_the_least_recently_used_entry():
    cache = TileCache(max_bytes=3 * 768)
    for k in "abc":
        cache.put(k, tile())
    assert cache.get("a") is not None  # "a" is now the most recently used
    cache.put("d", tile())
    assert "b" not in cache
    assert cache.keys() == ["c", "a", "d"]


def test_peek_does_not_refresh_an_entry():
    cache = TileCache(max_bytes=2 * 768)
    cache.put("a", tile())
    cache.put("b", tile())
    assert cache.peek("a") is not None
    cache.put("c", tile())
    assert "a" not in cache and "b" in cache


def test_an_entry_larger_than_the_budget_is_not_kept():
    cache = TileCache(max_bytes=1000)
    cache.put("small", tile(8))
    cache.put("huge", tile(64))
    assert "huge" not in cache and "small" in cache


def test_replacing_a_key_counts_its_bytes_once():
    cache = TileCache(max_bytes=10_000)
    cache.put("a", tile(16))
    cache.put("a", tile(8))
    assert cache.nbytes == 8 * 8 * 3


def test_cached_pixels_are_read_only_and_round_trip():
    cache = TileCache()
    src = tile(value=7)
    cache.put("a", src)
    got = cache.get("a")
    np.testing.assert_array_equal(got, tile(value=7))
    with pytest.raises(ValueError):
        got[0, 0, 0] = 1


def test_discard_drops_matching_keys_and_their_bytes():
    cache = TileCache()
    for k in [("s1", 0), ("s1", 1), ("s2", 0)]:
        cache.put(k, tile())
    assert cache.discard(lambda k: k[0] == "s1") == 2
    assert cache.keys() == [("s2", 0)] and cache.nbytes == 768
