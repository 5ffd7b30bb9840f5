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
