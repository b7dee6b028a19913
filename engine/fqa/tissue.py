"""Tissue mask: which pixels and patches hold tissue rather than empty glass.

A pixel is tissue when its optical density, summed over R, G and B
(OD = Σ_c −log10((I_c + 1) / 256)), exceeds ``OD_THRESHOLD`` = 0.25. Empty glass in a brightfield
scan is 230–250 in every channel (OD sum ≤ 0.15); pale eosin reaches 0.3 and more. A patch is
tissue when at least ``MIN_TISSUE_FRACTION`` = 0.25 of its pixels are. Glass patches get NaN
in every heatmap: a focus score is meaningless where there is nothing to focus on.

Speed: the sum of logs is a log of a product, so the test is done without logarithms as
(R + 1)(G + 1)(B + 1) < 256³ · 10^(−0.25) (`PRODUCT_LIMIT`), in float32 where every product
(≤ 2²⁴) is exact. It decides every one of the 2²⁴ colours as the OD sum does
(tests/engine/fqa/test_tissue.py checks all of them). Patch fractions are exact integer counts.
"""
from __future__ import annotations

import numpy as np

OD_THRESHOLD = 0.25
MIN_TISSUE_FRACTION = 0.25

_OD_LUT = -np.log10((np.arange(256, dtype=np.float32) + 1.0) / 256.0)
#: Π_c (I_c + 1) below this ⟺ OD sum above OD_THRESHOLD.
PRODUCT_LIMIT = np.float32(256.0 ** 3 * 10.0 ** (-OD_THRESHOLD))


def optical_density_sum(rgb: np.ndarray) -> np.ndarray:
    """Per-pixel OD summed over the three channels, for uint8 RGB (…, 3)."""
    return _OD_LUT[rgb[..., 0]] + _OD_LUT[rgb[..., 1]] + _OD_LUT[rgb[..., 2]]


def tissue_pixels(rgb: np.ndarray) -> np.ndarray:
    """Boolean mask of tissue pixels for uint8 RGB (H, W, 3): OD sum > OD_THRESHOLD."""
    p = rgb[..., 0].astype(np.float32)
    p += 1
    q = rgb[..., 1].astype(np.float32)
    q += 1
    p *= q
    np.add(rgb[..., 2], 1, out=q, dtype=np.float32)
    p *= q
    return p < PRODUCT_LIMIT


def window_fractions(mask: np.ndarray, patch: int, stride: int) -> np.ndarray:
    """Fraction of True pixels of a boolean ``mask`` (H, W) in every patch×patch window whose
    top-left lies on the ``stride`` grid: (rows, cols) float32, rows = (H − patch) // stride + 1.
    Exact counts (integer sums over column segments, then over rows)."""
    H, W = mask.shape
    rows, cols = (H - patch) // stride + 1, (W - patch) // stride + 1
    if rows <= 0 or cols <= 0:
        return np.zeros((max(rows, 0), max(cols, 0)), np.float32)
    starts = np.arange(cols) * stride
    bounds = np.unique(np.concatenate([starts, starts + patch]))
    inside = bounds[bounds < W]
    segs = np.add.reduceat(mask.view(np.uint8), inside, axis=1, dtype=np.int32)  # (H, segments)
    cum = np.zeros((H, len(bounds)), np.int64)
    np.cumsum(segs[:, :len(bounds) - 1], axis=1, out=cum[:, 1:])
    # cum[:, k] counts the pixels left of bounds[k]; a window's count is a difference of two.
    col_counts = cum[:, np.searchsorted(bounds, starts + patch)] - cum[:, np.searchsorted(bounds, starts)]
    acc = np.zeros((H + 1, cols), np.int64)
    np.cumsum(col_counts, axis=0, out=acc[1:])
    r0 = np.arange(rows) * stride
    counts = acc[r0 + patch] - acc[r0]
    return (counts / float(patch * patch)).astype(np.float32)


def tissue_patches(rgb: np.ndarray, patch: int, stride: int) -> np.ndarray:
    """Boolean (rows, cols): which patch×patch windows on the ``stride`` grid of ``rgb`` are
    tissue (at least MIN_TISSUE_FRACTION of their pixels)."""
    return window_fractions(tissue_pixels(rgb), patch, stride) >= MIN_TISSUE_FRACTION
