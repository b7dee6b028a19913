"""The 2-D architecture of the phantom tissue: where tissue, glands, vessels, fat, lymphoid
aggregates, stroma and artefacts are, and the geometry of the section (mid-plane, thickness,
upper surface) in µm.

All functions take a ``Sampler``: the µm coordinates at which to evaluate (a pixel grid of one
render block, or an arbitrary set of points such as nucleus centres) and the pixel pitch that
sets the band limit. Every field is a pure function of (seed, µm position), so blocks agree.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .noise import fbm_grid, fbm_points, key_of, uniform, value_noise_aniso
from .tissue_params import TissueParams

#: Pixel pitch (µm) above which levels are rendered from band-limited statistics (mean
#: transmittance per compartment) instead of explicit cells, fibres and adipocytes.
COARSE_PX_UM = 3.0

__all__ = ["COARSE_PX_UM", "COMPARTMENTS", "Sampler", "SectionGeometry", "Regions", "section_geometry", "regions",
           "smoothstep", "cellular", "fibres", "fibre_mean", "looseness", "looseness_area", "pure_regions"]


def smoothstep(e0: float, e1: float, x) -> np.ndarray:
    t = np.clip((np.asarray(x, np.float32) - np.float32(e0)) / np.float32(e1 - e0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


class Sampler:
    """Where fields are evaluated. Grid mode: ``x_um`` (W,), ``y_um`` (H,) → fields (H, W).
    Points mode: ``x_um``, ``y_um`` arrays of one shape → fields of that shape."""

    def __init__(self, x_um, y_um, px_um: float, grid: bool):
        self.grid = grid
        self.px_um = float(px_um)
        if grid:
            self.x = np.asarray(x_um, np.float64)
            self.y = np.asarray(y_um, np.float64)
            self.X = self.x[None, :]
            self.Y = self.y[:, None]
            self.shape = (len(self.y), len(self.x))
        else:
            self.X = np.asarray(x_um, np.float64)
            self.Y = np.asarray(y_um, np.float64)
            self.shape = self.X.shape

    def fbm(self, scale_um: float, octaves: int, seed: int, key: int) -> np.ndarray:
        if self.grid:
            return fbm_grid(self.x, self.y, scale_um, octaves, seed, key, self.px_um)
        return fbm_points(self.X, self.Y, scale_um, octaves, seed, key)

    def soft(self, um: float = 0.6) -> float:
        """An edge width that is never sharper than the pixel pitch (band limit)."""
        return max(um, 0.75 * self.px_um)


def cellular(s: Sampler, cell_um: float, seed: int, key: int, prob: float = 1.0,
             exists_fn=None, jitter=(0.1, 0.9), want_f2: bool = False, want_xy: bool = False):
    """Jittered-lattice cellular noise: distance (µm) to the nearest existing feature point, its
    lattice id, and optionally the second-nearest distance (``want_f2``) and the nearest
    feature's position (``want_xy``: two more arrays, µm). ``exists_fn(fx, fy) -> bool array``
    can veto features (e.g. glands only in epithelial regions). Distances are float32."""
    ix = np.floor(s.X / cell_um).astype(np.int64)
    iy = np.floor(s.Y / cell_um).astype(np.int64)
    ix0, iy0 = int(ix.min()) - 1, int(iy.min()) - 1
    lx = np.arange(ix0, int(ix.max()) + 2)
    ly = np.arange(iy0, int(iy.max()) + 2)
    LX, LY = lx[None, :], ly[:, None]
    lo, hi = jitter
    fx = (LX + lo + (hi - lo) * uniform(seed, key, LX, LY, 1)) * cell_um
    fy = (LY + lo + (hi - lo) * uniform(seed, key, LX, LY, 2)) * cell_um
    exists = uniform(seed, key, LX, LY, 3) < prob
    if exists_fn is not None and exists.any():
        exists = exists & exists_fn(fx, fy)
    ids = ((LY & 0xFFFF) << 16) | (LX & 0xFFFF)
    ids = np.broadcast_to(ids, fx.shape)
    big = np.float32(1e9)
    d1 = np.full(s.shape, big, np.float32)
    d2 = np.full(s.shape, big, np.float32) if want_f2 else None
    best = np.zeros(s.shape, np.int64)
    bx = np.zeros(s.shape, np.float64) if want_xy else None
    by = np.zeros(s.shape, np.float64) if want_xy else None
    n_feat = int(exists.sum())
    if n_feat == 0:
        out = (d1, best, d2)
        return out + (bx, by) if want_xy else out
    # Work relative to the block's first lattice corner, in float32 (µm offsets stay small).
    ox, oy = ix0 * cell_um, iy0 * cell_um
    fxr = (fx - ox).astype(np.float32)
    fyr = (fy - oy).astype(np.float32)
    Xr = (s.X - ox).astype(np.float32)
    Yr = (s.Y - oy).astype(np.float32)
    if s.grid and n_feat <= 28:
        for j, i in zip(*np.nonzero(exists)):
            d = np.sqrt((Xr - fxr[j, i]) ** 2 + (Yr - fyr[j, i]) ** 2)
            _update(d, ids[j, i], d1, d2, best, bx, by, fx[j, i], fy[j, i])
    else:
        fxm = np.where(exists, fxr, np.float32(1e8))
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                jx = ix - ix0 + dx
                jy = iy - iy0 + dy
                d = np.sqrt((Xr - fxm[jy, jx]) ** 2 + (Yr - fyr[jy, jx]) ** 2)
                _update(d, ids[jy, jx], d1, d2, best, bx, by,
                        (fx[jy, jx] if want_xy else None), (fy[jy, jx] if want_xy else None))
    out = (d1, best, d2)
    return out + (bx, by) if want_xy else out


def _update(d, idv, d1, d2, best, bx=None, by=None, fxv=None, fyv=None):
    closer = d < d1
    if d2 is not None:
        np.copyto(d2, np.where(closer, d1, np.minimum(d2, d)))
    np.copyto(best, idv, where=closer)
    if bx is not None:
        np.copyto(bx, fxv, where=closer)
        np.copyto(by, fyv, where=closer)
    np.copyto(d1, d, where=closer)


def _feature_uniform(seed: int, key: int, ids: np.ndarray, k: int) -> np.ndarray:
    """A per-feature random number from the feature's lattice id."""
    return uniform(seed, key, ids & 0xFFFF, ids >> 16, k).astype(np.float32)


