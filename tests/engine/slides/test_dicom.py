"""DICOM WSI with several focal planes (pydicom-written VL Whole Slide Microscopy Image)
through `DicomSlide`."""
import numpy as np

from engine.slides import open_slide
from engine.slides.dicom import DicomSlide
from tests import slide_files
from tests.engine.slides.checks import (assert_edge_reads_are_white_outside, assert_round_trip,
                                        assert_threaded_reads_match)


def test_a_folder_of_instances_opens_as_dicom(dicom_zstack):
    folder, _ = dicom_zstack
    with open_slide(folder) as slide:
        assert isinstance(slide, DicomSlide)
        assert slide.format == "dicom"


def test_tiled_full_planes_levels_and_pixels_round_trip(dicom_zstack):
    folder, expected = dicom_zstack
    with DicomSlide(folder) as slide:
        assert slide.planes_um == (-1.0, 0.0, 1.0)
        assert slide.mpp == (0.25, 0.25)
        assert [lv.downsample for lv in slide.levels] == [1.0, 2.0, 4.0]
        assert slide.properties["dicom.DimensionOrganizationType"] == "TILED_FULL"
        assert_round_trip(slide, expected)


def test_tiled_sparse_uneven_planes_from_z_offset_in_slide_coordinates(tmp_path):
    folder, expected = slide_files.write_dicom_zstack(tmp_path / "sparse",
                                                      planes_um=(-2.0, -0.5, 0.0, 1.5),
                                                      size=(512, 384), n_levels=2)
    with open_slide(folder) as slide:
        assert slide.planes_um == (-2.0, -0.5, 0.0, 1.5)
        assert slide.properties["dicom.DimensionOrganizationType"] == "TILED_SPARSE"
        assert_round_trip(slide, expected)


def test_a_single_instance_file_opens_by_its_content(dicom_zstack, tmp_path):
    folder, expected = dicom_zstack
    renamed = tmp_path / "level0.bin"
    renamed.write_bytes((folder / "level_0.dcm").read_bytes())
    with open_slide(renamed) as slide:
        assert isinstance(slide, DicomSlide)
        assert slide.level_count == 1
        assert slide.planes_um == (-1.0, 0.0, 1.0)
        assert_round_trip(slide, expected[:1])


def test_reads_outside_are_white_and_threads_agree(dicom_zstack):
    with DicomSlide(dicom_zstack[0]) as slide:
        assert_edge_reads_are_white_outside(slide, plane=1)
        assert_threaded_reads_match(slide, n_regions=24)


def test_nearest_plane_picks_the_captured_z(dicom_zstack):
    with DicomSlide(dicom_zstack[0]) as slide:
        assert slide.nearest_plane(0.7) == 2
        assert slide.nearest_plane(-5.0) == 0
        a = slide.read_region(0, 100, 100, 64, 64, slide.nearest_plane(0.7))
        assert np.array_equal(a, dicom_zstack[1][0][2][100:164, 100:164])
