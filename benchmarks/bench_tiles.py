"""Tile throughput of the tile store and time to first paint of the viewer.

    .venv/bin/python benchmarks/bench_tiles.py --json

For each source (the SVS files in ../shared/data/slides, and an OME-TIFF z-stack written by
tifffile into a temporary folder) over up to ``--tiles`` level-0 tiles:

* baseline: ``slide.read_region`` for each tile, one after another, on this thread;
* cold: a fresh `TileStore` (empty cache) fetching all of them on its workers;
* warm: the same store fetching them again (all cached).

Then the real window (offscreen) opens each source: seconds to the first tile drawn and to a
complete view, against the baseline of reading the same visible tiles one after another.
Ratios > 1 mean faster than the baseline (tiles/s), or slower (paint time / read time).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import wait
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from engine.slides import open_slide  # noqa: E402
from engine.tiles import TileStore, grid_shape, tile_bounds, tile_size_for  # noqa: E402

SHARED_DATA = Path(os.environ.get("FINEFOCUS_SHARED_DATA", REPO.parent / "shared" / "data"))


def level0_tiles(slide, limit):
    ts = tile_size_for(slide)
    cols, rows = grid_shape(slide, 0, ts)
    return ts, [(c, r) for r in range(rows) for c in range(cols)][:limit]


def read_sequentially(slide, level, cells, ts, plane=0):
    """Seconds to read ``cells`` of ``level`` with plain read_region, one after another."""
    ds = slide.levels[level].downsample
    t0 = time.perf_counter()
    for c, r in cells:
        lx, ly, w, h = tile_bounds(slide, level, c, r, ts)
        slide.read_region(level, int(-(-lx * ds // 1)), int(-(-ly * ds // 1)), w, h, plane)
    return time.perf_counter() - t0


def throughput(path_or_spec, label, limit, workers):
    slide = open_slide(path_or_spec)
    ts, cells = level0_tiles(slide, limit)
    n = len(cells)
    base_s = read_sequentially(slide, 0, cells, ts)
    store = TileStore(workers=workers)
    reqs = [store.request(slide, 0, c, r, 0, ts) for c, r in cells]
    t0 = time.perf_counter()
    wait([store.fetch(q) for q in reqs])
    cold_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    futures = [store.fetch(q) for q in reqs]
    wait(futures)
    warm_s = time.perf_counter() - t0
    assert all(f.exception() is None for f in futures)
    store.close()
    base, cold, warm = n / base_s, n / cold_s, n / warm_s
    return {
        "source": label, "format": slide.format, "size": list(slide.dimensions),
        "tile_size": ts, "tiles": n, "workers": workers,
        "baseline_read_region_tiles_per_s": round(base, 1),
        "cold_tiles_per_s": round(cold, 1),
        "warm_tiles_per_s": round(warm, 1),
        "cold_vs_baseline": round(cold / base, 2),
        "warm_vs_baseline": round(warm / base, 1),
    }


def first_paints(sources, size, workers, timeout_s):
    """Open each source in the real window (offscreen); time the first tile and the full view."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    import asyncio

    from app.main import application, event_loop
    from app.window import MainWindow

    app = application()
    loop = event_loop(app)
    results = []

    async def one(path_or_spec, label):
        slide = open_slide(path_or_spec)
        window = MainWindow(store=TileStore(workers=workers))
        window.resize(*size)
        window.show()
        await asyncio.sleep(0.05)  # let the window lay out before timing
        first = []
        window.canvas.loading.connect(lambda n: first or any(
            v[1] is not None for v in window.canvas.visible_tiles().values()) and first.append(time.perf_counter()))
        t0 = time.perf_counter()
        window.set_slide(slide)
        while not window.canvas.is_settled():
            if time.perf_counter() - t0 > timeout_s:
                break
            await asyncio.sleep(0.005)
        complete = time.perf_counter() - t0
        visible = window.canvas.visible_tiles()
        level = window.canvas.level
        cells = [(c, r) for (_, c, r) in visible]
        ts = window.canvas.layer.tile_size
        window.close()
        window.store.close()
        fresh = open_slide(path_or_spec)
        base_s = read_sequentially(fresh, level, cells, ts)
        results.append({
            "source": label, "window": f"{size[0]}x{size[1]}", "level": level, "visible_tiles": len(cells),
            "first_tile_s": round(first[0] - t0, 3) if first else None,
            "complete_view_s": round(complete, 3),
            "baseline_sequential_read_s": round(base_s, 3),
            "complete_vs_baseline": round(complete / base_s, 2) if base_s > 0 else None,
        })

    async def all_of_them():
        for path_or_spec, label in sources:
            await one(path_or_spec, label)

    with loop:
        loop.run_until_complete(all_of_them())
    return results


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print one JSON document")
    ap.add_argument("--tiles", type=int, default=64, help="level-0 tiles per source (default 64)")
    ap.add_argument("--workers", type=int, default=2, help="tile store workers (default 2)")
    ap.add_argument("--phantom", action="store_true", help="also time the built-in phantom (slow)")
    ap.add_argument("--no-window", action="store_true", help="skip the time-to-first-paint part")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        from tests.slide_files import write_ome_zstack

        ome, _ = write_ome_zstack(Path(tmp) / "bench.ome.tif", size=(4096, 3072))
        sources = [(str(p), p.name) for p in sorted((SHARED_DATA / "slides").glob("*.svs"))]
        sources.append((str(ome), "ome-tiff z-stack 4096x3072x3 (tifffile, zlib)"))
        if args.phantom:
            sources.append((None, "phantom (built-in)"))
        report = {
            "benchmark": "bench_tiles",
            "cpus": os.cpu_count(),
            "svs_found": any(s[1].endswith(".svs") for s in sources),
            "throughput": [throughput(p, label, args.tiles, args.workers) for p, label in sources],
        }
        if not args.no_window:
            report["first_paint"] = first_paints(sources, (1280, 800), args.workers, 600)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for row in report["throughput"]:
            print(f"{row['source']}: baseline {row['baseline_read_region_tiles_per_s']} tiles/s, "
                  f"cold {row['cold_tiles_per_s']} ({row['cold_vs_baseline']}×), "
                  f"warm {row['warm_tiles_per_s']} ({row['warm_vs_baseline']}×)")
        for row in report.get("first_paint", []):
            print(f"{row['source']}: first tile {row['first_tile_s']} s, complete {row['complete_view_s']} s "
                  f"({row['visible_tiles']} tiles; sequential read {row['baseline_sequential_read_s']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