def _feature_uniforms(seed: int, key: int, ids: np.ndarray, ks) -> dict:
    """``_feature_uniform`` for several k at once, hashing each distinct id once (a block has a
    few features and many pixels)."""
    uniq, inv = np.unique(ids, return_inverse=True)
    inv = inv.reshape(ids.shape)
    return {k: _feature_uniform(seed, key, uniq, k)[inv] for k in ks}


@dataclass
class SectionGeometry:
    """Per-position z (µm) of the section's lower and upper surfaces and its mid-plane."""

    bottom: np.ndarray
    top: np.ndarray
    mid: np.ndarray


def section_geometry(s: Sampler, seed: int, p: TissueParams) -> SectionGeometry:
    mid = np.float32(p.warp_amplitude_um) * s.fbm(p.warp_scale_um, 3, seed, key_of("warp")) * np.float32(1.6)
    t = p.thickness_um + p.thickness_var_um * 1.6 * s.fbm(1500.0, 2, seed, key_of("thickness"))
    t = np.maximum(t, 1.5).astype(np.float32)
    rough = np.float32(p.roughness_um * 1.6) * s.fbm(p.roughness_scale_um, 3, seed, key_of("rough"))
    bottom = (mid - 0.5 * t).astype(np.float32)
    top = (mid + 0.5 * t + rough).astype(np.float32)
    return SectionGeometry(bottom, top, mid.astype(np.float32))


