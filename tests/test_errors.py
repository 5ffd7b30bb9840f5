"""errors.py: the package's exception and warning types, and where a warning points."""

from __future__ import annotations

import warnings

import neuralscale as ns
from neuralscale.errors import EnvironmentFailure, NeuralscaleError, NeuralscaleWarning


def test_a_warning_points_at_the_users_call_and_the_types_are_what_programs_catch():
    """A mutation audit: a warning attributed to neuralscale's own line (stacklevel), a warning that is not a
    UserWarning (a program's filter of those misses it) and an environment failure that is not a NeuralscaleError
    (the CLI's one line) all passed the tests."""
    sp = ns.space("vgg11", "synthetic")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ns.scale(sp, "uniform", "400%")  # a network that costs more MACs than the base model
    (w,) = [w for w in caught if issubclass(w.category, NeuralscaleWarning)]
    assert w.filename == __file__ and "of the base model's MACs" in str(w.message)
    assert issubclass(NeuralscaleWarning, UserWarning) and issubclass(EnvironmentFailure, NeuralscaleError)


def test_first_line_is_an_exceptions_first_line_cut_or_says_there_was_none():
    from neuralscale.errors import first_line
    assert first_line(ValueError("  bad value\nat line 3  ")) == "bad value"
    assert first_line(ValueError("x" * 300)) == "x" * 200 and first_line(ValueError("abc"), limit=2) == "ab"
    assert first_line(EOFError()) == "(no message)"
