"""Read and check a Zeiss CZI file's header and subblock directory, without touching pixels.

A CZI (ZISRAW) file is a sequence of segments, each with a 32-byte header (16-byte id such as
``ZISRAWFILE``, allocated size, used size). The file header gives the position of the
``ZISRAWDIRECTORY`` segment, which lists every subblock (a tile of one plane) with its pixel
type, compression, pyramid type, file position and, per dimension (X, Y, Z, C, T, M, S...),
its start index, size and stored size (stored < size for pyramid subblocks).

`read_directory` parses only these headers and refuses, with a `CorruptSlideError` naming the
file, what a reader should never be asked to decode: a bad segment id, a directory or subblock
that lies past the end of the file (truncated: the tile's data is missing), entry counts the
file cannot hold, planes or sides beyond the limits, and subblocks whose stored size would take
more than `MAX_SEGMENT_BYTES` to decode. Nothing proportional to a claimed size is allocated.

Sizes are px; positions are bytes.
"""
from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

from .base import CorruptSlideError, UnsupportedSlideError
from .tiff_region import MAX_SEGMENT_BYTES, MAX_SIDE_PX

MAGIC = b"ZISRAWFILE"
#: Bytes per pixel of each CZI pixel type (libCZI's PixelType numbers).
PIXEL_TYPES = {0: ("Gray8", 1), 1: ("Gray16", 2), 2: ("Gray32Float", 4), 3: ("Bgr24", 3),
               4: ("Bgr48", 6), 8: ("Bgr96Float", 12), 9: ("Bgra32", 4), 10: ("Gray32", 4),
               12: ("Gray64", 8)}
#: Most subblocks and planes a file may claim.
MAX_ENTRIES = 10_000_000
MAX_PLANES = 4096


@dataclass(frozen=True)
class Subblock:
    """One directory entry: ``dims[name] = (start, size, stored_size)``."""

    pixel_type: int
    file_position: int
    compression: int
    pyramid_type: int
    dims: dict = field(hash=False)

    @property
    def is_layer0(self) -> bool:
        x, y = self.dims.get("X"), self.dims.get("Y")
        return x is not None and y is not None and x[1] == x[2] and y[1] == y[2]

    def index(self, name: str, default: int = 0) -> int:
        d = self.dims.get(name)
        return d[0] if d is not None else default


@dataclass
class CziDirectory:
    version: tuple[int, int]
    metadata_position: int
    subblocks: list[Subblock]

    def layer0(self) -> list[Subblock]:
        return [s for s in self.subblocks if s.is_layer0]

    def has_pyramid(self) -> bool:
        return any(not s.is_layer0 for s in self.subblocks)

    def indices(self, name: str) -> list[int]:
        """Sorted distinct start indices of dimension ``name`` among layer-0 subblocks."""
        return sorted({s.index(name) for s in self.layer0()})


def is_czi(head: bytes) -> bool:
    return head[:10] == MAGIC


def read_directory(path: str | Path) -> CziDirectory:
    path = Path(path)
    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        head = fh.read(32 + 80)
        if len(head) < 32 + 64 or not is_czi(head):
            raise CorruptSlideError(path, "not a complete CZI file header")
        major, minor = struct.unpack_from("<ii", head, 32)
        dir_pos, meta_pos = struct.unpack_from("<qq", head, 32 + 16 + 32 + 4)
        if dir_pos <= 0 or dir_pos + 32 + 128 > size:
            raise CorruptSlideError(path, f"CZI subblock directory at byte {dir_pos} lies past "
                                          f"the end of the file ({size} bytes): truncated")
        fh.seek(dir_pos)
        seg = fh.read(32 + 128)
        if not seg.startswith(b"ZISRAWDIRECTORY"):
            raise CorruptSlideError(path, f"no CZI subblock directory at byte {dir_pos}")
        (count,) = struct.unpack_from("<i", seg, 32)
        if count < 0 or count > MAX_ENTRIES or dir_pos + 160 + count * 32 > size:
            raise CorruptSlideError(path, f"CZI directory claims {count} subblocks, more than "
                                          "the file can hold")
        body = fh.read(_directory_bytes(count, fh, dir_pos + 160, size))
    subblocks = _parse_entries(path, body, count, size)
    if not subblocks:
        raise CorruptSlideError(path, "CZI file lists no subblocks")
    return CziDirectory((major, minor), meta_pos, subblocks)


