"""A small line plot as PNG (PIL only): the validation SSIM curve of a training run."""
from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

__all__ = ["plot_curves"]

_COLOURS = ((31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14))


def plot_curves(path: Path, series: dict[str, list[tuple[float, float]]], title: str,
                xlabel: str = "step", ylabel: str = "", size: tuple[int, int] = (720, 420)) -> None:
    """Write a PNG with one polyline per named series of (x, y) points."""
    W, H = size
    left, right, top, bottom = 70, 20, 40, 50
    img = Image.new("RGB", size, "white")
    d = ImageDraw.Draw(img)
    pts = [p for s in series.values() for p in s]
    d.text((left, 12), title, fill="black")
    if pts:
        x0, x1 = min(p[0] for p in pts), max(p[0] for p in pts)
        y0, y1 = min(p[1] for p in pts), max(p[1] for p in pts)
        if x1 == x0:
            x1 = x0 + 1
        pad = (y1 - y0) * 0.05 or 0.01
        y0, y1 = y0 - pad, y1 + pad

        def sx(x):
            return left + (x - x0) / (x1 - x0) * (W - left - right)

        def sy(y):
            return H - bottom - (y - y0) / (y1 - y0) * (H - top - bottom)
        d.rectangle([left, top, W - right, H - bottom], outline="black")
        for k in range(5):
            yv = y0 + (y1 - y0) * k / 4
            d.line([left - 4, sy(yv), left, sy(yv)], fill="black")
            d.text((4, sy(yv) - 6), f"{yv:.4f}", fill="black")
            xv = x0 + (x1 - x0) * k / 4
            d.line([sx(xv), H - bottom, sx(xv), H - bottom + 4], fill="black")
            d.text((sx(xv) - 15, H - bottom + 8), f"{xv:.0f}", fill="black")
        for i, (name, s) in enumerate(series.items()):
            col = _COLOURS[i % len(_COLOURS)]
            if len(s) > 1:
                d.line([(sx(x), sy(y)) for x, y in s], fill=col, width=2)
            for x, y in s:
                d.ellipse([sx(x) - 2, sy(y) - 2, sx(x) + 2, sy(y) + 2], fill=col)
            d.text((W - right - 200, top + 8 + 14 * i), name, fill=col)
    d.text((W // 2 - 20, H - 20), xlabel, fill="black")
    d.text((4, top - 16), ylabel, fill="black")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
