"""A `FocusMap` as a float32 TIFF, and back.

The TIFF's pixels are the map's cells, not level-0 px (a whole slide at one value per level-0
px would be tens of GB): pixel (r, c) is cell (r, c), covering level-0 x in [c·stride,
(c+1)·stride) and y likewise, and holds the cell's target focus in µm (float32), NaN where
nothing was painted. The image is thus the slide's level-0 plane downsampled by ``stride``, and
its tags say so for other software: XResolution / YResolution in pixels per centimetre of one
cell (``stride`` × the slide's µm per level-0 px, when known), and an ImageDescription JSON
object with everything needed to reopen it exactly::

    {"format": "finefocus-focus-map-tiff-1", "width": W, "height": H,   # slide, level-0 px
     "stride": 32, "default_um": 0.0, "mpp": [0.25, 0.25] | null,         # px per cell; µm; µm/px
     "units": "µm", "unpainted": "NaN"}

Reading back gives the same cells bit for bit. A TIFF without that description (e.g. from
another tool) is taken when its size is the slide's cell grid at some stride (the smallest one
that fits). Refused, with one line naming the file and the reason: a file larger than the grid
needs (the grid's cells as float64 plus `TIFF_SLACK_BYTES`, checked once the header gave its size),
another slide's size, several samples per pixel, an integer or
complex type, ±inf, or depths beyond ±`MAX_ABS_FOCUS_UM`; the header is checked before a pixel is
decoded, so decoding never allocates more than the slide's grid.
"""
from __future__ import annotations

import io
import json
import logging
import math
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from ._files import atomic_write_bytes
from .focus_map import FocusMap, FocusMapError
from .geojson import MAX_ABS_FOCUS_UM

__all__ = ["write_tiff", "read_tiff", "TIFF_SLACK_BYTES"]

_FORMAT = "finefocus-focus-map-tiff-1"
#: Bytes a focus-map TIFF may hold beyond its raw float32 pixels (tags, description, padding).
TIFF_SLACK_BYTES = 1 * 2**20
_MAX_STRIDE = 4096


def write_tiff(fm: FocusMap, path: str | os.PathLike, *, mpp: Sequence[float] | None = None) -> Path:
    """Write the map's cells to ``path`` as a float32 TIFF (see the module docstring), atomically
    (a ``.part`` file renamed). ``mpp``: the slide's µm per level-0 px (x, y), for the
    resolution tags."""
    import tifffile

    desc = {"format": _FORMAT, "width": fm.width, "height": fm.height, "stride": fm.stride,
            "default_um": float(fm.default_um), "mpp": [float(m) for m in mpp] if mpp else None,
            "units": "µm", "unpainted": "NaN"}
    kwargs = {}
    if mpp:
        # pixels per centimetre: one pixel is one cell of stride × mpp µm
        kwargs = {"resolution": (1e4 / (fm.stride * float(mpp[0])), 1e4 / (fm.stride * float(mpp[1]))),
                  "resolutionunit": "CENTIMETER"}
    buf = io.BytesIO()
    tifffile.imwrite(buf, np.ascontiguousarray(fm.values, np.float32), photometric="minisblack",
                     description=json.dumps(desc, ensure_ascii=True), metadata=None,
                     software="FineFocus", **kwargs)
    return atomic_write_bytes(path, buf.getvalue())