def _directory_bytes(count: int, fh, start: int, size: int) -> int:
    # Entries are 32 bytes + 20 per dimension; read what the file has, at most what 40
    # dimensions per entry would need.
    return max(0, min(size - start, count * (32 + 20 * 40)))


def _parse_entries(path: Path, body: bytes, count: int, size: int) -> list[Subblock]:
    out = []
    off = 0
    for i in range(count):
        if off + 32 > len(body):
            raise CorruptSlideError(path, f"CZI directory ends inside entry {i} of {count}")
        schema = body[off:off + 2]
        if schema != b"DV":
            raise CorruptSlideError(path, f"CZI directory entry {i} has schema {schema!r}, not DV")
        pixel_type, file_pos, _part, compression, pyramid, ndim = struct.unpack_from(
            "<iqiiB5xi", body, off + 2)
        off += 32
        if not 0 < ndim <= 40 or off + 20 * ndim > len(body):
            raise CorruptSlideError(path, f"CZI directory entry {i} claims {ndim} dimensions")
        dims = {}
        for _ in range(ndim):
            name = body[off:off + 4].split(b"\x00")[0].decode("ascii", "replace")
            start, dsize, _coord, stored = struct.unpack_from("<iifi", body, off + 4)
            dims[name] = (start, dsize, stored)
            off += 20
        sb = Subblock(pixel_type, file_pos, compression, pyramid, dims)
        _check_subblock(path, i, sb, size)
        out.append(sb)
    return out


def _check_subblock(path: Path, i: int, sb: Subblock, size: int) -> None:
    if "X" not in sb.dims or "Y" not in sb.dims:
        raise CorruptSlideError(path, f"CZI subblock {i} has no X or Y extent")
    if sb.pixel_type not in PIXEL_TYPES:
        raise UnsupportedSlideError(path, f"CZI subblock {i} has pixel type {sb.pixel_type}, "
                                          "which FineFocus does not read")
    (_, w, sw), (_, h, sh) = sb.dims["X"], sb.dims["Y"]
    if min(w, h, sw, sh) <= 0 or max(w, h) > MAX_SIDE_PX:
        raise CorruptSlideError(path, f"CZI subblock {i} claims {w}x{h} px (stored {sw}x{sh})")
    nbytes = sw * sh * PIXEL_TYPES[sb.pixel_type][1]
    if nbytes > MAX_SEGMENT_BYTES:
        raise UnsupportedSlideError(path, f"CZI subblock {i} stores {nbytes >> 20} MB; decoding it "
                                          f"would exceed the {MAX_SEGMENT_BYTES >> 20} MB limit")
    if sb.file_position <= 0 or sb.file_position + 32 + 256 > size:
        raise CorruptSlideError(path, f"CZI subblock {i} at byte {sb.file_position} lies past the "
                                      f"end of the file ({size} bytes): its data is missing")
    for name in ("Z", "C", "T"):
        d = sb.dims.get(name)
        if d is not None and abs(d[0]) > 1_000_000:
            raise CorruptSlideError(path, f"CZI subblock {i} has {name} index {d[0]}")


def verify_subblock(path: str | Path, fh, sb: Subblock, size: int) -> None:
    """Check that ``sb``'s segment is a subblock whose data lies inside the file (16 bytes
    read); raise `CorruptSlideError` naming the subblock's plane and place otherwise."""
    fh.seek(sb.file_position)
    head = fh.read(48)
    where = (f"Z={sb.index('Z')} C={sb.index('C')} at x={sb.dims['X'][0]}, y={sb.dims['Y'][0]}")
    if len(head) < 48 or not head.startswith(b"ZISRAWSUBBLOCK"):
        raise CorruptSlideError(path, f"CZI subblock {where} is missing (no subblock segment at "
                                      f"byte {sb.file_position})")
    meta, attach, data = struct.unpack_from("<iiq", head, 32)
    end = sb.file_position + 32 + 256 + max(meta, 0) + max(data, 0) + max(attach, 0)
    if meta < 0 or data < 0 or end > size + 256:
        raise CorruptSlideError(path, f"CZI subblock {where} runs past the end of the file: "
                                      "its data is missing (truncated)")
