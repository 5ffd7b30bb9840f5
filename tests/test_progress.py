"""progress.py: a live bar on a terminal when asked, nothing per step elsewhere."""

from __future__ import annotations

import io
import sys

from tqdm import tqdm

from neuralscale.progress import progress_bar


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_bar_is_drawn_on_a_terminal_only_when_asked_and_left_only_when_told(monkeypatch):
    """A mutation audit: a bar drawn on a terminal though the caller asked for none (--quiet, progress=False), and
    every bar left on the screen, passed the tests (they never run on a terminal)."""
    monkeypatch.setattr(sys, "stderr", _Terminal())
    assert not isinstance(progress_bar(10, "epoch 1/2", enabled=False), tqdm)
    bar = progress_bar(10, "epoch 1/2")
    bar.close()
    kept = progress_bar(3, "sweep", leave=True)
    kept.close()
    assert isinstance(bar, tqdm) and bar.total == 10 and bar.leave is False and kept.leave is True
    assert "epoch 1/2" in sys.stderr.getvalue()
    monkeypatch.setattr(sys, "stderr", io.StringIO())  # a log file: nothing per step
    quiet = progress_bar(10, "epoch 1/2")
    quiet.update()
    quiet.update(3)
    assert not isinstance(quiet, tqdm) and quiet.n == 4 and sys.stderr.getvalue() == ""
