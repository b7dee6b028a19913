"""Counter-based random numbers and procedural noise for the phantom.

Every random quantity of the phantom is a pure function of ``(seed, key, integer position)``:
a 32-bit integer hash of the counters, never a draw from a global random stream. So any region
gives the same numbers however it is tiled, and two processes agree bit for bit.

Positions are integers (pixel indices, lattice indices, cell indices). Continuous fields
(value noise, fBm) are defined on µm coordinates: a lattice of spacing ``scale_um`` carries
hashed values in [-1, 1], interpolated with a C¹ smoothstep. Fields are evaluated either on a
pixel grid (``*_grid``: separable, fast) or at arbitrary points (``*_points``).

Band limiting: ``fbm_grid`` drops octaves whose lattice spacing is finer than two pixels of the
grid (``px_um``) and fades in the octave just above, so coarse pyramid levels render the same
field without aliasing. A dropped octave contributes its mean, 0.
"""
from __future__ import annotations

import numpy as np

__all__ = ["hash_u32", "uniform", "gaussian", "value_noise_grid", "value_noise_points",
           "fbm_grid", "fbm_points", "lattice_values", "key_of", "value_noise_aniso", "pixel_noise"]

_M1 = np.uint32(0x7FEB352D)
_M2 = np.uint32(0x846CA68B)
_GOLD = np.uint32(0x9E3779B9)


def _mix(h: np.ndarray) -> np.ndarray:
    """A bijective avalanche on uint32 (the 'lowbias32' mixer)."""
    h = h ^ (h >> np.uint32(16))
    h = h * _M1
    h = h ^ (h >> np.uint32(15))
    h = h * _M2
    h = h ^ (h >> np.uint32(16))
    return h


def _u32(a) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype == np.uint32:
        return a
    if a.dtype.kind == "f":
        raise TypeError("hash counters must be integers")
    return (a.astype(np.int64) & 0xFFFFFFFF).astype(np.uint32)


def key_of(name: str) -> int:
    """A stable 32-bit key for a named random stream (FNV-1a of the name)."""
    h = 0x811C9DC5
    for ch in name.encode():
        h = ((h ^ ch) * 0x01000193) & 0xFFFFFFFF
    return h


def hash_u32(seed: int, *counters) -> np.ndarray:
    """Hash ``seed`` and integer counters (scalars or broadcastable arrays) to uint32."""
    with np.errstate(over="ignore"):
        h = _mix(_u32(seed) ^ _GOLD)
        for c in counters:
            h = _mix(h ^ (_u32(c) + _GOLD + (h << np.uint32(6)) + (h >> np.uint32(2))))
    return h


def uniform(seed: int, *counters) -> np.ndarray:
    """Uniform numbers in [0, 1) (float64, 24 random bits) keyed by the counters."""
    return (hash_u32(seed, *counters) >> np.uint32(8)).astype(np.float64) * (1.0 / (1 << 24))


def gaussian(seed: int, *counters) -> np.ndarray:
    """Standard normal numbers (Box–Muller on two hashed uniforms), float32."""
    u1 = uniform(seed, *counters, 0x51ED)
    u2 = uniform(seed, *counters, 0xA5A5)
    r = np.sqrt(-2.0 * np.log1p(-u1))  # 1 - u1 in (0, 1]
    return (r * np.cos(2.0 * np.pi * u2)).astype(np.float32)


def lattice_values(seed: int, key: int, ix, iy) -> np.ndarray:
    """Hashed lattice values in [-1, 1] (float32) at integer lattice points."""
    return (uniform(seed, key, ix, iy) * 2.0 - 1.0).astype(np.float32)


def _fade(t: np.ndarray) -> np.ndarray:
    return t * t * (3.0 - 2.0 * t)


def _axis(coords_um: np.ndarray, scale_um: float):
    u = coords_um / scale_um
    i = np.floor(u)
    t = _fade((u - i).astype(np.float32))
    return i.astype(np.int64), t


def value_noise_grid(x_um: np.ndarray, y_um: np.ndarray, scale_um: float, seed: int, key: int) -> np.ndarray:
    """Value noise in [-1, 1] on the grid ``y_um[:, None] × x_um[None, :]`` → (len(y), len(x)) float32."""
    ix, tx = _axis(np.asarray(x_um, np.float64), scale_um)
    iy, ty = _axis(np.asarray(y_um, np.float64), scale_um)
    x0, y0 = ix.min(), iy.min()
    lx = np.arange(x0, ix.max() + 2)
    ly = np.arange(y0, iy.max() + 2)
    lat = lattice_values(seed, key, lx[None, :], ly[:, None])  # (ny, nx)
    cx = ix - x0
    rows = lat[:, cx] * (1.0 - tx)[None, :] + lat[:, cx + 1] * tx[None, :]  # (ny, W)
    cy = iy - y0
    return rows[cy, :] * (1.0 - ty)[:, None] + rows[cy + 1, :] * ty[:, None]


