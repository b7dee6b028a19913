"""Nuclei and red blood cells: ellipsoids on jittered lattices.

Each lattice layer (cell size C µm, one per entry of ``TissueParams.nucleus_cells_um``) holds
at most one object per lattice cell, centred anywhere in the cell, with semi-axes ≤ C/2, so a
pixel needs only its own cell and the three cells of its nearest corner. Several layers with
different C overlap, so objects overlap in projection and sit at different depths. What an
object is (epithelial, lymphocyte, stromal, RBC) is decided by the tissue compartment at its
centre. An ellipsoid with lateral semi-axes (a, b), axial semi-axis rz and centre depth zc fills,
at lateral position with normalised radius r, the column ``zc ± rz·√(1 − r²)``, cut by the
section's surfaces (nuclei are sectioned, as in real slides).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .layout import Sampler, regions
from .noise import key_of, uniform
from .tissue_params import TissueParams

__all__ = ["Objects", "nucleus_layer", "rbc_layer", "cell_borders"]

NONE, EPITHELIAL, LYMPHOCYTE, STROMAL, RBC = 0, 1, 2, 3, 4


@dataclass
class Objects:
    """One lattice layer rasterised on a grid: a column [lo, hi] (µm) per pixel and the stain
    densities (OD/µm) inside it; pixels without an object have hi ≤ lo."""

    lo: np.ndarray
    hi: np.ndarray
    density: np.ndarray          # main absorber (haematoxylin for nuclei, rbc for RBCs)
    dab: np.ndarray | None       # DAB in IHC-positive nuclei
    any: bool
    #: Version 2 nuclei: the column is split at ``mid`` (µm, the nucleus' centre depth clipped
    #: to the column), ``density`` filling [lo, mid] and ``density_hi`` [mid, hi].
    mid: np.ndarray | None = None
    density_hi: np.ndarray | None = None


def _cell_params(cx, cy, kind, seed, layer_key, p: TissueParams, fibre_angle):
    """Per-cell geometry and stain amounts (arrays of the lattice's shape)."""
    u = lambda k: uniform(seed, layer_key, cx, cy, k).astype(np.float32)  # noqa: E731
    shape = kind.shape
    a = np.zeros(shape, np.float32)
    asp = np.ones(shape, np.float32)
    rzf = np.ones(shape, np.float32)
    dens = np.zeros(shape, np.float32)
    con = np.zeros(shape, np.float32)
    rim = np.zeros(shape, np.float32)
    nuc_p = np.zeros(shape, np.float32)
    ang = (u(10) * np.pi).astype(np.float32)
    types = {EPITHELIAL: p.epithelial, LYMPHOCYTE: p.lymphocyte, STROMAL: p.stromal}
    for t, nt in types.items():
        m = kind == t
        if not m.any():
            continue
        a[m] = nt.a_um[0] + (nt.a_um[1] - nt.a_um[0]) * u(11)[m]
        asp[m] = nt.aspect[0] + (nt.aspect[1] - nt.aspect[0]) * u(12)[m]
        rzf[m] = nt.rz_over_a[0] + (nt.rz_over_a[1] - nt.rz_over_a[0]) * u(13)[m]
        dens[m] = nt.haematoxylin * (1.0 + nt.density_spread * (2.0 * u(14)[m] - 1.0))
        con[m] = nt.chromatin_contrast
        rim[m] = nt.rim
        nuc_p[m] = nt.nucleolus_prob
        if nt.align_to_fibres and fibre_angle is not None:
            ang[m] = fibre_angle[m] + 0.35 * (u(15)[m] - 0.5)   # long axis along the fibres
    return a, asp, rzf, dens, con, rim, nuc_p, ang


def _lattice(s: Sampler, cell_um: float, layer: int):
    off = 0.37 * layer * cell_um
    gx = (s.x + off) / cell_um
    gy = (s.y + off * 1.7) / cell_um
    ix = np.floor(gx).astype(np.int64)
    iy = np.floor(gy).astype(np.int64)
    sx = np.where(gx - ix < 0.5, -1, 1)
    sy = np.where(gy - iy < 0.5, -1, 1)
    lx = np.arange(ix.min() - 1, ix.max() + 2)
    ly = np.arange(iy.min() - 1, iy.max() + 2)
    return off, ix, iy, sx, sy, lx, ly


def _rasterise(s: Sampler, cell_um, layer, present, cxs, cys, inv_a2, inv_b2, cos_t, sin_t, wobble, wob_amp=None):
    """For every pixel, the lattice index and normalised r² of the nearest-covering object.
    ``wobble`` (a field, 0 mean) displaces outlines by ``wob_amp`` (per object) of r²."""
    off, ix, iy, sx, sy, lx, ly = _lattice(s, cell_um, layer)
    nx = len(lx)
    best_r2 = np.full(s.shape, np.float32(9.0))
    best_i = np.zeros(s.shape, np.int64)
    best_p = np.zeros(s.shape, np.float32)
    best_q = np.zeros(s.shape, np.float32)
    X = (s.x + off)[None, :].astype(np.float32)
    Y = (s.y + off * 1.7)[:, None].astype(np.float32)
    flat_p = present.ravel()
    for cx_sel, cy_sel in ((ix, iy), (ix + sx, iy), (ix, iy + sy), (ix + sx, iy + sy)):
        flat = (cy_sel - ly[0])[:, None] * nx + (cx_sel - lx[0])[None, :]
        pres = np.take(flat_p, flat)
        if not pres.any():
            continue
        dx = X - np.take(cxs, flat)
        dy = Y - np.take(cys, flat)
        ct, st = np.take(cos_t, flat), np.take(sin_t, flat)
        pp = dx * ct + dy * st
        qq = dy * ct - dx * st
        r2 = pp * pp * np.take(inv_a2, flat) + qq * qq * np.take(inv_b2, flat)
        if wob_amp is not None:
            r2 = r2 * (1.0 + np.take(wob_amp, flat) * wobble)
        r2 = np.where(pres, r2, np.float32(9.0))
        better = r2 < best_r2
        np.copyto(best_r2, r2, where=better)
        np.copyto(best_i, flat, where=better)
        np.copyto(best_p, pp, where=better)
        np.copyto(best_q, qq, where=better)
    return best_r2, best_i, best_p, best_q, lx, ly


def _layer_cells(s: Sampler, cell_um, layer, seed, p: TissueParams, slide_um, want_fibres=True):
    off, ix, iy, sx, sy, lx, ly = _lattice(s, cell_um, layer)
    LX, LY = np.meshgrid(lx, ly)
    key = key_of(f"nuclei{layer}")
    cxs = ((LX + uniform(seed, key, LX, LY, 1)) * cell_um).astype(np.float32)   # lattice frame
    cys = ((LY + uniform(seed, key, LX, LY, 2)) * cell_um).astype(np.float32)
    pts = Sampler(cxs - off, cys - off * 1.7, s.px_um, grid=False)
    return key, LX, LY, cxs, cys, pts


def nucleus_layer(s: Sampler, layer: int, seed: int, p: TissueParams, slide_um, geom_lo, geom_hi,
                  chromatin: np.ndarray, wobble: np.ndarray, ihc: bool, regions_fn=None,
                  chromatin_hi: np.ndarray | None = None) -> Objects:
    """Nuclei of one lattice layer on the grid sampler ``s``.

    ``chromatin`` is a zero-mean granular texture field (relative density), ``wobble`` a
    zero-mean field that roughens outlines; ``regions_fn(points_sampler) -> Regions`` overrides
    the tissue layout (used to calibrate the coarse levels on pure compartments).

    Tissue version 2 (``p.tissue_version >= 2``): ``chromatin`` textures the lower half of each
    nucleus (below its centre depth) and ``chromatin_hi`` the upper half (returned as
    ``Objects.mid`` / ``density_hi``); the envelope is a shell ``p.membrane_um`` µm thick whose
    exact path length inside the clipped column carries ``p.membrane_density`` × the nucleus'
    density extra (a thin dark ring at the outline), replacing version 1's broad rim ramp; the
    nucleolus edge is ``p.edge_um`` soft."""
    v2 = p.tissue_version >= 2
    cell_um = p.nucleus_cells_um[layer]
    key, LX, LY, cxs, cys, pts = _layer_cells(s, cell_um, layer, seed, p, slide_um)
    reg = (regions_fn or (lambda q: regions(q, seed, p, slide_um, with_fibre_angle=True)))(pts)
    u0 = uniform(seed, key, LX, LY, 3).astype(np.float32)
    w_epi = reg.epithelium * p.epithelial_presence[layer]
    w_lym = reg.lymphoid * p.lymphoid_presence
    w_str = (reg.stroma + reg.vessel_wall) * p.stromal_presence
    w_sly = reg.stroma * p.stromal_lymphocyte_presence
    solid = reg.solid * (1.0 - reg.vessel_lumen)
    c1 = w_epi * solid
    c2 = c1 + w_lym * solid
    c3 = c2 + w_str * solid
    c4 = c3 + w_sly * solid
    kind = np.select([u0 < c1, u0 < c2, u0 < c3, u0 < c4], [EPITHELIAL, LYMPHOCYTE, STROMAL, LYMPHOCYTE], NONE)
    present = kind != NONE
    if not present.any():
        return Objects(geom_lo, geom_lo, np.zeros(s.shape, np.float32), None, False)
    # Keep every object inside its own cell ± half a cell (3×… lookup stays exact).
    a, asp, rzf, dens, con, rim, nuc_p, ang = _cell_params(LX, LY, kind, seed, key, p, reg.fibre_angle)
    # Vesicular (open-chromatin) epithelial nuclei: larger, paler, rimmed, with a nucleolus;
    # the others are hyperchromatic.
    ves = (kind == EPITHELIAL) & (uniform(seed, key, LX, LY, 16) < p.vesicular_fraction)
    a = np.where(ves, a * 1.12, a)
    dens = np.where(ves, dens * 0.55, dens)
    rim = np.where(ves, rim * 2.2, rim)
    nuc_p = np.where(ves, 0.95, nuc_p)
    a = np.minimum(a, 0.46 * cell_um)
    b = a * asp
    inv_a2 = (1.0 / np.maximum(a, 1e-3) ** 2).astype(np.float32).ravel()
    inv_b2 = (1.0 / np.maximum(b, 1e-3) ** 2).astype(np.float32).ravel()
    cos_t = np.cos(ang).astype(np.float32).ravel()
    sin_t = np.sin(ang).astype(np.float32).ravel()
    wamp = (p.nuclear_irregularity * (0.25 + 0.75 * uniform(seed, key, LX, LY, 17))).astype(np.float32).ravel()
    r2, idx, pp, qq, _, _ = _rasterise(s, cell_um, layer, present, cxs.ravel(), cys.ravel(),
                                      inv_a2, inv_b2, cos_t, sin_t, wobble, wamp)
    inside = r2 < 1.0
    take = lambda arr: np.take(np.asarray(arr, np.float32).ravel(), idx)  # noqa: E731
    fz = take(uniform(seed, key, LX, LY, 4) * 1.3 - 0.15)
    rz = take(a * rzf)
    h = rz * np.sqrt(np.maximum(1.0 - r2, 0.0))
    zc = geom_lo + fz * (geom_hi - geom_lo)
    lo = np.maximum(zc - h, geom_lo)
    hi = np.minimum(zc + h, geom_hi)
    hi = np.where(inside, hi, lo)
    # Granular chromatin: clumps where the texture is high, clearing where low (never < 0).
    grain = np.maximum(1.0 + take(con) * chromatin, 0.15)
    if not v2:
        d = take(dens) * (grain + take(rim) * np.clip((r2 - 0.6) / 0.4, 0.0, 1.0) ** 2)
    else:
        # Envelope: the part of the clipped column outside the inner ellipsoid (semi-axes
        # shrunk by membrane_um), as a fraction of the column.
        ta = take(a)
        inner = np.maximum(1.0 - np.float32(p.membrane_um) / np.maximum(ta, 1e-3), 0.0)
        hin = rz * inner * np.sqrt(np.maximum(1.0 - r2 / np.maximum(inner * inner, 1e-6), 0.0))
        in_len = np.maximum(np.minimum(zc + hin, hi) - np.maximum(zc - hin, lo), 0.0)
        col = np.maximum(hi - lo, 1e-6)
        shell = np.clip(1.0 - in_len / col, 0.0, 1.0)
        env = np.float32(p.membrane_density) * (0.5 + take(rim)) * shell
        grain_hi = np.maximum(1.0 + take(con) * chromatin_hi, 0.15)
        d = take(dens) * (grain + env)
        d_hi = take(dens) * (grain_hi + env)
    # Nucleoli: a small dense sphere off-centre in some nuclei.
    has_nuc = take(uniform(seed, key, LX, LY, 5) < nuc_p) > 0.5
    if has_nuc.any():
        rn = take(p.nucleolus_um[0] + (p.nucleolus_um[1] - p.nucleolus_um[0]) * uniform(seed, key, LX, LY, 6))
        ox = take(uniform(seed, key, LX, LY, 7) - 0.5) * take(a) * 0.6
        oy = take(uniform(seed, key, LX, LY, 8) - 0.5) * take(b) * 0.6
        dn2 = ((pp - ox) ** 2 + (qq - oy) ** 2) / np.maximum(rn * rn, 1e-3)
        edge = (max(0.3, 0.5 * s.px_um) if not v2 else s.soft(p.edge_um)) / np.maximum(rn, 1e-3)
        blob = np.clip((1.0 - np.sqrt(dn2)) / edge + 0.5, 0.0, 1.0)
        d = d + np.where(has_nuc, np.float32(p.nucleolus_density) * blob, 0.0)
        if v2:
            d_hi = d_hi + np.where(has_nuc, np.float32(p.nucleolus_density) * blob, 0.0)
    d = np.where(inside, d, 0.0).astype(np.float32)
    dab = None
    if ihc:
        pos = take(uniform(seed, key, LX, LY, 9) < p.dab_positive_fraction) > 0.5
        dab = np.where(pos & inside, np.float32(p.dab_nuclear) * (1.0 + 0.3 * chromatin), 0.0).astype(np.float32)
        d = d * np.float32(p.ihc_haematoxylin_scale)
    if v2:
        d_hi = np.where(inside, d_hi, 0.0).astype(np.float32)
        if ihc:
            d_hi = d_hi * np.float32(p.ihc_haematoxylin_scale)
        mid = np.clip(zc, lo, hi).astype(np.float32)
        return Objects(lo.astype(np.float32), hi.astype(np.float32), d, dab, True, mid, d_hi)
    return Objects(lo.astype(np.float32), hi.astype(np.float32), d, dab, True)


def cell_borders(s: Sampler, layer: int, seed: int, p: TissueParams):
    """Cells of nucleus lattice ``layer`` (each lattice site is a cell; its nucleus, when
    present, sits at the site): distance to the nearest cell border (µm, ≈ (F2 − F1)/2 of the
    sites' Voronoi diagram) and the nearest site's lattice index, on the grid sampler ``s``."""
    cell_um = p.nucleus_cells_um[layer]
    off, ix, iy, sx, sy, lx, ly = _lattice(s, cell_um, layer)
    key, LX, LY, cxs, cys, _ = _layer_cells(s, cell_um, layer, seed, p, None)
    X = (s.x + off)[None, :].astype(np.float32)
    Y = (s.y + off * 1.7)[:, None].astype(np.float32)
    nx = len(lx)
    fcx, fcy = cxs.ravel(), cys.ravel()
    big = np.float32(1e9)
    f1 = np.full(s.shape, big, np.float32)
    f2 = np.full(s.shape, big, np.float32)
    best = np.zeros(s.shape, np.int64)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            flat = (iy + dy - ly[0])[:, None] * nx + (ix + dx - lx[0])[None, :]
            d = np.sqrt((X - np.take(fcx, flat)) ** 2 + (Y - np.take(fcy, flat)) ** 2)
            closer = d < f1
            np.copyto(f2, np.where(closer, f1, np.minimum(f2, d)))
            np.copyto(best, np.broadcast_to(flat, s.shape), where=closer)
            np.copyto(f1, d, where=closer)
    ids = np.take(((LY & 0xFFFF) << 16 | (LX & 0xFFFF)).ravel(), best)
    return 0.5 * (f2 - f1), ids


def rbc_layer(s: Sampler, seed: int, p: TissueParams, slide_um, geom_lo, geom_hi, vessel_any: bool,
              regions_fn=None) -> Objects:
    """Red blood cells: biconcave discs filling vessel lumens (and a few extravasated ones)."""
    if not vessel_any:
        return Objects(geom_lo, geom_lo, np.zeros(s.shape, np.float32), None, False)
    cell_um = p.rbc_cell_um
    layer = 7
    key, LX, LY, cxs, cys, pts = _layer_cells(s, cell_um, layer, seed, p, slide_um)
    reg = (regions_fn or (lambda q: regions(q, seed, p, slide_um)))(pts)
    u0 = uniform(seed, key, LX, LY, 3).astype(np.float32)
    present = u0 < reg.vessel_lumen * p.rbc_fill
    if not present.any():
        return Objects(geom_lo, geom_lo, np.zeros(s.shape, np.float32), None, False)
    a = (p.rbc_radius_um[0] + (p.rbc_radius_um[1] - p.rbc_radius_um[0]) * uniform(seed, key, LX, LY, 4)).astype(np.float32)
    a = np.minimum(a, 0.46 * cell_um)
    b = a * (0.85 + 0.15 * uniform(seed, key, LX, LY, 5)).astype(np.float32)
    ang = (np.pi * uniform(seed, key, LX, LY, 6)).astype(np.float32)
    ones = np.ones(s.shape, np.float32)
    r2, idx, _, _, _, _ = _rasterise(s, cell_um, layer, present, cxs.ravel(), cys.ravel(),
                                    (1 / a ** 2).ravel(), (1 / b ** 2).ravel(), np.cos(ang).ravel(),
                                    np.sin(ang).ravel(), ones)
    inside = r2 < 1.0
    fz = np.take((uniform(seed, key, LX, LY, 7)).astype(np.float32).ravel(), idx)
    half = 0.5 * p.rbc_thickness_um * (0.55 + 0.45 * np.clip(r2, 0, 1)) * np.sqrt(np.clip(4.0 * (1.0 - r2), 0, 1))
    zc = geom_lo + fz * (geom_hi - geom_lo)
    lo = np.maximum(zc - half, geom_lo)
    hi = np.where(inside, np.minimum(zc + half, geom_hi), lo)
    d = np.where(inside, np.float32(p.rbc_density), 0.0).astype(np.float32)
    return Objects(lo.astype(np.float32), hi.astype(np.float32), d, None, True)
