"""Exports of slides to files: `write_ome_tiff` (a tiled, pyramidal OME-TIFF z-stack)."""
from .ome_tiff import write_ome_tiff

__all__ = ["write_ome_tiff"]
