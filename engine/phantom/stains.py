"""Stains and Beer–Lambert absorption.

Each absorber has an optical-density (OD) vector: the decadic absorbance in the R, G, B channels
per unit of "concentration × path length". The phantom measures a stain's amount in
**OD units per µm of path** (so a column of tissue t µm thick with density d contributes d·t
OD units of that stain). The transmitted intensity in channel c is Beer–Lambert::

    I_c = white_c · 10^(−OD_c),     OD_c = Σ_stain amount_stain · od_vec_stain[c]

``white_c`` is the brightness of empty glass after the scanner's white balance (≈ 240–250 of
255, as real scans show).

Stain vectors are those of the real images, not textbook ones: haematoxylin and eosin were
estimated with Macenko's method (the extreme angles of the tissue pixels' OD in the plane of
their two main components) on the tissue of the four H&E images resolved at 0.5 µm/px in
``../shared/data`` (``tools/estimate_stain_vectors.py``), averaged; DAB the same way on
``tiles/ihc.png``, whose haematoxylin counterstain (bluer than in H&E) is the median OD of its
blue pixels (B > R + 25, mean OD > 0.15), close to Macenko's (0.62, 0.65, 0.44). Real eosin absorbs more red and blue than
Ruifrok & Johnston's (2001) vector, which is why colour deconvolution of real H&E slides gives
a DAB-channel residual of 0.1–0.3 OD and a haematoxylin floor of ~0.1 OD in stroma; the phantom
shares both. Red blood cells absorb green and blue strongly (haemoglobin + eosin in H&E;
unstained haemoglobin, pale yellow-brown, in IHC where there is no eosin).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["OD_VECTORS", "StainSet", "stain_set", "intensity_from_od"]

#: Unit OD vectors (R, G, B).
OD_VECTORS: dict[str, tuple[float, float, float]] = {
    "haematoxylin": (0.626, 0.689, 0.364),
    "eosin": (0.287, 0.844, 0.453),
    "haematoxylin_ihc": (0.669, 0.620, 0.410),
    "dab": (0.279, 0.496, 0.822),
    "rbc": (0.110, 0.720, 0.690),
    "rbc_ihc": (0.200, 0.420, 0.890),
    "ink": (0.580, 0.560, 0.590),      # black/grey marker ink and dust
    "ink_green": (0.850, 0.250, 0.700),
}


@dataclass(frozen=True)
class StainSet:
    """The absorbers a stain protocol uses, in the order of the volume's stain axis."""

    name: str
    absorbers: tuple[str, ...]
    vectors: tuple[str, ...] = ()      # OD_VECTORS entry per absorber (default: its own name)

    def od_matrix(self) -> np.ndarray:
        """(n_absorbers, 3) OD vectors, float32."""
        names = self.vectors or self.absorbers
        m = np.array([OD_VECTORS[a] for a in names], np.float64)
        m /= np.linalg.norm(m, axis=1, keepdims=True)
        return m.astype(np.float32)

    def index(self, absorber: str) -> int:
        return self.absorbers.index(absorber)


def stain_set(name: str) -> StainSet:
    """"he": haematoxylin & eosin; "ihc": DAB with a haematoxylin counterstain."""
    if name == "he":
        return StainSet("he", ("haematoxylin", "eosin", "rbc", "ink"))
    if name == "ihc":
        return StainSet("ihc", ("haematoxylin", "dab", "rbc", "ink"),
                        ("haematoxylin_ihc", "dab", "rbc_ihc", "ink"))
    raise ValueError(f"unknown stain {name!r} (expected 'he' or 'ihc')")


def intensity_from_od(od: np.ndarray, white: np.ndarray) -> np.ndarray:
    """Beer–Lambert: ``white · 10^(−od)`` per channel; ``od`` is (3, ...) and white (3,)."""
    shape = (3,) + (1,) * (od.ndim - 1)
    return np.asarray(white, np.float32).reshape(shape) * np.power(np.float32(10.0), -od)
