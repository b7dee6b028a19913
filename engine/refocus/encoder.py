"""The 3-D radiance field module (thesis Sec. 5.2.2, Figs. 5.3–5.4): focal stack -> latent field.

Input: N ≥ 1 images of one region (B, N, 3, H, W) in [0, 1], H and W multiples of 8, with
their focus maps (B, N, H, W) in µm (where each pixel of each plane was focused; any z, not
a fixed grid) and the z (µm) of the D depth bins of the field (B, D). Output: a ``Radiance``
with latents at 1/2, 1/4 and 1/8 of the input px, and the FSCA keys of each scale.

1. Per-image encoder (shared weights): 2×2 space-to-depth, conv, SFT on the plane's focus
   map (relative to the bins' centre), conv (plus, when ``image_attention``, intra-image
   windowed self-attention at 1/2 px; off by default for a 2-core CPU: the intra-image
   attention then runs at 1/8 px only).
2. Inter-image attention across the stack (``StackToDepth``): for every depth bin d and pixel
   p the N images are weighted by softmax_i(a_i(p) − ((f_i(p) − z_d)/s)²), a_i a content
   logit of image i and s a learned depth scale; the weighted features are joined with the
   weighted depth code of the offsets f_i − z_d. Any N, in any order, at any z.
3. Three stages of separable 3-D blocks — a per-slice depthwise 3×3 spatial conv and a
   per-pixel 3-tap depth conv, fused by a 1×1 conv (the spatial/depth split of the thesis'
   ref. [214], made depthwise for a 2-core CPU) — with 2× spatial downsampling between
   stages, self-attention along depth (stages 2–3) and windowed intra-slice attention at 1/8.
4. Key heads: K_d = normalise(W_K · fea_d + A · φ(z_d − z̄)) per scale (net_K of Eq. 5.5), at
   all three scales or (``fine_keys=False``) at 1/4 and 1/8 px only.
Nothing here sees the target focus: the field is computed once per region and cached.
"""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

from .layers import DEPTH_FEATURES, SFT, DepthAttention, OffsetEncoding, WindowAttention, depth_features
from .radiance import Radiance

__all__ = ["RadianceEncoder", "Separable3DBlock", "StackToDepth", "KeyHead"]

_COND = 16


class ImageEncoder(nn.Module):
    """One image + its focus-offset map (µm) -> (C1, H/2, W/2) features."""

    def __init__(self, channels: int, attention: bool = False):
        super().__init__()
        self.stem = nn.Conv2d(12, channels, 3, padding=1)
        self.cond = OffsetEncoding(_COND)
        self.sft = SFT(channels, _COND)
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.attn = WindowAttention(channels, window=8, heads=2) if attention else nn.Identity()

    def forward(self, img: torch.Tensor, offset_um: torch.Tensor) -> torch.Tensor:
        x = self.stem(F.pixel_unshuffle(img * 2 - 1, 2))
        c = self.cond(F.avg_pool2d(offset_um[:, None], 2)[:, 0])
        x = x + self.conv(F.gelu(self.sft(x, c)))
        return self.attn(x)


class StackToDepth(nn.Module):
    """Inter-image attention: N plane features -> D depth-bin features, per pixel."""

    def __init__(self, channels: int):
        super().__init__()
        self.logit = nn.Conv2d(channels, 1, 1)
        self.log_scale = nn.Parameter(torch.tensor(0.75).log())         # s, µm
        self.join = nn.Conv2d(channels + DEPTH_FEATURES, channels, 1)

    def forward(self, feats: torch.Tensor, focus_um: torch.Tensor, z_um: torch.Tensor) -> torch.Tensor:
        """feats (B, N, C, h, w), focus_um (B, N, h, w), z_um (B, D) -> (B, D, C, h, w)."""
        b, n, c, h, w = feats.shape
        d = z_um.shape[1]
        content = self.logit(feats.reshape(b * n, c, h, w)).view(b, 1, n, h, w)
        off = focus_um[:, None] - z_um[:, :, None, None, None]              # (B, D, N, h, w)
        wts = torch.softmax(content - (off / self.log_scale.exp()) ** 2, dim=2)
        pooled = (wts[:, :, :, None] * feats[:, None]).sum(2)
        code = (wts[:, :, :, None] * depth_features(off, 3)).sum(2)         # (B, D, F, h, w)
        x = torch.cat([pooled, code], 2).reshape(b * d, c + DEPTH_FEATURES, h, w)
        return self.join(x).view(b, d, c, h, w)


