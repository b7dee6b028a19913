"""`PhantomSlide`: the virtual slide as a `Slide`, with its ground truth at any focus.

Captured plane i is the volume imaged with the focal plane at ``planes_um[i] + e(x, y)``, where
``e`` is the scanner's focus error (smooth, with occasional scan fields or strips focused off
the tissue; ``scanner_error=False`` makes it 0), plus Poisson–Gaussian sensor noise
(``noise=False`` removes it) and optional JPEG compression. The ground truth shares the same
volume: ``truth`` renders any uniform focus or per-pixel focus map (absolute z, no scanner
error, noise-free unless asked), ``best_focus_map`` gives z*(x, y) and ``all_in_focus`` the
image at z*; ``best_focus_of_region`` gives one z* for a whole patch (its label). Every level
is rendered directly at its own pitch; the pyramid goes down to one render block. Units:
level-0 px at 0.25 µm/px, z in µm (positive towards the objective).

Tissue version. ``tissue_version=2`` (spec ``phantom:v2``) renders tissue model version 2
(``tissue_params.tissue_params(2)``, ``tissue_v2.py``): as sharp at best focus as real 20×
scans. Version 1 stays the default because every shipped model (FocusLiteNN, refocusing) was
trained on it; the default switches to 2 when they are retrained on version 2.
"""
from __future__ import annotations

import hashlib
import math

import numpy as np

from ..slides.base import Level, Slide, SlideError
from .cache import ByteLRU
from .optics import Optics
from .render import BLOCK, PhantomRenderer
from .sensor import ScannerFocusError, SensorModel
from .tissue_params import TissueParams, identity_dict, tissue_params
from .volume import TissueVolume

__all__ = ["PhantomSlide", "DEFAULT_SIZE"]

DEFAULT_SIZE = (80000, 60000)
MPP = 0.25
#: Levels halve until the long side fits one 512-px render block, so the overview (the coarsest
#: level) costs a single block: about a second for the default slide.
MIN_LEVEL_SIDE = 512


