"""`ComputeOnceCache`: a thread-safe LRU bounded in bytes that computes each missing key once.

For computed slide sources whose blocks are expensive (heatmap score blocks, refocusing radiance
fields): ``get(key, compute)`` returns the cached value, or waits for a computation of ``key``
already under way in another thread, or computes it here. Unlike the tile cache
(`engine.tiles.cache`), two tile reads that need the same block never compute it twice.

A caller that knows which keys it needs right now (the blocks of the view on screen) can
``protect`` them: eviction then takes the least recently used *unprotected* entries first and
never a protected one, so a working set larger than ``max_bytes`` is kept whole instead of
evicting the blocks the next read needs (LRU thrash). Whoever protects bounds the working set
(see `engine.refocus.radiance_budget`); ``max_bytes`` then bounds everything else.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from concurrent.futures import Future
from typing import Any, Callable, Hashable

import numpy as np


def _nbytes(value: Any) -> int:
    return int(value.nbytes)


class ComputeOnceCache:
    """LRU of values bounded by ``max_bytes`` (each value's size is ``size_of(value)``, by default
    its ``nbytes``). NumPy arrays are stored read-only. ``computed`` counts computations. A value
    larger than the whole budget is returned but not kept."""

    def __init__(self, max_bytes: int, size_of: Callable[[Any], int] = _nbytes):
        self.max_bytes = int(max_bytes)
        self._size_of = size_of
        self._entries: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._running: dict[Hashable, Future] = {}
        self._nbytes = 0
        self._lock = threading.Lock()
        self._protected: frozenset = frozenset()
        self.computed = 0

    @property
    def nbytes(self) -> int:
        return self._nbytes

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._entries

    def protect(self, keys) -> None:
        """Make ``keys`` the protected working set (replacing the previous one; empty: none).
        Protected entries are never evicted; they may hold more than ``max_bytes`` together."""
        with self._lock:
            self._protected = frozenset(keys)

    @property
    def protected(self) -> frozenset:
        return self._protected

    def get(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        with self._lock:
            hit = self._entries.get(key)
            if hit is not None:
                self._entries.move_to_end(key)
                return hit[0]
            running = self._running.get(key)
            mine = running is None
            if mine:
                running = self._running[key] = Future()
        if not mine:
            return running.result()
        try:
            value = compute()
            if isinstance(value, np.ndarray):
                value.setflags(write=False)
            size = int(self._size_of(value))
        except BaseException as exc:
            with self._lock:
                del self._running[key]
            running.set_exception(exc)
            raise
        with self._lock:
            del self._running[key]
            self.computed += 1
            if size <= self.max_bytes or key in self._protected:
                self._make_room(size)
                self._entries[key] = (value, size)
                self._nbytes += size
        running.set_result(value)
        return value

    def _make_room(self, size: int) -> None:
        """Evict least recently used unprotected entries until ``size`` more bytes fit in
        ``max_bytes`` or only protected entries are left (lock held)."""
        if self._nbytes + size <= self.max_bytes:
            return
        for old_key in [k for k in self._entries if k not in self._protected]:
            if self._nbytes + size <= self.max_bytes:
                break
            _, old = self._entries.pop(old_key)
            self._nbytes -= old

    def clear(self) -> None:
        """Drop every kept value (computations under way finish and are returned, then kept)."""
        with self._lock:
            self._entries.clear()
            self._nbytes = 0
