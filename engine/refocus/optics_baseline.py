"""The ``optics`` refocus baseline: what our own optics predict from the nearest captured plane.

"Learned" must always be measured against "optics alone". Given captured planes (z in µm) of a
region, their pixel pitch (µm per px) and a target focus z_t (a number or a per-pixel map):

1. **Best focus** z*(x, y) (µm), estimated from the stack itself (`best_focus_map`):

   * per plane, the gradient energy |∇Y|² of the luma averaged in a Gaussian window of
     σ = ``WINDOW_UM`` µm (4 µm, the scale at which the phantom defines its own z*; converted
     to px with the given pitch); per pixel the plane of maximum windowed energy, refined by
     the vertex of the parabola through the energies of that plane and its two neighbours (any
     spacing), kept between those neighbours. The energies themselves, not their logarithm,
     are fitted: a noise floor adds the same constant to every plane and does not move the
     vertex. Where the sharpest plane is the first or the last, z* is that plane's z (the peak
     is not bracketed);
   * the region's z* (`estimate_best_focus`): the same on the energies averaged over the
     stack's foreground (``sharpness.foreground_mask``, union over the planes);
   * the map is the local z* where the window holds foreground and falls back to the region's
     z* where it does not: weight = the window's foreground fraction (same window).

   With one plane, z* is that plane's z everywhere (a single scan is taken to be in focus, as a
   scanner's autofocus places it); with two, the sharper plane's, locally. Each location is
   taken to be a thin layer at its z* (thick sections are not modelled).
2. **Nearest plane** p to z_t (a tie goes to the plane nearer z*: blurring a sharper plane is
   better posed than sharpening a blurrier one; then to the lower z).
3. **Transfer**: per colour channel c, with defocus distances d = z − z* − s_c (s_c the
   channel's focal shift, ``phantom.optics.Optics``), the Born & Wolf / Hopkins defocus OTFs
   O(ν, d) of ``phantom.optics.otf_defocus`` for the target (O_t) and the plane (O_p) and the
   detector pixel's MTF M (a box of the pitch) give the regularised ratio::

       H = O_t M · O_p M / max((O_p M)², ε),    ε = ``EPSILON`` = 0.04

   i.e. exactly O_t / O_p where the plane's transfer is at least 0.2, falling smoothly to 0
   with it below (Wiener-like; the gain never exceeds 1/√ε = 5, so noise the plane carries near
   a zero of its OTF is not blown up). Where the two distances are equal, H = 1 (the plane).
4. H is applied, as the phantom's renderer forms images (``phantom.render``: the weak-absorption
   model blurs optical density), to the plane's decadic optical density OD = −log10(I) (I in
   [0, 1], floored at half a grey level), in Fourier space after symmetric padding by
   ``PAD_UM`` µm (at most the image size) so that the borders do not wrap; I = 10^−OD.

Per-pixel targets and z*: the prediction is computed for uniform (z_t, z*) on a lattice every
``MAP_STEP_UM`` µm in both (only the cells some pixel needs) and each pixel is interpolated
bilinearly from the four around its (z_t, z*) (0.25 µm: well within the ~1 µm depth of field).

The optics are the phantom's (40×/0.75 NA dry, R/G/B at 0.61/0.54/0.46 µm) unless others are
given: for a real stack of another objective this is what *our* optics predict, not a fit.
Images are (N, H, W, 3) uint8 or float in [0, 1]; outputs float32 (H, W, 3) in [0, 1].
"""
from __future__ import annotations

import math

import numpy as np
import scipy.fft
from scipy import ndimage as ndi

from ..phantom.optics import Optics, otf_defocus
from .sharpness import foreground_mask, gradient_energy, luma

__all__ = ["OpticsRefocus", "estimate_best_focus", "best_focus_map", "EPSILON", "PAD_UM", "MAP_STEP_UM",
           "WINDOW_UM"]

