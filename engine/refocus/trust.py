"""How far to trust the model on a given stack, measured on the stack's own captured planes.

The model was trained on the phantom and on real textures imaged through our optics; a real
stack may come from other optics or other content (a phase-contrast-like brightfield cell, a
60× oil objective). Where the model cannot know, it must fall back towards the linear blend of
the captured planes and never invent detail. The stack itself says how well the model knows it:
hold each captured plane out in turn, refocus to it from the others, and see whether the
model's correction of the blend brings it closer to the real plane. The least-squares weight of
that correction over all held-out planes,

    α = clip( Σ ⟨m − b, t − b⟩ / Σ ⟨m − b, m − b⟩, 0, 1 )

(m the model's prediction, b the linear blend of the same inputs, t the real plane, sums over
pixels, channels and held-out planes), is the trust: the refocused output is then
``b + α (m − b)`` (`apply_trust`). α = 1 keeps the model as it is (its own world: the phantom
gives α ≈ 1), α = 0 is the blend exactly. It is computed from the inputs alone — in
`eval_real` from the planes given, never from the plane being predicted — once per stack (a
slide: `slide_trust`, on a few of its most detailed regions). A single plane has nothing to
check against: α = 1.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .baselines import blend, linear_weights

__all__ = ["loo_trust", "apply_trust", "slide_trust", "MAX_HELD_OUT", "REGIONS", "REGION_PX"]

#: At most this many planes (the nearest the stack's middle) are held out in turn.
MAX_HELD_OUT = 5
#: Regions (model px a side) of a slide on which its trust is measured.
REGIONS = 4
REGION_PX = 128


def _blend_to(stack: torch.Tensor, focus: torch.Tensor, z: float) -> torch.Tensor:
    b, n, _, h, w = stack.shape
    f = focus.reshape(b, n, 1, 1).expand(b, n, h, w)
    return blend(stack, linear_weights(f, torch.full((b, h, w), float(z))))


@torch.no_grad()
def loo_trust(model, stack: torch.Tensor, planes_um) -> tuple[float, dict]:
    """(α, details) for ``stack`` (B, N, 3, H, W) in [0, 1] at the model's pitch with its planes'
    z (N,) µm. Details: ``{"held_out", "gain_db"}`` — how much the full model beats the blend on
    the held-out planes (dB, positive: better)."""
    z = [float(v) for v in planes_um]
    n = len(z)
    if n < 2:
        return 1.0, {"held_out": 0, "gain_db": 0.0}
    centre = (min(z) + max(z)) / 2
    held = sorted(sorted(range(n), key=lambda i: (abs(z[i] - centre), i))[:MAX_HELD_OUT])
    num = den = 0.0
    err_b = err_m = 0.0
    for k in held:
        keep = [i for i in range(n) if i != k]
        inputs = stack[:, keep]
        focus = torch.tensor([[z[i] for i in keep]] * stack.shape[0], dtype=torch.float32)
        m = model.decode(model.encode(inputs, focus), torch.full((stack.shape[0],), z[k]))
        b = _blend_to(inputs, focus, z[k])
        t = stack[:, k].float()
        d = m - b
        num += float((d * (t - b)).sum())
        den += float((d * d).sum())
        err_b += float(((b - t) ** 2).mean())
        err_m += float(((m - t) ** 2).mean())
    alpha = float(np.clip(num / den, 0.0, 1.0)) if den > 0 else 1.0
    gain = 10 * np.log10(err_b / err_m) if err_m > 0 and err_b > 0 else 0.0
    return alpha, {"held_out": len(held), "gain_db": round(float(gain), 3)}


def apply_trust(out: torch.Tensor, base: torch.Tensor, alpha: float) -> torch.Tensor:
    """``base + α (out − base)``: the model's correction of the blend, weighted by the trust."""
    if alpha >= 1.0:
        return out
    return (base + alpha * (out - base)).clamp(0, 1)


@torch.no_grad()
def slide_trust(model, slide, planes: list[int], scale: float) -> float:
    """The trust of a multi-plane ``slide`` for its ``planes`` (indices, ascending z): `loo_trust`
    on up to ``REGIONS`` of its most detailed regions (``REGION_PX`` model px a side at level 0,
    found on the middle plane's thumbnail), resampled by ``scale`` to the model's pitch."""
    if len(planes) < 2:
        return 1.0
    W, H = slide.dimensions
    side = max(16, int(round(REGION_PX / scale)))
    side = min(side, W, H)
    mid = planes[len(planes) // 2]
    thumb = slide.thumbnail(256, plane=mid).astype(np.float32).mean(2)
    gy, gx = np.gradient(thumb)
    energy = gx * gx + gy * gy
    th, tw = thumb.shape
    k = max(1, int(round(side * tw / W)))
    cands = []
    for ty in range(0, max(1, th - k + 1), k):
        for tx in range(0, max(1, tw - k + 1), k):
            cands.append((float(energy[ty:ty + k, tx:tx + k].mean()), tx, ty))
    cands.sort(reverse=True)
    crops = []
    for _, tx, ty in cands[:REGIONS]:
        x = int(min(max(0, tx * W / tw), W - side))
        y = int(min(max(0, ty * H / th), H - side))
        st = np.stack([slide.read_region(0, x, y, side, side, i) for i in planes])
        t = torch.from_numpy(st).permute(0, 3, 1, 2).float() / 255.0
        if scale != 1.0:
            t = F.interpolate(t, scale_factor=scale, mode="bicubic", align_corners=False).clamp(0, 1)
        crops.append(t)
    h = min(c.shape[-2] for c in crops)
    w = min(c.shape[-1] for c in crops)
    stack = torch.stack([c[..., :h, :w] for c in crops])
    return loo_trust(model, stack, [slide.planes_um[i] for i in planes])[0]
