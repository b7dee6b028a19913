"""Classical refocus baselines, pixel-wise, in torch (also the refocus model's starting point).

* ``nearest_weights``: all weight on the captured plane whose focus (µm) is nearest the target.
* ``linear_weights``: linear blend of the two planes that bracket the target at each pixel
  (their focus maps may vary per pixel); beyond the outermost plane, that plane alone.
* ``focus_stack``: classical all-in-focus — per pixel, the plane with the highest local
  Laplacian energy of luminance (Gaussian window σ = 4 px), the choice smoothed (σ = 2 px).

Images are (B, N, 3, H, W) in [0, 1], focus maps (B, N, H, W) µm, targets (B, H, W) µm.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["nearest_weights", "linear_weights", "blend", "focus_stack", "gaussian_blur"]


def nearest_weights(focus_um: torch.Tensor, target_um: torch.Tensor) -> torch.Tensor:
    """One-hot weights (B, N, H, W) on the plane nearest the target."""
    d = (focus_um - target_um[:, None]).abs()
    return F.one_hot(d.argmin(1), focus_um.shape[1]).permute(0, 3, 1, 2).to(focus_um.dtype)


def linear_weights(focus_um: torch.Tensor, target_um: torch.Tensor) -> torch.Tensor:
    """Weights (B, N, H, W) summing to 1: linear between the nearest plane below and above the
    target, or the nearest plane alone when the target lies beyond all planes on one side."""
    d = focus_um - target_um[:, None]                          # > 0: plane above the target
    n = d.shape[1]
    inf = torch.full_like(d[:, 0], float("inf"))
    da, db = inf.clone(), inf.clone()                          # distance to the nearest above / below
    ia = torch.zeros_like(d[:, 0], dtype=torch.long)
    ib = torch.zeros_like(ia)
    for i in range(n):                                          # N is small: a loop beats argmin
        di = d[:, i]
        up = (di >= 0) & (di < da)
        dn = (di < 0) & (-di < db)
        da = torch.where(up, di, da)
        ia = torch.where(up, i, ia)
        db = torch.where(dn, -di, db)
        ib = torch.where(dn, i, ib)
    both = torch.isfinite(da) & torch.isfinite(db)
    wa = torch.where(both, db / (da + db).clamp_min(1e-6), torch.isfinite(da).to(d.dtype))
    wb = 1 - wa
    idx = torch.arange(n).view(1, n, 1, 1)
    return (idx == ia[:, None]).to(d.dtype) * wa[:, None] + (idx == ib[:, None]).to(d.dtype) * wb[:, None]


def blend(images: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Σ_i w_i · image_i: (B, N, 3, H, W) × (B, N, H, W) -> (B, 3, H, W)."""
    return (images.float() * weights[:, :, None]).sum(1)


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur (replicate borders) of (B, C, H, W), σ in px."""
    r = max(1, int(3 * sigma + 0.5))
    t = torch.arange(-r, r + 1, dtype=x.dtype)
    g = torch.exp(-t * t / (2 * sigma * sigma))
    g = g / g.sum()
    c = x.shape[1]
    x = F.pad(x, (r, r, r, r), mode="replicate")
    x = F.conv2d(x, g.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, g.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


_LAPLACE = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])


def focus_stack(images: torch.Tensor) -> torch.Tensor:
    """Classical all-in-focus image (B, 3, H, W) of a stack (B, N, 3, H, W)."""
    b, n, _, h, w = images.shape
    x = images.float()
    luma = (0.3 * x[:, :, 0] + 0.55 * x[:, :, 1] + 0.15 * x[:, :, 2]).reshape(b * n, 1, h, w)
    lap = F.conv2d(F.pad(luma, (1, 1, 1, 1), mode="replicate"), _LAPLACE.view(1, 1, 3, 3))
    energy = gaussian_blur(lap * lap, 4.0).view(b, n, h, w)
    choice = F.one_hot(energy.argmax(1), n).permute(0, 3, 1, 2).float()
    wts = gaussian_blur(choice, 2.0)
    return blend(x, wts / wts.sum(1, keepdim=True).clamp_min(1e-6))
