"""The refocus module (thesis Sec. 5.2.3, Figs. 5.3–5.4): latent field + target focus map -> image.

``FSCAPool`` is Focal Stack Cross-Attention pooling (Eq. 5.5), pixel-wise over the depth axis::

    FSCA(fea, f_t) = Σ_d softmax_d(τ · ⟨Q, K_d⟩ / (‖Q‖ ‖K_d‖)) · V_d
    Q   = net_Q(f_t)   = B_Q · φ(f_t − z̄)                      (1×1 conv of the depth code)
    K_d = net_K(fea_d) = W_K · fea_d + A · φ(z_d − z̄)          (encoder.KeyHead, cached)
    V_d = net_V(fea_d) = W_V · fea_d + b_V                     (1×1 conv)

φ is the fixed Fourier depth code (``layers.depth_features``), z̄ the centre of the depth bins,
f_t the target map average-pooled to the scale's px. The keys depend on the field only, so the
encoder computes them (unit norm) and the ``Radiance`` carries them. The bins' depth code in K
and the learnable temperature τ are our additions: without them a target-independent field
gives no way to tell the bins apart. Because net_V is a 1×1 conv and the weights sum to 1, V
is applied after pooling (the same result, D× cheaper). ``mode="max"`` / ``"mean"`` replace the
attention by max / mean over depth (the ablation of Table 5.8).

``RefocusDecoder``: three decoders, coarse to fine. Each pools its scale of the field, joins it
with the upsampled output of the previous one, and applies SFT blocks conditioned on the
target focus map. The finest one also sees the *base* image — the linear blend of the two
input planes around the target (``baselines.linear_weights``) — and the signed distance (µm)
from the target to the nearest input plane. Its head returns, through a 2× pixel shuffle, per
full-resolution pixel a colour residual r and two detail gains a, b::

    out = base + a · (base − G₁ ⊛ base) + b · (G₃ ⊛ base − base) + r

(G_σ Gaussians of σ = 1 and 3 px): a > 0 sharpens fine detail, b > 0 blurs, so refocusing
towards or away from the tissue starts from the right operator. The head starts at zero, so
an untrained decoder returns the linear baseline.
"""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

from .baselines import blend, gaussian_blur, linear_weights
from .layers import DEPTH_FEATURES, SFT, OffsetEncoding, SFTResBlock, depth_features
from .radiance import Radiance

__all__ = ["FSCAPool", "RefocusDecoder", "POOL_MODES"]

POOL_MODES = ("fsca", "max", "mean")
_COND = 16


class FSCAPool(nn.Module):
    def __init__(self, channels: int, key_dim: int = DEPTH_FEATURES, mode: str = "fsca",
                 temperature: float = 8.0):
        super().__init__()
        if mode not in POOL_MODES:
            raise ValueError(f"pool mode must be one of {POOL_MODES}, got {mode!r}")
        self.mode = mode
        self.query = nn.Linear(DEPTH_FEATURES, key_dim, bias=False)            # B_Q
        with torch.no_grad():
            self.query.weight.copy_(torch.eye(key_dim, DEPTH_FEATURES))
        self.value = nn.Conv2d(channels, channels, 1)                          # W_V, b_V
        self.log_tau = nn.Parameter(torch.tensor(float(temperature)).log())

    def attention(self, keys: torch.Tensor, rel_target_um: torch.Tensor) -> torch.Tensor:
        """Softmax weights (B, D, h, w) over depth; keys (B, D, d_k, h, w) of unit norm."""
        q = self.query(depth_features(rel_target_um, -1)).permute(0, 3, 1, 2)      # (B, d_k, h, w)
        q = q * torch.rsqrt((q * q).sum(1, keepdim=True) + 1e-8)
        sim = (q[:, None] * keys.float()).sum(2)
        return torch.softmax(self.log_tau.exp() * sim, dim=1)

    def forward(self, fea: torch.Tensor, keys: torch.Tensor, rel_target_um: torch.Tensor) -> torch.Tensor:
        """fea (B, D, C, h, w), keys (B, D, d_k, h, w), rel_target_um (B, h, w) -> (B, C, h, w)."""
        if self.mode == "max":
            pooled = fea.amax(1)
        elif self.mode == "mean":
            pooled = fea.mean(1)
        else:
            a = self.attention(keys, rel_target_um)
            pooled = (a[:, :, None] * fea.float()).sum(1)
        return self.value(pooled)


