"""NDPI z-stacks: every focal plane through `NdpiSlide`, never one plane silently via OpenSlide."""
import numpy as np
import openslide
import pytest

from engine.slides import UnsupportedSlideError, open_slide
from engine.slides.ndpi import NdpiSlide
from engine.slides.openslide_backend import OpenSlideSlide
from tests import slide_files
from tests.engine.slides.checks import assert_edge_reads_are_white_outside, assert_threaded_reads_match


def _mean_abs(a, b):
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def test_openslide_itself_would_show_a_single_plane(ndpi_zstack):
    """The reason for the NDPI backend: OpenSlide opens the file, as 'hamamatsu', with no
    trace of the other focal planes."""
    path, expected = ndpi_zstack
    assert openslide.OpenSlide.detect_format(str(path)) == "hamamatsu"
    osr = openslide.OpenSlide(str(path))
    shown = np.asarray(osr.read_region((0, 0), 0, osr.level_dimensions[0]))[:, :, :3]
    errors = [_mean_abs(shown, plane) for plane in expected[0]]
    assert sorted(errors)[0] < 4 < sorted(errors)[1]  # exactly one plane matches
    osr.close()


def test_open_slide_routes_a_multi_plane_ndpi_to_the_ndpi_backend(ndpi_zstack):
    path, _ = ndpi_zstack
    with open_slide(path) as slide:
        assert isinstance(slide, NdpiSlide)
        assert slide.planes_um == (-1.0, 0.0, 1.0)
        assert slide.format == "ndpi"


def test_the_openslide_backend_refuses_a_multi_plane_ndpi(ndpi_zstack):
    with pytest.raises(UnsupportedSlideError, match="3 focal planes"):
        OpenSlideSlide(ndpi_zstack[0])


def test_every_plane_and_level_shows_its_own_pixels(ndpi_zstack):
    path, expected = ndpi_zstack
    with NdpiSlide(path) as slide:
        assert [lv.downsample for lv in slide.levels] == [1.0, 2.0, 4.0]
        assert slide.mpp == pytest.approx((0.46, 0.46))
        for level, planes in enumerate(expected):
            for plane, want in enumerate(planes):
                lv = slide.levels[level]
                got = slide.read_region(level, 0, 0, lv.width, lv.height, plane)
                errors = [_mean_abs(got, other) for other in planes]
                assert errors[plane] < 4.0  # JPEG q95
                assert errors[plane] == min(errors)
                assert all(e > 8.0 for i, e in enumerate(errors) if i != plane)


def test_macro_is_an_associated_image_not_a_plane(ndpi_zstack):
    with NdpiSlide(ndpi_zstack[0]) as slide:
        assert set(slide.associated_images) == {"macro"}
        assert slide.associated_images["macro"].shape == (120, 320, 3)
        assert slide.dimensions == (1024, 768)


def test_reads_outside_are_white_and_threads_agree(ndpi_zstack):
    with NdpiSlide(ndpi_zstack[0]) as slide:
        assert_edge_reads_are_white_outside(slide, plane=0)
        assert_threaded_reads_match(slide, n_regions=24)


def test_a_single_plane_ndpi_stays_with_openslide(tmp_path):
    path, _ = slide_files.write_ndpi_zstack(tmp_path / "flat.ndpi", planes_um=(0.0,), size=(512, 384))
    with open_slide(path) as slide:
        assert isinstance(slide, OpenSlideSlide)
        assert slide.format == "hamamatsu"
        assert slide.planes_um == (0.0,)
