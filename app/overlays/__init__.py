"""Overlays over the slide: computed sources (focus heatmaps, depth maps, fused IQA) chosen in
View ▸ Overlay, built off the UI thread, drawn tile by tile with an opacity and a legend."""
from .controller import OverlayController
from .legend import LegendBar
from .menu import OverlayMenu
from .panel import OverlayPanel
from .registry import OverlayKind, overlay_kind, overlay_kinds, register_overlay, unregister_overlay

__all__ = ["OverlayController", "OverlayKind", "OverlayMenu", "OverlayPanel", "LegendBar", "overlay_kind", "overlay_kinds",
           "register_overlay", "unregister_overlay"]
