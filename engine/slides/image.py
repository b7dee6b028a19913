"""`ImageSlide`: a plain TIFF, PNG or JPEG (or any still image Pillow reads) as a one-plane Slide.

For images OpenSlide does not open, e.g. a non-pyramidal strip TIFF. TIFFs are read lazily with
`TiffRegionReader` (only the strips/tiles a request touches are decoded); if the TIFF carries
its own pyramid (SubIFDs or reduced pages that tifffile groups as levels) those levels are
used. Otherwise coarser levels are computed on demand and cached (`ComputedPyramid`).

PNG/JPEG cannot be read by region: they are decoded once, at the first read, after their
header size has been checked against `MAX_DECODED_PX`.

A TIFF whose metadata names a Z axis of several planes without saying where they are (tifffile's
own "shaped" description) is refused with one line rather than shown as plane 0 alone.

Samples that are not 8-bit (16-bit grey or RGB, float) are shown through one `DisplayRange` for
the slide (`display_range`): percentiles of a central region of at most 4096² px, read with a
stride of 8 (or the whole image when smaller), so the models read the pixels the viewer shows.

µm per pixel comes from the TIFF resolution tags (inch or cm units) when they give a plausible
microscope value (0.01–50 µm/px); screen resolutions such as 72 dpi are ignored.
"""
from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from . import display_range as dr
from .base import CorruptSlideError, Level, Slide, UnsupportedSlideError
from .computed_levels import ComputedPyramid, computed_levels
from .tiff_region import MAX_SIDE_PX, TiffRegionReader, samples_to_rgb

#: Pillow modes of grey images deeper than 8 bits (shown through a display window).
DEEP_GREY_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")

#: Largest still image (PNG, JPEG...) decoded in one go, px.
MAX_DECODED_PX = 1 << 27

TIFF_MAGICS = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


def tiff_mpp(page) -> tuple[float, float] | None:
    """µm per px from XResolution/YResolution and ResolutionUnit (2 = inch, 3 = cm)."""
    try:
        unit = int(page.tags["ResolutionUnit"].value) if "ResolutionUnit" in page.tags else 2
        xr = page.tags["XResolution"].value
        yr = page.tags["YResolution"].value
    except (KeyError, TypeError, ValueError):
        return None
    per_unit_um = {2: 25400.0, 3: 10000.0}.get(unit)
    if per_unit_um is None:
        return None
    try:
        xres = xr[0] / xr[1]
        yres = yr[0] / yr[1]
    except (TypeError, ZeroDivisionError, IndexError):
        return None
    if xres <= 0 or yres <= 0:
        return None
    mpp = (per_unit_um / xres, per_unit_um / yres)
    return mpp if all(0.01 <= m <= 50.0 for m in mpp) else None


