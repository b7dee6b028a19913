"""`open_slide(path)`: pick the backend from the content of a file or folder, not its name.

Order of decisions:

* ``None`` or ``"phantom:<spec>"`` → the built-in phantom (`engine.phantom.PhantomSlide`).
* The path must be reachable: missing, symlink loop, a file used as a folder, or no read
  permission → `SlideNotFoundError`.
* A folder → Zarr group metadata (``zarr.json``, ``.zattrs`` or ``.zgroup``) → `OmeZarrSlide`
  (OME-NGFF 0.4 / 0.5) — also when the path is that folder's own JSON metadata file, as a
  file dialog picks it; DICOM instances inside (``DICM`` at byte 128) → `DicomSlide`; a
  ``planes.json`` or images named ``name_z+1.25um.png`` → `PlaneSetSlide`; else
  `UnsupportedSlideError`.
* A file: empty → `CorruptSlideError`; ``DICM`` at byte 128 → `DicomSlide`; ``ZISRAWFILE`` at
  byte 0 (a Zeiss CZI segment header) → `CziSlide`; TIFF magic → the TIFF is parsed and every
  image header checked (absurd sizes, data past the end of the file) before choosing: NDPI with
  several focal planes → `NdpiSlide`; OME-XML → `OmeTiffSlide`; an ImageJ description
  (``ImageJ=``, hyperstacks from Fiji / Micro-Manager) → `ImageJSlide`; 16-bit or float
  samples (not a palette) → `ImageSlide`, which windows them (OpenSlide would show the high
  byte); a format OpenSlide
  detects → `OpenSlideSlide`; else `ImageSlide`. Other content: OpenSlide if it detects it
  (MIRAX, VMS...), else a still image Pillow identifies (`ImageSlide`), else
  `UnsupportedSlideError`.

A file whose metadata says it holds several focal planes opens with all of them, or fails
with one `SlideError` line naming the file and what cannot be read: never as plane 0 alone.
"""
from __future__ import annotations

import errno
import os
import stat as stat_mod
from pathlib import Path

from .base import CorruptSlideError, Slide, SlideError, SlideNotFoundError, UnsupportedSlideError

TIFF_MAGICS = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
ZARR_METADATA_FILES = ("zarr.json", ".zattrs", ".zgroup")
STILL_IMAGE_MAGICS = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"BM", b"GIF8", b"RIFF")


def open_slide(path: str | os.PathLike | None) -> Slide:
    """Open any slide FineFocus reads. Raises a `SlideError` subclass naming the path."""
    if path is None or (isinstance(path, str) and path.startswith("phantom:")):
        try:
            from engine.phantom import PhantomSlide
        except ImportError as exc:
            if exc.name != "engine.phantom":
                raise
            raise UnsupportedSlideError(path or "phantom:", "the built-in phantom is not installed") from exc
        return PhantomSlide.from_spec(path)
    p = Path(path)
    st = _stat(p)
    if stat_mod.S_ISDIR(st.st_mode):
        return _open_folder(p)
    if not stat_mod.S_ISREG(st.st_mode):
        raise UnsupportedSlideError(p, "not a regular file or folder")
    if st.st_size == 0:
        raise CorruptSlideError(p, "file is empty (0 bytes)")
    head = _head(p)
    if p.name in ZARR_METADATA_FILES and head.lstrip()[:1] == b"{":
        from .ome_zarr import OmeZarrSlide, looks_like_zarr

        if looks_like_zarr(p.parent):  # the metadata file of an OME-Zarr folder (a file dialog's pick)
            return OmeZarrSlide(p.parent)
    if head[128:132] == b"DICM":
        from .dicom import DicomSlide

        return DicomSlide(p)
    if head[:10] == b"ZISRAWFILE":
        from .czi import CziSlide

        return CziSlide(p)
    if head[:4] in TIFF_MAGICS:
        return _open_tiff(p, st.st_size)
    vendor = _openslide_vendor(p)
    if vendor:
        from .openslide_backend import OpenSlideSlide

        return OpenSlideSlide(p)
    if head.startswith(STILL_IMAGE_MAGICS) or _pillow_knows(p):
        from .image import ImageSlide

        return ImageSlide(p)
    raise UnsupportedSlideError(p, f"unrecognised content ({_describe(head)}); "
                                   "not a slide, DICOM, TIFF or image file")


