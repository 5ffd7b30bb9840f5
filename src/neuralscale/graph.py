"""The channel graph: which tensor dimensions, and which modules, belong to which gated layer.

It is read off the width space itself, so it holds for every space alike (the
paper's hand-written families, whose structure depends on their widths, and
the generic spaces that generic.py analyses with torch.fx): the space is built
at the widths `w` and, for each gated layer in turn, at `w` plus one channel in
that layer (on the meta device, without initialising anything); every tensor
dimension that grows by one (or, for a linear layer reading a flattened map,
by one block of positions) belongs to that layer.

The pruner (scores, physical shrinking), the pruning baselines and any
importance criterion ask this one graph.  It is `exact` when removing a
layer's channels from every tensor that holds them computes exactly what
masking them does; otherwise (a residual identity carries a layer's channels
past its gate, an expansion ties one layer's width to another's, or one more
channel changes the structure) it still names each layer's producers and batch
norms, and pruning masks instead of slicing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch
from torch import nn

from .models.gate import Gate, gates
from .space import WidthSpace

Slice = tuple[int, int, int]  # (tensor dimension, gated layer, entries per channel)


@dataclass
class Layer:
    """What the graph knows of one gated layer in a live model."""

    index: int
    name: str
    width: int  # channels in the model (masked ones included)
    gates: list[Gate]  # one per producer where a layer is tied across residual sums
    producers: list[nn.Module] = field(default_factory=list)  # convolutions / linear layers making its channels
    norms: list[nn.Module] = field(default_factory=list)  # the batch norms of those channels


class ChannelGraph:
    """The channel slices of a width space at given widths (see the module docstring)."""

    def __init__(self, space: WidthSpace, widths: Sequence[int]):
        self.space = space
        self.widths = space.validate(widths)
        self.slices: dict[str, list[Slice]] = {}
        self.why_not_exact = ""
        self._probe()

    @property
    def exact(self) -> bool:
        """Slicing every tensor's channels computes exactly what masking them does."""
        return not self.why_not_exact

    def _inexact(self, why: str) -> None:
        self.why_not_exact = self.why_not_exact or why

    def _probe(self) -> None:
        if any(m != 1 for m in self.space.multiples):
            self._inexact("layers feed grouped convolutions, so widths move in steps of a group count")
        shapes = self.space.state_shapes(self.widths)
        self.slices = {k: [] for k in shapes}
        for layer in range(len(self.widths)):
            bigger = list(self.widths)
            bigger[layer] += self.space.multiples[layer]
            other = self.space.state_shapes(bigger)
            if other.keys() != shapes.keys():
                self._inexact(f"one more channel in {self.space.layer_names[layer]} changes the structure")
            for k in shapes.keys() & other.keys():
                self._compare(k, shapes[k], other[k], layer)

    def _compare(self, key: str, a_shape: tuple, b_shape: tuple, layer: int) -> None:
        w, step = self.widths[layer], self.space.multiples[layer]
        for dim, (a, b) in enumerate(zip(a_shape, b_shape)):
            if a == b:
                continue
            block = (b - a) // step
            flattened = dim == 1 and len(a_shape) == 2  # a linear layer reading a flattened map
            owned = any(d == dim for d, _, _ in self.slices[key])
            if (b - a) % step or a != block * w or (block != 1 and not flattened) or owned:
                self._inexact(f"{key} holds {self.space.layer_names[layer]}'s channels in a way slicing cannot follow")
                continue
            self.slices[key].append((dim, layer, block))

    # -- questions about a live model ------------------------------------------
    def layers(self, model: nn.Module) -> list[Layer]:
        """Every gated layer of `model` (built by this space), with its gates, producers and norms."""
        out = gate_layers(self.space, model)
        for name, module in model.named_modules():
            weight = f"{name}.weight" if name else "weight"
            for dim, layer, block in self.slices.get(weight, ()):
                if dim != 0 or block != 1:
                    continue
                if isinstance(module, (nn.Conv2d, nn.Linear)):
                    out[layer].producers.append(module)
                elif isinstance(module, nn.modules.batchnorm._BatchNorm):
                    out[layer].norms.append(module)
        return out

    def slice_state(self, state: dict[str, torch.Tensor], keep: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        """`state` with only the channels `keep` (per layer, sorted indices) of every gated layer. A tensor that keeps
        every channel is the same tensor, not a copy."""
        out = {}
        for k, t in state.items():
            for dim, layer, block in self.slices.get(k, []):
                if len(keep[layer]) * block == t.shape[dim]:  # sorted, distinct: every channel, in order
                    continue
                idx = keep[layer].to(t.device)
                if block > 1:
                    idx = (idx[:, None] * block + torch.arange(block, device=t.device)).flatten()
                t = t.index_select(dim, idx)
            out[k] = t
        return out

    @staticmethod
    def fits(state: dict[str, torch.Tensor], shapes: dict[str, tuple[int, ...]] | nn.Module) -> bool:
        """Whether `state` has exactly these shapes: a state dict's shapes (`WidthSpace.state_shapes`) or those of a
        model's state (a model built at the new widths, on meta)."""
        if isinstance(shapes, nn.Module):
            shapes = {k: tuple(v.shape) for k, v in shapes.state_dict().items()}
        return shapes.keys() == state.keys() and all(tuple(state[k].shape) == tuple(s) for k, s in shapes.items())


def gate_layers(space: WidthSpace, model: nn.Module) -> list[Layer]:
    """The gated layers of `model` with their gates only (enough for Taylor-FO; no probing needed)."""
    out = [Layer(i, n, 0, []) for i, n in enumerate(space.layer_names)]
    for g in gates(model):
        out[g.index].gates.append(g)
        out[g.index].width = g.width
    return out

