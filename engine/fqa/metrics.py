"""Classical sharpness metrics from thesis Ch. 2 (Eqs. 2.1–2.18), vectorised over patch grids.

Every metric scores square patches of a greyscale image (float32 in [0, 1], level-0 px) and is
computed *densely*: `score_grid(gray, patch, stride)` returns the score of every patch window
whose top-left corner lies on the ``stride`` grid, computing per-pixel quantities once over the
whole image and averaging them over windows with integral images. `score_patches(patches)`
scores a batch (N, h, w) of separate patches, one window each.

Conventions: each metric says whether a higher value means sharper (`higher_is_sharper`);
`blur_score` flips it so that higher = blurrier, as FocusLiteNN and the label |z − z*| are.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy import ndimage

LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def to_gray(rgb: np.ndarray) -> np.ndarray:
    """uint8 or float RGB (…, H, W, 3) → float32 luminance in [0, 1]."""
    a = np.asarray(rgb)
    g = a[..., :3].astype(np.float32) @ LUMA
    return g / 255.0 if a.dtype == np.uint8 else g


def window_means(values: np.ndarray, patch: int, stride: int, dtype=np.float32) -> np.ndarray:
    """Mean of ``values`` (H, W) over every patch×patch window on the stride grid, by an
    integral image (float64): (rows, cols) with rows = (H − patch) // stride + 1."""
    H, W = values.shape
    rows, cols = (H - patch) // stride + 1, (W - patch) // stride + 1
    if rows <= 0 or cols <= 0:
        return np.zeros((max(rows, 0), max(cols, 0)), dtype)
    ii = np.zeros((H + 1, W + 1), np.float64)
    np.cumsum(np.cumsum(values, axis=0, dtype=np.float64), axis=1, out=ii[1:, 1:])
    r0 = np.arange(rows) * stride
    c0 = np.arange(cols) * stride
    r1, c1 = r0 + patch, c0 + patch
    s = ii[np.ix_(r1, c1)] - ii[np.ix_(r0, c1)] - ii[np.ix_(r1, c0)] + ii[np.ix_(r0, c0)]
    return (s / (patch * patch)).astype(dtype)


def _shift_diff(g: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """g(x + dx, y + dy) − g(x, y) for dx, dy ≥ 0, edge-replicated so the map keeps g's shape."""
    p = np.pad(g, ((0, dy), (0, dx)), mode="edge")
    H, W = g.shape
    return p[dy:dy + H, dx:dx + W] - g


@dataclass(frozen=True)
class Metric:
    """A sharpness metric. ``maps`` turns a grey image into the per-pixel maps whose window
    means ``combine`` turns into the score (a plain mean when ``combine`` is None)."""

    name: str
    equation: str
    higher_is_sharper: bool
    maps: Callable[[np.ndarray], list[np.ndarray]]
    combine: Callable[[list[np.ndarray]], np.ndarray] | None = None
    per_patch: Callable[[np.ndarray], float] | None = None  # for non-additive metrics

    def score_grid(self, gray: np.ndarray, patch: int, stride: int,
                   grid: tuple[int, int, int, int] | None = None) -> np.ndarray:
        """Scores of the ``patch``-px windows at ``stride`` over ``gray`` (H, W), or over the
        part ``grid`` = (y0, y1, x0, x1) of it: the per-pixel maps are then computed on all of
        ``gray``, so the pixels around that part are their context (a halo; no border effects
        where the grid meets the edge of a tile)."""
        gray = np.asarray(gray, np.float32)
        y0, y1, x0, x1 = grid if grid is not None else (0, gray.shape[0], 0, gray.shape[1])
        if self.per_patch is not None:
            win = np.lib.stride_tricks.sliding_window_view(gray[y0:y1, x0:x1], (patch, patch))[::stride, ::stride]
            return np.array([[self.per_patch(w) for w in row] for row in win], np.float32).reshape(win.shape[:2])
        # Means stay float64 until combined: a variance is a difference of two close means.
        means = [window_means(m[y0:y1, x0:x1], patch, stride, np.float64) for m in self.maps(gray)]
        return (means[0] if self.combine is None else self.combine(means)).astype(np.float32)

    def score_patches(self, patches: np.ndarray) -> np.ndarray:
        """Scores of N separate patches (N, h, w) grey, or (N, h, w, 3) RGB."""
        p = np.asarray(patches)
        if p.ndim == 4:
            p = to_gray(p)
        n, h, w = p.shape
        return np.array([self.score_grid(q, min(h, w), min(h, w))[0, 0] for q in p], np.float32)

    def blur_score(self, values: np.ndarray) -> np.ndarray:
        """Orient scores so that higher = blurrier."""
        return -values if self.higher_is_sharper else values


# ---------------------------------------------------------------- per-pixel maps
_SOBEL_X = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], np.float32)
_LAPLACE = np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], np.float32)


def _conv(g, k):
    return ndimage.convolve(g, k, mode="reflect")


def _variance_maps(g):
    return [g, g * g]


def _variance(means):
    mu, mu2 = means
    return np.maximum(mu2 - mu * mu, 0)


def _normalized_variance(means):
    return _variance(means) / np.maximum(means[0], 1e-6)


def _brenner(g):  # Eq. 2.4 with δ = (2, 0): Brenner's gradient
    return [_shift_diff(g, 0, 2) ** 2]


def _abs_diff(g):  # Eq. 2.3 with δ = (1, 0) and (0, 1)
    return [0.5 * (np.abs(_shift_diff(g, 0, 1)) + np.abs(_shift_diff(g, 1, 0)))]


