"""Small real slides for the QC tests, written once per session by real writers (tifffile,
Pillow via tests/slide_files.py; the phantom renderer for slides with known defocus).

* ``qc_slides``: a folder with a 3-plane OME-TIFF z-stack, a single-plane Aperio-like SVS and a
  plane-set folder (one slide), all of textured "tissue";
* ``phantom_pair``: (sharp, blurred) single-plane OME-TIFFs of one 640 × 640 px phantom region at
  0.25 µm/px, imaged at the region's own best focus and 4 µm beyond it, with sensor noise;
* ``bad_slide``: a ``.svs`` holding text.
"""
from __future__ import annotations

import numpy as np
import pytest

from engine.fusion.fit import FusionConfig
from engine.qc.config import QcConfig
from tests import slide_files
from tests.paths import SHARED_DATA

#: The fused-IQA fit with fewer Adam steps than the product's 1500: the same code and the same
#: determinism, at a tenth of the time (tests compare runs with each other, not with a target).
FAST = QcConfig(fusion=FusionConfig(steps=150))

REAL_SLIDES = SHARED_DATA / "slides"


@pytest.fixture(scope="session")
def qc_slides(tmp_path_factory):
    root = tmp_path_factory.mktemp("qc-slides")
    slide_files.write_ome_zstack(root / "zstack.ome.tif", size=(768, 640))
    slide_files.write_svs_like(root / "scan.svs", size=(896, 640))
    slide_files.write_plane_set(root / "nested" / "bracket", size=(640, 512))
    return root


@pytest.fixture(scope="session")
def phantom_pair(tmp_path_factory):
    import tifffile

    from engine.phantom import PhantomSlide

    root = tmp_path_factory.mktemp("qc-phantom")
    slide = PhantomSlide(seed=2, size=(1024, 768))
    x, y, side = 320, 64, 640
    z_best = _sharpest_z(slide, x, y, side)
    out = []
    for name, z in (("sharp", z_best), ("blurred", z_best + 4.0)):
        img = slide.renderer.render(0, x, y, side, side, z, noise=True, plane_key=1000)
        path = root / f"{name}.ome.tif"
        tifffile.imwrite(path, img, photometric="rgb", tile=(256, 256), compression="zlib",
                         metadata={"axes": "YXS", "PhysicalSizeX": 0.25, "PhysicalSizeY": 0.25,
                                   "PhysicalSizeXUnit": "µm", "PhysicalSizeYUnit": "µm"})
        out.append(path)
    return tuple(out)


def _sharpest_z(slide, x: int, y: int, side: int) -> float:
    """The uniform focus (µm, 0.5 µm steps in −3…+1) whose noise-free render of the region has
    the most Laplacian energy (a quick stand-in for `best_focus_of_region`, which renders finer)."""
    from scipy.ndimage import laplace

    zs = np.arange(-3.0, 1.01, 0.5)
    energy = [float(laplace(slide.truth(0, x, y, side, side, float(z)).mean(-1)).var()) for z in zs]
    return float(zs[int(np.argmax(energy))])


@pytest.fixture(scope="session")
def bad_slide(tmp_path_factory):
    p = tmp_path_factory.mktemp("qc-bad") / "broken.svs"
    p.write_text("this is not a slide\n")
    return p


@pytest.fixture()
def real_slides():
    if not REAL_SLIDES.is_dir() or not any(REAL_SLIDES.iterdir()):
        pytest.skip(f"real slides not found in {REAL_SLIDES} (set FINEFOCUS_SHARED_DATA)")
    return REAL_SLIDES
