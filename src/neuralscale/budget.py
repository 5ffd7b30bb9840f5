"""Budgets: what a network may cost, as people state it and as records keep it.

A `Budget` is the one owner of budget spellings.  Every door (the CLI, the API,
experiment files, sweeps) parses with `Budget.parse`; run records keep
`Budget.to_dict()`; run directories are named by `slug`; reports group by
`key` and print `text`.  The solver (`scaling.solve`) takes plain numbers: a
budget is resolved against a width space first.

    Budget.parse("25%")              a share of the base model's parameters
    Budget.parse("2.8M")             2,800,000 parameters (also 150k, 1.2G, 2795410)
    Budget.parse("50%", "macs")      half the base model's MACs per image
    Budget.of_ratio(0.25)            the parameters of uniform scaling by 0.25
    Budget.parse("8", "latency")     8 ms (measured; see scaling.cost_function)

    b.resolve(space).value           the amount, with the share or ratio applied

The record's form, unchanged since the first release:
`{"metric": "params", "value": 579786, "ratio": 0.25}` (with `share` for a share).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Callable

from .errors import NeuralscaleError
from .validate import matches, plain, ratio as check_ratio

METRICS = ("params", "macs", "latency")
UNITS = {"params": "parameters", "macs": "MACs", "latency": "ms"}  # how a metric's amounts are named
SUFFIXES = {"k": 1e3, "m": 1e6, "g": 1e9}
_HELP = "a positive finite number (e.g. 2795410 or 2.8M) or a share of the base model (e.g. 25%)"


def amount(value: float, metric: str) -> str:
    """An amount of a metric as the counts beside it are written: '2,794,510 parameters', '0.52 ms'."""
    return f"{value:.4g} ms" if metric == "latency" else f"{value:,.0f} {UNITS[metric]}"


def key_order(key, amount: float | None = None) -> tuple:
    """Where a budget (its `Budget.key`) sorts among others: by metric, then by amount, a share among the amounts of
    its metric by `amount`, what it was resolved to (3% of the base latency, 0.2495 ms, before 0.3 ms); ratios by
    ratio."""
    kind, value = key
    share = kind.endswith(" share") and isinstance(amount, (int, float)) and not isinstance(amount, bool)
    return (kind.removesuffix(" share"), float(amount) if share else value)


def amount_range(low: float, high: float, metric: str) -> str:
    """'1,186-576,003 parameters', '0.05-0.52 ms'."""
    spell = "{:.4g}" if metric == "latency" else "{:,.0f}"
    return f"{spell.format(low)}-{spell.format(high)} {UNITS[metric]}"


@dataclass(frozen=True)
class Budget:
    """What a network may cost: `value` of `metric` (None until a share or ratio is resolved against a space);
    `share` of the base model's cost, or the parameters of uniform scaling by `ratio`, when stated so."""

    metric: str = "params"
    value: float | int | None = None
    share: float | None = None
    ratio: float | None = None
    stated: str | None = field(default=None, compare=False, repr=False)  # a share as typed ("12.345678%")

    def __post_init__(self):
        if self.metric not in METRICS:
            raise NeuralscaleError(f"unknown budget metric {self.metric!r}; choose one of: {', '.join(METRICS)}")
        if self.ratio is not None and self.metric != "params":
            raise NeuralscaleError("a ratio budget counts parameters")
        given = [(k, v) for k, v in (("value", self.value), ("share", self.share), ("ratio", self.ratio))
                 if v is not None]
        if not given:
            raise NeuralscaleError("a budget needs a value, a share or a ratio (Budget.parse reads '2.8M' or '25%')")
        for k, v in given:  # as Budget.parse would take them: a positive finite number
            if not matches(v, float) or v <= 0:
                raise NeuralscaleError(f"a budget's {k} must be {_HELP.split(' (')[0]}, got {v!r}")

    # --- making one -----------------------------------------------------------

    @classmethod
    def parse(cls, value, metric: str = "params", what: str | None = None) -> "Budget":
        """A budget as people state it: a number (2795410, 2.8M, 150k) or a share of the base model ("25%").
        A Budget is returned as it is (its metric must match)."""
        value = plain(value)  # (a NumPy number: the number it is)
        if isinstance(value, Budget):
            if value.metric != metric:
                raise NeuralscaleError(f"a {value.metric} budget where a {metric} budget was expected")
            return value
        what = what or ("a budget" if metric == "params" else f"a {metric} budget")
        text = value.strip().lower().replace(",", "").replace("_", "") if isinstance(value, str) else None
        try:
            if text is not None and text.endswith("%"):
                share = float(text[:-1]) / 100
                if math.isfinite(share) and share > 0:
                    return cls(metric, share=share, stated=value)
            elif text is not None:
                amount = float(text[:-1]) * SUFFIXES[text[-1]] if text[-1:] in SUFFIXES else float(text)
                if math.isfinite(amount) and amount > 0:
                    return cls(metric, value=amount)
            elif matches(value, float) and value > 0:
                return cls(metric, value=float(value))
        except (ValueError, KeyError):
            pass
        raise NeuralscaleError(f"{what} must be {_HELP}, got {value!r}")

    @classmethod
    def of_ratio(cls, ratio: float) -> "Budget":
        """The parameters of uniform scaling by `ratio` (every base width times it, truncated)."""
        check_ratio(ratio)
        return cls("params", ratio=ratio)  # as given: a ratio of 1 is recorded as 1, as it always was (run ids)

    @classmethod
    def from_dict(cls, d: dict | None) -> "Budget | None":
        """A record's budget (None for a record without one)."""
        if not d:
            return None
        return cls(d.get("metric", "params"), d.get("value"), d.get("share"), d.get("ratio"))

    @classmethod
    def from_key(cls, key) -> "Budget":
        """The budget of a `key` (a report's group: (kind, amount))."""
        if not (isinstance(key, (tuple, list)) and len(key) == 2 and isinstance(key[0], str)):
            raise NeuralscaleError(f"a budget's key is (kind, amount), as Budget.key gives, not {key!r}"[:200])
        kind, v = key
        if kind == "ratio":
            return cls.of_ratio(v)
        if kind.endswith(" share"):
            return cls(kind.removesuffix(" share"), share=v)
        return cls(kind, value=v)

    # --- using one ------------------------------------------------------------

    def resolve(self, space, cost: Callable[[list[int]], float] | None = None) -> "Budget":
        """This budget with its amount: a ratio's parameters, or a share of the base model's cost (`cost`,
        e.g. a latency measurement, for a metric the space does not count)."""
        if self.ratio is not None:
            return replace(self, value=space.params(space.uniform(self.ratio)))
        if self.share is not None:
            if cost is None and self.metric == "latency":
                raise NeuralscaleError("a latency share needs the base model's measured latency")
            base = (cost or getattr(space, self.metric))(list(space.base_widths))
            return replace(self, value=float(self.share * base))
        return self

    def amount(self, space=None, cost=None) -> float:
        """The amount this budget allows (resolved against `space` where it is a share or a ratio)."""
        value = self.value if self.value is not None else self.resolve(space, cost).value
        return float(value)

    def to_dict(self) -> dict:
        """The record's form: metric, value, and the ratio or share it was stated as."""
        d: dict = {"metric": self.metric, "value": self.value}
        if self.ratio is not None:
            d["ratio"] = self.ratio
        if self.share is not None:
            d["share"] = self.share
        return d

    @property
    def spelling(self) -> float | int | str:
        """A share as it was typed ("12.345678%"; "25%" when it was not typed), else the amount (ratios: `of_ratio`)."""
        if self.ratio is not None:
            raise NeuralscaleError(f"a ratio budget ({self.ratio:g}) is given as a ratio, not as an amount or share")
        if self.stated is not None:
            return self.stated
        return f"{100 * self.share:g}%" if self.share is not None else self.value

    @property
    def key(self) -> tuple:
        """What reports group by: the ratio, the share or the amount, with its kind."""
        if self.ratio is not None:
            return ("ratio", float(self.ratio))
        if self.share is not None:
            return (f"{self.metric} share", float(self.share))
        return (self.metric, float(self.value))

    @property
    def text(self) -> str:
        """In words: "ratio 0.25", "25% of the base params", "2,800,000 params"."""
        if self.ratio is not None:
            return f"ratio {self.ratio:g}"
        if self.share is not None:
            return f"{100 * self.share:g}% of the base {self.metric}"
        unit = "ms" if self.metric == "latency" else self.metric
        return f"{self.value:,.6g} {unit}" if self.metric == "latency" else f"{self.value:,.0f} {unit}"

    @property
    def slug(self) -> str:
        """As a run directory's name shows it: r0.25, params25pct (of the base), params2.8M, macs150k."""
        if self.ratio is not None:
            return f"r{self.ratio:g}"
        if self.share is not None:
            return f"{self.metric}{100 * self.share:.4g}pct"
        value = float(self.value)
        for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
            if value >= size:
                return f"{self.metric}{value / size:.4g}{unit}"
        return f"{self.metric}{value:.4g}"

    @property
    def words(self) -> str:
        """How a run's description names it: "ratio 0.25", "579,786 params", "4.3012 ms" (a latency), or a share as
        reports name it, with its amount: "3% of the base latency (0.2495 ms)"."""
        if self.ratio is not None:
            return f"ratio {self.ratio:g}"
        value = f"{self.value:,.6g} ms" if self.metric == "latency" else f"{self.value:,.0f} {self.metric}"
        return f"{100 * self.share:g}% of the base {self.metric} ({value})" if self.share is not None else value
