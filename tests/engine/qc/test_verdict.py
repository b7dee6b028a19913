"""Verdict rules (engine/qc/verdict.py): thresholds in µm of estimated defocus."""
import numpy as np
import pytest

from engine.qc.verdict import OUT_OF_FOCUS_UM, RESCAN_FRACTION, REVIEW_FRACTION, summarise, verdict_for


def test_thresholds_are_the_documented_ones():
    assert (OUT_OF_FOCUS_UM, REVIEW_FRACTION, RESCAN_FRACTION) == (1.5, 0.10, 0.30)


@pytest.mark.parametrize("fraction,verdict", [(0.0, "pass"), (0.0999, "pass"), (0.10, "review"),
                                               (0.2999, "review"), (0.30, "rescan"), (1.0, "rescan")])
def test_verdict_by_out_of_focus_fraction(fraction, verdict):
    assert verdict_for(fraction) == verdict


def test_a_patch_at_the_threshold_counts_as_out_of_focus_and_glass_is_ignored():
    grid = np.full((4, 5), np.nan, np.float32)
    grid[0, :4] = [0.5, 1.0, 1.49, 1.5]  # one of four tissue patches at ≥ 1.5 µm
    s = summarise(grid)
    assert s.tissue_patches == 4 and s.oof_fraction == 0.25 and s.verdict == "review"
    assert s.median_defocus_um == pytest.approx(1.245)


def test_no_tissue_is_a_review_with_a_note():
    s = summarise(np.full((3, 3), np.nan))
    assert s.verdict == "review" and s.note == "no tissue found" and s.tissue_patches == 0
