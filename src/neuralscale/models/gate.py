"""The gate: a per-channel multiplier fixed at 1.0 that marks a gated layer.

In ordinary training a gate is the identity and costs nothing.  A pruner turns
scoring on: the gate then multiplies by a ones vector that requires grad, so
autograd hands back dLoss/dgate per channel, which is what Taylor-FO needs.
Gates hold no parameters of their own, so they never count towards a model's
size and never reach an optimizer.
"""

from __future__ import annotations

import torch
from torch import nn


class Gate(nn.Module):
    def __init__(self, index: int, width: int):
        super().__init__()
        self.index = index  # position of this gated layer in the width space
        self.width = width
        self.ones: torch.Tensor | None = None  # set while a pruner is scoring

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.ones is None:
            return x
        shape = (1, -1) + (1,) * (x.dim() - 2)
        return x * self.ones.view(shape)

    def extra_repr(self) -> str:
        return f"index={self.index}, width={self.width}"


def gates(model: nn.Module) -> list[Gate]:
    """The model's gates in width-space order."""
    found = sorted((m for m in model.modules() if isinstance(m, Gate)), key=lambda g: g.index)
    return found
