"""The real images the phantom is compared with, their scales, and tissue patches from them.

Comparison scale
----------------
Structural measures (gradients, spectra, nuclei) are compared at ``COMPARE_UM_PER_PX`` =
0.5 µm/px, the coarsest scale shared by the real images that resolve nuclei: those are 20×
scans at ≈ 0.5 µm/px, and upsampling them to the phantom's 0.25 µm/px would invent detail
that was never scanned. The phantom (0.25 µm/px) is brought there by 2×2 box averaging, which
is what a 20× camera pixel of twice the pitch integrates. Images coarser than 0.5 µm/px are
used only for scale-free statistics (stain colour, glass brightness).

Scales of the references (µm per px) and how we know them
--------------------------------------------------------
* cmu-1-small-region.svs — 0.499, ``openslide.mpp-x`` in the file (read as 0.5; the 0.2 %
  difference is below what resampling could fix).
* tcga-lung-rgb.png, tissue-level0-*.png — no metadata. Assumed 0.5: TCGA tiles are 20×
  (0.5 µm/px) or 40× (0.25 µm/px) scans; at 0.5 the lung tile's lymphocytes are 12–14 px
  (6–7 µm, the textbook size) and its tumour nuclei ≈ 20 px (10 µm), while at 0.25 they would
  be 3 µm. Their nucleus sizes therefore carry the uncertainty of this assumption.
* ihc.png — no pixel size; its EXIF says ``Lens=20`` (a 20× objective), i.e. ≈ 0.5 µm/px;
  its stromal nuclei (4–6 × 10–15 µm at 0.5) agree.
* tcga-cr-7395-01a-01-ts1.svs — no ``mpp`` in the file; its lymphocytes are ≈ 6–7 px, so
  ≈ 1 µm/px (a reduced copy of the TCGA slide). Too coarse for structure: colour and glass only.
* kidney-48-5.tif — a 1493 × 901 overview in which the whole tissue piece is ≈ 110 px wide
  (≳ 5 µm/px); nuclei are not resolved. Colour and glass only.

Tissue patches: ``PATCH_PX`` × ``PATCH_PX`` windows on a non-overlapping grid whose tissue
fraction (``realism_measures.tissue_mask``) is at least ``MIN_TISSUE_FRACTION``; when more
qualify than asked for, an evenly spaced subset of the grid order is taken (deterministic).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import realism_measures as M

COMPARE_UM_PER_PX = 0.5
PATCH_PX = 256
MIN_TISSUE_FRACTION = 0.5


@dataclass(frozen=True)
class Reference:
    """One real image. ``um_per_px`` is its native scale (None: unknown, coarse overview)."""
    relpath: str
    family: str            # "he" or "ihc"
    um_per_px: float | None
    scale_source: str
    structural: bool       # resolved at COMPARE_UM_PER_PX: gradients, spectra, nuclei apply

    @property
    def name(self) -> str:
        return Path(self.relpath).name


REFERENCES: tuple[Reference, ...] = (
    Reference("slides/cmu-1-small-region.svs", "he", 0.499, "openslide.mpp-x", True),
    Reference("tiles/tcga-lung-rgb.png", "he", 0.5, "assumed (20× TCGA; nucleus sizes)", True),
    Reference("tiles/tissue-level0-4302-10273-4814-10785.png", "he", 0.5,
              "assumed (20× TCGA; nucleus sizes)", True),
    Reference("tiles/tissue-level0-7352-11762-7864-12274.png", "he", 0.5,
              "assumed (20× TCGA; nucleus sizes)", True),
    Reference("slides/tcga-cr-7395-01a-01-ts1.svs", "he", 1.0,
              "estimated from lymphocyte size (no mpp in file)", False),
    Reference("tiles/ihc.png", "ihc", 0.5, "EXIF Lens=20 (20× objective)", True),
    Reference("slides/kidney-48-5.tif", "ihc", None, "overview, unknown (≳ 5 µm/px)", False),
)

#: Scale assumed for masks of images of unknown scale (µm/px): coarse overviews.
OVERVIEW_UM_PER_PX = 5.0


def default_data_dir() -> Path:
    """../shared/data beside the repository, or $FINEFOCUS_SHARED_DATA."""
    import os
    repo = Path(__file__).resolve().parents[2]
    return Path(os.environ.get("FINEFOCUS_SHARED_DATA", repo.parent / "shared" / "data"))


def load_image(path: Path) -> np.ndarray:
    """Whole level-0 image of a reference as uint8 RGB (H, W, 3)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such reference image")
    if path.suffix == ".svs":
        import openslide
        s = openslide.OpenSlide(str(path))
        try:
            return np.asarray(s.read_region((0, 0), 0, s.dimensions).convert("RGB"))
        finally:
            s.close()
    if path.suffix in (".tif", ".tiff"):
        import tifffile
        a = tifffile.imread(str(path))
        return np.ascontiguousarray(a[..., :3]).astype(np.uint8)
    from PIL import Image
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def grid_patches(img: np.ndarray, um_per_px: float, n: int, size: int = PATCH_PX,
                 min_tissue: float = MIN_TISSUE_FRACTION) -> list[np.ndarray]:
    """Up to n tissue patches (size × size px) from a non-overlapping grid over img."""
    h, w = img.shape[:2]
    found = []
    for y in range(0, h - size + 1, size):
        for x in range(0, w - size + 1, size):
            p = img[y:y + size, x:x + size]
            if M.tissue_mask(p, um_per_px).mean() >= min_tissue:
                found.append(p)
    if len(found) > n:
        found = [found[i] for i in np.linspace(0, len(found) - 1, n).round().astype(int)]
    return found


@dataclass
class ReferenceImage:
    """A loaded reference: its tissue patches (at its native scale) and its whole image."""
    ref: Reference
    patches: list[np.ndarray]
    whole: np.ndarray
    um_per_px: float       # scale used for masks (native, or OVERVIEW_UM_PER_PX)


def load_reference(ref: Reference, data_dir: Path, n_patches: int) -> ReferenceImage:
    """Read one reference and cut its tissue patches; the whole image serves overviews
    (kidney: its only tissue piece is smaller than a patch, so its tissue pixels are used)."""
    img = load_image(Path(data_dir) / ref.relpath)
    um = ref.um_per_px or OVERVIEW_UM_PER_PX
    patches = grid_patches(img, um, n_patches) if ref.um_per_px else [img]
    return ReferenceImage(ref, patches, img, um)
