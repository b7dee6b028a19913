"""The fused-IQA overlays (thesis Ch. 4), from `engine.fusion.heatmap_source` when it exists.

Kept apart from the registry so that the adapter to the fusion engine's API lives in one place.
"""
from __future__ import annotations

from .registry import OverlayKind


def kinds() -> list[OverlayKind]:
    """Overlay kinds for the fusion engine's slide sources; none if it has no known source."""
    try:
        from engine.fusion import heatmap_source
    except Exception:  # absent or being rewritten: the menu simply does not offer it
        return []
    found = []
    fused = getattr(heatmap_source, "FusedHeatmapSlide", None)
    if fused is not None:
        def make(base, plane, value_range, cls=fused):
            return cls(base, plane=plane)

        found.append(OverlayKind("fused", "Focus quality — fused IQA", make))
    return found
