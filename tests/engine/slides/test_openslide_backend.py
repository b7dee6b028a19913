"""Formats OpenSlide reads, through `OpenSlideSlide`: the real SVS files in shared/data and an
Aperio-style TIFF written here."""
import numpy as np
import pytest

from engine.slides import CorruptSlideError, open_slide
from engine.slides.openslide_backend import OpenSlideSlide
from tests import slide_files
from tests.engine.slides.checks import assert_edge_reads_are_white_outside, assert_threaded_reads_match
from tests.paths import SHARED_DATA

SLIDES = SHARED_DATA / "slides"


def _shared(name):
    path = SLIDES / name
    if not path.is_file():
        pytest.skip(f"shared test data not found: {path} (set FINEFOCUS_SHARED_DATA)")
    return path


def test_cmu_small_region_svs():
    with open_slide(_shared("cmu-1-small-region.svs")) as slide:
        assert isinstance(slide, OpenSlideSlide)
        assert slide.format == "aperio"
        assert slide.dimensions == (2220, 2967)
        assert slide.level_count == 1
        assert slide.mpp == pytest.approx((0.499, 0.499))
        assert slide.planes_um == (0.0,)
        assert {"label", "macro", "thumbnail"} <= set(slide.associated_images)
        assert slide.associated_images["label"].shape[2] == 3
        tile = slide.read_region(0, 1000, 1000, 256, 256)
        assert tile.shape == (256, 256, 3) and tile.std() > 5  # tissue, not blank


def test_tcga_svs_has_two_levels():
    with open_slide(_shared("tcga-cr-7395-01a-01-ts1.svs")) as slide:
        assert slide.dimensions == (4443, 3567)
        assert [(lv.width, lv.height) for lv in slide.levels] == [(4443, 3567), (2221, 1783)]
        assert slide.levels[1].downsample == pytest.approx(2.0, abs=1e-3)
        # The file states no MPP: we say "unknown" rather than guess.
        assert slide.mpp is None
        assert slide.read_region(1, 2000, 1500, 128, 128).shape == (128, 128, 3)


def test_threads_on_a_real_svs():
    with open_slide(_shared("cmu-1-small-region.svs")) as slide:
        assert_threaded_reads_match(slide, n_regions=24)


def test_aperio_style_tiff_written_here(tmp_path):
    path, written = slide_files.write_svs_like(tmp_path / "x.svs", size=(1024, 768), mpp=0.5)
    with open_slide(path) as slide:
        assert isinstance(slide, OpenSlideSlide)
        assert slide.mpp == (0.5, 0.5)
        assert slide.tile_size == (256, 256)
        px = slide.read_region(0, 0, 0, 1024, 768)
        assert np.abs(px.astype(int) - written).mean() < 3  # JPEG
        assert_edge_reads_are_white_outside(slide)


def test_corrupt_tile_raises_on_read_naming_the_file(tmp_path):
    path, _ = slide_files.write_svs_like(tmp_path / "bad.svs")
    slide_files.corrupt_first_tile(path)
    with open_slide(path) as slide:
        with pytest.raises(CorruptSlideError, match="bad.svs"):
            slide.read_region(0, 0, 0, 300, 300)
