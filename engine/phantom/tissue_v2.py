"""Tissue model version 2: the fine structure that makes a real section sharp at best focus.

Version 1 (``volume.TissueVolume._tissue_columns``) draws its finest textures on lattices of
0.8–1.6 µm and lays each 2-D texture through the whole depth of its column, so a chromatin
grain or a cytoplasm granule is a rod through the section: at best focus its image is the sum
of an in-focus slice and out-of-focus rest, and it stays visible however far the focus moves.
Version 2 (``TissueParams.tissue_version = 2``, ``tissue_params(2)``) keeps the architecture,
stains and objective of version 1 and changes the small scale and the depth the objective
sees, always as matter or optics, never as an image filter (values: ``V2_CHANGES``):

* a thinner section (3.5 ± 0.5 µm, as routine H&E sections are cut), stained as densely
  (``density_scale``: the same colour as version 1's 4.5 µm);
* optics of the mounted section: the mountant (refractive index 1.52) compresses depths for
  the dry objective to physical depth / 1.52 of stage travel (``apparent_depth``), where
  version 1 took physical µm for stage µm;
* 3-D granularity: cytoplasm, ground substance, muscle and secretions carry granules of
  ``granule_um`` (0.6 µm lattice, thresholded: discrete granules with edges, not a smooth
  mottle), with an independent granule field in each half of the section, so a granule is
  about as deep as it is wide;
* nuclei: chromatin clumps on a ``chromatin_um`` lattice (thresholded, 0.3–0.6 µm clumps),
  again one field for the lower and one for the upper half of each nucleus (the nucleus column
  is split at the nucleus' centre depth), and a nuclear envelope of ``membrane_um`` thickness
  (the exact path length through an ellipsoidal shell inside the section: a thin dark ring at
  the outline, since the envelope stands nearly upright in a thin section) — see
  ``cells.nucleus_layer``;
* thin collagen fibrils (0.7 µm lattice across, thresholded streaks: fibrils with edges)
  inside the bundles, whose own edges are three times sharper (``layout.fibres``);
* compartment edges and cell membranes ``edge_um`` (0.12 µm) soft, glands and lumens twice
  that (never sharper than 0.75 px, the band limit of every level).

Tuned on the realism report's seed 0 (never an evaluation seed) until every measure of
``finefocus phantom realism --tissue-version 2`` sits near the real images' median.

Band limit: each fine field fades to its mean where its lattice is coarser than 3 px and is
gone (its mean) below 1.5 px (``band_weight``), so coarse levels keep the mean colour, as in
version 1. Units: µm, OD per µm of path (see ``stains.py``).
"""
from __future__ import annotations

import numpy as np

from .cells import cell_borders, nucleus_layer, rbc_layer
from .layout import Sampler, fibres, looseness, smoothstep
from .noise import key_of, uniform, value_noise_grid, value_noise_points

__all__ = ["band_weight", "granules", "tissue_columns", "apparent_depth"]

#: Thresholds (lo, hi) of value noise in [-1, 1] that make granules: about a quarter of the
#: area is inside a granule, and a granule's edge is a fraction of the lattice wide.
GRANULE_THRESHOLD = (0.18, 0.42)

_GRANULE_MEAN: dict = {}


def band_weight(scale_um: float, px_um: float) -> float:
    """1 for lattices of ≥ 3 px, fading linearly to 0 at 1.5 px (a field finer than that would
    alias; it is replaced by its mean)."""
    return float(np.clip((scale_um / px_um - 1.5) / 1.5, 0.0, 1.0))


def granule_mean(threshold=GRANULE_THRESHOLD) -> float:
    """Mean of the full-resolution granule field (estimated once on 400² lattice-scaled points
    in general position): the value a level too coarse to resolve granules uses."""
    k = tuple(threshold)
    if k not in _GRANULE_MEAN:
        g = (np.arange(400, dtype=np.float64) + 0.5) * 0.37
        n = value_noise_points(g[None, :], g[:, None] * 1.03, 1.0, 12345, key_of("granule-mean"))
        _GRANULE_MEAN[k] = float(np.mean(smoothstep(threshold[0], threshold[1], n)))
    return _GRANULE_MEAN[k]


