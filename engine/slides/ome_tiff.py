"""`OmeTiffSlide`: OME-TIFF with Z planes and SubIFD pyramids, read with tifffile.

* The main image is the largest OME Image; Images named like a label, macro or thumbnail
  become associated images.
* Focal planes: PositionZ of the OME-XML Plane elements (converted to µm); when absent,
  PhysicalSizeZ × (index − middle index) (see `ome_xml.plane_z_um`).
* µm per pixel: PhysicalSizeX / PhysicalSizeY, converted from their unit.
* Pyramid: tifffile's series levels (SubIFDs, or reduced-resolution pages); downsample =
  level-0 width / level width.
* Pixels: RGB(A) pages, greyscale pages, or three single-channel pages (C = 3) stacked as RGB.
  Reads decode only the tiles or strips that intersect the request (`TiffRegionReader`).
  16-bit and float samples go through one `DisplayRange` for the whole slide (0.5–99.5
  percentiles of a ≤ 2048 px window of the coarsest level of up to 8 planes), the same for
  every plane.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from . import display_range as dr
from .base import CorruptSlideError, Level, Slide, UnsupportedSlideError
from .ome_xml import parse_ome_xml, plane_z_um
from .tiff_region import TiffRegionReader, samples_to_rgb

ASSOCIATED_NAMES = ("label", "macro", "thumbnail", "overview")
#: Associated images larger than this (px) are not decoded.


def _as_page(p):
    return p.aspage() if getattr(p, "is_frame", False) else p


class OmeTiffSlide(Slide):
    format = "ome-tiff"

    def __init__(self, path: str | Path):
        self.path = str(path)
        self._reader = TiffRegionReader(self.path)
        try:
            self._open()
        except BaseException:
            self._reader.close()
            raise

    def _open(self) -> None:
        tif = self._reader.tif
        xml = tif.ome_metadata
        if not xml:
            raise UnsupportedSlideError(self.path, "TIFF has no OME-XML metadata")
        try:
            images = parse_ome_xml(xml)
        except ValueError as exc:
            raise CorruptSlideError(self.path, str(exc)) from exc
        series = list(tif.series)
        if not images or not series:
            raise CorruptSlideError(self.path, "OME-XML describes no image")
        pairs = list(zip(images, series))
        main_i = max(range(len(pairs)), key=lambda i: pairs[i][0].size_x * pairs[i][0].size_y)
        image, s = pairs[main_i]
        self._image = image
        zs, known = plane_z_um(image)
        order = sorted(range(len(zs)), key=lambda i: zs[i])
        self.planes_um = tuple(float(zs[i]) for i in order)
        self._pages: list[list[list]] = []  # [level][plane] -> pages (1, or 3 for C=3 grey)
        n_c = image.effective_size_c
        for lv in s.levels:
            lv_pages = list(lv.pages)
            per_plane = []
            for z in order:
                chans = [0] if n_c == 1 or int(lv.keyframe.samplesperpixel) > 1 else [0, 1, 2][:min(3, n_c)]
                try:
                    pages = [_as_page(lv_pages[image.ifd_index(z, c, 0)]) for c in chans]
                except IndexError as exc:
                    raise CorruptSlideError(self.path, f"OME-XML plane z={z} has no TIFF page") from exc
                for p in pages:
                    self._reader.check(p)
                per_plane.append(pages)
            self._pages.append(per_plane)
        base = self._pages[0][0][0]
        W, H = int(base.imagewidth), int(base.imagelength)
        levels = []
        for per_plane in self._pages:
            p = per_plane[0][0]
            levels.append(Level(int(p.imagewidth), int(p.imagelength), W / int(p.imagewidth)))
        self.levels = tuple(levels)
        if image.physical_size_x_um and image.physical_size_y_um:
            self.mpp = (float(image.physical_size_x_um), float(image.physical_size_y_um))
        else:
            self.mpp = None
        self.tile_size = (int(base.tilewidth), int(base.tilelength)) if base.is_tiled else (512, 512)
        self.properties = {
            "ome.image_name": image.name,
            "ome.size": f"X={image.size_x} Y={image.size_y} Z={image.size_z} C={image.size_c} T={image.size_t}",
            "ome.dimension_order": image.dimension_order,
            "ome.physical_size_z_um": str(image.physical_size_z_um),
            "ome.z_known": str(known).lower(),
        }
        if dr.needs_window(base.dtype):
            self._window = self._window_from_data()
            self.display_range = (self._window.low, self._window.high)
            self.properties.update(self._window.properties())
        else:
            self._window = dr.IDENTITY
        self._associated_pages = {}
        for i, (img, ser) in enumerate(pairs):
            name = img.name.lower()
            if i != main_i and any(k in name for k in ASSOCIATED_NAMES):
                key = next(k for k in ASSOCIATED_NAMES if k in name)
                self._associated_pages[key] = _as_page(ser.keyframe)

    def _window_from_data(self) -> dr.DisplayRange:
        level = len(self._pages) - 1
        lv = self.levels[level]
        w, h = min(lv.width, 2048), min(lv.height, 2048)
        x, y = (lv.width - w) // 2, (lv.height - h) // 2
        picks = dr.evenly_spaced(len(self.planes_um))
        views = [self._reader.read_samples(pg, x, y, w, h)[:, :, :3]
                 for p in picks for pg in self._pages[level][p]]
        return dr.from_samples(views, f"level {level} of {len(picks)} planes")

    # ------------------------------------------------------------------ pixels
    def _read(self, level, lx, ly, w, h, plane):
        pages = self._pages[level][plane]
        if self._window is not dr.IDENTITY:
            chans = [self._window.apply(self._reader.read_samples(p, lx, ly, w, h)) for p in pages]
            if len(chans) == 1:
                return samples_to_rgb(chans[0], pages[0])
            chans = [c[:, :, 0] for c in chans]
            while len(chans) < 3:
                chans.append(chans[-1])
            return np.stack(chans, axis=2)
        if len(pages) == 1:
            return samples_to_rgb(self._reader.read(pages[0], lx, ly, w, h), pages[0])
        chans = [self._reader.read(p, lx, ly, w, h)[:, :, 0] for p in pages]
        while len(chans) < 3:
            chans.append(chans[-1])
        return np.stack(chans, axis=2)

    @property
    def associated_images(self):
        return self._reader.read_associated(self._associated_pages)

    def close(self) -> None:
        self._reader.close()