class _Stage(nn.Module):
    """Pool one scale, join the coarser stage's output, SFT blocks, upsample (if not the last)."""

    def __init__(self, channels: int, incoming: int, out: int | None, pool: str, key_dim: int, blocks: int):
        super().__init__()
        self.pool = FSCAPool(channels, key_dim, mode=pool)
        self.join = nn.Conv2d(channels + incoming, channels, 1) if incoming else None
        self.cond = OffsetEncoding(_COND)
        self.blocks = nn.ModuleList([SFTResBlock(channels, _COND) for _ in range(blocks)])
        if not blocks:
            self.sft = SFT(channels, _COND)
            self.conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.up = nn.ConvTranspose2d(channels, out, 2, stride=2) if out else None

    def forward(self, fea, keys, rel_target, incoming, extra=None, extra_cond=None):
        x = self.pool(fea, keys, rel_target)
        if incoming is not None:
            x = self.join(torch.cat([x, incoming], 1))
        if extra is not None:
            x = x + extra
        c = self.cond(rel_target)
        if extra_cond is not None:
            c = c + extra_cond
        for blk in self.blocks:
            x = blk(x, c)
        if not self.blocks:
            x = x + self.conv(F.gelu(self.sft(x, c)))
        return F.gelu(self.up(x)) if self.up is not None else x


class RefocusDecoder(nn.Module):
    def __init__(self, channels: tuple[int, int, int] = (12, 24, 48), pool: str = "fsca",
                 key_dim: int = DEPTH_FEATURES):
        super().__init__()
        c1, c2, c3 = channels
        self.s3 = _Stage(c3, 0, c2, pool, key_dim, blocks=1)
        self.s2 = _Stage(c2, c2, c1, pool, key_dim, blocks=1)
        self.s1 = _Stage(c1, c1, None, pool, key_dim, blocks=0)
        self.base_in = nn.Conv2d(12, c1, 1)
        self.gap_cond = OffsetEncoding(_COND)
        self.head = nn.Conv2d(c1, 20, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, radiance: Radiance, target_um: torch.Tensor) -> torch.Tensor:
        """radiance of (H, W) px, target_um (B, H, W) µm -> image (B, 3, H, W) in [0, 1]."""
        base = blend(radiance.images, linear_weights(radiance.focus_um, target_um))
        gap = radiance.focus_um - target_um[:, None]
        g = gap[:, 0]
        for i in range(1, gap.shape[1]):
            g = torch.where(gap[:, i].abs() < g.abs(), gap[:, i], g)
        gap = g                                                         # signed, µm, to the nearest plane
        r1, r2, r3 = radiance.latents
        k1, k2, k3 = radiance.keys
        rel_t = target_um - radiance.z_um.mean(1)[:, None, None]
        t1 = F.avg_pool2d(rel_t[:, None], 2)
        t2 = F.avg_pool2d(t1, 2)
        t3 = F.avg_pool2d(t2, 2)
        x = self.s3(r3.float(), k3, t3[:, 0], None)
        x = self.s2(r2.float(), k2, t2[:, 0], x)
        extra = self.base_in(F.pixel_unshuffle(base * 2 - 1, 2))
        gcond = self.gap_cond(F.avg_pool2d(gap[:, None], 2)[:, 0])
        x = self.s1(r1.float(), k1, t1[:, 0], x, extra, gcond)
        y = F.pixel_shuffle(self.head(x), 2)
        r, a, b = y[:, :3], y[:, 3:4], y[:, 4:5]
        out = base + a * (base - gaussian_blur(base, 1.0)) + b * (gaussian_blur(base, 3.0) - base) + r
        return out.clamp(0, 1)
