"""`DicomSlide`: DICOM VL Whole Slide Microscopy Image series read with wsidicom.

* Input: a folder of instances (one per level, or split further), or a single ``.dcm`` file.
* Focal planes: wsidicom's ``level.focal_planes`` — the ZOffsetInSlideCoordinateSystem of the
  frames (TILED_SPARSE) or origin z + index × SpacingBetweenSlices (TILED_FULL), in µm.
* Levels: every level of the first pyramid that holds *all* focal planes of the base level.
  Scanners often store the coarse levels for the nominal plane only; such levels are left out
  rather than showing one plane's pixels for another plane (coarse views then come from the
  finest complete level).
* µm per pixel: the base level's PixelSpacing (mm) × 1000. DICOM stores (row, column) spacing;
  wsidicom gives it as (width, height).
* Reading: ``WsiDicom.read_region(location in px of the level, level number, size, z=...)``.
  wsidicom's file readers hold their own locks, so reads from several threads are safe.
"""
from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from .base import CorruptSlideError, Level, Slide, SlideError, UnsupportedSlideError


class DicomSlide(Slide):
    format = "dicom"

    def __init__(self, path: str | Path):
        self.path = str(path)
        from wsidicom import WsiDicom

        try:
            self._wsi = WsiDicom.open(self.path)
        except Exception as exc:  # wsidicom raises many types for files it cannot use
            raise UnsupportedSlideError(
                self.path, f"no readable DICOM whole-slide image ({_short(exc)})") from exc
        self._lock = threading.Lock()
        self._closed = False
        try:
            self._open()
        except BaseException:
            self._wsi.close()
            raise

    def _open(self) -> None:
        wsi = self._wsi
        try:
            pyramid = wsi.levels
            base = pyramid.base_level
        except Exception as exc:
            raise UnsupportedSlideError(self.path, f"DICOM series has no pyramid ({_short(exc)})") from exc
        planes = sorted(float(z) for z in base.focal_planes)
        if not planes:
            raise CorruptSlideError(self.path, "DICOM pyramid has no focal plane")
        self._dicom_levels = [lv for lv in pyramid.levels
                              if all(any(abs(z - q) < 1e-6 for q in lv.focal_planes) for z in planes)]
        W = base.size.width
        base_spacing = _spacing(base)
        levels = []
        for lv in self._dicom_levels:
            sp = _spacing(lv)
            if base_spacing and sp:
                ds = sp[0] / base_spacing[0]
            else:
                ds = W / lv.size.width
            levels.append(Level(int(lv.size.width), int(lv.size.height), float(ds)))
        self.levels = tuple(levels)
        self.planes_um = tuple(planes)
        self.mpp = (base_spacing[0] * 1000.0, base_spacing[1] * 1000.0) if base_spacing else None
        ts = base.tile_size
        self.tile_size = (int(ts.width), int(ts.height))
        self.properties = _properties(wsi, base)

    def _read(self, level, lx, ly, w, h, plane):
        if self._closed:
            raise SlideError(self.path, "slide is closed")
        lv = self._dicom_levels[level]
        try:
            arr = self._wsi.read_region((lx, ly), lv.level, (w, h), z=self.planes_um[plane],
                                        as_array=True)
        except Exception as exc:
            raise CorruptSlideError(
                self.path, f"cannot read level {level} at {lx},{ly} ({_short(exc)})") from exc
        return np.asarray(arr)

    @property
    def associated_images(self):
        out = {}
        readers = (("label", self._wsi.read_label), ("macro", self._wsi.read_overview),
                   ("thumbnail", self._wsi.read_thumbnail))
        for name, fn in readers:
            try:
                img = fn() if name != "thumbnail" else fn((512, 512))
            except Exception:
                continue
            out[name] = np.asarray(img.convert("RGB"))
        return out

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._wsi.close()


def _spacing(level) -> tuple[float, float] | None:
    """Pixel spacing (x, y) in mm of a wsidicom level, or None."""
    try:
        sp = level.pixel_spacing
    except Exception:
        return None
    if sp is None or sp.width <= 0 or sp.height <= 0:
        return None
    return float(sp.width), float(sp.height)


def _short(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:200]


def _properties(wsi, base) -> dict[str, str]:
    props = {"dicom.levels": str(len(wsi.levels.levels)),
             "dicom.focal_planes_um": ",".join(f"{z:g}" for z in sorted(base.focal_planes))}
    try:
        ds = base.datasets[0].as_dataset()
        for key in ("Manufacturer", "ManufacturerModelName", "ContainerIdentifier",
                    "StudyInstanceUID", "SeriesInstanceUID", "DimensionOrganizationType"):
            value = ds.get(key)
            if value is not None:
                props[f"dicom.{key}"] = str(value)
    except Exception:
        pass
    return props
