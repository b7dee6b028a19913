"""QC on Dask distributed gives the single-process result (engine/qc/driver.py): on a real
scheduler and two workers started as subprocesses (`dask scheduler`, `dask worker`, 127.0.0.1),
and on the default LocalCluster."""
import dataclasses

import numpy as np
import pytest

from engine.qc.driver import QcSetupError, run_qc
from engine.qc.outputs import slide_dir

from .cluster import dask_cluster
from .conftest import FAST

#: Small chunks (2 × 2 patches), so each small test slide is six chunks for the two workers.
SPLIT = dataclasses.replace(FAST, tile_patches=2, chunk_blocks=1)
GRIDS = ("focus", "defocus_um", "fused", "uncertainty", "depth_um")


@pytest.fixture(scope="module")
def reference(qc_slides, bad_slide, tmp_path_factory):
    inputs = [qc_slides / "zstack.ome.tif", qc_slides / "scan.svs", bad_slide]
    out = tmp_path_factory.mktemp("qc-serial")
    return inputs, out, run_qc(inputs, out, workers=0, config=SPLIT, progress=False)


def _assert_same(out_a, run_a, out_b, run_b):
    assert run_a.rows == run_b.rows
    for row in run_a.rows:
        if row["error"]:
            continue
        da, db = slide_dir(out_a, row["path"]), slide_dir(out_b, row["path"])
        for name in GRIDS:
            if (da / f"{name}.npy").exists() or (db / f"{name}.npy").exists():
                np.testing.assert_array_equal(np.load(da / f"{name}.npy"), np.load(db / f"{name}.npy"),
                                              err_msg=f"{row['path']} {name}")
        assert (da / "defocus.png").read_bytes() == (db / "defocus.png").read_bytes()


@pytest.mark.slow
def test_a_scheduler_and_two_worker_processes_give_the_single_process_result(reference, tmp_path):
    from distributed import Client

    inputs, ref_out, ref = reference
    with dask_cluster(tmp_path) as sched:
        run = run_qc(inputs, tmp_path / "out", scheduler=str(sched), config=SPLIT, progress=False)
        with Client(scheduler_file=str(sched)) as c:
            per_worker = c.run(lambda: dict(__import__("engine.qc.compute", fromlist=["x"]).chunks_computed))
    _assert_same(ref_out, ref, tmp_path / "out", run)
    assert run.errors == 1 and run.rows[-1]["verdict"] == "error"
    # both workers took chunks, and of one slide: the work was split, not a slide per worker
    zstack = str(inputs[0])
    counts = [c.get(zstack, 0) for c in per_worker.values()]
    assert sum(counts) == 6 and min(counts) >= 1, per_worker


@pytest.mark.slow
def test_the_default_local_cluster_gives_the_single_process_result(reference, tmp_path):
    inputs, ref_out, ref = reference
    run = run_qc(inputs, tmp_path, workers=2, config=SPLIT, progress=False)
    _assert_same(ref_out, ref, tmp_path, run)


@pytest.mark.slow
def test_an_unreachable_scheduler_is_one_error_naming_it(qc_slides, tmp_path):
    with pytest.raises(QcSetupError, match=r"tcp://127.0.0.1:9: cannot reach the Dask scheduler"):
        run_qc([qc_slides / "scan.svs"], tmp_path, scheduler="tcp://127.0.0.1:9", config=FAST, progress=False)