#: Regularisation of the OTF ratio: exact where the plane's transfer |O_p M| ≥ √ε = 0.2.
EPSILON = 0.04
#: Symmetric padding around the image before the FFT, µm (wider than the defocus PSF up to ~8 µm).
PAD_UM = 8.0
#: Lattice spacing (µm) of the targets and best focus between which pixels are interpolated.
MAP_STEP_UM = 0.25
#: Gaussian window (σ, µm) of the local best-focus estimate (the phantom's ZSTAR_WINDOW_UM).
WINDOW_UM = 4.0
_PROFILE_SAMPLES = 1024
_OD_FLOOR = 0.5 / 255.0


def _as_float(planes) -> np.ndarray:
    a = np.asarray(planes)
    return a.astype(np.float32) / 255.0 if a.dtype == np.uint8 else a.astype(np.float32)


def _parabola_peak(z: np.ndarray, e: np.ndarray) -> np.ndarray:
    """z of the peak of energies ``e`` (N, ...) at ascending ``z`` (N,), per element (see module)."""
    n = len(z)
    i = np.argmax(e, axis=0)
    best = z[i].astype(np.float64)
    if n < 3:
        return best
    j = np.clip(i, 1, n - 2)
    e0, e1, e2 = (np.take_along_axis(e, (j + k)[None], 0)[0] for k in (-1, 0, 1))
    z0, z1, z2 = z[j - 1], z[j], z[j + 1]
    den = (z0 - z1) * (z0 - z2) * (z1 - z2)
    a = (z2 * (e1 - e0) + z1 * (e0 - e2) + z0 * (e2 - e1)) / den
    b = (z2 * z2 * (e0 - e1) + z1 * z1 * (e2 - e0) + z0 * z0 * (e1 - e2)) / den
    peak = a < 0                                     # flat energies: keep the sharpest plane
    vertex = np.clip(-b / (2 * np.where(peak, a, -1.0)), z0, z2)
    return np.where((i == j) & peak, vertex, best)


def _sorted(planes, planes_um):
    z = np.asarray([float(v) for v in planes_um], np.float64)
    if len(z) != len(planes):
        raise ValueError(f"{len(planes)} planes but {len(z)} z values")
    order = np.argsort(z, kind="stable")
    return z[order], [planes[i] for i in order]


def estimate_best_focus(planes, planes_um) -> float:
    """The region's z* (µm) of a stack (N, H, W, 3) captured at ``planes_um``."""
    z, imgs = _sorted(planes, planes_um)
    if len(z) == 1:
        return float(z[0])
    mask = np.logical_or.reduce([foreground_mask(p) for p in imgs])
    e = np.asarray([gradient_energy(p, mask) for p in imgs])
    return float(_parabola_peak(z, e))


def best_focus_map(planes, planes_um, um_per_px: float) -> np.ndarray:
    """z*(x, y) (µm, float64 (H, W)) of a stack (N, H, W, 3) at pitch ``um_per_px`` µm/px."""
    z, imgs = _sorted(planes, planes_um)
    h, w = np.asarray(imgs[0]).shape[:2]
    region = estimate_best_focus(planes, planes_um)
    if len(z) == 1:
        return np.full((h, w), region)
    sigma = WINDOW_UM / um_per_px
    e = []
    for p in imgs:
        gy, gx = np.gradient(luma(p))
        e.append(ndi.gaussian_filter(gx * gx + gy * gy, sigma, mode="reflect"))
    local = _parabola_peak(z, np.stack(e))
    fg = np.logical_or.reduce([foreground_mask(p) for p in imgs]).astype(np.float64)
    weight = ndi.gaussian_filter(fg, sigma, mode="reflect")
    return weight * local + (1.0 - weight) * region


