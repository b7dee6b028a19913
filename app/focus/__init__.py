"""Focus controls: the z slider over captured planes."""
from .plane_control import PlaneControl, format_z

__all__ = ["PlaneControl", "format_z"]
