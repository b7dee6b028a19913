"""`ViewRefocusedSlide`: the refocused source the window's view shows (`RefocusView`).

The engine's `RefocusedSlide` with the same uid, the same tiles and the same stand-in pixels, made
cheap on the UI thread, where the canvas asks for them on every focus change (a drag of the knob
makes tens a second):

* its uid and its radiance keys are computed once: the engine's name the base slide's uid on
  every access, and a slide's uid may be costly (the phantom's hashes its parameters, about 2 ms)
  while the tile store asks for it per tile and the view's progress per block;
* its stand-in (the blend of the cached captured-plane tiles around z, shown at once for every
  visible tile while the model computes) is blended in one float32 buffer in place instead of
  a temporary array per plane and operation: the same pixels, bit for bit (the same float32
  operations in the same order), at about a third of the time.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from engine.refocus.refocused_slide import RefocusedSlide
from engine.tiles.request import TileRequest


def blend_in_place(parts: list[tuple[float, np.ndarray]]) -> np.ndarray:
    """Σ weight · image rounded to uint8, as `RefocusedSlide._mix` makes it, in one buffer."""
    (w0, first), rest = parts[0], parts[1:]
    acc = first.astype(np.float32)
    acc *= np.float32(w0)
    for wt, img in rest:
        term = img.astype(np.float32)
        term *= np.float32(wt)
        acc += term
    acc += np.float32(0.5)
    np.clip(acc, 0, 255, out=acc)
    return acc.astype(np.uint8)


class ViewRefocusedSlide(RefocusedSlide):
    """``base`` refocused to ``z_um`` for the view (see the module docstring)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        #: The base's uid, once (a slide's pixels, and so its uid, never change while it is open).
        self.base_uid = self.base.uid
        self._uid = RefocusedSlide.uid.fget(self)  # the engine's own, as it is now
        key = RefocusedSlide.radiance_key(self, 0, 0)
        #: The radiance key without its block (the engine's, for every block; None: ask the engine).
        self._key_head = key[:-2] if key[-2:] == (0, 0) else None

    @property
    def uid(self) -> str:
        return self._uid

    def radiance_key(self, bx: int, by: int) -> tuple:
        if self._key_head is None:
            return super().radiance_key(bx, by)
        return (*self._key_head, bx, by)

    def stand_in(self, cached: Callable[[TileRequest], np.ndarray | None], request: TileRequest) -> np.ndarray | None:
        parts = []
        for i, wt in self.blend_weights:
            tile = cached(TileRequest(self.base_uid, request.level, request.col, request.row, i, request.tile_size))
            if tile is not None:
                parts.append((wt, tile))
        if not parts:
            return None
        total = sum(wt for wt, _ in parts)
        return blend_in_place([(wt / total, t) for wt, t in parts])
