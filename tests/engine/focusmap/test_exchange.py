"""Focus maps to and from other tools: a float32 TIFF of the cells (exact, its geometry in the
tags) and QuPath GeoJSON (one annotation per depth, outlines with holes in level-0 px, depths
within half the quantisation step); an exported and re-imported map renders the same view; a
damaged or hostile file is one line naming it and the reason, found in bounded time and memory."""
import json
import math
import time
import tracemalloc

import numpy as np
import pytest
import tifffile
import torch

from engine.focusmap import FocusMap, FocusMapError
from engine.focusmap.exchange import export_focus_map, import_focus_map
from engine.focusmap.geojson import (MAX_GEOJSON_BYTES, MAX_VERTICES, focus_class_name, read_geojson,
                                     to_geojson, write_geojson)
from engine.focusmap.tiff import read_tiff, write_tiff

SIZE = (700, 600)


def painted_map(default_um=0.25) -> FocusMap:
    """Two hard discs at −0.6 µm, a soft dab at +0.77 µm, and a hole erased in the first disc."""
    fm = FocusMap(*SIZE, default_um=default_um)
    fm.paint([(200, 300), (380, 300)], radius=130, z_um=-0.6, hardness=1.0)
    fm.paint([(560, 120)], radius=110, z_um=0.77, hardness=0.2)
    fm.erase([(200, 300)], radius=40)
    return fm


def test_a_tiff_reopens_bit_for_bit_with_its_geometry_in_the_tags(tmp_path):
    fm = painted_map()
    path = write_tiff(fm, tmp_path / "map.tiff", mpp=(0.25, 0.5))
    with tifffile.TiffFile(path) as tf:
        page = tf.pages[0]
        assert page.shape == fm.shape and page.dtype == np.float32
        desc = json.loads(page.description)
        assert (desc["width"], desc["height"], desc["stride"], desc["default_um"]) == (700, 600, 32, 0.25)
        x_res = page.tags["XResolution"].value
        y_res = page.tags["YResolution"].value
        assert page.tags["ResolutionUnit"].value == 3                        # centimetre
        assert x_res[0] / x_res[1] == pytest.approx(1e4 / (32 * 0.25))      # one pixel = one 8 µm cell
        assert y_res[0] / y_res[1] == pytest.approx(1e4 / (32 * 0.5))
        assert np.isnan(page.asarray()[0, 0])                               # unpainted = NaN
    back = read_tiff(path, SIZE)
    assert back.digest == fm.digest and back.stride == 32 and back.default_um == 0.25
    np.testing.assert_array_equal(back.values, fm.values)


def test_a_foreign_tiff_of_the_cell_grid_is_taken_at_the_stride_it_fits(tmp_path):
    fm = FocusMap(*SIZE, stride=16)
    fm.paint([(300, 300)], radius=100, z_um=1.5)
    tifffile.imwrite(tmp_path / "plain.tif", fm.values.astype(np.float64))   # no description
    back = read_tiff(tmp_path / "plain.tif", SIZE)
    assert back.stride == 16 and back.default_um == 0.0
    np.testing.assert_array_equal(back.values, fm.values)


def test_geojson_keeps_the_painted_cells_and_each_depth_within_half_a_step(tmp_path):
    fm = painted_map()
    summary = write_geojson(fm, tmp_path / "map.geojson", step_um=0.05)
    back = read_geojson(tmp_path / "map.geojson", SIZE)
    np.testing.assert_array_equal(back.painted, fm.painted)
    diff = np.abs(back.values[fm.painted] - fm.values[fm.painted])
    assert diff.max() <= 0.025 + 1e-6 and diff.max() > 0          # the soft dab was quantised
    hard = np.isclose(fm.values, -0.6)
    np.testing.assert_array_equal(back.values[hard], fm.values[hard])   # multiples of the step: exact
    assert (back.stride, back.default_um) == (32, 0.25)
    assert summary.features == len(np.unique(np.round(fm.values[fm.painted] / 0.05)))


