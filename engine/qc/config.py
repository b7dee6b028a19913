"""Settings of a QC batch that change its results, and their digest (part of every done-marker,
so a batch run with other settings recomputes instead of reusing stale results)."""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

from ..fusion.fit import FusionConfig
from . import verdict
from .calibration import load_calibration

#: Heatmap blocks per chunk side: a chunk is CHUNK_BLOCKS² blocks of TILE_PATCHES² patches,
#: about 2100 × 2100 level-0 px (4.4 Mpx per plane) with the default 8 × 8-patch blocks.
CHUNK_BLOCKS = 2
TILE_PATCHES = 8


@dataclass(frozen=True)
class QcConfig:
    """``model``: the FocusLiteNN heatmap and depth-map model (`engine.fqa.heatmap_source.scorer_for`
    names); ``fusion``: the fused-IQA fit (`engine.fusion.fit.FusionConfig`, fitted on each slide's
    own patch scores); ``thumbnail_px``: long side of the thumbnails (px); ``tile_patches`` and
    ``chunk_blocks``: the work split (results do not depend on it, see `engine.qc.plan`)."""

    model: str = "focuslitenn-1"
    fusion: FusionConfig = field(default_factory=FusionConfig)
    thumbnail_px: int = 512
    tile_patches: int = TILE_PATCHES
    chunk_blocks: int = CHUNK_BLOCKS

    def digest(self) -> str:
        """12 hex digits over everything that changes a slide's QC result (the work split aside)."""
        cal = load_calibration()
        doc = {"model": self.model, "fusion": asdict(self.fusion), "thumbnail_px": self.thumbnail_px,
               "calibration": [cal.model, cal.scores, cal.defocus_um],
               "thresholds": [verdict.OUT_OF_FOCUS_UM, verdict.REVIEW_FRACTION, verdict.RESCAN_FRACTION]}
        return hashlib.sha1(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:12]
