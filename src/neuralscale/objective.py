"""What a scaling law is fitted against, and what a descent prunes for: parameters, MACs or latency.

    params    the paper's: tau is the parameter count, and channels are ranked by Taylor-FO alone
    macs      tau is the MACs per image; a channel's Taylor-FO score is divided by the MACs its removal saves
    latency   tau is the estimated latency (latency.LatencyTable, measured on the chosen device); a channel's
              score is divided by the latency its removal saves

An objective gives a configuration's cost (`cost`) and, per gated layer, what removing one channel saves at
given widths (`savings`: the cost at the widths less the cost with one channel fewer in that layer, exact for
parameters and MACs, from the table's interpolation for latency).  `weigh` turns a criterion's scores into
scores per unit of the objective, which is what the pruner ranks; for `params` it leaves the scores as they
are, so that the default reproduces the paper's laws exactly.
"""

from __future__ import annotations

from typing import Sequence

import torch

from .budget import METRICS, UNITS
from .errors import NeuralscaleError
from .latency import LatencyTable
from .space import WidthSpace

OBJECTIVES = METRICS  # a law is fitted against what a budget may count


class Objective:
    """One objective over one width space (see the module docstring)."""

    def __init__(self, space: WidthSpace, name: str = "params", table: LatencyTable | None = None):
        if name not in OBJECTIVES:
            raise NeuralscaleError(f"unknown objective {name!r}; choose one of: {', '.join(OBJECTIVES)}")
        if name == "latency" and table is None:
            raise NeuralscaleError("a latency objective needs a latency table (latency.LatencyTable)")
        self.space, self.name, self.table = space, name, table

    def __repr__(self) -> str:
        return f"Objective({self.name!r}, {self.space.name})"

    @property
    def unit(self) -> str:
        return UNITS[self.name]

    @property
    def weighs(self) -> bool:
        """Whether pruning ranks channels per unit of this objective (params: the paper's unweighted ranking)."""
        return self.name != "params"

    def cost(self, widths: Sequence[int]) -> float:
        if self.name == "params":
            return self.space.params(widths)
        if self.name == "macs":
            return self.space.macs(widths)
        return self.table.estimate(self.space, widths)

    def savings(self, widths: Sequence[int]) -> list[float]:
        """Per layer, what removing one channel saves at `widths` (a layer that feeds grouped convolutions
        loses one channel per group: its saving per channel).  A layer at its last unit: the saving of its
        last unit, as one more would cost.  Where removing one costs more than it saves (the structure
        changes), the saving of the one after it."""
        widths = self.space.validate(widths)
        here = self.cost(widths)
        out = []
        for layer, m in enumerate(self.space.multiples):
            fewer = list(widths)
            if widths[layer] > m:
                fewer[layer] -= m
                saved = here - self.cost(fewer)
                if saved <= 0 and widths[layer] > 2 * m:  # a structure that changes (the paper's ResNet adds a
                    fewest = list(fewer)                    # projection shortcut once a block's widths differ):
                    fewest[layer] -= m                      # the saving of the next unit, past the jump
                    saved = self.cost(fewer) - self.cost(fewest)
                out.append(saved / m)
            else:
                fewer[layer] += m
                out.append((self.cost(fewer) - here) / m)
        return out

    def weigh(self, scores: list[torch.Tensor], widths: Sequence[int]) -> list[torch.Tensor]:
        """Scores per unit of the objective saved (unchanged for params).  A saving that is not positive (a
        latency table's noise) counts as a thousandth of the mean positive saving, so that it never makes a
        channel look free."""
        if not self.weighs:
            return scores
        saved = self.savings(widths)
        positive = [s for s in saved if s > 0]
        floor = 1e-3 * (sum(positive) / len(positive)) if positive else 1.0
        return [s / max(c, floor) for s, c in zip(scores, saved)]