def test_geojson_is_what_qupath_reads_one_annotation_per_depth_with_holes_in_level0_px():
    fm = FocusMap(*SIZE, default_um=0.0)
    fm.values[2:10, 3:12] = 1.25                        # a ring of 1.25 µm around a hole…
    fm.values[4:7, 5:9] = np.nan
    fm.values[12, 0] = fm.values[13, 1] = -0.5          # …and two cells meeting at a corner
    fm.values[18, 21] = 2.0                              # the clipped bottom-right cell
    doc = to_geojson(fm, planes_um=[-1.0, 0.0, 1.0, 2.0])
    assert doc["type"] == "FeatureCollection" and len(doc["features"]) == 3
    by_z = {f["properties"]["focus_um"]: f for f in doc["features"]}
    ring = by_z[1.25]
    props = ring["properties"]
    assert props["objectType"] == "annotation" and props["measurements"] == {"focus_um": 1.25}
    assert props["classification"]["name"] == "Focus +1.25 µm" == focus_class_name(1.25)
    assert len(props["classification"]["color"]) == 3
    assert ring["geometry"]["type"] == "Polygon" and ring["geometry"]["plane"] == {"c": -1, "z": 2, "t": 0}
    shell, hole = ring["geometry"]["coordinates"]
    assert sorted(map(tuple, shell[:-1])) == [(96, 64), (96, 320), (384, 64), (384, 320)]
    assert sorted(map(tuple, hole[:-1])) == [(160, 128), (160, 224), (288, 128), (288, 224)]
    area = lambda r: sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(r[:-1], r[1:])) / 2
    assert area(shell) > 0 > area(hole)                  # RFC 7946: exterior CCW, holes CW
    corner = by_z[-0.5]["geometry"]
    assert corner["type"] == "MultiPolygon" and len(corner["coordinates"]) == 2
    assert by_z[-0.5]["geometry"]["plane"]["z"] == 0
    edge = by_z[2.0]["geometry"]["coordinates"][0]
    assert max(x for x, _ in edge) == 700 and max(y for _, y in edge) == 600   # clipped to the slide


def test_random_grids_with_saddles_and_partial_cells_round_trip_exactly(tmp_path):
    rng = np.random.default_rng(7)
    for _ in range(25):
        W, H = int(rng.integers(1, 120)), int(rng.integers(1, 120))
        fm = FocusMap(W, H, stride=int(rng.choice([1, 5, 16, 32])))
        fm.values[:] = rng.choice([np.nan, -0.5, 0.0, 1.25], size=fm.shape, p=[0.4, 0.2, 0.2, 0.2])
        path = tmp_path / "grid.geojson"
        path.write_text(json.dumps(to_geojson(fm)))
        np.testing.assert_array_equal(read_geojson(path, (W, H)).values, fm.values)


def test_annotations_qupath_exports_again_read_back(tmp_path):
    """QuPath drops foreign members and unknown properties but keeps measurements and classes;
    its older versions wrote a bare list of Features and measurements as a list."""
    fm = FocusMap(*SIZE)
    fm.paint([(300, 300)], radius=150, z_um=-1.2, hardness=1.0)
    fm.paint([(600, 100)], radius=80, z_um=0.4, hardness=1.0)
    features = to_geojson(fm)["features"]
    for f in features:
        z = f["properties"].pop("focus_um")
        if z < 0:
            f["properties"].pop("measurements")                       # only the class is left
        else:
            f["properties"]["measurements"] = [{"name": "focus_um", "value": z}]
    features.append({"type": "Feature", "geometry": {"type": "Point", "coordinates": [5, 5]},
                     "properties": {"objectType": "annotation", "classification": {"name": "Tumor"}}})
    (tmp_path / "qupath.geojson").write_text(json.dumps(features))
    back = read_geojson(tmp_path / "qupath.geojson", SIZE)
    np.testing.assert_array_equal(back.values, fm.values)