def _contrast(g):  # Eq. 2.5: 8-neighbourhood absolute differences
    p = np.pad(g, 1, mode="edge")
    H, W = g.shape
    s = np.zeros_like(g)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            s += np.abs(g - p[1 + dy:1 + dy + H, 1 + dx:1 + dx + W])
    return [s]


def _autocorrelation(g):  # Eq. 2.6 (Vollath F4 form): I² − I·I(x+1) on both axes
    # I² − I·I(x + δ) = −I·(I(x + δ) − I), averaged over δ = (1, 0) and (0, 1)
    return [-0.5 * g * (_shift_diff(g, 0, 1) + _shift_diff(g, 1, 0))]


def _tenengrad(g):  # Eq. 2.15
    gx = _conv(g, _SOBEL_X)
    gy = _conv(g, _SOBEL_X.T)
    return [gx * gx + gy * gy]


def _sum_modified_laplacian(g):  # Eq. 2.16
    lx = _conv(g, np.array([[-1, 2, -1]], np.float32))
    ly = _conv(g, np.array([[-1], [2], [-1]], np.float32))
    return [np.abs(lx) + np.abs(ly)]


def _energy_of_laplacian(g):  # Eq. 2.17
    return [_conv(g, _LAPLACE) ** 2]


def _laplacian_moments(g):  # variance of Laplacian: window mean of L and L²
    lap = _conv(g, _LAPLACE)
    return [lap, lap * lap]


def _dog(g):  # Eq. 2.18, absolute band-pass response (σ1 = 1, σ2 = 2 px)
    return [np.abs(ndimage.gaussian_filter(g, 1.0) - ndimage.gaussian_filter(g, 2.0))]


def _haar_detail(g):  # Eq. 2.12: |HL| + |LH| + |HH| of a one-level Haar transform, per pixel
    a = g
    b = np.roll(g, -1, 1)
    c = np.roll(g, -1, 0)
    d = np.roll(c, -1, 1)
    return [0.5 * (np.abs(a - b + c - d) + np.abs(a + b - c - d) + np.abs(a - b - c + d))]


def _haar_step(ll: np.ndarray, s: int) -> tuple[np.ndarray, np.ndarray]:
    """One level of an undecimated (shift-invariant) 2D Haar transform with taps ``s`` px apart:
    (next LL = the mean of the four taps, |HL| + |LH| + |HH| in the same mean normalisation)."""
    b = ll + _shift_diff(ll, 0, s)
    c = ll + _shift_diff(ll, s, 0)
    d = c + _shift_diff(c, 0, s)
    a = ll
    detail = 0.25 * (np.abs(a - b + c - d) + np.abs(a + b - c - d) + np.abs(a - b - c + d))
    return 0.25 * (a + b + c + d), detail


def _wavelet_ratio_maps(g):  # Eq. 2.14: ‖W_LL³‖₁ over the detail energy of levels 2 and 3
    ll1, _ = _haar_step(g, 1)       # level-1 details are left out, as Eq. 2.14 does (sensor noise)
    ll2, d2 = _haar_step(ll1, 2)
    ll3, d3 = _haar_step(ll2, 4)
    return [ll3, d2, d3]


def _wavelet_ratio(means):
    # A decimated orthonormal DWT holds HW/4^i coefficients 2^i times the mean-normalised ones at
    # level i: ‖LL³‖₁ = HW·mean/8 and ‖D^i‖₁ = HW·mean|d_i|/2^i, so the ratio is as below.
    ll3, d2, d3 = means
    return ll3 / np.maximum(2.0 * d2 + d3, 1e-9)


def _entropy(patch):  # Eq. 2.10
    hist = np.bincount(np.clip(patch * 255 + 0.5, 0, 255).astype(np.int32).ravel(), minlength=256)
    p = hist[hist > 0] / patch.size
    return float(-(p * np.log2(p)).sum())


def _bayes_spectral_entropy(patch):  # Eq. 2.11, on the normalised DCT-like power spectrum
    F = np.abs(np.fft.rfft2(patch - patch.mean()))
    h, w = F.shape
    u = np.minimum(np.arange(h), h - np.arange(h))[:, None]
    v = np.arange(w)[None, :]
    m = (u + v) <= max(h, w) // 4
    s1 = (F[m] ** 2).sum()
    s2 = F[m].sum() ** 2
    return float(1 - s1 / s2) if s2 > 0 else 0.0


METRICS: dict[str, Metric] = {m.name: m for m in [
    Metric("variance", "Eq. 2.1", True, _variance_maps, _variance),
    Metric("normalized_variance", "Eq. 2.2", True, _variance_maps, _normalized_variance),
    Metric("abs_difference", "Eq. 2.3", True, _abs_diff),
    Metric("brenner", "Eq. 2.4", True, _brenner),
    Metric("contrast", "Eq. 2.5", True, _contrast),
    Metric("autocorrelation", "Eq. 2.6", True, _autocorrelation),
    Metric("entropy", "Eq. 2.10", True, lambda g: [], per_patch=_entropy),
    Metric("spectral_entropy", "Eq. 2.11", True, lambda g: [], per_patch=_bayes_spectral_entropy),
    Metric("wavelet_detail", "Eq. 2.12", True, _haar_detail),
    Metric("wavelet_ratio", "Eq. 2.14", False, _wavelet_ratio_maps, _wavelet_ratio),
    Metric("tenengrad", "Eq. 2.15", True, _tenengrad),
    Metric("sum_modified_laplacian", "Eq. 2.16", True, _sum_modified_laplacian),
    Metric("energy_of_laplacian", "Eq. 2.17", True, _energy_of_laplacian),
    Metric("variance_of_laplacian", "Eq. 2.17 (variance form)", True, _laplacian_moments, _variance),
    Metric("difference_of_gaussians", "Eq. 2.18", True, _dog),
]}
