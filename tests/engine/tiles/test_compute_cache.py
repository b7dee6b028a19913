"""The compute-once cache behind computed sources: each key computed once even when asked from
several threads at the same time, least-recently-used values dropped beyond the byte budget."""
import threading
import time

import numpy as np
import pytest

from engine.tiles.compute_cache import ComputeOnceCache


def test_concurrent_requests_for_one_key_compute_it_once():
    cache = ComputeOnceCache(1 << 20)
    calls = []

    def compute():
        calls.append(1)
        time.sleep(0.2)
        return np.arange(10.0)

    out = []
    threads = [threading.Thread(target=lambda: out.append(cache.get("k", compute))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and cache.computed == 1 and len(out) == 4
    assert all(o is out[0] for o in out) and not out[0].flags.writeable


def test_the_byte_budget_drops_the_least_recently_used_and_custom_sizes_count():
    cache = ComputeOnceCache(100, size_of=lambda v: v["size"])
    for k in "abc":
        cache.get(k, lambda: {"size": 40})
    assert "a" not in cache and "b" in cache and "c" in cache and cache.nbytes == 80
    cache.get("b", lambda: pytest.fail("b is cached"))
    cache.get("d", lambda: {"size": 40})  # drops c, the least recently used
    assert "c" not in cache and "b" in cache and cache.nbytes == 80
    big = cache.get("e", lambda: {"size": 500})  # larger than the budget: returned, not kept
    assert big["size"] == 500 and "e" not in cache


def test_a_failed_computation_raises_for_every_waiter_and_can_be_retried():
    cache = ComputeOnceCache(1 << 20)
    with pytest.raises(RuntimeError, match="broken"):
        cache.get("k", lambda: (_ for _ in ()).throw(RuntimeError("broken")))
    assert cache.get("k", lambda: np.zeros(3)).shape == (3,) and cache.computed == 1
