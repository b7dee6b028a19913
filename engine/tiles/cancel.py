"""Cooperative cancellation of work running on a worker thread.

A running Python thread cannot be killed, so long computations (a heatmap tile that scores many
blocks or patches, a colour scale calibrated from several blocks) stop by themselves when told
to: whoever runs the work wraps it in ``cancel_scope(event)``; the work calls
``raise_if_cancelled()`` between its steps (blocks, patches), which raises `JobCancelled` once
the event is set. Outside any scope (a script, a test, the CLI) the checks never raise, so the
engine's results do not depend on who calls it.

`engine.tiles.store.TileStore` runs every read in such a scope: a tile no view wants any longer
(``cancel_superseded``) or a closed store stops its running reads at the next check.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator


class JobCancelled(InterruptedError):
    """The work was told to stop (its cancel event is set)."""


_local = threading.local()


@contextmanager
def cancel_scope(event: threading.Event) -> Iterator[threading.Event]:
    """Run the body with ``event`` as this thread's cancel flag (scopes nest: the innermost wins,
    and an outer event that is set also cancels)."""
    outer = getattr(_local, "events", ())
    _local.events = (*outer, event)
    try:
        yield event
    finally:
        _local.events = outer


def cancel_requested() -> bool:
    """True when the work on this thread has been told to stop."""
    return any(e.is_set() for e in getattr(_local, "events", ()))


def raise_if_cancelled() -> None:
    """Raise `JobCancelled` if the work on this thread has been told to stop."""
    if cancel_requested():
        raise JobCancelled("work cancelled")
