"""OME-TIFF z-stacks (tifffile-written, tiled, SubIFD pyramid) through `OmeTiffSlide`."""
import numpy as np
import pytest

from engine.slides import CorruptSlideError, open_slide
from engine.slides.ome_tiff import OmeTiffSlide
from tests import slide_files
from tests.engine.slides.checks import (assert_edge_reads_are_white_outside, assert_round_trip,
                                        assert_threaded_reads_match)


def test_open_slide_picks_the_ome_backend(ome_zstack):
    path, _ = ome_zstack
    with open_slide(path) as slide:
        assert isinstance(slide, OmeTiffSlide)
        assert slide.format == "ome-tiff"


def test_every_plane_and_level_round_trips_exactly(ome_zstack):
    path, expected = ome_zstack
    with OmeTiffSlide(path) as slide:
        assert_round_trip(slide, expected)
        assert [lv.downsample for lv in slide.levels] == [1.0, 2.0, 4.0]


def test_planes_um_and_mpp_come_from_the_ome_xml(ome_zstack):
    path, _ = ome_zstack
    with OmeTiffSlide(path) as slide:
        assert slide.planes_um == (-1.0, 0.0, 1.0)
        assert slide.mpp == (0.25, 0.25)
        assert slide.dimensions == (1536, 1024)
        assert slide.tile_size == (256, 256)


def test_position_z_in_other_units_and_uneven_spacing(tmp_path):
    path, expected = slide_files.write_ome_zstack(tmp_path / "uneven.ome.tif",
                                                  planes_um=(-2.5, -0.5, 0.0, 3.0),
                                                  size=(512, 384))
    with OmeTiffSlide(path) as slide:
        assert slide.planes_um == (-2.5, -0.5, 0.0, 3.0)
        assert np.array_equal(slide.read_region(0, 0, 0, 512, 384, 3), expected[0][3])


def test_without_position_z_planes_are_physical_size_z_steps_centred(tmp_path):
    path, _ = slide_files.write_ome_zstack(tmp_path / "nopos.ome.tif", planes_um=(0.0, 0.5, 1.0, 1.5, 2.0),
                                           size=(256, 256), with_position_z=False)
    with OmeTiffSlide(path) as slide:
        assert slide.planes_um == (-1.0, -0.5, 0.0, 0.5, 1.0)


def test_reads_outside_the_slide_are_white(ome_zstack):
    with OmeTiffSlide(ome_zstack[0]) as slide:
        assert_edge_reads_are_white_outside(slide, plane=2)


def test_reads_from_several_threads_give_the_same_pixels(ome_zstack):
    with OmeTiffSlide(ome_zstack[0]) as slide:
        assert_threaded_reads_match(slide)


def test_only_the_tiles_a_read_touches_are_decoded(tmp_path):
    """A broken first tile does not stop reads elsewhere: reads decode only the tiles they
    intersect (never the whole plane); reading the broken tile names the file."""
    path, expected = slide_files.write_ome_zstack(tmp_path / "broken.ome.tif", size=(1024, 768))
    slide_files.corrupt_first_tile(path)
    with open_slide(path) as slide:
        far = slide.read_region(0, 300, 300, 500, 400, 0)
        assert np.array_equal(far, expected[0][0][300:700, 300:800])
        with pytest.raises(CorruptSlideError, match="broken.ome.tif"):
            slide.read_region(0, 0, 0, 64, 64, 0)


def test_three_single_channel_pages_per_plane_are_stacked_as_rgb(tmp_path):
    """C = 3 stored as separate grey IFDs (DimensionOrder XYCZT), no PositionZ."""
    import tifffile

    planes = np.stack([slide_files.textured_plane(300, 200, i) for i in range(2)])
    tifffile.imwrite(tmp_path / "zc.ome.tif", np.ascontiguousarray(planes.transpose(0, 3, 1, 2)),
                     metadata={"axes": "ZCYX", "PhysicalSizeX": 0.5, "PhysicalSizeY": 0.5,
                               "PhysicalSizeZ": 2.0}, tile=(64, 64))
    with open_slide(tmp_path / "zc.ome.tif") as slide:
        assert slide.planes_um == (-1.0, 1.0)
        for z in range(2):
            assert np.array_equal(slide.read_region(0, 0, 0, 300, 200, z), planes[z])


def test_uint16_planes_share_one_display_range(tmp_path):
    """16-bit OME-TIFF z-stack: one window for every plane, from the data, in info()."""
    import tifffile

    from tests.zstack_files import grey16_plane

    data = np.stack([grey16_plane(300, 200, z, seed=71) for z in range(3)])
    path = tmp_path / "g16.ome.tif"
    tifffile.imwrite(path, data, metadata={"axes": "ZYX", "PhysicalSizeX": 0.5,
                                           "PhysicalSizeY": 0.5, "PhysicalSizeZ": 1.0},
                     tile=(64, 64))
    with open_slide(path) as slide:
        lo, hi = slide.display_range
        assert data.min() <= lo < hi <= data.max()
        assert slide.info()["display_range"] == [lo, hi] and "display.range" in slide.properties
        for z in range(3):
            got = slide.read_region(0, 0, 0, 300, 200, z)[:, :, 0].astype(int)
            want = np.floor(np.clip((data[z] - lo) * 255.0 / (hi - lo), 0, 255) + 0.5)
            assert np.abs(got - want).max() <= 1, z
