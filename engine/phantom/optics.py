"""Brightfield optics of the phantom: Born & Wolf defocus PSF and its OTF, per colour channel.

Model (TSVA paper Eq. 1; Born & Wolf, paraxial scalar diffraction, incoherent imaging)::

    h(r, Δz) = C · | ∫₀¹ J0(k·(NA/n)·r·ρ) · exp(−½ i k ρ² Δz (NA/n)²) ρ dρ |²,   k = 2π n / λ

r is the lateral distance from the optical axis (µm), Δz the distance between the focal plane
and the object layer (µm), λ the wavelength (µm), NA the numerical aperture, n the refractive
index of the immersion medium (1.0 for the dry 40×/0.75 objective), ρ the normalised pupil
radius. C = 4π NA² / λ² makes ∫ h dA = 1 (µm⁻²); the in-focus PSF is the Airy pattern with
first zero at 0.61 λ/NA. The paraxial defocus term gives a geometric blur disc of radius
≈ Δz·NA/n, so the blur grows linearly with |Δz| and is symmetric about focus (no spherical
aberration is modelled; refraction at the coverslip and inside the mountant is ignored, so
µm of defocus are µm of stage travel). Tissue version 2 takes the mountant into account on the
specimen side: its depths are divided by the mountant's refractive index before imaging (the
paraxial apparent depth for a dry objective, ``tissue_v2.apparent_depth``), so this PSF of a
stage defocus applies unchanged.

OTF. For the renderer we need the Fourier transform of h, not h itself. For a circular pupil
with pure defocus (wave aberration W = NA²Δz/(2n) at the pupil rim), the OTF is the pupil
autocorrelation (Hopkins 1955), a 1-D integral per normalised frequency s = ν λ / NA ∈ [0, 2]::

    OTF(s) = (4/π) ∫₀^{1−s/2} cos(b x) √(1 − (x + s/2)²) dx,    b = 2π NA² Δz s / (n λ)

(real and even because h is radially symmetric). It is tabulated on a fine radial frequency
grid per (channel, Δz) and interpolated onto 2-D FFT grids. The detector pixel (a box of the
level's pixel pitch) multiplies the OTF by sinc(νx·p)·sinc(νy·p).

Chromatic aberration: each channel c has its own wavelength λ_c and a longitudinal focal shift
s_c (µm): channel c is sharp for an object at depth z when the focal plane is at z + s_c, i.e.
its defocus is Δz_c = z_focus − z_object − s_c.
"""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field

import numpy as np
from scipy.special import j0

__all__ = ["Optics", "psf_born_wolf", "psf_kernel", "otf_defocus", "airy_first_zero_um", "OTFTable",
           "SpectralGrid", "frequency_grid"]


@dataclass(frozen=True)
class Optics:
    """The objective and the colour channels. Lengths in µm."""

    na: float = 0.75
    n_immersion: float = 1.0
    wavelengths_um: tuple[float, float, float] = (0.610, 0.540, 0.460)  # R, G, B
    focal_shift_um: tuple[float, float, float] = (0.20, 0.0, -0.15)     # R, G, B

    def cutoff_cycles_per_um(self, channel: int) -> float:
        """Incoherent cut-off frequency 2 NA / λ (cycles/µm)."""
        return 2.0 * self.na / self.wavelengths_um[channel]


def airy_first_zero_um(wavelength_um: float, na: float) -> float:
    """Radius of the first dark ring of the in-focus PSF, 0.61 λ / NA (µm)."""
    return 0.6098 * wavelength_um / na


_GL_X, _GL_W = np.polynomial.legendre.leggauss(400)


def psf_born_wolf(r_um, dz_um: float, wavelength_um: float, na: float = 0.75, n: float = 1.0) -> np.ndarray:
    """TSVA Eq. 1: intensity PSF (µm⁻², integrates to 1 over the plane) at radii ``r_um``."""
    r = np.asarray(r_um, np.float64).ravel()
    rho = 0.5 * (_GL_X + 1.0)
    w = 0.5 * _GL_W
    v = 2.0 * np.pi * na * r[:, None] * rho[None, :] / wavelength_um
    phase = np.pi * na ** 2 * dz_um * rho ** 2 / (n * wavelength_um)
    integrand = j0(v) * np.exp(-1j * phase)[None, :] * (rho * w)[None, :]
    amp = integrand.sum(axis=1)
    c = 4.0 * np.pi * na ** 2 / wavelength_um ** 2
    return (c * np.abs(amp) ** 2).reshape(np.shape(r_um))


