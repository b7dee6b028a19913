"""The procedural 3-D tissue volume, sampled for one render block on a fixed global z grid.

Model. The section is a slab between a lower surface ``bottom(x, y)`` and an uneven upper
surface ``top(x, y)`` (3–6 µm apart), around a mid-plane that warps slowly (±1–2 µm over
hundreds of µm); z is µm relative to the slide's nominal focal plane, positive towards the
objective. The material is a set of *columns*: at each (x, y) a z-interval [lo, hi] holding
stains at densities in OD units per µm of path:

* the slab itself, in a lower and an upper half: cytoplasm, stromal ground substance, collagen
  fibre families (each family in one half, so fibres at different depths), vessel walls,
  adipocyte membranes, lumen secretions;
* nuclei (three jittered lattices, ellipsoids cut by the section's surfaces, chromatin texture,
  nuclear rim, nucleoli) and red blood cells (biconcave discs);
* artefacts above the section: dust in the mountant, air-bubble rims, marker ink; folds double
  the section.

Sampling. The z axis is cut into bins of ``z_bin_um(level)`` µm (0.5 µm at full resolution,
never finer than the level's pixel pitch) on a grid fixed for the whole slide; each bin holds
the stain path length inside it (box occupancy), converted to per-channel OD with the stains'
OD vectors. Coarse levels are band-limited: noise octaves finer than two pixels are dropped,
edges are never sharper than a pixel, and where a nucleus is smaller than ~2 pixels (pitch
≥ 4 µm) nuclei are replaced by their mean haematoxylin density.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .cells import mean_nuclear_od, nucleus_layer, rbc_layer
from .layout import Sampler, cellular, fibres, regions, section_geometry, smoothstep
from .noise import key_of, uniform
from .stains import stain_set
from .tissue_params import TissueParams

__all__ = ["TissueVolume", "BlockVolume", "z_bin_um"]

#: Nuclei are drawn explicitly up to this pixel pitch (µm); coarser levels use mean density.
EXPLICIT_NUCLEI_MAX_PX_UM = 2.0


def z_bin_um(px_um: float) -> float:
    """Width (µm) of the global z bins at a pixel pitch: 0.5 µm, or the pitch when coarser."""
    dz = 0.5
    while dz < px_um * 0.999:
        dz *= 2.0
    return dz


@dataclass
class BlockVolume:
    """Per-channel optical density of one square block, per z bin."""

    od: np.ndarray              # (3, nb, n, n) float32, OD units (R, G, B)
    z_um: np.ndarray            # (nb,) bin centres, µm
    mid_um: np.ndarray          # (n, n) section mid-plane, µm
    tissue: np.ndarray          # (n, n) tissue weight in [0, 1]

    @property
    def empty(self) -> bool:
        return self.od.shape[1] == 0


@dataclass
class _Column:
    lo: np.ndarray
    hi: np.ndarray
    dens: dict = field(default_factory=dict)   # absorber name -> (n, n) OD/µm


class TissueVolume:
    """A deterministic virtual tissue section covering ``size_px`` level-0 px at ``mpp`` µm/px."""

    def __init__(self, seed: int = 0, size_px: tuple[int, int] = (80000, 60000),
                 params: TissueParams | None = None, stain: str = "he", mpp: float = 0.25):
        self.seed = int(seed)
        self.size_px = (int(size_px[0]), int(size_px[1]))
        self.params = params or TissueParams()
        self.stains = stain_set(stain)
        self.mpp = float(mpp)
        self.slide_um = (self.size_px[0] * self.mpp, self.size_px[1] * self.mpp)
        self._od = {a: v for a, v in zip(self.stains.absorbers, self.stains.od_matrix())}

    # ------------------------------------------------------------------ public
    def sampler(self, level: int, x0: int, y0: int, n: int) -> Sampler:
        """The grid of pixel centres of an n×n block whose top-left is (x0, y0) in level px."""
        px = self.mpp * (2 ** level)
        x = (x0 + np.arange(n) + 0.5) * px
        y = (y0 + np.arange(n) + 0.5) * px
        return Sampler(x, y, px, grid=True)

    def block(self, level: int, x0: int, y0: int, n: int) -> BlockVolume:
        s = self.sampler(level, x0, y0, n)
        p = self.params
        dz = z_bin_um(s.px_um)
        reg = regions(s, self.seed, p, self.slide_um)
        geom = section_geometry(s, self.seed, p)
        columns: list[_Column] = []
        if reg.tissue.any():
            columns += self._tissue_columns(s, reg, geom)
        columns += self._artefact_columns(s, geom)
        od, z = self._bin(columns, dz, s.shape)
        return BlockVolume(od, z, geom.mid, reg.tissue)

    # ------------------------------------------------------------------ columns
    def _tissue_columns(self, s: Sampler, reg, geom) -> list[_Column]:
        p, seed = self.params, self.seed
        ihc = self.stains.name == "ihc"
        thick = geom.top - geom.bottom
        top = geom.top + reg.fold * thick          # a fold lays a second sheet on top
        bot = geom.bottom
        half = bot + 0.5 * (top - bot)
        solid = reg.solid
        tex = s.fbm(2.2, 2, seed, key_of("cytoplasm-grain"))
        cyto = reg.epithelium * (1.0 + np.float32(p.cytoplasm_texture) * tex)
        ground_e = (p.eosin_cytoplasm * cyto + p.eosin_stroma_ground * reg.stroma + p.eosin_muscle * reg.vessel_wall
                    + p.eosin_membrane * reg.fat_membrane + p.eosin_lymphoid * reg.lymphoid) * solid
        ground_e = ground_e + np.float32(p.eosin_secretion) * reg.secretion * (1.0 + 0.5 * tex)
        ground_e = ground_e + np.float32(0.004) * reg.vessel_lumen
        ground_h = (p.haematoxylin_cytoplasm * cyto + p.haematoxylin_stroma * (reg.stroma + reg.lymphoid)) * solid
        f_lo, f_hi = fibres(s, seed, p)
        coll = np.float32(2.0 * p.eosin_collagen) * reg.stroma * solid
        explicit = s.px_um <= EXPLICIT_NUCLEI_MAX_PX_UM
        if not explicit:   # mean-field nuclei at coarse levels
            t = max(p.thickness_um, 1.0)
            c = p.coarse_nucleus_correction
            mh = (reg.epithelium * mean_nuclear_od(p, p.epithelial, p.epithelial_presence, t)
                  + reg.lymphoid * mean_nuclear_od(p, p.lymphocyte, p.lymphoid_presence, t)
                  + reg.stroma * (mean_nuclear_od(p, p.stromal, p.stromal_presence, t)
                                  + mean_nuclear_od(p, p.lymphocyte, p.stromal_lymphocyte_presence, t)))
            ground_h = ground_h + np.float32(c / t) * mh * solid
            ground_e = ground_e + np.float32(p.eosin_nucleus * 0.2) * solid
        if ihc:
            pos = smoothstep(-0.1, 0.1, s.fbm(250.0, 2, seed, key_of("dab-field")))
            dab = np.float32(p.dab_cytoplasm) * reg.epithelium * pos * (1.0 + 0.4 * tex) * solid
            dab = dab + np.float32(p.ihc_background) * solid
            lower = {"haematoxylin": ground_h * p.ihc_haematoxylin_scale, "dab": dab}
            upper = dict(lower)
        else:
            lower = {"haematoxylin": ground_h, "eosin": ground_e + coll * f_lo}
            upper = {"haematoxylin": ground_h, "eosin": ground_e + coll * f_hi}
        cols = [_Column(bot, half, lower), _Column(half, top, upper)]
        if explicit:
            chrom = s.fbm(1.3, 3, seed, key_of("chromatin"))
            wob = 1.0 + np.float32(0.14) * s.fbm(3.0, 2, seed, key_of("nuclear-outline"))
            for layer in range(len(p.nucleus_cells_um)):
                ob = nucleus_layer(s, layer, seed, p, self.slide_um, bot, top, chrom, wob, ihc)
                if ob.any:
                    d = {"haematoxylin": ob.density}
                    if ihc and ob.dab is not None:
                        d["dab"] = ob.dab
                    elif not ihc:
                        d["eosin"] = np.where(ob.hi > ob.lo, np.float32(p.eosin_nucleus), 0.0).astype(np.float32)
                    cols.append(_Column(ob.lo, ob.hi, d))
            rb = rbc_layer(s, seed, p, self.slide_um, bot, top, bool((reg.vessel_lumen > 0.5).any()))
            if rb.any:
                cols.append(_Column(rb.lo, rb.hi, {"rbc": rb.density}))
        else:
            rbc = np.float32(p.rbc_density * p.rbc_fill * 0.5 * p.rbc_thickness_um / max(p.thickness_um, 1.0))
            cols.append(_Column(bot, top, {"rbc": rbc * reg.vessel_lumen}))
        return cols

    def _artefact_columns(self, s: Sampler, geom) -> list[_Column]:
        p, seed = self.params, self.seed
        cols = []
        e = s.soft()
        if p.dust:
            d, did, _ = cellular(s, p.dust_cell_um, seed, key_of("dust"), p.dust_prob)
            if (d < 40).any():
                r = 0.8 + 3.5 * uniform(seed, key_of("dust-r"), did & 0xFFFF, did >> 16).astype(np.float32) ** 2
                h = p.dust_height_um[0] + (p.dust_height_um[1] - p.dust_height_um[0]) * uniform(
                    seed, key_of("dust-h"), did & 0xFFFF, did >> 16).astype(np.float32)
                speck = 1.0 - smoothstep(r - e, r + e, d * (1.0 + 0.3 * s.fbm(2.0, 1, seed, key_of("dust-shape"))))
                if speck.any():
                    cols.append(_Column(h - 1.0, h + 1.0, {"ink": np.float32(0.35) * speck}))
        if p.bubbles:
            d, bid, _ = cellular(s, p.bubble_cell_um, seed, key_of("bubble"), p.bubble_prob)
            rb = 120.0 + 380.0 * uniform(seed, key_of("bubble-r"), bid & 0xFFFF, bid >> 16).astype(np.float32)
            ring = smoothstep(rb - 6.0 - e, rb - 6.0 + e, d) * (1.0 - smoothstep(rb - e, rb + e, d))
            if ring.any():
                cols.append(_Column(np.full(s.shape, 5.0, np.float32), np.full(s.shape, 7.0, np.float32),
                                    {"ink": np.float32(0.25) * ring}))
        if p.ink:
            v = s.fbm(0.15 * max(self.slide_um), 3, seed, key_of("marker"))
            ink = smoothstep(p.ink_threshold, p.ink_threshold + 0.02, v)
            if ink.any():
                dens = np.float32(0.12) * ink * (1.0 + 0.3 * s.fbm(40.0, 3, seed, key_of("marker-grain")))
                cols.append(_Column(geom.top + 0.5, geom.top + 3.0, {"ink_green" if "ink_green" in self._od else "ink": dens}))
        return cols

    # ------------------------------------------------------------------ binning
    def _bin(self, columns: list[_Column], dz: float, shape) -> tuple[np.ndarray, np.ndarray]:
        live = []
        zmin, zmax = np.inf, -np.inf
        for c in columns:
            present = None
            for v in c.dens.values():
                m = np.asarray(v) > 0
                present = m if present is None else (present | m)
            if present is None or not present.any():
                continue
            has = present & (c.hi > c.lo)
            if not has.any():
                continue
            zmin = min(zmin, float(c.lo[has].min()))
            zmax = max(zmax, float(c.hi[has].max()))
            live.append(c)
        if not live:
            return np.zeros((3, 0) + shape, np.float32), np.zeros(0)
        k0 = int(np.floor(zmin / dz + 0.5))
        k1 = int(np.floor(zmax / dz + 0.5))
        centres = np.arange(k0, k1 + 1) * dz
        od = np.zeros((3, len(centres)) + shape, np.float32)
        occ = np.empty(shape, np.float32)
        tmp = np.empty(shape, np.float32)
        for c in live:
            lo = np.asarray(c.lo, np.float32)
            hi = np.asarray(c.hi, np.float32)
            terms = []
            for name, v in c.dens.items():
                vec = self._od.get(name)
                if vec is None:
                    vec = self._od["ink"]
                terms.append((np.broadcast_to(np.asarray(v, np.float32), shape), vec))
            has = hi > lo
            cl, ch = float(lo[has].min()), float(hi[has].max())
            for b, zc in enumerate(centres):
                e0, e1 = np.float32(zc - dz / 2), np.float32(zc + dz / 2)
                if e1 <= cl or e0 >= ch:
                    continue
                np.clip(hi, e0, e1, out=occ)
                np.clip(lo, e0, e1, out=tmp)
                occ -= tmp                      # path length (µm) inside the bin
                for v, vec in terms:
                    np.multiply(occ, v, out=tmp)
                    for ch_i in range(3):
                        od[ch_i, b] += vec[ch_i] * tmp
        return od, centres
