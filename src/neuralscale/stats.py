"""Statistics over seeds: Student's t quantiles, the Welch confidence interval of a gap between means, and the
paired one (by seed) of a gap between runs that share their seeds."""

from __future__ import annotations

import math
import statistics

# Two-sided 95% quantiles of Student's t for 1..30 degrees of freedom; 1.96 beyond.
_T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
         2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042]


def t975(df: float) -> float:
    if df < 1:
        return float("nan")
    return _T975[min(int(df), 30) - 1] if df < 31 else 1.96


def welch_gap(a: list[float], b: list[float]) -> tuple[float, float | None]:
    """mean(a) - mean(b) and the half-width of its 95% confidence interval (Welch), None with under 2 of either."""
    gap = statistics.fmean(a) - statistics.fmean(b)
    if len(a) < 2 or len(b) < 2:
        return gap, None
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    se = math.sqrt(va + vb)
    if se == 0:
        return gap, 0.0
    df = (va + vb) ** 2 / ((va ** 2 / (len(a) - 1) if va else 0) + (vb ** 2 / (len(b) - 1) if vb else 0))
    return gap, t975(df) * se


def paired_gap(a: dict, b: dict) -> tuple[float | None, float | None, int]:
    """The mean of a[seed] - b[seed] over the seeds both have, the half-width of its 95% confidence interval
    (Student's t on the differences), and how many seeds were paired; (None, None, 0) without a common seed,
    a None half-width with one.  Two methods trained with the same seeds share their data order and split, so
    pairing removes what the seed does to both."""
    seeds = sorted(set(a) & set(b))
    if not seeds:
        return None, None, 0
    diffs = [a[s] - b[s] for s in seeds]
    gap = statistics.fmean(diffs)
    if len(diffs) < 2:
        return gap, None, 1
    return gap, t975(len(diffs) - 1) * statistics.stdev(diffs) / math.sqrt(len(diffs)), len(diffs)