@dataclass
class Regions:
    """Soft weights in [0, 1] of each tissue compartment (fields of the sampler's shape)."""

    tissue: np.ndarray        # inside a tissue piece (0 on glass)
    solid: np.ndarray         # tissue material present (0 in lumens, clefts, fat cells, glass)
    epithelium: np.ndarray
    lymphoid: np.ndarray
    vessel_wall: np.ndarray
    vessel_lumen: np.ndarray
    fat_membrane: np.ndarray
    stroma: np.ndarray
    secretion: np.ndarray     # proteinaceous secretion in gland lumens (weight)
    fold: np.ndarray          # 1 where the section is folded over (doubled)
    fibre_angle: float | np.ndarray | None = None


def tissue_mask(s: Sampler, seed: int, p: TissueParams, slide_um: tuple[float, float]) -> np.ndarray:
    W, H = slide_um
    scale = max(p.piece_scale_fraction * max(W, H), 300.0)
    n = s.fbm(scale, 5, seed, key_of("pieces"))
    # Keep pieces on the slide, away from its border, and one near the middle.
    ux = (s.X / W - 0.5) * 2.0
    uy = (s.Y / H - 0.5) * 2.0
    r2 = (ux ** 2 + uy ** 2).astype(np.float32)
    v = n + np.float32(p.tissue_cover) * (1.0 - r2) - np.float32(0.25)
    edge = np.minimum(np.minimum(s.X, W - s.X), np.minimum(s.Y, H - s.Y)).astype(np.float32)
    v = v - np.float32(0.6) * (1.0 - smoothstep(0.0, 0.06 * min(W, H), edge))
    # Convert the noise level to a signed distance-like quantity in µm near the threshold.
    grad_um = scale * 0.35
    return smoothstep(0.0, 1.0, v * np.float32(grad_um / max(p.edge_soft_um, s.soft(1.0))))