def _grid(size: tuple[int, int], stride: int) -> tuple[int, int]:
    return -(-size[1] // stride), -(-size[0] // stride)


def read_tiff(path: str | os.PathLike, size: Sequence[int], *, stride: int | None = None,
              default_um: float | None = None) -> FocusMap:
    """A `FocusMap` for a ``size`` = (width, height) level-0 px slide from a TIFF (see the module
    docstring). ``stride`` / ``default_um`` default to the file's description, else the stride
    whose grid the image fits and 0 µm. Raises `FocusMapError` naming the file and the reason."""
    import tifffile

    path = Path(path)
    W, H = int(size[0]), int(size[1])
    try:
        nbytes = path.stat().st_size
        if path.is_dir():
            raise FocusMapError(f"{path}: is a folder, not a focus-map TIFF")
    except FileNotFoundError:
        raise FocusMapError(f"{path}: no such file") from None
    except PermissionError:
        raise FocusMapError(f"{path}: permission denied") from None
    rows, cols = _grid((W, H), stride or 1)              # the finest grid this slide can have
    if nbytes > rows * cols * 8 + TIFF_SLACK_BYTES:
        raise FocusMapError(f"{path}: {nbytes / 2**20:.1f} MiB is too large for a focus map of this {W} × {H} px slide")
    log = logging.getLogger("tifffile")
    level = log.level
    log.setLevel(logging.CRITICAL)           # its warnings about odd files become our one line
    try:
        with tifffile.TiffFile(path) as tf:
            try:
                page = tf.pages.first
            except (IndexError, ValueError):
                raise FocusMapError(f"{path}: a TIFF without images") from None
            if not isinstance(page, tifffile.TiffPage):
                page = page.aspage()
            desc = _description(page, path)
            shape = tuple(page.shape)
            if len(shape) != 2 or page.samplesperpixel != 1:
                raise FocusMapError(f"{path}: a focus-map TIFF has one sample per pixel, this one is {shape}")
            if page.dtype is None or page.dtype.kind != "f":
                raise FocusMapError(f"{path}: a focus-map TIFF holds floating-point µm, this one {page.dtype}")
            if desc is not None:
                if (desc["width"], desc["height"]) != (W, H):
                    raise FocusMapError(f"{path}: made for a {desc['width']} × {desc['height']} px slide, "
                                        f"this one is {W} × {H} px")
                if stride is None:
                    stride = desc["stride"]
                if default_um is None:
                    default_um = desc["default_um"]
            if stride is None:
                stride = _fit_stride(shape, (W, H))
                if stride is None:
                    raise FocusMapError(f"{path}: its {shape[1]} × {shape[0]} px do not match the cell grid of "
                                        f"this {W} × {H} px slide at any stride")
            if shape != _grid((W, H), stride):
                rows, cols = _grid((W, H), stride)
                raise FocusMapError(f"{path}: {shape[1]} × {shape[0]} cells do not fit this {W} × {H} px slide "
                                    f"at {stride} px per cell ({cols} × {rows})")
            limit = shape[0] * shape[1] * 8 + TIFF_SLACK_BYTES   # the grid as float64, plus tags
            if nbytes > limit:
                raise FocusMapError(f"{path}: {nbytes / 2**20:.1f} MiB is more than a {shape[1]} × {shape[0]} "
                                    f"cell focus map needs (limit {limit / 2**20:.1f} MiB)")
            values = page.asarray()
    except FocusMapError:
        raise
    except Exception as exc:      # tifffile, zlib, numpy… on a damaged file: one line
        raise FocusMapError(f"{path}: not a readable TIFF ({type(exc).__name__}: "
                            f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
    finally:
        log.setLevel(level)
    values = np.asarray(values, np.float64)
    finite = np.isfinite(values)
    if np.isinf(values).any():
        r, c = np.argwhere(np.isinf(values))[0]
        raise FocusMapError(f"{path}: cell ({r}, {c}) holds {values[r, c]:g} (NaN marks an unpainted cell; inf is no depth)")
    if finite.any() and np.abs(values[finite]).max() > MAX_ABS_FOCUS_UM:
        raise FocusMapError(f"{path}: depths beyond ±{MAX_ABS_FOCUS_UM:g} µm")
    try:
        return FocusMap(W, H, 0.0 if default_um is None else float(default_um), int(stride),
                        values.astype(np.float32))
    except ValueError as exc:
        raise FocusMapError(f"{path}: {exc}") from None


def _fit_stride(shape: tuple[int, ...], size: tuple[int, int]) -> int | None:
    W, H = size
    rows, cols = shape
    if rows < 1 or cols < 1:
        return None
    lo = max(1, math.ceil(W / cols), math.ceil(H / rows))
    for s in range(lo, min(_MAX_STRIDE, max(W, H)) + 1):
        if _grid(size, s) == (rows, cols):
            return s
        if -(-W // s) < cols and -(-H // s) < rows:
            break
    return None


def _description(page, path: Path) -> dict | None:
    """The FineFocus description of a TIFF page, validated, or None if the page has none."""
    text = page.description
    if not text or '"finefocus-focus-map-tiff-1"' not in text:
        return None
    try:
        d = json.loads(text)
    except ValueError:
        raise FocusMapError(f"{path}: its FineFocus description is not valid JSON") from None
    if not isinstance(d, dict) or d.get("format") != _FORMAT:
        raise FocusMapError(f"{path}: its FineFocus description is not an object of format {_FORMAT}")
    for key in ("width", "height", "stride"):
        v = d.get(key)
        if isinstance(v, bool) or not isinstance(v, int) or v < 1 or (key == "stride" and v > _MAX_STRIDE):
            raise FocusMapError(f"{path}: description {key} must be a positive integer (px), got {v!r}")
    dv = d.get("default_um", 0.0)
    if isinstance(dv, bool) or not isinstance(dv, (int, float)) or not math.isfinite(dv) or abs(dv) > MAX_ABS_FOCUS_UM:
        raise FocusMapError(f"{path}: description default_um must be a finite number of µm, got {dv!r}")
    d["default_um"] = float(dv)
    return d
