"""`PlaneSetSlide`: a focus bracket — one image file per focal plane — as one multi-plane Slide.

A plane set is a folder (or an explicit list of files). The z of each plane comes from, in
this order:

1. a sidecar ``planes.json`` in the folder::

       {
         "mpp": 0.25,                      # optional: µm per px (x = y), or [x, y]
         "planes": [                       # one entry per plane, any order
           {"file": "a.png", "z_um": -1.0},  # file relative to the folder; z in µm
           {"file": "b.png", "z_um": 0.0}
         ]
       }

2. otherwise the file names: ``<anything>_z<signed number>um.<ext>``, e.g.
   ``bracket_z+1.25um.png``, ``bracket_z-0.5um.tif``, ``scan_z0um.jpg`` (case-insensitive).

Every plane is read through `ImageSlide` (so TIFFs are read lazily, PNG/JPEG decoded once),
and all planes must have the same size. µm per pixel: ``mpp`` of the sidecar, else the first
image's own resolution tags, else None.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Iterable

from .base import CorruptSlideError, Slide, SlideError, SlideNotFoundError, UnsupportedSlideError
from .image import ImageSlide

SIDECAR = "planes.json"
#: ``name_z+1.25um.png`` → +1.25; the sign is optional.
Z_NAME = re.compile(r"_z([+-]?\d+(?:\.\d+)?)\s*(?:um|µm|μm)$", re.IGNORECASE)
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp"}


def z_from_name(path: str | Path) -> float | None:
    """The z (µm) written in a file name such as ``x_z-0.5um.tif``, or None."""
    m = Z_NAME.search(Path(path).stem)
    return float(m.group(1)) if m else None


def plane_files_in(folder: Path) -> list[tuple[Path, float]] | None:
    """(file, z µm) of the plane set in ``folder``, or None when the folder is not one."""
    sidecar = folder / SIDECAR
    if sidecar.is_file():
        return _from_sidecar(sidecar)[0]
    found = [(p, z_from_name(p)) for p in sorted(folder.iterdir())
             if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]
    found = [(p, z) for p, z in found if z is not None]
    return found or None


def _from_sidecar(sidecar: Path) -> tuple[list[tuple[Path, float]], tuple[float, float] | None]:
    try:
        doc = json.loads(sidecar.read_text())
        entries = [(sidecar.parent / str(e["file"]), float(e["z_um"])) for e in doc["planes"]]
        mpp = doc.get("mpp")
        if mpp is not None:
            mpp = (float(mpp), float(mpp)) if isinstance(mpp, (int, float)) else (float(mpp[0]), float(mpp[1]))
    except (ValueError, KeyError, TypeError, IndexError, OSError) as exc:
        raise CorruptSlideError(sidecar, f"bad plane-set sidecar ({exc}); expected "
                                         '{"planes": [{"file": ..., "z_um": ...}, ...]}') from exc
    if not entries:
        raise CorruptSlideError(sidecar, "plane-set sidecar lists no planes")
    return entries, mpp


class PlaneSetSlide(Slide):
    """Parameters: ``source`` a folder, or an iterable of image paths with z in their names."""

    format = "plane-set"

    def __init__(self, source: str | Path | Iterable[str | Path]):
        mpp = None
        if isinstance(source, (str, Path)):
            folder = Path(source)
            self.path = str(folder)
            if (folder / SIDECAR).is_file():
                entries, mpp = _from_sidecar(folder / SIDECAR)
            else:
                entries = plane_files_in(folder)
                if not entries:
                    raise UnsupportedSlideError(
                        folder, f"no {SIDECAR} and no images named like name_z+1.25um.png")
        else:
            files = [Path(p) for p in source]
            if not files:
                raise ValueError("a plane set needs at least one file")
            self.path = str(files[0].parent)
            entries = []
            for f in files:
                z = z_from_name(f)
                if z is None:
                    raise UnsupportedSlideError(f, "file name carries no z (expected name_z+1.25um.png)")
                entries.append((f, z))
        entries.sort(key=lambda e: e[1])
        zs = [z for _, z in entries]
        if len(set(zs)) != len(zs):
            raise CorruptSlideError(self.path, f"two planes share the same z in {zs}")
        self._planes: list[ImageSlide] = []
        try:
            for f, _ in entries:
                if not f.is_file():
                    raise SlideNotFoundError(f, "plane image listed in the plane set is missing")
                self._planes.append(ImageSlide(f))
            first = self._planes[0]
            for f, s in zip(entries, self._planes):
                if s.dimensions != first.dimensions:
                    raise CorruptSlideError(
                        f[0], f"plane is {s.dimensions[0]}x{s.dimensions[1]} px, the first plane "
                              f"is {first.dimensions[0]}x{first.dimensions[1]} px")
        except BaseException:
            self.close()
            raise
        self.planes_um = tuple(zs)
        self.levels = first.levels
        self.mpp = mpp if mpp is not None else first.mpp
        self.tile_size = first.tile_size
        self.properties = {"plane_set.files": ",".join(f.name for f, _ in entries),
                           "plane_set.z_source": "sidecar" if (Path(self.path) / SIDECAR).is_file()
                           else "file names"}

    def _read(self, level, lx, ly, w, h, plane):
        return self._planes[plane]._read(level, lx, ly, w, h, 0)

    def close(self) -> None:
        for s in getattr(self, "_planes", []):
            try:
                s.close()
            except SlideError:
                pass
