"""Tunable parameters of the phantom tissue, in one place, with units.

Lengths are µm; stain amounts are OD units per µm of path (see ``stains.py``); probabilities
are per lattice cell. Every field has a default; change one with ``dataclasses.replace``::

    params = replace(TissueParams(), eosin_cytoplasm=0.05, white_rgb=(242, 240, 245))
"""
from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["TissueParams", "NucleusType"]


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
