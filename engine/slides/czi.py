"""`CziSlide`: a Zeiss CZI file (Axioscan, Axio Imager, ZEN) with its Z planes, read with
pylibCZIrw (libCZI), which decodes only the subblocks a region touches.

* **Checked first** (`czi_directory.read_directory`): the header and subblock directory are
  parsed without pixel data; absurd sizes, a truncated directory and subblocks past the end of
  the file are one `CorruptSlideError`. Before a read, every subblock it touches is checked to
  be present (`czi_directory.verify_subblock`), so a missing tile is an error naming its plane
  and place, never a silent hole.
* **Focal planes**: the distinct Z indices of the layer-0 subblocks; z of plane ``i`` =
  ``(Z_i − Z_first) × step``, with the step from ``Metadata/Scaling/Items/Distance[@Id="Z"]``
  (metres in the file) in µm. Several planes with no Z scaling: 1 µm apart assumed, noted.
* **µm per px**: ``Distance`` X and Y (metres → µm); implausible values (outside 0.001–1000 µm)
  are dropped and noted.
* **Geometry**: level-0 px (0, 0) is the top-left of the layer-0 bounding box of all scenes.
  Where no subblock lies, the pixels are white (as empty glass).
* **Pixels**: BGR pixel order (Bgr24, Bgr48...) is turned into RGB; grey into R = G = B. With
  several channels, the first is read (noted). Non-uint8 samples go through one `DisplayRange`
  for the whole slide: 0.5–99.5 percentiles of a coarse view of up to 8 planes.
* **Pyramid**: when the file holds pyramid subblocks, levels are 2× steps read through libCZI's
  zoom (which uses them); otherwise levels are computed on demand from level 0
  (`ComputedPyramid`), as for plain images.

Reads are serialised by a lock (one libCZI reader per slide). Coordinates are level-0 px; z µm.
"""
from __future__ import annotations

import math
import os
import re
import threading
from pathlib import Path

import numpy as np

from . import display_range as dr
from .base import CorruptSlideError, Slide, SlideError
from .computed_levels import ComputedPyramid, computed_levels
from .czi_directory import PIXEL_TYPES, Subblock, read_directory, verify_subblock
from .tiff_region import MAX_SIDE_PX

#: Long side of the coarse view the display range is taken from, px.
RANGE_VIEW_PX = 512
WHITE = (1.0, 1.0, 1.0)


