"""`TileStore`: the finished tiles of an export in progress, kept on disk so it can resume.

Two files beside the export's target ``OUT``:

* ``OUT.partial`` — the tiles' bytes, appended one after another (each an ``.npy`` array,
  zlib-compressed): never a TIFF, so an interrupted export never looks like a finished file;
* ``OUT.partial.json`` — the sidecar: the export's ``header`` (what is exported, from which
  slide, how: a resume must be the same export) and, per finished tile, its key and where its
  bytes lie. Written to a temporary file and renamed, at most once a ``FLUSH_S`` (and always at
  `close`), after the tiles' bytes are flushed to disk: it only ever names complete tiles.

A tile appended after the last sidecar write is simply computed again on resume (the data file
is cut back to the sidecar's ``end``).
"""
from __future__ import annotations

import io
import json
import os
import time
import zlib
from pathlib import Path

import numpy as np

__all__ = ["TileStore", "TileStoreError", "partial_paths"]

FORMAT = "finefocus-export-partial-1"
#: Least seconds between two sidecar writes (tiles finished in between are flushed at `close`).
FLUSH_S = 1.0


class TileStoreError(ValueError):
    """A partial export that cannot be resumed; the message names the file and the reason."""


def partial_paths(out: str | os.PathLike) -> tuple[Path, Path]:
    """(data file, sidecar) of an export to ``out``."""
    out = Path(out)
    return out.with_name(out.name + ".partial"), out.with_name(out.name + ".partial.json")


class TileStore:
    """Finished tiles of one export, by key (a short string). Not thread-safe."""

    def __init__(self, out: str | os.PathLike, header: dict, *, resume: bool = False):
        """Start a new store for the export to ``out``, or with ``resume`` continue the one there
        (a missing one starts empty). ``header`` must be JSON-serialisable; a resumed store
        whose header differs raises `TileStoreError` naming the first differing field."""
        self.data_path, self.sidecar_path = partial_paths(out)
        self.header = json.loads(json.dumps(header))      # as the sidecar will hold it
        self.tiles: dict[str, tuple[int, int]] = {}
        self.end = 0
        self.resumed = 0
        if resume and self.sidecar_path.exists():
            self._load()
            self.resumed = len(self.tiles)
        self._file = open(self.data_path, "r+b" if self.end else "wb")
        self._file.truncate(self.end)
        self._file.seek(self.end)
        self._dirty = False
        self._last_flush = 0.0
        if not self.end:
            self.flush(force=True)                       # a sidecar from the start: this is a partial export

    def _load(self) -> None:
        try:
            side = json.loads(self.sidecar_path.read_text())
            if side.get("format") != FORMAT:
                raise ValueError("not a FineFocus partial export")
            tiles = {str(k): (int(v[0]), int(v[1])) for k, v in side["tiles"].items()}
            end, header = int(side["end"]), side["header"]
        except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
            raise TileStoreError(f"{self.sidecar_path}: not a readable partial export ({exc}); "
                                 f"delete it and {self.data_path.name} to start over") from None
        for key in sorted(set(header) | set(self.header)):
            if header.get(key) != self.header.get(key):
                raise TileStoreError(
                    f"{self.sidecar_path}: made by a different export ({key}: {header.get(key)!r} there, "
                    f"{self.header.get(key)!r} now); run the same command, or delete it and "
                    f"{self.data_path.name} to start over")
        size = self.data_path.stat().st_size if self.data_path.exists() else -1
        if size < end:
            raise TileStoreError(f"{self.data_path}: shorter ({max(size, 0)} bytes) than its sidecar says "
                                 f"({end}); delete it and {self.sidecar_path.name} to start over")
        self.tiles, self.end = tiles, end

    # ------------------------------------------------------------------ tiles
    def __contains__(self, key: str) -> bool:
        return key in self.tiles

    def __len__(self) -> int:
        return len(self.tiles)

    def put(self, key: str, array: np.ndarray) -> None:
        """Append ``array`` as tile ``key`` (replacing an earlier one of that key)."""
        buf = io.BytesIO()
        np.save(buf, np.ascontiguousarray(array), allow_pickle=False)
        blob = zlib.compress(buf.getbuffer(), 1)
        self._file.write(blob)
        self.tiles[key] = (self.end, len(blob))
        self.end += len(blob)
        self._dirty = True
        self.flush()

    def get(self, key: str) -> np.ndarray:
        """Tile ``key`` as it was put; KeyError when it is not stored."""
        offset, n = self.tiles[key]
        self._file.flush()
        with open(self.data_path, "rb") as f:
            f.seek(offset)
            blob = f.read(n)
        try:
            return np.load(io.BytesIO(zlib.decompress(blob)), allow_pickle=False)
        except (zlib.error, ValueError, EOFError) as exc:
            raise TileStoreError(f"{self.data_path}: tile {key} is damaged ({exc}); delete it and "
                                 f"{self.sidecar_path.name} to start over") from None

    # ------------------------------------------------------------------ files
    def flush(self, force: bool = False) -> None:
        """Write the sidecar if tiles were added (at most once a ``FLUSH_S`` unless ``force``)."""
        if not (force or self._dirty) or (not force and time.monotonic() - self._last_flush < FLUSH_S):
            return
        self._file.flush()
        os.fsync(self._file.fileno())
        side = {"format": FORMAT, "header": self.header, "end": self.end,
                "tiles": {k: list(v) for k, v in self.tiles.items()}}
        tmp = self.sidecar_path.with_name(self.sidecar_path.name + ".tmp")
        tmp.write_text(json.dumps(side, separators=(",", ":")))
        os.replace(tmp, self.sidecar_path)
        self._dirty = False
        self._last_flush = time.monotonic()

    def close(self) -> None:
        """Write the sidecar and close the data file (the store stays on disk to resume)."""
        if self._file.closed:
            return
        try:
            self.flush(force=True)
        finally:
            self._file.close()

    def discard(self) -> None:
        """Close and delete both files (the export is complete)."""
        if not self._file.closed:
            self._file.close()
        self.data_path.unlink(missing_ok=True)
        self.sidecar_path.unlink(missing_ok=True)
