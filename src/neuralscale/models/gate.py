"""The gate: a per-channel multiplier fixed at 1.0 that marks a gated layer.

In ordinary training a gate is the identity and costs nothing.  A pruner turns
scoring on: the gate then multiplies by a ones vector that requires grad, so
autograd hands back dLoss/dgate per channel, which is what Taylor-FO needs.
Gates hold no parameters of their own, so they never count towards a model's
size and never reach an optimizer.

A gate that multiplies the output of an affine batch norm directly knows that
norm (`source`).  With the gate at 1 its gradient is then already in the
norm's own parameter gradients, `dLoss/dgate = gamma * dLoss/dgamma + beta *
dLoss/dbeta`, so a pruner that masks nothing can score the layer without
multiplying anything (see pruning/apply.py).
"""

from __future__ import annotations

import torch
from torch import nn


class Gate(nn.Module):
    def __init__(self, index: int, width: int, source: nn.Module | None = None):
        super().__init__()
        self.index = index  # position of this gated layer in the width space
        self.width = width
        self.ones: torch.Tensor | None = None  # set while a pruner is scoring
        if source is not None and not (type(source) in (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
                                       and source.affine):
            source = None  # a subclass may do more than normalise (timm's BatchNormAct2d applies its activation)
        object.__setattr__(self, "_source", source)  # a plain reference: not a submodule, not in the state dict

    @property
    def source(self) -> nn.Module | None:
        """The affine batch norm whose output this gate multiplies, if it is one."""
        return self._source

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.ones is None:
            return x
        shape = (1, -1) + (1,) * (x.dim() - 2)
        return x * self.ones.view(shape)

    def extra_repr(self) -> str:
        return f"index={self.index}, width={self.width}"


class SegmentGates(nn.Module):
    """The gates on a tensor whose channels are segments of several layers (a batch norm reading a concatenation,
    as in DenseNet): each gated layer's segment is masked by a gate of its own; a fixed segment (the image's
    channels) by none.  `parts` lists the segments in channel order: a Gate, or the width of a fixed segment."""

    def __init__(self, parts: list[Gate | int]):
        super().__init__()
        self.gates = nn.ModuleList([p for p in parts if isinstance(p, Gate)])
        self.fixed = [None if isinstance(p, Gate) else int(p) for p in parts]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        masks = [g.ones for g in self.gates if g.ones is not None]
        if not masks:
            return x
        gates, parts = iter(self.gates), []
        for width in self.fixed:  # a gate's width is read now: pruning changes it
            g = next(gates) if width is None else None
            part = g.ones if g is not None else None
            parts.append(part if part is not None else torch.ones(g.width if g is not None else width,
                                                                  device=masks[0].device, dtype=masks[0].dtype))
        return x * torch.cat(parts).view((1, -1) + (1,) * (x.dim() - 2))


def gates(model: nn.Module) -> list[Gate]:
    """The model's gates in width-space order."""
    found = sorted((m for m in model.modules() if isinstance(m, Gate)), key=lambda g: g.index)
    return found


def gate_widths(model: nn.Module) -> dict[int, int]:
    """The width of each gated layer of `model`, by its index (a layer tied across residual sums has a gate per
    producer, all of one width: it is one layer here)."""
    return {g.index: g.width for g in gates(model)}

