"""`ArraySlide`: a Slide over numpy arrays already in memory (one per plane).

Useful for computed results, tests and exports. Coarser levels are built once by 2×2 box
averaging (area-weighted), down to a long side of at most ``min_size`` px.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from .base import Level, Slide


def box_downsample2(img: np.ndarray) -> np.ndarray:
    """Halve an (H, W, 3) uint8 image by averaging 2×2 blocks (odd edges are replicated)."""
    h, w = img.shape[:2]
    if h % 2 or w % 2:
        img = np.pad(img, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    f = img.astype(np.uint16)
    s = f[0::2, 0::2] + f[1::2, 0::2] + f[0::2, 1::2] + f[1::2, 1::2]
    return ((s + 2) // 4).astype(np.uint8)


class ArraySlide(Slide):
    """A slide whose planes are (H, W, 3) uint8 arrays.

    Parameters
    ----------
    planes : sequence of (H, W, 3) uint8 arrays, one per focal plane, all the same size.
    planes_um : z of each plane in µm (any order; stored sorted). Default: one plane at 0.
    mpp : µm per level-0 px (x, y), or None.
    min_size : stop building pyramid levels when the long side is at most this (px).
    """

    def __init__(self, planes: Sequence[np.ndarray], planes_um: Sequence[float] | None = None,
                 mpp: tuple[float, float] | None = None, min_size: int = 256,
                 path: str | None = None, format: str = "array",
                 properties: Mapping[str, str] | None = None):
        planes = [np.ascontiguousarray(p, dtype=np.uint8) for p in planes]
        if not planes:
            raise ValueError("ArraySlide needs at least one plane")
        shape = planes[0].shape
        if len(shape) != 3 or shape[2] != 3 or any(p.shape != shape for p in planes):
            raise ValueError("all planes must be (H, W, 3) uint8 of the same size")
        zs = [0.0] * len(planes) if planes_um is None else [float(z) for z in planes_um]
        if len(zs) != len(planes):
            raise ValueError("one z per plane is needed")
        order = np.argsort(zs, kind="stable")
        self.planes_um = tuple(zs[i] for i in order)
        self._pyramids: list[list[np.ndarray]] = []
        for i in order:
            pyr = [planes[i]]
            while max(pyr[-1].shape[:2]) > min_size:
                pyr.append(box_downsample2(pyr[-1]))
            self._pyramids.append(pyr)
        H, W = shape[:2]
        self.levels = tuple(Level(p.shape[1], p.shape[0], float(2 ** k))
                            for k, p in enumerate(self._pyramids[0]))
        self.mpp = mpp
        self.path = path
        self.format = format
        self.properties = dict(properties or {})
        self.tile_size = (256, 256)

    def _read(self, level, lx, ly, w, h, plane):
        return self._pyramids[plane][level][ly:ly + h, lx:lx + w]