class CziSlide(Slide):
    """``path``: a file that starts with ``ZISRAWFILE``."""

    format = "czi"

    def __init__(self, path: str | Path):
        self.path = str(path)
        self._lock = threading.Lock()
        self._doc = None
        self._fh = None
        try:
            self._open()
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------------ open
    def _open(self) -> None:
        from pylibCZIrw import czi as pyczi

        directory = read_directory(self.path)
        self._size = os.path.getsize(self.path)
        layer0 = directory.layer0()
        zs = directory.indices("Z")
        if len(zs) > 4096:
            raise CorruptSlideError(self.path, f"CZI claims {len(zs)} Z planes")
        x0 = min(s.dims["X"][0] for s in layer0)
        y0 = min(s.dims["Y"][0] for s in layer0)
        x1 = max(s.dims["X"][0] + s.dims["X"][1] for s in layer0)
        y1 = max(s.dims["Y"][0] + s.dims["Y"][1] for s in layer0)
        W, H = x1 - x0, y1 - y0
        if W > MAX_SIDE_PX or H > MAX_SIDE_PX:
            raise CorruptSlideError(self.path, f"CZI claims {W}x{H} px, beyond the "
                                               f"{MAX_SIDE_PX} px limit per side")
        self._origin = (x0, y0)
        self._zs = zs
        cs = directory.indices("C")
        ts = directory.indices("T")
        self._c, self._t = cs[0], ts[0]
        first = [s for s in layer0 if s.index("C") == self._c]
        self._pixel_type = PIXEL_TYPES[first[0].pixel_type][0]
        self._subblocks: dict[int, list[Subblock]] = {
            z: [s for s in layer0 if s.index("Z") == z and s.index("C") == self._c
                and s.index("T") == self._t] for z in zs}
        missing = [z for z, sbs in self._subblocks.items() if not sbs]
        if missing:
            raise CorruptSlideError(self.path, f"CZI planes Z={missing} have no subblocks of "
                                               f"channel {self._c}")
        self._verified: set[int] = set()
        self._fh = open(self.path, "rb")
        try:
            self._doc = pyczi.CziReader(self.path)
            xml = self._doc.raw_metadata
        except Exception as exc:  # libCZI raises RuntimeError on broken structures
            raise CorruptSlideError(self.path, f"libCZI cannot open it ({_short(exc)})") from exc

        notes: list[str] = []
        scaling = _scaling_um(xml)
        step = scaling.get("Z")
        if len(zs) > 1 and step is None:
            notes.append("z step not stated (no Scaling Z): planes 1 µm apart assumed")
        step = step if step is not None else 1.0
        self.planes_um = tuple(round((z - zs[0]) * step, 9) for z in zs)
        mx, my = scaling.get("X"), scaling.get("Y")
        if mx and my and all(1e-3 <= m <= 1e3 for m in (mx, my)):
            self.mpp = (mx, my)
        else:
            self.mpp = None
            notes.append("µm per px not stated" if not (mx and my) else
                         f"Scaling X/Y of {mx:g}/{my:g} µm per px is implausible: not used")
        if len(cs) > 1:
            notes.append(f"C (channels): {len(cs)}, the first read")
        if len(ts) > 1:
            notes.append(f"T (time points): {len(ts)}, the first read")
        scenes = directory.indices("S")
        self.levels = computed_levels(W, H)
        self._file_pyramid = directory.has_pyramid()
        self._pyramid = None if self._file_pyramid else ComputedPyramid(self.levels, self._read_level0)
        tw = max(s.dims["X"][1] for s in first[:64])
        th = max(s.dims["Y"][1] for s in first[:64])
        self.tile_size = (max(128, min(1024, tw)), max(128, min(1024, th)))

        if self._pixel_type in ("Gray8", "Bgr24", "Bgra32"):
            window = dr.IDENTITY
        else:
            window = self._window_from_data()
        self._window = window
        self.display_range = None if window is dr.IDENTITY else (window.low, window.high)
        self.notes = tuple(notes)
        props = {
            "czi.version": f"{directory.version[0]}.{directory.version[1]}",
            "czi.pixel_type": self._pixel_type,
            "czi.subblocks": str(len(directory.subblocks)),
            "czi.z_indices": f"{zs[0]}..{zs[-1]}" if len(zs) > 1 else str(zs[0]),
            "czi.z_step_um": f"{step:g}" if "Z" in scaling else "not stated",
            "czi.channels": str(len(cs)),
            "czi.scenes": str(len(scenes)),
            "czi.pyramid": "in the file" if self._file_pyramid else "computed",
            "czi.origin": f"{x0},{y0}",
        }
        props.update(window.properties())
        self.properties = props

    def _window_from_data(self) -> dr.DisplayRange:
        level = self.best_level_for_downsample(max(self.dimensions) / RANGE_VIEW_PX)
        lv = self.levels[level]
        w, h = min(lv.width, 2048), min(lv.height, 2048)
        x, y = (lv.width - w) // 2, (lv.height - h) // 2
        picks = dr.evenly_spaced(len(self._zs))
        views = []
        for p in picks:
            if self._file_pyramid or level == 0:
                views.append(self._raw(level, x, y, w, h, p))
            else:  # no pyramid in the file: a central level-0 window
                W0, H0 = self.dimensions
                w0, h0 = min(W0, 2048), min(H0, 2048)
                views.append(self._raw(0, (W0 - w0) // 2, (H0 - h0) // 2, w0, h0, p))
        return dr.from_samples(views, f"a coarse view of {len(picks)} planes")

    # ------------------------------------------------------------------ pixels
    def _check_present(self, plane: int, x: int, y: int, w: int, h: int) -> None:
        """Every subblock of ``plane`` meeting the level-0 rectangle exists in the file."""
        X, Y = x + self._origin[0], y + self._origin[1]
        for sb in self._subblocks[self._zs[plane]]:
            key = id(sb)
            if key in self._verified:
                continue
            (sx, sw, _), (sy, sh, _) = sb.dims["X"], sb.dims["Y"]
            if sx < X + w and X < sx + sw and sy < Y + h and Y < sy + sh:
                with self._lock:
                    verify_subblock(self.path, self._fh, sb, self._size)
                    self._verified.add(key)

    def _raw(self, level: int, lx: int, ly: int, w: int, h: int, plane: int) -> np.ndarray:
        """Samples (h, w, k) in the file's dtype, RGB order when k = 3."""
        ds = 2 ** level
        x, y = lx * ds, ly * ds
        W, H = self.dimensions
        w0, h0 = min(w * ds, W - x), min(h * ds, H - y)
        self._check_present(plane, x, y, w0, h0)
        roi = (x + self._origin[0], y + self._origin[1], w0, h0)
        plane_coords = {"Z": self._zs[plane], "C": self._c, "T": self._t}
        with self._lock:
            if self._doc is None:
                raise SlideError(self.path, "slide is closed")
            try:
                a = self._doc.read(roi=roi, plane=plane_coords, zoom=1.0 / ds if ds > 1 else None,
                                   background_pixel=WHITE)
            except Exception as exc:  # libCZI: RuntimeError and friends
                raise CorruptSlideError(self.path, f"libCZI cannot read Z={self._zs[plane]} "
                                                   f"({_short(exc)})") from exc
        a = np.asarray(a)
        if a.ndim == 2:
            a = a[:, :, None]
        if a.shape[2] >= 3:
            a = a[:, :, 2::-1]  # BGR -> RGB
        if a.shape[:2] != (h, w):  # zoomed reads may round the size by a pixel
            out = np.empty((h, w, a.shape[2]), a.dtype)
            hh, ww = min(h, a.shape[0]), min(w, a.shape[1])
            out[:hh, :ww] = a[:hh, :ww]
            if hh < h:
                out[hh:, :ww] = a[hh - 1:hh, :ww]
            if ww < w:
                out[:, ww:] = out[:, ww - 1:ww]
            a = out
        return a

    def _rgb(self, raw: np.ndarray) -> np.ndarray:
        pix = self._window.apply(raw)
        if pix.shape[2] == 1:
            pix = np.repeat(pix, 3, axis=2)
        return np.ascontiguousarray(pix)

    def _read_level0(self, plane, x, y, w, h):
        return self._rgb(self._raw(0, x, y, w, h, plane))

    def _read(self, level, lx, ly, w, h, plane):
        if self._pyramid is not None:
            return self._pyramid.read(level, plane, lx, ly, w, h)
        return self._rgb(self._raw(level, lx, ly, w, h, plane))

    def close(self) -> None:
        with self._lock:
            if self._doc is not None:
                self._doc.close()
                self._doc = None
            if self._fh is not None:
                self._fh.close()
                self._fh = None


def _scaling_um(xml: str) -> dict[str, float]:
    """``{"X": µm, "Y": µm, "Z": µm}`` from ``Scaling/Items/Distance`` (metres in the file)."""
    import xml.etree.ElementTree as ET

    out: dict[str, float] = {}
    try:
        root = ET.fromstring(xml)
    except ET.ParseError:
        return out
    for d in root.iter("Distance"):
        axis = d.get("Id")
        v = d.findtext("Value")
        try:
            metres = float(v)
        except (TypeError, ValueError):
            continue
        if axis in ("X", "Y", "Z") and math.isfinite(metres) and metres > 0:
            out[axis] = metres * 1e6
    return out


def _short(exc: BaseException) -> str:
    text = re.sub(r"\s+", " ", str(exc)).strip() or type(exc).__name__
    return text[:200]
