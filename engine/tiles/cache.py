"""`TileCache`: a thread-safe least-recently-used cache of tile pixels, bounded in bytes."""
from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Callable, Hashable, Iterator

import numpy as np

#: Default budget of the viewer's tile cache: 512 MiB of uint8 RGB (~680 tiles of 512²).
DEFAULT_MAX_BYTES = 512 * 1024 * 1024


class TileCache:
    """Maps keys (e.g. ``TileRequest``) to read-only uint8 arrays, holding at most ``max_bytes``
    bytes of pixels. ``get`` marks an entry as recently used; ``put`` evicts the least recently
    used entries until the new one fits. An array larger than the whole budget is not kept."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES):
        if max_bytes < 0:
            raise ValueError("max_bytes must be >= 0")
        self.max_bytes = int(max_bytes)
        self._entries: OrderedDict[Hashable, np.ndarray] = OrderedDict()
        self._nbytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.evictions = 0

    @property
    def nbytes(self) -> int:
        """Bytes of pixels held now (always <= ``max_bytes``)."""
        return self._nbytes

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._entries

    def keys(self) -> list:
        """Keys from least to most recently used."""
        with self._lock:
            return list(self._entries)

    def get(self, key: Hashable) -> np.ndarray | None:
        """The pixels for ``key`` (now the most recently used), or None."""
        with self._lock:
            arr = self._entries.get(key)
            if arr is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return arr

    def peek(self, key: Hashable) -> np.ndarray | None:
        """The pixels for ``key`` without touching the LRU order or the counters."""
        return self._entries.get(key)

    def put(self, key: Hashable, pixels: np.ndarray) -> np.ndarray:
        """Store ``pixels`` (made read-only) under ``key`` and return them."""
        arr = np.asarray(pixels)
        arr.setflags(write=False)
        size = arr.nbytes
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._nbytes -= old.nbytes
            if size > self.max_bytes:
                return arr
            while self._entries and self._nbytes + size > self.max_bytes:
                _, evicted = self._entries.popitem(last=False)
                self._nbytes -= evicted.nbytes
                self.evictions += 1
            self._entries[key] = arr
            self._nbytes += size
        return arr

    def discard(self, predicate: Callable[[Hashable], bool]) -> int:
        """Drop every entry whose key satisfies ``predicate``; return how many were dropped."""
        with self._lock:
            doomed = [k for k in self._entries if predicate(k)]
            for k in doomed:
                self._nbytes -= self._entries.pop(k).nbytes
            return len(doomed)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._nbytes = 0

    def __iter__(self) -> Iterator:
        return iter(self.keys())
