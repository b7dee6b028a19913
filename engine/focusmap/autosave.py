"""`FocusMapAutosave`: the map being painted, kept safe on disk every few seconds.

One file per slide in the user's data folder — never beside the slide, which may sit on a
read-only share: ``$FINEFOCUS_DATA_DIR/focusmaps/`` if that variable is set (tests, portable
installs), else ``$XDG_DATA_HOME/FineFocus/focusmaps/``, else
``~/.local/share/FineFocus/focusmaps/``. The file is ``<key hash>.npz`` (a `FocusMap.save` file),
the hash (SHA-256, 32 hex digits) of `slide_key`: the slide's resolved path when it has one, its
``uid`` when its class gives a stable one (the built-in phantom), and its level-0 size and planes.
A slide with neither a path nor a stable uid (an `ArraySlide` made in memory) has no autosave:
the constructor raises `ValueError`.

How the viewer drives it (a timer and the close event are the viewer's)::

    autosave = FocusMapAutosave(slide)            # when a slide opens
    fm = autosave.restore() or FocusMap(*slide.dimensions)
    if autosave.problem: show(autosave.problem)   # a damaged autosave, moved aside
    ...
    if autosave.due(time.monotonic()):            # e.g. from a 1 s QTimer
        autosave.save_if_changed(fm)              # cheap when nothing changed
    ...
    autosave.save_if_changed(fm)                  # on close
    autosave.discard()                            # when the user clears / drops the map

Writes are atomic and durable: a ``.part`` file beside the target, fsynced, renamed over it,
and the folder fsynced — a crash or SIGKILL at any moment leaves the previous autosave or the
new one, never a torn file. `save_if_changed` returns at once (no hashing) when it is handed
the same map object at the same ``version`` as last time, and writes nothing when the map's
``digest`` equals the last saved one (an undo back to what is on disk).

Threads: the methods take an internal lock, so a worker's save and a save on close never
interleave. The map itself is not locked: to save on a worker thread, hand it
``fm.frozen()`` taken on the thread that paints (an immutable copy of one version), never the
live map a stroke may be changing; submit the saves to one worker (a single-thread pool) so they
land in the order they were taken.
"""
from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
import weakref
from pathlib import Path

from ..slides.base import Slide
from .focus_map import FocusMap, FocusMapError

__all__ = ["FocusMapAutosave", "AUTOSAVE_INTERVAL_S", "autosave_folder", "slide_key"]

#: Seconds between autosaves while painting.
AUTOSAVE_INTERVAL_S = 5.0
#: Damaged autosaves kept (moved aside) per slide; older ones are deleted.
KEEP_DAMAGED = 3
log = logging.getLogger(__name__)


def autosave_folder() -> Path:
    """Where autosaves live (see the module docstring); not created here."""
    root = os.environ.get("FINEFOCUS_DATA_DIR")
    if root:
        return Path(root).expanduser() / "focusmaps"
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg).expanduser() if xdg and Path(xdg).is_absolute() else Path.home() / ".local" / "share"
    return base / "FineFocus" / "focusmaps"


def slide_key(slide: Slide) -> str:
    """A text naming ``slide`` the same way in every process: its resolved path (a file or
    folder that exists), its uid when its class defines a stable one, its level-0 size (px) and
    its planes (µm). `ValueError` when it has neither a path nor a stable uid."""
    parts = []
    if slide.path and os.path.exists(slide.path):
        parts.append(f"path={Path(slide.path).resolve()}")
    elif slide.path:
        parts.append(f"path={slide.path}")
    if type(slide).uid is not Slide.uid:          # the base uid holds id(self): not stable
        parts.append(f"uid={slide.uid}")
    if not parts:
        raise ValueError(f"{type(slide).__name__} has no file path or stable uid to key an autosave on")
    W, H = slide.dimensions
    parts.append(f"size={W}x{H}")
    parts.append("planes=" + ",".join(f"{z:g}" for z in slide.planes_um))
    return "|".join(parts)


