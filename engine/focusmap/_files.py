"""Small file helpers shared by the focus-map exchange formats and the autosave: atomic,
optionally durable writes (a ``.part`` file beside the target, renamed into place) and reads
with a byte limit checked before anything is loaded."""
from __future__ import annotations

import os
from pathlib import Path

from .focus_map import FocusMapError

__all__ = ["atomic_write_bytes", "read_limited", "fsync_folder"]


def fsync_folder(folder: Path) -> None:
    """Flush a folder's entries (a rename) to disk where the platform allows it."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, durable: bool = False) -> Path:
    """Write ``data`` to ``path`` through ``<path>.<pid>.part`` renamed into place: a reader (or a
    crash) sees the old file or the new one, never a part. ``durable`` also fsyncs the file and
    its folder, so the new content survives a power cut once this returns."""
    path = Path(path)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.part")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        fsync_folder(path.parent)
    return path


def read_limited(path: str | os.PathLike, max_bytes: int, what: str) -> bytes:
    """The bytes of ``path``, refused (`FocusMapError` naming the file) when it holds more than
    ``max_bytes`` — checked on the size before reading; a file that grows meanwhile is read no
    further than its size and refused."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if path.is_dir():
            raise FocusMapError(f"{path}: is a folder, not a {what}")
        if size > max_bytes:
            raise FocusMapError(f"{path}: {size / 2**20:.1f} MiB is too large for a {what} "
                                f"(limit {max_bytes / 2**20:.0f} MiB)")
        with open(path, "rb") as f:
            data = f.read(size + 1)        # (read(n) allocates n bytes up front: not the limit)
    except FileNotFoundError:
        raise FocusMapError(f"{path}: no such file") from None
    except PermissionError:
        raise FocusMapError(f"{path}: permission denied") from None
    except OSError as exc:
        raise FocusMapError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if len(data) > size:
        raise FocusMapError(f"{path}: grew while it was being read")
    return data
