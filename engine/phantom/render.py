"""The phantom's renderer and ground truth: the image of the virtual section for any focus.

Image formation (thesis Eq. 5.3, discretised as TSVA's layered model)::

    OD_c(x, y | f) = Σ_bins  h_c(f − z_bin − s_c) ⊛ OD_c,bin(x, y)        (µm, per channel c)
    I_c(x, y | f)  = white_c · 10^(−OD_c(x, y | f))

Each z bin's optical density is blurred by the channel's Born & Wolf defocus PSF for its
distance from the focal plane f (``optics.py``), the blurred layers are summed, then
Beer–Lambert gives the intensity. Blurring OD rather than transmittance is the weak-absorption
(first Born) approximation: exact for a thin absorber, a good approximation for 3–6 µm
sections whose OD is below ~1. Each bin is Fourier-transformed once per block (float32, cached)
and reused for every focal plane, so a focal stack costs one spectral multiply-add per bin and
channel and one inverse FFT per channel and plane; the 2-D OTFs are cached per (level, channel,
defocus) as half maps (they are radially symmetric).

Focus. ``focus`` is a float (µm, uniform), an (h, w) array (µm per pixel of the requested
level: pixel p shows the tissue imaged with the focal plane at f(p)), or a callable
``f(x_um, y_um, px_um) -> (h, w)`` evaluated on each block. Focal planes are computed exactly on
a grid of ``focus_step_um(level)`` (0.1 µm at full resolution, coarser at coarse levels where
the depth of field is larger) and linearly interpolated in OD between the two nearest grid
planes (error well below one grey level: the depth of field is ≥ 1.3 µm). Where the focus is
the same over a whole block (a uniform focus, a constant map, a focal stack's plane) that plane
is computed exactly instead (to ``PLANE_QUANTUM_UM``, 0.01 µm), so a plane costs one spectral
sum whatever its z. A uniform focus goes through the very same path as a constant map, so both
give identical pixels.

Blocks. Rendering happens on a fixed grid of ``BLOCK``-px blocks per level, each computed with a
margin of ``halo_px(level)`` px (16 µm at levels 0–2, 16 px coarser: wider than the defocus PSF
up to ~20 µm of defocus), so any request is assembled from identical blocks: tiling never
changes a single bit, noise included. Coarse levels are rendered directly at their own pitch
(the volume is band-limited there, the detector pixel is a box of that pitch), never by
rendering level 0 and downsampling.

Best focus. z*(x, y) is where the content of each location is sharpest, by the classical
energy-of-Laplacian focus measure on the noise-free rendered image: for a sweep of focal planes
f (every ``zstar_step_um(level)`` µm, 0.25 µm at level 0, over the block's stained depth range)
the Rec. 601 luma of the rendered intensity is filtered with the 4-neighbour Laplacian, squared,
and averaged in a Gaussian window of σ = ``ZSTAR_WINDOW_UM`` (4 µm; at least 2 px of the level);
z* is the f of maximum windowed energy, refined between sweep planes by a parabola through the
log-energies. So z* is defined at the 4 µm scale (about half a nucleus): the energy is summed
on cells of ``ZSTAR_CELL_UM`` (2 µm), its windowed sweep interpolated to 1 µm sub-cells where
the peak is taken, and z* interpolated bilinearly from there to pixels. Where a window holds no
detail (glass) z* falls back smoothly to the section's mid-plane. Where neighbouring cells peak
at depths more than 0.5 µm apart (two layers), z* switches to the nearest cell's value instead
of ramping through depths where neither layer is sharp. The all-in-focus truth is the image
rendered with focus = z* per pixel. ``best_focus_of_region`` is the same measure summed over
a whole region (a patch's label for FocusLiteNN, thesis Eq. 3.9): the focal plane at which the
region's image is sharpest. The sweep's per-cell energies are cached, so both cost one sweep
per block (~35 focal planes at level 0).

Coordinates follow ``Slide.read_region``: (x, y) is the top-left in level-0 px, (w, h) are px of
the requested level, level k has 2^k × the level-0 pitch.
"""
from __future__ import annotations

import math

import numpy as np
import scipy.fft
from scipy.ndimage import gaussian_filter

