"""A FocusLiteNN with hand-set weights, for tests that need a real, deterministic model.

Its one kernel is a zero-mean 7×7 Laplacian of Gaussian (σ = 1 px) on luminance
(0.299 R + 0.587 G + 0.114 B); with w_max = −1, w_min = +1 (Eq. 3.5) the score of a patch is
−(max − min) of the kernel's response: strong edges (sharp) give a low score, blur a higher one,
as a trained FocusLiteNN's. It is saved with `save_weights` and loaded back with `load_model`,
so tests go through the real weights file format.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from engine.fqa.focuslitenn import FocusLiteNN, load_model, save_weights

LUMA = (0.299, 0.587, 0.114)


def log_kernel(size: int = 7, sigma: float = 1.0) -> np.ndarray:
    """Zero-mean Laplacian of Gaussian, (size, size) float64, negative centre."""
    r = np.arange(size) - size // 2
    yy, xx = np.meshgrid(r, r, indexing="ij")
    q = (xx ** 2 + yy ** 2) / (2 * sigma ** 2)
    k = (q - 1) * np.exp(-q)
    return k - k.mean()


def laplacian_model() -> FocusLiteNN:
    model = FocusLiteNN(1)
    with torch.no_grad():
        k = torch.from_numpy(log_kernel()).float()
        model.conv.weight.copy_(torch.stack([c * k for c in LUMA])[None])
        model.conv.bias.zero_()
        model.w_max.fill_(-1.0)
        model.w_min.fill_(1.0)
        model.offset.zero_()
    return model.eval()


def write_laplacian_weights(path: Path) -> Path:
    """Save the hand-set model to ``path`` (a real weights file) and return the path."""
    save_weights(laplacian_model(), path, meta={"kind": "hand-set LoG kernel for tests"})
    return path


def load_laplacian_model(tmp_path: Path) -> FocusLiteNN:
    return load_model(write_laplacian_weights(Path(tmp_path) / "log-1k.pt"))