def regions(s: Sampler, seed: int, p: TissueParams, slide_um: tuple[float, float],
            with_fibre_angle: bool = False) -> Regions:
    tissue = tissue_mask(s, seed, p, slide_um)
    any_tissue = bool((tissue > 0).any())
    zeros = np.zeros(s.shape, np.float32)
    if not any_tissue:
        return Regions(tissue, zeros, zeros, zeros, zeros, zeros, zeros, zeros, zeros, zeros)
    e = s.soft() if p.tissue_version < 2 else s.soft(2.0 * p.edge_um)   # v2: sharper compartment edges
    # Epithelial (glandular) regions: glands on a jittered lattice where the field allows.
    epi_field_key = key_of("epi-field")

    def epi_allowed(fx, fy):
        v = fbm_points(fx, fy, p.epithelial_scale_um, 3, seed, epi_field_key) + p.epithelial_bias
        return v > 0.0

    d, gid, _, gx, gy = cellular(s, p.gland_cell_um, seed, key_of("glands"), p.gland_prob, epi_allowed,
                                 (0.2, 0.8), want_xy=True)
    gu = _feature_uniforms(seed, key_of("gland-props"), gid, range(1, 8))
    R = p.gland_radius_um[0] + (p.gland_radius_um[1] - p.gland_radius_um[0]) * gu[1]
    T = p.epithelium_um[0] + (p.epithelium_um[1] - p.epithelium_um[0]) * gu[2]
    # Irregular outlines: each gland is stretched along its own axis (aspect 1–2), and its
    # boundary is displaced by noise on three scales (lobes, buds, small bumps).
    ang = np.float32(np.pi) * gu[5]
    asp = 1.0 + np.float32(p.gland_elongation) * gu[6]
    ddx = (s.X - gx).astype(np.float32)
    ddy = (s.Y - gy).astype(np.float32)
    ca, sa = np.cos(ang), np.sin(ang)
    pu = ddx * ca + ddy * sa
    pv = ddy * ca - ddx * sa
    d = np.sqrt(pu * pu / asp + pv * pv * asp)
    wob = s.fbm(18.0, 2, seed, key_of("gland-wobble"))
    lobes = s.fbm(55.0, 2, seed, key_of("gland-lobes"))
    dn = d + R * (np.float32(p.gland_irregularity) * lobes + np.float32(0.16) * wob)
    gland = 1.0 - smoothstep(R - e, R + e, dn)
    T = T * (1.0 + 0.45 * s.fbm(14.0, 2, seed, key_of("gland-epi-thickness")))
    lumen_g = 1.0 - smoothstep(R - T - e, R - T + e, dn)
    has_cleft = gu[3] < p.cleft_prob
    cleft_w = 1.2 + 2.5 * gu[7]
    cleft = np.where(has_cleft, smoothstep(R - e, R + e, dn) * (1.0 - smoothstep(R + cleft_w, R + cleft_w + 2 * e, dn)),
                     0.0)
    secretion = lumen_g * (gu[4] < 0.45)
    epithelium = gland - lumen_g
    # Lymphoid aggregates and fat (adipocytes) in the remaining stroma.
    lymph = smoothstep(p.lymphoid_threshold, p.lymphoid_threshold + 0.06,
                       s.fbm(p.lymphoid_scale_um, 3, seed, key_of("lymph"))) * (1.0 - gland)
    fat_w = smoothstep(p.fat_threshold, p.fat_threshold + 0.05,
                       s.fbm(p.fat_scale_um, 3, seed, key_of("fat"))) * (1.0 - gland) * (1.0 - lymph)
    fat_membrane = zeros
    fat_hole = zeros
    if (fat_w > 0).any() and s.px_um <= COARSE_PX_UM:
        f1, _, f2 = cellular(s, p.adipocyte_um, seed, key_of("adipocytes"), 1.0, None, (0.05, 0.95), True)
        mem = 1.0 - smoothstep(0.8, 0.8 + 2 * e, f2 - f1)
        fat_membrane = fat_w * mem
        fat_hole = fat_w * (1.0 - mem)
    elif (fat_w > 0).any():    # coarse levels: the volume uses fat's mean transmittance
        fat_membrane = fat_w
    # Vessels: round lumens with a muscular wall, in stroma.
    stroma_like = (1.0 - gland) * (1.0 - fat_w)
    dv, vid, _ = cellular(s, p.vessel_cell_um, seed, key_of("vessels"), p.vessel_prob, None, (0.2, 0.8))
    vu = _feature_uniforms(seed, key_of("vessel-props"), vid, (1, 2))
    rv = p.vessel_radius_um[0] + (p.vessel_radius_um[1] - p.vessel_radius_um[0]) * vu[1] ** 2
    wall = 2.0 + 0.35 * rv * vu[2]
    dvn = dv * (1.0 + np.float32(0.1) * wob)
    v_lumen = (1.0 - smoothstep(rv - e, rv + e, dvn)) * stroma_like
    v_wall = (smoothstep(rv - e, rv + e, dvn) - smoothstep(rv + wall - e, rv + wall + e, dvn)) * stroma_like
    # Folds: thin bands where the section lies doubled.
    fold = zeros
    if p.folds:
        fn = s.fbm(0.4 * max(slide_um), 3, seed, key_of("fold"))
        fold = 1.0 - smoothstep(p.fold_width * 0.5, p.fold_width, np.abs(fn + np.float32(0.12)))
    open_space = np.maximum.reduce([lumen_g, cleft, fat_hole, v_lumen])
    solid = tissue * (1.0 - open_space)
    stroma = np.clip(1.0 - epithelium - lymph - v_wall - fat_w - v_lumen - lumen_g - cleft, 0.0, 1.0)
    r = Regions(tissue=tissue, solid=solid.astype(np.float32), epithelium=(epithelium * tissue).astype(np.float32),
                lymphoid=(lymph * tissue).astype(np.float32), vessel_wall=(v_wall * tissue).astype(np.float32),
                vessel_lumen=(v_lumen * tissue).astype(np.float32),
                fat_membrane=(fat_membrane * tissue).astype(np.float32), stroma=(stroma * tissue).astype(np.float32),
                secretion=(secretion * tissue).astype(np.float32), fold=(fold * tissue).astype(np.float32))
    if with_fibre_angle:
        r.fibre_angle = fibre_angle(s, seed)
    return r


