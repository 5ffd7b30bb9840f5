"""Statistics over seeds: Student's t quantiles, the Welch confidence interval of a gap between means, the paired
one (by seed) of a gap between runs that share their seeds, their two-sided p-values, and Holm's correction for a
table that makes several comparisons at once."""

from __future__ import annotations

import functools
import math
import statistics


@functools.lru_cache(maxsize=4096)
def t975(df: float) -> float:
    """The two-sided 95% quantile of Student's t with `df` degrees of freedom, any real df >= 1 (Welch's are not
    whole): t_pvalue inverted by bisection to 1e-12 (12.706 at 1, 2.776 at 4, 2.040 at 31, 1.980 at 120)."""
    if not df >= 1:
        return float("nan")
    if df > 1e6:  # the normal quantile there, within 2e-6 (t_pvalue's beta function loses precision beyond)
        return 1.959963984540054
    lo, hi = 0.0, 20.0  # t_pvalue(20, 1) = 0.032 < 0.05: the quantile lies below 20 at every df >= 1
    while hi - lo > 1e-12:
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if t_pvalue(mid, df) > 0.05 else (lo, mid)
    return (lo + hi) / 2


def _welch_df(va: float, vb: float, na: int, nb: int) -> float:
    """Welch-Satterthwaite degrees of freedom of two means' variances `va`, `vb` (not both 0)."""
    return (va + vb) ** 2 / ((va ** 2 / (na - 1) if va else 0) + (vb ** 2 / (nb - 1) if vb else 0))


def welch_gap(a: list[float], b: list[float]) -> tuple[float, float | None]:
    """mean(a) - mean(b) and the half-width of its 95% confidence interval (Welch), None with under 2 of either or
    where neither side varies (no spread across seeds: no interval, rather than a certain one)."""
    gap = statistics.fmean(a) - statistics.fmean(b)
    if len(a) < 2 or len(b) < 2:
        return gap, None
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    se = math.sqrt(va + vb)
    if se == 0:
        return gap, None
    return gap, t975(_welch_df(va, vb, len(a), len(b))) * se


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
    if len(diffs) < 2 or _no_spread(diffs):
        return gap, None, len(diffs)
    return gap, t975(len(diffs) - 1) * statistics.stdev(diffs) / math.sqrt(len(diffs)), len(diffs)


def _no_spread(diffs: list[float]) -> bool:
    """Whether differences are all one value, up to the rounding of their subtraction (1e-9 of the accuracies'
    scale): their t would be rounding noise over rounding noise."""
    return statistics.stdev(diffs) <= 1e-9 * max(1.0, max(abs(d) for d in diffs))


def _betacf(a: float, b: float, x: float) -> float:
    """The continued fraction of the regularized incomplete beta function (Lentz's method)."""
    tiny, qab, qap, qam = 1e-300, a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        for aa in (m * (b - m) * x / ((qam + m2) * (a + m2)), -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1.0 + aa * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + aa / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-14:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_pvalue(t: float, df: float) -> float:
    """Two-sided p-value of Student's t with `df` degrees of freedom."""
    if math.isinf(t):
        return 0.0
    if df > 1e6:  # the normal's, within 1e-6: df / (df + t^2) rounds too close to 1 for the beta function
        return math.erfc(abs(t) / math.sqrt(2.0))
    return betainc(df / 2.0, 0.5, df / (df + t * t))


def welch_p(a: list[float], b: list[float]) -> float | None:
    """Two-sided p-value of Welch's t-test of mean(a) = mean(b); None with under 2 of either."""
    if len(a) < 2 or len(b) < 2:
        return None
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    gap = statistics.fmean(a) - statistics.fmean(b)
    if va + vb == 0:  # no spread: no test (as welch_gap gives no interval)
        return None
    # the exact Welch-Satterthwaite degrees of freedom, as welch_gap's interval takes them: the two agree
    return t_pvalue(gap / math.sqrt(va + vb), _welch_df(va, vb, len(a), len(b)))


def paired_p(a: dict, b: dict) -> float | None:
    """Two-sided p-value of the paired t-test over the seeds both have; None with under 2, or where the
    differences do not vary (paired_gap gives no interval there either)."""
    diffs = [a[s] - b[s] for s in sorted(set(a) & set(b))]
    if len(diffs) < 2 or _no_spread(diffs):
        return None
    sd = statistics.stdev(diffs)
    return t_pvalue(statistics.fmean(diffs) / (sd / math.sqrt(len(diffs))), len(diffs) - 1)


def holm(pvalues: list[float | None], alpha: float = 0.05) -> list[bool | None]:
    """Holm's step-down correction: which of the comparisons (None: not made) hold at family-wise level `alpha`."""
    made = sorted((p, i) for i, p in enumerate(pvalues) if p is not None and not math.isnan(p))
    made += [(math.inf, i) for i, p in enumerate(pvalues) if p is not None and math.isnan(p)]  # counted, never holds
    out: list[bool | None] = [None if p is None else False for p in pvalues]
    for rank, (p, i) in enumerate(made):
        if p > alpha / (len(made) - rank):
            break
        out[i] = True
    return out