def value_noise_points(x_um, y_um, scale_um: float, seed: int, key: int) -> np.ndarray:
    """Value noise in [-1, 1] at arbitrary (broadcastable) points, float32."""
    ix, tx = _axis(np.asarray(x_um, np.float64), scale_um)
    iy, ty = _axis(np.asarray(y_um, np.float64), scale_um)
    v00 = lattice_values(seed, key, ix, iy)
    v10 = lattice_values(seed, key, ix + 1, iy)
    v01 = lattice_values(seed, key, ix, iy + 1)
    v11 = lattice_values(seed, key, ix + 1, iy + 1)
    a = v00 * (1 - tx) + v10 * tx
    b = v01 * (1 - tx) + v11 * tx
    return a * (1 - ty) + b * ty


def _octave_weight(spacing_um: float, px_um: float) -> float:
    """1 for lattice spacings of >= 4 px, fading to 0 at 2 px (the Nyquist limit)."""
    r = spacing_um / px_um
    return float(np.clip((r - 2.0) / 2.0, 0.0, 1.0))


def fbm_grid(x_um, y_um, scale_um: float, octaves: int, seed: int, key: int, px_um: float,
             gain: float = 0.5) -> np.ndarray:
    """Fractal sum of value-noise octaves (spacing halves, amplitude × ``gain``), normalised so
    the full sum has amplitude ≤ 1; octaves finer than the grid's Nyquist limit are dropped."""
    out = np.zeros((len(y_um), len(x_um)), np.float32)
    amp, total = 1.0, 0.0
    for o in range(octaves):
        s = scale_um / (2 ** o)
        total += amp
        w = _octave_weight(s, px_um)
        if w > 0:
            out += np.float32(amp * w) * value_noise_grid(x_um, y_um, s, seed, key + 7919 * o)
        amp *= gain
    return out / np.float32(total)


def fbm_points(x_um, y_um, scale_um: float, octaves: int, seed: int, key: int, gain: float = 0.5) -> np.ndarray:
    """``fbm_grid`` at arbitrary points, with every octave (no band limit)."""
    out = 0.0
    amp, total = 1.0, 0.0
    for o in range(octaves):
        s = scale_um / (2 ** o)
        total += amp
        out = out + amp * value_noise_points(x_um, y_um, s, seed, key + 7919 * o)
        amp *= gain
    return np.asarray(out / total, np.float32)


def value_noise_aniso(X_um, Y_um, angle: float, across_um: float, along_um: float, seed: int, key: int,
                      warp_um=0.0) -> np.ndarray:
    """Anisotropic value noise in [-1, 1] (float32, shape of the broadcast X, Y): lattice cells
    ``across_um`` wide across the direction ``angle`` (rad) and ``along_um`` long along it, so
    the field is streaky along ``angle``. ``warp_um`` (scalar or array) shifts the across
    coordinate (domain warp: wavy streaks). The lattice values covering the points are hashed
    once into a table and gathered, so a grid costs a few array operations per pixel."""
    X = np.asarray(X_um, np.float64)
    Y = np.asarray(Y_um, np.float64)
    c, s = np.cos(angle), np.sin(angle)
    u = (-s * X + c * Y + warp_um) / across_um
    v = (c * X + s * Y) / along_um
    u, v = np.broadcast_arrays(u, v)
    iu = np.floor(u)
    iv = np.floor(v)
    tu = _fade((u - iu).astype(np.float32))
    tv = _fade((v - iv).astype(np.float32))
    iu = iu.astype(np.int64)
    iv = iv.astype(np.int64)
    u0, v0 = int(iu.min()), int(iv.min())
    lu = np.arange(u0, int(iu.max()) + 2)
    lv = np.arange(v0, int(iv.max()) + 2)
    lat = lattice_values(seed, key, lu[None, :], lv[:, None])     # (nv, nu)
    nu_ = lat.shape[1]
    flat = lat.ravel()
    k = (iv - v0) * nu_ + (iu - u0)
    a = flat[k] * (1 - tu) + flat[k + 1] * tu
    b = flat[k + nu_] * (1 - tu) + flat[k + nu_ + 1] * tu
    return (a * (1 - tv) + b * tv).astype(np.float32)


def pixel_noise(seed: int, key: int, ix: np.ndarray, iy: np.ndarray) -> np.ndarray:
    """Uniform [-1, 1] (float32) per integer position (a white grain keyed by position)."""
    return (uniform(seed, key, ix, iy) * 2.0 - 1.0).astype(np.float32)
