"""`FocusMappedSlide`: a slide with each place at its own focus, a `FocusMap`'s.

The per-pixel sibling of `RefocusedSlide` (same blocks, the same shared radiance cache, the
same geometry and one plane): at level 0 each block's cached radiance field is decoded for the
map's target focus over the block (sampled at the model's pixels), so painting a map only
reruns the decoder; coarser levels blend, per pixel, the two captured planes around the map's
focus there. An all-in-focus view is this slide with the map filled from a best-focus depth map.

The map is frozen at construction (`FocusMap.frozen`): a later stroke makes a new slide (its uid
names the map's content), never changes this one's pixels under a reader.
"""
from __future__ import annotations

import numpy as np
import torch

from ..focusmap import FocusMap
from ..slides.base import Slide
from .baselines import linear_weights
from .model import RefocusNet
from .refocused_slide import RadianceCache, RefocusedSlide

__all__ = ["FocusMappedSlide"]


class FocusMappedSlide(RefocusedSlide):
    """``base`` with the target focus of ``focus_map`` (µm, the base's z frame) at every place."""

    format = "focus-mapped"

    def __init__(self, base: Slide, focus_map: FocusMap, model: RefocusNet | None = None,
                 cache: RadianceCache | None = None):
        w, h = base.dimensions
        if (focus_map.width, focus_map.height) != (w, h):
            raise ValueError(f"the focus map is for a {focus_map.width} × {focus_map.height} px slide, "
                             f"{base.path} is {w} × {h} px")
        super().__init__(base, focus_map.default_um, model, cache)
        self.focus_map = focus_map.frozen()
        self.captured_plane = None      # a map is refocused everywhere, even where it meets a plane
        self.properties = {**self.properties, "focus_map.digest": self.focus_map.digest,
                           "focus_map.painted_cells": str(int(self.focus_map.painted.sum()))}

    @property
    def uid(self) -> str:
        return f"{self.base.uid}|focus-map={self.focus_map.digest}|weights={self.weights_tag}"

    def _target(self, x: int, y: int, w: int, h: int, model_hw: tuple[int, int]) -> torch.Tensor:
        mh, mw = model_hw
        return torch.from_numpy(self.focus_map.z_region(x, y, w, h, mw, mh))[None]

    def _blend(self, level: int, lx: int, ly: int, w: int, h: int) -> np.ndarray:
        """Per pixel, the linear blend of the two captured planes around the map's focus there."""
        x, y = self._level0(level, lx), self._level0(level, ly)
        ds = self.levels[level].downsample
        target = torch.from_numpy(self.focus_map.z_region(x, y, w * ds, h * ds, w, h))[None]
        focus = torch.tensor(self.base.planes_um, dtype=torch.float32).view(1, -1, 1, 1).expand(1, -1, h, w)
        weights = linear_weights(focus, target)[0].numpy()[..., None]           # (N, h, w, 1)
        return self._mix([(wt, self.base.read_region(level, x, y, w, h, i))
                          for i, wt in enumerate(weights) if wt.max() > 1e-6])

    def level_mode(self, level: int) -> str:
        """Level 0 is the model's; coarser levels blend per pixel (the optics are not applied to
        a painted map)."""
        return "model" if level == 0 else "blend"

    def stand_in(self, cached, request):
        """No stand-in: the blend weights of the knob's z say nothing about a painted map."""
        return None
