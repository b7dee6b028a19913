"""Import and export of focus maps by file type: the one entry point the CLI and the viewer's
File ▸ Import / Export use. ``.geojson`` / ``.json`` → `geojson` (QuPath annotations, depths
quantised), ``.tif`` / ``.tiff`` → `tiff` (float32 cells, exact), ``.npz`` → `FocusMap.save` /
`FocusMap.load` (exact, with the map's own format).

Every function raises `FocusMapError` — one line naming the file and the reason — for a file it
cannot take; importing returns a new map and never touches one being painted (take it with
`FocusMap.replace` as one undo step, or keep it as a new map).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from .focus_map import FocusMap, FocusMapError
from .geojson import GEOJSON_STEP_UM, read_geojson, write_geojson
from .tiff import read_tiff, write_tiff

__all__ = ["IMPORT_SUFFIXES", "EXPORT_SUFFIXES", "import_focus_map", "export_focus_map", "kind_of"]

IMPORT_SUFFIXES = (".geojson", ".json", ".tif", ".tiff", ".npz")
EXPORT_SUFFIXES = IMPORT_SUFFIXES


def kind_of(path: str | os.PathLike) -> str:
    """``"geojson"``, ``"tiff"`` or ``"npz"`` by the file's suffix; `FocusMapError` otherwise."""
    suffix = Path(path).suffix.lower()
    if suffix in (".geojson", ".json"):
        return "geojson"
    if suffix in (".tif", ".tiff"):
        return "tiff"
    if suffix == ".npz":
        return "npz"
    raise FocusMapError(f"{path}: a focus map file is .geojson, .tif(f) or .npz, not {suffix or 'no suffix'!r}")


def import_focus_map(path: str | os.PathLike, size: Sequence[int], *, stride: int | None = None,
                     default_um: float | None = None) -> FocusMap:
    """Read a focus map for a ``size`` = (width, height) level-0 px slide from ``path``.
    ``stride`` (level-0 px per cell) and ``default_um`` (µm) only matter for files that do not
    say (a QuPath export, a foreign TIFF)."""
    kind = kind_of(path)
    if kind == "geojson":
        return read_geojson(path, size, stride=stride, default_um=default_um)
    if kind == "tiff":
        return read_tiff(path, size, stride=stride, default_um=default_um)
    return FocusMap.load(path, size=size)


def export_focus_map(fm: FocusMap, path: str | os.PathLike, *, step_um: float = GEOJSON_STEP_UM,
                     planes_um: Sequence[float] | None = None, mpp: Sequence[float] | None = None) -> Path:
    """Write ``fm`` to ``path`` (atomically) in the format its suffix names. ``step_um``: the
    GeoJSON depth quantisation (µm); ``planes_um``: the slide's captured planes (µm), for
    QuPath's ``plane.z``; ``mpp``: µm per level-0 px, for the file's metadata."""
    kind = kind_of(path)
    try:
        if kind == "geojson":
            write_geojson(fm, path, step_um=step_um, planes_um=planes_um, mpp=mpp)
        elif kind == "tiff":
            write_tiff(fm, path, mpp=mpp)
        else:
            fm.save(path)
    except OSError as exc:
        raise FocusMapError(f"{path}: cannot write ({exc.strerror or exc})") from None
    return Path(path)