class FocusMapAutosave:
    """The autosave of one slide's focus map (see the module docstring).

    Parameters
    ----------
    slide : the slide being painted (the file's slide, not a refocused view of it).
    folder : where to keep autosaves; default `autosave_folder()`.
    interval_s : seconds between autosaves for `due`.
    """

    def __init__(self, slide: Slide, folder: str | os.PathLike | None = None,
                 interval_s: float = AUTOSAVE_INTERVAL_S):
        if not interval_s > 0:
            raise ValueError(f"the autosave interval must be > 0 s, got {interval_s}")
        self.key = slide_key(slide)
        self.size = tuple(slide.dimensions)
        self.folder = Path(folder) if folder is not None else autosave_folder()
        self.path = self.folder / (hashlib.sha256(self.key.encode()).hexdigest()[:32] + ".npz")
        self.interval_s = float(interval_s)
        #: One line about the last damaged autosave `restore` moved aside, or None.
        self.problem: str | None = None
        self._lock = threading.Lock()
        self._last_try: float | None = None
        self._saved_digest: str | None = None
        self._saved_ref = None               # weakref to the map object last saved…
        self._saved_version = -1             # …at this version

    # ------------------------------------------------------------------ timing
    def due(self, now: float | None = None) -> bool:
        """True when ``interval_s`` have passed since the last `save_if_changed` (or none was
        made yet). ``now``: `time.monotonic` seconds."""
        now = time.monotonic() if now is None else now
        return self._last_try is None or now - self._last_try >= self.interval_s

    # ------------------------------------------------------------------ saving
    def save_if_changed(self, fm: FocusMap, now: float | None = None) -> bool:
        """Write ``fm`` unless it is what was last saved; True when a file was written. Raises
        `OSError` when the folder cannot be written (the viewer reports it and keeps painting)."""
        if (fm.width, fm.height) != self.size:
            raise ValueError(f"a {fm.width} × {fm.height} px map is not for this {self.size[0]} × {self.size[1]} px slide")
        with self._lock:
            self._last_try = time.monotonic() if now is None else now
            if self._saved_ref is not None and self._saved_ref() is fm and fm.version == self._saved_version:
                return False
            digest = fm.digest
            wrote = digest != self._saved_digest
            if wrote:
                self.folder.mkdir(parents=True, exist_ok=True)
                fm.save(self.path, durable=True)
                self._saved_digest = digest
            try:
                self._saved_ref = weakref.ref(fm)
            except TypeError:
                self._saved_ref = None
            self._saved_version = fm.version
            return wrote

    # ------------------------------------------------------------------ restoring
    def restore(self) -> FocusMap | None:
        """The autosaved map of this slide, or None when there is none. A damaged one (or one
        that no longer fits the slide) is moved aside to ``<name>.damaged-<time>.npz``, reported
        in `problem` and the log, and None is returned: restoring never raises for the file."""
        with self._lock:
            self.problem = None
            self._remove_stale_parts()
            if not self.path.exists():
                return None
            try:
                fm = FocusMap.load(self.path, size=self.size)
            except FocusMapError as exc:
                aside = self.path.with_name(f"{self.path.stem}.damaged-{time.strftime('%Y%m%d-%H%M%S')}.npz")
                try:
                    os.replace(self.path, aside)
                    self._prune_damaged()
                    self.problem = f"{exc}; moved aside to {aside.name}"
                except OSError as move_exc:
                    self.problem = f"{exc}; could not move it aside ({move_exc.strerror or move_exc})"
                log.warning("focus map autosave: %s", self.problem)
                return None
            self._saved_digest = fm.digest
            self._saved_ref = weakref.ref(fm)
            self._saved_version = fm.version
            return fm

    def _remove_stale_parts(self, age_s: float = 60.0) -> None:
        """Delete the ``.part`` files of writes a crash cut short (older than ``age_s``: a part
        that young may be another viewer's save in progress)."""
        cutoff = time.time() - age_s
        for p in self.folder.glob(f"{self.path.name}.*.part.npz"):
            try:
                if p.stat().st_mtime < cutoff:
                    p.unlink()
            except OSError:
                pass

    def _prune_damaged(self) -> None:
        old = sorted(self.folder.glob(f"{self.path.stem}.damaged-*.npz"))
        for p in old[:-KEEP_DAMAGED]:
            p.unlink(missing_ok=True)

    def discard(self) -> None:
        """Delete this slide's autosave (the map was saved elsewhere, or cleared on purpose)."""
        with self._lock:
            self.path.unlink(missing_ok=True)
            self._saved_digest = None
            self._saved_ref = None
            self._saved_version = -1
