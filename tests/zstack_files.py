"""Writers of small z-stacks in the formats focal-stack owners bring, each by a real,
independent writer (tifffile ``imagej=True``, ome-zarr-py, pylibCZIrw) — never our own code.

Content is `slide_files.textured_plane` (a different stripe pattern per plane), so a swapped
or repeated plane is caught. Sizes are (width, height) px; z and mpp in µm.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from tests.slide_files import textured_plane


def grey16_plane(width: int, height: int, index: int, seed: int = 0) -> np.ndarray:
    """(height, width) uint16 spanning about 200..50000, different per plane."""
    rgb = textured_plane(width, height, index, seed).astype(np.uint32)
    return (200 + rgb[:, :, 1] * 190 + rgb[:, :, 0] % 7).astype(np.uint16)


# ---------------------------------------------------------------------------- ImageJ
def write_imagej_rgb(path, n_planes: int = 4, size=(300, 200), spacing: float | None = 0.5,
                     unit: str = "um", mpp: float | None = 0.25, compression=None):
    """An RGB ImageJ hyperstack (axes ZYXS). Returns ``(path, planes)`` with ``planes[i]`` the
    (H, W, 3) uint8 pixels of z index i."""
    import tifffile

    w, h = size
    planes = [textured_plane(w, h, i, seed=21) for i in range(n_planes)]
    meta = {"axes": "ZYXS"}
    if spacing is not None:
        meta["spacing"] = spacing
    if unit is not None:
        meta["unit"] = unit
    kw = {}
    if mpp is not None:
        kw["resolution"] = (1.0 / mpp, 1.0 / mpp)
    if compression:
        kw["compression"] = compression
    tifffile.imwrite(path, np.stack(planes), imagej=True, photometric="rgb", metadata=meta, **kw)
    return Path(path), planes


def write_imagej_grey16(path, n_planes: int = 5, size=(260, 180), spacing: float = 250.0,
                        unit: str = "nm", mpp_um: float = 0.2, channels: int = 1,
                        frames: int = 1, display_min_max: tuple | None = None):
    """A uint16 ImageJ hyperstack with axes (T)Z(C)YX, spacing in ``unit``, XResolution in px
    per ``unit``. Returns ``(path, data)``, ``data`` shaped (frames, planes, channels, H, W)."""
    import tifffile

    w, h = size
    data = np.stack([np.stack([np.stack([grey16_plane(w, h, z + 7 * c + 13 * t, seed=31)
                                         for c in range(channels)])
                               for z in range(n_planes)]) for t in range(frames)])
    per_unit = {"nm": 1e-3, "um": 1.0, "micron": 1.0, "mm": 1e3}[unit]
    res = per_unit / mpp_um  # px per unit
    meta = {"axes": "TZCYX", "spacing": spacing, "unit": unit}
    if display_min_max:
        meta["min"], meta["max"] = display_min_max
    tifffile.imwrite(path, data, imagej=True, metadata=meta, resolution=(res, res))
    return Path(path), data


# ---------------------------------------------------------------------------- OME-Zarr
def write_ome_zarr_rgb(folder, n_planes: int = 3, size=(384, 256), dz_um: float = 0.75,
                       mpp: float = 0.5, n_levels: int = 2, version: str = "0.4",
                       chunks=(1, 1, 128, 128)):
    """An RGB z-stack (axes c, z, y, x; uint8) written by ome-zarr-py with a 2× pyramid (each
    level by decimation, given explicitly). Returns ``(folder, expected[level][plane])``."""
    import zarr
    from ome_zarr.io import parse_url
    from ome_zarr.writer import write_multiscale

    w, h = size
    planes = [textured_plane(w, h, i, seed=41) for i in range(n_planes)]
    czyx = np.stack(planes).transpose(3, 0, 1, 2)  # (c, z, y, x)
    pyramid = [np.ascontiguousarray(czyx[:, :, ::2 ** k, ::2 ** k]) for k in range(n_levels)]
    expected = [[np.ascontiguousarray(lv[:, z].transpose(1, 2, 0)) for z in range(n_planes)]
                for lv in pyramid]
    transforms = [[{"type": "scale", "scale": [1.0, dz_um, mpp * 2 ** k, mpp * 2 ** k]}]
                  for k in range(n_levels)]
    axes = [{"name": "c", "type": "channel"},
            {"name": "z", "type": "space", "unit": "micrometer"},
            {"name": "y", "type": "space", "unit": "micrometer"},
            {"name": "x", "type": "space", "unit": "micrometer"}]
    fmt = _ngff_format(version)
    store = parse_url(str(folder), mode="w", fmt=fmt).store
    root = zarr.group(store=store, zarr_format=fmt.zarr_format)
    write_multiscale(pyramid, root, axes=axes, coordinate_transformations=transforms, fmt=fmt,
                     storage_options={"chunks": chunks})
    return Path(folder), expected


def write_ome_zarr_grey16(folder, n_planes: int = 4, size=(200, 150), dz_um: float = 2.0,
                          mpp: float = 0.3, version: str = "0.5"):
    """A uint16 single-channel z-stack (axes t, c, z, y, x), one level, by ome-zarr-py.
    Returns ``(folder, data)``, ``data`` shaped (planes, H, W)."""
    import zarr
    from ome_zarr.io import parse_url
    from ome_zarr.writer import write_multiscale

    w, h = size
    data = np.stack([grey16_plane(w, h, z, seed=51) for z in range(n_planes)])
    fmt = _ngff_format(version)
    store = parse_url(str(folder), mode="w", fmt=fmt).store
    root = zarr.group(store=store, zarr_format=fmt.zarr_format)
    write_multiscale([data[None, None]], root, axes="tczyx", fmt=fmt,
                     coordinate_transformations=[[{"type": "scale",
                                                   "scale": [1.0, 1.0, dz_um, mpp, mpp]}]],
                     storage_options={"chunks": (1, 1, 1, 64, 64)})
    return Path(folder), data


def _ngff_format(version: str):
    from ome_zarr.format import FormatV04, FormatV05

    return {"0.4": FormatV04, "0.5": FormatV05}[version]()


# ---------------------------------------------------------------------------- CZI
def write_czi_zstack(path, n_planes: int = 3, size=(400, 300), dz_um: float = 0.5,
                     mpp: float = 0.22, tile: int = 128, origin=(0, 0), grey16: bool = False):
    """A CZI z-stack written by pylibCZIrw: tiles of ``tile`` px per plane (BGR24, or Gray16),
    Scaling in metres as CZI stores it. Returns ``(path, planes)`` with ``planes[i]`` the RGB
    (H, W, 3) uint8 — or (H, W) uint16 with ``grey16`` — pixels of z index i."""
    from pylibCZIrw import czi as pyczi

    w, h = size
    if grey16:
        planes = [grey16_plane(w, h, i, seed=61) for i in range(n_planes)]
    else:
        planes = [textured_plane(w, h, i, seed=61) for i in range(n_planes)]
    with pyczi.create_czi(str(path), exist_ok=True) as czi:
        for z, p in enumerate(planes):
            for ty in range(0, h, tile):
                for tx in range(0, w, tile):
                    part = p[ty:ty + tile, tx:tx + tile]
                    part = part[:, :, ::-1] if part.ndim == 3 else part[:, :, None]  # CZI is BGR
                    czi.write(np.ascontiguousarray(part), location=(origin[0] + tx, origin[1] + ty),
                              plane={"Z": z, "C": 0, "T": 0})
        czi.write_metadata(document_name="zstack", scale_x=mpp * 1e-6, scale_y=mpp * 1e-6,
                           scale_z=dz_um * 1e-6)
    return Path(path), planes
