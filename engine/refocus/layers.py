"""Building blocks shared by the refocus encoder and decoder.

* ``depth_features(δ)``: fixed Fourier features of a focus offset δ (µm) — the positional code
  of depth used everywhere (cosine similarity of two codes peaks where the offsets agree).
* ``OffsetEncoding``: learned per-pixel code of a focus-offset map (µm) for SFT conditioning.
* ``SFT``: Spatial Feature Transform (Wang et al. 2018; thesis Sec. 5.2.3): x·(1+γ(c)) + β(c).
* ``SFTResBlock``: two 3×3 convs, each preceded by an SFT, with a residual connection.
* ``WindowAttention``: multi-head self-attention inside non-overlapping w×w windows (intra-image).
* ``DepthAttention``: self-attention along the depth axis of a (B, D, C, H, W) volume, per pixel.
"""
from __future__ import annotations

import math

import torch
from torch import nn
import torch.nn.functional as F

__all__ = ["depth_features", "DEPTH_FEATURES", "OffsetEncoding", "SFT", "SFTResBlock",
           "WindowAttention", "DepthAttention"]

#: Wavelengths (µm) of the Fourier depth code: longest beyond any stack, shortest ~ the DOF.
_WAVELENGTHS_UM = (16.0, 8.0, 4.0, 2.0)
DEPTH_FEATURES = 2 * len(_WAVELENGTHS_UM)


def depth_features(offset_um: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """[cos(2πδ/λ_k), sin(2πδ/λ_k)]_k of an offset tensor (µm), stacked along ``dim``."""
    feats = []
    for lam in _WAVELENGTHS_UM:
        a = offset_um * (2 * math.pi / lam)
        feats += [torch.cos(a), torch.sin(a)]
    return torch.stack(feats, dim=dim) / math.sqrt(len(_WAVELENGTHS_UM))


class OffsetEncoding(nn.Module):
    """Per-pixel code (B, out, H, W) of a focus-offset map (B, H, W) in µm."""

    def __init__(self, out: int = 16):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(DEPTH_FEATURES + 1, out, 1), nn.GELU(), nn.Conv2d(out, out, 1))

    def forward(self, offset_um: torch.Tensor) -> torch.Tensor:
        x = torch.cat([depth_features(offset_um, 1), (offset_um / 4.0)[:, None]], dim=1)
        return self.net(x)


class SFT(nn.Module):
    """x · (1 + γ(cond)) + β(cond), γ and β from 1×1 convs of the condition code."""

    def __init__(self, channels: int, cond: int):
        super().__init__()
        self.affine = nn.Conv2d(cond, 2 * channels, 1)
        nn.init.zeros_(self.affine.weight)
        nn.init.zeros_(self.affine.bias)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.affine(cond).chunk(2, dim=1)
        return x * (1 + gamma) + beta


class SFTResBlock(nn.Module):
    def __init__(self, channels: int, cond: int):
        super().__init__()
        self.sft1, self.sft2 = SFT(channels, cond), SFT(channels, cond)
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        y = self.conv1(F.gelu(self.sft1(x, cond)))
        y = self.conv2(F.gelu(self.sft2(y, cond)))
        return x + y


class WindowAttention(nn.Module):
    """Residual multi-head self-attention within w×w windows of a (N, C, H, W) map."""

    def __init__(self, channels: int, window: int = 8, heads: int = 2):
        super().__init__()
        self.window, self.heads = window, heads
        self.norm = nn.GroupNorm(1, channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        s = self.window
        ph, pw = (-h) % s, (-w) % s
        y = F.pad(self.norm(x), (0, pw, 0, ph), mode="replicate") if ph or pw else self.norm(x)
        H, W = h + ph, w + pw
        qkv = self.qkv(y).view(n, 3, self.heads, c // self.heads, H // s, s, W // s, s)
        qkv = qkv.permute(1, 0, 4, 6, 2, 5, 7, 3).reshape(3, n * (H // s) * (W // s), self.heads, s * s, -1)
        out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])      # (nw, heads, s*s, c/h)
        out = out.view(n, H // s, W // s, self.heads, s, s, c // self.heads)
        out = out.permute(0, 3, 6, 1, 4, 2, 5).reshape(n, c, H, W)[:, :, :h, :w]
        return x + self.proj(out)


class DepthAttention(nn.Module):
    """Residual self-attention across the D depth bins of (B, D, C, H, W), pixel by pixel."""

    def __init__(self, channels: int, heads: int = 2):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Conv3d(channels, 3 * channels, 1)
        self.pos = nn.Linear(DEPTH_FEATURES, channels)
        self.proj = nn.Conv3d(channels, channels, 1)

    def forward(self, x: torch.Tensor, rel_z_um: torch.Tensor) -> torch.Tensor:
        b, d, c, h, w = x.shape
        pos = self.pos(depth_features(rel_z_um, -1))                      # (B, D, C)
        y = (x + pos[..., None, None]).transpose(1, 2)                   # (B, C, D, H, W)
        qkv = self.qkv(y).view(b, 3, self.heads, c // self.heads, d, h * w)
        qkv = qkv.permute(1, 0, 5, 2, 4, 3).reshape(3, b * h * w, self.heads, d, c // self.heads)
        out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])      # (BHW, heads, D, c/h)
        out = out.view(b, h, w, self.heads, d, c // self.heads).permute(0, 3, 5, 4, 1, 2)
        out = self.proj(out.reshape(b, c, d, h, w)).transpose(1, 2)
        return x + out
