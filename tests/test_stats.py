"""stats.py: t quantiles and Welch intervals."""

from __future__ import annotations

import pytest

from neuralscale.stats import t975, welch_gap


# scipy.stats.t.ppf(0.975, df), for real df as Welch's are (scipy 1.17, not a dependency here)
T975 = {1: 12.706204736174694, 1.5: 6.016663104427929, 4: 2.7764451051977934, 5.7: 2.4784713087006094,
        7.04: 2.3619033855221243, 31: 2.039513446396408, 60: 2.0002978220142604, 120: 1.9799304050824402}


def test_statistics():
    for df, t in T975.items():  # exact at any df: the table it replaced took whole df and 1.96 from 31 on
        assert t975(df) == pytest.approx(t, abs=1e-9), df
    grid = [1 + 0.25 * i for i in range(400)]
    assert all(t975(a) > t975(b) for a, b in zip(grid, grid[1:])) and t975(0.5) != t975(0.5)  # nan below 1
    from neuralscale.stats import t_pvalue  # the normal's beyond a million (the beta function's x rounds to 1)
    assert t975(1e13) == t975(float("inf")) == pytest.approx(1.959964, abs=1e-6)
    assert t_pvalue(1.959964, 1e13) == pytest.approx(0.05, abs=1e-6) and t975(1e6) == pytest.approx(1.959966, abs=1e-6)
    gap, ci = welch_gap([1.0, 2.0, 3.0], [0.0, 1.0, 2.0])
    assert gap == pytest.approx(1.0)
    # se = sqrt(1/3 + 1/3), df = 4 -> t = 2.7764
    assert ci == pytest.approx(T975[4] * (2 / 3) ** 0.5)
    assert welch_gap([1.0], [0.0, 1.0]) == (0.5, None)


def test_welch_takes_its_degrees_of_freedom_as_they_are():
    """scipy.stats.ttest_ind([1, 2, 4], [2.5, 2.6, 2.7, 2.9], equal_var=False): t -0.38561, df 2.03756, p 0.73633;
    the interval is the exact quantile at that df (rounded down to 2, it was 4.303 for 4.219)."""
    from neuralscale.stats import welch_p
    a, b = [1.0, 2.0, 4.0], [2.5, 2.6, 2.7, 2.9]
    assert welch_p(a, b) == pytest.approx(0.7363298036610992, abs=1e-9)
    gap, half = welch_gap(a, b)
    se = gap / -0.3856102534693758
    assert half == pytest.approx(t975(2.037556393180087) * se, rel=1e-9) and 4.2 < half / se < 4.25


def test_seeds_that_do_not_vary_give_no_interval_and_no_test():
    """Two seeds a side at 88.00 against 88.01: an interval of zero width and p = 0 called the gap certain; there
    is nothing to test. The same for differences equal up to their subtraction's rounding."""
    from neuralscale.stats import holm, paired_gap, paired_p, welch_p
    assert welch_gap([88.0, 88.0], [88.01, 88.01])[1] is None and welch_p([88.0, 88.0], [88.01, 88.01]) is None
    a, b = {0: 88.0, 1: 88.0}, {0: 88.01, 1: 88.01}
    assert paired_gap(a, b)[1:] == (None, 2) and paired_p(a, b) is None
    a, b = {0: 88.03, 1: 90.13, 2: 89.2}, {0: 88.02, 1: 90.12, 2: 89.19}  # 0.01 each, as floats subtract
    assert paired_gap(a, b)[1] is None and paired_p(a, b) is None
    assert holm([float("nan"), 0.001]) == [False, True]  # a NaN p is counted in the family and never holds
    assert holm([0.03, float("nan")]) == [False, False]  # (0.03 would hold in a family of one)


def test_the_paired_gap_pairs_runs_by_seed():
    from neuralscale.stats import paired_gap
    gap, half, n = paired_gap({0: 1.0, 1: 2.0, 2: 3.0}, {0: 0.0, 1: 1.0, 2: 1.0, 3: 9.0})  # seed 3: unpaired
    assert n == 3 and gap == pytest.approx(4 / 3) and half == pytest.approx(4.30265 * (1 / 3) ** 0.5 / 3 ** 0.5)
    assert paired_gap({0: 1.0}, {1: 1.0}) == (None, None, 0)
    assert paired_gap({0: 2.0}, {0: 1.0}) == (1.0, None, 1)
    # a shift shared by both methods in each seed leaves the paired interval tight where Welch's is wide
    from neuralscale.stats import welch_gap
    a, b = {s: 90 + 2 * s + 0.5 for s in range(5)}, {s: 90 + 2 * s for s in range(5)}
    assert paired_gap(a, b)[1] is None and welch_gap(list(a.values()), list(b.values()))[1] > 3  # no spread left


def test_p_values_match_students_t_at_its_quantiles():
    """At the table's 97.5% quantiles the two-sided p-value is 5%; and a few textbook values."""
    from neuralscale.stats import t975, t_pvalue
    for df in (1, 2, 4, 10, 30):
        assert t_pvalue(t975(df), df) == pytest.approx(0.05, abs=1e-9)
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


def test_paired_p_values_and_intervals_are_students_at_n_minus_one_degrees_of_freedom():
    """Differences 1, 2, 4 over three seeds: t = sqrt(7) on 2 degrees of freedom, whose two-sided p-value has a
    closed form, 1 - t / sqrt(2 + t^2) = 1 - sqrt(7) / 3; the interval is t975(2) times the standard error."""
    from neuralscale.stats import paired_gap, paired_p
    a, b = {0: 1.0, 1: 2.0, 2: 4.0, 5: 3.0}, {0: 0.0, 1: 0.0, 2: 0.0, 7: 1.0}
    assert paired_p(a, b) == pytest.approx(1 - 7 ** 0.5 / 3, abs=1e-9)
    assert paired_gap(a, b) == pytest.approx((7 / 3, 4.302652729911275 * 7 ** 0.5 / 3, 3), abs=1e-9)


def test_differences_below_a_billionth_of_a_percent_point_do_not_vary():
    """The noise floor of a paired comparison is 1e-9 of the accuracies' scale, and that scale is at least 1:
    differences of 1e-10 that differ in the tenth decimal are rounding, while ones of 1e-8 vary."""
    from neuralscale.stats import paired_gap, paired_p
    zero = {0: 0.0, 1: 0.0, 2: 0.0}
    tiny = {0: 1e-10, 1: 3e-10, 2: 2e-10}
    assert paired_gap(tiny, zero)[1:] == (None, 3) and paired_p(tiny, zero) is None
    small = {0: 0.0, 1: 1e-8, 2: 2e-8}
    assert paired_gap(small, zero)[1] > 0 and paired_p(small, zero) is not None


def test_p_values_beyond_a_million_degrees_of_freedom_are_the_normals_two_sided_ones():
    from neuralscale.stats import t_pvalue
    for df in (1e8, 1e13):
        assert t_pvalue(-3.0, df) == pytest.approx(t_pvalue(3.0, df)) == pytest.approx(0.0026997961, abs=1e-8)
    # below a million the t quantile (1.96020 at 10,000: z + (z^3 + z) / 4df), not the normal's 1.95996
    assert t975(1e4) == pytest.approx(1.96020, abs=1e-5) and t975(float("nan")) != t975(float("nan"))


def test_holm_keeps_a_p_value_equal_to_its_threshold():
    from neuralscale.stats import holm
    assert holm([0.05]) == [True] and holm([0.05, 0.025]) == [True, True] and holm([0.05, 0.026]) == [False, False]
