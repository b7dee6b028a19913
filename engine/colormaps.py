"""Colour maps and legends for heatmaps, shared by the exports and the viewer's overlays.

`LUTS[name]` is a (256, 3) uint8 table. ``viridis`` (perceptually uniform, colour-blind safe) and
``focus`` (green = sharp → yellow → red = blurry) are built by linear interpolation in RGB
between anchor colours. `colorize` maps values to RGBA with NaN transparent; `legend_png`
draws a horizontal colour bar with its ticks in the heatmap's own units.
"""
from __future__ import annotations

import numpy as np

_ANCHORS = {
    "viridis": [(68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37)],
    "focus": [(26, 152, 80), (145, 207, 96), (254, 224, 139), (252, 141, 89), (215, 48, 39)],
    "uncertainty": [(247, 251, 255), (158, 202, 225), (66, 146, 198), (8, 69, 148), (8, 29, 88)],
}


def _lut(anchors) -> np.ndarray:
    a = np.asarray(anchors, np.float64)
    t = np.linspace(0, 1, len(a))
    x = np.linspace(0, 1, 256)
    return np.stack([np.interp(x, t, a[:, c]) for c in range(3)], 1).round().astype(np.uint8)


LUTS: dict[str, np.ndarray] = {name: _lut(a) for name, a in _ANCHORS.items()}


def colorize(values: np.ndarray, vmin: float, vmax: float, cmap: str = "focus", alpha: int = 255) -> np.ndarray:
    """(H, W) float → (H, W, 4) uint8 RGBA; NaN → fully transparent."""
    v = np.asarray(values, np.float64)
    span = vmax - vmin if vmax > vmin else 1.0
    idx = np.clip((np.nan_to_num(v, nan=vmin) - vmin) / span * 255 + 0.5, 0, 255).astype(np.uint8)
    out = np.empty(v.shape + (4,), np.uint8)
    out[..., :3] = LUTS[cmap][idx]
    out[..., 3] = np.where(np.isfinite(v), alpha, 0)
    return out


def robust_range(values: np.ndarray, lo: float = 2, hi: float = 98) -> tuple[float, float]:
    """Percentile range of the finite values (for a colour scale that ignores outliers)."""
    v = np.asarray(values)[np.isfinite(values)]
    if v.size == 0:
        return 0.0, 1.0
    a, b = np.percentile(v, [lo, hi])
    return float(a), float(b if b > a else a + 1e-6)


def legend_image(vmin: float, vmax: float, label: str, cmap: str = "focus", width: int = 320) -> np.ndarray:
    """A white (60, width, 3) uint8 legend: the colour bar, min/mid/max ticks and a label."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (width, 60), (255, 255, 255))
    bar = np.repeat(LUTS[cmap][np.linspace(0, 255, width - 20).astype(int)][None], 14, 0)
    img.paste(Image.fromarray(bar), (10, 22))
    d = ImageDraw.Draw(img)
    d.text((10, 4), label, fill=(0, 0, 0))
    for frac in (0.0, 0.5, 1.0):
        x = 10 + int(frac * (width - 21))
        d.line([(x, 36), (x, 40)], fill=(0, 0, 0))
        txt = f"{vmin + frac * (vmax - vmin):.3g}"
        d.text((min(max(x - 3 * len(txt), 0), width - 6 * len(txt)), 43), txt, fill=(0, 0, 0))
    return np.asarray(img)