class PhantomSlide(Slide):
    """A procedurally generated, physically rendered z-stack slide."""

    def __init__(self, seed: int = 0, size: tuple[int, int] = DEFAULT_SIZE, planes: int = 3,
                 spacing_um: float = 1.0, stain: str = "he", scanner_error: bool = True, noise: bool = True,
                 jpeg_quality: int | None = None, params: TissueParams | None = None,
                 optics: Optics | None = None, cache_mb: int = 640, tissue_version: int | None = None):
        """``tissue_version``: 1 (default; what the shipped models were trained on) or 2 (see
        the module docstring); it sets ``params.tissue_version`` (default parameters of that
        version when ``params`` is None)."""
        W, H = int(size[0]), int(size[1])
        if W < 64 or H < 64:
            raise ValueError(f"phantom size must be at least 64x64 px, got {W}x{H}")
        if int(planes) < 1:
            raise ValueError(f"planes must be >= 1, got {planes}")
        if not spacing_um > 0:
            raise ValueError(f"spacing must be positive, got {spacing_um}")
        if stain not in ("he", "ihc"):
            raise ValueError(f"stain must be 'he' or 'ihc', got {stain!r}")
        self.seed = int(seed)
        self.spacing_um = float(spacing_um)
        self.stain = stain
        self.scanner_error = bool(scanner_error)
        self.noise = bool(noise)
        self.jpeg_quality = jpeg_quality
        if tissue_version is None:
            self.params = params or TissueParams()
        elif params is None:
            self.params = tissue_params(int(tissue_version))
        else:
            from dataclasses import replace
            tissue_params(int(tissue_version))                 # validates the version
            self.params = replace(params, tissue_version=int(tissue_version))
        self.tissue_version = self.params.tissue_version
        self.optics = optics or Optics()
        n = int(planes)
        self.planes_um = tuple(round((i - (n - 1) / 2) * self.spacing_um, 6) for i in range(n))
        levels = [Level(W, H, 1.0)]
        k = 0
        while max(levels[-1].width, levels[-1].height) > MIN_LEVEL_SIDE:
            k += 1
            levels.append(Level(math.ceil(W / 2 ** k), math.ceil(H / 2 ** k), float(2 ** k)))
        self.levels = tuple(levels)
        self.mpp = (MPP, MPP)
        self.path = None
        self.format = "phantom"
        self.tile_size = (BLOCK, BLOCK)
        self.volume = TissueVolume(self.seed, (W, H), self.params, stain, MPP)
        self.renderer = PhantomRenderer(self.volume, self.optics, SensorModel(jpeg_quality=jpeg_quality),
                                        cache_mb=cache_mb)
        self.scanner = ScannerFocusError(seed=self.seed, enabled=self.scanner_error)
        self._blocks = ByteLRU(256 << 20)
        self.properties = {
            "phantom.seed": str(self.seed), "phantom.stain": stain, "phantom.spacing_um": str(self.spacing_um),
            "phantom.scanner_error": str(self.scanner_error), "phantom.noise": str(self.noise),
            "phantom.jpeg_quality": str(jpeg_quality), "phantom.objective": f"40x/{self.optics.na} NA",
            "phantom.wavelengths_um": ",".join(str(w) for w in self.optics.wavelengths_um),
            "phantom.tissue_version": str(self.tissue_version),
        }

    # ------------------------------------------------------------------ identity
    @property
    def uid(self) -> str:
        digest = hashlib.sha1(repr((identity_dict(self.params), self.optics)).encode()).hexdigest()[:12]
        W, H = self.dimensions
        return (f"phantom:seed={self.seed}|size={W}x{H}|planes={','.join(map(str, self.planes_um))}"
                f"|stain={self.stain}|scanner={int(self.scanner_error)}|noise={int(self.noise)}"
                f"|jpeg={self.jpeg_quality}|params={digest}")

    # ------------------------------------------------------------------ captured planes
    def captured_focus(self, plane: int):
        """The focus field (µm) of captured plane ``plane``: f(x_um, y_um, px_um) -> array."""
        z = self.planes_um[plane]
        scanner = self.scanner

        def focus(x_um, y_um, px_um):
            return z + scanner(x_um, y_um, px_um)
        return focus

    def captured_focus_map(self, level: int, x: int, y: int, w: int, h: int, plane: int) -> np.ndarray:
        """Where plane ``plane`` was actually focused (µm, float32 (h, w)) — its truth label."""
        ds = 2 ** level
        px = MPP * ds
        lx, ly = int(np.floor(x / ds)), int(np.floor(y / ds))
        xs = (lx + np.arange(w) + 0.5) * px
        ys = (ly + np.arange(h) + 0.5) * px
        return (self.planes_um[plane] + self.scanner(xs, ys, px)).astype(np.float32)

    def captured_block(self, level: int, bi: int, bj: int, plane: int) -> np.ndarray:
        """Captured plane ``plane`` of one render block (uint8 (BLOCK, BLOCK, 3)), cached. The
        block's volume and spectra are cached by the renderer, so the other planes of the
        stack cost one spectral sum and inverse FFT each."""
        def compute():
            return self.renderer.block_image(level, bi, bj, self.captured_focus(plane), self.noise, plane,
                                             self.jpeg_quality is not None)
        return self._blocks.get_or_compute((level, bi, bj, plane), compute)

    def _read(self, level, lx, ly, w, h, plane):
        out = np.empty((h, w, 3), np.uint8)
        for bi in range(ly // BLOCK, (ly + h - 1) // BLOCK + 1):
            for bj in range(lx // BLOCK, (lx + w - 1) // BLOCK + 1):
                y0, x0 = bi * BLOCK, bj * BLOCK
                ys, ye = max(ly, y0), min(ly + h, y0 + BLOCK)
                xs, xe = max(lx, x0), min(lx + w, x0 + BLOCK)
                img = self.captured_block(level, bi, bj, plane)
                out[ys - ly:ye - ly, xs - lx:xe - lx] = img[ys - y0:ye - y0, xs - x0:xe - x0]
        return out

    # ------------------------------------------------------------------ ground truth
    def truth(self, level: int, x: int, y: int, w: int, h: int, focus=0.0, noise: bool = False) -> np.ndarray:
        """The region imaged at ``focus`` (µm, float or (h, w) map), with no scanner error."""
        return self.renderer.render(level, x, y, w, h, focus, noise=noise, plane_key=1000)

    def best_focus_map(self, level: int, x: int, y: int, w: int, h: int) -> np.ndarray:
        """z*(x, y) (µm, float32 (h, w)): the depth where each pixel's content is sharpest."""
        return self.renderer.best_focus_map(level, x, y, w, h)

    def best_focus_of_region(self, level: int, x: int, y: int, w: int, h: int) -> float:
        """z* (µm) of a whole region (a patch's label, thesis Eq. 3.9): the focal plane at which
        the region's noise-free image is sharpest (energy of Laplacian over the region)."""
        return self.renderer.best_focus_of_region(level, x, y, w, h)

    def all_in_focus(self, level: int, x: int, y: int, w: int, h: int, noise: bool = False) -> np.ndarray:
        return self.renderer.all_in_focus(level, x, y, w, h, noise=noise)

    def info(self) -> dict:
        d = super().info()
        d["uid"] = self.uid
        return d

    # ------------------------------------------------------------------ construction from text
    @classmethod
    def from_spec(cls, spec: str | None) -> "PhantomSlide":
        """Build from ``None``, ``"phantom"``/``"phantom:"`` (the default slide) or
        ``"phantom:seed=3,size=60000x40000,planes=5,spacing=0.5,stain=ihc"`` (also
        ``scanner=0|1``, ``noise=0|1``, ``jpeg=QUALITY``, and the tissue version ``v2`` or
        ``version=2``; default version 1)."""
        if spec is None:
            return cls()
        text = spec.strip()
        if text.split(":", 1)[0].lower() != "phantom":
            raise SlideError(spec, "not a phantom spec (expected 'phantom:key=value,...')")
        body = text.split(":", 1)[1] if ":" in text else ""
        kw: dict = {}
        for item in filter(None, (s.strip() for s in body.split(","))):
            if item[:1].lower() == "v" and item[1:].isdigit():      # tissue version: v1, v2
                kw["tissue_version"] = int(item[1:])
                continue
            if "=" not in item:
                raise SlideError(spec, f"expected key=value, got {item!r}")
            k, v = (s.strip().lower() for s in item.split("=", 1))
            try:
                if k == "seed":
                    kw["seed"] = int(v)
                elif k == "size":
                    w, h = v.lower().split("x")
                    kw["size"] = (int(w), int(h))
                elif k == "planes":
                    kw["planes"] = int(v)
                elif k == "spacing":
                    kw["spacing_um"] = float(v)
                elif k == "stain":
                    kw["stain"] = v
                elif k in ("scanner", "scanner_error"):
                    kw["scanner_error"] = v in ("1", "true", "yes", "on")
                elif k == "noise":
                    kw["noise"] = v in ("1", "true", "yes", "on")
                elif k == "jpeg":
                    kw["jpeg_quality"] = int(v)
                elif k in ("version", "tissue_version", "tissue"):
                    kw["tissue_version"] = int(v.lstrip("v"))
                else:
                    raise SlideError(spec, f"unknown phantom option {k!r}")
            except ValueError as exc:
                raise SlideError(spec, f"bad value for {k}: {v!r}") from exc
        try:
            return cls(**kw)
        except ValueError as exc:
            raise SlideError(spec, str(exc)) from exc
