"""`NdpiSlide`: Hamamatsu NDPI files with several focal planes, read with tifffile.

OpenSlide opens a multi-plane NDPI but silently shows only one focal plane; `open_slide`
routes such files here instead (see `ndpi_plane_offsets_nm`).

Layout of an NDPI file as used here (private tags from tifffile's ``TIFF.NDPI_TAGS``):

* every IFD is one image; tag 65420 (FileFormat) marks the file as NDPI;
* tag 65421 (Magnification / source lens) is −1 for the macro image and −2 for the map;
* tag 65424 (ZOffsetFromSlideCenter) is the focal plane's z offset in **nm**;
* each focal plane has its own pyramid: one IFD per resolution, all with the same z;
* resolution tags are in centimetres; JPEG strips, with McuStarts (65426) that tifffile turns
  into virtual tiles, so reads decode only the restart intervals they touch.

Big NDPI files (> 4 GB) use 64-bit IFD offsets: the layout is chosen from the content (file
size, then whether the IFDs parse), never from the file name.
"""
from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path

from .base import CorruptSlideError, Level, Slide, SlideError, UnsupportedSlideError
from .image import tiff_mpp
from .tiff_region import TiffRegionReader, open_tiff, samples_to_rgb

TAG_FILE_FORMAT = 65420
TAG_SOURCE_LENS = 65421
TAG_Z_OFFSET_NM = 65424


def is_ndpi_page(page) -> bool:
    return TAG_FILE_FORMAT in page.tags


def _pyramid_pages(tif):
    """(z offset nm, page) of every image IFD (macro and map excluded)."""
    for page in tif.pages:
        lens = page.tags.valueof(TAG_SOURCE_LENS)
        if lens is not None and float(lens) < 0:
            continue
        z = page.tags.valueof(TAG_Z_OFFSET_NM)
        yield (int(z) if z is not None else 0), page


def ndpi_plane_offsets_nm(tif) -> list[int]:
    """Distinct focal-plane z offsets (nm, ascending) of an open NDPI TiffFile; [] if the file
    is not NDPI. More than one value means OpenSlide would show only one of them."""
    if not len(tif.pages) or not is_ndpi_page(tif.pages[0]):
        return []
    return sorted({z for z, _ in _pyramid_pages(tif)})


def open_ndpi_tiff(path: str | Path):
    """Open an NDPI with tifffile in the layout its content has: classic 32-bit offsets for
    files under 4 GB (real NDPIs keep the high bytes zero there), else 64-bit offsets."""
    big = os.path.getsize(path) > 0xFFFFFFFF
    first, second = (True, False) if big else (False, True)
    try:
        tif = open_tiff(path, is_ndpi=first)
        if len(tif.pages) and is_ndpi_page(tif.pages[0]):
            return tif
        tif.close()
    except SlideError:
        pass
    return open_tiff(path, is_ndpi=second)


class NdpiSlide(Slide):
    """All focal planes of an NDPI file; planes_um = ZOffsetFromSlideCenter / 1000."""

    format = "ndpi"

    def __init__(self, path: str | Path):
        self.path = str(path)
        self._reader = TiffRegionReader(self.path, tif=open_ndpi_tiff(self.path))
        try:
            self._open()
        except BaseException:
            self._reader.close()
            raise

    def _open(self) -> None:
        tif = self._reader.tif
        if not len(tif.pages) or not is_ndpi_page(tif.pages[0]):
            raise UnsupportedSlideError(self.path, "not an NDPI file (no Hamamatsu tag 65420)")
        by_z: dict[int, list] = defaultdict(list)
        for z, page in _pyramid_pages(tif):
            by_z[z].append(page)
        if not by_z:
            raise CorruptSlideError(self.path, "NDPI file holds no image")
        zs = sorted(by_z)
        # Sizes present in every plane, largest first.
        sizes = None
        for z in zs:
            s = {(int(p.imagewidth), int(p.imagelength)) for p in by_z[z]}
            sizes = s if sizes is None else sizes & s
        if not sizes:
            raise CorruptSlideError(self.path, "the focal planes share no image size")
        sizes = sorted(sizes, key=lambda wh: -wh[0] * wh[1])
        self._pages = []  # [level][plane]
        for wh in sizes:
            row = []
            for z in zs:
                page = next(p for p in by_z[z] if (int(p.imagewidth), int(p.imagelength)) == wh)
                self._reader.check(page)
                row.append(page)
            self._pages.append(row)
        W = sizes[0][0]
        self.levels = tuple(Level(w, h, W / w) for w, h in sizes)
        self.planes_um = tuple(z / 1000.0 for z in zs)
        base = self._pages[0][0]
        self.mpp = tiff_mpp(base)
        self.tile_size = ((int(base.tilewidth), int(base.tilelength)) if base.is_tiled
                          else (512, 512))
        props = {"hamamatsu.z_offsets_nm": ",".join(str(z) for z in zs)}
        for key, value in (base.ndpi_tags or {}).items():
            if key not in ("McuStarts", "McuStartsHighBytes", "ZOffsetFromSlideCenter"):
                props[f"hamamatsu.{key}"] = str(value)[:500]
        self.properties = props
        self._associated = {}
        for page in tif.pages:
            lens = page.tags.valueof(TAG_SOURCE_LENS)
            if lens is not None and float(lens) in (-1.0, -2.0):
                self._associated["macro" if float(lens) == -1.0 else "map"] = page

    def _read(self, level, lx, ly, w, h, plane):
        page = self._pages[level][plane]
        return samples_to_rgb(self._reader.read(page, lx, ly, w, h), page)

    @property
    def associated_images(self):
        return self._reader.read_associated(self._associated)

    def close(self) -> None:
        self._reader.close()