# ---------------------------------------------------------------------------- checks
def _stat(p: Path) -> os.stat_result:
    try:
        st = os.stat(p)
    except FileNotFoundError as exc:
        if os.path.islink(p):
            raise SlideNotFoundError(p, "broken symbolic link") from exc
        raise SlideNotFoundError(p, "no such file or folder") from exc
    except NotADirectoryError as exc:
        raise SlideNotFoundError(p, "a part of the path is a file, not a folder") from exc
    except PermissionError as exc:
        raise SlideNotFoundError(p, "permission denied") from exc
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise SlideNotFoundError(p, "symbolic link loop") from exc
        if exc.errno == errno.ENAMETOOLONG:
            raise SlideNotFoundError(p, "path is too long") from exc
        raise SlideNotFoundError(p, exc.strerror or str(exc)) from exc
    if not os.access(p, os.R_OK):
        raise SlideNotFoundError(p, "permission denied (not readable)")
    return st


def _head(p: Path, n: int = 132) -> bytes:
    try:
        with open(p, "rb") as fh:
            return fh.read(n)
    except PermissionError as exc:
        raise SlideNotFoundError(p, "permission denied") from exc
    except OSError as exc:
        raise SlideNotFoundError(p, f"cannot read ({exc.strerror or exc})") from exc


def _describe(head: bytes) -> str:
    sample = head[:32]
    try:
        text = sample.decode("utf-8")
    except UnicodeDecodeError:
        return "starts with bytes " + sample[:8].hex(" ")
    if text.isprintable() or all(c.isprintable() or c in "\r\n\t" for c in text):
        first = text.strip().splitlines()[0] if text.strip() else ""
        return f"looks like text: {first[:24]!r}"
    return "starts with bytes " + sample[:8].hex(" ")


def _openslide_vendor(p: Path) -> str | None:
    import openslide

    try:
        return openslide.OpenSlide.detect_format(str(p))
    except openslide.OpenSlideError:
        return None


def _pillow_knows(p: Path) -> bool:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(p):
            return True
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return False


# ---------------------------------------------------------------------------- TIFF
def _open_tiff(p: Path, size: int) -> Slide:
    from .ndpi import is_ndpi_page, ndpi_plane_offsets_nm, open_ndpi_tiff
    from .tiff_region import check_page, open_tiff

    tif = open_tiff(p)
    try:
        if not len(tif.pages):
            raise CorruptSlideError(p, "TIFF holds no image directory")
        first = tif.pages[0]
        ndpi = is_ndpi_page(first)
        if ndpi:
            tif.close()
            tif = open_ndpi_tiff(p)
        for page in tif.pages:
            check_page(page, p, size)
        if ndpi and len(ndpi_plane_offsets_nm(tif)) > 1:
            kind = "ndpi"
        elif tif.is_ome:
            kind = "ome"
        elif tif.is_imagej:
            kind = "imagej"
        elif first.dtype is not None and first.dtype != "uint8" and int(first.photometric) != 3:
            kind = "deep"   # 16-bit / float samples: OpenSlide would show their high byte
        else:
            kind = None
    except SlideError:
        raise
    except Exception as exc:  # tifffile raises various errors on broken structures
        raise CorruptSlideError(p, f"broken TIFF structure ({exc})") from exc
    finally:
        tif.close()
    if kind == "ndpi":
        from .ndpi import NdpiSlide

        return NdpiSlide(p)
    if kind == "ome":
        from .ome_tiff import OmeTiffSlide

        return OmeTiffSlide(p)
    if kind == "imagej":
        from .imagej import ImageJSlide

        return ImageJSlide(p)
    if kind != "deep" and _openslide_vendor(p):
        from .openslide_backend import OpenSlideSlide

        return OpenSlideSlide(p)
    from .image import ImageSlide

    return ImageSlide(p)


# ---------------------------------------------------------------------------- folders
def _open_folder(p: Path) -> Slide:
    try:
        children = sorted(c for c in p.iterdir() if c.is_file())
    except PermissionError as exc:
        raise SlideNotFoundError(p, "permission denied (folder not listable)") from exc
    from .ome_zarr import looks_like_zarr

    if looks_like_zarr(p):
        from .ome_zarr import OmeZarrSlide

        return OmeZarrSlide(p)
    if any(_is_dicom(c) for c in children):
        from .dicom import DicomSlide

        return DicomSlide(p)
    from .plane_set import PlaneSetSlide, plane_files_in

    if plane_files_in(p):
        return PlaneSetSlide(p)
    what = "an empty folder" if not children else f"a folder of {len(children)} files"
    raise UnsupportedSlideError(
        p, f"{what} with no slide in it: no DICOM instances, no planes.json and no images "
           "named like name_z+1.25um.png")


def _is_dicom(c: Path) -> bool:
    try:
        with open(c, "rb") as fh:
            return fh.read(132)[128:132] == b"DICM"
    except OSError:
        return False
