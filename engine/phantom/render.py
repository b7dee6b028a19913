"""The phantom's renderer and ground truth: the image of the virtual section for any focus.

Image formation (thesis Eq. 5.3, discretised as TSVA's layered model)::

    OD_c(x, y | f) = Σ_bins  h_c(f − z_bin − s_c) ⊛ OD_c,bin(x, y)        (µm, per channel c)
    I_c(x, y | f)  = white_c · 10^(−OD_c(x, y | f))

Each z bin's optical density is blurred by the channel's Born & Wolf defocus PSF for its
distance from the focal plane f (``optics.py``), the blurred layers are summed, then
Beer–Lambert gives the intensity. Blurring OD rather than transmittance is the weak-absorption
(first Born) approximation: exact for a thin absorber, a good approximation for 3–6 µm
sections whose OD is below ~1. Each bin is Fourier-transformed once per block and reused for
every focal plane, so a focal stack costs one spectral multiply-add per bin and one inverse FFT
per channel and plane.

Focus. ``focus`` is a float (µm, uniform), an (h, w) array (µm per pixel of the requested
level: pixel p shows the tissue imaged with the focal plane at f(p)), or a callable
``f(x_um, y_um, px_um) -> (h, w)`` evaluated on each block. Focal planes are computed exactly on
a grid of ``FOCUS_STEP_UM`` (0.1 µm) and linearly interpolated in OD between the two nearest
grid planes (error well below one grey level: the depth of field is ~1 µm). A uniform focus goes
through the very same path as a constant map, so both give identical pixels.

Blocks. Rendering happens on a fixed grid of ``BLOCK``-px blocks per level, each computed with a
``HALO``-px margin (wider than the PSF up to ~12 µm of defocus at full resolution), so any
request is assembled from identical blocks: tiling never changes a single bit, noise included.

Coordinates follow ``Slide.read_region``: (x, y) is the top-left in level-0 px, (w, h) are px of
the requested level, level k has 2^k × the level-0 pitch.
"""
from __future__ import annotations

import numpy as np
import scipy.fft

from .cache import ByteLRU
from .optics import Optics, OTFTable, frequency_grid
from .sensor import SensorModel
from .volume import TissueVolume

__all__ = ["PhantomRenderer", "BLOCK", "HALO", "FOCUS_STEP_UM"]

BLOCK = 512
HALO = 64
N = BLOCK + 2 * HALO
FOCUS_STEP_UM = 0.1
_KNOT_EPS = 1e-6
#: Channel weights of the luminance used for the best-focus map.
_LUMA = (0.3, 0.55, 0.15)
#: Local detail energy (OD²) below which z* falls back to the section's mid-plane.
_ZSTAR_EPS = 1e-5


class _Spectra:
    def __init__(self, G, z_um, mid, tissue):
        self.G = G            # (3, nb, N, N//2+1) complex64, or None for an empty block
        self.z_um = z_um
        self.mid = mid
        self.tissue = tissue


