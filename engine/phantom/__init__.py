"""The phantom: a physically based virtual slide with exact ground truth at any focus.

Modules, one job each: ``noise`` (counter-based random fields), ``tissue_params`` (the tunable
tissue), ``layout`` (2-D architecture and section geometry), ``cells`` (nuclei, red cells),
``volume`` (3-D stain density on a global z grid), ``stains`` (Beer–Lambert), ``optics`` (Born &
Wolf PSF/OTF per channel), ``sensor`` (noise, JPEG, scanner focus error), ``render`` (image
formation, blocks, best-focus map, all-in-focus truth), ``slide`` (``PhantomSlide``).
"""
from .optics import Optics
from .render import PhantomRenderer
from .slide import PhantomSlide
from .tissue_params import NucleusType, TissueParams
from .volume import TissueVolume

__all__ = ["PhantomSlide", "PhantomRenderer", "TissueVolume", "TissueParams", "NucleusType", "Optics"]
