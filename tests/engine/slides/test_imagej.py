"""ImageJ hyperstacks (tifffile ``imagej=True``, and two real Fiji / Micro-Manager stacks)
through `ImageJSlide`."""
import numpy as np
import pytest
import tifffile

from engine.slides import CorruptSlideError, open_slide
from engine.slides.array import box_downsample2
from engine.slides.imagej import ImageJSlide
from tests import zstack_files
from tests.engine.slides.checks import (assert_edge_reads_are_white_outside, full_level,
                                        assert_threaded_reads_match)
from tests.paths import SHARED_DATA

STACKS = SHARED_DATA / "stacks"
BF_34Z = STACKS / "bfautofocus-bf-34z.tif"
EPFL_3Z = STACKS / "epfl-edf-skeleton-3z.tif"


def _window(raw, lo, hi):
    """The display window written out independently of the backend."""
    v = (raw.astype(np.float64) - lo) * 255.0 / (hi - lo)
    return np.floor(np.clip(v, 0, 255) + 0.5).astype(np.uint8)


@pytest.fixture(scope="module")
def rgb_stack(tmp_path_factory):
    return zstack_files.write_imagej_rgb(tmp_path_factory.mktemp("ij") / "rgb.tif", n_planes=4,
                                         size=(1100, 700), spacing=0.5, unit="micron", mpp=0.25)


def test_open_slide_picks_the_imagej_backend_from_the_content(rgb_stack, tmp_path):
    path, _ = rgb_stack
    renamed = tmp_path / "stack.svs"
    renamed.write_bytes(path.read_bytes())
    with open_slide(renamed) as slide:
        assert isinstance(slide, ImageJSlide) and slide.format == "imagej"


def test_every_rgb_plane_is_exact_with_its_z_and_mpp(rgb_stack):
    path, planes = rgb_stack
    with open_slide(path) as slide:
        assert slide.planes_um == (0.0, 0.5, 1.0, 1.5)
        assert slide.mpp == pytest.approx((0.25, 0.25))
        assert slide.display_range is None
        assert slide.properties["imagej.reads"] == "memory-mapped"
        for i, want in enumerate(planes):
            assert np.array_equal(full_level(slide, 0, i), want), i
            assert np.array_equal(full_level(slide, 1, i), box_downsample2(want)), i
        assert [lv.downsample for lv in slide.levels] == [1.0, 2.0, 4.0]


def test_reads_outside_are_white_and_threads_agree(rgb_stack):
    with open_slide(rgb_stack[0]) as slide:
        assert_edge_reads_are_white_outside(slide, plane=3)
        assert_threaded_reads_match(slide, n_regions=24)


@pytest.mark.parametrize("spacing, unit, step", [(250.0, "nm", 0.25), (0.002, "mm", 2.0),
                                                 (0.5, "\\u00B5m", 0.5), (0.5, "micron", 0.5),
                                                 (0.5, "um", 0.5)])
def test_spacing_and_resolution_units_are_converted_to_um(tmp_path, spacing, unit, step):
    path, _ = zstack_files.write_imagej_rgb(tmp_path / "u.tif", n_planes=3, size=(64, 48),
                                            spacing=spacing, unit=unit, mpp=None)
    per_unit = {"nm": 1e-3, "mm": 1e3}.get(unit, 1.0)
    tifffile.imwrite(path, tifffile.imread(path), imagej=True, photometric="rgb",
                     resolution=(per_unit / 0.4, per_unit / 0.4),
                     metadata={"axes": "ZYXS", "spacing": spacing, "unit": unit})
    with open_slide(path) as slide:
        assert slide.planes_um == pytest.approx((0.0, step, 2 * step))
        assert slide.mpp == pytest.approx((0.4, 0.4))
        assert slide.notes == ()


def test_an_unstated_z_step_is_said_not_hidden(tmp_path):
    path, planes = zstack_files.write_imagej_rgb(tmp_path / "nostep.tif", n_planes=3,
                                                 size=(64, 48), spacing=None, unit=None, mpp=None)
    with open_slide(path) as slide:
        assert slide.planes_um == (0.0, 1.0, 2.0)
        assert "z step not stated: planes 1 µm apart assumed" in slide.notes
        assert "not stated" in slide.properties["imagej.z_step"]
        assert slide.mpp is None
        assert np.array_equal(full_level(slide, 0, 2), planes[2])