def granules(s: Sampler, scale_um: float, seed: int, key: int, threshold=GRANULE_THRESHOLD) -> np.ndarray:
    """Discrete granules in [0, 1] (float32, the sampler's shape) on a lattice of ``scale_um``
    µm, zero-mean after subtracting ``granule_mean``: value noise thresholded by a smoothstep,
    band-limited by ``band_weight`` (faded to the mean on coarse levels)."""
    mean = np.float32(granule_mean(threshold))
    w = band_weight(scale_um, s.px_um)
    if w <= 0:
        return np.zeros(s.shape, np.float32)
    if s.grid:
        n = value_noise_grid(s.x, s.y, scale_um, seed, key)
    else:
        n = value_noise_points(s.X, s.Y, scale_um, seed, key)
    g = smoothstep(threshold[0], threshold[1], n) - mean
    return (np.float32(w) * g).astype(np.float32)


def apparent_depth(columns: list, n_medium: float) -> list:
    """The columns at the depths a dry objective focuses on them through a coverslip when the
    section lies in a mountant of refractive index ``n_medium``.

    Paraxially, a dry objective focused a physical depth δ into a medium of index n has the
    wave aberration of a stage defocus δ / n (W = δ·NA²/(2n) against Δ·NA²/2 in air), so an
    object layer at physical depth z (µm from the nominal focal plane) is imaged as one at
    z / n in stage µm, with the air PSF of ``optics.py``; the objective's coverslip correction
    removes the spherical aberration of the coverslip. Every depth is divided by n and every
    density (OD per µm of path) multiplied by n, so each column keeps its optical density.
    Version 1 ignores the mountant (n = 1: physical µm are stage µm)."""
    k = np.float32(1.0 / n_medium)
    out = []
    for c in columns:
        c.lo, c.hi = c.lo * k, c.hi * k
        c.dens = {name: v * np.float32(n_medium) for name, v in c.dens.items()}
        out.append(c)
    return out


