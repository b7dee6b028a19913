"""Whole-slide exports (`engine.export.whole_slide`) of a small real z-stack (tifffile's ImageJ
writer) read back with tifffile and our reader: levels, µm per px, tile values equal to the
computed view's, and an interrupted export resumed to the same pixels with fewer tiles computed."""
import json

import numpy as np
import ome_types
import pytest
import tifffile

from engine.export.all_in_focus import all_in_focus_region
from engine.export.whole_slide import (ExportError, ExportInterrupted, _nan_downsample2, export_all_in_focus,
                                       export_depth_map, export_refocused, partial_paths)
from engine.refocus.focus_mapped_slide import FocusMappedSlide
from engine.refocus.refocused_slide import RefocusedSlide
from engine.slides import open_slide
from engine.slides.array import ArraySlide
from tests import slide_files
from tests.zstack_files import write_imagej_rgb

SIZE = (384, 256)
TILE = 128
Z = 0.3          # between the stack's planes: refocused by the model


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    path, _ = write_imagej_rgb(tmp_path_factory.mktemp("stack") / "stack.tif", n_planes=4, size=SIZE)
    with open_slide(path) as slide:
        yield slide


@pytest.fixture(scope="module")
def refocused(stack, tmp_path_factory):
    """An uninterrupted refocus export of the whole stack."""
    out = tmp_path_factory.mktemp("full") / "refocused.ome.tiff"
    return export_refocused(stack, out, z_um=Z, tile=TILE)


def _levels(path):
    with tifffile.TiffFile(path) as tif:
        return [np.squeeze(lv.asarray()) for lv in tif.series[0].levels]


def test_a_refocus_export_is_a_pyramidal_ome_tiff_of_the_refocused_view(stack, refocused):
    assert refocused.computed == 6 and refocused.reused == 0 and refocused.levels == 3
    assert not partial_paths(refocused.path)[0].exists() and not partial_paths(refocused.path)[1].exists()
    with tifffile.TiffFile(refocused.path) as tif:
        page = tif.pages[0]
        assert page.is_tiled and (page.tilewidth, page.tilelength) == (TILE, TILE)
        assert len(page.subifds) == 2 and len(tif.pages) == 1
        pixels = ome_types.from_xml(tif.ome_metadata, validate=True).images[0].pixels
    assert pixels.physical_size_x == 0.25 and pixels.physical_size_y == 0.25
    assert [p.position_z for p in pixels.planes] == [Z]
    level0, level1, _ = _levels(refocused.path)
    view = RefocusedSlide(stack, Z)
    assert view.decodes
    assert np.array_equal(level0, view.read_region(0, 0, 0, *SIZE))
    for x, y in ((0, 0), (256, 128), (128, 0)):                  # tile by tile, as a viewer reads them
        assert np.array_equal(level0[y:y + TILE, x:x + TILE], view.read_region(0, x, y, TILE, TILE))
    # the coarser level is the 2×2 box pyramid of the exported pixels (refocused too)
    assert np.array_equal(level1, ArraySlide([level0], min_size=128).read_region(1, 0, 0, 192, 128))
    with open_slide(refocused.path) as back:                     # our reader reopens it, µm/px kept
        assert back.mpp == (0.25, 0.25) and back.planes_um == (0.0,) and back.level_count == 3   # one plane sits at 0
        assert np.array_equal(back.read_region(0, 0, 0, *SIZE), level0)


def test_a_region_on_a_captured_plane_is_that_plane(stack, tmp_path):
    region = (37, 21, 300, 200)
    z = stack.planes_um[1]
    result = export_refocused(stack, tmp_path / "plane.ome.tiff", z_um=z, region=region, tile=TILE)
    assert result.size == (300, 200) and "captured plane" in result.what
    assert np.array_equal(_levels(result.path)[0], stack.read_region(0, *region, 1))


