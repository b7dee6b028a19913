"""`write_ome_tiff`: write any `Slide` — every focal plane, its pyramid — as a tiled OME-TIFF.

Layout of the output (what `engine.slides.ome_tiff.OmeTiffSlide`, QuPath and Bio-Formats read):

* one OME Image, axes ZYXS (interleaved RGB, uint8), one top-level IFD per focal plane in
  ascending z;
* the coarser levels as SubIFDs of each plane's IFD (``SubFileType = 1``), one per written level;
* tiles of ``tile``×``tile`` px, compressed with ``zlib`` (lossless, default), ``jpeg``
  (lossy, quality 90) or ``none``;
* OME-XML: PhysicalSizeX/Y (µm per level-0 px) when the slide knows its mpp, PhysicalSizeZ
  (mean plane spacing, µm) for several planes, and one Plane element per z with PositionZ (µm);
* resolution tags in px/cm for tools that ignore OME-XML.

The slide is read tile by tile through ``read_region`` and fed to tifffile as an iterator, so
no level is ever held whole in memory. BigTIFF is used when the raw pixels exceed 2 GB.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from ..slides.base import Level, Slide

COMPRESSIONS = {"zlib": ("zlib", None), "deflate": ("zlib", None),
                "jpeg": ("jpeg", {"level": 90}), "none": (None, None)}

#: progress(done_tiles, total_tiles)
Progress = Callable[[int, int], None]


def level0_coordinate(lx: int, downsample: float) -> int:
    """The smallest level-0 coordinate ``x`` with ``floor(x / downsample) == lx``, i.e. where
    ``Slide.read_region`` starts reading level px ``lx``."""
    x = int(math.ceil(lx * downsample - 1e-9))
    while math.floor(x / downsample) < lx:
        x += 1
    while x > 0 and math.floor((x - 1) / downsample) >= lx:
        x -= 1
    return x


def _tiles(slide: Slide, level: int, tile: int, counter: list, total: int,
           progress: Progress | None) -> Iterator[np.ndarray]:
    """Tiles of every plane of ``level``, plane by plane, row-major (edge tiles cropped)."""
    lv = slide.levels[level]
    for plane in range(slide.plane_count):
        for ty in range(0, lv.height, tile):
            for tx in range(0, lv.width, tile):
                w, h = min(tile, lv.width - tx), min(tile, lv.height - ty)
                x0 = level0_coordinate(tx, lv.downsample)
                y0 = level0_coordinate(ty, lv.downsample)
                pixels = slide.read_region(level, x0, y0, w, h, plane)
                counter[0] += 1  # counted on reading: tifffile stops pulling after the last tile
                if progress is not None:
                    progress(counter[0], total)
                yield pixels


def write_ome_tiff(path: str | Path, slide: Slide, *, tile: int = 512,
                   levels: Sequence[int] | None = None, compression: str = "zlib",
                   progress: Progress | None = None) -> Path:
    """Write ``slide`` to ``path`` as a pyramidal OME-TIFF; returns the path.

    Parameters
    ----------
    tile : tile edge in px (a multiple of 16).
    levels : indices of the slide's levels to write, finest first; must start with 0.
        Default: all of them.
    compression : ``"zlib"`` (lossless), ``"jpeg"`` (lossy) or ``"none"``.
    progress : called as ``progress(done_tiles, total_tiles)`` after every tile.
    """
    levels = list(range(slide.level_count)) if levels is None else [int(i) for i in levels]
    if not levels or levels[0] != 0 or sorted(set(levels)) != levels:
        raise ValueError(f"levels must start with 0 and increase, got {levels}")
    if levels[-1] >= slide.level_count:
        raise ValueError(f"slide has {slide.level_count} levels, asked for level {levels[-1]}")
    check_tiling(tile, compression)
    n = slide.plane_count
    total = sum(n * math.ceil(slide.levels[i].width / tile) * math.ceil(slide.levels[i].height / tile)
                for i in levels)
    counter = [0]
    return write_tiled_ome_tiff(
        path, [slide.levels[i] for i in levels],
        lambda k: _tiles(slide, levels[k], tile, counter, total, progress),
        planes_um=slide.planes_um, mpp=slide.mpp,
        name=Path(slide.path).name if slide.path else slide.format, tile=tile, compression=compression)


def check_tiling(tile: int, compression: str) -> None:
    """ValueError unless ``tile`` is a positive multiple of 16 and ``compression`` is known."""
    if tile <= 0 or tile % 16:
        raise ValueError(f"tile must be a positive multiple of 16, got {tile}")
    if compression not in COMPRESSIONS:
        raise ValueError(f"compression must be one of {sorted(COMPRESSIONS)}, got {compression!r}")


def write_tiled_ome_tiff(path: str | Path, levels: Sequence[Level],
                         tiles: Callable[[int], Iterator[np.ndarray]], *, planes_um: Sequence[float],
                         mpp: tuple[float, float] | None, name: str, tile: int = 512,
                         compression: str = "zlib", dtype=np.uint8, samples: int = 3) -> Path:
    """The OME-TIFF layout of `write_ome_tiff` (module docstring) for any tile source: ``levels``
    (finest first, ``downsample`` from level 0), ``tiles(k)`` yielding level ``k``'s tiles of
    every plane, plane by plane, row-major, edge tiles cropped, each (h, w, samples) — or (h, w)
    when ``samples`` is 1 — of ``dtype``. uint8 RGB (``samples`` 3) or one channel of any dtype
    (e.g. float32). Written to ``path`` + ".part" and renamed onto ``path`` when complete."""
    import tifffile

    path = Path(path)
    check_tiling(tile, compression)
    if samples not in (1, 3):
        raise ValueError(f"samples must be 1 or 3, got {samples}")
    dtype = np.dtype(dtype)
    codec, codec_args = COMPRESSIONS[compression]
    if codec == "jpeg" and dtype != np.uint8:
        raise ValueError(f"jpeg compression needs uint8 samples, got {dtype}")
    planes = [float(z) for z in planes_um]
    n = len(planes)
    raw_bytes = sum(lv.width * lv.height * samples * dtype.itemsize * n for lv in levels)
    metadata: dict = {"axes": "ZYXS" if samples == 3 else "ZYX", "Name": name}
    if mpp:
        metadata.update(PhysicalSizeX=float(mpp[0]), PhysicalSizeXUnit="µm",
                        PhysicalSizeY=float(mpp[1]), PhysicalSizeYUnit="µm")
    if n > 1:
        spacing = float(np.mean(np.diff(planes)))
        if spacing > 0:
            metadata.update(PhysicalSizeZ=spacing, PhysicalSizeZUnit="µm")
    metadata["Plane"] = {"PositionZ": planes, "PositionZUnit": ["µm"] * n}
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written beside the target and renamed onto it when complete: an interrupted or failed
    # export never leaves a truncated file under the final name (nor destroys one already there).
    part = path.with_name(path.name + ".part")
    try:
        with tifffile.TiffWriter(part, bigtiff=raw_bytes > (2 << 30) - (64 << 20), ome=True) as tif:
            for k, lv in enumerate(levels):
                shape = (n, lv.height, lv.width) + ((3,) if samples == 3 else ())
                options = dict(
                    shape=shape, dtype=dtype, tile=(tile, tile),
                    photometric="rgb" if samples == 3 else "minisblack",
                    compression=codec, compressionargs=codec_args,
                )
                if mpp:
                    options.update(resolution=(1e4 / (mpp[0] * lv.downsample),
                                               1e4 / (mpp[1] * lv.downsample)),
                                   resolutionunit="CENTIMETER")
                if k == 0:
                    tif.write(tiles(k), subifds=len(levels) - 1, metadata=metadata, **options)
                else:
                    tif.write(tiles(k), subfiletype=1, metadata=None, **options)
        os.replace(part, path)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return path
