"""Fused-IQA and uncertainty heatmaps as computed slide sources the viewer overlays.

`fusion_sources(base, fusion)` returns two `FusedHeatmapSlide`s over ``base``: the fused score
(``kind="fused"``, z ∈ (0, 1), higher = blurrier, colour map ``focus``) and its uncertainty
(``kind="uncertainty"``, posterior s.d. of z, colour map ``uncertainty``). They are
`engine.fqa.heatmap_source.ScoreGridSlide`s: the base slide's levels and µm per pixel, one plane,
cells on the FocusLiteNN heatmap geometry (235-px patches at stride 128, level-0 px), glass white
in `read_region` and transparent in `read_rgba`, so the tile store serves them like any slide.

Values of the fitted plane come from the fit's grids (`SlideFusion`). Another ``plane`` of the
same slide is fused lazily, block by block, by the fitted (amortised) encoder: each block is
scored by the same models and fused with `SlideFusion.fuse_scores`; the two sources of one plane
share each block's computation (`FusedBlocks`).

Colour scales are fixed by the fit, so every tile of a source uses the same scale: the 2nd–98th
percentile of the fitted plane's fused scores, and 0 to the 98th percentile of its uncertainty.
"""
from __future__ import annotations

import hashlib

import numpy as np

from ..colormaps import robust_range
from ..fqa.heatmap import Block, heatmap_geometry, score_block
from ..fqa.heatmap_source import DEFAULT_CACHE_BYTES, ScoreGridSlide
from ..tiles.compute_cache import ComputeOnceCache
from ..slides.base import Slide
from .slide_fit import SlideFusion

KINDS = ("fused", "uncertainty")
LABELS = {"fused": "fused blur score (0-1 on this slide, higher = blurrier)",
          "uncertainty": "fused score uncertainty (s.d., same units)"}
CMAPS = {"fused": "focus", "uncertainty": "uncertainty"}


def fit_digest(fusion: SlideFusion) -> str:
    """12 hex digits identifying the fitted fusion (its parameters and model names)."""
    h = hashlib.sha1("|".join(fusion.result.names).encode())
    h.update(fusion.result.config.variant.encode())
    for module in (fusion.result.encoder, fusion.result.observation):
        for t in module.state_dict().values():
            h.update(t.detach().numpy().tobytes())
    norm = fusion.result.normaliser
    h.update(np.asarray(norm.mean).tobytes() + np.asarray(norm.std).tobytes())
    return h.hexdigest()[:12]


def color_ranges(fusion: SlideFusion) -> dict[str, tuple[float, float]]:
    """The fixed colour scale of each kind, from the fitted plane's values."""
    fused = robust_range(fusion.fused)
    u = fusion.uncertainty[np.isfinite(fusion.uncertainty)]
    hi = float(np.percentile(u, 98)) if u.size else 1.0
    return {"fused": fused, "uncertainty": (0.0, hi if hi > 0 else 1.0)}


class FusedBlocks:
    """(fused, uncertainty) of each block of cells of one plane, computed once and shared by
    that plane's two sources (bounded cache of float32 (2, rows, cols) arrays)."""

    def __init__(self, base: Slide, fusion: SlideFusion, plane: int, cache_bytes: int = DEFAULT_CACHE_BYTES):
        if not 0 <= plane < base.plane_count:
            raise ValueError(f"plane {plane} out of range 0..{base.plane_count - 1}")
        if plane != fusion.plane and not fusion.scorers:
            raise ValueError("this fit keeps no model scorers: only its own plane can be shown")
        own = heatmap_geometry(base, fusion.geometry.level, fusion.geometry.patch, fusion.geometry.stride)
        if own != fusion.geometry:
            raise ValueError(f"{base.path}: this fusion was fitted on another slide's patch grid "
                             f"({fusion.geometry.shape} cells at {fusion.geometry.origin}, this slide has "
                             f"{own.shape} at {own.origin})")
        self.base, self.fusion, self.plane = base, fusion, int(plane)
        self.cache = ComputeOnceCache(cache_bytes)

    def values(self, b: Block) -> np.ndarray:
        return self.cache.get((b.r0, b.c0, b.r1, b.c1), lambda: self._compute(b))

    def _compute(self, b: Block) -> np.ndarray:
        f = self.fusion
        if self.plane == f.plane:
            return np.stack([f.fused[b.r0:b.r1, b.c0:b.c1], f.uncertainty[b.r0:b.r1, b.c0:b.c1]])
        grids = score_block(self.base, f.scorers, f.geometry, b, self.plane)
        return np.stack(f.fuse_scores(grids))


class FusedHeatmapSlide(ScoreGridSlide):
    """The fused score or its uncertainty over ``base`` as a computed slide (module docstring)."""

    format = "heatmap"

    def __init__(self, base: Slide, fusion: SlideFusion, kind: str = "fused", plane: int | None = None,
                 blocks: FusedBlocks | None = None, block_patches: int = 8,
                 cache_bytes: int = DEFAULT_CACHE_BYTES):
        if kind not in KINDS:
            raise ValueError(f"unknown fused heatmap kind {kind!r}; choose one of {', '.join(KINDS)}")
        plane = fusion.plane if plane is None else int(plane)
        self.kind = kind
        self.fusion = fusion
        self.plane = plane
        self.cmap = CMAPS[kind]
        self.label = LABELS[kind]
        self._range = color_ranges(fusion)[kind]
        self.blocks = blocks if blocks is not None else FusedBlocks(base, fusion, plane, cache_bytes)
        if self.blocks.plane != plane or self.blocks.fusion is not fusion:
            raise ValueError("shared blocks belong to another plane or fit")
        names = ",".join(fusion.result.names)
        identity = (f"fusion|{kind}|{fusion.result.config.variant}|fit={fit_digest(fusion)}|models={names}"
                    f"|fit_plane={fusion.plane}|plane={plane}|level={fusion.geometry.level}"
                    f"|patch={fusion.geometry.patch}|stride={fusion.geometry.stride}")
        super().__init__(base, fusion.geometry, identity, base.planes_um[plane], block_patches, cache_bytes)

    @property
    def value_range(self) -> tuple[float, float]:
        return self._range

    def _compute_block(self, b: Block) -> np.ndarray:
        return self.blocks.values(b)[KINDS.index(self.kind)]


def fusion_sources(base: Slide, fusion: SlideFusion, plane: int | None = None,
                   block_patches: int = 8) -> tuple[FusedHeatmapSlide, FusedHeatmapSlide]:
    """(fused, uncertainty) sources of ``plane`` (default: the fitted plane), sharing blocks."""
    plane = fusion.plane if plane is None else int(plane)
    shared = FusedBlocks(base, fusion, plane)
    return (FusedHeatmapSlide(base, fusion, "fused", plane, shared, block_patches),
            FusedHeatmapSlide(base, fusion, "uncertainty", plane, shared, block_patches))
