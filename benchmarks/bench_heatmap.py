"""Whole-slide FocusLiteNN heatmap against just decoding the same tiles.

    .venv/bin/python benchmarks/bench_heatmap.py --json [--rounds 3] [--model focuslitenn-1]

For each SVS in ../shared/data/slides (or $FINEFOCUS_SHARED_DATA/slides), in the same run:

* decode (baseline): the blocks `compute_heatmap` reads (same regions, same level, same plane),
  read with ``slide.read_region`` one after another on this thread, nothing else;
* heatmap: `compute_heatmap` with the FocusLiteNN scorer at level 0, 235-px patches at stride
  128 (tissue mask, convolution, pooling; a reader thread decodes the next block while the
  current one is scored, on one torch thread);
* heatmap_sequential (for reference): the same with the reader thread off.

Each pass opens the slide afresh (so no pass profits from the decoder cache of another) and
passes alternate; each figure is the minimum over ``--rounds`` rounds, which is the least
disturbed by other work on a shared machine. ``ratio`` = heatmap_s / decode_s (wall clock,
the target: ≤ 1.25); ``ratio_cpu`` compares CPU seconds (all threads), i.e. the work added by
scoring, which is what the wall-clock ratio approaches when no core is free.
The model is the shipped `focuslitenn-1` when its weights exist, else a FocusLiteNN(1) with
seeded random weights (same cost: the network's size, not its weights, sets the time).
"""
from __future__ import annotations

import argparse
import inspect
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from engine.fqa.focuslitenn import FocusLiteNN, load_model  # noqa: E402
from engine.fqa.heatmap import blocks, compute_heatmap, focuslitenn_scorer, heatmap_geometry  # noqa: E402
from engine.slides import open_slide  # noqa: E402

TILE_PATCHES = inspect.signature(compute_heatmap).parameters["tile_patches"].default

SHARED_DATA = Path(os.environ.get("FINEFOCUS_SHARED_DATA", REPO.parent / "shared" / "data"))


def model_for(name: str) -> tuple[FocusLiteNN, str]:
    try:
        return load_model(name), name
    except FileNotFoundError:
        torch.manual_seed(0)
        return FocusLiteNN(1).eval(), "FocusLiteNN(1), seeded random weights (shipped weights not found)"


def decode_s(path: Path, tile_patches: int) -> tuple[float, float]:
    """(wall, CPU) seconds to read every block a level-0 heatmap reads, one after another."""
    with open_slide(path) as slide:
        geom = heatmap_geometry(slide, 0)
        t0, c0 = time.perf_counter(), time.process_time()
        for b in blocks(geom, tile_patches):
            slide.read_region(0, b.x, b.y, b.w, b.h, 0)
        return time.perf_counter() - t0, time.process_time() - c0


def heatmap_s(path: Path, model: FocusLiteNN, tile_patches: int, prefetch: bool) -> tuple[float, float]:
    """(wall, CPU) seconds of the whole-slide heatmap (CPU summed over all threads)."""
    with open_slide(path) as slide:
        scorer = {"focuslitenn": focuslitenn_scorer(model)}
        t0, c0 = time.perf_counter(), time.process_time()
        compute_heatmap(slide, scorer, tile_patches=tile_patches, prefetch=prefetch)
        return time.perf_counter() - t0, time.process_time() - c0


def bench(paths: list[Path], model: FocusLiteNN, rounds: int, tile_patches: int) -> dict:
    per_slide = []
    for path in paths:
        runs = {"decode": [], "heatmap": [], "heatmap_sequential": []}
        for _ in range(rounds):
            runs["decode"].append(decode_s(path, tile_patches))
            runs["heatmap"].append(heatmap_s(path, model, tile_patches, True))
            runs["heatmap_sequential"].append(heatmap_s(path, model, tile_patches, False))
        with open_slide(path) as slide:
            geom = heatmap_geometry(slide, 0)
            w, h = slide.dimensions
        (d, dc), (hm, hc), (hs, _) = ((min(r[0] for r in runs[k]), min(r[1] for r in runs[k]))
                                      for k in ("decode", "heatmap", "heatmap_sequential"))
        per_slide.append({"slide": path.name, "size": [w, h], "grid": list(geom.shape),
                          "decode_s": round(d, 4), "heatmap_s": round(hm, 4),
                          "heatmap_sequential_s": round(hs, 4), "ratio": round(hm / d, 3),
                          "ratio_sequential": round(hs / d, 3),
                          "decode_cpu_s": round(dc, 4), "heatmap_cpu_s": round(hc, 4),
                          "ratio_cpu": round(hc / dc, 3)})
    d = sum(s["decode_s"] for s in per_slide)
    hm = sum(s["heatmap_s"] for s in per_slide)
    hs = sum(s["heatmap_sequential_s"] for s in per_slide)
    dc = sum(s["decode_cpu_s"] for s in per_slide)
    hc = sum(s["heatmap_cpu_s"] for s in per_slide)
    return {"slides": per_slide,
            "overall": {"decode_s": round(d, 4), "heatmap_s": round(hm, 4), "ratio": round(hm / d, 3),
                        "heatmap_sequential_s": round(hs, 4), "ratio_sequential": round(hs / d, 3),
                        "decode_cpu_s": round(dc, 4), "heatmap_cpu_s": round(hc, 4),
                        "ratio_cpu": round(hc / dc, 3)}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print the result as JSON")
    ap.add_argument("--rounds", type=int, default=3, help="timed rounds per slide (the minimum is kept)")
    ap.add_argument("--model", default="focuslitenn-1", help="weights name or file")
    ap.add_argument("--tile-patches", type=int, default=TILE_PATCHES,
                    help="patches per block side (compute_heatmap's default unless given)")
    args = ap.parse_args(argv)
    folder = SHARED_DATA / "slides"
    paths = sorted(folder.glob("*.svs"))
    if not paths:
        print(f"no SVS files in {folder}", file=sys.stderr)
        return 2
    model, model_name = model_for(args.model)
    result = bench(paths, model, max(args.rounds, 1), args.tile_patches)
    result.update({"model": model_name, "tile_patches": args.tile_patches,
                   "load_average_1min": round(os.getloadavg()[0], 2), "rounds": args.rounds,
                   "cpus": os.cpu_count(),
                   "target_ratio": 1.25})
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for s in result["slides"]:
            print(f"{s['slide']}: decode {s['decode_s']:.2f} s, heatmap {s['heatmap_s']:.2f} s "
                  f"(×{s['ratio']:.2f}; sequential ×{s['ratio_sequential']:.2f}; CPU ×{s['ratio_cpu']:.2f})")
        o = result["overall"]
        print(f"overall: decode {o['decode_s']:.2f} s, heatmap {o['heatmap_s']:.2f} s (×{o['ratio']:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
