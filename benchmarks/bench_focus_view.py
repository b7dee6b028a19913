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

    .venv/bin/python benchmarks/bench_focus_view.py --json --slide PATH --size 1600x1000 [--zoom 1.04]

With ``--slide`` it measures through the viewer itself: the real window (offscreen) of ``--size``
px on the slide at ``--zoom`` screen px per level-0 px (1.04 ≈ 20.8× on a 20× scan) around its
centre, with the window's own radiance budget. ``first_s``: the first knob step off the plane
(+0.1 µm) until every visible tile shows refocused pixels; ``turn_s``: each further 0.1 µm step
(median, and ``turn_max_s``); ``encoded_first`` / ``encoded_per_turn``: encoder calls;
``pan_full_resolution_s``: after a pan by one view width at that z, until every visible tile shows
full-resolution pixels (refocused, or the captured planes around z standing in), and
``pan_refocused_s`` until all are refocused. Baseline, same run, same view: ``plane_s``, the window
painting the captured plane.
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


def _full_resolution_shown(canvas) -> bool:
    """Every visible tile shows its exact pixels or the captured planes' stand-in at its level."""
    source, store = canvas.source, canvas.store
    for req, _pixels, exact in canvas.visible_tiles().values():
        if exact:
            continue
        stand_in = getattr(source, "stand_in", None)
        if stand_in is None or stand_in(store.cache.peek, req) is None:
            return False
    return True


def bench_window(path: str, size: tuple[int, int], zoom: float, turns: int) -> dict:
    """Knob steps in the real window on ``path`` (see the module docstring)."""
    import asyncio
    import statistics

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from app.main import application, event_loop
    from app.window import MainWindow
    from engine.slides import open_slide

    app = application()
    loop = event_loop(app)
    window = MainWindow()
    window.resize(*size)
    window.show()
    slide = open_slide(path)
    canvas = window.canvas

    async def settle(timeout_s: float = 900.0) -> float:
        t0 = time.perf_counter()
        await asyncio.sleep(0)
        while not canvas.is_settled():
            if time.perf_counter() - t0 > timeout_s:
                raise TimeoutError("the view did not settle")
            await asyncio.sleep(0.01)
        return time.perf_counter() - t0

    async def run() -> dict:
        window.set_slide(slide)
        await settle()
        W, H = slide.dimensions
        vw, vh = canvas.width() / zoom, canvas.height() / zoom
        t0 = time.perf_counter()
        canvas.set_view_rect(W / 2 - vw / 2, H / 2 - vh / 2, vw, vh)
        await settle()
        plane_s = time.perf_counter() - t0
        cache = window.radiance_cache()
        z0 = window.focus.z_um
        window.focus.set_z(z0 + 0.1)
        t0 = time.perf_counter()
        await settle()
        first_s = time.perf_counter() - t0
        encoded_first = cache.computed
        times, encodes = [], []
        for k in range(turns):
            before = cache.computed
            window.focus.set_z(z0 + 0.1 * (k + 2))
            t0 = time.perf_counter()
            await settle()
            times.append(time.perf_counter() - t0)
            encodes.append(cache.computed - before)
        # Pan by one view width at this z: until every visible tile shows full-resolution pixels
        # (its refocused tile, or the captured planes around z standing in), then until refocused.
        x, y, w, h = canvas.view_rect()
        t0 = time.perf_counter()
        canvas.set_view_rect(min(x + w, W - w), y, w, h)
        await asyncio.sleep(0)
        pan_planes_s = None
        while not canvas.is_settled():
            if pan_planes_s is None and _full_resolution_shown(canvas):
                pan_planes_s = time.perf_counter() - t0
            await asyncio.sleep(0.01)
        pan_refocused_s = time.perf_counter() - t0
        view = getattr(window, "refocus_view", None)  # (absent before the radiance budget: A/B runs)
        plan = view.plan if view else None
        return {"slide": str(path), "window": f"{size[0]}x{size[1]}", "zoom_screen_px_per_px": zoom,
                "level": canvas.level, "view_blocks": len(plan.blocks) if plan else 0,
                "refocused": bool(plan and plan.fits), "state": getattr(window.focus, "state", ""),
                "plane_s": round(plane_s, 3), "first_s": round(first_s, 3), "encoded_first": encoded_first,
                "turn_s": round(statistics.median(times), 3), "turn_max_s": round(max(times), 3),
                "encoded_per_turn": encodes,
                "pan_full_resolution_s": round(pan_planes_s if pan_planes_s is not None else pan_refocused_s, 3),
                "pan_refocused_s": round(pan_refocused_s, 3), "radiance_mb": round(cache.nbytes / 2 ** 20, 1),
                "radiance_cap_mb": round(view.cap_bytes() / 2 ** 20) if view else None}

    try:
        with loop:
            return loop.run_until_complete(run())
    finally:
        window.canvas.stop()
        window.store.close()
        window.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print the result as JSON")
    ap.add_argument("--size", type=int, default=1024, help="view side in px (default 1024)")
    ap.add_argument("--rounds", type=int, default=3, help="focus changes timed after the first (minimum kept)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (default 2, this machine's cores)")
    ap.add_argument("--slide", help="measure in the real window on this slide (see the docstring)")
    ap.add_argument("--window", "--size-px", dest="window", default="1600x1000",
                    help="with --slide: window size WxH px (default 1600x1000); --size WxH also works")
    ap.add_argument("--zoom", type=float, default=1.04,
                    help="with --slide: screen px per level-0 px (default 1.04, 20.8× on a 20× scan)")
    ap.add_argument("--turns", type=int, default=3, help="with --slide: further 0.1 µm steps timed")
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--slide" in argv and "--size" in argv:  # --size WxH names the window in the viewer mode
        argv[argv.index("--size")] = "--window"
    args = ap.parse_args(argv)
    torch.set_num_threads(max(1, args.threads))
    if args.slide:
        try:
            w, h = (int(v) for v in args.window.lower().split("x"))
        except ValueError:
            ap.error(f"--size must be WxH px, got {args.window!r}")
        result = bench_window(args.slide, (w, h), args.zoom, max(1, args.turns))
        result.update({"cpus": os.cpu_count(), "load_average_1min": round(os.getloadavg()[0], 2)})
        print(json.dumps(result, indent=2) if args.json else
              f"{result['slide']}: first step {result['first_s']:.1f} s, further steps {result['turn_s']:.2f} s "
              f"(plane painted cold in {result['plane_s']:.2f} s), encoder calls per step {result['encoded_per_turn']}")
        return 0
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