def psf_kernel(dz_um: float, wavelength_um: float, px_um: float, radius_px: int, na: float = 0.75,
               n: float = 1.0, oversample: int = 1, normalise: bool = False) -> np.ndarray:
    """The PSF sampled on a (2R+1)² pixel grid of pitch ``px_um``, as the fraction of light that
    falls in each pixel (h · pixel area; averaged over ``oversample``² points per pixel)."""
    k = oversample
    off = (np.arange(k) + 0.5) / k - 0.5
    c = np.arange(-radius_px, radius_px + 1)
    x = (c[:, None] + off[None, :]).ravel() * px_um
    rr = np.hypot(x[None, :], x[:, None])
    uniq, inv = np.unique(np.round(rr, 9), return_inverse=True)
    h = psf_born_wolf(uniq, dz_um, wavelength_um, na, n)[inv].reshape(rr.shape)
    m = 2 * radius_px + 1
    kern = h.reshape(m, k, m, k).mean(axis=(1, 3)) * px_um ** 2
    if normalise:
        kern /= kern.sum()
    return kern


def _gauss_legendre(n: int):
    x, w = np.polynomial.legendre.leggauss(n)
    return 0.5 * (x + 1.0), 0.5 * w


_GL_CACHE: dict[int, tuple[np.ndarray, np.ndarray]] = {}


def otf_defocus(nu_cycles_per_um, dz_um: float, wavelength_um: float, na: float = 0.75, n: float = 1.0) -> np.ndarray:
    """Hopkins' defocus OTF of a circular pupil at radial frequencies ``nu`` (cycles/µm).

    Gauss–Legendre quadrature after the substitution x = X − w² (which removes the square-root
    end-point singularity); the cosine makes at most b/(2π) turns, so the node count grows with
    the largest b = 2π NA² |Δz| s / (n λ): 24 nodes are exact to 1e-13 up to b ≈ 100, and each
    further 100 of b adds 16 nodes (checked against 600 nodes up to Δz = 30 µm)."""
    nu = np.asarray(nu_cycles_per_um, np.float64).ravel()
    s = np.clip(nu * wavelength_um / na, 0.0, 2.0)
    b_max = 2.0 * np.pi * na ** 2 * abs(dz_um) * 2.0 / (n * wavelength_um)
    nodes = min(256, 24 + 16 * int(math.ceil(b_max / 100.0)))
    if nodes not in _GL_CACHE:
        _GL_CACHE[nodes] = _gauss_legendre(nodes)
    wn, wq = _GL_CACHE[nodes]
    X = 1.0 - s / 2.0
    wmax = np.sqrt(X)
    w = wmax[:, None] * wn[None, :]
    weights = wmax[:, None] * wq[None, :]
    b = 2.0 * np.pi * na ** 2 * dz_um * s / (n * wavelength_um)
    w2 = w * w
    integrand = 2.0 * w2 * np.sqrt(np.maximum(2.0 - w2, 0.0)) * np.cos(b[:, None] * (X[:, None] - w2))
    otf = (4.0 / np.pi) * np.einsum("ij,ij->i", integrand, weights)
    otf[s >= 2.0] = 0.0
    return otf.reshape(np.shape(nu_cycles_per_um))


