"""Paired differences with a percentile bootstrap interval: how the workshop's studies say whether a
difference between two arms was measured at all, and not only which mean came out higher.

One implementation for every study (`serpentir ablate`, benchmarks/recipe_study.py), so their
intervals are computed, and worded, the same way. The resampling RNG has a fixed seed: a report
rewritten from the same scores shows the same intervals.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

RESAMPLES = 10_000
NO_DIFFERENCE = "no difference measured"


def bootstrap_interval(diffs: Sequence[float] | np.ndarray, n: int = RESAMPLES, seed: int = 0,
                       level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of `diffs` (per-photo differences): n resamples of the
    photos with replacement, the (1-level)/2 and (1+level)/2 percentiles of their means."""
    diffs = np.asarray(diffs, dtype=np.float64)
    if diffs.size == 0:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    means = diffs[rng.integers(0, len(diffs), (n, len(diffs)))].mean(1)
    tail = 100 * (1 - level) / 2
    return float(np.percentile(means, tail)), float(np.percentile(means, 100 - tail))


def verdict(low: float, high: float) -> str:
    """'better' (the interval is above 0), 'worse' (below), else NO_DIFFERENCE (it holds 0, or is unknown)."""
    if math.isnan(low) or math.isnan(high) or low <= 0 <= high:
        return NO_DIFFERENCE
    return "better" if low > 0 else "worse"


@dataclass(frozen=True)
class PairedDifference:
    """Mean of per-item differences (arm minus reference) and its 95% bootstrap interval over items."""

    mean: float
    low: float
    high: float
    n: int

    @property
    def verdict(self) -> str:
        return verdict(self.low, self.high)

    def describe(self, digits: int = 2, unit: str = "") -> str:
        """'+0.12 [-0.05, +0.30] dB: no difference measured'; a digit more (up to two) while a bound of an
        interval that excludes 0 would print as 0, so the numbers never seem to contradict the verdict."""
        if math.isnan(self.mean):
            return "-"
        for _ in range(2):
            if self.verdict == NO_DIFFERENCE or min(abs(self.low), abs(self.high)) >= 0.5 * 10 ** -digits:
                break
            digits += 1
        f = f"+.{digits}f"
        return (f"{self.mean:{f}} [{self.low:{f}}, {self.high:{f}}]{' ' + unit if unit else ''}: {self.verdict}")


def paired_difference(arm: dict[str, float], reference: dict[str, float]) -> PairedDifference:
    """Per-item differences arm[k] - reference[k] over the items both have (photos, by name)."""
    common = [k for k in arm if k in reference]
    diffs = np.array([arm[k] - reference[k] for k in common], dtype=np.float64)
    if diffs.size == 0 or not np.all(np.isfinite(diffs)):
        return PairedDifference(math.nan, math.nan, math.nan, int(diffs.size))
    low, high = bootstrap_interval(diffs)
    return PairedDifference(float(diffs.mean()), low, high, int(diffs.size))