class Separable3DBlock(nn.Module):
    """x + fuse(act(depthwise 3×3 per slice) + act(3-tap depth conv per pixel)) on (B, D, C, H, W)."""

    def __init__(self, channels: int):
        super().__init__()
        self.spatial = nn.Conv2d(channels, channels, 3, padding=1, groups=channels)
        self.depth = nn.Parameter(torch.tensor([0.25, 0.5, 0.25]).repeat(channels, 1).T.contiguous())  # (3, C)
        self.fuse = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, d, c, h, w = x.shape
        s = self.spatial(x.reshape(b * d, c, h, w)).view(b, d, c, h, w)
        k = self.depth[:, None, :, None, None]
        z = k[1] * x
        if d > 1:
            z = z + F.pad(k[0] * x[:, :-1], (0, 0, 0, 0, 0, 0, 1, 0)) + F.pad(k[2] * x[:, 1:], (0, 0, 0, 0, 0, 0, 0, 1))
        y = self.fuse((F.gelu(s) + F.gelu(z)).reshape(b * d, c, h, w))
        return x + y.view(b, d, c, h, w)


class KeyHead(nn.Module):
    """net_K of Eq. 5.5: unit keys (B, D, d_k, h, w) from features and the bins' depth code."""

    def __init__(self, channels: int, key_dim: int = DEPTH_FEATURES):
        super().__init__()
        self.proj = nn.Conv2d(channels, key_dim, 1)
        nn.init.normal_(self.proj.weight, std=0.01)
        nn.init.zeros_(self.proj.bias)
        self.code = nn.Linear(DEPTH_FEATURES, key_dim, bias=False)        # A
        with torch.no_grad():
            self.code.weight.copy_(torch.eye(key_dim, DEPTH_FEATURES))

    def forward(self, fea: torch.Tensor, rel_z_um: torch.Tensor) -> torch.Tensor:
        b, d, c, h, w = fea.shape
        k = self.proj(fea.reshape(b * d, c, h, w)).view(b, d, -1, h, w)
        k = k + self.code(depth_features(rel_z_um, -1))[..., None, None]
        return k * torch.rsqrt((k * k).sum(2, keepdim=True) + 1e-8)


def _per_slice(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    b, d = x.shape[:2]
    y = module(x.reshape(b * d, *x.shape[2:]))
    return y.view(b, d, *y.shape[1:])


class RadianceEncoder(nn.Module):
    def __init__(self, channels: tuple[int, int, int] = (12, 24, 48), key_dim: int = DEPTH_FEATURES,
                 image_attention: bool = False, fine_keys: bool = True):
        super().__init__()
        c1, c2, c3 = channels
        self.image = ImageEncoder(c1, image_attention)
        self.lift = StackToDepth(c1)
        self.stage1 = nn.ModuleList([Separable3DBlock(c1), Separable3DBlock(c1)])
        self.down2 = nn.Conv2d(c1, c2, 3, stride=2, padding=1)
        self.attn2 = DepthAttention(c2)
        self.stage2 = nn.ModuleList([Separable3DBlock(c2), Separable3DBlock(c2)])
        self.down3 = nn.Conv2d(c2, c3, 3, stride=2, padding=1)
        self.intra3 = WindowAttention(c3, window=8, heads=4)
        self.attn3 = DepthAttention(c3, heads=4)
        self.stage3 = nn.ModuleList([Separable3DBlock(c3), Separable3DBlock(c3)])
        self.keyed_scales = 3 if fine_keys else 2           # keys for the coarsest ``keyed_scales`` scales
        self.keys = nn.ModuleList([KeyHead(c, key_dim) for c in channels[3 - self.keyed_scales:]])

    def forward(self, stack: torch.Tensor, focus_um: torch.Tensor, z_um: torch.Tensor) -> Radiance:
        b, n, _, H, W = stack.shape
        if H % 8 or W % 8:
            raise ValueError(f"encoder input must be a multiple of 8 px, got {W}x{H}")
        centre = z_um.mean(1)                                               # (B,)
        rel_z = z_um - centre[:, None]
        rel_focus = focus_um - centre[:, None, None, None]
        feats = self.image(stack.reshape(b * n, 3, H, W), rel_focus.reshape(b * n, H, W))
        feats = feats.view(b, n, *feats.shape[1:])
        x = self.lift(feats, F.avg_pool2d(rel_focus, 2), rel_z)            # (B, D, C1, H/2, W/2)
        for blk in self.stage1:
            x = blk(x)
        r1 = x
        x = F.gelu(_per_slice(self.down2, x))
        x = self.attn2(x, rel_z)
        for blk in self.stage2:
            x = blk(x)
        r2 = x
        x = F.gelu(_per_slice(self.down3, x))
        x = _per_slice(self.intra3, x)
        x = self.attn3(x, rel_z)
        for blk in self.stage3:
            x = blk(x)
        lat = (r1, r2, x)
        keys = tuple(head(f, rel_z) for head, f in zip(self.keys, lat[3 - self.keyed_scales:]))
        return Radiance(lat, keys, z_um, (H, W), stack, focus_um)
