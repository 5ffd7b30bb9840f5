"""The original NeuralScale's published results and configurations (CSV, shipped as package data)."""

from __future__ import annotations

import csv
from importlib import resources


def rows(name: str) -> list[dict]:
    """Rows of `paper_results.csv` or `paper_configs.csv` as dicts of strings."""
    with resources.files(__package__).joinpath(name).open() as f:
        return list(csv.DictReader(f))