class OpticsRefocus:
    """The optics baseline for one region's stack.

    ``planes``: (N, H, W, 3) uint8 or float [0, 1]; ``planes_um``: their z (µm); ``um_per_px``:
    the pitch of the images (µm per px); ``best_focus_um``: z* when known — a number or an
    (H, W) map, µm — else estimated (`best_focus_map`).
    """

    def __init__(self, planes, planes_um, um_per_px: float, optics: Optics | None = None,
                 best_focus_um=None, epsilon: float = EPSILON):
        self.planes = _as_float(planes)
        if self.planes.ndim != 4 or self.planes.shape[-1] != 3:
            raise ValueError(f"planes must be (N, H, W, 3), got {self.planes.shape}")
        self.planes_um = [float(v) for v in planes_um]
        if len(self.planes_um) != len(self.planes):
            raise ValueError(f"{len(self.planes)} planes but {len(self.planes_um)} z values")
        if not um_per_px > 0:
            raise ValueError(f"the pixel pitch must be positive µm, got {um_per_px}")
        self.px_um = float(um_per_px)
        self.optics = optics or Optics()
        self.epsilon = float(epsilon)
        _, h, w, _ = self.planes.shape
        self.size = (h, w)
        zs = best_focus_map(self.planes, self.planes_um, self.px_um) if best_focus_um is None else best_focus_um
        zs = np.asarray(zs, np.float64)
        if zs.ndim and zs.shape != self.size:
            raise ValueError(f"best-focus map must be {self.size}, got {zs.shape}")
        #: z* (µm): a number or an (H, W) map.
        self.best_focus_um = float(zs) if zs.ndim == 0 else zs
        self.pad = min(int(math.ceil(PAD_UM / self.px_um)), max(h, w))
        hp = scipy.fft.next_fast_len(h + 2 * self.pad, real=True)
        wp = scipy.fft.next_fast_len(w + 2 * self.pad, real=True)
        self.padded = (hp, wp)
        fy = np.fft.fftfreq(hp, d=self.px_um)
        fx = np.fft.rfftfreq(wp, d=self.px_um)
        self.nu = np.hypot(fy[:, None], fx[None, :])                       # cycles / µm
        self.mtf = np.sinc(fy * self.px_um)[:, None] * np.sinc(fx * self.px_um)[None, :]
        self._nu_profile = np.linspace(0.0, float(self.nu.max()) * 1.0001, _PROFILE_SAMPLES)
        self._otfs: dict = {}
        self._spectra: dict = {}
        self._uniform: dict = {}

    # ------------------------------------------------------------------ pieces
    def nearest_plane(self, z_um: float, best_focus_um: float) -> int:
        """Index of the captured plane nearest ``z_um`` (ties: nearer z*, then lower z)."""
        return min(range(len(self.planes_um)),
                   key=lambda i: (round(abs(self.planes_um[i] - z_um), 9),
                                  abs(self.planes_um[i] - best_focus_um), self.planes_um[i]))

    def otf(self, channel: int, defocus_um: float) -> np.ndarray:
        """The channel's defocus OTF × pixel MTF on this image's rfft2 grid."""
        key = (channel, round(defocus_um, 4))
        got = self._otfs.get(key)
        if got is None:
            o = self.optics
            prof = otf_defocus(self._nu_profile, key[1], o.wavelengths_um[channel], o.na, o.n_immersion)
            got = np.interp(self.nu, self._nu_profile, prof) * self.mtf
            self._otfs[key] = got
        return got

    def _spectrum(self, i: int) -> np.ndarray:
        s = self._spectra.get(i)
        if s is None:
            od = -np.log10(np.maximum(self.planes[i].astype(np.float64), _OD_FLOOR))
            h, w = self.size
            hp, wp = self.padded
            p = self.pad
            od = np.pad(od, ((p, hp - h - p), (p, wp - w - p), (0, 0)), mode="symmetric")
            s = scipy.fft.rfft2(od, axes=(0, 1), workers=1)
            self._spectra[i] = s
        return s

    def transfer(self, channel: int, target_um: float, plane_um: float, best_focus_um: float) -> np.ndarray | None:
        """H of the module docstring for one channel, or None when it is the identity."""
        shift = self.optics.focal_shift_um[channel]
        dt = target_um - best_focus_um - shift
        dp = plane_um - best_focus_um - shift
        if abs(abs(dt) - abs(dp)) < 1e-6:          # the OTF is even in the defocus
            return None
        ot, op = self.otf(channel, dt), self.otf(channel, dp)
        return ot * op / np.maximum(op * op, self.epsilon)

    def uniform(self, target_um: float, best_focus_um: float) -> np.ndarray:
        """The prediction (float32 (H, W, 3) in [0, 1]) for a uniform target and z* (µm)."""
        key = (round(float(target_um), 6), round(float(best_focus_um), 6))
        got = self._uniform.get(key)
        if got is None:
            got = self._uniform[key] = self._predict(*key)
        return got

    def _predict(self, target_um: float, best_focus_um: float) -> np.ndarray:
        i = self.nearest_plane(target_um, best_focus_um)
        hs = [self.transfer(c, target_um, self.planes_um[i], best_focus_um) for c in range(3)]
        if all(hc is None for hc in hs):
            return self.planes[i].copy()
        spec = self._spectrum(i).copy()
        for c, hc in enumerate(hs):
            if hc is not None:
                spec[..., c] *= hc
        od = scipy.fft.irfft2(spec, s=self.padded, axes=(0, 1), workers=1)
        h, w = self.size
        p = self.pad
        out = np.power(10.0, -od[p:p + h, p:p + w])
        for c, hc in enumerate(hs):                 # identity channels: the plane's own pixels
            if hc is None:
                out[..., c] = self.planes[i][..., c]
        return np.clip(out, 0.0, 1.0).astype(np.float32)

    # ------------------------------------------------------------------ outputs
    def refocus(self, target_um) -> np.ndarray:
        """The prediction (float32 (H, W, 3) in [0, 1]) for a uniform target (a number, µm) or a
        per-pixel map ((H, W) µm)."""
        t = np.asarray(target_um, np.float64)
        if t.ndim and t.shape != self.size:
            raise ValueError(f"target map must be {self.size}, got {t.shape}")
        zs = np.asarray(self.best_focus_um, np.float64)
        uniform_t = t.ndim == 0 or float(t.min()) == float(t.max())
        uniform_z = zs.ndim == 0 or float(zs.min()) == float(zs.max())
        if uniform_t and uniform_z:
            return self.uniform(float(t.ravel()[0]), float(zs.ravel()[0])).copy()
        (ti, tf, tv), (zi, zf, zv) = self._axis(t, uniform_t), self._axis(zs, uniform_z)
        out = np.zeros((*self.size, 3), np.float32)
        a, b = tf[..., None].astype(np.float32), zf[..., None].astype(np.float32)
        for jt, jz in np.unique(np.stack([ti, zi], -1).reshape(-1, 2), axis=0):
            sel = (ti == jt) & (zi == jz)
            p00, p10 = self.uniform(tv(jt), zv(jz)), self.uniform(tv(jt + 1), zv(jz))
            p01, p11 = self.uniform(tv(jt), zv(jz + 1)), self.uniform(tv(jt + 1), zv(jz + 1))
            fa, fb = a[sel], b[sel]
            out[sel] = (p00[sel] * (1 - fa) + p10[sel] * fa) * (1 - fb) + (p01[sel] * (1 - fa) + p11[sel] * fa) * fb
        self._uniform.clear()                  # a map's lattice images are not reused: free them
        return out

    def _axis(self, v: np.ndarray, uniform: bool):
        """Per pixel: lattice cell (int (H, W)), fraction in it ((H, W)) and the cell's value (µm)
        as a function of the index; a uniform value is its own cell (exact, fraction 0)."""
        if uniform:
            value = float(v.ravel()[0])
            return np.zeros(self.size, np.int64), np.zeros(self.size), lambda j: value
        u = v / MAP_STEP_UM
        j = np.floor(u)
        return j.astype(np.int64), u - j, lambda k: float(k) * MAP_STEP_UM
