"""A real Dask cluster for tests: `dask scheduler` and two `dask worker` processes on 127.0.0.1,
started as subprocesses and stopped by their own process ids."""
from __future__ import annotations

import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

DASK = str(Path(sys.executable).parent / "dask")


@contextmanager
def dask_cluster(folder: Path, workers: int = 2):
    """Yields the scheduler file of a running cluster with ``workers`` one-thread workers."""
    from distributed import Client

    sched_file = folder / "scheduler.json"
    logs = [open(folder / f"proc-{i}.log", "w") for i in range(workers + 1)]
    procs = [subprocess.Popen([DASK, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                               "--scheduler-file", str(sched_file)], stdout=logs[0], stderr=subprocess.STDOUT)]
    try:
        deadline = time.monotonic() + 60
        while not sched_file.is_file() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert sched_file.is_file(), (folder / "proc-0.log").read_text()
        for i in range(workers):
            procs.append(subprocess.Popen(
                [DASK, "worker", "--scheduler-file", str(sched_file), "--host", "127.0.0.1", "--nthreads", "1",
                 "--no-dashboard", "--name", f"w{i}"], stdout=logs[i + 1], stderr=subprocess.STDOUT))
        with Client(scheduler_file=str(sched_file), timeout="30s") as c:
            c.wait_for_workers(workers, timeout=120)
            addresses = [w["host"] for w in c.scheduler_info()["workers"].values()]
            assert set(addresses) == {"127.0.0.1"}, addresses
        yield sched_file
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in reversed(procs):
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for f in logs:
            f.close()
