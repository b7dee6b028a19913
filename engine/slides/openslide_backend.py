"""`OpenSlideSlide`: every format OpenSlide reads (Aperio SVS, Hamamatsu, Leica, MIRAX,
Philips, Sakura, Trestle, Ventana, Zeiss, generic tiled TIFF...).

* Levels and downsamples as OpenSlide reports them; µm per pixel from ``openslide.mpp-x/y``.
* Pixels: OpenSlide returns RGBA (alpha 0 where nothing was scanned); it is composited over
  white by the base class.
* One focal plane. A Hamamatsu NDPI with several focal planes is refused here
  (`UnsupportedSlideError`), because OpenSlide would silently show one of them: `open_slide`
  sends those files to `NdpiSlide`.
* Thread safety: the OpenSlide C library is thread-safe for reads; closing waits for no reader
  (the tile store closes slides only when nothing reads them).
"""
from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from .base import CorruptSlideError, Level, Slide, SlideError, UnsupportedSlideError


def _mpp(props) -> tuple[float, float] | None:
    try:
        x = float(props["openslide.mpp-x"])
        y = float(props["openslide.mpp-y"])
    except (KeyError, ValueError):
        return None
    return (x, y) if x > 0 and y > 0 else None


def _multiplane_ndpi(path: str) -> list[int]:
    """Focal-plane offsets (nm) when ``path`` is an NDPI with more than one plane, else []."""
    from .ndpi import ndpi_plane_offsets_nm, open_ndpi_tiff

    try:
        tif = open_ndpi_tiff(path)
    except SlideError:
        return []
    try:
        zs = ndpi_plane_offsets_nm(tif)
    finally:
        tif.close()
    return zs if len(zs) > 1 else []


class OpenSlideSlide(Slide):
    def __init__(self, path: str | Path):
        import openslide

        self.path = str(path)
        try:
            vendor = openslide.OpenSlide.detect_format(self.path)
        except openslide.OpenSlideError as exc:
            raise CorruptSlideError(self.path, f"OpenSlide cannot read it ({exc})") from exc
        if vendor is None:
            raise UnsupportedSlideError(self.path, "not a format OpenSlide reads")
        if vendor == "hamamatsu":
            zs = _multiplane_ndpi(self.path)
            if zs:
                raise UnsupportedSlideError(
                    self.path, f"NDPI with {len(zs)} focal planes: OpenSlide would show only one; "
                               "open it with the NDPI backend")
        try:
            self._osr = openslide.OpenSlide(self.path)
        except openslide.OpenSlideError as exc:
            raise CorruptSlideError(self.path, f"OpenSlide cannot open it ({exc})") from exc
        self._error = openslide.OpenSlideError
        self._lock = threading.Lock()
        self._closed = False
        osr = self._osr
        self.format = vendor
        self.levels = tuple(Level(int(w), int(h), float(ds))
                            for (w, h), ds in zip(osr.level_dimensions, osr.level_downsamples))
        self.properties = dict(osr.properties)
        self.mpp = _mpp(self.properties)
        tw = self.properties.get("openslide.level[0].tile-width")
        th = self.properties.get("openslide.level[0].tile-height")
        self.tile_size = (int(tw), int(th)) if tw and th and int(tw) <= 4096 else (512, 512)

    def _read(self, level, lx, ly, w, h, plane):
        if self._closed:
            raise SlideError(self.path, "slide is closed")
        ds = self.levels[level].downsample
        # OpenSlide wants the top-left in level-0 px and reads from level px x0 / ds, which is
        # fractional when ds is not an integer: take the nearest level-0 px (≤ 0.5 / ds off).
        x0, y0 = int(round(lx * ds)), int(round(ly * ds))
        try:
            img = self._osr.read_region((x0, y0), level, (w, h))
        except self._error as exc:
            raise CorruptSlideError(
                self.path, f"cannot read level {level} at {lx},{ly} ({exc})") from exc
        return np.asarray(img)

    @property
    def associated_images(self):
        out = {}
        try:
            items = list(self._osr.associated_images.items())
        except self._error:
            return out
        for name, img in items:
            rgba = np.asarray(img.convert("RGBA"), dtype=np.float32)
            a = rgba[:, :, 3:4] / 255.0
            out[name] = (rgba[:, :, :3] * a + 255.0 * (1 - a) + 0.5).astype(np.uint8)
        return out

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._osr.close()
