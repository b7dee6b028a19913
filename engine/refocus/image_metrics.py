"""Full-reference image metrics in pure torch: SSIM, MS-SSIM and PSNR.

Images are float tensors (B, C, H, W) with values in [0, 1] (``as_tensor`` converts uint8
(H, W, 3) arrays). SSIM uses the usual 11-tap Gaussian window (σ = 1.5 px) with
C1 = (0.01)², C2 = (0.03)², computed per channel and averaged over channels and pixels
('valid' windows only). MS-SSIM uses the five standard scale weights of Wang et al. and drops
the coarsest scales when the image is too small for them (weights renormalised).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["as_tensor", "ssim", "ms_ssim", "psnr"]

_C1 = 0.01 ** 2
_C2 = 0.03 ** 2
_MS_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def as_tensor(img) -> torch.Tensor:
    """uint8/float (H, W, 3) or (B, H, W, 3) array in 0..255 -> float (B, 3, H, W) in [0, 1]."""
    t = torch.as_tensor(np.asarray(img)).float()
    if t.ndim == 3:
        t = t[None]
    return t.permute(0, 3, 1, 2).contiguous() / 255.0


def _window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    g = torch.exp(-x ** 2 / (2 * sigma ** 2))
    return g / g.sum()


def _blur(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    c = x.shape[1]
    x = F.conv2d(x, g.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, g.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def _ssim_parts(x: torch.Tensor, y: torch.Tensor, size: int = 11) -> tuple[torch.Tensor, torch.Tensor]:
    """(luminance·contrast·structure, contrast·structure) per image, each (B,)."""
    size = min(size, x.shape[-1], x.shape[-2])
    g = _window(size, 1.5 * size / 11).to(x)
    mx, my = _blur(x, g), _blur(y, g)
    sxx = _blur(x * x, g) - mx * mx
    syy = _blur(y * y, g) - my * my
    sxy = _blur(x * y, g) - mx * my
    cs = (2 * sxy + _C2) / (sxx + syy + _C2)
    lum = (2 * mx * my + _C1) / (mx * mx + my * my + _C1)
    return (lum * cs).mean(dim=(1, 2, 3)), cs.mean(dim=(1, 2, 3))


def ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean SSIM per image (B,) of two (B, C, H, W) tensors in [0, 1]."""
    return _ssim_parts(x, y)[0]


def ms_ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Multi-scale SSIM per image (B,), with as many of the 5 scales as the size allows."""
    scales = 1
    while scales < 5 and min(x.shape[-2:]) // 2 ** scales >= 11:
        scales += 1
    w = torch.tensor(_MS_WEIGHTS[:scales], dtype=x.dtype)
    w = w / w.sum()
    out = torch.ones(x.shape[0], dtype=x.dtype)
    for s in range(scales):
        full, cs = _ssim_parts(x, y)
        val = full if s == scales - 1 else cs
        out = out * val.clamp_min(1e-6) ** w[s]
        if s < scales - 1:
            x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
    return out


def psnr(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """PSNR in dB per image (B,) for a peak of 1 (capped at 100 dB for identical images)."""
    mse = ((x - y) ** 2).mean(dim=(1, 2, 3))
    return (10 * torch.log10(1.0 / mse.clamp_min(1e-10))).clamp_max(100.0)
