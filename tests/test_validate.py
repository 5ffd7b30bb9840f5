"""validate.py: the one check of option types and ranges, and its suggestions."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from neuralscale.errors import NeuralscaleError
from neuralscale.validate import at_least, check_data, check_types, fraction, matches, one_of, ratio, suggest


@pytest.mark.parametrize("value, tp, ok", [
    (1, int, True), (True, int, False), (1.5, float, True), (1, float, True), (float("nan"), float, False),
    ("no", bool, False), (False, bool, True), ([1, 2], list[int], True), ([1, "2"], list[int], False),
    (None, int | None, True), ("x", int | None, False), ((1, 2), tuple[int, ...], True), ({"a": 1}, dict, True)])
def test_matches_is_strict_where_python_is_lax(value, tp, ok):
    assert matches(value, tp) is ok


def test_check_types_names_the_field_and_what_it_wanted():
    @dataclass
    class Settings:
        epochs: int = 1
        lr: float = 0.1
    check_types(Settings(), "training setting")
    with pytest.raises(NeuralscaleError, match="epochs"):
        check_types(Settings(epochs="3"), "training setting")


def test_ranges_and_choices():
    at_least("epochs", 1, 1)
    with pytest.raises(NeuralscaleError, match="epochs"):
        at_least("epochs", 0, 1)
    fraction("val", 0.0)
    with pytest.raises(NeuralscaleError, match=r"\[0, 1\)"):
        fraction("val", 1.0)
    with pytest.raises(NeuralscaleError, match="width ratio"):
        ratio(0)
    with pytest.raises(NeuralscaleError, match="cosine"):
        one_of("schedule", "cosin", ("step", "cosine"))
    assert "did you mean 'cosine'" in suggest("cosin", ["step", "cosine"]) or "cosine" in suggest("cosin",
                                                                                                   ["step", "cosine"])
    assert suggest("zzzz", ["step", "cosine"]) == ""


def test_data_settings_are_checked_once():
    check_data({"train": 10, "test": None, "tinyimagenet_split": "original"})
    with pytest.raises(NeuralscaleError):
        check_data({"train": 0})
    with pytest.raises(NeuralscaleError):
        check_data({"tinyimagenet_split": "mine"})
