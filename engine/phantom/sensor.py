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

from .noise import fbm_grid, hash_u32, key_of, uniform

__all__ = ["SensorModel", "ScannerFocusError"]


_M1 = np.uint32(0x7FEB352D)
_M2 = np.uint32(0x846CA68B)


def _mix32(h: np.ndarray) -> np.ndarray:
    """The 'lowbias32' avalanche on uint32, in place."""
    h ^= h >> np.uint32(16)
    h *= _M1
    h ^= h >> np.uint32(15)
    h *= _M2
    h ^= h >> np.uint32(16)
    return h


def pixel_gaussians(seed: int, level: int, plane_key: int, x0: int, y0: int, w: int, h: int) -> np.ndarray:
    """Standard normal numbers (float32 (h, w, 3)) keyed by (seed, level, plane, pixel x, y,
    channel): a counter-based hash per pixel and channel whose two 16-bit halves feed Box–Muller
    (so |z| ≤ 4.7, plenty for sensor noise). The same for a pixel however the image is tiled."""
    with np.errstate(over="ignore"):
        prefix = int(key_of("sensor")) ^ (int(hash_u32(seed, level, plane_key)) * 0x9E3779B1 & 0xFFFFFFFF)
        xs = ((np.arange(x0, x0 + w, dtype=np.int64) * 0x85EBCA77) & 0xFFFFFFFF).astype(np.uint32)
        ys = ((np.arange(y0, y0 + h, dtype=np.int64) * 0xC2B2AE3D + prefix) & 0xFFFFFFFF).astype(np.uint32)
        row = _mix32(ys.copy())
        hh = _mix32(row[:, None] ^ xs[None, :])                        # (h, w)
        hc = hh[:, :, None] + (np.arange(1, 4, dtype=np.uint32) * np.uint32(0x27D4EB2F))[None, None, :]
        hc = _mix32(hc)
    u1 = ((hc >> np.uint32(16)).astype(np.float32) + np.float32(0.5)) * np.float32(1.0 / 65536)
    u2 = (hc & np.uint32(0xFFFF)).astype(np.float32) * np.float32(2.0 * np.pi / 65536)
    np.log(u1, out=u1)
    u1 *= np.float32(-2.0)
    np.sqrt(u1, out=u1)
    np.cos(u2, out=u2)
    u1 *= u2
    return u1


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
        z = pixel_gaussians(seed, level, plane_key, x0, y0, w, h)
        gain = np.float32(255.0 / self.full_well_e)
        sigma = np.maximum(intensity, 0.0, dtype=np.float32)
        sigma *= gain
        sigma += np.float32(self.read_noise_dn ** 2)
        np.sqrt(sigma, out=sigma)
        sigma *= z
        sigma += intensity
        sigma += np.float32(0.5)
        np.clip(sigma, 0, 255, out=sigma)
        return sigma.astype(np.uint8)          # floor(x + 0.5) of a value in [0, 255]

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
