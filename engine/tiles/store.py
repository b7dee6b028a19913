"""`TileStore`: tiles of any `Slide`, read or computed off the caller's thread.

The engine's counterpart of QuPath's DefaultImageRegionStore:

* requests are frozen `TileRequest` values; the pixels land in a byte-bounded `TileCache`;
* a pool of worker threads (``concurrent.futures``) reads them with ``slide.read_region``, so a
  computed slide (refocused view, heatmap: each with its own ``uid``) goes through the same path
  as a file;
* a request already queued or running shares that one job (every caller gets its own future,
  so a caller that gives up never cancels the job for the others);
* generations: each view change takes a new generation and re-claims the tiles it still wants;
  ``cancel_superseded(g)`` then cancels the queued jobs that only older generations wanted;
* ``best_available(request)`` returns the exact tile if cached, else a coarser cached stand-in;
* running reads are stopped cooperatively (`engine.tiles.cancel`): every read runs in a cancel
  scope whose event ``cancel_superseded`` sets when no caller of a newer generation wants the
  tile, and ``close`` sets for every job; a computed slide checks it between its blocks or
  patches and stops with `JobCancelled`, and its callers' futures are then cancelled (not
  failed). A closed store refuses new work: ``fetch`` returns a cancelled future.
"""
from __future__ import annotations

import itertools
import os
import threading
import weakref
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from ..slides.base import Slide
from .cache import DEFAULT_MAX_BYTES, TileCache
from .cancel import JobCancelled, cancel_scope
from .fallback import coarser_stand_in
from .grid import level_px_to_level0, tile_bounds, tile_size_for
from .request import TileRequest

#: Generation of a request that no view change may cancel (exports, benchmarks).
PINNED = None


@dataclass
class _Job:
    request: TileRequest
    slide: Slide
    generation: int | None  # newest generation that wants it; None = pinned
    future: Future | None = None
    waiters: list[Future] = field(default_factory=list)
    #: Set: the read is to stop at its next check (superseded while running, or store closed).
    stop: threading.Event = field(default_factory=threading.Event)
    revived: bool = False  # told to stop, then wanted again before it finished


@dataclass
class StoreStats:
    """Counters since the store was made: tiles read by workers, requests served from the
    cache at once, requests that joined a job already under way, jobs cancelled (queued ones
    dropped and running ones that stopped at a check), reads that failed."""

    reads: int = 0
    cache_hits: int = 0
    shared: int = 0
    cancelled: int = 0
    failed: int = 0


