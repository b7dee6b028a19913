"""WSI-DISTS: a perceptual distance for slide images (thesis Sec. 5.2.4, Eqs. 5.8–5.9, 5.11).

``SlideFeatures`` is a small VGG-style CNN (four stages of two 3×3 convs + ReLU, widths
16/32/64/96, L2 pooling between stages as DISTS does) trained here to tell which slide a patch
comes from (``dists_train``), the way the thesis fine-tunes VGG16 on Kimia Path24: no ImageNet
weights can be downloaded. Its features f^l, l = 1..4, plus the pixels as layer 0, enter
Eq. 5.9::

    D(x, y) = 1 − Σ_l Σ_c [ α_c^l · (2 μ_x μ_y + c₁) / (μ_x² + μ_y² + c₁)
                          + β_c^l · (2 σ_xy + c₂) / (σ_x² + σ_y² + c₂) ]

with μ, σ², σ_xy the mean, variance and covariance of channel c of layer l over the whole
image, and α, β ≥ 0 summing to 1 over all layers and channels (a softmax of free logits).
D(x, x) = 0, D is symmetric and ≥ 0 (each term is ≤ 1, so the weighted sum is ≤ 1). The
weights α, β are fitted by Eq. 5.11 on pairs of phantom patches of one place at two focus
levels (``dists_train``).

Images are float (B, 3, H, W) in [0, 1], any H, W ≥ 16 px, at the model's 0.25 µm/px.
Weights file: ``{"config": ..., "features": state_dict, "logits": (2, Σ C_l) tensor,
"meta": ...}`` read with ``torch.load(..., weights_only=True)``.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
import torch.nn.functional as F

from .weights import load_blob, save_atomic
from ..resources import WEIGHTS_DIR

__all__ = ["SlideFeatures", "WSIDists", "SHIPPED_DISTS", "shipped_dists", "load_dists", "save_dists",
           "STAGE_WIDTHS"]

SHIPPED_DISTS = WEIGHTS_DIR / "wsi-dists.pt"
STAGE_WIDTHS = (16, 32, 64, 96)
_C1 = 1e-6
_C2 = 1e-6
#: Pixel statistics normalisation (RGB mean / std of stained tissue, roughly): centres the input.
_MEAN = (0.75, 0.62, 0.72)
_STD = (0.15, 0.18, 0.14)


class L2Pool(nn.Module):
    """√(Hann-blurred x²), stride 2: an alias-free 2× downsampling (Henaff & Simoncelli; DISTS)."""

    def __init__(self, channels: int):
        super().__init__()
        h = torch.tensor([0.5, 1.0, 0.5])
        k = h[:, None] * h[None, :]
        self.register_buffer("kernel", (k / k.sum()).expand(channels, 1, 3, 3).contiguous(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.conv2d(x * x, self.kernel, stride=2, padding=1, groups=x.shape[1])
        return (y + 1e-12).sqrt()


class SlideFeatures(nn.Module):
    """VGG-style feature extractor; ``forward`` returns the ReLU output of each stage."""

    def __init__(self, widths: tuple[int, ...] = STAGE_WIDTHS, classes: int = 0):
        super().__init__()
        self.widths = tuple(int(w) for w in widths)
        stages, c = [], 3
        for w in self.widths:
            stages.append(nn.Sequential(nn.Conv2d(c, w, 3, padding=1), nn.ReLU(),
                                        nn.Conv2d(w, w, 3, padding=1), nn.ReLU()))
            c = w
        self.stages = nn.ModuleList(stages)
        self.pools = nn.ModuleList([L2Pool(w) for w in self.widths[:-1]])
        self.register_buffer("mean", torch.tensor(_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_STD).view(1, 3, 1, 1), persistent=False)
        self.head = nn.Linear(c, classes) if classes else None     # only for training the features

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        h = (x - self.mean) / self.std
        feats = []
        for i, stage in enumerate(self.stages):
            if i:
                h = self.pools[i - 1](h)
            h = stage(h)
            feats.append(h)
        return feats

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits (B, classes) from the global mean of the last stage."""
        return self.head(self(x)[-1].mean((2, 3)))


class WSIDists(nn.Module):
    """Eq. 5.9 over layer 0 (the pixels) and the four stages of ``SlideFeatures``."""

    def __init__(self, features: SlideFeatures | None = None):
        super().__init__()
        self.features = features or SlideFeatures()
        self.features.head = None
        self.channels = (3, *self.features.widths)
        self.logits = nn.Parameter(torch.zeros(2, sum(self.channels)))     # α (row 0), β (row 1)

    def weights(self) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """(α per layer, β per layer): ≥ 0 and summing to 1 over all of them together."""
        w = torch.softmax(self.logits.flatten(), 0).view(2, -1)
        return list(w[0].split(self.channels)), list(w[1].split(self.channels))

    def layers(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [x, *self.features(x)]

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """D(x, y) per image, (B,); x (B, 3, H, W) and y (B or 1, 3, H, W) in [0, 1] (one y is
        compared with every x and its features are computed once)."""
        if x.ndim != 4 or y.ndim != 4 or x.shape[1:] != y.shape[1:] or x.shape[1] != 3 \
                or y.shape[0] not in (1, x.shape[0]):
            raise ValueError(f"WSI-DISTS takes two (B, 3, H, W) images of one shape, got {tuple(x.shape)} "
                             f"and {tuple(y.shape)}")
        b = x.shape[0]
        if y.shape[0] == b:
            pairs = [(f[:b], f[b:]) for f in self.layers(torch.cat([x, y]).float())]
        else:
            pairs = list(zip(self.layers(x.float()), self.layers(y.float())))
        alpha, beta = self.weights()
        score = torch.zeros(b, dtype=torch.float32, device=x.device)
        for (fx, fy), a, bt in zip(pairs, alpha, beta):
            fx, fy = fx.flatten(2), fy.flatten(2)
            mx, my = fx.mean(2), fy.mean(2)
            vx = (fx - mx[..., None]).pow(2).mean(2)
            vy = (fy - my[..., None]).pow(2).mean(2)
            cxy = ((fx - mx[..., None]) * (fy - my[..., None])).mean(2)
            s1 = (2 * mx * my + _C1) / (mx * mx + my * my + _C1)
            s2 = (2 * cxy + _C2) / (vx + vy + _C2)
            score = score + (s1 * a).sum(1) + (s2 * bt).sum(1)
        return (1 - score).clamp_min(0)


def save_dists(model: WSIDists, path: Path, meta: dict | None = None) -> None:
    """Write the extractor, the α/β logits and ``meta`` (atomically)."""
    save_atomic({"config": {"widths": list(model.features.widths)},
                 "features": {k: v.detach().clone() for k, v in model.features.state_dict().items()},
                 "logits": model.logits.detach().clone(), "meta": dict(meta or {})}, path)


def load_dists(path: Path) -> tuple[WSIDists, dict]:
    """(frozen WSIDists in eval mode, meta) from a weights file."""
    blob = load_blob(path, ("config", "features", "logits"), "WSI-DISTS")
    model = WSIDists(SlideFeatures(tuple(blob["config"]["widths"])))
    model.features.load_state_dict(blob["features"])
    with torch.no_grad():
        model.logits.copy_(blob["logits"])
    model.requires_grad_(False)
    return model.eval(), dict(blob.get("meta", {}))


def shipped_dists() -> Path | None:
    return SHIPPED_DISTS if SHIPPED_DISTS.exists() else None
