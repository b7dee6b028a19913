"""Read a rectangle of one TIFF page by decoding only the tiles or strips it touches.

The tifffile-based backends (OME-TIFF, NDPI z-stacks, plain TIFF images) share this reader.
It never calls ``page.asarray()`` on a whole plane: it finds the segments (tiles, or strips of
``RowsPerStrip`` rows) that intersect the request, reads their bytes under one lock (one file
handle per slide), decodes them outside the lock (imagecodecs releases the GIL, so several
threads decode at once) and pastes the intersections.

Sizes are checked before anything is read: a header that claims absurd dimensions, or a single
segment so large that decoding it would need gigabytes, is refused with a `CorruptSlideError`;
segment offsets that run past the end of the file mean the file is truncated.

Coordinates here are px of the page itself (no level-0 conversion).
"""
from __future__ import annotations

import os
import struct
import threading
from pathlib import Path

import numpy as np

from .base import CorruptSlideError, SlideError, UnsupportedSlideError

#: Largest accepted width or height of one TIFF page, px. The largest real WSIs are ~250k px.
MAX_SIDE_PX = 1 << 20
#: Largest decoded size of a single tile or strip, bytes (a strip must be decoded whole).
MAX_SEGMENT_BYTES = 512 << 20


#: Largest associated image (label, macro, thumbnail) decoded whole, in pixels.
MAX_ASSOCIATED_PX = 1 << 23


def open_tiff(path: str | Path, **flags):
    """Open ``path`` with tifffile, turning parse failures into `CorruptSlideError`.

    ``flags`` go to ``tifffile.TiffFile`` (e.g. ``is_ndpi=False``). Unless given, the NDPI
    64-bit-offset layout is never guessed from a ``.ndpi`` file name: the content decides."""
    import tifffile

    flags.setdefault("is_ndpi", False)
    try:
        return tifffile.TiffFile(str(path), **flags)
    except (tifffile.TiffFileError, ValueError, struct.error, EOFError, OSError, IndexError,
            KeyError) as exc:
        raise CorruptSlideError(path, f"broken TIFF structure ({_short(exc)})") from exc


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]


def page_geometry(page) -> tuple[int, int, int]:
    """(width, height, samples per pixel) of a TIFF page, from its header only."""
    return int(page.imagewidth), int(page.imagelength), int(page.samplesperpixel)


