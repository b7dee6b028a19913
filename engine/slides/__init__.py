"""Slides: one interface (`Slide`) over every image FineFocus shows, and `open_slide(path)`,
which picks the backend from a file's content. See `base` for the conventions (level-0 px,
z in µm, uint8 RGB, white outside)."""
from .array import ArraySlide, box_downsample2
from .base import (
    BACKGROUND,
    CorruptSlideError,
    Level,
    Slide,
    SlideError,
    SlideNotFoundError,
    UnsupportedSlideError,
)
from .open import open_slide

__all__ = [
    "ArraySlide",
    "BACKGROUND",
    "CorruptSlideError",
    "Level",
    "Slide",
    "SlideError",
    "SlideNotFoundError",
    "UnsupportedSlideError",
    "box_downsample2",
    "open_slide",
]
