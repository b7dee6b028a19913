"""Sharpness of an image where it has content: a foreground mask and the gradient energy.

Used by the refocus evaluations (the ``sharpness_ratio`` column: gradient energy of an output /
of the real image, on the real image's foreground) and by the ``optics`` baseline (the plane of
a stack with the most gradient energy is nearest best focus).

* **Gradient energy**: the mean over the mask of |∇Y|², Y the Rec. 601 luma in [0, 1], ∇ by
  central differences (``numpy.gradient``), in (1 / px)² of the image's own pitch. Only ratios
  of it are reported, so the pitch cancels.
* **Foreground mask** (`foreground_mask`), for tissue and for anything else a user may image
  (cells, fossils, a grey 16-bit capture rescaled to 8 bit): a pixel is foreground when it is
  *not glass* — its optical density summed over R, G, B exceeds 0.25 (``fqa.tissue``; empty
  glass is 230–250 in every channel) — *and not flat*: the luma's local standard deviation in a
  Gaussian window of σ = ``LOCAL_SIGMA_PX`` px exceeds ``NOISE_FACTOR`` × the image's noise σ
  (Immerkær's estimator, 1996) and at least one grey level. White glass fails the first test,
  a flat grey background (a rescaled fluorescence-free brightfield field) the second; tissue
  and cells pass both. When fewer than ``MIN_FOREGROUND`` of the pixels pass, the whole image
  is used.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from ..fqa.tissue import tissue_pixels

__all__ = ["luma", "noise_sigma", "foreground_mask", "gradient_energy", "LOCAL_SIGMA_PX", "NOISE_FACTOR",
           "MIN_FOREGROUND"]

#: Window (Gaussian σ, px) of the local standard deviation that tells structure from flat background.
LOCAL_SIGMA_PX = 2.0
#: A pixel is structure when its local standard deviation exceeds this many noise σ.
NOISE_FACTOR = 3.0
#: Below this fraction of foreground pixels the whole image is used.
MIN_FOREGROUND = 0.01

_IMMERKAER = np.array([[1.0, -2.0, 1.0], [-2.0, 4.0, -2.0], [1.0, -2.0, 1.0]])


def luma(rgb: np.ndarray) -> np.ndarray:
    """Rec. 601 luma (H, W) float64 in [0, 1] of uint8 (0..255) or float (0..1) RGB (H, W, 3)."""
    a = np.asarray(rgb)
    f = a.astype(np.float64) / 255.0 if a.dtype == np.uint8 else a.astype(np.float64)
    return 0.299 * f[..., 0] + 0.587 * f[..., 1] + 0.114 * f[..., 2]


def noise_sigma(y: np.ndarray) -> float:
    """Immerkær's fast estimate of the white-noise σ of a grey image (the unit of ``y``)."""
    h, w = y.shape
    if h < 3 or w < 3:
        return 0.0
    r = ndi.convolve(y, _IMMERKAER, mode="nearest")[1:-1, 1:-1]
    return float(np.sqrt(np.pi / 2) * np.abs(r).sum() / (6.0 * (w - 2) * (h - 2)))


def _as_uint8(rgb: np.ndarray) -> np.ndarray:
    a = np.asarray(rgb)
    return a if a.dtype == np.uint8 else np.clip(a * 255.0 + 0.5, 0, 255).astype(np.uint8)


def foreground_mask(rgb: np.ndarray) -> np.ndarray:
    """Boolean (H, W): not glass and not flat (see the module docstring)."""
    y = luma(rgb)
    m = ndi.gaussian_filter(y, LOCAL_SIGMA_PX, mode="nearest")
    var = ndi.gaussian_filter(y * y, LOCAL_SIGMA_PX, mode="nearest") - m * m
    local_sd = np.sqrt(np.maximum(var, 0.0))
    threshold = max(NOISE_FACTOR * noise_sigma(y), 1.0 / 255.0)
    mask = tissue_pixels(_as_uint8(rgb)) & (local_sd > threshold)
    if mask.mean() < MIN_FOREGROUND:
        return np.ones_like(mask)
    return mask


def gradient_energy(rgb: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean |∇Y|² ((1/px)², Y luma in [0, 1]) over ``mask`` (all pixels when None)."""
    gy, gx = np.gradient(luma(rgb))
    e = gx * gx + gy * gy
    if mask is None:
        return float(e.mean())
    return float(e[mask].mean()) if mask.any() else float(e.mean())
