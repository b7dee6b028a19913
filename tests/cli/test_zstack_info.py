"""`finefocus info` shows every focal plane of ImageJ, OME-Zarr and CZI z-stacks, the display
range of 16-bit ones and what was assumed; `finefocus phantom write OUT.ome.zarr`."""
import json

import pytest

from engine.cli import main
from tests import zstack_files
from tests.cli import one_error_line
from tests.paths import SHARED_DATA

BF_34Z = SHARED_DATA / "stacks" / "bfautofocus-bf-34z.tif"
EPFL_3Z = SHARED_DATA / "stacks" / "epfl-edf-skeleton-3z.tif"


def _info(path, capsys):
    assert main(["info", str(path), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_info_of_an_imagej_hyperstack(tmp_path, capsys):
    path, _ = zstack_files.write_imagej_grey16(tmp_path / "h.tif", n_planes=3, spacing=400.0,
                                               unit="nm", channels=2)
    info = _info(path, capsys)
    assert info["format"] == "imagej" and info["planes_um"] == pytest.approx([0.0, 0.4, 0.8])
    assert info["display_range"] and info["mpp"] == pytest.approx([0.2, 0.2])
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "planes:   3 at z = +0, +0.4, +0.8 µm" in out
    assert "display:  samples" in out and "C (channels): 2, the first read" in out


def test_info_of_an_ome_zarr_folder(tmp_path, capsys):
    path, _ = zstack_files.write_ome_zarr_rgb(tmp_path / "r.ome.zarr", n_planes=3, dz_um=0.75)
    info = _info(path, capsys)
    assert info["format"] == "ome-zarr" and info["planes_um"] == [0.0, 0.75, 1.5]
    assert info["display_range"] is None and len(info["levels"]) == 2


def test_info_of_a_czi(tmp_path, capsys):
    path, _ = zstack_files.write_czi_zstack(tmp_path / "s.czi", n_planes=4, dz_um=0.3, mpp=0.11)
    info = _info(path, capsys)
    assert info["format"] == "czi" and info["planes_um"] == pytest.approx([0.0, 0.3, 0.6, 0.9])
    assert info["mpp"] == pytest.approx([0.11, 0.11])


def test_info_of_the_real_stacks(capsys):
    if not BF_34Z.exists() or not EPFL_3Z.exists():
        pytest.skip(f"real stacks absent from {SHARED_DATA / 'stacks'}")
    info = _info(BF_34Z, capsys)
    assert len(info["planes_um"]) == 34 and info["planes_um"][-1] == pytest.approx(9.9)
    assert info["display_range"] == [78.0, 5109.0]
    assert main(["info", str(EPFL_3Z)]) == 0
    out = capsys.readouterr().out
    assert "planes:   3 at z = +0, +1, +2 µm" in out
    assert "note:     z step not stated: planes 1 µm apart assumed" in out


def test_a_damaged_zarr_is_one_line_exit_2(tmp_path, capsys):
    path, _ = zstack_files.write_ome_zarr_rgb(tmp_path / "d.ome.zarr")
    (path / ".zattrs").write_text("{broken")
    assert main(["info", str(path)]) == 2
    one_error_line(capsys, str(path))


def test_phantom_write_to_ome_zarr_by_suffix(tmp_path, capsys):
    out = tmp_path / "ph.ome.zarr"
    assert main(["phantom", "write", str(out), "--size", "256", "192", "--planes", "3",
                 "--spacing", "0.5", "--no-noise"]) == 0
    capsys.readouterr()
    info = _info(out, capsys)
    assert info["format"] == "ome-zarr"
    assert info["planes_um"] == pytest.approx([-0.5, 0.0, 0.5], abs=0.2)
    assert info["mpp"] == [0.25, 0.25] and (info["width"], info["height"]) == (256, 192)
