"""serpentir_lab.stats: the percentile bootstrap interval studies read differences with, checked by hand."""

from __future__ import annotations

import numpy as np
import pytest

from serpentir_lab import stats
from serpentir_lab.stats import NO_DIFFERENCE, bootstrap_interval, paired_difference, verdict


def test_interval_of_three_photos_matches_the_exact_bootstrap_distribution():
    # resampling 3 photos with replacement: 27 equally likely draws; the mean is 0 only for (0, 0, 0) and 3 only
    # for (3, 3, 3), each 1/27 = 3.7% > 2.5%, so the 2.5th and 97.5th percentiles are exactly 0 and 3
    assert bootstrap_interval([0.0, 1.0, 3.0]) == (0.0, 3.0)
    # two photos: means 0, 0.5, 1 with probabilities 1/4, 1/2, 1/4
    assert bootstrap_interval([0.0, 1.0]) == (0.0, 1.0)


def test_interval_matches_the_normal_theory_half_width():
    # 40 differences spread like a normal sample: the bootstrap distribution of the mean has standard deviation
    # std(ddof=0) / sqrt(n), so the 95% interval is close to mean -/+ 1.96 of it
    from statistics import NormalDist

    diffs = np.array([NormalDist(0.3, 0.5).inv_cdf((i + 0.5) / 40) for i in range(40)])
    low, high = bootstrap_interval(diffs)
    half = 1.959964 * diffs.std() / np.sqrt(len(diffs))
    assert (low + high) / 2 == pytest.approx(diffs.mean(), abs=0.05 * half)
    assert (high - low) / 2 == pytest.approx(half, rel=0.05)
    assert bootstrap_interval(diffs) == (low, high)  # a fixed RNG seed: the same report twice
    assert bootstrap_interval(diffs, level=0.5)[1] - bootstrap_interval(diffs, level=0.5)[0] < high - low


def test_verdict_wording():
    assert verdict(-0.1, 0.2) == NO_DIFFERENCE == "no difference measured"
    assert verdict(0.0, 0.2) == NO_DIFFERENCE  # an interval that touches 0 holds it
    assert verdict(0.05, 0.2) == "better" and verdict(-0.3, -0.01) == "worse"
    assert verdict(float("nan"), float("nan")) == NO_DIFFERENCE


def test_paired_difference_pairs_photos_by_name():
    arm = {"a.png": 31.0, "b.png": 29.5, "c.png": 30.0}
    ref = {"c.png": 29.0, "a.png": 30.0, "b.png": 28.5, "d.png": 99.0}  # d: only the reference has it
    d = paired_difference(arm, ref)
    assert (d.mean, d.low, d.high, d.n) == (1.0, 1.0, 1.0, 3)  # every photo is 1 dB better
    assert d.verdict == "better" and d.describe(2, "dB") == "+1.00 [+1.00, +1.00] dB: better"
    mixed = paired_difference({"a": 1.0, "b": -1.0, "c": 0.5}, {"a": 0.0, "b": 0.0, "c": 0.0})
    assert mixed.mean == pytest.approx(1 / 6) and mixed.verdict == NO_DIFFERENCE
    assert mixed.describe(2) == f"+0.17 [{mixed.low:+.2f}, {mixed.high:+.2f}]: no difference measured"
    assert np.isnan(paired_difference({}, ref).mean) and paired_difference({}, ref).describe() == "-"
    # a bound that rounds to 0 gets another digit, so "-0.00 ...: worse" is never printed
    close = stats.PairedDifference(-0.0091, -0.017, -0.0041, 6)
    assert close.describe(2, "dB") == "-0.009 [-0.017, -0.004] dB: worse"
    assert stats.PairedDifference(-0.004, -0.0004, -0.0001, 6).describe(2) == "-0.0040 [-0.0004, -0.0001]: worse"
    assert stats.PairedDifference(0.001, -0.01, 0.02, 6).describe(2) == "+0.00 [-0.01, +0.02]: no difference measured"