def test_an_interrupted_export_resumes_to_the_same_pixels_computing_only_the_rest(stack, refocused, tmp_path):
    out = tmp_path / "resumed.ome.tiff"
    seen = []
    with pytest.raises(ExportInterrupted) as info:
        export_refocused(stack, out, z_um=Z, tile=TILE, progress=lambda *a: seen.append(a),
                         cancelled=lambda: sum(stage == "tiles" for stage, _, _ in seen) > 2)
    assert (info.value.stage, info.value.done, info.value.total) == ("tiles", 2, 6)
    data, sidecar = partial_paths(out)
    assert not out.exists() and not out.with_name(out.name + ".part").exists()
    assert data.exists() and sorted(json.loads(sidecar.read_text())["tiles"]) == ["0/0/0", "0/0/1"]
    with pytest.raises(ExportError, match="resume it"):        # not resumed: refused, the partial kept
        export_refocused(stack, out, z_um=Z, tile=TILE)
    with pytest.raises(ExportError, match="z_um"):              # another export's partial: refused
        export_refocused(stack, out, z_um=Z + 0.1, tile=TILE, resume=True)
    result = export_refocused(stack, out, z_um=Z, tile=TILE, resume=True)
    assert (result.computed, result.reused) == (4, 2)
    assert not data.exists() and not sidecar.exists()
    for a, b in zip(_levels(out), _levels(refocused.path)):
        assert np.array_equal(a, b)


def test_an_all_in_focus_export_is_the_all_in_focus_view(stack, tmp_path):
    result = export_all_in_focus(stack, tmp_path / "aif.ome.tiff", tile=TILE)
    level0 = _levels(result.path)[0]
    mapped = FocusMappedSlide(stack, result.focus_map)
    assert np.array_equal(level0, mapped.read_region(0, 0, 0, *SIZE))
    # one depth chunk: the same pixels as the region's all-in-focus snapshot
    assert np.array_equal(level0, all_in_focus_region(stack, (0, 0, *SIZE)).pixels)
    assert result.what.startswith("all in focus")


def test_a_depth_map_export_is_float32_microns_per_cell_and_resumes_by_chunk(stack, tmp_path):
    full = export_depth_map(stack, tmp_path / "depth.ome.tiff", tile=TILE, depth_chunk=256)
    depth = _levels(full.path)[0]
    assert depth.dtype == np.float32 and depth.shape == (8, 12)            # 32-px cells of 384 × 256
    assert np.array_equal(depth, full.focus_map.values, equal_nan=True)
    assert np.isfinite(depth).any() and full.computed == 2
    with tifffile.TiffFile(full.path) as tif:
        pixels = ome_types.from_xml(tif.ome_metadata, validate=True).images[0].pixels
        assert pixels.physical_size_x == 8.0 and pixels.type.value == "float"
    with open_slide(full.path) as back:
        assert back.mpp == (8.0, 8.0) and back.dimensions == (12, 8)
    out = tmp_path / "again.ome.tiff"
    seen = []
    with pytest.raises(ExportInterrupted):
        export_depth_map(stack, out, tile=TILE, depth_chunk=256, progress=lambda *a: seen.append(a),
                         cancelled=lambda: ("depth", 1, 2) in seen)
    resumed = export_depth_map(stack, out, tile=TILE, depth_chunk=256, resume=True)
    assert (resumed.computed, resumed.reused) == (1, 1)
    assert np.array_equal(_levels(out)[0], depth, equal_nan=True)


def test_single_plane_slides_refocus_but_have_no_best_focus(tmp_path):
    slide = ArraySlide([slide_files.textured_plane(160, 96, 0)], mpp=(0.25, 0.25), path="flat.png")
    for export in (export_all_in_focus, export_depth_map):
        with pytest.raises(ExportError, match="flat.png.*1 focal plane"):
            export(slide, tmp_path / "x.ome.tiff")
    result = export_refocused(slide, tmp_path / "flat.ome.tiff", z_um=1.0, tile=64)
    assert np.array_equal(_levels(result.path)[0], RefocusedSlide(slide, 1.0).read_region(0, 0, 0, 160, 96))


def test_bad_requests_name_the_file(stack, tmp_path):
    with pytest.raises(ExportError, match="outside"):
        export_refocused(stack, tmp_path / "x.ome.tiff", z_um=0.0, region=(5000, 0, 10, 10))
    with pytest.raises(ExportError, match="multiple of 16"):
        export_refocused(stack, tmp_path / "x.ome.tiff", z_um=0.0, tile=100)
    with pytest.raises(ExportError, match="missing.*does not exist"):
        export_refocused(stack, tmp_path / "missing" / "x.ome.tiff", z_um=0.0)
    with pytest.raises(ExportError, match="jpeg"):
        export_depth_map(stack, tmp_path / "d.ome.tiff", compression="jpeg")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_nan_aware_downsampling_keeps_glass_unknown():
    img = np.array([[1, 3, np.nan], [np.nan, 2, np.nan], [4, 4, np.nan]], np.float32)
    out = _nan_downsample2(img)
    assert out.shape == (2, 2)
    assert out[0, 0] == 2 and np.isnan(out[0, 1]) and out[1, 0] == 4 and np.isnan(out[1, 1])
