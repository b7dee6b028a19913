"""FocusLiteNN score → estimated defocus in µm, for the QC verdicts.

The shipped FocusLiteNN weights already score in µm (training folds a least-squares affine map
to the labels |z − z*| into the model, `engine.fqa.train.calibrated`), but an affine map of a
noisy patch score is biased at both ends: near focus it cannot go below the mean label of its
lowest scores, and it is steeper than the truth far from focus. QC thresholds are read in µm, so
QC uses its own monotone map, fitted once on phantom focal stacks and stored beside this module
(``defocus_calibration.json``, written by ``tools/make_qc_calibration.py``):

* data: `engine.fqa.dataset.phantom_stacks` of one **training-range** phantom seed
  (``CALIBRATION_SEED`` = TRAINING_SEED_BASE + 900 000: ≥ TRAINING_SEED_BASE, so never one of
  the evaluation seeds `engine.fqa.evaluate` accepts, and outside the seeds training and
  validation use, TRAINING_SEED_BASE + i and TRAINING_SEED_BASE + 500 000 + i), 235-px patches
  at 0.25 µm/px imaged with the phantom's sensor noise, planes from −3 to +3 µm around each
  patch's sharpest plane z*; label = |z − z*| in µm;
* map: the patches sorted by score are cut into ``KNOTS`` groups of equal size; each knot is the
  (median score, mean label) of a group, made non-decreasing; between knots the map is linear,
  beyond the first and last knot it is flat (no extrapolation).

The map holds for 0.25 µm/px scans (the phantom's and FocusLiteNN's training resolution): on a
coarser slide the estimate in µm is only indicative, and the QC row says so.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..phantom.seeds import QC_CALIBRATION

CALIBRATION_FILE = Path(__file__).with_name("defocus_calibration.json")
#: The phantom seed of the calibration: in the training range, used by nothing else.
CALIBRATION_SEED = QC_CALIBRATION.start   # engine.phantom.seeds: 1 900 000
KNOTS = 16
#: µm per px of the slides the map was fitted for.
CALIBRATION_MPP = 0.25


@dataclass(frozen=True)
class DefocusCalibration:
    """A monotone piecewise-linear map from a model's score to estimated defocus |z − z*| (µm)."""

    model: str
    scores: tuple[float, ...]
    defocus_um: tuple[float, ...]
    meta: dict

    def __call__(self, score: np.ndarray) -> np.ndarray:
        """Estimated defocus (µm, float32) of scores of any shape; NaN stays NaN."""
        s = np.asarray(score, np.float64)
        out = np.interp(s, self.scores, self.defocus_um)
        return np.where(np.isfinite(s), out, np.nan).astype(np.float32)


def fit_calibration(scores: np.ndarray, labels_um: np.ndarray, model: str, knots: int = KNOTS,
                    meta: dict | None = None) -> DefocusCalibration:
    """The map of the module docstring from patch ``scores`` and their labels (µm)."""
    s = np.asarray(scores, np.float64).ravel()
    t = np.asarray(labels_um, np.float64).ravel()
    ok = np.isfinite(s) & np.isfinite(t)
    s, t = s[ok], t[ok]
    if s.size < knots * 4:
        raise ValueError(f"{s.size} patches are too few for {knots} knots")
    order = np.argsort(s, kind="stable")
    groups = np.array_split(order, knots)
    xs = np.array([np.median(s[g]) for g in groups])
    ys = np.maximum.accumulate(np.array([t[g].mean() for g in groups]))
    xs = xs + np.arange(knots) * 1e-9 * (1 + np.abs(xs).max())  # strictly increasing for np.interp
    return DefocusCalibration(model, tuple(float(x) for x in xs), tuple(float(y) for y in ys), dict(meta or {}))


def save_calibration(cal: DefocusCalibration, path: Path = CALIBRATION_FILE) -> None:
    doc = {"model": cal.model, "scores": list(cal.scores), "defocus_um": list(cal.defocus_um), "meta": cal.meta}
    path.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")


@lru_cache(maxsize=4)
def load_calibration(path: str | None = None) -> DefocusCalibration:
    """The stored map (``defocus_calibration.json`` unless ``path``)."""
    doc = json.loads(Path(path or CALIBRATION_FILE).read_text())
    return DefocusCalibration(doc["model"], tuple(doc["scores"]), tuple(doc["defocus_um"]), doc.get("meta", {}))
