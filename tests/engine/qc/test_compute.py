"""A slide's QC computed chunk by chunk equals the engine's whole-slide heatmaps and depth map
(engine/qc/compute.py, finish.py)."""
import dataclasses

import numpy as np
import pytest

from engine.fqa.depth_map import compute_depth_map
from engine.fqa.heatmap import compute_heatmap
from engine.fqa.heatmap_source import scorer_for
from engine.fusion.inputs import default_models
from engine.qc.calibration import load_calibration
from engine.qc.compute import compute_chunk, plan_slide
from engine.qc.finish import assemble, finish_slide
from engine.slides import open_slide

from .conftest import FAST


def _grids(path, config):
    plan = plan_slide(str(path), config)
    return plan, [compute_chunk(plan, i, config) for i in range(len(plan.chunks))]


@pytest.mark.slow
def test_chunks_put_together_are_the_engines_heatmaps_and_depth_map(qc_slides):
    path = qc_slides / "zstack.ome.tif"
    config = dataclasses.replace(FAST, tile_patches=2, chunk_blocks=1)  # 6 chunks over a 4×5 grid
    plan, chunks = _grids(path, config)
    assert len(chunks) == 6
    a = assemble(plan, chunks)
    with open_slide(path) as slide:
        ref, _ = compute_heatmap(slide, {"focus": scorer_for("focuslitenn-1")[0], **default_models().tile_scorers},
                                 plane=1)
        depth, scores, _ = compute_depth_map(slide, "focuslitenn-1")
    for name, grid in ref.items():
        got = a["focus"] if name == "focus" else a[f"model:{name}"]
        np.testing.assert_allclose(got, grid, rtol=1e-5, atol=1e-5, equal_nan=True, err_msg=name)
    assert np.isfinite(a["focus"]).sum() == 20  # textured planes: tissue everywhere
    res = finish_slide(plan, config, *chunks)
    np.testing.assert_allclose(res.grids["depth_um"], depth, atol=1e-4, equal_nan=True)
    np.testing.assert_array_equal(res.grids["defocus_um"], load_calibration()(res.grids["focus"]))


def test_the_split_does_not_change_the_result(qc_slides):
    path = qc_slides / "scan.svs"
    fine = dataclasses.replace(FAST, tile_patches=2, chunk_blocks=1)
    coarse = dataclasses.replace(FAST, tile_patches=2, chunk_blocks=2)
    (p1, c1), (p2, c2) = _grids(path, fine), _grids(path, coarse)
    assert len(c1) > len(c2) > 1
    a1, a2 = assemble(p1, c1), assemble(p2, c2)
    assert a1.keys() == a2.keys()
    for k in a1:
        np.testing.assert_array_equal(a1[k], a2[k], err_msg=k)


def test_chunks_arrive_in_any_order(qc_slides):
    config = dataclasses.replace(FAST, tile_patches=2, chunk_blocks=1)
    plan, chunks = _grids(qc_slides / "scan.svs", config)
    r1 = finish_slide(plan, config, *chunks)
    r2 = finish_slide(plan, config, *reversed(chunks))
    for k in r1.grids:
        np.testing.assert_array_equal(r1.grids[k], r2.grids[k], err_msg=k)
    assert r1.summary == r2.summary


@pytest.mark.slow
def test_a_sharp_phantom_passes_and_the_same_tissue_4um_out_of_focus_is_rescanned(phantom_pair):
    sharp, blurred = (finish_slide(p, FAST, *c) for p, c in (_grids(s, FAST) for s in phantom_pair))
    assert sharp.summary.tissue_patches == blurred.summary.tissue_patches >= 9
    assert sharp.summary.verdict == "pass" and blurred.summary.verdict == "rescan"
    assert sharp.summary.median_defocus_um < 1.5 <= blurred.summary.median_defocus_um
    # the fused score ranks the blurred slide's patches as blurrier too (relative to each slide,
    # so compare the raw FocusLiteNN grids of the same cells instead)
    assert np.nanmean(blurred.grids["focus"]) > np.nanmean(sharp.grids["focus"]) + 0.5
    assert np.isfinite(sharp.grids["fused"]).sum() == sharp.summary.tissue_patches
    assert sharp.tissue_mm2 == pytest.approx(sharp.summary.tissue_patches * (128 * 0.25) ** 2 / 1e6)