def check_page(page, path: str | Path, file_size: int | None = None) -> None:
    """Refuse a page whose header claims absurd sizes or whose data lies beyond the file end.

    Reads nothing but the header values; allocates nothing proportional to the claimed size.
    """
    w, h, s = page_geometry(page)
    if w <= 0 or h <= 0:
        raise CorruptSlideError(path, f"TIFF page {page.index} has an empty size {w}x{h} px")
    if w > MAX_SIDE_PX or h > MAX_SIDE_PX:
        raise CorruptSlideError(
            path, f"TIFF header claims {w}x{h} px, beyond the {MAX_SIDE_PX} px limit per side")
    if s <= 0 or s > 16:
        raise CorruptSlideError(path, f"TIFF header claims {s} samples per pixel")
    itemsize = max(1, int(page.bitspersample) // 8)
    if page.is_tiled:
        seg_bytes = int(page.tilewidth) * int(page.tilelength) * s * itemsize
    else:
        rows = min(int(page.rowsperstrip or h), h)
        seg_bytes = rows * w * s * itemsize
    if seg_bytes > MAX_SEGMENT_BYTES:
        raise UnsupportedSlideError(
            path, f"TIFF page {page.index} stores {seg_bytes >> 20} MB per strip/tile; "
                  f"decoding one would exceed the {MAX_SEGMENT_BYTES >> 20} MB limit")
    if file_size is not None and page.dataoffsets:
        offs = np.asarray(page.dataoffsets, dtype=np.int64)
        cnts = np.asarray(page.databytecounts, dtype=np.int64)
        end = int((offs + cnts).max())
        if end > file_size:
            raise CorruptSlideError(
                path, f"file is truncated: image data runs to byte {end}, "
                      f"but the file ends at byte {file_size}")


def to_uint8(arr: np.ndarray) -> np.ndarray:
    """Bring decoded samples to uint8: 16-bit keeps its high byte, floats are taken as 0..1,
    booleans become 0/255."""
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8) * 255
    if arr.dtype == np.uint16:
        return (arr >> 8).astype(np.uint8)
    if arr.dtype.kind == "f":
        return (np.clip(arr, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    if arr.dtype.kind in "ui":
        info = np.iinfo(arr.dtype)
        scale = 255.0 / float(info.max)
        return (np.clip(arr, 0, None) * scale + 0.5).astype(np.uint8)
    raise ValueError(f"unsupported sample type {arr.dtype}")


def samples_to_rgb(arr: np.ndarray, page) -> np.ndarray:
    """Turn a page's uint8 samples (h, w, S) into RGB or RGBA the way its Photometric says:
    MinIsWhite is inverted, Palette is looked up, grey+alpha becomes grey."""
    photometric = int(page.photometric)
    s = arr.shape[2]
    if photometric == 3 and page.colormap is not None:  # palette
        cmap = np.asarray(page.colormap)
        cmap = (cmap >> 8).astype(np.uint8) if cmap.max() > 255 else cmap.astype(np.uint8)
        return np.ascontiguousarray(cmap.T[arr[:, :, 0]])
    if s in (1, 2):
        grey = arr[:, :, 0]
        if photometric == 0:  # MinIsWhite
            grey = 255 - grey
        return np.repeat(grey[:, :, None], 3, axis=2)
    return arr[:, :, :4] if s >= 4 else arr


class TiffRegionReader:
    """One TIFF file handle with a lock; reads page regions segment by segment.

    Thread-safe: byte reads are serialised by a lock, decoding runs in the calling thread.
    """

    def __init__(self, path: str | Path, tif=None):
        self.path = str(path)
        self.tif = tif if tif is not None else open_tiff(path)
        self._fh = self.tif.filehandle
        self._lock = threading.Lock()
        self._closed = False
        try:
            self.file_size = os.path.getsize(self.path)
        except OSError:
            self.file_size = None

    # ---------------------------------------------------------------- checks
    def check(self, page) -> None:
        check_page(page, self.path, self.file_size)

    # ---------------------------------------------------------------- pixels
    def read(self, page, x: int, y: int, w: int, h: int) -> np.ndarray:
        """Pixels ``[y:y+h, x:x+w]`` of ``page`` as (h, w, samples) uint8 (px of the page).

        Missing segments (byte count 0) read as white; an undecodable segment raises
        `CorruptSlideError` naming the file."""
        return to_uint8(self.read_samples(page, x, y, w, h))

    def read_samples(self, page, x: int, y: int, w: int, h: int) -> np.ndarray:
        """As `read`, but the samples keep the page's own dtype (uint16, float32...), for
        backends that window them through a `display_range.DisplayRange`."""
        if self._closed:
            raise SlideError(self.path, "slide is closed")
        W, H, S = page_geometry(page)
        if x < 0 or y < 0 or x + w > W or y + h > H:
            raise ValueError(f"region {x},{y} {w}x{h} outside page {W}x{H}")
        if page.is_tiled:
            tw, th = int(page.tilewidth), int(page.tilelength)
        else:
            tw, th = W, min(int(page.rowsperstrip or H), H)
        nx, ny = -(-W // tw), -(-H // th)
        separate = S > 1 and int(page.planarconfig) == 2
        out = None
        decode = self._decoder(page)
        jpeg = int(page.compression) in (6, 7, 34892, 33007)
        kwargs = {"_fullsize": bool(page.is_tiled)}
        if jpeg:
            kwargs["jpegtables"] = page.jpegtables
            kwargs["jpegheader"] = page.jpegheader
        for ty in range(y // th, (y + h - 1) // th + 1):
            for tx in range(x // tw, (x + w - 1) // tw + 1):
                # Intersection of the segment with the request, in page px.
                sx0, sy0 = tx * tw, ty * th
                ix0, iy0 = max(x, sx0), max(y, sy0)
                ix1, iy1 = min(x + w, sx0 + tw, W), min(y + h, sy0 + th, H)
                for s in range(S if separate else 1):
                    index = s * nx * ny + ty * nx + tx
                    seg = self._decode_segment(page, decode, index, kwargs)
                    if out is None:
                        dtype = seg.dtype if seg is not None else np.uint8
                        out = np.empty((h, w, S), dtype)
                        out[...] = np.iinfo(dtype).max if dtype.kind in "ui" else 1.0
                    if seg is None:
                        continue
                    part = seg[iy0 - sy0:iy1 - sy0, ix0 - sx0:ix1 - sx0]
                    dst = out[iy0 - y:iy1 - y, ix0 - x:ix1 - x]
                    if separate:
                        dst[:, :, s] = part[:, :, 0]
                    else:
                        dst[...] = part
        return out

    def read_associated(self, pages: dict, max_px: int = MAX_ASSOCIATED_PX) -> dict[str, np.ndarray]:
        """Whole RGB images of named associated pages (label, macro, ...), skipping any larger
        than ``max_px`` pixels or whose data is damaged."""
        out = {}
        for name, page in pages.items():
            w, h = int(page.imagewidth), int(page.imagelength)
            if w * h <= max_px:
                try:
                    out[name] = samples_to_rgb(self.read(page, 0, 0, w, h), page)[:, :, :3]
                except SlideError:
                    continue
        return out

    def _decoder(self, page):
        # tifffile's page.decode is a cached_property that is not thread-safe on first access.
        with self._lock:
            return page.decode

    def _decode_segment(self, page, decode, index: int, kwargs: dict):
        try:
            offset = int(page.dataoffsets[index])
            count = int(page.databytecounts[index])
        except IndexError as exc:
            raise CorruptSlideError(self.path, f"TIFF page {page.index} lacks segment {index}") from exc
        if count == 0:
            return None
        with self._lock:
            if self._closed:
                raise SlideError(self.path, "slide is closed")
            self._fh.seek(offset)
            data = self._fh.read(count)
        if len(data) < count:
            raise CorruptSlideError(self.path, f"file is truncated inside segment {index} "
                                               f"of TIFF page {page.index}")
        try:
            seg, _indices, shape = decode(data, index, **kwargs)
        except Exception as exc:  # imagecodecs raises its own error types per codec
            raise CorruptSlideError(
                self.path, f"cannot decode segment {index} of TIFF page {page.index} "
                           f"({_short(exc)})") from exc
        if seg is None:
            return None
        seg = np.asarray(seg)
        # Normalised shape (depth, length, width, samples) -> (length, width, samples).
        seg = seg.reshape(seg.shape[-3:]) if seg.ndim == 4 else seg
        if seg.ndim == 2:
            seg = seg[:, :, None]
        return seg

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self.tif.close()
