"""`write_ome_tiff` writes any Slide as a valid, tiled, pyramidal OME-TIFF z-stack that reads
back with identical pixels and planes."""
import numpy as np
import ome_types
import pytest
import tifffile

from engine.export import write_ome_tiff
from engine.export.ome_tiff import level0_coordinate
from engine.slides import open_slide
from engine.slides.array import ArraySlide
from engine.slides.ome_tiff import OmeTiffSlide
from tests import slide_files
from tests.engine.slides.checks import full_level


def _assert_same_slide(a, b):
    assert a.planes_um == b.planes_um
    assert [(lv.width, lv.height) for lv in a.levels] == [(lv.width, lv.height) for lv in b.levels]
    for level in range(a.level_count):
        for plane in range(a.plane_count):
            assert np.array_equal(full_level(a, level, plane), full_level(b, level, plane)), (level, plane)


def test_a_dicom_zstack_round_trips_with_valid_ome_xml(dicom_zstack, tmp_path):
    out = tmp_path / "from-dicom.ome.tif"
    with open_slide(dicom_zstack[0]) as source:
        write_ome_tiff(out, source, tile=256)
        with open_slide(out) as copy:
            assert isinstance(copy, OmeTiffSlide)
            assert copy.mpp == (0.25, 0.25)
            _assert_same_slide(source, copy)
    with tifffile.TiffFile(out) as tif:
        ome = ome_types.from_xml(tif.ome_metadata, validate=True)
        page = tif.pages[0]
        assert page.is_tiled and (page.tilewidth, page.tilelength) == (256, 256)
        assert len(page.subifds) == 2  # the pyramid lives in SubIFDs
        assert len(tif.pages) == 3     # one top-level IFD per plane
    pixels = ome.images[0].pixels
    assert pixels.size_z == 3
    assert pixels.physical_size_x == 0.25 and pixels.physical_size_z == 1.0
    assert [p.position_z for p in pixels.planes] == [-1.0, 0.0, 1.0]


def test_odd_sizes_uneven_planes_and_a_subset_of_levels(tmp_path):
    planes = [slide_files.textured_plane(1000, 611, i) for i in range(3)]
    source = ArraySlide(planes, planes_um=(-0.8, 0.0, 2.5), mpp=(0.3, 0.31), min_size=200)
    out = write_ome_tiff(tmp_path / "odd.ome.tif", source, tile=128, levels=[0, 1, 2])
    with open_slide(out) as copy:
        assert copy.planes_um == (-0.8, 0.0, 2.5)
        assert copy.mpp == pytest.approx((0.3, 0.31))
        assert copy.level_count == 3
        for level in range(3):
            for plane in range(3):
                assert np.array_equal(full_level(copy, level, plane), full_level(source, level, plane))
    with tifffile.TiffFile(out) as tif:
        ome_types.from_xml(tif.ome_metadata, validate=True)


def test_a_single_plane_slide_and_progress_reports(tmp_path):
    source = ArraySlide([slide_files.textured_plane(700, 500, 0)], mpp=(0.5, 0.5), min_size=256)
    calls = []
    out = write_ome_tiff(tmp_path / "one.ome.tif", source, tile=256,
                         progress=lambda done, total: calls.append((done, total)))
    total = sum(-(-lv.width // 256) * -(-lv.height // 256) for lv in source.levels)
    assert calls[-1] == (total, total) and len(calls) == total
    with open_slide(out) as copy:
        assert copy.planes_um == (0.0,)
        _assert_same_slide(source, copy)


def test_jpeg_compression_is_close_not_exact(tmp_path):
    source = ArraySlide([slide_files.textured_plane(512, 512, 0)], min_size=256)
    out = write_ome_tiff(tmp_path / "j.ome.tif", source, tile=256, compression="jpeg")
    with open_slide(out) as copy:
        diff = np.abs(full_level(copy, 0).astype(int) - full_level(source, 0))
        assert 0 < diff.mean() < 4


def test_bad_arguments_are_refused(tmp_path):
    source = ArraySlide([np.zeros((64, 64, 3), np.uint8)])
    with pytest.raises(ValueError, match="multiple of 16"):
        write_ome_tiff(tmp_path / "x.ome.tif", source, tile=100)
    with pytest.raises(ValueError, match="start with 0"):
        write_ome_tiff(tmp_path / "x.ome.tif", source, levels=[1])
    with pytest.raises(ValueError, match="compression"):
        write_ome_tiff(tmp_path / "x.ome.tif", source, compression="lzma")


@pytest.mark.parametrize("downsample", [1.0, 2.0, 4.0, 2.0005055, 3.9999, 8.3])
def test_level0_coordinate_starts_reads_at_the_wanted_level_pixel(downsample):
    for lx in (0, 1, 255, 256, 1023, 4097):
        x = level0_coordinate(lx, downsample)
        assert int(np.floor(x / downsample)) == lx
        assert x == 0 or int(np.floor((x - 1) / downsample)) < lx


class _RecordingSlide(ArraySlide):
    """An ArraySlide that remembers the size of every region it is asked for."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.requests = []

    def _read(self, level, lx, ly, w, h, plane):
        self.requests.append((level, w, h))
        return super()._read(level, lx, ly, w, h, plane)


def test_the_writer_reads_tile_by_tile_never_a_whole_level(tmp_path):
    source = _RecordingSlide([slide_files.textured_plane(900, 700, i) for i in range(2)],
                             planes_um=(0.0, 1.0), min_size=300)
    write_ome_tiff(tmp_path / "tiles.ome.tif", source, tile=128)
    assert max(w for _, w, _ in source.requests) <= 128
    assert max(h for _, _, h in source.requests) <= 128
    assert {level for level, _, _ in source.requests} == set(range(source.level_count))


def test_a_failed_export_leaves_the_existing_file_and_no_partial_one(tmp_path):
    """The source has a corrupt tile: the export fails with the slide's error, the file already at
    the target is untouched and no partial file is left beside it."""
    from engine.slides.base import SlideError

    src, _ = slide_files.write_ome_zstack(tmp_path / "src.ome.tiff", (-1.0, 0.0, 1.0), size=(600, 400))
    slide_files.corrupt_first_tile(src)
    target = tmp_path / "out.ome.tiff"
    target.write_bytes(b"an earlier export")
    with open_slide(src) as slide, pytest.raises(SlideError, match="src.ome.tiff"):
        write_ome_tiff(target, slide, tile=256)
    assert target.read_bytes() == b"an earlier export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.ome.tiff", "src.ome.tiff"]
