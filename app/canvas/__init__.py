"""The slide canvas: tiled pan/zoom over the tile store, with a scale bar."""
from .scalebar import ScaleBar, format_length_um, nice_length
from .view import SlideCanvas

__all__ = ["SlideCanvas", "ScaleBar", "nice_length", "format_length_um"]
