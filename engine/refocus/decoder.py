"""The refocus module (thesis Sec. 5.2.3, Figs. 5.3–5.4): latent field + target focus map -> image.

``FSCAPool`` is Focal Stack Cross-Attention pooling (Eq. 5.5), pixel-wise over the depth axis::

    FSCA(fea, f_t) = Σ_d softmax_d(τ · ⟨Q, K_d⟩ / (‖Q‖ ‖K_d‖)) · V_d
    Q   = net_Q(f_t)   = B_Q · φ(f_t − z̄)                      (1×1 conv of the depth code)
    K_d = net_K(fea_d) = W_K · fea_d + A · φ(z_d − z̄)          (encoder.KeyHead, cached)
    V_d = net_V(fea_d) = W_V · fea_d + b_V                     (1×1 conv)

φ is the fixed Fourier depth code (``layers.depth_features``), z̄ the centre of the depth bins,
f_t the target map average-pooled to the scale's px. A field without keys at 1/2 px
(``RefocusNet(fine_keys=False)``) pools that scale with the 1/4-px weights upsampled bilinearly
(still convex weights over depth). The keys depend on the field only, so the
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

__all__ = ["FSCAPool", "RefocusDecoder", "POOL_MODES", "DETAIL_SIGMAS_PX"]

POOL_MODES = ("fsca", "max", "mean")
#: σ (px) of the fine and coarse Gaussians G₁ and G₃ of the detail operators.
DETAIL_SIGMAS_PX = (1.0, 3.0)
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

    def attention(self, keys: torch.Tensor, rel_target_um: torch.Tensor, key_scale: float = 1.0) -> torch.Tensor:
        """Softmax weights (B, D, h, w) over depth; keys (B, D, d_k, h, w) of unit norm (stored
        as ``key_scale`` × keys, e.g. int8 keys × 1/127); rel_target_um (B, h, w), or (B, 1, 1)
        for a uniform target."""
        q = self.query(depth_features(rel_target_um, -1)).permute(0, 3, 1, 2)      # (B, d_k, h|1, w|1)
        q = q * torch.rsqrt((q * q).sum(1, keepdim=True) + 1e-8)
        sim = q[:, None, 0] * keys[:, :, 0].float()                                # ⟨Q, K_d⟩, one key
        for k in range(1, keys.shape[2]):                                          # channel at a time:
            sim = sim.addcmul_(q[:, None, k], keys[:, :, k].float())               # no (B,D,d_k,h,w) temp
        return torch.softmax((self.log_tau.exp() * key_scale) * sim, dim=1)

    def forward(self, fea: torch.Tensor, keys: torch.Tensor | None, rel_target_um: torch.Tensor,
                fea_scale: torch.Tensor | None = None, key_scale: float = 1.0,
                weights: torch.Tensor | None = None) -> torch.Tensor:
        """fea (B, D, C, h, w), keys (B, D, d_k, h, w), rel_target_um (B, h, w) or (B, 1, 1) -> (B, C, h, w).

        A quantised field (`radiance.CompactRadiance`) is pooled as stored: ``fea`` int8 with a
        per-channel ``fea_scale`` (B, 1, C, 1, 1), ``keys`` int8 × ``key_scale``. Pooling is linear
        in ``fea`` per channel and the similarity in the keys, so the scales are applied once to
        the pooled features and to the similarities instead of to every stored value.
        ``weights`` (B, D, h, w), given instead of ``keys``, are attention weights computed
        elsewhere (a coarser scale's, upsampled, for a field without keys at this scale)."""
        if self.mode == "max":
            pooled = fea.amax(1).float()
        elif self.mode == "mean":
            pooled = fea.float().mean(1)
        else:
            a = weights if weights is not None else self.attention(keys, rel_target_um, key_scale)
            pooled = a[:, :1] * fea[:, 0].float()
            for d in range(1, fea.shape[1]):
                pooled = pooled.addcmul_(a[:, d:d + 1], fea[:, d].float())
        if fea_scale is not None:
            pooled = pooled * fea_scale[:, 0]
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

    def forward(self, fea, keys, rel_target, incoming, extra=None, extra_cond=None, scales=(None, 1.0),
                weights=None):
        x = self.pool(fea, keys, rel_target, *scales, weights=weights)
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
        """radiance of (H, W) px, target_um (B, H, W) µm -> image (B, 3, H, W) in [0, 1].

        A spatially uniform target (the focus knob) over uniform input focus maps takes the same
        path on (B, 1, 1) maps: the per-pixel codes, SFT affines, blend weights and the blurs of
        the base are computed once per image instead of once per pixel (bit-for-bit the same
        operations, broadcast)."""
        target = _uniform_or_map(target_um)
        focus = _uniform_or_map(radiance.focus_um)
        weights = linear_weights(focus, target)
        base = blend(radiance.images, weights)
        if weights.shape[-2:] == (1, 1) and radiance.has_blurred(DETAIL_SIGMAS_PX):
            # blur(Σ w_i I_i) = Σ w_i blur(I_i): the planes' blurs were cached with the field
            s1, s3 = (blend(radiance.blurred_images(s), weights) for s in DETAIL_SIGMAS_PX)
        else:
            s1, s3 = (gaussian_blur(base, s) for s in DETAIL_SIGMAS_PX)
        fine, coarse = base - s1, s3 - base
        gap = focus - target[:, None]
        g = gap[:, 0]
        for i in range(1, gap.shape[1]):
            g = torch.where(gap[:, i].abs() < g.abs(), gap[:, i], g)
        gap = g                                                         # signed, µm, to the nearest plane
        r1, r2, r3 = radiance.latents
        k1, k2, k3 = radiance.keys if len(radiance.keys) == 3 else (None, *radiance.keys)
        q1, q2, q3 = radiance.latent_scales or (None, None, None)
        ks = radiance.key_scale
        rel_t = target - radiance.z_um.mean(1)[:, None, None]
        t1, t2, t3 = _pyramid(rel_t)
        x = self.s3(r3, k3, t3, None, scales=(q3, ks))
        a1 = a2 = None
        if k1 is None and self.s2.pool.mode == "fsca":   # no fine keys: the 1/4-px attention, upsampled
            a2 = self.s2.pool.attention(k2, t2, ks)
            a1 = F.interpolate(a2, scale_factor=2, mode="bilinear", align_corners=False)
        x = self.s2(r2, k2, t2, x, scales=(q2, ks), weights=a2)
        extra = self.base_in(F.pixel_unshuffle(base * 2 - 1, 2))
        gcond = self.gap_cond(_pyramid(gap)[0])
        x = self.s1(r1, k1, t1, x, extra, gcond, scales=(q1, ks), weights=a1)
        y = F.pixel_shuffle(self.head(x), 2)
        r, a, b = y[:, :3], y[:, 3:4], y[:, 4:5]
        out = base + a * fine + b * coarse + r
        return out.clamp(0, 1)


def _uniform_or_map(m: torch.Tensor) -> torch.Tensor:
    """``m`` (…, H, W) as (…, 1, 1) when every pixel of each map holds the same value, else ``m``."""
    flat = m.flatten(-2)
    if bool((flat == flat[..., :1]).all()):
        return flat[..., :1].unsqueeze(-1)
    return m


def _pyramid(m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A (B, H, W) map average-pooled to 1/2, 1/4 and 1/8 px; a uniform (B, 1, 1) map as it is."""
    if m.shape[-2:] == (1, 1):
        return m, m, m
    t1 = F.avg_pool2d(m[:, None], 2)
    t2 = F.avg_pool2d(t1, 2)
    return t1[:, 0], t2[:, 0], F.avg_pool2d(t2, 2)[:, 0]
