"""memory.py: this machine's memory, and the refusal of what would not fit in it."""

from __future__ import annotations

import pytest

from neuralscale import memory
from neuralscale.errors import NeuralscaleError


def test_a_need_past_its_share_of_memory_is_refused_in_one_line_and_one_at_it_is_taken(monkeypatch):
    """A mutation audit: the boundary, the sizes' unit and the remedy in the message all passed when changed (the
    tests that meet a refusal only read its last words)."""
    monkeypatch.setattr(memory, "physical_memory", lambda: 8 * 2**30)
    memory.refuse_beyond(4 * 2**30, 1 / 2, "its weights", "ask for less")  # exactly its share: taken
    with pytest.raises(NeuralscaleError) as err:
        memory.refuse_beyond(4 * 2**30 + 2**28, 1 / 2, "its weights", "ask for less")
    assert str(err.value) == "its weights take 4.2 GiB, too much for this machine's 8 GiB; ask for less"
    monkeypatch.setattr(memory, "physical_memory", lambda: None)  # a system that does not say: nothing refused
    memory.refuse_beyond(2**60, 1 / 2, "its weights", "ask for less")


def test_a_system_that_does_not_say_its_memory_has_none(monkeypatch):
    have = memory.physical_memory()
    assert have is None or have > 0
    for error in (ValueError("SC_PHYS_PAGES"), OSError(22, "Invalid argument"), AttributeError("sysconf")):
        def sysconf(name, error=error):
            raise error
        monkeypatch.setattr(memory.os, "sysconf", sysconf)
        assert memory.physical_memory() is None
