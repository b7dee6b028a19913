"""Stains and Beer–Lambert absorption.

Each absorber has an optical-density (OD) vector: the decadic absorbance in the R, G, B channels
per unit of "concentration × path length". The phantom measures a stain's amount in
**OD units per µm of path** (so a column of tissue t µm thick with density d contributes d·t
OD units of that stain). The transmitted intensity in channel c is Beer–Lambert::

    I_c = white_c · 10^(−OD_c),     OD_c = Σ_stain amount_stain · od_vec_stain[c]

``white_c`` is the brightness of empty glass after the scanner's white balance (≈ 240–250 of
255, as real scans show). OD vectors for haematoxylin, eosin and DAB follow Ruifrok & Johnston
(2001), unit-normalised; red blood cells (haemoglobin + eosin) absorb green and blue strongly.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["OD_VECTORS", "StainSet", "stain_set", "intensity_from_od"]

#: Unit OD vectors (R, G, B).
OD_VECTORS: dict[str, tuple[float, float, float]] = {
    "haematoxylin": (0.650, 0.704, 0.286),
    "eosin": (0.093, 0.954, 0.283),
    "dab": (0.268, 0.570, 0.776),
    "rbc": (0.060, 0.800, 0.600),
    "ink": (0.580, 0.560, 0.590),      # black/grey marker ink and dust
    "ink_green": (0.850, 0.250, 0.700),
}


@dataclass(frozen=True)
class StainSet:
    """The absorbers a stain protocol uses, in the order of the volume's stain axis."""

    name: str
    absorbers: tuple[str, ...]

    def od_matrix(self) -> np.ndarray:
        """(n_absorbers, 3) OD vectors, float32."""
        m = np.array([OD_VECTORS[a] for a in self.absorbers], np.float64)
        m /= np.linalg.norm(m, axis=1, keepdims=True)
        return m.astype(np.float32)

    def index(self, absorber: str) -> int:
        return self.absorbers.index(absorber)


def stain_set(name: str) -> StainSet:
    """"he": haematoxylin & eosin; "ihc": DAB with a haematoxylin counterstain."""
    if name == "he":
        return StainSet("he", ("haematoxylin", "eosin", "rbc", "ink"))
    if name == "ihc":
        return StainSet("ihc", ("haematoxylin", "dab", "rbc", "ink"))
    raise ValueError(f"unknown stain {name!r} (expected 'he' or 'ihc')")


def intensity_from_od(od: np.ndarray, white: np.ndarray) -> np.ndarray:
    """Beer–Lambert: ``white · 10^(−od)`` per channel; ``od`` is (3, ...) and white (3,)."""
    shape = (3,) + (1,) * (od.ndim - 1)
    return np.asarray(white, np.float32).reshape(shape) * np.power(np.float32(10.0), -od)