@pytest.fixture(scope="module")
def small_base():
    """Three captured planes (−1, 0, +1 µm) of a 300 × 260 px phantom region with tissue: one block."""
    from engine.phantom import PhantomSlide
    from engine.slides.array import ArraySlide

    phantom = PhantomSlide(seed=5, size=(2048, 2048), planes=3)
    planes = [phantom.read_region(0, 1440, 400, 300, 260, i) for i in range(3)]
    assert planes[1].std() > 20
    return ArraySlide(planes, planes_um=list(phantom.planes_um), mpp=(0.25, 0.25))


def test_a_map_exported_and_imported_renders_the_same_view(small_base, tmp_path):
    from engine.refocus.focus_mapped_slide import FocusMappedSlide
    from engine.refocus.refocused_slide import RadianceCache

    size = small_base.dimensions
    fm = FocusMap(*size, default_um=1.0)
    fm.paint([(150, 130)], radius=200, z_um=-1.0, hardness=1.0)
    fm.erase([(40, 40)], radius=40)
    fm.paint([(240, 60)], radius=50, z_um=0.55, hardness=1.0)
    cache = RadianceCache(dtype=torch.float32)
    view = lambda m: FocusMappedSlide(small_base, m, cache=cache).read_region(0, 0, 0, *size)
    want = view(fm)
    export_focus_map(fm, tmp_path / "map.tiff", mpp=small_base.mpp)
    np.testing.assert_array_equal(view(import_focus_map(tmp_path / "map.tiff", size)), want)   # exact
    # GeoJSON: the view of the map with its depths at the nearest 0.05 µm, which here differ
    # from the painted ones by float32 rounding only (old + (z − old) in the brush)
    export_focus_map(fm, tmp_path / "map.geojson", planes_um=small_base.planes_um, mpp=small_base.mpp)
    got = view(import_focus_map(tmp_path / "map.geojson", size))
    snapped = FocusMap(*size, default_um=1.0)
    snapped.values[:] = (np.round(fm.values.astype(np.float64) / 0.05) * 0.05).astype(np.float32)
    np.testing.assert_array_equal(got, view(snapped))
    assert np.abs(got.astype(int) - want).max() <= 1
    unmapped = FocusMappedSlide(small_base, FocusMap(*size, default_um=1.0), cache=cache).read_region(0, 0, 0, *size)
    assert np.abs(unmapped.astype(int) - want)[150:, 150:].mean() > 2    # the map does change the view


# ---------------------------------------------------------------------------- hostile files
def _feature(coords, z=1.0, kind="Polygon"):
    return {"type": "Feature", "geometry": {"type": kind, "coordinates": coords},
            "properties": {"focus_um": z}}


