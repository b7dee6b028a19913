"""Zeiss CZI z-stacks written by pylibCZIrw (libCZI's own writer) through `CziSlide`."""
import struct
import tracemalloc

import numpy as np
import pytest

from engine.slides import CorruptSlideError, SlideError, open_slide
from engine.slides.array import box_downsample2
from engine.slides.czi import CziSlide
from tests import zstack_files
from tests.engine.slides.checks import (assert_edge_reads_are_white_outside, full_level,
                                        assert_threaded_reads_match)


@pytest.fixture(scope="module")
def rgb_czi(tmp_path_factory):
    return zstack_files.write_czi_zstack(tmp_path_factory.mktemp("czi") / "z.czi", n_planes=3,
                                         size=(700, 500), dz_um=0.5, mpp=0.22, origin=(37, -20))


def test_open_slide_picks_the_czi_backend_from_the_content(rgb_czi, tmp_path):
    odd = tmp_path / "scan.tif"
    odd.write_bytes(rgb_czi[0].read_bytes())
    with open_slide(odd) as slide:
        assert isinstance(slide, CziSlide) and slide.format == "czi"


def test_every_plane_is_exact_rgb_with_z_and_mpp_from_the_scaling(rgb_czi):
    path, planes = rgb_czi
    with open_slide(path) as slide:
        assert slide.planes_um == (0.0, 0.5, 1.0)
        assert slide.mpp == pytest.approx((0.22, 0.22))
        assert slide.dimensions == (700, 500)
        assert slide.notes == () and slide.display_range is None
        for i, want in enumerate(planes):
            assert np.array_equal(full_level(slide, 0, i), want), i  # BGR turned into RGB
            assert np.array_equal(full_level(slide, 1, i), box_downsample2(want)), i


def test_edges_are_white_and_threads_agree(rgb_czi):
    with open_slide(rgb_czi[0]) as slide:
        assert_edge_reads_are_white_outside(slide, plane=2)
        assert_threaded_reads_match(slide, n_regions=16, size=160)


def test_grey16_has_one_display_range_for_all_planes(tmp_path):
    path, planes = zstack_files.write_czi_zstack(tmp_path / "g.czi", n_planes=4, size=(300, 200),
                                                 grey16=True, dz_um=1.5)
    with open_slide(path) as slide:
        assert slide.planes_um == (0.0, 1.5, 3.0, 4.5)
        lo, hi = slide.display_range
        data = np.stack(planes)
        assert data.min() <= lo < hi <= data.max()
        assert slide.properties["display.range"].startswith(f"{lo:.6g}")
        for z, raw in enumerate(planes):
            got = full_level(slide, 0, z)[:, :, 0].astype(int)
            want = np.floor(np.clip((raw - lo) * 255.0 / (hi - lo), 0, 255) + 0.5)
            assert np.abs(got - want).max() <= 1, z


def test_no_z_scaling_and_several_channels_are_said(tmp_path):
    from pylibCZIrw import czi as pyczi

    path = tmp_path / "c2.czi"
    imgs = {(z, c): np.full((64, 96, 1), 20 * z + 100 * c + 5, np.uint8) for z in range(2) for c in range(2)}
    with pyczi.create_czi(str(path)) as czi:
        for (z, c), img in imgs.items():
            czi.write(img, plane={"Z": z, "C": c, "T": 0})
        czi.write_metadata(scale_x=0.5e-6, scale_y=0.5e-6, scale_z=0.0)
    with open_slide(path) as slide:
        assert slide.planes_um == (0.0, 1.0)
        assert any("z step not stated" in n for n in slide.notes)
        assert any("C (channels): 2, the first read" in n for n in slide.notes)
        assert (full_level(slide, 0, 1) == 25).all()  # Z=1, C=0, grey into R = G = B


# ---------------------------------------------------------------------------- damage
def _directory(data: bytes) -> int:
    """Byte position of the subblock directory, from the CZI file header (spec layout)."""
    return struct.unpack_from("<q", data, 32 + 52)[0]


def test_a_missing_subblock_is_one_error_naming_it_while_others_read(rgb_czi, tmp_path):
    path, planes = rgb_czi
    data = bytearray(path.read_bytes())
    first = data.find(b"ZISRAWSUBBLOCK")
    second = data.find(b"ZISRAWSUBBLOCK", first + 1)  # plane Z=0, the tile at x=128
    data[second:second + 14] = b"DELETED\x00\x00\x00\x00\x00\x00\x00"
    broken = tmp_path / "hole.czi"
    broken.write_bytes(bytes(data))
    with open_slide(broken) as slide:
        assert np.array_equal(full_level(slide, 0, 1), planes[1])
        assert np.array_equal(slide.read_region(0, 0, 0, 100, 100, 0), planes[0][:100, :100])
        with pytest.raises(CorruptSlideError) as err:
            slide.read_region(0, 130, 10, 50, 50, 0)
    msg = str(err.value)
    assert "hole.czi" in msg and "missing" in msg and "Z=0" in msg and "\n" not in msg


@pytest.mark.parametrize("damage", ["truncated", "directory_position", "entry_count",
                                    "absurd_width", "absurd_stored_size"])
def test_bad_headers_are_one_error_without_allocating_what_they_claim(rgb_czi, tmp_path, damage):
    data = bytearray(rgb_czi[0].read_bytes())
    d = _directory(bytes(data))
    entry0 = d + 32 + 128  # first DirectoryEntryDV; its dimensions start 32 bytes in
    if damage == "truncated":
        data = data[: int(len(data) * 0.6)]
    elif damage == "directory_position":
        struct.pack_into("<q", data, 32 + 52, 10 ** 15)
    elif damage == "entry_count":
        struct.pack_into("<i", data, d + 32, 2 ** 30)
    else:  # DimensionEntryDV: name[4], start, size, start coordinate, stored size
        names = [bytes(data[entry0 + 32 + 20 * k:entry0 + 33 + 20 * k]) for k in range(8)]
        assert b"X" in names and b"Y" in names
        for axis in (b"X", b"Y"):
            dim = entry0 + 32 + 20 * names.index(axis)
            if damage == "absurd_width" and axis == b"X":
                struct.pack_into("<i", data, dim + 8, 2 * 10 ** 9)
            elif damage == "absurd_stored_size":  # 100 000² BGR px: 30 GB to decode one tile
                struct.pack_into("<i", data, dim + 8, 100_000)
                struct.pack_into("<i", data, dim + 16, 100_000)
    bad = tmp_path / f"{damage}.czi"
    bad.write_bytes(bytes(data))
    tracemalloc.start()
    try:
        with pytest.raises(SlideError) as err:
            with open_slide(bad) as slide:
                slide.read_region(0, 0, 0, 64, 64, 0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    msg = str(err.value)
    assert str(bad) in msg and "\n" not in msg
    assert {"truncated": "truncated", "directory_position": "past the end",
            "entry_count": "more than the file can hold", "absurd_width": "2000000000x128 px",
            "absurd_stored_size": "MB; decoding it would exceed"}[damage] in msg, msg
    assert peak < 64 << 20, f"allocated {peak >> 20} MB"
