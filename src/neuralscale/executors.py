"""Executors: where a sweep's runs execute.  Every executor calls the same run
function (`sweep.execute_in_store`) against the same run store, so records are
the same whichever runs them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

from .errors import NeuralscaleError
from .runs import RunSpec

EXECUTORS = ("sequential",)


class Sequential:
    """One run after another, in this process (the default)."""

    name = "sequential"

    def run(self, specs: Sequence[RunSpec], out_dir: str | Path, *, on_done: Callable | None = None,
            progress: bool = True, log=None) -> None:
        from .sweep import execute_in_store
        for i, spec in enumerate(specs, 1):
            record = execute_in_store(spec, out_dir, progress=progress, log=log)
            if on_done:
                on_done(i, spec, record)


def get_executor(name: str, **options):
    if name == "sequential":
        return Sequential()
    raise NeuralscaleError(f"unknown executor {name!r}; choose one of: {', '.join(EXECUTORS)}")
