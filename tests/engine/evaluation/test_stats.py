"""Agreement statistics against their definitions, computed the slow way."""
import itertools

import numpy as np
import pytest
from scipy import stats as st

from engine.evaluation import correlation_row, krcc, plcc, pr_auc, roc_auc, srcc


@pytest.fixture
def data():
    rng = np.random.default_rng(3)
    truth = rng.uniform(0, 3, 200)
    pred = truth + rng.normal(0, 0.8, 200)
    pred[:5] = np.round(pred[:5])  # some ties
    pred[5:7] = pred[7:9]
    return pred, truth


def test_roc_auc_is_the_fraction_of_correctly_ordered_pairs(data):
    pred, truth = data
    pos = truth >= 1.0
    pairs = [(p, n) for p, n in itertools.product(pred[pos], pred[~pos])]
    want = np.mean([1.0 if p > n else 0.5 if p == n else 0.0 for p, n in pairs])
    assert roc_auc(pred, pos) == pytest.approx(want, abs=1e-12)


def test_pr_auc_is_the_mean_precision_at_each_positive(data):
    pred, truth = data
    pos = truth >= 1.0
    order = np.argsort(-pred, kind="stable")
    precisions = [pos[order[:k + 1]].mean() for k in range(len(order)) if pos[order[k]]]
    assert pr_auc(pred, pos) == pytest.approx(np.mean(precisions), abs=1e-12)


def test_correlations_drop_nans_pairwise_and_match_scipy(data):
    pred, truth = data
    p, t = pred.copy(), truth.copy()
    p[10], t[20] = np.nan, np.nan
    keep = np.isfinite(p) & np.isfinite(t)
    assert srcc(p, t) == pytest.approx(st.spearmanr(p[keep], t[keep]).statistic)
    assert plcc(p, t) == pytest.approx(st.pearsonr(p[keep], t[keep]).statistic)
    assert krcc(p, t) == pytest.approx(st.kendalltau(p[keep], t[keep]).statistic)


def test_a_perfect_and_a_reversed_ranking():
    t = np.linspace(0, 3, 30)
    row = correlation_row(t ** 2, t, 1.0)
    assert row == {"srcc": pytest.approx(1.0), "plcc": pytest.approx(st.pearsonr(t ** 2, t).statistic),
                   "krcc": pytest.approx(1.0), "roc_auc": 1.0, "pr_auc": 1.0}
    assert correlation_row(-t, t, 1.0)["roc_auc"] == 0.0
