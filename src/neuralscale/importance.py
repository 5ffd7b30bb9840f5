"""How important each channel is: one interface for every criterion.

An importance is called on one gated layer (a `graph.Layer`: its gates, the
modules producing its channels and their batch norms) and returns one score
per channel; the pruner removes the lowest.  A criterion that learns from
training (Taylor-FO) also `observe`s every mini-batch after the backward pass
while pruning is on, and forgets what it saw at `reset` (after each pruning
step).  A static criterion reads the weights when asked.

    class Random(ns.Importance):
        name = "random"
        def score(self, layer):
            return torch.rand(layer.width)

    ns.descend(space, splits, "runs/random", importance=Random())

The criteria here: `TaylorFO` (the method's, and the default), `BNScale`
(network slimming, the original's baseline criterion), `L1FilterNorm` (the sum
of a filter's absolute weights, or their mean with `per_weight`, which makes
layers of different fan-in comparable when channels are ranked across layers).
"""

from __future__ import annotations

import torch

from .errors import NeuralscaleError
from .graph import Layer


class Importance:
    """One score per channel of a layer; the lowest are pruned first."""

    name = "importance"
    needs_graph = True  # reads a layer's producers or norms (from the channel graph); False: gates are enough

    def observe(self, layers: list[Layer]) -> None:
        """After a mini-batch's backward pass, while pruning is on (gradients are in place)."""

    def score(self, layer: Layer) -> torch.Tensor:
        raise NotImplementedError

    def reset(self) -> None:
        """Forget what was observed (after a pruning step, or when the model changes)."""

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class TaylorFO(Importance):
    """Taylor-FO on gates: the squared first-order change of the loss when a channel is removed, per batch,
    averaged over batches.

    For a channel behind one gate that is (gate * dLoss/dgate)^2 with the gate at 1, the original's score.
    A channel tied across residual sums appears behind several gates (one per producer), and removing it
    removes it everywhere at once: the first-order change is the sum of its gates' gradients, so its score
    is (sum of dLoss/dgate)^2.  Summing squares instead would count each gate's share as a separate
    removal and score a group of n gates about n times higher, so tied groups would be pruned last.

    A gate that multiplies nothing (physical pruning, right after an affine batch norm) is scored from the
    norm's own gradients, gamma * dgamma + beta * dbeta, which is the same number (see models/gate.py).
    """

    name = "taylor"
    needs_graph = False

    def __init__(self):
        self.sums: list[torch.Tensor] | None = None
        self.batches = 0

    @staticmethod
    def gate_grad(g) -> torch.Tensor | None:
        """dLoss/dgate for one gate (taken, so that it does not add up over batches)."""
        if g.ones is not None:
            grad, g.ones.grad = g.ones.grad, None
            return grad
        w, b = g.source.weight, g.source.bias
        if w.grad is None or b.grad is None:
            return None
        return w.detach() * w.grad + b.detach() * b.grad

    def observe(self, layers: list[Layer]) -> None:
        per_layer = []
        for layer in layers:
            total = None
            for g in layer.gates:  # the channel's first-order change: its gates' gradients, summed
                grad = self.gate_grad(g)
                if grad is not None:
                    total = grad.detach() if total is None else total + grad.detach()
            if total is None:
                device = layer.gates[0].ones.device if layer.gates and layer.gates[0].ones is not None else "cpu"
                total = torch.zeros(layer.width, device=device)
            per_layer.append(total ** 2)
        self.sums = per_layer if self.sums is None else [s + d for s, d in zip(self.sums, per_layer)]
        self.batches += 1

    def score(self, layer: Layer) -> torch.Tensor:
        if self.sums is None or not self.batches:
            raise NeuralscaleError("Taylor-FO has observed no batch since the last pruning step")
        return self.sums[layer.index].float().cpu() / self.batches

    def reset(self) -> None:
        self.sums, self.batches = None, 0

    def state_dict(self) -> dict:
        return {"sums": None if self.sums is None else [s.detach().cpu() for s in self.sums], "batches": self.batches}

    def load_state_dict(self, state: dict) -> None:
        self.sums, self.batches = state.get("sums"), state.get("batches", 0)

    def to(self, device) -> None:
        if self.sums is not None:
            self.sums = [s.to(device) for s in self.sums]


class BNScale(Importance):
    """|gamma| of the batch norms of a layer's channels, summed (network slimming)."""

    name = "bn-scale"

    def score(self, layer: Layer) -> torch.Tensor:
        if not layer.norms:
            raise NeuralscaleError(f"layer {layer.name} has no batch norm, so its BN scale cannot score it")
        return sum(bn.weight.detach().float().abs().cpu() for bn in layer.norms)


class L1FilterNorm(Importance):
    """The L1 norm of each output filter of a layer's producers, summed; per weight (the mean) with `per_weight`."""

    def __init__(self, per_weight: bool = False):
        self.per_weight = per_weight
        self.name = "l1-per-weight" if per_weight else "l1"

    def score(self, layer: Layer) -> torch.Tensor:
        if not layer.producers:
            raise NeuralscaleError(f"layer {layer.name} has no convolution or linear layer making its channels")
        flat = [m.weight.detach().float().abs().flatten(1).cpu() for m in layer.producers]
        return sum(f.mean(1) if self.per_weight else f.sum(1) for f in flat)
