"""OME-Zarr (NGFF 0.4 and 0.5) written by ome-zarr-py through `OmeZarrSlide`, and our own
writer (`engine.export.ome_zarr`) read back by ours and by ome-zarr-py's reader."""
import json
import shutil
import tracemalloc

import numpy as np
import pytest

from engine.export.ome_zarr import write_ome_zarr
from engine.slides import CorruptSlideError, SlideError, UnsupportedSlideError, open_slide
from engine.slides.array import ArraySlide
from engine.slides.ome_zarr import OmeZarrSlide
from tests import zstack_files
from tests.slide_files import textured_plane
from tests.engine.slides.checks import (assert_edge_reads_are_white_outside, assert_round_trip,
                                        assert_threaded_reads_match, full_level)


@pytest.fixture(scope="module", params=["0.4", "0.5"])
def rgb_zarr(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp("zarr") / f"rgb-{request.param}.ome.zarr"
    return zstack_files.write_ome_zarr_rgb(folder, n_planes=3, size=(384, 256), dz_um=0.75,
                                           mpp=0.5, n_levels=2, version=request.param)


def test_open_slide_picks_the_ome_zarr_backend(rgb_zarr):
    with open_slide(rgb_zarr[0]) as slide:
        assert isinstance(slide, OmeZarrSlide) and slide.format == "ome-zarr"


def test_every_plane_and_level_round_trips_exactly(rgb_zarr):
    path, expected = rgb_zarr
    with open_slide(path) as slide:
        assert_round_trip(slide, expected)
        assert [lv.downsample for lv in slide.levels] == [1.0, 2.0]
        assert slide.planes_um == (0.0, 0.75, 1.5)
        assert slide.mpp == (0.5, 0.5)
        assert slide.display_range is None and slide.notes == ()


def test_the_folders_own_metadata_file_opens_the_folder(rgb_zarr):
    path, expected = rgb_zarr
    meta = path / (".zattrs" if (path / ".zattrs").exists() else "zarr.json")
    with open_slide(meta) as slide:
        assert isinstance(slide, OmeZarrSlide) and slide.path == str(path)
        assert np.array_equal(full_level(slide, 0, 2), expected[0][2])


def test_edges_are_white_and_threads_agree(rgb_zarr):
    with open_slide(rgb_zarr[0]) as slide:
        assert_edge_reads_are_white_outside(slide, plane=1)
        assert_threaded_reads_match(slide, n_regions=24, size=150)


def test_grey16_gets_one_display_range_for_every_plane(tmp_path):
    path, data = zstack_files.write_ome_zarr_grey16(tmp_path / "g.ome.zarr", n_planes=4, dz_um=2.0)
    with open_slide(path) as slide:
        assert slide.planes_um == (0.0, 2.0, 4.0, 6.0)
        assert slide.mpp == pytest.approx((0.3, 0.3))
        assert any("unit not stated" in n for n in slide.notes)
        lo, hi = slide.display_range
        assert data.min() <= lo < hi <= data.max()
        for z in range(4):
            got = full_level(slide, 0, z)[:, :, 0].astype(int)
            want = np.floor(np.clip((data[z] - lo) * 255.0 / (hi - lo), 0, 255) + 0.5)
            assert np.abs(got - want).max() <= 1, z
        assert slide.info()["display_range"] == [lo, hi]


def test_the_files_omero_window_is_the_display_range(tmp_path):
    path, data = zstack_files.write_ome_zarr_grey16(tmp_path / "w.ome.zarr", version="0.4")
    attrs = json.loads((path / ".zattrs").read_text())
    attrs["omero"] = {"channels": [{"window": {"start": 500, "end": 40000, "min": 0, "max": 65535}}]}
    (path / ".zattrs").write_text(json.dumps(attrs))
    with open_slide(path) as slide:
        assert slide.display_range == (500.0, 40000.0)
        assert "omero" in slide.properties["display.range_source"]


def test_a_missing_chunk_is_one_error_naming_it_and_other_chunks_still_read(tmp_path):
    path, expected = zstack_files.write_ome_zarr_rgb(tmp_path / "m.ome.zarr", version="0.4")
    (path / "s0" / "1" / "1" / "1" / "2").unlink()  # c=1, z=1, chunk row 1, chunk col 2
    with open_slide(path) as slide:
        assert np.array_equal(full_level(slide, 0, 0), expected[0][0])
        assert np.array_equal(slide.read_region(0, 0, 0, 128, 128, 1), expected[0][1][:128, :128])
        with pytest.raises(CorruptSlideError) as err:
            slide.read_region(0, 256, 128, 128, 128, 1)
    msg = str(err.value)
    assert "m.ome.zarr" in msg and "s0/1/1/1/2" in msg and "missing" in msg and "\n" not in msg


def test_a_corrupt_chunk_is_one_error(tmp_path):
    path, _ = zstack_files.write_ome_zarr_rgb(tmp_path / "c.ome.zarr", version="0.5")
    chunk = path / "s0" / "c" / "0" / "0" / "0" / "0"
    chunk.write_bytes(b"\x01garbage" * 5)
    with open_slide(path) as slide:
        with pytest.raises(CorruptSlideError, match="c.ome.zarr"):
            slide.read_region(0, 0, 0, 64, 64, 0)


@pytest.mark.parametrize("damage", ["bad_json", "no_multiscales", "absurd_shape", "absurd_planes",
                                    "absurd_chunk", "missing_level"])
def test_bad_metadata_is_one_error_without_allocating_what_it_claims(tmp_path, damage):
    path, _ = zstack_files.write_ome_zarr_rgb(tmp_path / f"{damage}.ome.zarr", version="0.4")
    zarray = path / "s0" / ".zarray"
    meta = json.loads(zarray.read_text())
    if damage == "bad_json":
        (path / ".zattrs").write_text('{"multiscales": [{"datasets": ')
    elif damage == "no_multiscales":
        (path / ".zattrs").write_text("{}")
    elif damage == "absurd_shape":
        meta["shape"] = [3, 3, 10 ** 9, 10 ** 9]
    elif damage == "absurd_planes":
        meta["shape"] = [3, 10 ** 8, 256, 384]
        zarray1 = path / "s1" / ".zarray"
        m1 = json.loads(zarray1.read_text())
        m1["shape"] = [3, 10 ** 8, 128, 192]
        zarray1.write_text(json.dumps(m1))
    elif damage == "absurd_chunk":
        meta["chunks"] = [3, 3, 60000, 60000]
    elif damage == "missing_level":
        shutil.rmtree(path / "s1")
    zarray.write_text(json.dumps(meta))
    tracemalloc.start()
    try:
        with pytest.raises(SlideError) as err:
            open_slide(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    msg = str(err.value)
    assert str(path) in msg and "\n" not in msg
    assert peak < 64 << 20, f"opening allocated {peak >> 20} MB"
    if damage == "no_multiscales":
        assert isinstance(err.value, UnsupportedSlideError)


# ---------------------------------------------------------------------------- our writer
@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_written_zarr_round_trips_and_ome_zarr_py_reads_it(tmp_path, version):
    planes = [textured_plane(600, 400, i, seed=3) for i in range(3)]
    src = ArraySlide(planes, planes_um=(-1.0, 0.0, 2.5), mpp=(0.25, 0.25), min_size=256)
    out = write_ome_zarr(tmp_path / "out.ome.zarr", src, tile=256, version=version)
    with open_slide(out) as slide:
        assert slide.planes_um == (-1.0, 0.0, 2.5) and slide.mpp == (0.25, 0.25)
        assert slide.level_count == src.level_count
        for level in range(src.level_count):
            for p in range(3):
                assert np.array_equal(full_level(slide, level, p), full_level(src, level, p))
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Reader

    node = next(iter(Reader(parse_url(str(out)))()))
    assert [tuple(d.shape) for d in node.data] == [(3, 3, 400, 600), (3, 3, 200, 300), (3, 3, 100, 150)]
    assert np.array_equal(np.asarray(node.data[0][:, 2]).transpose(1, 2, 0), planes[2])
    assert not (tmp_path / "out.ome.zarr.part").exists()


def test_writer_without_mpp_says_so_and_never_replaces_a_foreign_folder(tmp_path):
    src = ArraySlide([textured_plane(100, 80, 0)], mpp=None)
    out = write_ome_zarr(tmp_path / "n.ome.zarr", src)
    with open_slide(out) as slide:
        assert slide.mpp is None and slide.planes_um == (0.0,)
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError):
        write_ome_zarr(foreign, src)
    assert (foreign / "keep.txt").exists()