class ImageSlide(Slide):
    """A still image as a single-plane slide. ``path`` is a TIFF, PNG, JPEG... file."""

    format = "image"

    def __init__(self, path: str | Path):
        self.path = str(path)
        with open(self.path, "rb") as fh:
            magic = fh.read(4)
        self._reader: TiffRegionReader | None = None
        self._pixels: np.ndarray | None = None
        self._lock = threading.Lock()
        if magic in TIFF_MAGICS:
            self._open_tiff()
        else:
            self._open_pillow()

    # ------------------------------------------------------------------ TIFF
    def _open_tiff(self) -> None:
        reader = TiffRegionReader(self.path)
        try:
            tif = reader.tif
            if not tif.series:
                raise UnsupportedSlideError(self.path, "TIFF holds no image")
            series = max(tif.series, key=lambda s: s.keyframe.imagewidth * s.keyframe.imagelength)
            if "Z" in series.axes and series.shape[series.axes.index("Z")] > 1:
                n = series.shape[series.axes.index("Z")]
                raise UnsupportedSlideError(
                    self.path, f"TIFF metadata says {n} Z planes (axes {series.axes}) but gives no "
                               "z positions; FineFocus reads z-stacks saved as OME-TIFF or ImageJ "
                               "hyperstacks, and will not show plane 0 alone")
            pages = [lv.keyframe for lv in series.levels]
            for page in pages:
                reader.check(page)
            base = pages[0]
            self._reader = reader
            self.format = "tiff"
            self.mpp = tiff_mpp(base)
            W, H = int(base.imagewidth), int(base.imagelength)
            self.properties = _tiff_properties(base)
            self._window = dr.IDENTITY
            if dr.needs_window(base.dtype) and int(base.photometric) != 3:  # (palette: indices)
                self._window = self._window_from_data(base, W, H)
                self.display_range = (self._window.low, self._window.high)
                self.properties.update(self._window.properties())
            tile = (int(base.tilewidth), int(base.tilelength)) if base.is_tiled else (512, 512)
            self.tile_size = tile
            if len(pages) > 1:
                self._pages = pages
                self.levels = tuple(Level(int(p.imagewidth), int(p.imagelength),
                                          W / int(p.imagewidth)) for p in pages)
                self._pyramid = None
            else:
                self._pages = [base]
                self.levels = computed_levels(W, H)
                self._pyramid = ComputedPyramid(self.levels, self._read_tiff_level0)
        except BaseException:
            reader.close()
            raise

    def _window_from_data(self, page, W: int, H: int) -> dr.DisplayRange:
        """The display window from a central region of at most 4096² px of ``page``."""
        w, h = min(W, 4096), min(H, 4096)
        x, y = (W - w) // 2, (H - h) // 2
        stride = 8 if max(w, h) > 1024 else 1
        view = self._reader.read_samples(page, x, y, w, h)[::stride, ::stride]
        return dr.from_samples(view, f"a {w}×{h} px central region")

    def _read_tiff_level0(self, plane, x, y, w, h):
        return np.ascontiguousarray(self._page_rgb(self._pages[0], x, y, w, h))

    def _page_rgb(self, page, x, y, w, h) -> np.ndarray:
        """RGB(A) uint8 of a page region (px of the page), through the display window."""
        if self._window is dr.IDENTITY:
            samples = self._reader.read(page, x, y, w, h)
        else:
            samples = self._window.apply(self._reader.read_samples(page, x, y, w, h))
        return samples_to_rgb(samples, page)

    # ------------------------------------------------------------------ Pillow
    def _open_pillow(self) -> None:
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(self.path) as im:
                W, H = im.size
                self.format = (im.format or "image").lower()
                deep = im.mode in DEEP_GREY_MODES
        except UnidentifiedImageError as exc:
            raise UnsupportedSlideError(self.path, "not an image format we can read") from exc
        except (OSError, ValueError, SyntaxError) as exc:
            raise CorruptSlideError(self.path, f"broken image header ({exc})") from exc
        if W <= 0 or H <= 0 or W > MAX_SIDE_PX or H > MAX_SIDE_PX or W * H > MAX_DECODED_PX:
            raise CorruptSlideError(
                self.path, f"image header claims {W}x{H} px, more than the "
                           f"{MAX_DECODED_PX} px a still image may have")
        self.mpp = None
        self.properties = {"image.format": self.format}
        self.levels = computed_levels(W, H)
        self._pyramid = ComputedPyramid(self.levels, self._read_pillow_level0)
        self.tile_size = (512, 512)
        self._window = dr.IDENTITY
        if deep:  # 16-bit / 32-bit grey: decoded now, for the window the viewer and models share
            samples = self._decoded_samples()
            self._window = dr.from_samples(samples[::4, ::4], "the whole image (every 4th px)")
            self.display_range = (self._window.low, self._window.high)
            self.properties.update(self._window.properties())
            grey = self._window.apply(samples)
            self._pixels = np.ascontiguousarray(np.repeat(grey[:, :, None], 3, axis=2))

    def _decoded_samples(self) -> np.ndarray:
        """The samples of a deep grey image as they are (uint16, int32 or float32)."""
        from PIL import Image

        try:
            with Image.open(self.path) as im:
                im.load()
                samples = np.asarray(im)
        except (OSError, ValueError, SyntaxError) as exc:
            raise CorruptSlideError(self.path, f"cannot decode image ({exc})") from exc
        if samples.shape[:2] != (self.levels[0].height, self.levels[0].width):
            raise CorruptSlideError(self.path, "decoded size differs from the header")
        return samples

    def _decoded(self) -> np.ndarray:
        with self._lock:
            if self._pixels is None:
                from PIL import Image

                try:
                    with Image.open(self.path) as im:
                        im.load()
                        if im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info:
                            rgba = np.asarray(im.convert("RGBA"), dtype=np.float32)
                            a = rgba[:, :, 3:4] / 255.0
                            rgb = (rgba[:, :, :3] * a + 255.0 * (1 - a) + 0.5).astype(np.uint8)
                        else:
                            rgb = np.asarray(im.convert("RGB"))
                except (OSError, ValueError, SyntaxError) as exc:
                    raise CorruptSlideError(self.path, f"cannot decode image ({exc})") from exc
                if rgb.shape[:2] != (self.levels[0].height, self.levels[0].width):
                    raise CorruptSlideError(self.path, "decoded size differs from the header")
                self._pixels = np.ascontiguousarray(rgb)
            return self._pixels

    def _read_pillow_level0(self, plane, x, y, w, h):
        return self._decoded()[y:y + h, x:x + w]

    # ------------------------------------------------------------------ Slide
    def _read(self, level, lx, ly, w, h, plane):
        if self._pyramid is not None:
            return self._pyramid.read(level, plane, lx, ly, w, h)
        return self._page_rgb(self._pages[level], lx, ly, w, h)

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
        self._pixels = None


def _tiff_properties(page) -> dict[str, str]:
    props = {}
    for name in ("ImageDescription", "Software", "Make", "Model", "DateTime"):
        tag = page.tags.get(name)
        if tag is not None:
            props[f"tiff.{name}"] = str(tag.value)[:2000]
    return props
