"""Focus maps: a target focus (µm) per position of a slide, painted by hand or filled from a
best-focus depth map (`focus_map.FocusMap`)."""
from .focus_map import DEFAULT_STRIDE, FocusMap, FocusMapError

__all__ = ["FocusMap", "FocusMapError", "DEFAULT_STRIDE"]
