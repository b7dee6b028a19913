"""How good is the all-in-focus export? `finefocus refocus aif-eval --seed S [--regions N] --json`.

On tissue regions of a phantom slide captured as a scanner would (planes at −1, 0, +1 µm, sensor
noise), the product's all-in-focus path (`snapshot --all-in-focus`: best-focus depths estimated
by FocusLiteNN over the captured planes, `auto.best_focus_fill`, rendered by the refocusing model
through `FocusMappedSlide`) is compared by SSIM with the phantom's exact all-in-focus image, side
by side with:

* ``true z*``: the same rendering given the phantom's exact best-focus depths (what a perfect
  depth estimate would give: the refocusing model's own limit);
* ``focus-stack``: classical focus stacking of the captured planes (per pixel the plane of
  highest local Laplacian energy, smoothed; `engine.refocus.baselines.focus_stack`);
* ``plane 0``: the captured plane at z = 0 (the scan as it is); ``best plane``: for each region
  the captured plane closest to the truth (chosen with the truth: an optimistic baseline).

Training seeds are refused (`engine.phantom.seeds`). Figures are the mean over regions; each
region's own figures are in ``regions``.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

__all__ = ["evaluate_all_in_focus", "METHODS"]

METHODS = ("all-in-focus (estimated depths)", "true z*", "focus-stack", "plane 0", "best plane")


@torch.no_grad()
def evaluate_all_in_focus(seed: int, regions: int = 4, size: int = 512, *,
                          log: Callable[[str], None] | None = None) -> dict:
    from ..phantom.seeds import check_evaluation_seed
    from ..refocus.baselines import focus_stack
    from ..refocus.dataset import tissue_positions, training_slide
    from ..refocus.focus_mapped_slide import FocusMappedSlide
    from ..refocus.image_metrics import as_tensor, ssim
    from ..refocus.refocused_slide import RadianceCache
    from .auto import best_focus_fill
    from .focus_map import FocusMap

    check_evaluation_seed(seed, "all-in-focus evaluation")
    if regions < 1 or size < 256:
        raise ValueError(f"need at least 1 region of at least 256 px, got {regions} of {size} px")
    slide = training_slide(seed, planes=3, spacing_um=1.0, noise=True)
    positions = tissue_positions(slide, regions, np.random.default_rng([seed, 99]), size=size)
    if not positions:
        raise ValueError(f"phantom seed {seed}: no {size}-px region fully on tissue")
    cache = RadianceCache(dtype=torch.float32)
    per_region = []
    stride = 16
    for i, (x, y) in enumerate(positions):
        truth = as_tensor(slide.all_in_focus(0, x, y, size, size))

        def score(img) -> float:
            return float(ssim(as_tensor(img) if isinstance(img, np.ndarray) else img, truth)[0])

        estimated = FocusMap(*slide.dimensions, default_um=0.0, stride=stride)
        best_focus_fill(slide, estimated, (x, y, size, size))
        exact = FocusMap(*slide.dimensions, default_um=0.0, stride=stride)
        half = stride // 2
        zstar = slide.best_focus_map(0, x - half, y - half, size + stride, size + stride)
        exact.fill(zstar[::stride, ::stride], origin=(x - half, y - half), spacing=stride)
        planes = [slide.read_region(0, x, y, size, size, p) for p in range(slide.plane_count)]
        plane_scores = [score(p) for p in planes]
        stacked = focus_stack(torch.stack([as_tensor(p)[0] for p in planes])[None])
        row = {"x": x, "y": y,
               METHODS[0]: score(FocusMappedSlide(slide, estimated, cache=cache).read_region(0, x, y, size, size)),
               METHODS[1]: score(FocusMappedSlide(slide, exact, cache=cache).read_region(0, x, y, size, size)),
               METHODS[2]: score(stacked),
               METHODS[3]: plane_scores[slide.nearest_plane(0.0)],
               METHODS[4]: max(plane_scores)}
        per_region.append(row)
        if log:
            log(f"region {i + 1}/{len(positions)} at ({x}, {y}) done")
    rows = [{"method": m, "ssim": float(np.mean([r[m] for r in per_region]))} for m in METHODS]
    return {"seed": seed, "size": size, "planes_um": list(slide.planes_um), "rows": rows, "regions": per_region}
