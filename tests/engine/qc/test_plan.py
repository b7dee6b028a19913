"""How a slide's QC is split into tile chunks (engine/qc/plan.py)."""
import numpy as np
import pytest

from engine.qc.config import QcConfig
from engine.qc.compute import plan_slide
from engine.qc.plan import SlideTooSmall, chunk_ranges
from tests import slide_files


@pytest.mark.parametrize("shape", [(1, 1), (16, 16), (17, 33), (40, 7)])
def test_chunks_tile_the_grid_exactly_once_on_block_boundaries(shape):
    cover = np.zeros(shape, int)
    for r0, r1, c0, c1 in chunk_ranges(shape, tile_patches=8, chunk_blocks=2):
        assert r0 % 8 == 0 and c0 % 8 == 0  # never cutting a heatmap block
        cover[r0:r1, c0:c1] += 1
    assert (cover == 1).all()


def test_a_plan_holds_the_slides_facts(qc_slides):
    plan = plan_slide(str(qc_slides / "zstack.ome.tif"), QcConfig())
    assert (plan.format, plan.width, plan.height) == ("ome-tiff", 768, 640)
    assert plan.planes_um == (-1.0, 0.0, 1.0) and plan.plane == 1  # the plane nearest z = 0
    assert plan.mpp == (0.25, 0.25) and plan.notes == ()
    assert plan.geometry.shape == (4, 5) and plan.chunks == ((0, 4, 0, 5),)
    assert plan.megapixels == pytest.approx(768 * 640 * 3 / 1e6)


def test_a_coarse_scan_is_noted_as_outside_the_calibration(qc_slides):
    plan = plan_slide(str(qc_slides / "scan.svs"), QcConfig())
    assert plan.mpp == (0.5, 0.5)
    assert any("calibrated at 0.25 µm/px" in n for n in plan.notes)


def test_a_slide_smaller_than_one_patch_is_refused_by_name(tmp_path):
    path, _ = slide_files.write_svs_like(tmp_path / "tiny.svs", size=(200, 400))
    with pytest.raises(SlideTooSmall, match=r"tiny.svs: 200x400 px is smaller than one 235-px"):
        plan_slide(str(path), QcConfig())
