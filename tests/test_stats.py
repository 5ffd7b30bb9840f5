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
