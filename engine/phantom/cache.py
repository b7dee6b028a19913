"""A small thread-safe, byte-bounded LRU cache that computes each missing entry once."""
from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Callable, Hashable

import numpy as np

__all__ = ["ByteLRU", "nbytes_of"]


def nbytes_of(value) -> int:
    if value is None:
        return 64
    if hasattr(value, "nbytes"):
        return int(value.nbytes)
    if hasattr(value, "element_size") and hasattr(value, "nelement"):   # torch tensor
        return int(value.element_size() * value.nelement())
    if isinstance(value, (tuple, list)):
        return sum(nbytes_of(v) for v in value)
    if hasattr(value, "__dict__"):
        return sum(nbytes_of(v) for v in vars(value).values()
                   if isinstance(v, (np.ndarray, tuple, list)) or hasattr(v, "nbytes") or hasattr(v, "nelement"))
    return 64


class ByteLRU:
    def __init__(self, max_bytes: int):
        self.max_bytes = int(max_bytes)
        self._data: OrderedDict[Hashable, tuple[object, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self._pending: dict[Hashable, threading.Lock] = {}

    def get_or_compute(self, key: Hashable, compute: Callable[[], object]):
        with self._lock:
            hit = self._data.get(key)
            if hit is not None:
                self._data.move_to_end(key)
                return hit[0]
            klock = self._pending.setdefault(key, threading.Lock())
        with klock:
            with self._lock:
                hit = self._data.get(key)
                if hit is not None:
                    self._data.move_to_end(key)
                    return hit[0]
            value = compute()
            size = nbytes_of(value)
            with self._lock:
                if size <= self.max_bytes:
                    self._data[key] = (value, size)
                    self._bytes += size
                    while self._bytes > self.max_bytes and self._data:
                        _, (_, s) = self._data.popitem(last=False)
                        self._bytes -= s
                self._pending.pop(key, None)
            return value

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self._bytes = 0

    def __len__(self) -> int:
        return len(self._data)
