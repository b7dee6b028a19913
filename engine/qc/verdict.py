"""Verdict rules of the batch QC: pass / review / rescan from estimated defocus in µm.

A tissue patch (235 px at stride 128 on level 0, `engine.fqa.heatmap`) is **out of focus** when
its estimated defocus (FocusLiteNN score mapped to µm, `engine.qc.calibration`) is at least
``OUT_OF_FOCUS_UM`` = 1.5 µm: about 1.5 depths of field of a 40×/0.75 NA objective in green light
(λ/NA² ≈ 0.96 µm). On the calibration stacks 6 % of in-focus patches (|z − z*| ≤ 0.5 µm) and 85 %
of blurry ones (≥ 2 µm) reach it (the figures are in ``defocus_calibration.json``), so a sharp
scan still shows a few percent of out-of-focus patches.

The slide's **out-of-focus fraction** is the share of its tissue patches that are out of focus
(of the plane nearest z = 0 for a multi-plane slide). Verdict:

* ``pass``   — fraction < ``REVIEW_FRACTION`` = 0.10;
* ``review`` — 0.10 ≤ fraction < ``RESCAN_FRACTION`` = 0.30, or no tissue found;
* ``rescan`` — fraction ≥ 0.30.

A slide that could not be read gets no verdict (``error``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

OUT_OF_FOCUS_UM = 1.5
REVIEW_FRACTION = 0.10
RESCAN_FRACTION = 0.30
VERDICTS = ("pass", "review", "rescan")


@dataclass(frozen=True)
class FocusSummary:
    """Figures of one slide's defocus grid: ``tissue_patches`` counted, ``oof_fraction`` in
    [0, 1] (NaN without tissue), median and 90th percentile of defocus in µm (NaN without)."""

    tissue_patches: int
    oof_fraction: float
    median_defocus_um: float
    p90_defocus_um: float
    verdict: str
    note: str = ""


def summarise(defocus_um: np.ndarray) -> FocusSummary:
    """The summary and verdict of a defocus grid (µm, NaN on glass)."""
    v = np.asarray(defocus_um, np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return FocusSummary(0, float("nan"), float("nan"), float("nan"), "review", "no tissue found")
    frac = float((v >= OUT_OF_FOCUS_UM).mean())
    return FocusSummary(int(v.size), frac, float(np.median(v)), float(np.percentile(v, 90)), verdict_for(frac))


def verdict_for(oof_fraction: float) -> str:
    """``pass`` / ``review`` / ``rescan`` for an out-of-focus fraction in [0, 1]."""
    if oof_fraction >= RESCAN_FRACTION:
        return "rescan"
    if oof_fraction >= REVIEW_FRACTION:
        return "review"
    return "pass"