SQUARE = [[[10, 10], [100, 10], [100, 100], [10, 100], [10, 10]]]
HOSTILE = {
    "not JSON": (b"{\"type\": \"FeatureCollection\", \"features\": [", "not valid JSON"),
    "NaN literal": (b'{"type":"Feature","geometry":{"type":"Polygon","coordinates":[[[0,0],[NaN,1],[1,1],[0,0]]]},'
                    b'"properties":{"focus_um":1}}', "not valid JSON"),
    "infinite number": (json.dumps(_feature(SQUARE, z=1)).replace('"focus_um": 1', '"focus_um": 1e999').encode(),
                        "finite"),
    "string coordinates": (json.dumps(_feature([[["10", "10"], ["100", "10"], ["100", "100"], ["10", "10"]]])).encode(),
                           "[x, y] number"),
    "ragged coordinates": (json.dumps(_feature([[[10, 10], [100], [100, 100], [10, 10]]])).encode(), "[x, y] numbers"),
    "focus as text": (json.dumps({**_feature(SQUARE), "properties": {"focus_um": "deep"}}).encode(),
                      "focus_um must be a number"),
    "absurd focus": (json.dumps(_feature(SQUARE, z=5e6)).encode(), "beyond ±1000 µm"),
    "absurd coordinates": (json.dumps(_feature([[[0, 0], [1e300, 0], [1e300, 1e300], [0, 0]]])).encode(),
                           "far outside the 700 × 600 px slide"),
    "a line for a region": (json.dumps(_feature([[0, 0], [50, 50]], kind="LineString")).encode(),
                            "Polygon or MultiPolygon"),
    "features not a list": (b'{"type":"FeatureCollection","features":{"a":1}}', "'features' must be a list"),
    "another slide's size": (json.dumps({"type": "FeatureCollection", "features": [_feature(SQUARE)],
                                         "finefocus": {"width": 800, "height": 600, "stride": 32}}).encode(),
                             "made for a 800 × 600 px slide, this one is 700 × 600 px"),
    "absurd stride": (json.dumps({"type": "FeatureCollection", "features": [_feature(SQUARE)],
                                  "finefocus": {"width": 700, "height": 600, "stride": 10**9}}).encode(), "stride"),
    "nothing to paint": (json.dumps({"type": "FeatureCollection", "features": []}).encode(), "no focus regions"),
    "deep nesting": (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    "a number too long": (b'{"type":"Feature","properties":{"focus_um":' + b"9" * 10_000 + b"}}", "not valid JSON"),
    "binary junk": (bytes(range(256)) * 40, "not valid JSON"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_damaged_or_hostile_geojson_is_one_line_naming_the_file_and_the_reason(name, tmp_path):
    data, reason = HOSTILE[name]
    path = tmp_path / "bad.geojson"
    path.write_bytes(data)
    with pytest.raises(FocusMapError) as err:
        read_geojson(path, SIZE)
    msg = str(err.value)
    assert msg.startswith(f"{path}: ") and reason in msg and "\n" not in msg, msg


def _timed(fn):
    """(seconds, peak bytes allocated) of ``fn()``: timed untraced, then run again under tracemalloc."""
    t = time.perf_counter()
    fn()
    elapsed = time.perf_counter() - t
    tracemalloc.start()
    try:
        fn()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return elapsed, peak


def test_five_million_vertices_are_refused_before_parsing_in_bounded_time_and_memory(tmp_path):
    path = tmp_path / "huge.geojson"
    ring = b"[" + b",".join([b"[1,1]"] * 5_000_000) + b"]"
    path.write_bytes(b'{"type":"Feature","properties":{"focus_um":1},"geometry":{"type":"Polygon","coordinates":['
                     + ring + b"]}}")
    assert path.stat().st_size < MAX_GEOJSON_BYTES                      # the size alone lets it through
    elapsed, peak = _timed(lambda: pytest.raises(FocusMapError, read_geojson, path, SIZE))
    with pytest.raises(FocusMapError, match=f"more than {MAX_VERTICES:,} vertices") as err:
        read_geojson(path, SIZE)
    assert str(path) in str(err.value)
    assert elapsed < 1.0 and peak < 1.2 * path.stat().st_size, (elapsed, peak)   # the bytes, no objects


def test_a_huge_file_is_refused_by_its_size_before_it_is_read(tmp_path):
    for name, reader in (("huge.geojson", read_geojson), ("huge.tiff", read_tiff)):
        path = tmp_path / name
        if name.endswith("tiff"):
            write_tiff(painted_map(), path)                              # a real header…
        else:
            path.write_bytes(b'{"type": "FeatureCollection", "features": [')
        with open(path, "r+b") as f:
            f.truncate(8 * 2**30)                                        # …then 8 GiB, sparse: no disk used
        elapsed, peak = _timed(lambda: pytest.raises(FocusMapError, reader, path, SIZE))
        with pytest.raises(FocusMapError, match="too large|more than") as err:
            reader(path, SIZE)
        assert str(path) in str(err.value) and elapsed < 1.0 and peak < 16 * 2**20, (name, elapsed, peak)


def test_overlapping_regions_beyond_the_fill_budget_are_refused(tmp_path):
    whole = [[[0, 0], [700, 0], [700, 600], [0, 600], [0, 0]]]
    doc = {"type": "FeatureCollection", "features": [_feature(whole, z=i * 0.01) for i in range(3_000)]}
    (tmp_path / "overlap.geojson").write_text(json.dumps(doc))
    elapsed, _ = _timed(lambda: pytest.raises(FocusMapError, read_geojson, tmp_path / "overlap.geojson", SIZE))
    with pytest.raises(FocusMapError, match="overlap too much"):
        read_geojson(tmp_path / "overlap.geojson", SIZE)
    assert elapsed < 3.0, elapsed


def _tiff(path, array, **kw):
    tifffile.imwrite(path, array, **kw)
    return path


@pytest.mark.parametrize("name, make, reason", [
    ("another slide's size", lambda p: write_tiff(painted_map(), p), "made for a 700 × 600 px slide, this one is 640 × 600 px"),
    ("no grid fits", lambda p: _tiff(p, np.zeros((7, 20), np.float32)), "do not match the cell grid"),
    ("integers", lambda p: _tiff(p, np.zeros((19, 20), np.uint16)), "floating-point µm"),
    ("RGB", lambda p: _tiff(p, np.zeros((19, 20, 3), np.float32), photometric="rgb"), "one sample per pixel"),
    ("inf", lambda p: _tiff(p, np.full((19, 20), np.inf, np.float32)), "inf is no depth"),
    ("absurd depths", lambda p: _tiff(p, np.full((19, 20), 1e30, np.float32)), "beyond ±1000 µm"),
    ("junk", lambda p: p.write_bytes(b"II*\x00" + bytes(range(256)) * 4), "TIFF"),
    ("truncated", lambda p: p.write_bytes(write_tiff(FocusMap(640, 600), p).read_bytes()[:600]), "not a readable TIFF"),
    ("not a TIFF", lambda p: p.write_bytes(b"GIF89a" + b"\0" * 100), "not a readable TIFF"),
])
def test_a_damaged_or_foreign_tiff_is_one_line(name, make, reason, tmp_path):
    path = tmp_path / "bad.tiff"
    make(path)
    with pytest.raises(FocusMapError) as err:
        read_tiff(path, (640, 600))
    msg = str(err.value)
    assert msg.startswith(f"{path}: ") and reason in msg and "\n" not in msg, msg


def test_a_tiff_header_claiming_a_huge_image_is_refused_before_decoding(tmp_path):
    """A 100 000 × 100 000 float32 image declared in a few hundred bytes: its shape does not fit
    the slide, so no pixel is decoded."""
    import struct

    tags = [(256, 4, 100_000), (257, 4, 100_000), (258, 3, 32), (259, 3, 8), (262, 3, 1), (273, 4, 8),
            (277, 3, 1), (278, 4, 100_000), (279, 4, 100), (339, 3, 3)]      # one deflated strip of 100 B
    ifd = struct.pack("<H", len(tags)) + b"".join(
        struct.pack("<HHI", tag, kind, 1) + (struct.pack("<HH", v, 0) if kind == 3 else struct.pack("<I", v))
        for tag, kind, v in tags) + struct.pack("<I", 0)
    path = tmp_path / "bomb.tiff"
    path.write_bytes(struct.pack("<2sHI", b"II", 42, 108) + b"\0" * 100 + ifd)
    elapsed, peak = _timed(lambda: pytest.raises(FocusMapError, read_tiff, path, SIZE))
    with pytest.raises(FocusMapError, match="do not match the cell grid"):
        read_tiff(path, SIZE)
    assert elapsed < 2.0 and peak < 64 * 2**20, (elapsed, peak)


def test_export_refuses_what_could_not_be_read_back(tmp_path):
    fm = FocusMap(1200, 1200, stride=1)
    fm.values[:] = np.random.default_rng(0).choice([0.0, 0.5], size=fm.shape)    # a checkerboard-like noise
    with pytest.raises(FocusMapError, match="use a coarser step or a TIFF"):
        write_geojson(fm, tmp_path / "noise.geojson")
    assert not list(tmp_path.iterdir())                                 # nothing half-written


def test_replace_takes_an_imported_map_as_one_undo_step():
    fm = painted_map()
    before = fm.values.copy()
    other = FocusMap(*SIZE)
    other.paint([(100, 100)], radius=60, z_um=2.0)
    fm.replace(other)
    np.testing.assert_array_equal(fm.values, other.values)
    assert fm.undo()
    np.testing.assert_array_equal(fm.values, before)
    with pytest.raises(ValueError, match="cannot replace"):
        fm.replace(FocusMap(10, 10))
