"""Folder layouts: the one place that names the files of a run, a run store, a report and an experiment.

A run directory (`train --out DIR`, or a store's `runs/<id>/`):

    record.json     the run record (store.RunRecord), written atomically
    metrics.csv     per-epoch metrics of a finished run
    checkpoint.pt   the trainer's checkpoint (resume point; final weights once finished)
    log.txt         the run's output, when a worker process ran it
    weights/        a pretrained run's weights trained again on this machine (a run directory of its own)

A run store (a sweep's `--out`):

    sweep.json      the store's recipe and every run planned in it
    runs/<id>/      one run directory per run; `id` is the hash of the run's configuration
    report/         the report, by default
    .lock           held by the one command using the store (records.exclusive)

A report directory: report.md, report.html, summary.json and the figures (acc_vs_params|macs|latency, widths,
heatmap, growth_iteration_NN; one file per format asked for).

An experiment directory (`[experiment] out`): descent/ (the descent directory), the run store's files, report/.

The descent directory's files are `descent.DescentDir`'s.  Modules ask these classes for paths and never spell
a file name themselves (tests/test_architecture.py checks it).
"""

from __future__ import annotations

import json
import os
import shutil
import re
from pathlib import Path
from typing import Callable

from .errors import NeuralscaleError
from .records import LOCK, is_temp, read_text  # the lock's name is records.exclusive's


def claim_folder(path: str | os.PathLike, marker: Path, what: str, force: bool = False,
                 also: Callable[[Path], bool] = lambda p: False) -> None:
    """Refuse to make `path` a neuralscale folder (`what`: "run directory", "run store", "descent directory")
    when it already holds something and not its `marker` (the file it writes first): a folder that neuralscale
    did not create, or one whose marker is gone, is never taken for a fresh one.  Its lock and the entries that
    `also` accepts (an experiment's descent beside its runs) do not count; `force` writes into it anyway."""
    path = Path(path)
    if force or not path.is_dir() or marker.exists():
        return
    held = sorted(p.name for p in path.iterdir() if p.name != LOCK and not is_temp(p.name) and not also(p))
    if held:
        names = ", ".join(held[:3]) + (f" and {len(held) - 3} more" if len(held) > 3 else "")
        raise NeuralscaleError(f"{path} is not empty ({names}) and is not a {what} (no {marker.name}); give a new "
                               f"or empty folder, or --force (force=True in Python) to write into it anyway")


class RunDir(os.PathLike):
    """One run's directory; usable wherever a path is (`Path(run_dir)`)."""

    RECORD = "record.json"

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def __fspath__(self) -> str:
        return str(self.path)

    def __str__(self) -> str:  # in messages: the path, as a Path prints
        return str(self.path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    @property
    def record(self) -> Path:
        return self.path / self.RECORD

    @property
    def checkpoint(self) -> Path:
        return self.path / "checkpoint.pt"

    @property
    def metrics(self) -> Path:
        return self.path / "metrics.csv"

    @property
    def log(self) -> Path:
        return self.path / "log.txt"

    @property
    def weights(self) -> "RunDir":
        return RunDir(self.path / "weights")

    def clear(self) -> None:
        """Remove the run this directory holds (its record, checkpoint, metrics, log and weights), for another
        run in its place (`train --force`); nothing else in the folder."""
        for f in (self.record, self.checkpoint, self.metrics, self.log):
            f.unlink(missing_ok=True)
        if self.weights.path.is_dir():
            shutil.rmtree(self.weights.path)

    @property
    def name(self) -> str:
        return self.path.name


class StoreDir:
    """A run store's folder: its plan, its run directories and its default report folder."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    @property
    def plan(self) -> Path:
        return self.path / "sweep.json"

    @property
    def runs(self) -> Path:
        return self.path / "runs"

    def run(self, run_id: str) -> RunDir:
        return RunDir(self.runs / run_id)

    @property
    def report(self) -> Path:
        return self.path / "report"

    def runs_folder(self) -> Path:
        """Where its run directories are: `runs/`, or the folder itself when it is a folder of run directories."""
        return self.runs if self.runs.is_dir() else self.path


class ReportDir:
    """A report's folder: the page in two forms, its summary and its figures."""

    PAGES = ("report.md", "report.html", "summary.json")
    FIGURES = r"acc_vs_(params|macs|latency)|widths|heatmap|growth_iteration_\d+"  # figure file stems
    FIGURE_SUFFIXES = (".png", ".svg", ".pdf")

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    @property
    def markdown(self) -> Path:
        return self.path / "report.md"

    @property
    def html(self) -> Path:
        return self.path / "report.html"

    @property
    def summary(self) -> Path:
        return self.path / "summary.json"

    HEADER = "# neuralscale report"  # report.md's first line: the report's marker

    def is_report(self) -> bool:
        """Whether this folder holds a report that neuralscale wrote (its report.md begins with HEADER, and its
        summary, if any, is one): only such a folder is rebuilt in place."""
        try:
            with open(self.markdown, encoding="utf-8") as f:
                if not f.readline().startswith(self.HEADER):
                    return False
            if self.summary.exists():
                summary = json.loads(read_text(self.summary))
                if not (isinstance(summary, dict) and "store" in summary and "rows" in summary):
                    return False
        except (OSError, UnicodeDecodeError, ValueError, RecursionError):
            return False
        return True

    @classmethod
    def belongs(cls, name: str) -> bool:
        """Whether a file of this name is part of a report (a folder of nothing else may be rebuilt)."""
        return name in cls.PAGES or name == LOCK or Path(name).suffix in cls.FIGURE_SUFFIXES or is_temp(name)

    @classmethod
    def is_figure(cls, path: Path) -> bool:
        return path.suffix in cls.FIGURE_SUFFIXES and re.fullmatch(cls.FIGURES, path.stem) is not None


def growth_figure_name(iteration: int) -> str:
    return f"growth_iteration_{iteration:02d}.png"


HEATMAP_FIGURE = "heatmap.png"
WIDTHS_FIGURE = "widths.png"


def accuracy_figure_name(axis: str) -> str:
    return f"acc_vs_{axis}.png"


class ExperimentDir(StoreDir):
    """An experiment's folder: a run store with its descent directory beside the runs."""

    @property
    def descent(self) -> Path:
        return self.path / "descent"