def test_uint16_with_channels_and_time_reads_the_first_and_names_them(tmp_path):
    path, data = zstack_files.write_imagej_grey16(tmp_path / "tzc.tif", n_planes=5, channels=2,
                                                  frames=3, spacing=250.0, unit="nm", mpp_um=0.2)
    with open_slide(path) as slide:
        assert slide.planes_um == pytest.approx((0.0, 0.25, 0.5, 0.75, 1.0))
        assert slide.mpp == pytest.approx((0.2, 0.2))
        assert any("C (channels): 2, the first read" in n and "T (frames): 3, the first read" in n
                   for n in slide.notes)
        assert "C (channels)" in slide.properties["imagej.other_axes"]
        lo, hi = slide.display_range
        # from the data (no min/max in the file): inside the samples' span, the same for all planes
        assert data.min() <= lo < hi <= data.max()
        assert "percentiles" in slide.properties["display.range_source"]
        for z in range(5):
            got = full_level(slide, 0, z)
            want = _window(data[0, z, 0], lo, hi)
            assert np.abs(got[:, :, 0].astype(int) - want).max() <= 1, z
            assert (got[:, :, 0] == got[:, :, 1]).all()
        info = slide.info()
        assert info["display_range"] == [lo, hi] and info["notes"]


def test_the_files_display_range_is_used_and_stable_across_planes(tmp_path):
    path, data = zstack_files.write_imagej_grey16(tmp_path / "mm.tif", n_planes=4,
                                                  display_min_max=(1000.0, 30000.0))
    with open_slide(path) as slide:
        assert slide.display_range == (1000.0, 30000.0)
        assert slide.properties["display.range"] == "1000 to 30000"
        # one raw value maps to the same grey in every plane (no per-plane stretch)
        v = int(data[0, 0, 0, 10, 10])
        for z in range(4):
            ys, xs = np.nonzero(data[0, z, 0] == v)
            if len(ys):
                px = slide.read_region(0, int(xs[0]), int(ys[0]), 1, 1, z)[0, 0, 0]
                assert px == _window(np.array([v]), 1000.0, 30000.0)[0], z


def test_a_compressed_stack_is_read_page_by_page(tmp_path):
    """zlib pages cannot be memory-mapped: each plane's page is read by its strips; damage in
    one plane's page does not stop the others (the whole stack is never decoded)."""
    path, planes = zstack_files.write_imagej_rgb(tmp_path / "z.tif", n_planes=3, size=(200, 120),
                                                 compression="zlib")
    with tifffile.TiffFile(path) as tif:
        offset = tif.pages[2].dataoffsets[0]
    with open(path, "r+b") as fh:
        fh.seek(offset)
        fh.write(b"\x00" * 16)
    with open_slide(path) as slide:
        assert slide.properties["imagej.reads"] == "per page"
        for i in (0, 1):
            assert np.array_equal(full_level(slide, 0, i), planes[i])
        with pytest.raises(CorruptSlideError, match="z.tif"):
            slide.read_region(0, 0, 0, 200, 120, 2)


def test_a_truncated_stack_is_one_error_naming_the_file(rgb_stack, tmp_path):
    data = rgb_stack[0].read_bytes()
    cut = tmp_path / "cut.tif"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptSlideError) as err:
        open_slide(cut)
    assert "cut.tif" in str(err.value) and "\n" not in str(err.value)


# ---------------------------------------------------------------------------- real stacks
def _need(path):
    if not path.exists():
        pytest.skip(f"real stack {path} is absent (../shared/data/stacks not laid beside the repo)")


def test_real_micro_manager_stack_opens_all_34_planes():
    _need(BF_34Z)
    raw = tifffile.imread(BF_34Z)
    with open_slide(BF_34Z) as slide:
        assert slide.format == "imagej" and slide.plane_count == 34
        assert slide.planes_um == pytest.approx(tuple(0.3 * i for i in range(34)))
        assert slide.mpp == pytest.approx((0.1065, 0.1065), rel=1e-3)
        assert slide.dimensions == (55, 116)
        assert slide.display_range == (78.0, 5109.0)
        for z in (0, 17, 33):
            got = full_level(slide, 0, z)
            assert np.abs(got[:, :, 0].astype(int) - _window(raw[z], 78.0, 5109.0)).max() <= 1
        assert not np.array_equal(full_level(slide, 0, 0), full_level(slide, 0, 33))


def test_real_rgb_stack_opens_its_3_planes_exactly_and_says_the_step_is_unknown():
    _need(EPFL_3Z)
    raw = tifffile.imread(EPFL_3Z)
    with open_slide(EPFL_3Z) as slide:
        assert slide.plane_count == 3 and slide.planes_um == (0.0, 1.0, 2.0)
        assert "z step not stated: planes 1 µm apart assumed" in slide.notes
        for z in range(3):
            assert np.array_equal(full_level(slide, 0, z), raw[z]), z
