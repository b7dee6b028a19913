"""`ImageJSlide`: an ImageJ hyperstack TIFF (how Fiji, ImageJ and Micro-Manager save focal
stacks) as a multi-plane Slide, read with tifffile.

* **Focal planes**: every plane of the ``Z`` axis (``slices``); a plain ImageJ stack that names
  no axis (``images=N`` only, tifffile's axis ``I``) is a stack of slices, as ImageJ treats it.
  z of plane ``i`` = ``i × spacing`` converted from the file's ``unit`` (µm, ``micron``, ``um``,
  ``\\u00B5m`` as ImageJ writes it, nm, mm, cm, m, inch) to µm; a negative spacing is kept
  (planes are then listed ascending). **When the file states no spacing, or a unit that is not
  a length** (ImageJ's ``pixel``), the planes are put 1 µm apart (``z = i`` µm) and the slide
  says so in ``notes`` and ``properties["imagej.z_step"]``: the z values are then indices,
  not measurements.
* **Other axes** (channels ``C``, frames ``T``): their first index is read; ``notes`` and
  ``properties["imagej.other_axes"]`` name them and their sizes.
* **µm per px**: XResolution / YResolution are px per ``unit`` (ImageJ writes ResolutionUnit
  NONE); with ResolutionUnit inch or cm they are px per inch / cm (`image.tiff_mpp`).
* **Pixels**: RGB, grey 8-bit, 16-bit and float. Non-uint8 samples are windowed by one
  `DisplayRange` for the whole slide: the file's ImageJ ``min``/``max`` when it states them,
  else the 0.5–99.5 percentiles of a coarse view of up to 8 planes.
* **Reads**: an uncompressed contiguous stack (what ImageJ writes) is memory-mapped; otherwise
  each plane's page is read segment by segment (`TiffRegionReader`). A read touches only the
  requested rectangle of one plane, never the whole stack. Coarser levels are computed on
  demand (`ComputedPyramid`), as for plain images.

Coordinates are level-0 px; z is µm.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from . import display_range as dr
from .base import CorruptSlideError, Slide, UnsupportedSlideError
from .computed_levels import ComputedPyramid, computed_levels
from .image import tiff_mpp
from .tiff_region import TiffRegionReader, samples_to_rgb

#: µm in one unit, by ImageJ unit name (lower case).
UNIT_UM = {
    "µm": 1.0, "μm": 1.0, "um": 1.0, "micron": 1.0, "microns": 1.0, "micrometer": 1.0,
    "micrometre": 1.0, "\\u00b5m": 1.0, "nm": 1e-3, "nanometer": 1e-3, "nanometre": 1e-3,
    "mm": 1e3, "millimeter": 1e3, "millimetre": 1e3, "cm": 1e4, "m": 1e6, "meter": 1e6,
    "metre": 1e6, "inch": 25400.0, "in": 25400.0,
}
AXIS_NAMES = {"C": "channels", "T": "frames", "Q": "unknown", "E": "lambda", "R": "tiles",
              "H": "phases", "V": "views"}
#: Long side of the per-plane view the display range is taken from, px.
RANGE_VIEW_PX = 512


def unit_um(unit) -> float | None:
    """µm per one ``unit`` (an ImageJ unit string), or None when it is not a length."""
    if unit is None:
        return None
    return UNIT_UM.get(str(unit).strip().lower())


class ImageJSlide(Slide):
    """``path``: a TIFF whose first ImageDescription starts with ``ImageJ=``."""

    format = "imagej"

    def __init__(self, path: str | Path):
        self.path = str(path)
        self._reader = TiffRegionReader(self.path)
        self._mm = None
        try:
            self._open()
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------------ open
    def _open(self) -> None:
        tif = self._reader.tif
        meta = tif.imagej_metadata or {}
        if not tif.series:
            raise CorruptSlideError(self.path, "ImageJ TIFF holds no image")
        s = tif.series[0]
        key = s.keyframe
        self._reader.check(key)
        self._key = key
        axes, shape = s.axes, tuple(int(n) for n in s.shape)
        if "Y" not in axes or "X" not in axes:
            raise UnsupportedSlideError(self.path, f"ImageJ stack with axes {axes} has no Y and X")
        self._axes, self._shape = axes, shape
        focal = "Z" if "Z" in axes else ("I" if "I" in axes else None)
        n = shape[axes.index(focal)] if focal else 1
        held = int(np.prod([k for a, k in zip(axes, shape) if a not in ("Y", "X", "S")],
                           dtype=np.int64))
        try:
            claimed = int(meta.get("images") or 1)
            slices = int(meta.get("slices") or 0)
        except (TypeError, ValueError) as exc:
            raise CorruptSlideError(self.path, "ImageJ metadata has a non-numeric image count") from exc
        if held != claimed or (slices and focal == "Z" and n != slices):
            raise CorruptSlideError(self.path, f"ImageJ metadata claims {claimed} images "
                                               f"({slices or claimed} planes); the file holds "
                                               f"{held} readable (truncated or damaged)")
        self._focal = focal
        notes: list[str] = []
        others = [(a, shape[i]) for i, a in enumerate(axes)
                  if a not in ("Y", "X", "S", focal) and shape[i] > 1]
        if others:
            text = "; ".join(f"{a} ({AXIS_NAMES.get(a, a)}): {k}, the first read" for a, k in others)
            notes.append(f"other axes: {text}")
        W, H = int(shape[axes.index("X")]), int(shape[axes.index("Y")])
        self._access = self._memmap(s) or self._paged(s, n)

        # z planes (µm)
        spacing = meta.get("spacing")
        z_unit = meta.get("zunit", meta.get("unit"))
        per_unit = unit_um(z_unit)
        step, known = 1.0, False
        if n > 1:
            try:
                sp = float(spacing) if spacing is not None else None
            except (TypeError, ValueError):
                sp = None
            if sp is not None and math.isfinite(sp) and sp != 0 and per_unit is not None:
                step, known = sp * per_unit, True
            elif sp is None:
                notes.append("z step not stated: planes 1 µm apart assumed")
            else:
                notes.append(f"z step {spacing} in unit {z_unit!r} cannot be read as a length: "
                             "planes 1 µm apart assumed")
        zs = [round(i * step, 9) for i in range(n)]
        self._order = sorted(range(n), key=lambda i: zs[i])
        self.planes_um = tuple(float(zs[i]) for i in self._order)

        # µm per px
        self.mpp = self._mpp(key, meta)
        if self.mpp is None:
            notes.append("µm per px not stated")

        # display window
        if dr.needs_window(s.dtype):
            window = dr.from_file(meta.get("min"), meta.get("max"),
                                  "the file's ImageJ display range (min/max)")
            if window is None:
                window = self._window_from_data(W, H)
        else:
            window = dr.IDENTITY
        self._window = window
        self.display_range = None if window is dr.IDENTITY else (window.low, window.high)

        self.levels = computed_levels(W, H)
        self._pyramid = ComputedPyramid(self.levels, self._read_level0)
        self.tile_size = (512, 512)
        self.notes = tuple(notes)
        props = {
            "imagej.version": str(meta.get("ImageJ", "")),
            "imagej.axes": axes,
            "imagej.shape": "x".join(str(k) for k in shape),
            "imagej.dtype": str(s.dtype),
            "imagej.focal_axis": focal or "none",
            "imagej.z_step": (f"{step:g} µm" if known else
                              ("planes 1 µm apart assumed (not stated)" if n > 1 else "one plane")),
            "imagej.unit": str(meta.get("unit", "")),
            "imagej.reads": "memory-mapped" if self._mm is not None else "per page",
        }
        if spacing is not None:
            props["imagej.spacing"] = str(spacing)
        if others:
            props["imagej.other_axes"] = notes[0].removeprefix("other axes: ")
        props.update(window.properties())
        self.properties = props

    def _memmap(self, s):
        """A read-only memory map of the whole series when it is stored contiguous and
        uncompressed; None otherwise. The file size is checked first (nothing is allocated)."""
        offset = s.dataoffset
        if offset is None or int(self._key.compression) != 1 or s.dtype.kind not in "uif":
            return None
        dtype = np.dtype(s.dtype).newbyteorder(self._reader.tif.byteorder)
        need = int(offset) + int(np.prod(self._shape, dtype=np.int64)) * dtype.itemsize
        size = os.path.getsize(self.path)
        if need > size:
            raise CorruptSlideError(self.path, f"file is truncated: the ImageJ stack needs "
                                               f"{need} bytes, the file has {size}")
        self._mm = np.memmap(self.path, dtype=dtype, mode="r", offset=int(offset), shape=self._shape)
        return "memmap"

    def _paged(self, s, n: int):
        """Per-plane TIFF pages (first index of every other axis), checked."""
        lead = [(i, a) for i, a in enumerate(self._axes) if a not in ("Y", "X", "S")]
        sizes = [self._shape[i] for i, _ in lead]
        pages = list(s.pages)
        if len(pages) < int(np.prod(sizes, dtype=np.int64)):
            raise CorruptSlideError(self.path, f"ImageJ metadata claims {int(np.prod(sizes))} "
                                               f"images, the file holds {len(pages)} pages")
        self._pages = []
        for z in range(n):
            idx = [z if a == self._focal else 0 for _, a in lead]
            k = int(np.ravel_multi_index(idx, sizes)) if idx else 0
            page = pages[k]
            if page is None:
                raise CorruptSlideError(self.path, f"ImageJ plane {z} has no TIFF page")
            page = page.aspage() if getattr(page, "is_frame", False) else page
            self._reader.check(page)
            self._pages.append(page)
        return "pages"

    def _mpp(self, page, meta) -> tuple[float, float] | None:
        unit_tag = int(page.tags["ResolutionUnit"].value) if "ResolutionUnit" in page.tags else 1
        if unit_tag in (2, 3):
            return tiff_mpp(page)
        per_unit = unit_um(meta.get("unit"))
        if per_unit is None:
            return None
        try:
            xr, yr = page.tags["XResolution"].value, page.tags["YResolution"].value
            xres, yres = xr[0] / xr[1], yr[0] / yr[1]
        except (KeyError, TypeError, ZeroDivisionError, IndexError):
            return None
        if not (xres > 0 and yres > 0):
            return None
        mpp = (per_unit / xres, per_unit / yres)
        return mpp if all(math.isfinite(m) and 1e-6 < m < 1e6 for m in mpp) else None

    def _window_from_data(self, W: int, H: int) -> dr.DisplayRange:
        stride = max(1, math.ceil(max(W, H) / RANGE_VIEW_PX))
        picks = dr.evenly_spaced(len(self.planes_um))
        views = []
        for p in picks:
            if self._mm is not None:
                views.append(np.asarray(self._raw_view(p)[::stride, ::stride]))
            else:
                w, h = min(W, 4096), min(H, 4096)
                x, y = (W - w) // 2, (H - h) // 2
                views.append(self._reader.read_samples(self._pages[p], x, y, w, h)[::stride, ::stride])
        return dr.from_samples(views, f"a 1/{stride} view of {len(picks)} planes")

    # ------------------------------------------------------------------ pixels
    def _raw_view(self, plane: int):
        """The memory-mapped (Y, X[, S]) view of one plane (file z index ``plane``)."""
        idx = []
        for a in self._axes:
            if a == self._focal:
                idx.append(plane)
            elif a in ("Y", "X", "S"):
                idx.append(slice(None))
            else:
                idx.append(0)
        v = self._mm[tuple(idx)]
        spatial = [a for a in self._axes if a in ("Y", "X", "S")]
        order = [spatial.index(a) for a in ("Y", "X", "S") if a in spatial]
        return v.transpose(order) if order != list(range(len(order))) else v

    def _read_level0(self, plane: int, x: int, y: int, w: int, h: int) -> np.ndarray:
        z = self._order[plane]
        if self._mm is not None:
            raw = np.asarray(self._raw_view(z)[y:y + h, x:x + w])
        else:
            raw = self._reader.read_samples(self._pages[z], x, y, w, h)
        if raw.ndim == 2:
            raw = raw[:, :, None]
        samples = self._window.apply(raw)
        return np.ascontiguousarray(samples_to_rgb(samples, self._key))

    def _read(self, level, lx, ly, w, h, plane):
        return self._pyramid.read(level, plane, lx, ly, w, h)

    def close(self) -> None:
        self._mm = None
        self._reader.close()
