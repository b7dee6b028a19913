"""`finefocus focusmap export` and `finefocus focusmap import` through the engine's CLI: a map
exported and imported for its slide is the same map (TIFF exactly, GeoJSON within the step); a
file for another slide, a damaged file or a wrong option is one line naming the file and the
reason, exit 2, and the map already at --out is left as it was."""
import json

import numpy as np
import pytest

from engine.cli import main
from engine.focusmap import FocusMap
from tests.cli import one_error_line


@pytest.fixture
def painted(ome_zstack, tmp_path):
    """A map of the OME z-stack (1536 × 1024 px), saved to MAP.npz."""
    fm = FocusMap(1536, 1024, default_um=0.2)
    fm.paint([(300, 300), (700, 400)], radius=200, z_um=-0.6, hardness=1.0)
    fm.paint([(1200, 700)], radius=150, z_um=0.83, hardness=0.3)
    fm.erase([(300, 300)], radius=60)
    path = fm.save(tmp_path / "map.npz")
    return fm, path


def test_tiff_export_and_import_give_back_the_same_map(ome_zstack, painted, tmp_path, capsys):
    fm, path = painted
    slide = str(ome_zstack[0])
    assert main(["focusmap", "export", str(path), "--tiff", str(tmp_path / "m.tiff"), "--slide", slide]) == 0
    assert "48 × 32 cells of 32 px" in capsys.readouterr().err
    assert main(["focusmap", "import", str(tmp_path / "m.tiff"), "--slide", slide, "--out", str(tmp_path / "b.npz")]) == 0
    assert "painted" in capsys.readouterr().err
    assert FocusMap.load(tmp_path / "b.npz").digest == fm.digest


def test_geojson_export_and_import_keep_the_cells_and_depths_within_the_step(ome_zstack, painted, tmp_path, capsys):
    fm, path = painted
    slide = str(ome_zstack[0])
    out = tmp_path / "m.geojson"
    assert main(["focusmap", "export", str(path), "--geojson", str(out), "--step", "0.1", "--slide", slide]) == 0
    assert "annotations of equal depth (step 0.1 µm)" in capsys.readouterr().err
    doc = json.loads(out.read_text())
    assert doc["finefocus"]["mpp"] == [0.25, 0.25]
    assert {f["geometry"]["plane"]["z"] for f in doc["features"]} <= {0, 1, 2}
    assert all(f["properties"]["classification"]["name"].startswith("Focus ") for f in doc["features"])
    assert main(["focusmap", "import", str(out), "--slide", slide, "--out", str(tmp_path / "g.npz")]) == 0
    back = FocusMap.load(tmp_path / "g.npz")
    np.testing.assert_array_equal(back.painted, fm.painted)
    assert np.abs(back.values - fm.values)[fm.painted].max() <= 0.05 + 1e-6
    assert back.default_um == 0.2


def test_a_file_for_another_slide_is_refused_and_the_existing_map_kept(ome_zstack, tmp_path, capsys):
    other = FocusMap(1000, 1000)
    other.paint([(500, 500)], radius=100, z_um=1.0)
    other.save(tmp_path / "other.npz")
    assert main(["focusmap", "export", str(tmp_path / "other.npz"), "--geojson", str(tmp_path / "o.geojson")]) == 0
    assert main(["focusmap", "export", str(tmp_path / "other.npz"), "--tiff", str(tmp_path / "o.tiff")]) == 0
    capsys.readouterr()
    keep = FocusMap(1536, 1024)
    keep.paint([(100, 100)], radius=80, z_um=-1.0)
    kept = keep.save(tmp_path / "kept.npz").read_bytes()
    for name in ("o.geojson", "o.tiff"):
        assert main(["focusmap", "import", str(tmp_path / name), "--slide", str(ome_zstack[0]),
                     "--out", str(tmp_path / "kept.npz")]) == 2
        one_error_line(capsys, name, "made for a 1000 × 1000 px slide, this one is 1536 × 1024 px")
    assert (tmp_path / "kept.npz").read_bytes() == kept
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept.npz", "o.geojson", "o.tiff", "other.npz"]


@pytest.mark.parametrize("content, words", [
    (b'{"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": ', ["not valid JSON"]),
    (b'{"type": "Feature", "properties": {"focus_um": "x"}, "geometry": null}', ["focus_um must be a number"]),
    (b'[1, 2, 3]', ["feature 0: must be an object"]),
])
def test_a_damaged_geojson_is_one_line_and_writes_nothing(ome_zstack, tmp_path, capsys, content, words):
    bad = tmp_path / "bad.geojson"
    bad.write_bytes(content)
    assert main(["focusmap", "import", str(bad), "--slide", str(ome_zstack[0]), "--out", str(tmp_path / "m.npz")]) == 2
    one_error_line(capsys, str(bad), *words)
    assert not (tmp_path / "m.npz").exists()


@pytest.mark.parametrize("argv, words", [
    (["export", "{map}", "--tiff", "{tmp}/m.png"], ["--tiff must name a .tif or .tiff file"]),
    (["export", "{map}", "--tiff", "{tmp}/m.tiff", "--step", "0.1"], ["--step goes with --geojson"]),
    (["export", "{map}", "--geojson", "{tmp}/nowhere/m.geojson"], ["does not exist"]),
    (["export", "{tmp}/missing.npz", "--tiff", "{tmp}/m.tiff"], ["missing.npz", "no such file"]),
    (["export", "{map}", "--geojson", "{tmp}/m.geojson", "--step", "0"], ["m.geojson", "step must be between"]),
    (["import", "{tmp}/m.shp", "--slide", "{slide}", "--out", "{tmp}/m.npz"], ["m.shp", ".geojson, .tif(f) or .npz"]),
    (["import", "{map}", "--slide", "{slide}", "--out", "{tmp}/b.npz"], ["already a FineFocus focus map"]),
    (["import", "{tmp}/x.tiff", "--slide", "{slide}", "--out", "{tmp}/b.tif"], ["--out must name a .npz file"]),
    (["import", "{tmp}/x.tiff", "--slide", "{slide}", "--out", "{tmp}/b.npz", "--stride", "0"], ["--stride must be"]),
])
def test_wrong_options_are_one_line(ome_zstack, painted, tmp_path, capsys, argv, words):
    fill = {"map": str(painted[1]), "tmp": str(tmp_path), "slide": str(ome_zstack[0])}
    assert main(["focusmap", *[a.format(**fill) for a in argv]]) == 2
    one_error_line(capsys, *words)
