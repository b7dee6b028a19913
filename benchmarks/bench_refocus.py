"""Refocusing a 1024² view: the cached-field decode against re-encoding and against a plain blend.

    .venv/bin/python benchmarks/bench_refocus.py --json [--size 1024] [--planes 3] [--rounds 3] [--threads 2] [--weights PATH]

A turn of the focus knob re-runs only the decoder on the cached radiance field (``RefocusNet.decode``);
the encoder runs once per region. In the same run, on the same stack (phantom planes of the
default slide, ``--planes`` at 1 µm spacing, ``--size``² px at level 0, the shipped weights):

* ``blend_s`` (baseline): the `linear` method — the two captured planes around the target blended
  per pixel (what a viewer without a model shows between planes);
* ``decode_s``: the model's decode of the cached field for a uniform target (the knob);
* ``decode_map_s``: the decode for a per-pixel target map (a painted focus map);
* ``encode_s``: the encoder (once per region, the cost the cache saves on every turn).

Each figure is the minimum over ``--rounds`` targets/rounds (the least disturbed by other work).
``ratio`` = decode_s / blend_s; ``ratio_full`` = (encode_s + decode_s) / decode_s, what the cache saves.
The target for the knob is a decode of a few hundred ms (``decode_s``) on this 2-core CPU.

Through the viewer's own path (`RefocusedSlide` over the view's blocks, the compact radiance
cache), against a reference measured in the same run — one 3×3 convolution of 16 to 16 channels
over 1024² in torch (``reference_ms``):

* ``cold_ratio``: the first refocus of the view, every block encoded and decoded / reference;
* ``warm_ratio``: a further focus turn on the cached view (decoder only) / reference;
* ``bytes_per_model_px``: the cache's bytes per model px of the view's blocks (margins included);
* ``decode_profile``: the torch operators that take most of a warm turn (self CPU ms).
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
from engine.refocus.baselines import blend, linear_weights  # noqa: E402
from engine.refocus.weights import load_model, shipped_weights  # noqa: E402


def _stack(size: int, planes: int) -> tuple[torch.Tensor, torch.Tensor]:
    slide = PhantomSlide(planes=planes, spacing_um=1.0)
    w, h = slide.dimensions
    x, y = w // 2 - size // 2, h // 2 - size // 2
    imgs = np.stack([slide.read_region(0, x, y, size, size, p) for p in range(planes)])
    z = torch.tensor(list(slide.planes_um), dtype=torch.float32)
    return torch.from_numpy(imgs).float().permute(0, 3, 1, 2)[None] / 255.0, z[None]


def _best(fn, rounds: int) -> float:
    times = []
    for i in range(rounds):
        t = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - t)
    return min(times)


def bench(size: int, planes: int, rounds: int, weights=None) -> dict:
    model, _ = load_model(weights or shipped_weights())
    model.eval()
    stack, focus = _stack(size, planes)
    targets = [0.3 + 0.37 * i for i in range(max(rounds, 1))]
    with torch.inference_mode():
        field = model.encode(stack, focus)
        enc = _best(lambda i: model.encode(stack, focus), max(1, rounds // 2))
        full_focus = focus[:, :, None, None].expand(1, planes, size, size)
        blend_s = _best(lambda i: blend(stack, linear_weights(full_focus, torch.full((1, size, size), targets[i]))),
                        rounds)
        model.decode(field, torch.tensor([targets[0]]))            # warm-up
        dec = _best(lambda i: model.decode(field, torch.tensor([targets[i]])), rounds)
        yy = torch.linspace(-1.0, 1.0, size)[:, None].expand(size, size)[None]
        dec_map = _best(lambda i: model.decode(field, targets[i] + yy), rounds)
    return {"size": size, "planes": planes, "blend_s": round(blend_s, 4), "decode_s": round(dec, 4),
            "decode_map_s": round(dec_map, 4), "encode_s": round(enc, 4),
            "ratio": round(dec / blend_s, 2), "ratio_full": round((enc + dec) / dec, 1),
            "field_mb": round(field.nbytes / 2 ** 20, 1)}


def reference_conv_s(rounds: int) -> float:
    """One 3×3 convolution of 16 to 16 channels over 1024² (float32), the best of ``rounds``."""
    conv = torch.nn.Conv2d(16, 16, 3, padding=1)
    x = torch.rand(1, 16, 1024, 1024)
    with torch.inference_mode():
        conv(x)
        return _best(lambda i: conv(x), max(rounds, 3))


def bench_viewer_path(size: int, planes: int, rounds: int, weights=None) -> dict:
    """Cold and warm refocus of a ``size``² view through `RefocusedSlide` (see the docstring)."""
    from engine.refocus.refocused_slide import RadianceCache, RefocusedSlide
    from engine.slides.array import ArraySlide

    slide = PhantomSlide(planes=planes, spacing_um=1.0)
    w, h = slide.dimensions
    x, y = (w // 2) // 512 * 512, (h // 2) // 512 * 512      # on the block grid, as a view often is not
    base = ArraySlide([slide.read_region(0, x, y, size, size, p) for p in range(planes)],
                      planes_um=list(slide.planes_um), mpp=slide.mpp)
    cache = RadianceCache()
    model = load_model(weights)[0] if weights else None
    ref = reference_conv_s(rounds)
    t = time.perf_counter()
    RefocusedSlide(base, 0.3, model=model, cache=cache).read_region(0, 0, 0, size, size)
    cold = time.perf_counter() - t
    zs = [0.55 + 0.23 * i for i in range(rounds)]
    warm = _best(lambda i: RefocusedSlide(base, zs[i], model=model, cache=cache).read_region(0, 0, 0, size, size), rounds)
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        RefocusedSlide(base, -0.8, model=model, cache=cache).read_region(0, 0, 0, size, size)
    ops = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)[:6]
    block_px = len(cache) * 512 * 512
    return {"reference_ms": round(ref * 1000, 1), "cold_s": round(cold, 3), "warm_s": round(warm, 4),
            "cold_ratio": round(cold / ref, 1), "warm_ratio": round(warm / ref, 2),
            "bytes_per_model_px": round(cache.nbytes / block_px, 1),
            "decode_profile": {e.key: round(e.self_cpu_time_total / 1000, 1) for e in ops}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print the result as JSON")
    ap.add_argument("--size", type=int, default=1024, help="view side in px (default 1024)")
    ap.add_argument("--planes", type=int, default=3, help="captured planes in the stack (default 3)")
    ap.add_argument("--rounds", type=int, default=3, help="timed rounds (the minimum is kept)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (default 2, this machine's cores)")
    ap.add_argument("--weights", type=Path, default=None, help="refocus weights (default: the shipped ones)")
    args = ap.parse_args(argv)
    torch.set_num_threads(max(1, args.threads))
    result = bench(args.size, args.planes, max(1, args.rounds), args.weights)
    result.update(bench_viewer_path(args.size, args.planes, max(1, args.rounds), args.weights))
    result.update({"threads": args.threads, "cpus": os.cpu_count(),
                   "load_average_1min": round(os.getloadavg()[0], 2), "rounds": args.rounds})
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{args.size}² view, {args.planes} planes: decode {result['decode_s'] * 1000:.0f} ms "
              f"(per-pixel map {result['decode_map_s'] * 1000:.0f} ms; linear blend {result['blend_s'] * 1000:.0f} ms, "
              f"×{result['ratio']}); encode {result['encode_s']:.2f} s once per region; viewer path: "
              f"cold {result['cold_ratio']}×, warm {result['warm_ratio']}× a 16→16 3×3 conv over 1024² "
              f"({result['reference_ms']} ms), {result['bytes_per_model_px']} bytes per model px")
    return 0


if __name__ == "__main__":
    sys.exit(main())