class TileStore:
    """Tiles of slides, cached and fetched by ``workers`` threads.

    ``cache_bytes`` bounds the pixels kept (default 512 MiB); pass ``cache`` to share one."""

    def __init__(self, workers: int | None = None, cache_bytes: int = DEFAULT_MAX_BYTES,
                 cache: TileCache | None = None):
        self.cache = cache if cache is not None else TileCache(cache_bytes)
        self.workers = workers or max(2, min(4, os.cpu_count() or 2))
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="finefocus-tile")
        self._lock = threading.RLock()
        self._jobs: dict[TileRequest, _Job] = {}
        self._slides: "weakref.WeakValueDictionary[str, Slide]" = weakref.WeakValueDictionary()
        self._generation = itertools.count(1)
        self._closed = False
        self.stats = StoreStats()

    # ------------------------------------------------------------------ requests
    def request(self, slide: Slide, level: int, col: int, row: int, plane: int = 0,
                tile_size: int | None = None) -> TileRequest:
        """The request for tile ``(col, row)`` of ``level`` / ``plane``; remembers ``slide``
        (weakly) so requests naming its uid can be served."""
        self._slides[slide.uid] = slide
        return TileRequest(slide.uid, int(level), int(col), int(row), int(plane),
                           int(tile_size or tile_size_for(slide)))

    def slide_for(self, request: TileRequest) -> Slide:
        try:
            return self._slides[request.slide_uid]
        except KeyError:
            raise KeyError(f"no slide with uid {request.slide_uid!r} was given to this store") from None

    def next_generation(self) -> int:
        """A new generation number, larger than all before (one per view change)."""
        return next(self._generation)

    # ------------------------------------------------------------------ pixels
    def cached(self, request: TileRequest) -> np.ndarray | None:
        """The exact tile if it is in the cache, else None (never reads)."""
        return self.cache.get(request)

    def best_available(self, request: TileRequest) -> np.ndarray | None:
        """The best pixels for ``request`` available now, without reading: the exact tile if
        cached, else what a computed slide makes at once from cached tiles of its source at the
        same level (its ``stand_in(cached, request)``, e.g. a refocused view's blend of the
        cached planes around its z), else the finest coarser cached region upsampled to the
        tile's shape, else None."""
        exact = self.cache.get(request)
        if exact is not None:
            return exact
        slide = self.slide_for(request)
        # A computed slide's own stand-in is at the tile's level (e.g. the blend of cached
        # planes): sharper than any coarser tile upsampled, so it is asked first.
        quick = getattr(slide, "stand_in", None)
        pixels = None if quick is None else quick(self.cache.peek, request)
        if pixels is not None:
            return pixels
        found = coarser_stand_in(slide, request, self.cache.peek)
        return None if found is None else found[0]

    def fetch(self, request: TileRequest, generation: int | None = PINNED) -> Future:
        """A future of the tile's (h, w, 3) uint8 pixels. Cached tiles come back completed;
        a tile already being fetched shares that job; otherwise a worker reads it.
        ``generation`` marks who wants it (see ``cancel_superseded``); None pins the job."""
        mine: Future = Future()
        if self._closed:
            mine.cancel()
            return mine
        pixels = self.cache.get(request)
        if pixels is not None:
            with self._lock:
                self.stats.cache_hits += 1
            mine.set_result(pixels)
            return mine
        with self._lock:
            if self._closed:
                mine.cancel()
                return mine
            job = self._jobs.get(request)
            if job is not None:
                self._revive(job)
                self.stats.shared += 1
                if job.generation is not None and (generation is None or generation > job.generation):
                    job.generation = generation
                job.waiters.append(mine)
                return mine
            job = _Job(request, self.slide_for(request), generation, waiters=[mine])
            self._jobs[request] = job
            job.future = self._pool.submit(self._run, job)
        job.future.add_done_callback(lambda f, job=job: self._finish(job, f))
        return mine

    def claim(self, request: TileRequest, generation: int) -> bool:
        """Mark a job already under way as wanted by ``generation`` (so cancelling older
        generations spares it); False if no job for ``request`` is queued or running."""
        with self._lock:
            job = self._jobs.get(request)
            if job is None or job.future.cancelled():
                return False
            self._revive(job)
            if job.generation is not None and generation > job.generation:
                job.generation = generation
            return True

    @staticmethod
    def _revive(job: _Job) -> None:
        """A job told to stop is wanted again: the read goes on, or runs again if it stopped
        (lock held)."""
        if job.stop.is_set():
            job.stop.clear()
            job.revived = True

    def cancel_superseded(self, generation: int) -> int:
        """Cancel queued jobs that no caller of ``generation`` or later wants, and tell the
        running ones to stop at their next check; their callers' futures are cancelled. Returns
        how many queued jobs were cancelled."""
        n = 0
        with self._lock:  # held so no caller can join a job between the test and the cancel
            stale = [j for j in self._jobs.values()
                     if j.generation is not None and j.generation < generation]
            for job in stale:
                if job.future.cancel():
                    n += 1
                else:  # running: it stops at its next check (a plain file read just finishes)
                    job.stop.set()
            self.stats.cancelled += n
        return n

    def pending(self) -> int:
        """Jobs queued or running."""
        with self._lock:
            return len(self._jobs)

    def forget(self, slide: Slide) -> int:
        """Drop the cached tiles of ``slide`` (e.g. when it is closed) and of the slides computed
        from it (their uids extend its uid after a ``|``, e.g. its refocused views); returns how
        many tiles."""
        uid = slide.uid

        def derived(u) -> bool:
            return u == uid or (isinstance(u, str) and u.startswith(uid + "|"))

        with self._lock:
            for u in [u for u in list(self._slides.keys()) if derived(u)]:
                self._slides.pop(u, None)  # weak: it may have gone meanwhile
        return self.cache.discard(lambda k: derived(getattr(k, "slide_uid", None)))

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Refuse new work, cancel queued work, tell running reads to stop at their next check
        (pinned ones too) and let the workers end; returns at once."""
        with self._lock:
            self._closed = True
            for job in self._jobs.values():
                job.stop.set()
        self._pool.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------------ workers
    def _run(self, job: _Job) -> np.ndarray:
        req, slide = job.request, job.slide
        pixels = self.cache.peek(req)
        if pixels is not None:
            return pixels
        if job.stop.is_set():
            raise JobCancelled("tile no longer wanted")
        lx, ly, w, h = tile_bounds(slide, req.level, req.col, req.row, req.tile_size)
        if w <= 0 or h <= 0:
            raise ValueError(f"tile {req.col},{req.row} lies outside level {req.level}")
        x = level_px_to_level0(slide, req.level, lx)
        y = level_px_to_level0(slide, req.level, ly)
        with cancel_scope(job.stop):
            pixels = slide.read_region(req.level, x, y, w, h, req.plane)
        with self._lock:
            self.stats.reads += 1
        return self.cache.put(req, pixels)

    def _finish(self, job: _Job, future: Future) -> None:
        exc = None if future.cancelled() else future.exception()
        stopped = isinstance(exc, JobCancelled)
        with self._lock:
            if stopped and job.revived and not job.stop.is_set() and not self._closed:
                job.revived = False
                # Wanted again (fetch / claim) after it was told to stop and before it did: run it
                # again for its callers instead of cancelling them.
                job.future = self._pool.submit(self._run, job)
                again = job.future
            else:
                again = None
                if self._jobs.get(job.request) is job:
                    del self._jobs[job.request]
                waiters, job.waiters = job.waiters, []
                if stopped:
                    self.stats.cancelled += 1
        if again is not None:
            again.add_done_callback(lambda f, job=job: self._finish(job, f))
            return
        if future.cancelled() or stopped:  # stopped on request: not a failure
            for w in waiters:
                w.cancel()
            return
        if exc is not None:
            with self._lock:
                self.stats.failed += 1
        for w in waiters:
            if not w.set_running_or_notify_cancel():
                continue  # that caller gave up
            if exc is not None:
                w.set_exception(exc)
            else:
                w.set_result(future.result())
