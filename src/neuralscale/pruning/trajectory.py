"""The widths after every pruning step, and the rows a scaling law is fitted on."""

from __future__ import annotations

from typing import Sequence


class Trajectory:
    """Records each step's widths (`all_rows`) and the trajectory proper (`rows`, with their step numbers).

    "all-lost" (the original's): a row is recorded once every layer has lost a channel (a layer that starts at
    its floor cannot, and does not hold the trajectory back); "per-layer": from the first step, each layer fitted
    from its own first loss (`fit_start`).
    """

    def __init__(self, initial: Sequence[int], floors: Sequence[int], start: str = "all-lost"):
        self.initial, self.floors, self.start = list(initial), list(floors), start
        self.rows: list[list[int]] = []
        self.row_steps: list[int] = []
        self.all_rows: list[list[int]] = []

    def record(self, row: list[int], step: int) -> None:
        self.all_rows.append(row)
        if self.start == "per-layer" or all(r < i or i <= f for r, i, f in zip(row, self.initial, self.floors)):
            self.rows.append(row)
            self.row_steps.append(step)

    @property
    def fit_start(self) -> list[int] | None:
        """The widths each layer's fit starts from ("per-layer"), or None (rows are fitted as they are)."""
        return self.initial if self.start == "per-layer" else None

    def state_dict(self) -> dict:
        return {"rows": self.rows, "row_steps": self.row_steps, "all_rows": self.all_rows}

    def load_state_dict(self, state: dict) -> None:
        self.rows, self.row_steps, self.all_rows = state["rows"], state["row_steps"], state["all_rows"]