from .cache import ByteLRU
from .optics import Optics, OTFTable, SpectralGrid
from .sensor import SensorModel
from .volume import TissueVolume, z_bin_um

__all__ = ["PhantomRenderer", "clear_shared_caches", "set_spectra_cache_mb", "BLOCK", "HALO", "FOCUS_STEP_UM", "focus_step_um", "halo_px", "ZSTAR_WINDOW_UM",
           "ZSTAR_CELL_UM", "zstar_step_um"]

BLOCK = 512
#: Margin (px) of a level-0 block; see ``halo_px``.
HALO = 64
FOCUS_STEP_UM = 0.1
#: A focus that is uniform over a block is computed exactly, to this resolution (µm).
PLANE_QUANTUM_UM = 0.01
_KNOT_EPS = 1e-6
#: Luma weights (Rec. 601, as engine.fqa.metrics) of the grey image whose sharpness defines z*.
LUMA = (0.299, 0.587, 0.114)
#: σ (µm) of the Gaussian window of local Laplacian energy that defines z*.
ZSTAR_WINDOW_UM = 4.0
#: Cell (µm) on which z* is evaluated before bilinear interpolation to pixels.
ZSTAR_CELL_UM = 2.0
#: Sweep margin (µm) beyond the stained depth range of a block.
_ZSTAR_MARGIN_UM = 0.6
#: Windowed Laplacian energy (grey levels², per pixel) below which z* falls back to the
#: mid-plane: a Laplacian of rms 0.3 grey levels is invisible detail.
_ZSTAR_FLOOR = 0.3 ** 2
#: Sub-cells per cell on which the windowed energy's peak is located (1 µm at level 0).
_ZSTAR_SUB = 2
#: Depth difference (µm) between neighbouring cells above which z* switches instead of ramping.
_ZSTAR_JUMP_UM = 0.5
_LN10 = np.float32(math.log(10.0))


def focus_step_um(level: int) -> float:
    """Spacing (µm) of the exactly computed focal planes ("knots") at ``level``: 0.1 µm at
    levels 0 and 1, doubling per level above (0.2 µm at 1 µm/px ... 3.2 µm at 16 µm/px). The
    depth over which a pixel's image changes grows with its pitch (depth of field ≈ λ/NA² +
    pitch/NA: 1.3 µm at level 0, 22 µm at level 6), so every level keeps at least ~7 knots per
    depth of field and OD interpolation between knots stays far below a grey level."""
    return FOCUS_STEP_UM * max(1, 2 ** (level - 1))


#: OTF tables and 2-D OTF half maps, shared by every renderer of the process with the same
#: optics (a training set renders many slides through one objective).
_OTF_SHARED: dict = {}
_OTF_SHARED_MB = 160
#: Spectra of render blocks (the costly part: the sampled volume), shared per process and keyed
#: by the volume's identity; ~5 MB per z bin at level 0 (a tissue block ~65 MB), so the default
#: 800 MB keep a screenful of level-0 blocks (12) ready for every focal plane.
_SPECTRA_SHARED = ByteLRU(800 << 20)


def set_spectra_cache_mb(mb: int) -> None:
    """Resize the process-wide cache of block spectra (MB)."""
    _SPECTRA_SHARED.max_bytes = int(mb) << 20


def clear_shared_caches() -> None:
    """Empty the process-wide caches (spectra, OTF tables and maps): the next render is cold."""
    _SPECTRA_SHARED.clear()
    for table, maps in _OTF_SHARED.values():
        maps.clear()
    _OTF_SHARED.clear()


def _shared_otfs(optics: Optics) -> tuple[OTFTable, ByteLRU]:
    got = _OTF_SHARED.get(optics)
    if got is None:
        got = _OTF_SHARED.setdefault(optics, (OTFTable(optics), ByteLRU(_OTF_SHARED_MB << 20)))
    return got


def halo_px(level: int) -> int:
    """Margin (px of ``level``) around each render block: 16 µm at levels 0–2, 16 px coarser."""
    return max(16, HALO >> level)


