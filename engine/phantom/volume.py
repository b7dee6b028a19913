"""The procedural 3-D tissue volume, sampled for one render block on a fixed global z grid.

Model. The section is a slab between a lower surface ``bottom(x, y)`` and an uneven upper
surface ``top(x, y)`` (3–6 µm apart), around a mid-plane that warps slowly (±1–2 µm over
hundreds of µm); z is µm relative to the slide's nominal focal plane, positive towards the
objective. The material is a set of *columns*: at each (x, y) a z-interval [lo, hi] holding
stains at densities in OD units per µm of path:

* the slab itself, in a lower and an upper half: epithelial cytoplasm (granular, a tone per
  cell) with cell borders (the Voronoi cells of the first nucleus lattice, so each cell holds
  its nucleus when it is in the section); stroma of collagen fibre bundles (irregular, wavy,
  fibrillar; each fibre family in one half, so different depths show different fibres) and
  ground substance that is largely gone in loose stroma; vessel walls, adipocyte membranes,
  lumen secretions; a haematoxylin floor in cytoplasm and stroma as real sections have;
* nuclei (three jittered lattices, ellipsoids cut by the section's surfaces, at random depths;
  granular chromatin, a nuclear rim, nucleoli, rough outlines; hyperchromatic and vesicular
  epithelial nuclei) and red blood cells (biconcave discs);
* IHC: haematoxylin counterstain, DAB in the membranes and cytoplasm of positive epithelium,
  no eosin;
* artefacts above the section: dust in the mountant, air-bubble rims, marker ink; folds double
  the section.

Sampling. The z axis is cut into bins of ``z_bin_um(level)`` µm (0.5 µm at full resolution,
never finer than the level's pixel pitch) on a grid fixed for the whole slide; each bin holds
the stain path length inside it (box occupancy), converted to per-channel OD with the stains'
OD vectors. Levels up to ``COARSE_PX_UM`` (3 µm/px) draw everything explicitly, band-limited:
noise octaves finer than two pixels are dropped (fibre patterns fade to their mean), edges are
never sharper than a pixel. Coarser levels are band-limited statistics: each pixel transmits
the area-weighted mean transmittance of its compartments, measured once at full resolution on
pure-compartment squares (``TissueVolume.calibration``), so the overview keeps the mean colour
of the fine level (Beer–Lambert is not linear: the mean OD would be too dark) and costs no
cell-by-cell rendering.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .cells import cell_borders, nucleus_layer, rbc_layer
from .layout import (COARSE_PX_UM, COMPARTMENTS, Sampler, SectionGeometry, cellular, fibres, looseness, looseness_area,
                     pure_regions, regions, section_geometry, smoothstep)
from .noise import key_of, uniform
from .seeds import PHANTOM_CALIBRATION
from .stains import stain_set
from .tissue_params import TissueParams

__all__ = ["TissueVolume", "BlockVolume", "z_bin_um"]

#: Pseudo-absorbers that put OD straight into one colour channel (coarse levels).
_CHANNELS = {"od_r": np.array([1, 0, 0], np.float32), "od_g": np.array([0, 1, 0], np.float32),
             "od_b": np.array([0, 0, 1], np.float32)}
#: Mean transmittance per compartment, per (params, stain): see ``TissueVolume.calibration``.
_CALIBRATION: dict = {}
#: The seed of the pure-compartment squares the coarse levels are calibrated on.
CALIBRATION_SEED = PHANTOM_CALIBRATION.start   # engine.phantom.seeds
CALIBRATION_ORIGINS_UM = (5000.0, 9000.0, 13000.0)


def z_bin_um(px_um: float) -> float:
    """Width (µm) of the global z bins at a pixel pitch: 0.5 µm, or the pitch when coarser."""
    dz = 0.5
    while dz < px_um * 0.999:
        dz *= 2.0
    return dz


class _Text(str):
    """A string whose repr is itself (an identity text inside a repr'd tuple)."""

    def __repr__(self) -> str:
        return str(self)


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
        self._od.update(_CHANNELS)

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
            if s.px_um > COARSE_PX_UM:
                columns += self._coarse_columns(s, reg, geom)
            else:
                columns += self._tissue_columns(s, reg, geom)
        columns += self._artefact_columns(s, geom)
        mid = geom.mid
        if p.mountant_index != 1.0:                 # v2: depths as the dry objective sees them
            from .tissue_v2 import apparent_depth
            columns, mid = apparent_depth(columns, p.mountant_index), geom.mid / np.float32(p.mountant_index)
        od, z = self._bin(columns, dz, s.shape)
        return BlockVolume(od, z, mid, reg.tissue)

    # ------------------------------------------------------------------ coarse levels
    def _coarse_columns(self, s: Sampler, reg, geom) -> list[_Column]:
        """Band-limited statistics: each pixel transmits the area-weighted mean transmittance
        of its compartments, ``T = 1 − Σ_k w_k (1 − T_k)`` per channel (lumens, clefts and glass
        transmit 1), as the fine level's pixels would on average; a fold squares it. The mix of
        dense and loose stroma is the area fraction of loose stroma in each pixel
        (``looseness_area``), not the field at the pixel's centre, whose sharp threshold made a
        mosaic of pixel-sized patches at fit zoom. The OD ``−log10 T`` is spread evenly over the
        section's thickness."""
        cal = self.calibration()
        absorb = np.zeros((3,) + reg.tissue.shape, np.float32)
        loose = looseness_area(s, self.seed, self.params, where=reg.stroma > 0)
        for name, w in (("epithelium", reg.epithelium), ("lymphoid", reg.lymphoid),
                        ("stroma_dense", reg.stroma * (1.0 - loose)), ("stroma_loose", reg.stroma * loose),
                        ("vessel_wall", reg.vessel_wall), ("fat", reg.fat_membrane),
                        ("secretion", reg.secretion), ("vessel_lumen", reg.vessel_lumen)):
            if w.any():
                absorb += (1.0 - cal[name])[:, None, None] * w[None]
        t = np.clip(1.0 - absorb, 1e-4, 1.0)
        od = -np.log10(t) * (1.0 + reg.fold)[None]
        top = geom.top + reg.fold * (geom.top - geom.bottom)
        inv = 1.0 / np.maximum(top - geom.bottom, 0.1)
        return [_Column(geom.bottom, top, {c: od[i] * inv for i, c in enumerate(_CHANNELS)})]

    def calibration(self) -> dict[str, np.ndarray]:
        """Mean transmittance (3,) of each compartment at full resolution, measured once per
        (params, stain) on three 48 µm squares of the pure compartment, far apart (calibration
        seed, flat section, projected OD blurred by a 0.6 µm Gaussian for the section's own
        defocus). Stroma is calibrated dense and loose, since their mix varies on ~70 µm. The
        default tissue's calibration is shipped in ``calibration_table.py`` (a test checks it
        against a fresh measurement), so a cold overview does not pay for it."""
        key = self.calibration_key()
        cal = _CALIBRATION.get(key)
        if cal is None:
            from .calibration_table import TABLE
            if key in TABLE:     # the default tissue, measured ahead (tools/make_calibration_table.py)
                cal = {name: np.asarray(v, np.float32) for name, v in TABLE[key].items()}
            else:
                cal = self.measure_calibration()
            _CALIBRATION[key] = cal
        return cal

    def calibration_key(self) -> str:
        """Digest of what the calibration depends on: the tissue parameters and the stains."""
        import hashlib
        from .tissue_params import identity_repr   # a v1 key is the one v1 always had
        text = repr((_Text(identity_repr(self.params)), self.stains, self.stains.od_matrix().round(6).tolist(),
                     CALIBRATION_SEED, CALIBRATION_ORIGINS_UM))
        return hashlib.sha1(text.encode()).hexdigest()[:16]

    def measure_calibration(self) -> dict[str, np.ndarray]:
        """Measure ``calibration`` afresh (≈ 1–3 s)."""
        return {name: np.mean([self._pure_transmittance(name, 192, o) for o in CALIBRATION_ORIGINS_UM],
                              axis=0).astype(np.float32)
                for name in COMPARTMENTS}

    def _pure_transmittance(self, name: str, n: int = 256, origin_um: float = 5000.0) -> np.ndarray:
        from scipy.ndimage import gaussian_filter
        p = self.params
        px = 0.25
        g = (np.arange(n) + 0.5) * px + origin_um
        s = Sampler(g, g, px, grid=True)
        reg = pure_regions(s, name, CALIBRATION_SEED, p)
        loose = {"stroma_dense": 0.0, "stroma_loose": 1.0}.get(name)
        half = np.float32(0.5 * p.thickness_um)
        geom = SectionGeometry(np.full(s.shape, -half), np.full(s.shape, half), np.zeros(s.shape, np.float32))
        cols = self._tissue_columns(s, reg, geom, seed=CALIBRATION_SEED, loose=loose,
                                    regions_fn=lambda q: pure_regions(q, name, CALIBRATION_SEED, p, True))
        od = np.zeros((3,) + s.shape, np.float32)
        for c in cols:
            path = np.maximum(np.asarray(c.hi) - np.asarray(c.lo), 0.0)
            for a, v in c.dens.items():
                vec = self._od.get(a, self._od["ink"])
                for ch in range(3):
                    od[ch] += vec[ch] * path * v
        od = np.stack([gaussian_filter(o, 0.6 / px, mode="wrap") for o in od])
        return np.power(10.0, -od).mean(axis=(1, 2)).astype(np.float32)

    # ------------------------------------------------------------------ columns
    def _tissue_columns(self, s: Sampler, reg, geom, seed: int | None = None, regions_fn=None,
                        loose: float | None = None) -> list[_Column]:
        """Stain columns of tissue at full detail (levels finer than COARSE_PX_UM).
        ``seed``, ``regions_fn`` and ``loose`` (0 dense, 1 loose stroma) override the slide's own
        for calibration."""
        p = self.params
        seed = self.seed if seed is None else seed
        if p.tissue_version >= 2:                   # finer, 3-D small-scale structure
            from .tissue_v2 import tissue_columns
            return tissue_columns(self, s, reg, geom, seed, regions_fn, loose)
        ihc = self.stains.name == "ihc"
        thick = geom.top - geom.bottom
        top = geom.top + reg.fold * thick          # a fold lays a second sheet on top
        bot = geom.bottom
        half = bot + 0.5 * (top - bot)
        solid = reg.solid
        e = s.soft(0.3)
        # Textures: granular (0.4–1.6 µm) and mottled (3–6 µm) relative variations, zero mean.
        gran = s.fbm(1.6, 3, seed, key_of("cytoplasm-grain")) * np.float32(1.8)
        mott = s.fbm(6.0, 2, seed, key_of("mottle")) * np.float32(1.6)
        # Epithelium: cells with borders (one lattice site per cell), each with its own tone.
        epi = reg.epithelium
        mem = np.zeros(s.shape, np.float32)
        tone = np.ones(s.shape, np.float32)
        if (epi > 0).any():
            bd, cid = cell_borders(s, 0, seed, p)
            bd = bd + np.float32(0.9) * s.fbm(3.0, 2, seed, key_of("cell-border-wobble"))
            mem = (1.0 - smoothstep(0.15, 0.15 + 2 * e, np.abs(bd))) * epi
            tone = (0.65 + 0.7 * uniform(seed, key_of("cell-tone"), cid & 0xFFFF, cid >> 16)).astype(np.float32)
        cyto = epi * tone * np.maximum(1.0 + np.float32(p.cytoplasm_texture) * gran, 0.0)
        # Stroma: collagen fibre bundles in two depth halves; ground substance between them,
        # largely gone in loose (oedematous) stroma, so loose stroma shows gaps of glass.
        if loose is None:
            loose = looseness(s, seed, p)
        ground = reg.stroma * (1.0 - 0.85 * loose) * np.maximum(1.0 + 0.5 * mott + 0.3 * gran, 0.0)
        f_lo, f_hi = fibres(s, seed, p, loose)
        fib = np.float32(2.0) * reg.stroma * solid
        f_lo, f_hi = f_lo * fib, f_hi * fib
        muscle = reg.vessel_wall * np.maximum(1.0 + 0.4 * mott + 0.4 * gran, 0.0)
        if ihc:
            h0 = (p.ihc_haematoxylin_cytoplasm * cyto + p.ihc_haematoxylin_stroma * (ground + reg.lymphoid + muscle)
                  + np.float32(p.ihc_background) * reg.tissue) * solid
            pos = smoothstep(-0.1, 0.1, s.fbm(250.0, 2, seed, key_of("dab-field")) + np.float32(p.dab_field_bias))
            dab = (np.float32(p.dab_cytoplasm) * cyto + np.float32(p.dab_membrane) * mem) * pos * solid
            lower = {"haematoxylin": h0 + np.float32(p.ihc_haematoxylin_collagen) * f_lo, "dab": dab}
            upper = {"haematoxylin": h0 + np.float32(p.ihc_haematoxylin_collagen) * f_hi, "dab": dab}
        else:
            ground_e = (p.eosin_cytoplasm * cyto + p.eosin_cell_border * mem + p.eosin_stroma_ground * ground
                        + p.eosin_muscle * muscle + p.eosin_membrane * reg.fat_membrane
                        + p.eosin_lymphoid * reg.lymphoid) * solid
            ground_e = ground_e + np.float32(p.eosin_secretion) * reg.secretion * np.maximum(1.0 + 0.6 * gran, 0.0)
            ground_e = ground_e + np.float32(0.004) * reg.vessel_lumen
            ground_h = (p.haematoxylin_cytoplasm * cyto
                        + p.haematoxylin_stroma * (ground + reg.lymphoid + muscle)) * solid
            ce, ch = np.float32(p.eosin_collagen), np.float32(p.haematoxylin_collagen)
            lower = {"haematoxylin": ground_h + ch * f_lo, "eosin": ground_e + ce * f_lo}
            upper = {"haematoxylin": ground_h + ch * f_hi, "eosin": ground_e + ce * f_hi}
        cols = [_Column(bot, half, lower), _Column(half, top, upper)]
        # Nuclei: granular chromatin (clumps 0.4–1 µm) and rough outlines.
        chrom = (s.fbm(0.9, 2, seed, key_of("chromatin")) * np.float32(1.9)
                 + s.fbm(2.4, 1, seed, key_of("chromatin-coarse")) * np.float32(0.8))
        wob = s.fbm(2.6, 2, seed, key_of("nuclear-outline")) * np.float32(1.5)
        for layer in range(len(p.nucleus_cells_um)):
            ob = nucleus_layer(s, layer, seed, p, self.slide_um, bot, top, chrom, wob, ihc, regions_fn)
            if ob.any:
                d = {"haematoxylin": ob.density}
                if ihc and ob.dab is not None:
                    d["dab"] = ob.dab
                elif not ihc:
                    d["eosin"] = np.where(ob.hi > ob.lo, np.float32(p.eosin_nucleus), 0.0).astype(np.float32)
                cols.append(_Column(ob.lo, ob.hi, d))
        rb = rbc_layer(s, seed, p, self.slide_um, bot, top, bool((reg.vessel_lumen > 0.5).any()), regions_fn)
        if rb.any:
            cols.append(_Column(rb.lo, rb.hi, {"rbc": rb.density}))
        return cols

    def _artefact_columns(self, s: Sampler, geom) -> list[_Column]:
        p, seed = self.params, self.seed
        cols = []
        e = s.soft()
        if p.dust and s.px_um <= COARSE_PX_UM:   # specks of a few µm: negligible area when coarser
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
