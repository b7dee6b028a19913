"""`write_ome_zarr`: write any `Slide` — every focal plane, its pyramid — as an OME-Zarr folder.

Layout of the output (what `engine.slides.ome_zarr.OmeZarrSlide`, ome-zarr-py, napari and
other NGFF readers read):

* OME-NGFF ``0.4`` (Zarr v2, the default: the most widely read) or ``0.5`` (Zarr v3);
* one multiscale image, axes ``c, z, y, x`` (c = R, G, B; uint8), one array per written level
  named ``0``, ``1``... with shape (3, planes, height, width);
* chunks of (3, 1, ``tile``, ``tile``): one chunk holds one RGB tile of one plane; every chunk
  is written, even an all-zero one, so a missing chunk always means damage;
* ``coordinateTransformations``: scale (1, dz, mpp·downsample, mpp·downsample) in micrometer and
  translation (0, z of the first plane, 0, 0), with dz the mean plane spacing (µm). The exact
  plane list is also stored as ``attributes["finefocus"]["planes_um"]`` (NGFF cannot express
  uneven spacing). A slide without µm per px is written with scale 1 and
  ``attributes["finefocus"]["mpp_known"] = false``.

The slide is read tile by tile through ``read_region``; no level is ever held whole. The folder
is written beside the target (``NAME.part``) and renamed onto it when complete.
"""
from __future__ import annotations

import math
import os
import shutil
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..slides.base import Slide
from ..slides.ome_zarr import looks_like_zarr
from .ome_tiff import level0_coordinate

#: progress(done_tiles, total_tiles)
Progress = Callable[[int, int], None]


def write_ome_zarr(path: str | Path, slide: Slide, *, tile: int = 512,
                   levels: Sequence[int] | None = None, version: str = "0.4",
                   progress: Progress | None = None) -> Path:
    """Write ``slide`` to the folder ``path`` as OME-Zarr; returns the path.

    Parameters
    ----------
    tile : chunk edge in px.
    levels : indices of the slide's levels to write, finest first; must start with 0.
    version : ``"0.4"`` (Zarr v2) or ``"0.5"`` (Zarr v3).
    progress : called as ``progress(done_tiles, total_tiles)`` after every tile.
    """
    import zarr

    path = Path(path)
    if tile <= 0:
        raise ValueError(f"tile must be positive, got {tile}")
    if version not in ("0.4", "0.5"):
        raise ValueError(f"version must be '0.4' or '0.5', got {version!r}")
    levels = list(range(slide.level_count)) if levels is None else [int(i) for i in levels]
    if not levels or levels[0] != 0 or sorted(set(levels)) != levels:
        raise ValueError(f"levels must start with 0 and increase, got {levels}")
    if levels[-1] >= slide.level_count:
        raise ValueError(f"slide has {slide.level_count} levels, asked for level {levels[-1]}")
    planes = [float(z) for z in slide.planes_um]
    n = len(planes)
    dz = float(np.mean(np.diff(planes))) if n > 1 else 1.0
    dz = dz if dz > 0 else 1.0
    mpp = slide.mpp or (1.0, 1.0)
    zarr_format = 2 if version == "0.4" else 3
    total = sum(n * math.ceil(slide.levels[i].width / tile) * math.ceil(slide.levels[i].height / tile)
                for i in levels)

    if path.exists() and not (path.is_dir() and looks_like_zarr(path)):
        raise FileExistsError(f"{path}: exists and is not an earlier Zarr folder; not replaced")
    part = path.with_name(path.name + ".part")
    if part.exists():
        shutil.rmtree(part)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        root = zarr.open_group(str(part), mode="w", zarr_format=zarr_format)
        datasets = []
        done = 0
        for k, level in enumerate(levels):
            lv = slide.levels[level]
            arr = root.create_array(str(k), shape=(3, n, lv.height, lv.width), dtype="uint8",
                                    chunks=(3, 1, min(tile, lv.height), min(tile, lv.width)),
                                    fill_value=0, config={"write_empty_chunks": True},
                                    chunk_key_encoding=({"name": "v2", "separator": "/"} if zarr_format == 2
                                                        else {"name": "default", "separator": "/"}))
            for p in range(n):
                for ty in range(0, lv.height, tile):
                    for tx in range(0, lv.width, tile):
                        w, h = min(tile, lv.width - tx), min(tile, lv.height - ty)
                        pixels = slide.read_region(level, level0_coordinate(tx, lv.downsample),
                                                   level0_coordinate(ty, lv.downsample), w, h, p)
                        arr[:, p, ty:ty + h, tx:tx + w] = pixels.transpose(2, 0, 1)
                        done += 1
                        if progress is not None:
                            progress(done, total)
            ds = lv.downsample
            datasets.append({"path": str(k), "coordinateTransformations": [
                {"type": "scale", "scale": [1.0, dz, mpp[1] * ds, mpp[0] * ds]},
                {"type": "translation", "translation": [0.0, planes[0], 0.0, 0.0]}]})
        unit = {"unit": "micrometer"}
        multiscale = {
            "name": Path(slide.path).name if slide.path else slide.format,
            "axes": [{"name": "c", "type": "channel"}, {"name": "z", "type": "space", **unit},
                     {"name": "y", "type": "space", **({} if slide.mpp is None else unit)},
                     {"name": "x", "type": "space", **({} if slide.mpp is None else unit)}],
            "datasets": datasets,
        }
        omero = {"channels": [{"label": name, "color": color, "active": True,
                               "window": {"start": 0, "end": 255, "min": 0, "max": 255}}
                              for name, color in (("R", "FF0000"), ("G", "00FF00"), ("B", "0000FF"))],
                 "rdefs": {"model": "color"}}
        ff = {"planes_um": planes, "mpp_known": slide.mpp is not None}
        if version == "0.4":
            multiscale["version"] = "0.4"
            root.attrs.update({"multiscales": [multiscale], "omero": omero, "finefocus": ff})
        else:
            root.attrs.update({"ome": {"version": "0.5", "multiscales": [multiscale],
                                       "omero": omero}, "finefocus": ff})
        if path.is_dir():  # only an earlier Zarr folder is replaced (checked before writing)
            shutil.rmtree(path)
        os.replace(part, path)
    except BaseException:
        shutil.rmtree(part, ignore_errors=True)
        raise
    return path