def zstar_step_um(level: int, mpp: float = 0.25) -> float:
    """Spacing (µm) of the focus sweep that finds z*: 0.25 µm at full resolution (a quarter of
    the ~1 µm depth of field), half the z-bin width at coarse levels (whose bins are as thick as
    their pixel pitch)."""
    return max(0.25, 0.5 * z_bin_um(mpp * 2 ** level))


class _Spectra:
    def __init__(self, G, z_um, mid, tissue):
        self.G = G            # (3, nb, n, n//2+1) complex64, or None for an empty block
        self.z_um = z_um      # (nb,) centres of the bins that hold stain, µm
        self.mid = mid        # (n, n) section mid-plane, µm
        self.tissue = tissue


class PhantomRenderer:
    """Renders a ``TissueVolume`` through ``Optics`` (and optionally a ``SensorModel``).

    ``cache_mb`` bounds this renderer's caches of focal planes (55 %) and of z* sweeps and maps
    (15 %); block spectra (800 MB, ``set_spectra_cache_mb``) and OTFs (160 MB) live in
    process-wide caches shared by every renderer of the same volume / optics."""

    def __init__(self, volume: TissueVolume, optics: Optics | None = None, sensor: SensorModel | None = None,
                 cache_mb: int = 640):
        self.volume = volume
        self.optics = optics or Optics()
        self.sensor = sensor or SensorModel()
        self.white = np.asarray(volume.params.white_rgb, np.float32)
        self.otf, self._otf2d = _shared_otfs(self.optics)
        self._grids: dict[int, tuple] = {}
        mb = 1 << 20
        # Spectra depend on the volume only (and the level's pixel aperture): renderers of the
        # same volume (e.g. slides that differ in planes, noise or scanner error) share them.
        self._volume_key = (volume.seed, volume.size_px, volume.stains.name, volume.mpp, repr(volume.params))
        self._spectra = _SPECTRA_SHARED
        self._planes = ByteLRU(int(cache_mb * 0.55) * mb)
        self._aux = ByteLRU(int(cache_mb * 0.15) * mb)

    # ------------------------------------------------------------------ geometry
    def px_um(self, level: int) -> float:
        return self.volume.mpp * (2 ** level)

    def block_side(self, level: int) -> int:
        """Side (px) of a block with its margins: the FFT size at ``level``."""
        return BLOCK + 2 * halo_px(level)

    def _grid(self, level: int):
        g = self._grids.get(level)
        if g is None:
            sg = SpectralGrid(self.block_side(level), self.px_um(level))
            g = (sg, self.otf.radial_index(sg.nu_half))
            self._grids[level] = g
        return g

    # ------------------------------------------------------------------ spectra & planes
    def spectra(self, level: int, bi: int, bj: int) -> _Spectra:
        """FFT of every stained z bin's OD for block (row bi, column bj) of ``level`` (cached)."""
        def compute():
            h = halo_px(level)
            vol = self.volume.block(level, bj * BLOCK - h, bi * BLOCK - h, BLOCK + 2 * h)
            if vol.empty:
                return _Spectra(None, vol.z_um, vol.mid_um, vol.tissue)
            live = np.flatnonzero(vol.od.max(axis=(0, 2, 3)) > 0)
            if len(live) == 0:
                return _Spectra(None, vol.z_um[:0], vol.mid_um, vol.tissue)
            od = vol.od if len(live) == vol.od.shape[1] else vol.od[:, live]
            F = scipy.fft.rfft2(od, axes=(-2, -1))
            F *= self._grid(level)[0].mtf                 # detector pixel aperture (box of the pitch)
            return _Spectra(np.ascontiguousarray(F, np.complex64), np.asarray(vol.z_um)[live],
                            vol.mid_um, vol.tissue)
        return self._spectra.get_or_compute((self._volume_key, level, bi, bj), compute)

    def _otf(self, level: int, channel: int, dz_key: int) -> np.ndarray:
        """Half map (rows 0..n/2) of channel ``channel``'s OTF at defocus ``dz_key`` (cached)."""
        grid, index = self._grid(level)

        def compute():
            return np.ascontiguousarray(self.otf.otf2d(channel, dz_key, index), np.float32)
        return self._otf2d.get_or_compute((grid.n, grid.px_um, channel, dz_key), compute)

    def _focal_od(self, level: int, sp: _Spectra, f_um: float) -> np.ndarray:
        """Blurred OD (3, n, n), margins included, of a block with the focal plane at ``f_um``."""
        grid = self._grid(level)[0]
        G = sp.G
        acc = np.zeros(G.shape[:1] + G.shape[2:], np.complex64)
        tmp = np.empty(G.shape[2:], np.complex64)
        for c in range(3):
            shift = self.optics.focal_shift_um[c]
            for b, zb in enumerate(sp.z_um):
                key = self.otf.key(f_um - zb - shift)
                grid.madd_half(G[c, b], self._otf(level, c, key), acc[c], tmp)
        n = grid.n
        return scipy.fft.irfft2(acc, s=(n, n), axes=(-2, -1))

    def knot_od(self, level: int, bi: int, bj: int, knot: int) -> np.ndarray:
        """Blurred OD (3, BLOCK, BLOCK) of a block with the focal plane at ``knot × focus_step_um(level)``."""
        def compute():
            sp = self.spectra(level, bi, bj)
            if sp.G is None:
                return np.zeros((3, BLOCK, BLOCK), np.float32)
            h = halo_px(level)
            img = self._focal_od(level, sp, round(knot * focus_step_um(level), 6))
            return np.ascontiguousarray(img[:, h:h + BLOCK, h:h + BLOCK], np.float32)
        return self._planes.get_or_compute((level, bi, bj, int(knot)), compute)

    def plane_od(self, level: int, bi: int, bj: int, f_um: float) -> np.ndarray:
        """Blurred OD (3, BLOCK, BLOCK) of a block with one focal plane at ``f_um`` (rounded to
        ``PLANE_QUANTUM_UM``), computed exactly (a knot when it lies on the knot grid; cached)."""
        q = int(round(f_um / PLANE_QUANTUM_UM))
        per_knot = int(round(focus_step_um(level) / PLANE_QUANTUM_UM))
        if q % per_knot == 0:
            return self.knot_od(level, bi, bj, q // per_knot)

        def compute():
            sp = self.spectra(level, bi, bj)
            if sp.G is None:
                return np.zeros((3, BLOCK, BLOCK), np.float32)
            h = halo_px(level)
            img = self._focal_od(level, sp, round(q * PLANE_QUANTUM_UM, 6))
            return np.ascontiguousarray(img[:, h:h + BLOCK, h:h + BLOCK], np.float32)
        return self._planes.get_or_compute((level, bi, bj, "plane", q), compute)

    # ------------------------------------------------------------------ one block
    def block_od(self, level: int, bi: int, bj: int, focus) -> np.ndarray:
        """OD (3, BLOCK, BLOCK) of a block for a focus: float, (BLOCK, BLOCK) array or callable."""
        fm = self._block_focus(level, bi, bj, focus)
        fmin, fmax = float(fm.min()), float(fm.max())
        if fmin == fmax:             # one focal plane over the whole block: computed exactly
            return self.plane_od(level, bi, bj, fmin).copy()
        t = fm / focus_step_um(level)
        k0 = np.floor(t + _KNOT_EPS).astype(np.int64)
        frac = (t - k0).astype(np.float32)
        frac[frac < _KNOT_EPS] = 0.0
        kmin, kmax = int(k0.min()), int(k0.max())
        knots = [kmin] if kmin == kmax else [k for k in range(kmin, kmax + 1) if (k0 == k).any()]
        if len(knots) == 1:
            k = int(knots[0])
            a = self.knot_od(level, bi, bj, k)
            if not (frac > 0).any():
                return a.copy()
            b = self.knot_od(level, bi, bj, k + 1)
            return a + (b - a) * frac
        od = np.empty((3, BLOCK, BLOCK), np.float32)
        for k in knots:
            m = k0 == k
            a = self.knot_od(level, bi, bj, int(k))
            fr = np.where(m, frac, np.float32(0.0))
            if (fr > 0).any():
                val = a + (self.knot_od(level, bi, bj, int(k) + 1) - a) * fr
            else:
                val = a
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

    def intensity(self, od: np.ndarray) -> np.ndarray:
        """Beer–Lambert: float32 (h, w, 3) grey levels from OD (3, h, w)."""
        inten = np.multiply(od, -_LN10, dtype=np.float32)
        np.exp(inten, out=inten)
        inten *= self.white[:, None, None]
        return np.ascontiguousarray(np.moveaxis(inten, 0, -1))

    def block_image(self, level: int, bi: int, bj: int, focus, noise: bool = False, plane_key: int = 0,
                    jpeg: bool = False) -> np.ndarray:
        """uint8 (BLOCK, BLOCK, 3) image of one block."""
        inten = self.intensity(self.block_od(level, bi, bj, focus))
        if noise:
            img = self.sensor.apply(inten, self.volume.seed, level, plane_key, bj * BLOCK, bi * BLOCK)
        else:
            inten += np.float32(0.5)
            np.clip(inten, 0, 255, out=inten)
            img = inten.astype(np.uint8)       # floor(x + 0.5) of a non-negative value
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

    def render_stack(self, level: int, x: int, y: int, w: int, h: int, planes_um, *, noise: bool = False,
                     plane_key: int = 0) -> np.ndarray:
        """uint8 (P, h, w, 3): the region at each uniform focus of ``planes_um`` (µm). The volume
        and its spectra are computed once; plane i's noise is keyed by ``plane_key + i``."""
        return np.stack([self.render(level, x, y, w, h, float(z), noise=noise, plane_key=plane_key + i)
                         for i, z in enumerate(planes_um)])

    # ------------------------------------------------------------------ best focus
    def best_focus_block(self, level: int, bi: int, bj: int) -> np.ndarray:
        """z* (µm, float32 (BLOCK, BLOCK)) of a block: where its content is sharpest (cached)."""
        return self._aux.get_or_compute(("zstar", level, bi, bj), lambda: self._best_focus(level, bi, bj))

    def _cells(self, level: int) -> tuple[int, int]:
        """(cell px, cells per block side including margins) of the z* grid at ``level``."""
        px = self.px_um(level)
        cell = max(1, int(round(ZSTAR_CELL_UM / px)))
        return cell, self.block_side(level) // cell

    def sweep_range(self, level: int, bi: int, bj: int) -> tuple[int, int]:
        """Focal planes (k0, k1) of a block's z* sweep: f = k × ``zstar_step_um(level)`` for
        k0 ≤ k ≤ k1, spanning its stained bins ± 0.6 µm and the channels' focal shifts."""
        sp = self.spectra(level, bi, bj)
        if sp.G is None:
            return 0, -1
        step = zstar_step_um(level, self.volume.mpp)
        half_bin = 0.5 * z_bin_um(self.px_um(level))
        shifts = self.optics.focal_shift_um
        lo = float(np.min(sp.z_um)) - half_bin - _ZSTAR_MARGIN_UM + min(shifts)
        hi = float(np.max(sp.z_um)) + half_bin + _ZSTAR_MARGIN_UM + max(shifts)
        return math.floor(lo / step), math.ceil(hi / step)

    def cell_energy(self, level: int, bi: int, bj: int, k: int) -> np.ndarray:
        """Mean squared Laplacian (grey levels²) of the noise-free luma image per z* cell of a
        block (margins included, float32 (m, m)) with the focal plane at k × zstar_step (cached)."""
        def compute():
            sp = self.spectra(level, bi, bj)
            cell, m = self._cells(level)
            if sp.G is None:
                return np.zeros((m, m), np.float32)
            f = round(k * zstar_step_um(level, self.volume.mpp), 6)
            od = self._focal_od(level, sp, f)
            od *= -_LN10
            np.exp(od, out=od)
            od *= (np.asarray(LUMA, np.float32) * self.white)[:, None, None]
            g = od.sum(axis=0)
            n = g.shape[0]
            lap = np.zeros((n, n), np.float32)
            lap[1:-1, 1:-1] = g[:-2, 1:-1] + g[2:, 1:-1] + g[1:-1, :-2] + g[1:-1, 2:] - 4.0 * g[1:-1, 1:-1]
            np.square(lap, out=lap)
            return np.ascontiguousarray(lap.reshape(m, cell, m, cell).mean(axis=(1, 3)), np.float32)
        return self._aux.get_or_compute(("energy", level, bi, bj, int(k)), compute)

    def _best_focus(self, level: int, bi: int, bj: int) -> np.ndarray:
        sp = self.spectra(level, bi, bj)
        hp = halo_px(level)
        core = (slice(hp, hp + BLOCK), slice(hp, hp + BLOCK))
        mid = np.asarray(sp.mid, np.float32)
        k0, k1 = self.sweep_range(level, bi, bj)
        if k1 < k0:
            return np.ascontiguousarray(mid[core], np.float32)
        px = self.px_um(level)
        cell, m = self._cells(level)
        step = zstar_step_um(level, self.volume.mpp)
        energy = np.stack([self.cell_energy(level, bi, bj, k) for k in range(k0, k1 + 1)])
        sigma_cells = max(ZSTAR_WINDOW_UM, 2.0 * px) / (cell * px)
        energy = gaussian_filter(energy, sigma=(0, sigma_cells, sigma_cells), mode="nearest", truncate=3.0)
        # The windowed energy is smooth at the 4 µm scale: interpolate it to a grid of
        # ``_ZSTAR_SUB`` sub-cells per cell, take the peak there, then interpolate z* bilinearly.
        sub = _ZSTAR_SUB if cell >= _ZSTAR_SUB else 1
        Rs = _bilinear_matrix(m, sub, 0, m * sub)                      # cells → sub-cells
        energy = np.einsum("ia,pab,jb->pij", Rs, energy, Rs, optimize=True).astype(np.float32)
        z, e_max = _peak(energy, k0, step)
        mid_sub = Rs @ mid.reshape(m, cell, m, cell).mean(axis=(1, 3)) @ Rs.T
        conf = e_max / (e_max + _ZSTAR_FLOOR)
        zc = conf * z + (1.0 - conf) * mid_sub
        return np.ascontiguousarray(_upsample_z(zc, cell // sub, hp), np.float32)

    def best_focus_of_region(self, level: int, x: int, y: int, w: int, h: int) -> float:
        """z* (µm) of a whole region: the focal plane at which the region's image is sharpest,
        i.e. where the mean squared Laplacian of its noise-free luma over the region peaks
        (parabola-refined between sweep planes). This is the label of a patch (thesis Eq. 3.9);
        the per-pixel map ``best_focus_map`` is the same measure in a 4 µm window. A region of
        bare glass gets its mean mid-plane."""
        ds = 2 ** level
        lx, ly = int(np.floor(x / ds)), int(np.floor(y / ds))
        parts, k0, k1 = [], None, None
        mids = []
        for bi, bj, dst, src in self._blocks(level, x, y, w, h):
            cell, m = self._cells(level)
            hp = halo_px(level)
            wy = _cell_overlap(src[0], cell, hp, m)
            wx = _cell_overlap(src[1], cell, hp, m)
            a, b = self.sweep_range(level, bi, bj)
            parts.append((bi, bj, np.outer(wy, wx)))
            sp = self.spectra(level, bi, bj)
            mids.append(float(np.asarray(sp.mid)[hp:hp + BLOCK, hp:hp + BLOCK][src].mean()))
            if b >= a:
                k0 = a if k0 is None else min(k0, a)
                k1 = b if k1 is None else max(k1, b)
        if k0 is None:
            return float(np.mean(mids))
        total = sum(float(wt.sum()) for _, _, wt in parts)
        curve = np.zeros(k1 - k0 + 1)
        for bi, bj, wt in parts:
            for i, k in enumerate(range(k0, k1 + 1)):
                curve[i] += float((self.cell_energy(level, bi, bj, k) * wt).sum())
        curve /= total
        z, e_max = _peak(curve[:, None, None], k0, zstar_step_um(level, self.volume.mpp))
        if e_max[0, 0] < _ZSTAR_FLOOR:
            c = e_max[0, 0] / (e_max[0, 0] + _ZSTAR_FLOOR)
            return float(c * z[0, 0] + (1 - c) * np.mean(mids))
        return float(z[0, 0])

    def best_focus_map(self, level: int, x: int, y: int, w: int, h: int) -> np.ndarray:
        """z*(x, y) in µm, float32 (h, w): where the content of each pixel is sharpest."""
        out = np.empty((h, w), np.float32)
        for bi, bj, dst, src in self._blocks(level, x, y, w, h):
            out[dst] = self.best_focus_block(level, bi, bj)[src]
        return out

    def all_in_focus(self, level: int, x: int, y: int, w: int, h: int, *, noise: bool = False) -> np.ndarray:
        """The all-in-focus truth: the region rendered with focus = z* per pixel."""
        out = np.empty((h, w, 3), np.uint8)
        for bi, bj, dst, src in self._blocks(level, x, y, w, h):
            zb = self.best_focus_block(level, bi, bj)
            fb = np.full((BLOCK, BLOCK), zb[src].flat[0], np.float64)   # only the requested
            fb[src] = zb[src]                                            # pixels' depths count
            out[dst] = self.block_image(level, bi, bj, fb, noise, 1001)[src]
        return out


def _peak(energy: np.ndarray, k0: int, step: float) -> tuple[np.ndarray, np.ndarray]:
    """Focal plane (µm) of maximum energy along axis 0 of (P, ...) energies of planes
    (k0 + i) × step, refined by a parabola through the log-energies; and that maximum."""
    P = energy.shape[0]
    k = np.argmax(energy, axis=0)
    e_max = np.take_along_axis(energy, k[None], 0)[0]
    z = (k0 + k) * step
    if P >= 3:
        kk = np.clip(k, 1, P - 2)
        y0, y1, y2 = (np.log(np.take_along_axis(energy, (kk + d)[None], 0)[0].astype(np.float64) + 1e-20)
                      for d in (-1, 0, 1))
        denom = y0 - 2.0 * y1 + y2
        ok = (k > 0) & (k < P - 1) & (denom < 0)
        t = np.where(ok, 0.5 * (y0 - y2) / np.where(ok, denom, -1.0), 0.0)
        z = z + np.clip(t, -0.5, 0.5) * step
    return np.asarray(z, np.float64), e_max


def _cell_overlap(sl: slice, cell: int, offset: int, m: int) -> np.ndarray:
    """Fraction of each of ``m`` cells (of ``cell`` px, the grid starting ``offset`` px before the
    block core) covered by the core pixel range ``sl``."""
    a, b = sl.start + offset, sl.stop + offset
    edges = np.arange(m + 1) * cell
    return np.clip(np.minimum(edges[1:], b) - np.maximum(edges[:-1], a), 0, None) / cell


def _upsample_z(zc: np.ndarray, cell: int, offset: int) -> np.ndarray:
    """z* from cell centres to the BLOCK core pixels: bilinear where the four surrounding
    cells agree within ``_ZSTAR_JUMP_UM``, else the nearest cell's value (a switch between two
    layers stays a switch instead of a ramp through depths where neither is sharp)."""
    m = zc.shape[0]
    u = (offset + np.arange(BLOCK) + 0.5) / cell - 0.5
    i0 = np.clip(np.floor(u).astype(np.int64), 0, m - 2)
    t = np.clip(u - i0, 0.0, 1.0)
    near = np.where(t < 0.5, i0, i0 + 1)
    a, b = zc[i0][:, i0], zc[i0][:, i0 + 1]
    c, d = zc[i0 + 1][:, i0], zc[i0 + 1][:, i0 + 1]
    ty, tx = t[:, None], t[None, :]
    bil = (a * (1 - tx) + b * tx) * (1 - ty) + (c * (1 - tx) + d * tx) * ty
    spread = np.maximum.reduce([a, b, c, d]) - np.minimum.reduce([a, b, c, d])
    return np.where(spread > _ZSTAR_JUMP_UM, zc[near][:, near], bil)


def _bilinear_matrix(m: int, cell: int, offset: int, n: int = BLOCK) -> np.ndarray:
    """(n, m) weights that interpolate values at the centres of ``m`` cells of ``cell`` px
    linearly to the centres of ``n`` pixels, which start ``offset`` px into the cell grid."""
    u = (offset + np.arange(n) + 0.5) / cell - 0.5
    i0 = np.clip(np.floor(u).astype(np.int64), 0, m - 2)
    t = np.clip(u - i0, 0.0, 1.0)
    R = np.zeros((n, m))
    R[np.arange(n), i0] = 1.0 - t
    R[np.arange(n), i0 + 1] += t
    return R
