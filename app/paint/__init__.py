"""Painting a focus map in the window: tools, the map layer, rendering the view through the
map, autosave and import / export (see `controller.PaintController`)."""
from .controller import PaintController

__all__ = ["PaintController"]
