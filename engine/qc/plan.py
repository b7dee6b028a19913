"""How one slide's QC is split into work: the slide's facts and its tile chunks.

The heatmap grid is FocusLiteNN's (235-px patches at stride 128 on level 0, `engine.fqa.heatmap`),
scored in blocks of ``tile_patches``² patches exactly as `engine.fqa.heatmap.compute_heatmap`
scores them. A **chunk** is a rectangle of ``chunk_blocks``² such blocks (cell rows
[r0, r1) × columns [c0, c1), both multiples of the block size except at the grid's end): the unit of
work a Dask worker takes. Chunks never cut a block, and a patch's score depends only on its own
block's pixels, so the result is the same however the chunks are spread over workers.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..fqa.heatmap import PATCH, HeatmapGeometry, heatmap_geometry
from ..slides.base import Slide, SlideError
from .config import QcConfig


class SlideTooSmall(SlideError):
    """A slide smaller than one heatmap patch."""


@dataclass(frozen=True)
class SlidePlan:
    """One slide's facts and chunks. Sizes are level-0 px, ``planes_um`` µm, ``mpp`` µm per
    level-0 px (None when the file does not say); ``plane`` is the index of the plane nearest
    z = 0 (the one the focus heatmap and verdict use); ``chunks`` are cell ranges (r0, r1, c0, c1)."""

    path: str
    stamp: tuple[int, int]
    format: str
    width: int
    height: int
    planes_um: tuple[float, ...]
    mpp: tuple[float, float] | None
    plane: int
    geometry: HeatmapGeometry
    chunks: tuple[tuple[int, int, int, int], ...]
    notes: tuple[str, ...] = ()

    @property
    def megapixels(self) -> float:
        """Level-0 Mpx read over all planes."""
        return self.width * self.height * len(self.planes_um) / 1e6


def file_stamp(path: str | os.PathLike) -> tuple[int, int]:
    """(size in bytes, mtime in ns) of a slide file or folder (a folder's own entry)."""
    st = os.stat(path)
    return int(st.st_size if Path(path).is_file() else 0), int(st.st_mtime_ns)


def chunk_ranges(shape: tuple[int, int], tile_patches: int, chunk_blocks: int) -> tuple[tuple[int, int, int, int], ...]:
    """Cell ranges (r0, r1, c0, c1) of the chunks covering a grid of ``shape`` = (rows, cols),
    row by row."""
    rows, cols = shape
    step = tile_patches * chunk_blocks
    return tuple((r0, min(r0 + step, rows), c0, min(c0 + step, cols))
                 for r0 in range(0, rows, step) for c0 in range(0, cols, step))


def plan_for(slide: Slide, path: str, config: QcConfig) -> SlidePlan:
    """The plan of an open ``slide`` read from ``path``. Raises `SlideTooSmall`."""
    W, H = slide.dimensions
    if W < PATCH or H < PATCH:
        raise SlideTooSmall(path, f"{W}x{H} px is smaller than one {PATCH}-px focus patch")
    geom = heatmap_geometry(slide)
    notes = list(getattr(slide, "notes", ()) or ())
    mpp = tuple(float(m) for m in slide.mpp) if slide.mpp else None
    if mpp is None:
        notes.append("µm/px unknown: no tissue area; defocus in µm assumes 0.25 µm/px")
    elif abs(mpp[0] / 0.25 - 1) > 0.1:
        notes.append(f"{mpp[0]:.3g} µm/px: defocus in µm is calibrated at 0.25 µm/px, only indicative here")
    return SlidePlan(str(path), file_stamp(path), slide.format, int(W), int(H),
                     tuple(float(z) for z in slide.planes_um), mpp, int(slide.nearest_plane(0.0)), geom,
                     chunk_ranges(geom.shape, config.tile_patches, config.chunk_blocks), tuple(notes))
