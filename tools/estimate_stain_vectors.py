"""Estimate the stain OD vectors of the real images (the phantom's ``stains.OD_VECTORS``).

Macenko et al. (2009): the tissue pixels' optical densities (all channels above ``BETA``) are
projected on the plane of their two main principal components; the directions at the
``ALPHA`` and 100 − ``ALPHA`` percentiles of the angle in that plane are the two pure stains
(the one absorbing more red is haematoxylin). Printed per image and averaged per family
(H&E: haematoxylin + eosin; IHC: haematoxylin + DAB), unit-normalised, R, G, B.

    .venv/bin/python tools/estimate_stain_vectors.py [--data ../shared/data]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from engine.phantom import realism_measures as M  # noqa: E402
from engine.phantom import realism_references as R  # noqa: E402

BETA = 0.15
ALPHA = 1.0


def macenko(od: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(haematoxylin-like, other) unit OD vectors of (n, 3) tissue optical densities."""
    od = od[(od > BETA).all(axis=1)]
    _, vecs = np.linalg.eigh(np.cov(od.T))
    plane = vecs[:, [2, 1]]
    plane *= np.sign(plane[0:1, :] + 1e-12)
    t = od @ plane
    phi = np.arctan2(t[:, 1], t[:, 0])
    lo, hi = np.percentile(phi, [ALPHA, 100 - ALPHA])
    v1 = plane @ np.array([np.cos(lo), np.sin(lo)])
    v2 = plane @ np.array([np.cos(hi), np.sin(hi)])
    v1, v2 = v1 / np.linalg.norm(v1), v2 / np.linalg.norm(v2)
    return (v1, v2) if v1[0] >= v2[0] else (v2, v1)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=R.default_data_dir())
    a = ap.parse_args(argv)
    fams: dict[str, list] = {}
    for ref in R.REFERENCES:
        if not ref.structural or not (a.data / ref.relpath).exists():
            continue
        img = R.load_image(a.data / ref.relpath)[:2048, :2048]
        mask = M.tissue_mask(img, ref.um_per_px)
        h, other = macenko(M.optical_density(img)[mask].astype(np.float64))
        fams.setdefault(ref.family, []).append((h, other))
        print(f"{ref.name:42s} H {np.round(h, 3)}  other {np.round(other, 3)}")
    for fam, vs in fams.items():
        h = np.mean([v[0] for v in vs], axis=0)
        o = np.mean([v[1] for v in vs], axis=0)
        print(f"mean {fam}: H {np.round(h / np.linalg.norm(h), 3)}  "
              f"{'eosin' if fam == 'he' else 'DAB'} {np.round(o / np.linalg.norm(o), 3)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
