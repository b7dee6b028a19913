"""Plain images OpenSlide cannot open (strip TIFF, PNG, JPEG) through `ImageSlide`."""
import numpy as np
import pytest
import tifffile
from PIL import Image

from engine.slides import open_slide
from engine.slides.array import ArraySlide
from engine.slides.image import ImageSlide
from tests import slide_files
from tests.engine.slides.checks import assert_edge_reads_are_white_outside, assert_threaded_reads_match, full_level
from tests.paths import SHARED_DATA

KIDNEY = SHARED_DATA / "slides" / "kidney-48-5.tif"


def test_kidney_tif_opens_through_the_image_backend():
    if not KIDNEY.is_file():
        pytest.skip(f"shared test data not found: {KIDNEY} (set FINEFOCUS_SHARED_DATA)")
    with open_slide(KIDNEY) as slide:
        assert isinstance(slide, ImageSlide)
        assert slide.dimensions == (1493, 901)
        truth = tifffile.imread(KIDNEY)
        assert np.array_equal(slide.read_region(0, 100, 200, 300, 250), truth[200:450, 100:400])
        assert slide.level_count == 3  # 1493 -> 747 -> 374 px long side


def _strip_tiff(path, img, rows=37):
    tifffile.imwrite(path, img, photometric="rgb", rowsperstrip=rows, compression="zlib",
                     resolution=(1e4 / 0.5, 1e4 / 0.5), resolutionunit="CENTIMETER")
    return path


def test_a_strip_tiff_reads_exactly_with_computed_levels(tmp_path):
    img = slide_files.textured_plane(1100, 700, 0)
    path = _strip_tiff(tmp_path / "strips.tif", img)
    reference = ArraySlide([img], min_size=512)
    with open_slide(path) as slide:
        assert isinstance(slide, ImageSlide)
        assert slide.mpp == pytest.approx((0.5, 0.5))
        assert [(lv.width, lv.height, lv.downsample) for lv in slide.levels] == \
               [(lv.width, lv.height, lv.downsample) for lv in reference.levels]
        for level in range(slide.level_count):
            assert np.array_equal(full_level(slide, level), full_level(reference, level))
        # A region in the middle of a coarse level equals the same cut of the reference.
        assert np.array_equal(slide.read_region(1, 301, 97, 123, 77), reference.read_region(1, 301, 97, 123, 77))


def test_png_and_jpeg_open_by_content(tmp_path):
    img = slide_files.textured_plane(300, 200, 1)
    Image.fromarray(img).save(tmp_path / "a.png")
    Image.fromarray(img).save(tmp_path / "b.jpg", quality=95)
    with open_slide(tmp_path / "a.png") as slide:
        assert slide.format == "png"
        assert np.array_equal(full_level(slide, 0), img)
    with open_slide(tmp_path / "b.jpg") as slide:
        assert slide.format == "jpeg"
        assert np.abs(full_level(slide, 0).astype(int) - img).mean() < 3


def test_transparent_png_is_composited_over_white(tmp_path):
    rgba = np.zeros((64, 64, 4), np.uint8)
    rgba[:, :32] = (200, 10, 10, 255)
    Image.fromarray(rgba).save(tmp_path / "alpha.png")
    with open_slide(tmp_path / "alpha.png") as slide:
        px = full_level(slide, 0)
        assert (px[:, :32] == (200, 10, 10)).all()
        assert (px[:, 32:] == 255).all()


def test_edges_and_threads(tmp_path):
    path = _strip_tiff(tmp_path / "t.tif", slide_files.textured_plane(1300, 900, 2))
    with open_slide(path) as slide:
        assert_edge_reads_are_white_outside(slide)
        assert_threaded_reads_match(slide, n_regions=32)


def test_a_plain_tiff_whose_metadata_says_z_planes_is_refused_not_shown_as_plane_0(tmp_path):
    """tifffile's own 'shaped' metadata names a Z axis but no z positions: one error line
    naming the file, never plane 0 of several as if it were the slide."""
    import tifffile

    from engine.slides import UnsupportedSlideError, open_slide

    path = tmp_path / "shaped.tif"
    tifffile.imwrite(path, np.zeros((4, 40, 50), np.uint8), metadata={"axes": "ZYX"})
    with pytest.raises(UnsupportedSlideError) as err:
        open_slide(path)
    assert "shaped.tif" in str(err.value) and "4 Z planes" in str(err.value)


def test_16_bit_grey_tiff_and_png_are_shown_through_one_display_window(tmp_path):
    """Not the high byte: the samples' own spread fills 0..255, the same way for TIFF and PNG."""
    import tifffile
    from PIL import Image

    yy, xx = np.mgrid[0:300, 0:400]
    samples = (1000 + 20 * xx + 3 * yy).astype(np.uint16)     # 1000 .. 9897: the high byte is 3..38
    tifffile.imwrite(tmp_path / "grey16.tif", samples, tile=(128, 128))
    Image.fromarray(samples).save(tmp_path / "grey16.png")
    for name in ("grey16.tif", "grey16.png"):
        slide = open_slide(tmp_path / name)
        lo, hi = slide.display_range
        assert 1000 <= lo < 1500 and 9400 < hi <= 9897, name   # robust percentiles of the ramp
        rgb = slide.read_region(0, 0, 0, 400, 300)
        assert rgb.dtype == np.uint8 and rgb.shape == (300, 400, 3)
        want = np.clip((samples.astype(np.float32) - lo) * (255.0 / (hi - lo)) + 0.5, 0, 255.5).astype(np.uint8)
        np.testing.assert_allclose(rgb[..., 0].astype(int), want.astype(int), atol=1)
        assert rgb[..., 0].min() == 0 and rgb[..., 0].max() == 255
        assert "display.range" in slide.properties and slide.info()["display_range"] == [lo, hi]
        slide.close()
