"""The scanner: Poisson–Gaussian sensor noise, optional JPEG compression, and a focus-error map.

Sensor. A pixel of expected brightness I (0–255 after white balance) collects
``I / 255 · full_well_e`` photo-electrons; shot noise is Poisson, approximated by a Gaussian of
the same variance (counts are thousands), plus Gaussian read noise ``read_noise_dn`` (grey
levels). The noise is a counter-based function of (seed, level, plane key, pixel position), so
it is the same however a region is tiled. Values are rounded and clipped to uint8.

JPEG. When ``jpeg_quality`` is set, each 512-px render block is JPEG-encoded and decoded
(libjpeg via Pillow, 4:2:0 chroma), as scanners store tiles; blocks sit on a fixed grid, so the
8×8 DCT grid is the same for every request.

Focus error. A scanner focuses each field from a sparse set of focus points, so its focal plane
misses the tissue by a smooth error (±0.3–0.5 µm) and, now and then, by a lot over whole scan
tiles or strips (focus locked on debris or glass): ``ScannerFocusError`` gives that error in µm
at any µm position; captured planes are at ``z_i + error(x, y)``.
"""
from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

from .noise import fbm_grid, gaussian, key_of, uniform

__all__ = ["SensorModel", "ScannerFocusError"]


@dataclass(frozen=True)
class SensorModel:
    full_well_e: float = 12000.0      # electrons at white (255)
    read_noise_dn: float = 0.9        # grey levels, σ
    jpeg_quality: int | None = None   # None: no compression

    def apply(self, intensity: np.ndarray, seed: int, level: int, plane_key: int,
              x0: int, y0: int) -> np.ndarray:
        """Noisy uint8 image from float intensities (h, w, 3) in grey levels; (x0, y0) is the
        block's top-left in level px (the noise counters)."""
        h, w, _ = intensity.shape
        ys = (y0 + np.arange(h))[:, None, None]
        xs = (x0 + np.arange(w))[None, :, None]
        cs = np.arange(3)[None, None, :]
        z = gaussian(seed, key_of("sensor"), level, plane_key, xs, ys, cs)
        gain = 255.0 / self.full_well_e
        sigma = np.sqrt(np.maximum(intensity, 0.0) * gain + self.read_noise_dn ** 2).astype(np.float32)
        out = intensity + sigma * z
        return np.clip(np.floor(out + 0.5), 0, 255).astype(np.uint8)

    def compress(self, img: np.ndarray) -> np.ndarray:
        if self.jpeg_quality is None:
            return img
        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="JPEG", quality=int(self.jpeg_quality), subsampling=2)
        buf.seek(0)
        return np.asarray(Image.open(buf).convert("RGB"))


@dataclass(frozen=True)
class ScannerFocusError:
    """Focus error (µm) of the scanner's captured planes as a function of position (µm)."""

    seed: int = 0
    smooth_amplitude_um: float = 0.35
    smooth_scale_um: float = 1800.0
    tile_um: float = 512.0            # scan-field size (2048 level-0 px at 0.25 µm/px)
    off_tile_prob: float = 0.04       # fields whose focus locked on something else
    off_tile_um: tuple[float, float] = (1.2, 2.8)
    strip_um: float = 1024.0          # line-scan strips (along y)
    off_strip_prob: float = 0.03
    off_strip_um: float = 1.0
    enabled: bool = True

    def __call__(self, x_um: np.ndarray, y_um: np.ndarray, px_um: float) -> np.ndarray:
        """Error on the grid ``y_um[:, None] × x_um[None, :]`` (µm, float32)."""
        shape = (len(y_um), len(x_um))
        if not self.enabled:
            return np.zeros(shape, np.float32)
        k = key_of("scanner")
        err = np.float32(self.smooth_amplitude_um * 1.6) * fbm_grid(x_um, y_um, self.smooth_scale_um, 3,
                                                                    self.seed, k, px_um)
        tx = np.floor(np.asarray(x_um) / self.tile_um).astype(np.int64)[None, :]
        ty = np.floor(np.asarray(y_um) / self.tile_um).astype(np.int64)[:, None]
        u = uniform(self.seed, k + 1, tx, ty)
        mag = self.off_tile_um[0] + (self.off_tile_um[1] - self.off_tile_um[0]) * uniform(self.seed, k + 2, tx, ty)
        sign = np.where(uniform(self.seed, k + 3, tx, ty) < 0.5, -1.0, 1.0)
        err = err + np.where(u < self.off_tile_prob, sign * mag, 0.0).astype(np.float32)
        sx = np.floor(np.asarray(x_um) / self.strip_um).astype(np.int64)[None, :]
        us = uniform(self.seed, k + 4, sx)
        err = err + np.where(us < self.off_strip_prob, self.off_strip_um, 0.0).astype(np.float32)
        return np.broadcast_to(err, shape).astype(np.float32)