@dataclass
class OTFTable:
    """Radial OTF profiles per (channel, Δz), cached, on a uniform ν grid (cycles/µm).

    Δz is keyed in units of ``dz_quantum_um`` (0.01 µm); every Δz the renderer asks for lies on
    that grid (bins and focus knots are multiples of it, channel shifts are fixed).
    """

    optics: Optics
    nu_max: float = 3.4
    samples: int = 1024
    dz_quantum_um: float = 0.01
    _cache: dict = field(default_factory=dict, repr=False)
    _quad: dict = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self):
        self.nu = np.linspace(0.0, self.nu_max, self.samples)
        self.step = self.nu[1] - self.nu[0]

    def key(self, dz_um: float) -> int:
        return int(round(dz_um / self.dz_quantum_um))

    def profile(self, channel: int, dz_key: int) -> np.ndarray:
        """The radial OTF (float32, on ``self.nu``) of ``channel`` at defocus ``dz_key`` quanta:
        ``otf_defocus`` with its quadrature geometry precomputed per (channel, node count)."""
        k = (channel, dz_key)
        prof = self._cache.get(k)
        if prof is None:
            o = self.optics
            dz = dz_key * self.dz_quantum_um
            wl = o.wavelengths_um[channel]
            b_max = 2.0 * np.pi * o.na ** 2 * abs(dz) * 2.0 / (o.n_immersion * wl)
            nodes = min(256, 24 + 16 * int(math.ceil(b_max / 100.0)))
            live, amp, phase = self._quadrature(channel, nodes)
            prof = np.zeros(self.samples, np.float32)
            arg = phase * np.float32(dz)
            np.cos(arg, out=arg)
            prof[:live] = np.einsum("ij,ij->i", amp, arg)
            with self._lock:
                self._cache[k] = prof
        return prof

    def _quadrature(self, channel: int, nodes: int):
        """(samples below cut-off, amplitude weights, phase per µm of defocus) of Hopkins'
        integral (see ``otf_defocus``) on this table's ν grid."""
        q = self._quad.get((channel, nodes))
        if q is None:
            o = self.optics
            wl = o.wavelengths_um[channel]
            s = self.nu * wl / o.na
            live = int(np.searchsorted(s, 2.0))
            s = s[:live]
            X = 1.0 - s / 2.0
            wn, wq = _gauss_legendre(nodes)
            wmax = np.sqrt(X)
            w2 = (wmax[:, None] * wn[None, :]) ** 2
            amp = (4.0 / np.pi) * 2.0 * w2 * np.sqrt(np.maximum(2.0 - w2, 0.0)) * (wmax[:, None] * wq[None, :])
            phase = (2.0 * np.pi * o.na ** 2 * s / (o.n_immersion * wl))[:, None] * (X[:, None] - w2)
            q = (live, amp.astype(np.float32), phase.astype(np.float32))
            with self._lock:
                self._quad[(channel, nodes)] = q
        return q

    def radial_index(self, nu_radial: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Interpolation index and weight of radial frequencies on the table grid."""
        u = np.clip(nu_radial / self.step, 0, self.samples - 1.000001)
        i = np.floor(u).astype(np.intp)
        return i, (u - i).astype(np.float32)

    def otf2d(self, channel: int, dz_key: int, index: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        """The OTF on a 2-D frequency grid given by ``radial_index`` (float32)."""
        prof = self.profile(channel, dz_key)
        i, t = index
        a = np.take(prof, i)
        out = np.take(prof[1:], i)
        out -= a
        out *= t
        out += a
        return out


def frequency_grid(n: int, px_um: float) -> tuple[np.ndarray, np.ndarray]:
    """Radial frequency (cycles/µm) of an (n, n//2+1) rfft2 grid and the pixel-box MTF there."""
    fy = np.fft.fftfreq(n, d=px_um)
    fx = np.fft.rfftfreq(n, d=px_um)
    nu = np.hypot(fy[:, None], fx[None, :])
    mtf = (np.sinc(fy * px_um)[:, None] * np.sinc(fx * px_um)[None, :]).astype(np.float32)
    return nu, mtf


@dataclass
class SpectralGrid:
    """The rfft2 grid of an n×n block at pitch ``px_um`` (µm), for radially symmetric filters.

    A radially symmetric transfer function takes the same value on rows ky and n − ky, so it is
    stored for the ``n//2 + 1`` non-negative rows only ("half maps", half the memory and time);
    ``apply_half`` multiplies a full (n, n//2+1) spectrum by such a half map.
    """

    n: int
    px_um: float

    def __post_init__(self):
        n = self.n
        if n % 2:
            raise ValueError("the block side must be even")
        self.rows = n // 2 + 1
        self.nu, self.mtf = frequency_grid(n, self.px_um)          # full grid (cycles/µm)
        self.nu_half = np.ascontiguousarray(self.nu[:self.rows])

    def apply_half(self, spectrum: np.ndarray, half: np.ndarray, out: np.ndarray) -> np.ndarray:
        """``out = spectrum × H`` where H is given by its half map (rows 0..n/2)."""
        r = self.rows
        np.multiply(spectrum[:r], half, out=out[:r])
        np.multiply(spectrum[r:], half[r - 2:0:-1], out=out[r:])
        return out

    def madd_half(self, spectrum: np.ndarray, half: np.ndarray, acc: np.ndarray, tmp: np.ndarray) -> None:
        """``acc += spectrum × H`` (H by its half map); ``tmp`` is scratch of acc's shape."""
        self.apply_half(spectrum, half, tmp)
        acc += tmp
