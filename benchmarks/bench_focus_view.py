"""Turning the focus knob on a viewer-sized view: the refocused slide source, cached vs first time.

    .venv/bin/python benchmarks/bench_focus_view.py --json [--size 1024] [--rounds 3] [--threads 2]

What the viewer does when the knob moves off the captured planes: it reads the view from a
`RefocusedSlide` (engine/refocus/refocused_slide.py). In the same run, on the same region
(``--size``² px at level 0 of the default phantom's three captured planes, held in memory):

* ``blend_s`` (baseline): the linear blend of the two captured planes around z over the view,
  what a viewer without a model shows between planes;
* ``first_s``: the first refocus of the view: each 512-px block encoded into its radiance field
  (with its margin), then decoded;
* ``turn_s``: a further focus change on the same view (radiance cached: decoder only), the
  minimum over ``--rounds`` targets.

``ratio`` = turn_s / blend_s; ``cache_saves`` = first_s / turn_s.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from engine.phantom import PhantomSlide  # noqa: E402
from engine.refocus.refocused_slide import RadianceCache, RefocusedSlide  # noqa: E402
from engine.slides.array import ArraySlide  # noqa: E402


def bench(size: int, rounds: int) -> dict:
    ph = PhantomSlide()
    w, h = ph.dimensions
    x, y = (w // 2) // 512 * 512, (h // 2) // 512 * 512
    planes = [ph.read_region(0, x, y, size, size, p) for p in range(ph.plane_count)]
    base = ArraySlide(planes, planes_um=list(ph.planes_um), mpp=ph.mpp)
    cache = RadianceCache()
    targets = [0.3 + 0.37 * i for i in range(rounds + 1)]

    def blend(z: float) -> np.ndarray:
        lo = max(i for i, p in enumerate(base.planes_um) if p <= z)
        hi = min(lo + 1, base.plane_count - 1)
        t = 0.0 if hi == lo else (z - base.planes_um[lo]) / (base.planes_um[hi] - base.planes_um[lo])
        return ((1 - t) * planes[lo].astype(np.float32) + t * planes[hi].astype(np.float32) + 0.5).astype(np.uint8)

    def timed(fn) -> float:
        t = time.perf_counter()
        fn()
        return time.perf_counter() - t

    blend_s = min(timed(lambda z=z: blend(z)) for z in targets[1:])
    first_s = timed(lambda: RefocusedSlide(base, targets[0], cache=cache).read_region(0, 0, 0, size, size))
    turn_s = min(timed(lambda z=z: RefocusedSlide(base, z, cache=cache).read_region(0, 0, 0, size, size))
                 for z in targets[1:])
    return {"size": size, "planes": base.plane_count, "blocks": len(cache), "blend_s": round(blend_s, 4),
            "first_s": round(first_s, 3), "turn_s": round(turn_s, 4), "ratio": round(turn_s / blend_s, 1),
            "cache_saves": round(first_s / turn_s, 1), "radiance_mb": round(cache.nbytes / 2 ** 20, 1)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print the result as JSON")
    ap.add_argument("--size", type=int, default=1024, help="view side in px (default 1024)")
    ap.add_argument("--rounds", type=int, default=3, help="focus changes timed after the first (minimum kept)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (default 2, this machine's cores)")
    args = ap.parse_args(argv)
    torch.set_num_threads(max(1, args.threads))
    result = bench(args.size, max(1, args.rounds))
    result.update({"threads": args.threads, "cpus": os.cpu_count(), "load_average_1min": round(os.getloadavg()[0], 2)})
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{args.size}² view: first refocus {result['first_s']:.1f} s ({result['blocks']} blocks encoded), "
              f"each further turn {result['turn_s'] * 1000:.0f} ms (linear blend {result['blend_s'] * 1000:.0f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
