"""`TileStore`: an export's finished tiles on disk, named by a sidecar that only ever lists
complete tiles, taken back by a resume of the same export and refused to another."""
import json

import numpy as np
import pytest

from engine.export import tile_store
from engine.export.tile_store import TileStore, TileStoreError, partial_paths

HEADER = {"kind": "refocus", "z_um": 0.5, "tile": 64}


def _tile(v, dtype=np.uint8, shape=(64, 48, 3)):
    return np.full(shape, v, dtype)


def test_tiles_round_trip_and_a_resume_takes_them_back(tmp_path):
    out = tmp_path / "x.ome.tiff"
    store = TileStore(out, HEADER)
    data, sidecar = partial_paths(out)
    assert data.name == "x.ome.tiff.partial" and sidecar.name == "x.ome.tiff.partial.json"
    assert json.loads(sidecar.read_text())["tiles"] == {}           # a partial export from the start
    store.put("0/0/0", _tile(7))
    store.put("depth/0/0", _tile(np.nan, np.float32, (5, 3)))
    assert np.array_equal(store.get("0/0/0"), _tile(7))
    store.close()
    again = TileStore(out, dict(HEADER), resume=True)
    assert again.resumed == 2 and "0/0/0" in again and "0/0/1" not in again
    assert np.isnan(again.get("depth/0/0")).all() and again.get("depth/0/0").dtype == np.float32
    again.put("0/0/1", _tile(9))
    assert np.array_equal(again.get("0/0/0"), _tile(7)) and np.array_equal(again.get("0/0/1"), _tile(9))
    again.discard()
    assert not data.exists() and not sidecar.exists()


def test_tiles_written_after_the_last_sidecar_are_cut_off_on_resume(tmp_path, monkeypatch):
    out = tmp_path / "x.ome.tiff"
    store = TileStore(out, HEADER)
    store.put("0/0/0", _tile(1))
    store.flush(force=True)
    monkeypatch.setattr(tile_store, "FLUSH_S", 1e9)                # as if killed before the next write
    store.put("0/0/1", _tile(2))
    store._file.flush()
    side = json.loads(partial_paths(out)[1].read_text())
    assert list(side["tiles"]) == ["0/0/0"] and partial_paths(out)[0].stat().st_size > side["end"]
    resumed = TileStore(out, HEADER, resume=True)                   # (the killed process never closed it)
    assert "0/0/1" not in resumed and partial_paths(out)[0].stat().st_size == side["end"]
    assert np.array_equal(resumed.get("0/0/0"), _tile(1))


def test_another_export_or_a_damaged_sidecar_is_refused_naming_the_file(tmp_path):
    out = tmp_path / "x.ome.tiff"
    TileStore(out, HEADER).close()
    with pytest.raises(TileStoreError, match=r"x\.ome\.tiff\.partial\.json.*different export.*z_um"):
        TileStore(out, {**HEADER, "z_um": 1.0}, resume=True)
    partial_paths(out)[1].write_text("{not json")
    with pytest.raises(TileStoreError, match=r"x\.ome\.tiff\.partial\.json.*not a readable partial export"):
        TileStore(out, HEADER, resume=True)
    partial_paths(out)[1].write_text(json.dumps({"format": tile_store.FORMAT, "header": HEADER, "end": 999,
                                                 "tiles": {}}))
    with pytest.raises(TileStoreError, match=r"x\.ome\.tiff\.partial.*shorter"):
        TileStore(out, HEADER, resume=True)
