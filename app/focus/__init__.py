"""The focus control: a continuous z slider with the captured planes as ticks."""
from .focus_control import FocusControl, format_z

__all__ = ["FocusControl", "format_z"]
