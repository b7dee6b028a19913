"""Writers of small, real slide files for tests (other engineers' tests import these; keep names).

Every writer uses a real, independent writer (tifffile, pydicom, Pillow) — never our own export
code — and synthetic but textured content: smooth noise plus a different stripe pattern per
focal plane, so that a pixel round-trip or a swapped plane is caught.

Sizes are (width, height) in px; z values are µm.
"""
from __future__ import annotations

import json
import os
import shutil
import struct
from pathlib import Path
from typing import Sequence

import numpy as np

DEFAULT_PLANES_UM = (-1.0, 0.0, 1.0)

#: Entries of `make_bad_corpus` that are good slides (they must open): skip them when every
#: entry is expected to fail.
CORPUS_ENTRIES_THAT_OPEN = ("wrong_extension",)


# ---------------------------------------------------------------------------- content
def textured_plane(width: int, height: int, index: int, seed: int = 0) -> np.ndarray:
    """(height, width, 3) uint8: smooth colour noise shared by all planes plus stripes whose
    angle and period depend on the plane ``index``."""
    rng = np.random.default_rng(seed)
    coarse = rng.random((height // 32 + 2, width // 32 + 2, 3))
    ys = np.linspace(0, coarse.shape[0] - 1.001, height)
    xs = np.linspace(0, coarse.shape[1] - 1.001, width)
    y0, x0 = ys.astype(int), xs.astype(int)
    fy, fx = (ys - y0)[:, None, None], (xs - x0)[None, :, None]
    smooth = (coarse[y0][:, x0] * (1 - fy) * (1 - fx) + coarse[y0 + 1][:, x0] * fy * (1 - fx)
              + coarse[y0][:, x0 + 1] * (1 - fy) * fx + coarse[y0 + 1][:, x0 + 1] * fy * fx)
    yy, xx = np.mgrid[0:height, 0:width]
    angle = 0.4 + 0.7 * index
    period = 9.0 + 4.0 * index
    stripes = 0.5 + 0.5 * np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * 2 * np.pi / period)
    fine = np.random.default_rng(seed + 1000 + index).integers(0, 24, (height, width, 1))
    img = 40 + 150 * smooth * (0.6 + 0.4 * stripes[:, :, None]) + fine
    return np.clip(img, 0, 255).astype(np.uint8)


def decimate_pyramid(img: np.ndarray, n_levels: int) -> list[np.ndarray]:
    """Level k = every 2**k-th pixel of ``img`` (simple, exact, independent of our code)."""
    return [np.ascontiguousarray(img[::2 ** k, ::2 ** k]) for k in range(n_levels)]


def _n_levels(width: int, height: int, smallest: int = 256) -> int:
    n = 1
    while max(width, height) // 2 ** n >= smallest:
        n += 1
    return n


# ---------------------------------------------------------------------------- OME-TIFF
def write_ome_zstack(path, planes_um: Sequence[float] = DEFAULT_PLANES_UM,
                     size: tuple[int, int] = (1536, 1024), mpp: float = 0.25,
                     tile: int = 256, with_position_z: bool = True):
    """A tiled, pyramidal (SubIFDs), zlib-compressed OME-TIFF z-stack written by tifffile.

    Returns ``(path, expected)`` with ``expected[level][plane]`` the (H, W, 3) uint8 pixels of
    each pyramid level and plane, planes in the order of ``planes_um`` (write them ascending
    to match a slide's plane indices). With ``with_position_z=False`` only PhysicalSizeZ is
    written (needs equally spaced planes)."""
    import tifffile

    path = Path(path)
    width, height = size
    n_levels = _n_levels(width, height)
    planes = [textured_plane(width, height, i) for i in range(len(planes_um))]
    expected = [list(level) for level in zip(*(decimate_pyramid(p, n_levels) for p in planes))]
    dz = float(np.diff(planes_um).mean()) if len(planes_um) > 1 else 1.0
    metadata = {
        "axes": "ZYXS",
        "PhysicalSizeX": mpp, "PhysicalSizeXUnit": "µm",
        "PhysicalSizeY": mpp, "PhysicalSizeYUnit": "µm",
        "PhysicalSizeZ": abs(dz), "PhysicalSizeZUnit": "µm",
    }
    if with_position_z:
        metadata["Plane"] = {"PositionZ": [float(z) for z in planes_um],
                             "PositionZUnit": ["µm"] * len(planes_um)}
    options = dict(tile=(tile, tile), photometric="rgb", compression="zlib")
    with tifffile.TiffWriter(path, ome=True) as tif:
        tif.write(np.stack(expected[0]), subifds=n_levels - 1, metadata=metadata, **options)
        for level in expected[1:]:
            tif.write(np.stack(level), subfiletype=1, metadata=None, **options)
    return path, expected


# ---------------------------------------------------------------------------- plane set
def write_plane_set(folder, planes_um: Sequence[float] = DEFAULT_PLANES_UM,
                    size: tuple[int, int] = (640, 480), mpp: float | None = 0.5,
                    sidecar: bool = True, suffix: str = ".png"):
    """A focus bracket: one image per plane in ``folder``.

    With ``sidecar=True`` the files are ``plane_<i>.png`` and ``planes.json`` gives their z;
    otherwise the z is in the names (``bracket_z+1.25um.png``). Returns ``(folder, expected)``
    with ``expected[plane]`` the (H, W, 3) pixels in the order of ``planes_um``."""
    from PIL import Image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    width, height = size
    expected, entries = [], []
    for i, z in enumerate(planes_um):
        img = textured_plane(width, height, i, seed=7)
        name = f"plane_{i}{suffix}" if sidecar else f"bracket_z{z:+g}um{suffix}"
        Image.fromarray(img).save(folder / name)
        expected.append(img)
        entries.append({"file": name, "z_um": float(z)})
    if sidecar:
        doc = {"planes": entries}
        if mpp is not None:
            doc["mpp"] = mpp
        (folder / "planes.json").write_text(json.dumps(doc, indent=1))
    return folder, expected


# ---------------------------------------------------------------------------- Aperio-like SVS
def write_svs_like(path, size: tuple[int, int] = (1024, 768), mpp: float = 0.5, tile: int = 256):
    """A tiled JPEG TIFF whose ImageDescription follows Aperio's, so OpenSlide reads it as
    ``aperio`` (one level). Returns ``(path, pixels_written)`` (JPEG is lossy)."""
    import tifffile

    path = Path(path)
    width, height = size
    img = textured_plane(width, height, 0, seed=3)
    desc = (f"Aperio Image Library v10.0.50\r\n{width}x{height} [0,0 {width}x{height}] "
            f"({tile}x{tile}) JPEG/RGB Q=90|AppMag = 20|MPP = {mpp}")
    tifffile.imwrite(path, img, tile=(tile, tile), photometric="rgb", compression="jpeg",
                     description=desc, metadata=None)
    return path, img


# ---------------------------------------------------------------------------- bad input
def write_absurd_tiff(path, width: int = 3_000_000_000, height: int = 3_000_000_000) -> Path:
    """A hand-built classic TIFF whose header claims ``width``×``height`` RGB px but holds 12
    bytes of data: opening it must not try to allocate the claimed size."""
    path = Path(path)
    entries = [  # (tag, type, count, value); types: 3 SHORT, 4 LONG
        (256, 4, 1, width), (257, 4, 1, height), (258, 3, 3, None), (259, 3, 1, 1),
        (262, 3, 1, 2), (273, 4, 1, None), (277, 3, 1, 3), (278, 4, 1, height),
        (279, 4, 1, 12),
    ]
    n = len(entries)
    ifd_offset = 8
    bps_offset = ifd_offset + 2 + 12 * n + 4
    data_offset = bps_offset + 6
    out = bytearray(b"II*\x00" + struct.pack("<I", ifd_offset))
    out += struct.pack("<H", n)
    for tag, typ, count, value in entries:
        if tag == 258:
            out += struct.pack("<HHII", tag, typ, count, bps_offset)
        elif tag == 273:
            out += struct.pack("<HHII", tag, typ, count, data_offset)
        elif typ == 3:
            out += struct.pack("<HHIHH", tag, typ, count, value, 0)
        else:
            out += struct.pack("<HHII", tag, typ, count, value)
    out += struct.pack("<I", 0)
    out += struct.pack("<HHH", 8, 8, 8)
    out += bytes(range(12))
    path.write_bytes(bytes(out))
    return path


def corrupt_first_tile(path) -> Path:
    """Overwrite the first bytes of the first tile (its JPEG/zlib header) with zeros, in place."""
    import tifffile

    path = Path(path)
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        offset, count = page.dataoffsets[0], page.databytecounts[0]
    with open(path, "r+b") as fh:
        fh.seek(offset)
        fh.write(b"\x00" * min(64, count))
    return path


def make_bad_corpus(folder) -> dict[str, Path]:
    """The bad-input corpus of issue 3, written into ``folder``. Each entry must make
    ``open_slide`` (or the first read) raise a `SlideError` subclass naming the path.

    Keys: missing, zero_bytes, empty_directory, text_as_svs, truncated_svs, corrupt_tile,
    absurd_dimensions, path_under_file, symlink_loop, and unreadable (only when not running as
    root: root reads a chmod 000 file anyway). ``wrong_extension`` is a *good* slide with a
    misleading name (an SVS saved as .png): it must open."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    c: dict[str, Path] = {}
    c["missing"] = folder / "does-not-exist.svs"
    c["zero_bytes"] = folder / "empty.svs"
    c["zero_bytes"].write_bytes(b"")
    c["empty_directory"] = folder / "empty-folder"
    c["empty_directory"].mkdir(exist_ok=True)
    c["text_as_svs"] = folder / "notes.svs"
    c["text_as_svs"].write_text("These are meeting notes, not a slide.\n" * 20)
    good, _ = write_svs_like(folder / "good.svs")
    data = good.read_bytes()
    c["truncated_svs"] = folder / "truncated.svs"
    c["truncated_svs"].write_bytes(data[: int(len(data) * 0.6)])
    c["corrupt_tile"] = folder / "corrupt-tile.svs"
    shutil.copyfile(good, c["corrupt_tile"])
    corrupt_first_tile(c["corrupt_tile"])
    c["absurd_dimensions"] = write_absurd_tiff(folder / "absurd.tif")
    c["path_under_file"] = good / "inside.svs"
    c["symlink_loop"] = folder / "loop-a.svs"
    for a, b in (("loop-a.svs", "loop-b.svs"), ("loop-b.svs", "loop-a.svs")):
        link = folder / a
        if not link.is_symlink():
            link.symlink_to(folder / b)
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        c["unreadable"] = folder / "unreadable.svs"
        shutil.copyfile(good, c["unreadable"])
        c["unreadable"].chmod(0)
    c["wrong_extension"] = folder / "actually-svs.png"
    shutil.copyfile(good, c["wrong_extension"])
    return c


# ---------------------------------------------------------------------------- NDPI
def write_ndpi_zstack(path, planes_um: Sequence[float] = DEFAULT_PLANES_UM,
                      size: tuple[int, int] = (1024, 768), mpp: float = 0.46,
                      n_levels: int = 3, macro: bool = True):
    """An NDPI-style TIFF written with tifffile: one JPEG strip per IFD, a pyramid per focal
    plane, Hamamatsu private tags (65420 FileFormat, 65421 source lens, 65422/65423 x/y offset,
    65424 ZOffsetFromSlideCenter in nm) and Make = Hamamatsu, so tifffile reports ``is_ndpi``
    and OpenSlide opens it as ``hamamatsu`` (showing one plane only). Classic 32-bit layout,
    as real NDPI files under 4 GB can be read.

    Returns ``(path, expected)`` with ``expected[level][plane]`` the pixels *given to the JPEG
    encoder* (JPEG is lossy: compare with a tolerance), planes in the order of ``planes_um``."""
    import tifffile

    path = Path(path)
    width, height = size
    planes = [textured_plane(width, height, i, seed=11) for i in range(len(planes_um))]
    pyramids = [decimate_pyramid(p, n_levels) for p in planes]
    expected = [[pyr[k] for pyr in pyramids] for k in range(n_levels)]

    def tags(z_nm: int, lens: float):
        return [(271, "s", 0, "Hamamatsu", True), (272, "s", 0, "C13220", True),
                (65420, "I", 1, 1, True), (65421, "f", 1, lens, True),
                (65422, "i", 1, 0, True), (65423, "i", 1, 0, True),
                (65424, "i", 1, int(z_nm), True)]

    with tifffile.TiffWriter(path, bigtiff=False) as tif:
        for zi, z in enumerate(planes_um):
            for k in range(n_levels):
                img = pyramids[zi][k]
                res = 1e4 / (mpp * 2 ** k)
                tif.write(img, photometric="rgb", compression="jpeg", compressionargs={"level": 95},
                          rowsperstrip=img.shape[0], resolution=(res, res),
                          resolutionunit="CENTIMETER", metadata=None, software="NDP.scan 3.4",
                          extratags=tags(round(z * 1000), 20.0))
        if macro:
            m = textured_plane(320, 120, 9, seed=5)
            tif.write(m, photometric="rgb", compression="jpeg", rowsperstrip=m.shape[0],
                      metadata=None, extratags=tags(0, -1.0))
    return path, expected



# ---------------------------------------------------------------------------- DICOM WSI
def write_dicom_zstack(folder, planes_um: Sequence[float] = DEFAULT_PLANES_UM, **kwargs):
    """A DICOM WSI with several focal planes; see `tests.dicom_files.write_dicom_zstack`.
    Returns ``(folder, expected[level][plane])``."""
    from tests.dicom_files import write_dicom_zstack as write

    return write(folder, planes_um, **kwargs)
