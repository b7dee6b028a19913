"""Real in-memory slides for the tile tests: an `ArraySlide` that counts its reads and can be
held at a gate, so tests can see exactly which tiles a worker read and when."""
from __future__ import annotations

import threading
from collections import Counter

import numpy as np

from engine.slides.array import ArraySlide


def random_planes(n_planes: int = 2, size: tuple[int, int] = (1000, 1500), seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    h, w = size
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(n_planes)]


class CountingSlide(ArraySlide):
    """An ArraySlide that records every `_read` as (level, lx, ly, plane) and, while `gate` is
    cleared, makes readers wait at it (`entered` is set once a reader is waiting)."""

    def __init__(self, planes, **kw):
        super().__init__(planes, **kw)
        self.reads: Counter = Counter()
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self._count_lock = threading.Lock()

    def _read(self, level, lx, ly, w, h, plane):
        with self._count_lock:
            self.reads[level, lx, ly, plane] += 1
        self.entered.set()
        if not self.gate.wait(timeout=10):
            raise TimeoutError("test gate never opened")
        return super()._read(level, lx, ly, w, h, plane)
