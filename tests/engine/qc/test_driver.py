"""A QC batch in this process (engine/qc/driver.py with workers=0): outputs, bad slides, resuming."""
import dataclasses
import json
import os

import numpy as np
import pytest

from engine.fusion.fit import FusionConfig
from engine.qc.driver import QcSetupError, run_qc
from engine.qc.outputs import COLUMNS, MARKER, read_tsv, slide_dir

from .conftest import FAST


@pytest.fixture(scope="module")
def batch(qc_slides, bad_slide, tmp_path_factory):
    out = tmp_path_factory.mktemp("qc-out")
    run = run_qc([qc_slides, bad_slide], out, workers=0, config=FAST, progress=False)
    return run, out


def test_one_tsv_row_per_slide_in_discovery_order_with_the_documented_columns(batch, qc_slides, bad_slide):
    run, out = batch
    rows = read_tsv(out / "qc.tsv")
    assert tuple((out / "qc.tsv").read_text().splitlines()[0].split("\t")) == COLUMNS
    assert [r["path"] for r in rows] == [str(qc_slides / "nested" / "bracket"), str(qc_slides / "scan.svs"),
                                         str(qc_slides / "zstack.ome.tif"), str(bad_slide)]
    bracket, svs, zstack, bad = rows
    assert (zstack["format"], zstack["size_px"], zstack["planes"], zstack["mpp"]) == ("ome-tiff", "768x640", "3", "0.2500")
    assert (svs["format"], svs["planes"], bracket["format"], bracket["planes"]) == ("aperio", "1", "plane-set", "3")
    for r in (bracket, svs, zstack):
        assert r["verdict"] in ("pass", "review", "rescan") and r["error"] == ""
        assert 0.0 <= float(r["oof_fraction"]) <= 1.0
    # textured planes are tissue everywhere: 20 cells of 128 × 128 px at 0.25 µm/px
    assert float(zstack["tissue_mm2"]) == pytest.approx(20 * (128 * 0.25) ** 2 / 1e6, abs=1e-4)
    assert run.computed == 3 and run.errors == 1 and run.skipped == 0


def test_a_bad_slide_gets_an_error_row_naming_it_and_the_batch_goes_on(batch, bad_slide):
    run, out = batch
    bad = read_tsv(out / "qc.tsv")[-1]
    assert bad["verdict"] == "error" and bad["error"].startswith(f"{bad_slide}: unrecognised content")
    assert "\n" not in bad["error"] and bad["format"] == ""
    assert not (slide_dir(out, str(bad_slide)) / MARKER).exists()  # tried again next time


def test_heatmaps_overlays_and_marker_are_written_per_slide(batch, qc_slides):
    run, out = batch
    d = slide_dir(out, str(qc_slides / "zstack.ome.tif"))
    geom = json.loads((d / "geometry.json").read_text())
    shape = tuple(geom["shape"])
    assert shape == (4, 5) and geom["planes_um"] == [-1.0, 0.0, 1.0] and (geom["patch"], geom["stride"]) == (235, 128)
    for name in ("focus", "defocus_um", "fused", "uncertainty", "depth_um"):
        a = np.load(d / f"{name}.npy")
        assert a.shape == shape and a.dtype == np.float32, name
    depth = np.load(d / "depth_um.npy")
    assert np.nanmin(depth) >= -1.0 and np.nanmax(depth) <= 1.0
    from PIL import Image

    for png in ("thumb.png", "defocus.png", "fused.png", "depth.png"):
        assert Image.open(d / png).size[0] >= 300, png
    assert not (slide_dir(out, str(qc_slides / "scan.svs")) / "depth_um.npy").exists()  # one plane
    marker = json.loads((d / MARKER).read_text())
    assert marker["row"]["path"] == str(qc_slides / "zstack.ome.tif")


@pytest.mark.slow
def test_a_rerun_skips_finished_slides_and_redoes_changed_or_unfinished_ones(qc_slides, bad_slide, tmp_path):
    import shutil

    src = tmp_path / "in"
    src.mkdir()
    for name in ("scan.svs", "zstack.ome.tif"):
        shutil.copy(qc_slides / name, src / name)
    out = tmp_path / "out"
    first = run_qc([src], out, workers=0, config=FAST, progress=False)
    assert (first.computed, first.skipped) == (2, 0)
    markers = {n: slide_dir(out, str(src / n)) / MARKER for n in ("scan.svs", "zstack.ome.tif")}
    before = {n: m.stat().st_mtime_ns for n, m in markers.items()}

    again = run_qc([src], out, workers=0, config=FAST, progress=False)
    assert (again.computed, again.skipped) == (0, 2)
    assert again.rows == first.rows
    assert {n: m.stat().st_mtime_ns for n, m in markers.items()} == before

    markers["zstack.ome.tif"].unlink()  # as if the batch was killed before the marker
    os.utime(src / "scan.svs", ns=(before["scan.svs"] + 10**9,) * 2)  # the slide changed
    third = run_qc([src], out, workers=0, config=FAST, progress=False)
    assert (third.computed, third.skipped) == (2, 0)
    assert [r["verdict"] for r in third.rows] == [r["verdict"] for r in first.rows]

    other_settings = dataclasses.replace(FAST, fusion=FusionConfig(steps=FAST.fusion.steps + 1))
    other = run_qc([src], out, workers=0, config=other_settings, progress=False)
    assert other.computed == 2


def test_no_slides_found_is_one_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(QcSetupError, match="empty: no slides found"):
        run_qc([tmp_path / "empty"], tmp_path / "out", workers=0, progress=False)


@pytest.mark.slow
def test_real_slides_all_get_a_row(real_slides, tmp_path):
    run = run_qc([real_slides / "cmu-1-small-region.svs", real_slides / "kidney-48-5.tif"], tmp_path,
                 workers=0, config=FAST, progress=False)
    cmu, kidney = run.rows
    assert (cmu["format"], cmu["size_px"], cmu["mpp"]) == ("aperio", "2220x2967", "0.4990")
    assert cmu["verdict"] == "pass" and int(cmu["tissue_patches"]) > 100 and float(cmu["tissue_mm2"]) > 0.3
    assert "only indicative" in cmu["note"]  # 0.5 µm/px, not the calibration's 0.25
    # a field of glass with a speck of tissue: no tissue patch, no fusion, a review
    assert kidney["verdict"] == "review" and "no tissue found" in kidney["note"] and kidney["tissue_mm2"] == ""
