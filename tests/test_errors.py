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
    assert first_line(EOFError()) == "(no message)" and first_line(EOFError(), empty="EOFError") == "EOFError"
    assert first_line(ValueError("y" * 300), limit=None) == "y" * 300
    assert first_line(ValueError("\n\n  second line first  \nthird")) == "second line first"


def test_an_exception_without_a_message_is_still_one_clear_line(monkeypatch, caplog):
    """`str(e).splitlines()[0]`, written out where an exception became one line, raised IndexError for an exception
    without a message (RuntimeError(), ConnectionError()): a descent's time estimate that failed so, or a family's
    MAC count, ended in a traceback instead of its warning or one line. Each now says the exception's type."""
    import logging
    from types import SimpleNamespace

    import pytest
    from neuralscale import descent, zoo
    from neuralscale.descent import DescentConfig

    def fails(*args, **kwargs):
        raise RuntimeError()
    monkeypatch.setattr(descent, "training_rate", fails)
    session = SimpleNamespace(max_steps=1000, schedule=SimpleNamespace(interval=50))
    sp = ns.space("vgg11", "synthetic")
    with caplog.at_level(logging.WARNING, logger="neuralscale"):
        descent._say_how_long(sp, list(sp.base_widths), DescentConfig(warmup_epochs=10, batch_size=128), session,
                              50_000, 1, "cpu")
    assert "descent: no time estimate (RuntimeError)" in caplog.text
    monkeypatch.setattr(type(sp), "macs", fails)
    with pytest.raises(NeuralscaleError, match=r"too small for vgg11 \(RuntimeError\)$"):
        ns.space("vgg11", "synthetic")