def tissue_columns(vol, s: Sampler, reg, geom, seed: int, regions_fn=None, loose=None) -> list:
    """Stain columns of version-2 tissue at full detail (levels finer than COARSE_PX_UM); the
    arguments are those of ``TissueVolume._tissue_columns``, which calls this for version 2."""
    from .volume import _Column
    p = vol.params
    ihc = vol.stains.name == "ihc"
    thick = geom.top - geom.bottom
    top = geom.top + reg.fold * thick
    bot = geom.bottom
    half = bot + 0.5 * (top - bot)
    solid = reg.solid
    e = s.soft(p.edge_um)
    mott = s.fbm(6.0, 2, seed, key_of("mottle")) * np.float32(1.6)
    coarse = s.fbm(1.6, 3, seed, key_of("cytoplasm-grain")) * np.float32(1.8)   # version 1's grain
    gk = np.float32(p.granule_contrast) * np.float32(2.5)
    # One granule field per half of the section (3-D granularity).
    gran = [coarse + gk * granules(s, p.granule_um, seed, key_of(f"granule-v2-{h}")) for h in (0, 1)]
    epi = reg.epithelium
    mem = np.zeros(s.shape, np.float32)
    tone = np.ones(s.shape, np.float32)
    if (epi > 0).any():
        bd, cid = cell_borders(s, 0, seed, p)
        bd = bd + np.float32(0.9) * s.fbm(3.0, 2, seed, key_of("cell-border-wobble"))
        mem = (1.0 - smoothstep(0.12, 0.12 + 2 * e, np.abs(bd))) * epi
        tone = (0.65 + 0.7 * uniform(seed, key_of("cell-tone"), cid & 0xFFFF, cid >> 16)).astype(np.float32)
    if loose is None:
        loose = looseness(s, seed, p)
    f_lo, f_hi = fibres(s, seed, p, loose)
    fib = np.float32(2.0) * reg.stroma * solid
    f_lo, f_hi = f_lo * fib, f_hi * fib
    pos = None
    if ihc:
        pos = smoothstep(-0.1, 0.1, s.fbm(250.0, 2, seed, key_of("dab-field")) + np.float32(p.dab_field_bias))
    halves = []
    for h, f in ((0, f_lo), (1, f_hi)):
        g = gran[h]
        cyto = epi * tone * np.maximum(1.0 + np.float32(p.cytoplasm_texture) * g, 0.0)
        ground = reg.stroma * (1.0 - 0.85 * loose) * np.maximum(1.0 + 0.5 * mott + 0.5 * g, 0.0)
        muscle = reg.vessel_wall * np.maximum(1.0 + 0.4 * mott + 0.5 * g, 0.0)
        if ihc:
            h0 = (p.ihc_haematoxylin_cytoplasm * cyto + p.ihc_haematoxylin_stroma * (ground + reg.lymphoid + muscle)
                  + np.float32(p.ihc_background) * reg.tissue) * solid
            dab = (np.float32(p.dab_cytoplasm) * cyto + np.float32(p.dab_membrane) * mem) * pos * solid
            halves.append({"haematoxylin": h0 + np.float32(p.ihc_haematoxylin_collagen) * f, "dab": dab})
        else:
            ground_e = (p.eosin_cytoplasm * cyto + p.eosin_cell_border * mem + p.eosin_stroma_ground * ground
                        + p.eosin_muscle * muscle + p.eosin_membrane * reg.fat_membrane
                        + p.eosin_lymphoid * reg.lymphoid) * solid
            ground_e = ground_e + np.float32(p.eosin_secretion) * reg.secretion * np.maximum(1.0 + 0.6 * g, 0.0)
            ground_e = ground_e + np.float32(0.004) * reg.vessel_lumen
            ground_h = (p.haematoxylin_cytoplasm * cyto
                        + p.haematoxylin_stroma * (ground + reg.lymphoid + muscle)) * solid
            halves.append({"haematoxylin": ground_h + np.float32(p.haematoxylin_collagen) * f,
                           "eosin": ground_e + np.float32(p.eosin_collagen) * f})
    cols = [_Column(bot, half, halves[0]), _Column(half, top, halves[1])]
    # Nuclei: chromatin clumps, one field per nucleus half; coarse chromatin and outlines as v1.
    coarse_chrom = s.fbm(2.4, 1, seed, key_of("chromatin-coarse")) * np.float32(0.8)
    ck = np.float32(3.2)
    chrom = [coarse_chrom + ck * granules(s, p.chromatin_um, seed, key_of(f"chromatin-v2-{h}"))
             for h in (0, 1)]
    wob = s.fbm(2.6, 2, seed, key_of("nuclear-outline")) * np.float32(1.5)
    for layer in range(len(p.nucleus_cells_um)):
        ob = nucleus_layer(s, layer, seed, p, vol.slide_um, bot, top, chrom[0], wob, ihc, regions_fn,
                           chromatin_hi=chrom[1])
        if not ob.any:
            continue
        parts = ((ob.lo, ob.mid, ob.density), (ob.mid, ob.hi, ob.density_hi))
        for lo, hi, dens in parts:
            d = {"haematoxylin": dens}
            if ihc and ob.dab is not None:
                d["dab"] = ob.dab
            elif not ihc:
                d["eosin"] = np.where(hi > lo, np.float32(p.eosin_nucleus), 0.0).astype(np.float32)
            cols.append(_Column(lo, hi, d))
    k = np.float32(p.density_scale)
    if k != 1:
        for c in cols:
            c.dens = {name: v * k for name, v in c.dens.items()}
    rb = rbc_layer(s, seed, p, vol.slide_um, bot, top, bool((reg.vessel_lumen > 0.5).any()), regions_fn)
    if rb.any:
        cols.append(_Column(rb.lo, rb.hi, {"rbc": rb.density}))
    return cols
