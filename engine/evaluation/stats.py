"""Agreement statistics between predicted scores and ground truth.

All functions take 1-D arrays; NaNs are dropped pairwise. Correlations follow thesis Sec. 3.4.2:
SRCC (monotonicity), PLCC (linearity), KRCC; ROC-AUC and PR-AUC after binarising the truth
(positive = blurry), the area under the precision–recall curve as average precision.
"""
from __future__ import annotations

import numpy as np
from scipy import stats as _st


def _clean(pred, truth):
    p = np.asarray(pred, np.float64).ravel()
    t = np.asarray(truth, np.float64).ravel()
    ok = np.isfinite(p) & np.isfinite(t)
    return p[ok], t[ok]


def srcc(pred, truth) -> float:
    p, t = _clean(pred, truth)
    return float(_st.spearmanr(p, t).statistic) if len(p) > 2 else float("nan")


def plcc(pred, truth) -> float:
    p, t = _clean(pred, truth)
    return float(_st.pearsonr(p, t).statistic) if len(p) > 2 else float("nan")


def krcc(pred, truth) -> float:
    p, t = _clean(pred, truth)
    return float(_st.kendalltau(p, t).statistic) if len(p) > 2 else float("nan")


def roc_auc(score, positive) -> float:
    """Area under the ROC curve of ``score`` for the boolean ``positive`` (Mann–Whitney U)."""
    s, y = _clean(score, positive)
    y = y.astype(bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = _st.rankdata(s)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def pr_auc(score, positive) -> float:
    """Average precision of ``score`` for the boolean ``positive``."""
    s, y = _clean(score, positive)
    y = y.astype(bool)
    if y.sum() == 0:
        return float("nan")
    order = np.argsort(-s, kind="stable")
    hits = y[order]
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float(precision[hits].mean())


def correlation_row(pred, truth, blurry_threshold: float | None = None) -> dict:
    """SRCC, PLCC, KRCC and, when ``blurry_threshold`` is given, ROC-AUC and PR-AUC of
    ``pred`` (higher = blurrier) against ``truth`` (e.g. |z − z*| in µm)."""
    row = {"srcc": srcc(pred, truth), "plcc": plcc(pred, truth), "krcc": krcc(pred, truth)}
    if blurry_threshold is not None:
        positive = np.asarray(truth) >= blurry_threshold
        row["roc_auc"] = roc_auc(pred, positive)
        row["pr_auc"] = pr_auc(pred, positive)
    return row
