"""`DisplayRange`: how grey, 16-bit and float samples become the 8-bit RGB the viewer shows.

A slide whose samples are not uint8 (16-bit cameras, float data) is shown through one linear
window ``[low, high]`` (in the file's sample values): ``low`` → 0, ``high`` → 255, clipped,
rounded. One window per slide, the same for every focal plane, so moving the focus never
changes the brightness (no flicker) and the models read the pixels the viewer shows.

Where the window comes from, in order of preference (the backends decide):

* the file's own display range (ImageJ ``min``/``max``, a CZI display setting...), when it
  states one with ``high > low`` — `from_file`;
* otherwise robust percentiles (0.5 % and 99.5 %) of samples taken from a coarse view of
  several planes — `from_samples`.

uint8 data is never windowed: it is shown as stored (`IDENTITY`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: Percentiles of the data window, %.
LOW_PERCENTILE, HIGH_PERCENTILE = 0.5, 99.5


@dataclass(frozen=True)
class DisplayRange:
    """A linear window ``[low, high]`` in sample values; ``source`` says where it came from."""

    low: float
    high: float
    source: str

    def apply(self, samples: np.ndarray) -> np.ndarray:
        """Samples of any numeric dtype → uint8 through the window (NaN → 0). uint8 input with
        the identity window is returned unchanged."""
        a = np.asarray(samples)
        if self is IDENTITY:
            if a.dtype != np.uint8:
                raise ValueError(f"identity display range given {a.dtype} samples")
            return a
        scale = 255.0 / (self.high - self.low)
        out = (a.astype(np.float32) - np.float32(self.low)) * np.float32(scale)
        np.nan_to_num(out, copy=False, nan=0.0)
        np.clip(out, 0.0, 255.0, out=out)
        out += 0.5
        return out.astype(np.uint8)

    def properties(self) -> dict[str, str]:
        """``display.range`` and ``display.range_source`` for a slide's properties."""
        if self is IDENTITY:
            return {}
        return {"display.range": f"{_fmt(self.low)} to {_fmt(self.high)}",
                "display.range_source": self.source}

    def as_list(self) -> list[float] | None:
        return None if self is IDENTITY else [float(self.low), float(self.high)]


IDENTITY = DisplayRange(0.0, 255.0, "8-bit samples shown as stored")


def needs_window(dtype) -> bool:
    """True for samples that are not uint8 (they need a `DisplayRange`)."""
    return np.dtype(dtype) != np.uint8


def from_file(low, high, source: str) -> DisplayRange | None:
    """The file's own range, or None when it is missing or not a proper interval."""
    try:
        lo, hi = float(low), float(high)
    except (TypeError, ValueError):
        return None
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return None
    return DisplayRange(lo, hi, source)


def from_samples(samples: np.ndarray | list[np.ndarray], source: str) -> DisplayRange:
    """Robust percentiles of ``samples`` (one array or a list, e.g. a coarse view of each
    plane). A constant image gets a window of width 1 around its value."""
    parts = samples if isinstance(samples, (list, tuple)) else [samples]
    flat = np.concatenate([np.asarray(p, dtype=np.float64).ravel() for p in parts])
    flat = flat[np.isfinite(flat)]
    if flat.size == 0:
        return DisplayRange(0.0, 1.0, f"{source}: no finite samples")
    lo, hi = np.percentile(flat, [LOW_PERCENTILE, HIGH_PERCENTILE])
    if hi <= lo:
        lo, hi = float(flat.min()), float(flat.max())
    if hi <= lo:
        lo, hi = lo - 0.5, lo + 0.5
    return DisplayRange(float(lo), float(hi),
                        f"{LOW_PERCENTILE:g}-{HIGH_PERCENTILE:g} percentiles of {source}")


def evenly_spaced(n: int, k: int = 8) -> list[int]:
    """Up to ``k`` indices spread over ``range(n)`` (first and last included)."""
    if n <= k:
        return list(range(n))
    return sorted({round(i * (n - 1) / (k - 1)) for i in range(k)})


def _fmt(v: float) -> str:
    return f"{v:.6g}"
