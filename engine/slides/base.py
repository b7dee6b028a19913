"""The one image interface of FineFocus: a `Slide`.

Everything the viewer shows is a Slide, as every image in QuPath is an ImageServer: files read
from disk (OpenSlide, DICOM WSI, OME-TIFF, NDPI z-stacks, plane sets, plain images), the built-in
phantom, and images computed from another slide (refocused views, heatmaps). The tile store, the
exports and the viewer speak only to this interface.

Conventions (see SPEC.md "Units and conventions"):

* Coordinates are **level-0 pixels**. ``read_region(level, x, y, w, h)`` takes the top-left
  corner ``(x, y)`` in level-0 px and the size ``(w, h)`` in px *of the requested level*, as
  OpenSlide does. Pixels outside the slide are white (255, 255, 255), as empty glass.
* Focal planes are listed in ``planes_um``: z offsets in µm relative to the nominal focal plane,
  sorted ascending (positive = towards the objective). A single-plane slide has ``(0.0,)``.
  ``plane`` arguments are indices into that tuple.
* Pixel data is uint8 RGB, shape ``(h, w, 3)``, C-contiguous.
* ``mpp`` is µm per level-0 pixel as ``(x, y)``, or ``None`` when the file does not say.

Implementations must be safe to call ``read_region`` from several threads at once.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Mapping

import numpy as np

__all__ = [
    "Level",
    "Slide",
    "SlideError",
    "SlideNotFoundError",
    "UnsupportedSlideError",
    "CorruptSlideError",
    "BACKGROUND",
]

#: The colour of empty glass and of pixels outside a slide (uint8 RGB).
BACKGROUND = (255, 255, 255)


class SlideError(Exception):
    """A slide could not be opened or read. The message names the file and the reason.

    ``str(err)`` is one line, fit to show a user: ``"<path>: <reason>"``.
    """

    def __init__(self, path: object, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class SlideNotFoundError(SlideError):
    """The path does not exist, or cannot be reached (permissions, symlink loop)."""


class UnsupportedSlideError(SlideError):
    """The file exists but no backend recognises its content."""


class CorruptSlideError(SlideError):
    """A backend recognised the file, but its content is broken (truncated, bad tiles, absurd sizes)."""


@dataclass(frozen=True)
class Level:
    """One pyramid level: its size in its own pixels and its downsample from level 0."""

    width: int
    height: int
    downsample: float

    def as_dict(self) -> dict:
        return {"width": self.width, "height": self.height, "downsample": self.downsample}


class Slide(abc.ABC):
    """A multi-resolution, multi-plane RGB image. Subclasses set the attributes below in
    ``__init__`` and implement ``_read(level, x, y, w, h, plane)`` for regions that are already
    clipped to the slide; the base class handles validation and out-of-bounds padding.

    Attributes
    ----------
    path : str | None
        The file or folder the slide came from (None for purely computed slides).
    format : str
        A short name of the backend / vendor format, e.g. ``"aperio"``, ``"dicom"``,
        ``"ome-tiff"``, ``"ndpi"``, ``"plane-set"``, ``"image"``, ``"phantom"``.
    levels : tuple[Level, ...]
        Pyramid levels, finest first; ``levels[0].downsample == 1``.
    mpp : tuple[float, float] | None
        µm per level-0 pixel (x, y).
    planes_um : tuple[float, ...]
        Focal-plane z offsets in µm, ascending.
    properties : Mapping[str, str]
        Vendor and file properties, flattened to strings.
    tile_size : tuple[int, int]
        The backend's natural tile size in px (w, h): a hint for the tile store.
    display_range : tuple[float, float] | None
        For grey / 16-bit / float files: the window ``(low, high)`` in the file's sample values
        that maps to 0..255 in every plane (see `display_range`); None for 8-bit data.
    notes : tuple[str, ...]
        Plain sentences about what the backend assumed or left out (an unstated z step, the
        first channel of several read...), shown by ``finefocus info``.
    """

    path: str | None = None
    format: str = "unknown"
    levels: tuple[Level, ...] = ()
    mpp: tuple[float, float] | None = None
    planes_um: tuple[float, ...] = (0.0,)
    properties: Mapping[str, str] = {}
    tile_size: tuple[int, int] = (512, 512)
    display_range: tuple[float, float] | None = None
    notes: tuple[str, ...] = ()

    # ------------------------------------------------------------------ identity
    @property
    def uid(self) -> str:
        """A key that identifies this slide's pixels (the tile cache keys on it). Computed
        slides must fold their parameters into it, e.g. ``f"{base.uid}|refocus|z=1.25"``."""
        return f"{type(self).__name__}:{self.path}:{id(self)}"

    # ------------------------------------------------------------------ geometry
    @property
    def dimensions(self) -> tuple[int, int]:
        """Level-0 size (width, height) in px."""
        return self.levels[0].width, self.levels[0].height

    @property
    def level_count(self) -> int:
        return len(self.levels)

    @property
    def plane_count(self) -> int:
        return len(self.planes_um)

    def best_level_for_downsample(self, downsample: float) -> int:
        """The finest level whose downsample is <= ``downsample`` (OpenSlide's rule)."""
        best = 0
        for i, lv in enumerate(self.levels):
            if lv.downsample <= downsample * 1.000001:
                best = i
        return best

    def nearest_plane(self, z_um: float) -> int:
        """Index of the captured plane closest to ``z_um`` (µm)."""
        return int(np.argmin([abs(z - z_um) for z in self.planes_um]))

    # ------------------------------------------------------------------ pixels
    def read_region(self, level: int, x: int, y: int, w: int, h: int, plane: int = 0) -> np.ndarray:
        """Read ``(h, w, 3)`` uint8 RGB at ``level``; ``(x, y)`` is the top-left in level-0 px,
        ``(w, h)`` in px of ``level``. Outside the slide the pixels are white."""
        if not 0 <= level < len(self.levels):
            raise ValueError(f"level {level} out of range 0..{len(self.levels) - 1}")
        if not 0 <= plane < len(self.planes_um):
            raise ValueError(f"plane {plane} out of range 0..{len(self.planes_um) - 1}")
        w, h = int(w), int(h)
        if w <= 0 or h <= 0:
            raise ValueError(f"region size must be positive, got {w}x{h}")
        lv = self.levels[level]
        ds = lv.downsample
        # Region in level pixels.
        lx, ly = int(np.floor(x / ds)), int(np.floor(y / ds))
        x0, y0 = max(lx, 0), max(ly, 0)
        x1, y1 = min(lx + w, lv.width), min(ly + h, lv.height)
        if x0 == lx and y0 == ly and x1 == lx + w and y1 == ly + h:
            out = self._read(level, x0, y0, w, h, plane)
            return _as_rgb(out, w, h, self)
        canvas = np.empty((h, w, 3), np.uint8)
        canvas[...] = BACKGROUND
        if x1 > x0 and y1 > y0:
            part = _as_rgb(self._read(level, x0, y0, x1 - x0, y1 - y0, plane), x1 - x0, y1 - y0, self)
            canvas[y0 - ly:y1 - ly, x0 - lx:x1 - lx] = part
        return canvas

    @abc.abstractmethod
    def _read(self, level: int, lx: int, ly: int, w: int, h: int, plane: int) -> np.ndarray:
        """Read a region that lies inside ``level``; ``(lx, ly)`` in px **of that level**.
        Return uint8 of shape (h, w, 3) (an RGBA or greyscale array is converted by the caller)."""

    # ------------------------------------------------------------------ extras
    @property
    def associated_images(self) -> Mapping[str, np.ndarray]:
        """Label, macro, thumbnail... as uint8 RGB arrays, where the file has them."""
        return {}

    def thumbnail(self, max_size: int = 512, plane: int = 0) -> np.ndarray:
        """An RGB overview no larger than ``max_size`` on its long side, from the coarsest
        level that is still at least that large (then resized)."""
        W, H = self.dimensions
        target_ds = max(W, H) / max_size
        level = self.best_level_for_downsample(max(target_ds, 1.0))
        lv = self.levels[level]
        img = self.read_region(level, 0, 0, lv.width, lv.height, plane)
        scale = max_size / max(lv.width, lv.height)
        if scale < 1:
            from PIL import Image

            size = (max(1, round(lv.width * scale)), max(1, round(lv.height * scale)))
            img = np.asarray(Image.fromarray(img).resize(size, Image.BILINEAR))
        return img

    def info(self) -> dict:
        """The summary `finefocus info --json` prints."""
        W, H = self.dimensions
        return {
            "path": self.path,
            "format": self.format,
            "width": W,
            "height": H,
            "levels": [lv.as_dict() for lv in self.levels],
            "mpp": list(self.mpp) if self.mpp else None,
            "planes_um": [float(z) for z in self.planes_um],
            "tile_size": list(self.tile_size),
            "associated_images": sorted(self.associated_images.keys()),
            "properties": {str(k): str(v) for k, v in self.properties.items()},
            "display_range": list(self.display_range) if self.display_range else None,
            "notes": list(self.notes),
        }

    def close(self) -> None:
        """Release file handles. Reading after close is an error."""

    def __enter__(self) -> "Slide":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        W, H = self.dimensions if self.levels else (0, 0)
        return (f"<{type(self).__name__} {self.format} {W}x{H} levels={len(self.levels)} "
                f"planes_um={list(self.planes_um)} path={self.path!r}>")


def _as_rgb(arr: np.ndarray, w: int, h: int, slide: Slide) -> np.ndarray:
    """Normalise a backend's output to (h, w, 3) uint8, compositing alpha over white."""
    a = np.asarray(arr)
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    if a.shape[2] == 4:
        alpha = a[:, :, 3:4].astype(np.float32) / 255.0
        a = (a[:, :, :3].astype(np.float32) * alpha + 255.0 * (1 - alpha) + 0.5).astype(np.uint8)
    elif a.shape[2] > 3:
        a = a[:, :, :3]
    if a.dtype != np.uint8:
        raise SlideError(slide.path, f"backend returned {a.dtype} pixels, expected uint8")
    if a.shape[:2] != (h, w):
        raise CorruptSlideError(slide.path, f"read {a.shape[1]}x{a.shape[0]} px where {w}x{h} were asked")
    return np.ascontiguousarray(a)


def edge_fill_outside(rgb: np.ndarray, x: int, y: int, width: int, height: int) -> np.ndarray:
    """A read at (x, y) (px of a level ``width`` × ``height`` px) with what lies past the level's
    edges — white, as `Slide.read_region` gives it — replaced by the nearest pixel inside: context
    for filters and models that would otherwise see the white margin as a false edge (heatmap
    halos, the refocusing encoder's margin around a cropped field)."""
    h, w = rgb.shape[:2]
    left, top = max(0, -x), max(0, -y)
    right, bottom = max(0, x + w - width), max(0, y + h - height)
    if not (left or top or right or bottom) or left + right >= w or top + bottom >= h:
        return rgb
    inner = rgb[top:h - bottom, left:w - right]
    return np.pad(inner, ((top, bottom), (left, right), (0, 0)), mode="edge")
