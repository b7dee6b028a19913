"""Focus brackets: one image per plane, z from planes.json or from the file names."""
import json

import numpy as np
import pytest
from PIL import Image

from engine.slides import CorruptSlideError, UnsupportedSlideError, open_slide
from engine.slides.array import ArraySlide
from engine.slides.plane_set import PlaneSetSlide, z_from_name
from tests import slide_files
from tests.engine.slides.checks import assert_edge_reads_are_white_outside, assert_threaded_reads_match, full_level


def test_a_folder_with_a_sidecar_opens_as_a_plane_set(plane_set):
    folder, expected = plane_set
    with open_slide(folder) as slide:
        assert isinstance(slide, PlaneSetSlide)
        assert slide.planes_um == (-1.0, 0.0, 1.0)
        assert slide.mpp == (0.5, 0.5)
        assert slide.properties["plane_set.z_source"] == "sidecar"
        for plane, want in enumerate(expected):
            assert np.array_equal(full_level(slide, 0, plane), want)


def test_coarser_levels_are_the_box_pyramid_of_each_plane(plane_set):
    folder, expected = plane_set
    reference = ArraySlide(expected, planes_um=(-1.0, 0.0, 1.0), min_size=512)
    with open_slide(folder) as slide:
        assert [lv.width for lv in slide.levels] == [lv.width for lv in reference.levels]
        for level in range(1, slide.level_count):
            for plane in range(3):
                assert np.array_equal(full_level(slide, level, plane), full_level(reference, level, plane))


@pytest.mark.parametrize("name, z", [("bracket_z+1.25um.png", 1.25), ("bracket_z-0.5um.tif", -0.5),
                                     ("scan_z0um.jpg", 0.0), ("a_Z2UM.png", 2.0), ("plain.png", None)])
def test_z_from_file_names(name, z):
    assert z_from_name(name) == z


def test_z_from_file_names_when_there_is_no_sidecar(tmp_path):
    folder, expected = slide_files.write_plane_set(tmp_path / "named", planes_um=(0.75, -0.5, 0.0),
                                                   sidecar=False, suffix=".tif")
    with open_slide(folder) as slide:
        assert slide.planes_um == (-0.5, 0.0, 0.75)  # sorted ascending
        assert slide.properties["plane_set.z_source"] == "file names"
        assert np.array_equal(full_level(slide, 0, 0), expected[1])
        assert np.array_equal(full_level(slide, 0, 2), expected[0])


def test_an_explicit_list_of_files(tmp_path):
    folder, expected = slide_files.write_plane_set(tmp_path / "list", planes_um=(-1.0, 1.0), sidecar=False)
    files = sorted(folder.glob("*.png"))
    with PlaneSetSlide(files) as slide:
        assert slide.planes_um == (-1.0, 1.0)
        assert np.array_equal(full_level(slide, 0, 1), expected[1])


def test_planes_of_different_sizes_are_refused_naming_the_file(tmp_path):
    folder, _ = slide_files.write_plane_set(tmp_path / "mixed", planes_um=(0.0, 1.0), sidecar=False)
    odd = folder / "bracket_z+2um.png"
    Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(odd)
    with pytest.raises(CorruptSlideError, match="bracket_z\\+2um.png"):
        open_slide(folder)


def test_a_broken_sidecar_is_a_clear_error(tmp_path):
    folder, _ = slide_files.write_plane_set(tmp_path / "badjson")
    (folder / "planes.json").write_text(json.dumps({"planes": [{"file": "plane_0.png"}]}))
    with pytest.raises(CorruptSlideError, match="planes.json"):
        open_slide(folder)


def test_a_folder_of_images_without_z_is_not_a_slide(tmp_path):
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "holiday.png")
    with pytest.raises(UnsupportedSlideError, match="name_z"):
        open_slide(tmp_path)


def test_edges_and_threads(plane_set):
    with open_slide(plane_set[0]) as slide:
        assert_edge_reads_are_white_outside(slide, plane=2)
        assert_threaded_reads_match(slide, n_regions=24)
