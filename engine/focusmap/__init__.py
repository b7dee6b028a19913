"""Focus maps: a target focus (µm) per position of a slide, painted by hand or filled from a
best-focus depth map (`focus_map.FocusMap`); exchanged with other tools as QuPath GeoJSON or a
float32 TIFF (`exchange`, `geojson`, `tiff`); kept safe while painting (`autosave`)."""
from .focus_map import DEFAULT_STRIDE, FocusMap, FocusMapError
from .exchange import export_focus_map, import_focus_map
from .autosave import FocusMapAutosave

__all__ = ["FocusMap", "FocusMapError", "DEFAULT_STRIDE", "import_focus_map", "export_focus_map",
           "FocusMapAutosave"]
