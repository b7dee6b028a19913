"""Exports of slides to files: `write_ome_tiff` (a tiled, pyramidal OME-TIFF z-stack); the
whole-slide refocus, all-in-focus and depth-map exports (resumable) are in `.whole_slide`."""
from .ome_tiff import write_ome_tiff

__all__ = ["write_ome_tiff"]
