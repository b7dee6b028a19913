"""Tunable parameters of the phantom tissue, in one place, with units.

Lengths are µm; stain amounts are OD units per µm of path (see ``stains.py``); probabilities
are per lattice cell. Every field has a default; change one with ``dataclasses.replace``::

    params = replace(TissueParams(), eosin_cytoplasm=0.05, white_rgb=(242, 240, 245))

Tissue versions. ``tissue_version`` selects the tissue model: 1 is the look every shipped
model (FocusLiteNN, refocusing) was trained on and stays the default until they are retrained
on version 2; ``tissue_params(2)`` gives version 2, as sharp at best focus as real 20× scans
(finer 3-D chromatin, thin nuclear membranes, thin collagen fibrils, granular cytoplasm that
differs between the two halves of the section, sharper compartment edges, a 3.5 µm section;
see ``V2_CHANGES`` and ``volume.py``). Switch the default when the models are retrained on v2.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields, replace

__all__ = ["TissueParams", "NucleusType", "tissue_params", "TISSUE_VERSIONS", "V2_CHANGES",
           "identity_repr"]


@dataclass(frozen=True)
class NucleusType:
    """One kind of nucleus. Radii are semi-axes in µm (a ≥ b lateral, rz axial)."""

    a_um: tuple[float, float]          # long lateral semi-axis range
    aspect: tuple[float, float]        # b / a range
    rz_over_a: tuple[float, float]     # axial semi-axis / a
    haematoxylin: float                # OD/µm, mean
    density_spread: float = 0.2        # ± relative spread of the stain amount per nucleus
    chromatin_contrast: float = 0.45   # relative amplitude of the chromatin texture
    rim: float = 0.35                  # extra density at the nuclear envelope (relative)
    nucleolus_prob: float = 0.0        # chance of a visible nucleolus
    align_to_fibres: bool = False      # elongated along the local collagen direction


@dataclass(frozen=True)
class TissueParams:
    # --- section geometry (µm) ---
    thickness_um: float = 4.5          # mean section thickness (3–6 µm)
    thickness_var_um: float = 0.8      # slow variation of the thickness
    warp_amplitude_um: float = 1.2     # slow warping of the mid-plane, ±
    warp_scale_um: float = 700.0       # wavelength scale of the warp
    roughness_um: float = 0.5          # uneven upper surface, ±
    roughness_scale_um: float = 30.0
    edge_soft_um: float = 4.0          # tissue edges thin out over this width
    piece_scale_fraction: float = 0.22  # tissue-piece noise scale as a fraction of the slide's long side
    tissue_cover: float = 0.50         # higher → more of the slide is tissue
    # --- architecture (µm) ---
    gland_cell_um: float = 170.0       # lattice of candidate glands
    gland_radius_um: tuple[float, float] = (38.0, 72.0)
    epithelium_um: tuple[float, float] = (13.0, 22.0)   # epithelial ring thickness
    gland_prob: float = 0.85
    epithelial_scale_um: float = 900.0  # scale of epithelium-rich regions
    epithelial_bias: float = 0.20
    lymphoid_scale_um: float = 420.0
    lymphoid_threshold: float = 0.42
    vessel_cell_um: float = 230.0
    vessel_radius_um: tuple[float, float] = (6.0, 26.0)
    vessel_prob: float = 0.45
    fat_scale_um: float = 1100.0
    fat_threshold: float = 0.40
    adipocyte_um: float = 55.0         # lattice of adipocytes (cell diameter ~ this)
    fibre_waviness: float = 7.0        # domain-warp amplitude of collagen fibres across their direction (µm)
    fibril_contrast: float = 1.6      # relative density modulation of fibrils inside collagen bundles
    gland_elongation: float = 0.6      # glands stretched by up to 1 + this along their own axis
    gland_irregularity: float = 0.30   # boundary displacement by lobes, relative to the radius
    loose_scale_um: float = 70.0       # scale of loose (oedematous) versus dense stroma
    loose_fraction: float = 0.35       # share of stroma that is loose (ground substance mostly gone)
    cleft_prob: float = 0.5            # retraction clefts around glands
    # --- cells ---
    # One nucleus lattice per entry; layer 0 is also the epithelial cell lattice (cell borders,
    # one nucleus per cell when present), the others are cells above and below it.
    nucleus_cells_um: tuple[float, ...] = (10.0, 12.4, 13.9)
    epithelial_presence: tuple[float, ...] = (0.75, 0.25, 0.25)   # per layer
    vesicular_fraction: float = 0.45   # epithelial nuclei with open chromatin and a nucleolus
    nuclear_irregularity: float = 0.35  # max relative outline displacement (per nucleus 25–100 %)
    lymphoid_presence: float = 0.95
    stromal_presence: float = 0.16
    stromal_lymphocyte_presence: float = 0.05
    epithelial: NucleusType = field(default_factory=lambda: NucleusType(
        a_um=(3.4, 5.6), aspect=(0.62, 0.95), rz_over_a=(0.8, 1.0), haematoxylin=0.15,
        density_spread=0.35, chromatin_contrast=0.6, rim=0.45, nucleolus_prob=0.5))
    lymphocyte: NucleusType = field(default_factory=lambda: NucleusType(
        a_um=(2.9, 3.7), aspect=(0.85, 1.0), rz_over_a=(0.9, 1.0), haematoxylin=0.30,
        chromatin_contrast=0.35, rim=0.25))
    stromal: NucleusType = field(default_factory=lambda: NucleusType(
        a_um=(5.0, 9.0), aspect=(0.20, 0.33), rz_over_a=(0.25, 0.35), haematoxylin=0.26,
        chromatin_contrast=0.3, rim=0.15, align_to_fibres=True))
    nucleolus_um: tuple[float, float] = (0.45, 0.8)
    nucleolus_density: float = 0.35    # extra haematoxylin (OD/µm) in a nucleolus
    rbc_cell_um: float = 8.0
    rbc_radius_um: tuple[float, float] = (3.4, 3.9)
    rbc_thickness_um: float = 2.2
    rbc_density: float = 0.22          # OD/µm of the RBC absorber
    rbc_fill: float = 0.75             # fraction of vessel-lumen lattice cells with an RBC
    # --- stain amounts (OD per µm of path) ---
    eosin_cytoplasm: float = 0.070
    eosin_stroma_ground: float = 0.020
    eosin_collagen: float = 0.110
    eosin_muscle: float = 0.070
    eosin_membrane: float = 0.080
    eosin_lymphoid: float = 0.012
    eosin_secretion: float = 0.010
    eosin_nucleus: float = 0.020       # eosin taken up by nuclei
    eosin_cell_border: float = 0.060   # epithelial cell borders (membranes)
    haematoxylin_cytoplasm: float = 0.022
    haematoxylin_stroma: float = 0.006
    haematoxylin_collagen: float = 0.002
    cytoplasm_texture: float = 0.8    # relative granularity of cytoplasm
    # IHC (stain="ihc"): DAB with a haematoxylin counterstain, no eosin
    dab_positive_fraction: float = 0.0  # nuclei with nuclear DAB
    dab_nuclear: float = 0.18
    dab_cytoplasm: float = 0.100       # positive epithelium: cytoplasm ...
    dab_membrane: float = 0.20         # ... and, strongest, cell membranes
    dab_field_bias: float = 0.30       # higher → more of the epithelium is DAB-positive
    ihc_haematoxylin_scale: float = 0.50
    ihc_haematoxylin_cytoplasm: float = 0.012
    ihc_haematoxylin_stroma: float = 0.004
    ihc_haematoxylin_collagen: float = 0.090
    ihc_background: float = 0.004
    # --- artefacts ---
    dust: bool = True
    dust_cell_um: float = 400.0
    dust_prob: float = 0.25
    dust_height_um: tuple[float, float] = (3.0, 9.0)   # above the mid-plane (in the mountant)
    bubbles: bool = True
    bubble_cell_um: float = 4000.0
    bubble_prob: float = 0.12
    ink: bool = True
    ink_threshold: float = 0.62
    folds: bool = True
    fold_width: float = 0.018
    # --- scanner white balance: glass brightness after white balance (0–255) ---
    white_rgb: tuple[float, float, float] = (244.0, 243.0, 247.0)
    # --- version 2 only (version 1 ignores these) ---
    edge_um: float = 0.3               # compartment-edge and membrane softness (never < 0.75 px)
    granule_um: float = 0.7            # lattice of cytoplasm / stroma granules (v2: one field per half)
    granule_contrast: float = 0.0      # relative density of granules in cytoplasm and stroma
    chromatin_um: float = 0.6          # lattice of chromatin clumps (v2: one field per nucleus half)
    membrane_um: float = 0.3           # nuclear envelope thickness
    membrane_density: float = 0.0      # extra haematoxylin in the envelope, relative to the nucleus
    fibril_um: tuple[float, float] = (0.8, 6.0)   # collagen fibril lattice across / along (µm)
    density_scale: float = 1.0         # v2: all stain densities × this (a thinner section, same colour)
    mountant_index: float = 1.0        # refractive index around the section (1: depths as stage µm)
    # --- which tissue model: 1 (default, what the shipped models were trained on) or 2 ---
    tissue_version: int = 1


TISSUE_VERSIONS = (1, 2)

#: What version 2 changes from the defaults (µm, OD/µm, relative amounts as in the fields).
V2_CHANGES: dict = dict(
    tissue_version=2,
    thickness_um=3.5, thickness_var_um=0.5,      # routine 3–4 µm H&E sections
    edge_um=0.12,
    granule_um=0.6, granule_contrast=0.9,
    chromatin_um=0.55, membrane_um=0.3, membrane_density=2.0,
    fibril_um=(0.7, 6.0), fibril_contrast=1.4,
    density_scale=1.25,                          # 3.5 µm of tissue as dark as v1's 4.5 µm
    mountant_index=1.52,                         # DPX / Permount under the coverslip
)


def tissue_params(version: int = 1, **changes) -> TissueParams:
    """The default parameters of tissue model ``version`` (1 or 2), with ``changes`` applied.
    Version 1 is ``TissueParams()``; it stays the default until the shipped models are
    retrained on version 2."""
    if int(version) not in TISSUE_VERSIONS:
        raise ValueError(f"tissue version must be one of {TISSUE_VERSIONS}, got {version!r}")
    base = TissueParams() if int(version) == 1 else replace(TissueParams(), **V2_CHANGES)
    return replace(base, **changes) if changes else base


#: Fields added with version 2: a version-1 identity leaves them out while they keep their
#: defaults, so a v1 slide's uid and coarse-level calibration are what they were before.
_V2_FIELDS = ("edge_um", "granule_um", "granule_contrast", "chromatin_um", "membrane_um",
              "membrane_density", "fibril_um", "density_scale", "mountant_index", "tissue_version")


def _legacy_names(p: TissueParams) -> set:
    if p.tissue_version != 1:
        return set()
    d = TissueParams()
    return {n for n in _V2_FIELDS if getattr(p, n) == getattr(d, n)}


def identity_repr(p: TissueParams) -> str:
    """``repr(p)`` as identities (calibration keys) use it: for version 1 the version-2 fields
    at their defaults are left out, so the text is the one version 1 always had."""
    drop = _legacy_names(p)
    body = ", ".join(f"{f.name}={getattr(p, f.name)!r}" for f in fields(p) if f.name not in drop)
    return f"{type(p).__qualname__}({body})"


def identity_dict(p: TissueParams) -> dict:
    """``dataclasses.asdict(p)`` without the version-2 fields of a version-1 tissue at their
    defaults (see ``identity_repr``)."""
    from dataclasses import asdict
    drop = _legacy_names(p)
    return {k: v for k, v in asdict(p).items() if k not in drop}
