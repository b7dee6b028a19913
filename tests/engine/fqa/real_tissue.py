"""Real tissue for focus tests: crops of the CMU-1 SVS in ../shared/data, focal stacks made from
them by blurring, written to OME-TIFF by tifffile (an independent, real writer)."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pytest
from scipy import ndimage

from tests.paths import SHARED_DATA

CMU = SHARED_DATA / "slides" / "cmu-1-small-region.svs"
CMU_MPP = 0.499
#: A 1280×1280 region of CMU-1 (level-0 px): glass on the left, H&E tissue on the right.
CMU_REGION = (0, 1000, 1280, 1280)


def require(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} not found: real test images live in ../shared/data "
                    "(or set FINEFOCUS_SHARED_DATA)")
    return path


def cmu_region(region: tuple[int, int, int, int] = CMU_REGION) -> np.ndarray:
    """uint8 (h, w, 3) pixels of a level-0 region (x, y, w, h) of the CMU-1 SVS."""
    from engine.slides import open_slide

    with open_slide(require(CMU)) as slide:
        return slide.read_region(0, *region)


def gaussian_blur(rgb: np.ndarray, sigma_px: float) -> np.ndarray:
    """Each channel blurred by a Gaussian of ``sigma_px`` (0: a copy)."""
    if sigma_px <= 0:
        return rgb.copy()
    out = ndimage.gaussian_filter(rgb.astype(np.float32), (sigma_px, sigma_px, 0), mode="nearest")
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def psf_blur(rgb: np.ndarray, dz_um: float, mpp: float) -> np.ndarray:
    """``rgb`` defocused by ``dz_um`` through the phantom's Born & Wolf PSF (per channel)."""
    from scipy.signal import fftconvolve

    from engine.phantom.optics import Optics, psf_kernel

    optics = Optics()
    out = np.empty_like(rgb)
    for c in range(3):
        k = psf_kernel(dz_um, optics.wavelengths_um[c], mpp, 12, optics.na, oversample=3, normalise=True)
        blurred = fftconvolve(np.pad(rgb[..., c].astype(np.float32), 12, mode="edge"), k, mode="valid")
        out[..., c] = np.clip(blurred + 0.5, 0, 255).astype(np.uint8)
    return out


def write_ome_stack(path: Path, planes: Sequence[np.ndarray], planes_um: Sequence[float],
                    mpp: float = CMU_MPP) -> Path:
    """A tiled, zlib-compressed single-level OME-TIFF z-stack (tifffile), planes ascending in z."""
    import tifffile

    metadata = {"axes": "ZYXS", "PhysicalSizeX": mpp, "PhysicalSizeXUnit": "µm",
                "PhysicalSizeY": mpp, "PhysicalSizeYUnit": "µm",
                "Plane": {"PositionZ": [float(z) for z in planes_um], "PositionZUnit": ["µm"] * len(planes_um)}}
    tifffile.imwrite(path, np.stack(planes), ome=True, metadata=metadata, tile=(256, 256),
                     photometric="rgb", compression="zlib")
    return Path(path)
