"""stats.py: t quantiles and Welch intervals."""

from __future__ import annotations

import pytest

from neuralscale.stats import t975, welch_gap


def test_statistics():
    assert t975(1) == 12.706 and t975(10) == 2.228 and t975(1000) == 1.96
    gap, ci = welch_gap([1.0, 2.0, 3.0], [0.0, 1.0, 2.0])
    assert gap == pytest.approx(1.0)
    # se = sqrt(1/3 + 1/3), df = 4 -> t = 2.776
    assert ci == pytest.approx(2.776 * (2 / 3) ** 0.5)
    assert welch_gap([1.0], [0.0, 1.0]) == (0.5, None)


def test_the_paired_gap_pairs_runs_by_seed():
    from neuralscale.stats import paired_gap
    gap, half, n = paired_gap({0: 1.0, 1: 2.0, 2: 3.0}, {0: 0.0, 1: 1.0, 2: 1.0, 3: 9.0})  # seed 3: unpaired
    assert n == 3 and gap == pytest.approx(4 / 3) and half == pytest.approx(4.303 * (1 / 3) ** 0.5 / 3 ** 0.5)
    assert paired_gap({0: 1.0}, {1: 1.0}) == (None, None, 0)
    assert paired_gap({0: 2.0}, {0: 1.0}) == (1.0, None, 1)
    # a shift shared by both methods in each seed leaves the paired interval tight where Welch's is wide
    from neuralscale.stats import welch_gap
    a, b = {s: 90 + 2 * s + 0.5 for s in range(5)}, {s: 90 + 2 * s for s in range(5)}
    assert paired_gap(a, b)[1] == pytest.approx(0.0) and welch_gap(list(a.values()), list(b.values()))[1] > 3


def test_p_values_match_students_t_at_its_quantiles():
    """At the table's 97.5% quantiles the two-sided p-value is 5%; and a few textbook values."""
    from neuralscale.stats import t975, t_pvalue
    for df in (1, 2, 4, 10, 30):
        assert t_pvalue(t975(df), df) == pytest.approx(0.05, abs=2e-4)
    assert t_pvalue(0.0, 5) == pytest.approx(1.0)
    assert t_pvalue(2.0, 10) == pytest.approx(0.07339, abs=1e-5)
    assert t_pvalue(-3.0, 4) == pytest.approx(t_pvalue(3.0, 4)) == pytest.approx(0.03994, abs=1e-5)


def test_welch_and_paired_p_values_agree_with_their_intervals():
    """A gap whose 95% interval just excludes zero has p just under 5%, and the other way round."""
    from neuralscale.stats import paired_gap, paired_p, welch_gap, welch_p
    a, b = [1.0, 2.0, 3.0, 2.5], [0.0, 1.0, 1.5, 0.5]
    gap, half = welch_gap(a, b)
    assert (abs(gap) > half) == (welch_p(a, b) < 0.05)
    x = {s: v for s, v in enumerate(a)}
    y = {s: v for s, v in enumerate([0.9, 2.05, 2.7, 2.55])}
    gap, half, n = paired_gap(x, y)
    assert n == 4 and (abs(gap) > half) == (paired_p(x, y) < 0.05)
    assert welch_p([1.0], [1.0, 2.0]) is None and paired_p({0: 1.0}, {0: 2.0}) is None


def test_holm_keeps_what_survives_the_step_down():
    from neuralscale.stats import holm
    # sorted: 0.005 <= 0.05/4, 0.01 <= 0.05/3, 0.03 > 0.05/2: the step-down stops there
    assert holm([0.01, 0.04, None, 0.03, 0.005]) == [True, False, None, False, True]
    assert holm([0.04]) == [True] and holm([]) == [] and holm([None]) == [None]
    assert holm([0.03, 0.03]) == [False, False]  # each alone would pass; two at once do not