#: The tissue compartments whose mean transmittance the coarse levels use.
COMPARTMENTS = ("epithelium", "lymphoid", "stroma_dense", "stroma_loose", "vessel_wall", "fat", "secretion",
                "vessel_lumen")


#: Half-width (noise units) of the smoothstep that turns the looseness field into a weight.
_LOOSE_EDGE = 0.08
_LOOSE_OCTAVES = 3


def looseness(s: Sampler, seed: int, p: TissueParams) -> np.ndarray:
    """Weight in [0, 1] of loose (oedematous) stroma, where ground substance is mostly gone."""
    lv = s.fbm(p.loose_scale_um, _LOOSE_OCTAVES, seed, key_of("loose"))
    return smoothstep(-_LOOSE_EDGE, _LOOSE_EDGE, lv + np.float32(0.5 * (p.loose_fraction - 0.5)))


#: Pitch (µm) of the sub-pixels on which ``looseness_area`` samples the looseness field.
LOOSE_SUBPITCH_UM = 8.0
#: At most this many sub-pixels per pixel side (the 64 µm overview then samples at 16 µm).
LOOSE_MAX_SUB = 4


def looseness_area(s: Sampler, seed: int, p: TissueParams, where: np.ndarray | None = None) -> np.ndarray:
    """The fraction (in [0, 1]) of each pixel's area that is loose stroma, for grids too coarse
    to resolve it: the box mean over the pixel (``s.px_um`` µm) of the full-resolution
    ``looseness`` (every octave, none dropped by the band limit) sampled on g × g sub-pixels,
    g = ⌈pitch / 8 µm⌉ ≤ 4. The looseness threshold is sharp (edges of a few µm on a 70 µm
    field), so its band-limited value at a coarse pixel's centre makes hard-edged pixel-sized
    patches (a mosaic) that differ from the fine level's own mix; this mean is within ~0.015
    (mean abs, fraction units) of a 1 µm sampling from 8 to 64 µm px. ``where`` (bool, the
    grid's shape) limits the work to the bounding box of its True pixels in each strip of rows
    (0 elsewhere, e.g. where there is no stroma); rows go in strips to bound memory."""
    if not s.grid:
        return looseness(s, seed, p)
    g = int(min(LOOSE_MAX_SUB, max(1, np.ceil(s.px_um / LOOSE_SUBPITCH_UM - 1e-9))))
    q = s.px_um / g
    full_px = p.loose_scale_um / 2 ** (_LOOSE_OCTAVES - 1) / 4.0   # a pitch that keeps every octave
    off = (np.arange(g) + 0.5) * q - 0.5 * s.px_um            # sub-pixel centres about the centre
    out = np.zeros(s.shape, np.float32)
    rows = max(1, (1 << 22) // (s.shape[1] * g * g))          # ~4 M sub-samples per strip
    for r0 in range(0, s.shape[0], rows):
        r1 = min(s.shape[0], r0 + rows)
        c0, c1 = 0, s.shape[1]
        if where is not None:
            cols = np.flatnonzero(where[r0:r1].any(axis=0))
            if len(cols) == 0:
                continue
            c0, c1 = int(cols[0]), int(cols[-1]) + 1
        xs = (s.x[c0:c1, None] + off[None, :]).ravel()
        ys = (s.y[r0:r1, None] + off[None, :]).ravel()
        sub = looseness(Sampler(xs, ys, min(q, full_px), grid=True), seed, p)
        out[r0:r1, c0:c1] = sub.reshape(r1 - r0, g, c1 - c0, g).mean(axis=(1, 3))
    return out


def pure_regions(s: Sampler, name: str, seed: int, p: TissueParams, with_fibre_angle: bool = False) -> Regions:
    """Regions where every point is tissue of one compartment (calibration of coarse levels)."""
    one = np.ones(s.shape, np.float32)
    zero = np.zeros(s.shape, np.float32)
    f = {k: zero for k in ("epithelium", "lymphoid", "vessel_wall", "vessel_lumen", "fat_membrane", "stroma",
                           "secretion", "fold")}
    solid = one
    if name == "fat":
        f1, _, f2 = cellular(s, p.adipocyte_um, seed, key_of("adipocytes"), 1.0, None, (0.05, 0.95), True)
        mem = 1.0 - smoothstep(0.8, 0.8 + 2 * s.soft(), f2 - f1)
        f["fat_membrane"] = mem
        solid = mem
    elif name in ("secretion", "vessel_lumen"):
        f[name] = one
        solid = zero
    elif name.startswith("stroma"):
        f["stroma"] = one
    else:
        f[name] = one
    r = Regions(tissue=one, solid=solid, **f)
    if with_fibre_angle:
        r.fibre_angle = fibre_angle(s, seed)
    return r


#: Orientation (rad) and depth half (0 = lower, 1 = upper) of the collagen fibre families.
FIBRE_FAMILIES = ((0.35, 0), (1.55, 1), (2.45, 0), (0.95, 1))

#: Fibre scales (µm): (across, along) of the coarse and the fine streak octave.
FIBRE_COARSE = (3.8, 30.0)
FIBRE_FINE = (1.0, 10.0)
FIBRE_FIBRIL = (0.8, 6.0)


def fibre_weights(s: Sampler, seed: int) -> list[np.ndarray]:
    """Soft partition of unity choosing which fibre family dominates where."""
    ws = [np.exp(np.float32(4.0) * s.fbm(140.0, 2, seed, key_of(f"fibre-w{i}"))) for i in range(len(FIBRE_FAMILIES))]
    tot = sum(ws)
    return [w / tot for w in ws]


def fibre_angle(s: Sampler, seed: int) -> np.ndarray:
    """Orientation (rad) of the dominant fibre family."""
    ws = fibre_weights(s, seed)
    k = np.argmax(np.stack(ws), axis=0)
    return np.asarray([a for a, _ in FIBRE_FAMILIES], np.float32)[k]


#: Streak-noise thresholds (lo, hi) of fibre bundles in dense and in loose stroma: dense
#: stroma is mostly collagen split by thin clefts, loose stroma a few wavy fibres on glass.
STREAKS_DENSE = (-0.5, -0.15)
STREAKS_LOOSE = (0.05, 0.35)


#: Tissue version 2: the same mean thresholds, a third of the width (bundle edges ~0.2 µm).
STREAKS_DENSE_V2 = (-0.38, -0.26)
STREAKS_LOOSE_V2 = (0.14, 0.26)


def _streaks(n: np.ndarray, loose, dense=STREAKS_DENSE, loose_t=STREAKS_LOOSE) -> np.ndarray:
    """Fibre density in [0, 1] from streak noise in [-1, 1] and the stroma's looseness."""
    lo = dense[0] + (loose_t[0] - dense[0]) * loose
    hi = dense[1] + (loose_t[1] - dense[1]) * loose
    t = np.clip((n - lo) / (hi - lo), 0.0, 1.0)
    return (t * t * (3.0 - 2.0 * t)).astype(np.float32)


_FIBRE_MEAN: dict = {}


def fibre_mean(p: TissueParams, loose: float) -> float:
    """Mean of the full-resolution fibre pattern in dense (``loose`` = 0) or loose (1) stroma,
    estimated once on a 200 × 200 grid of points 3.7 µm apart: the value a level too coarse
    to resolve fibres uses, so every level keeps the mean density."""
    k = (p.fibre_waviness, p.fibril_contrast, float(loose))
    if p.tissue_version >= 2:
        k = k + (p.tissue_version, tuple(p.fibril_um))
    if k not in _FIBRE_MEAN:
        g = np.arange(200, dtype=np.float64) * 3.7
        s = Sampler(g, g, 0.25, grid=True)
        vals = [_fibre_family(s, 12345, p, i, 1.0, float(loose)) for i in range(len(FIBRE_FAMILIES))]
        _FIBRE_MEAN[k] = float(np.mean(vals))
    return _FIBRE_MEAN[k]


def _fibre_family(s: Sampler, seed: int, p: TissueParams, i: int, band_fine: float, loose) -> np.ndarray:
    ang = FIBRE_FAMILIES[i][0]
    k = key_of(f"fibre{i}")
    warp = (np.float32(p.fibre_waviness) * s.fbm(45.0, 2, seed, k)
            + np.float32(0.3 * p.fibre_waviness) * s.fbm(12.0, 2, seed, k + 1))
    n = 0.7 * value_noise_aniso(s.X, s.Y, ang, *FIBRE_COARSE, seed, k + 2, warp)
    if band_fine > 0:
        n = n + np.float32(0.3 * band_fine) * value_noise_aniso(s.X, s.Y, ang + 0.08, *FIBRE_FINE, seed, k + 3, warp)
    if p.tissue_version >= 2:   # sharper bundle edges; thin fibrils with edges, see tissue_v2.py
        pat = _streaks(n, loose, STREAKS_DENSE_V2, STREAKS_LOOSE_V2)
        across, along = p.fibril_um
        band_fibril = float(np.clip((across / s.px_um - 1.5) / 1.5, 0.0, 1.0))
        if band_fibril > 0:
            fn = value_noise_aniso(s.X, s.Y, ang - 0.05, across, along, seed, k + 5, warp)
            fibril = smoothstep(-0.25, 0.25, fn) - np.float32(0.5)
            pat = pat * np.maximum(1.0 + np.float32(p.fibril_contrast * band_fibril) * fibril, 0.0)
        return pat
    pat = _streaks(n, loose)
    band_fibril = float(np.clip((FIBRE_FIBRIL[0] / s.px_um - 1.5) / 1.5, 0.0, 1.0))
    if band_fibril > 0:   # fibrils inside the bundles
        pat = pat * np.maximum(1.0 + np.float32(p.fibril_contrast * band_fibril)
                               * value_noise_aniso(s.X, s.Y, ang - 0.05, *FIBRE_FIBRIL, seed, k + 4, warp), 0.0)
    return pat


def fibres(s: Sampler, seed: int, p: TissueParams, loose) -> tuple[np.ndarray, np.ndarray]:
    """Collagen fibre density in [0, 1] for the lower and the upper half of the section.

    Each family is anisotropic value noise, streaky along its direction (cells ~3.8 × 30 µm and
    ~1 × 10 µm), domain-warped across (waviness ``fibre_waviness`` µm over ~45 µm), then
    thresholded (``STREAKS_DENSE`` / ``STREAKS_LOOSE`` by the looseness field ``loose``):
    bundles of irregular width that split, end and leave clefts, not periodic stripes; fibrils
    (~0.8 µm) modulate the bundles. Band limit: the fine octave fades out below 4 pixels per
    cell, and the whole pattern fades to its mean ``fibre_mean`` as the coarse octave does."""
    ws = fibre_weights(s, seed)
    halves = [np.zeros(s.shape, np.float32), np.zeros(s.shape, np.float32)]
    band = float(np.clip((FIBRE_COARSE[0] / s.px_um - 2.0) / 2.0, 0.0, 1.0))
    band_fine = float(np.clip((FIBRE_FINE[0] / s.px_um - 2.0) / 2.0, 0.0, 1.0))
    loose = np.asarray(loose, np.float32)
    mean = fibre_mean(p, 0.0) + (fibre_mean(p, 1.0) - fibre_mean(p, 0.0)) * loose
    for i, (_, half) in enumerate(FIBRE_FAMILIES):
        if band > 0:
            pat = _fibre_family(s, seed, p, i, band_fine, loose)
            pat = band * pat + (1.0 - band) * mean
        else:
            pat = mean
        bundle = 0.7 + 0.3 * s.fbm(22.0, 2, seed, key_of(f"bundle{i}"))
        halves[half] += ws[i] * pat * bundle
    return halves[0], halves[1]