class PhantomRenderer:
    """Renders a ``TissueVolume`` through ``Optics`` (and optionally a ``SensorModel``)."""

    def __init__(self, volume: TissueVolume, optics: Optics | None = None, sensor: SensorModel | None = None,
                 cache_mb: int = 640):
        self.volume = volume
        self.optics = optics or Optics()
        self.sensor = sensor or SensorModel()
        self.white = np.asarray(volume.params.white_rgb, np.float32)
        self.otf = OTFTable(self.optics)
        self._grids: dict[int, tuple] = {}
        mb = 1 << 20
        self._spectra = ByteLRU(int(cache_mb * 0.45) * mb)
        self._planes = ByteLRU(int(cache_mb * 0.2) * mb)
        self._otf2d = ByteLRU(int(cache_mb * 0.3) * mb)
        self._aux = ByteLRU(int(cache_mb * 0.05) * mb)

    # ------------------------------------------------------------------ geometry
    def px_um(self, level: int) -> float:
        return self.volume.mpp * (2 ** level)

    def _grid(self, level: int):
        g = self._grids.get(level)
        if g is None:
            nu, mtf = frequency_grid(N, self.px_um(level))
            g = (nu, mtf, self.otf.radial_index(nu))
            self._grids[level] = g
        return g

    # ------------------------------------------------------------------ spectra & planes
    def spectra(self, level: int, bi: int, bj: int) -> _Spectra:
        """FFT of every z bin's OD for block (row bi, column bj) of ``level`` (cached)."""
        def compute():
            vol = self.volume.block(level, bj * BLOCK - HALO, bi * BLOCK - HALO, N)
            if vol.empty:
                return _Spectra(None, vol.z_um, vol.mid_um, vol.tissue)
            F = scipy.fft.rfft2(vol.od, axes=(-2, -1))
            F *= self._grid(level)[1]                      # detector pixel aperture
            return _Spectra(np.ascontiguousarray(F, np.complex64), vol.z_um, vol.mid_um, vol.tissue)
        return self._spectra.get_or_compute((level, bi, bj), compute)

    def _otf(self, level: int, channel: int, dz_key: int) -> np.ndarray:
        def compute():
            o = self.otf.otf2d(channel, dz_key, self._grid(level)[2])
            return np.ascontiguousarray(o, np.float32)[..., None]
        return self._otf2d.get_or_compute((level, channel, dz_key), compute)

    def knot_od(self, level: int, bi: int, bj: int, knot: int) -> np.ndarray:
        """Blurred OD (3, BLOCK, BLOCK) of a block with the focal plane at ``knot × FOCUS_STEP_UM``."""
        def compute():
            sp = self.spectra(level, bi, bj)
            if sp.G is None:
                return np.zeros((3, BLOCK, BLOCK), np.float32)
            f_um = knot * FOCUS_STEP_UM
            G = sp.G.view(np.float32).reshape(sp.G.shape + (2,))
            acc = np.zeros((3,) + G.shape[2:], np.float32)
            tmp = np.empty(G.shape[2:], np.float32)
            for c in range(3):
                for b, zb in enumerate(sp.z_um):
                    key = self.otf.key(f_um - zb - self.optics.focal_shift_um[c])
                    np.multiply(G[c, b], self._otf(level, c, key), out=tmp)
                    acc[c] += tmp
            spec = acc.view(np.complex64).reshape(acc.shape[:-1])
            img = scipy.fft.irfft2(spec, s=(N, N), axes=(-2, -1))
            return np.ascontiguousarray(img[:, HALO:HALO + BLOCK, HALO:HALO + BLOCK], np.float32)
        return self._planes.get_or_compute((level, bi, bj, int(knot)), compute)

    # ------------------------------------------------------------------ one block
    def block_od(self, level: int, bi: int, bj: int, focus) -> np.ndarray:
        """OD (3, BLOCK, BLOCK) of a block for a focus: float, (BLOCK, BLOCK) array or callable."""
        fm = self._block_focus(level, bi, bj, focus)
        t = fm / FOCUS_STEP_UM
        k0 = np.floor(t + _KNOT_EPS).astype(np.int64)
        frac = (t - k0).astype(np.float32)
        frac[frac < _KNOT_EPS] = 0.0
        od = np.empty((3, BLOCK, BLOCK), np.float32)
        knots = np.unique(k0)
        for k in knots:
            m = k0 == k
            a = self.knot_od(level, bi, bj, int(k))
            fr = frac if m.all() else np.where(m, frac, 0.0)
            nxt = self.knot_od(level, bi, bj, int(k) + 1) if (fr[m] > 0).any() else np.zeros_like(a)
            val = a * (1.0 - frac) + nxt * frac
            if len(knots) == 1:
                od = val
            else:
                np.copyto(od, val, where=m[None])
        return od

    def _block_focus(self, level, bi, bj, focus) -> np.ndarray:
        if callable(focus):
            px = self.px_um(level)
            x = (bj * BLOCK + np.arange(BLOCK) + 0.5) * px
            y = (bi * BLOCK + np.arange(BLOCK) + 0.5) * px
            fm = np.asarray(focus(x, y, px), np.float64)
            return np.broadcast_to(fm, (BLOCK, BLOCK)).astype(np.float64)
        if np.ndim(focus) == 0:
            return np.full((BLOCK, BLOCK), float(focus), np.float64)
        fm = np.asarray(focus, np.float64)
        if fm.shape != (BLOCK, BLOCK):
            raise ValueError("a block focus map must be BLOCK×BLOCK")
        return fm

    def block_image(self, level: int, bi: int, bj: int, focus, noise: bool = False, plane_key: int = 0,
                    jpeg: bool = False) -> np.ndarray:
        """uint8 (BLOCK, BLOCK, 3) image of one block."""
        od = self.block_od(level, bi, bj, focus)
        inten = self.white[:, None, None] * np.power(np.float32(10.0), -od)
        inten = np.ascontiguousarray(np.moveaxis(inten, 0, -1))
        if noise:
            img = self.sensor.apply(inten, self.volume.seed, level, plane_key, bj * BLOCK, bi * BLOCK)
        else:
            img = np.clip(np.floor(inten + 0.5), 0, 255).astype(np.uint8)
        if jpeg:
            img = self.sensor.compress(img)
        return img

    # ------------------------------------------------------------------ regions
    def _blocks(self, level, x, y, w, h):
        ds = 2 ** level
        lx, ly = int(np.floor(x / ds)), int(np.floor(y / ds))
        for bi in range(ly // BLOCK, (ly + h - 1) // BLOCK + 1):
            for bj in range(lx // BLOCK, (lx + w - 1) // BLOCK + 1):
                y0, x0 = bi * BLOCK, bj * BLOCK
                ys, ye = max(ly, y0), min(ly + h, y0 + BLOCK)
                xs, xe = max(lx, x0), min(lx + w, x0 + BLOCK)
                yield bi, bj, (slice(ys - ly, ye - ly), slice(xs - lx, xe - lx)), \
                    (slice(ys - y0, ye - y0), slice(xs - x0, xe - x0))

    def render(self, level: int, x: int, y: int, w: int, h: int, focus=0.0, *, noise: bool = False,
               plane_key: int = 0, jpeg: bool = False) -> np.ndarray:
        """uint8 (h, w, 3): the region imaged with ``focus`` (µm; float, (h, w) map or callable)."""
        out = np.empty((h, w, 3), np.uint8)
        per_pixel = not callable(focus) and np.ndim(focus) != 0
        if per_pixel:
            fmap = np.asarray(focus, np.float64)
            if fmap.shape != (h, w):
                raise ValueError(f"focus map is {fmap.shape[1]}x{fmap.shape[0]} px, the region {w}x{h}")
            if not np.isfinite(fmap).all():
                raise ValueError("focus map has non-finite values")
        for bi, bj, dst, src in self._blocks(level, x, y, w, h):
            if per_pixel:
                part = fmap[dst]
                fb = np.full((BLOCK, BLOCK), part.flat[0], np.float64)
                fb[src] = part
                img = self.block_image(level, bi, bj, fb, noise, plane_key, jpeg)
            else:
                img = self.block_image(level, bi, bj, focus, noise, plane_key, jpeg)
            out[dst] = img[src]
        return out

    def best_focus_block(self, level: int, bi: int, bj: int) -> np.ndarray:
        """z* (µm) per pixel of a block: the depth where its stained detail is (cached)."""
        def compute():
            sp = self.spectra(level, bi, bj)
            core = (slice(HALO, HALO + BLOCK), slice(HALO, HALO + BLOCK))
            if sp.G is None:
                return np.ascontiguousarray(sp.mid[core], np.float32)
            nu = self._grid(level)[0]
            px = self.px_um(level)
            luma = sum(np.float32(w) * sp.G[c] for c, w in enumerate(_LUMA))   # (nb, N, F)
            s_hp = max(0.5, 1.0 * px)
            luma *= (1.0 - np.exp(-2 * np.pi ** 2 * s_hp ** 2 * nu ** 2)).astype(np.float32)
            detail = scipy.fft.irfft2(luma, s=(N, N), axes=(-2, -1)) ** 2          # (nb, N, N)
            s_sm = max(4.0, 2.0 * px)
            lp = np.exp(-2 * np.pi ** 2 * s_sm ** 2 * nu ** 2).astype(np.float32)
            local = scipy.fft.irfft2(scipy.fft.rfft2(detail, axes=(-2, -1)) * lp, s=(N, N), axes=(-2, -1))
            w = np.maximum(local, 0.0) ** 2          # emphasise the dominant layers (the image's mode)
            z = np.asarray(sp.z_um, np.float32)[:, None, None]
            eps = np.float32(_ZSTAR_EPS ** 2)
            shift = sum(wc * sc for wc, sc in zip(_LUMA, self.optics.focal_shift_um))
            zs = ((w * z).sum(0) + eps * sp.mid) / (w.sum(0) + eps) + np.float32(shift)
            return np.ascontiguousarray(zs[core], np.float32)
        return self._aux.get_or_compute(("zstar", level, bi, bj), compute)

    def best_focus_map(self, level: int, x: int, y: int, w: int, h: int) -> np.ndarray:
        """z*(x, y) in µm, float32 (h, w): where the content of each pixel is sharpest."""
        out = np.empty((h, w), np.float32)
        for bi, bj, dst, src in self._blocks(level, x, y, w, h):
            out[dst] = self.best_focus_block(level, bi, bj)[src]
        return out

    def all_in_focus(self, level: int, x: int, y: int, w: int, h: int, *, noise: bool = False) -> np.ndarray:
        """The all-in-focus truth: the region rendered with focus = z* per pixel."""
        def zstar(xu, yu, px, _level=level):
            bj = int(round(xu[0] / px - 0.5)) // BLOCK
            bi = int(round(yu[0] / px - 0.5)) // BLOCK
            return self.best_focus_block(_level, bi, bj)
        return self.render(level, x, y, w, h, zstar, noise=noise)
