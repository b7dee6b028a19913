"""FocusLiteNN (thesis Sec. 3.2.3): a one-layer CNN that scores focus quality.

Eq. 3.4: N kernels of 7×7 over the three RGB channels, stride 5, with a bias per kernel.
Eq. 3.5: the score of a patch is ⟨w1, max(x)⟩ + ⟨w2, min(x)⟩ over the spatial max and min of
each kernel's response map, plus a scalar offset (an affine shift that PLCC ignores but keeps the
score in label units). Higher score = blurrier (trained against |z − z*| in µm, Eq. 3.9).

Parameters: N·(7·7·3 + 1) + 2N + 1 (N = 1: 151; the thesis counts 148 for the kernel alone).

Input: float32 tensors (B, 3, H, W) with values in [0, 1]. Training patches are 235×235 px at
0.25 µm/px (level 0). For whole slides, `response_map` runs the convolution once over a large
tile; `pool_patches` then takes the max/min over each patch window of the response map, so a
heatmap costs one convolution, not one per patch (see engine/fqa/heatmap.py).
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
import torch.nn.functional as F
from ..resources import WEIGHTS_DIR

KERNEL = 7
STRIDE = 5
PATCH = 235
#: Pixel statistics the input is standardised with (fixed, not learned).
_MEAN = 0.5
_STD = 0.25


def _log_kernel(size: int, sigma: float) -> torch.Tensor:
    """Zero-mean Laplacian of Gaussian (size, size), negative centre, unit L1 norm."""
    r = torch.arange(size, dtype=torch.float32) - size // 2
    q = (r[:, None] ** 2 + r[None, :] ** 2) / (2 * sigma ** 2)
    k = (q - 1) * torch.exp(-q)
    k = k - k.mean()
    return k / k.abs().sum()


class FocusLiteNN(nn.Module):
    """The N-kernel FocusLiteNN. `forward(x)` scores whole patches: (B, 3, H, W) → (B,)."""

    def __init__(self, kernels: int = 1):
        super().__init__()
        self.kernels = int(kernels)
        self.conv = nn.Conv2d(3, self.kernels, KERNEL, stride=STRIDE, bias=True)
        # Initialisation (ours; the thesis does not give one): each kernel starts as a Laplacian
        # of Gaussian on luminance (σ from 0.8 to 2 px over the kernels) plus the default random
        # weights scaled down, and the score as "minus the response range": a wide range (sharp
        # detail) gives a low score. Training then starts from a working band-pass detector.
        with torch.no_grad():
            sigmas = torch.linspace(0.8, 2.0, self.kernels) if self.kernels > 1 else torch.tensor([1.0])
            luma = torch.tensor([0.299, 0.587, 0.114])[:, None, None]
            for i, sigma in enumerate(sigmas.tolist()):
                self.conv.weight[i] = 0.1 * self.conv.weight[i] + luma * _log_kernel(KERNEL, sigma)
            self.conv.bias.zero_()
        self.w_max = nn.Parameter(torch.full((self.kernels,), -1.0 / self.kernels))
        self.w_min = nn.Parameter(torch.full((self.kernels,), 1.0 / self.kernels))
        self.offset = nn.Parameter(torch.zeros(()))
        #: Metadata of loaded weights (training config, validation, ``score_units``).
        self.meta: dict = {}

    @property
    def score_units(self) -> str | None:
        """"µm" when the score is calibrated to defocus |z − z*| in µm, else None."""
        return self.meta.get("score_units")

    def response_map(self, x: torch.Tensor) -> torch.Tensor:
        """Kernel responses (B, N, H', W') on the stride-5 grid: H' = (H − 7) // 5 + 1.
        Response (i, j) sees input pixels [5i, 5i + 7) × [5j, 5j + 7)."""
        return self.conv((x - _MEAN) / _STD)

    def combine(self, pooled_max: torch.Tensor, pooled_min: torch.Tensor) -> torch.Tensor:
        """Eq. 3.5 on pooled responses (…, N) → (…)."""
        return pooled_max @ self.w_max + pooled_min @ self.w_min + self.offset

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = self.response_map(x).flatten(2)
        return self.combine(r.amax(dim=2), r.amin(dim=2))

    def pool_patches(self, response: torch.Tensor, window: int, step: int) -> torch.Tensor:
        """Scores of patch windows over a response map (B, N, H', W') → (B, rows, cols).
        ``window`` and ``step`` are in response-grid cells (one cell = 5 px)."""
        mx = F.max_pool2d(response, window, step)
        mn = -F.max_pool2d(-response, window, step)
        return self.combine(mx.permute(0, 2, 3, 1), mn.permute(0, 2, 3, 1))

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters())


RESOURCE_DIR = WEIGHTS_DIR


def weights_path(kernels: int) -> Path:
    """Where the shipped weights of the N-kernel model live."""
    return RESOURCE_DIR / f"focuslitenn-{kernels}k.pt"


def save_weights(model: FocusLiteNN, path: Path, meta: dict | None = None) -> None:
    """Save a state dict plus plain metadata (loadable with weights_only=True)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    torch.save({"kernels": model.kernels, "state_dict": model.state_dict(), "meta": dict(meta or {})}, path)


def load_model(name_or_path: str | Path = "focuslitenn-1") -> FocusLiteNN:
    """Load shipped weights by name (``focuslitenn-1|2|10``) or from a file path."""
    name = str(name_or_path)
    if name.startswith("focuslitenn-") and not Path(name).exists():
        kernels = int(name.split("-")[1].rstrip("k"))
        path = weights_path(kernels)
    else:
        path = Path(name)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such weights file (train with `finefocus fqa train`)")
    blob = torch.load(path, map_location="cpu", weights_only=True)
    model = FocusLiteNN(blob["kernels"])
    model.load_state_dict(blob["state_dict"])
    model.meta = dict(blob.get("meta", {}))
    model.eval()
    return model
