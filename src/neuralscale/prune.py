"""Iterative Taylor-FO pruning on gates, as a trainer callback.

Every mini-batch after the warm-up, each gate's gradient gives per channel the
Taylor-FO score `(gate * dLoss/dgate)^2` (the gate is 1).  Scores are averaged
over the batches since the last pruning step; every `interval` batches the
`k` lowest-scoring channels across all layers are pruned (with any channel
tied with the k-th), until `fraction` of all channels are gone.  As in the
original, the first step comes after `interval + 1` batches, and the last step
prunes only up to the target.

When pruning stops (`stop_at_last_channel`, the original's rule, by default):
at the first step that would remove a layer's last channel.  That step is not
carried out, and the trajectory ends with the row recorded before it.  In the
original a pruned channel keeps a score of 0, below every threshold, so a
layer already pruned down to one channel counts as such: the step after a
layer reaches one channel ends pruning.  With `stop_at_last_channel=False`
(`--prune-past-one`) a layer at `min_width` is skipped and pruning goes on to
`fraction`.

Pruned channels leave the network physically where that is exactly what
masking their gate would do: the pruner rebuilds the model at the new widths
and copies the surviving weights, BN statistics and momentum.  Which tensor
dimensions belong to which gated layer is read off the width space itself, by
building it at `w` and at `w` plus one channel in a layer and comparing shapes;
the map is derived once and checked against the shapes after every step.
Where a channel is not cleanly removable, the pruner masks it instead (gate
set to 0) and says so.  This happens when a residual identity carries it past
the gate (ResNet), when widths are tied by a multiple (MobileNetV2's
expansion), or when the structure would change.  The trajectory is the same
either way.

A layer that feeds grouped convolutions (ResNeXt, RegNet) keeps a multiple of
their group count: it loses one channel in each group at a time, and is
pruned by masking.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

from .errors import NeuralscaleError
from .models.gate import gates
from .space import WidthSpace
from .train import Callback, Trainer


def channel_map(space: WidthSpace, widths: Sequence[int]) -> dict[str, list[tuple[int, int, int]]] | None:
    """For every state-dict entry, the (dim, layer, block) triples indexed by a gated layer's channels.

    `block` is how many consecutive entries of the dimension one channel owns:
    1, or H*W where a linear layer reads a flattened (channel-major) map.
    None when the model cannot be sliced exactly at these widths: one more
    channel in some layer changes the model's structure, or several layers
    share a dimension (a concatenation).
    """
    widths = list(widths)
    if any(m != 1 for m in space.multiples):
        return None  # widths move in steps of a group count; the pruner does not handle those yet
    shapes = {k: tuple(v.shape) for k, v in space.build(widths, device="meta").state_dict().items()}
    mapping: dict[str, list[tuple[int, int, int]]] = {k: [] for k in shapes}
    for layer in range(len(widths)):
        bigger = list(widths)
        bigger[layer] += 1
        other = {k: tuple(v.shape) for k, v in space.build(bigger, device="meta").state_dict().items()}
        if other.keys() != shapes.keys():
            return None
        for k, shape in shapes.items():
            for dim, (a, b) in enumerate(zip(shape, other[k])):
                if b == a:
                    continue
                block = b - a
                if block < 1 or a != block * widths[layer] or any(d == dim for d, _, _ in mapping[k]):
                    return None  # not this layer's channels alone, in blocks
                mapping[k].append((dim, layer, block))
    return mapping


def slice_state(state: dict[str, torch.Tensor], mapping: dict[str, list[tuple[int, int, int]]],
                keep: list[torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for k, t in state.items():
        for dim, layer, block in mapping.get(k, []):
            idx = keep[layer].to(t.device)
            if block > 1:
                idx = (idx[:, None] * block + torch.arange(block, device=t.device)).flatten()
            t = t.index_select(dim, idx)
        out[k] = t
    return out


class TaylorPruner(Callback):
    """Prunes a trainer's model during training and records the width trajectory."""

    def __init__(self, space: WidthSpace, widths: Sequence[int], *, k: int = 10, interval: int = 50,
                 warmup_epochs: int = 10, fraction: float = 0.95, min_width: int = 1, physical: bool = True,
                 stop_at_last_channel: bool = True):
        self.space = space
        self.multiples = list(space.multiples)
        self.initial = list(space.validate(widths))
        self.k, self.interval, self.warmup_epochs = k, interval, warmup_epochs
        self.fraction, self.min_width = fraction, min_width
        self.physical = physical
        self.stop_at_last_channel = stop_at_last_channel
        self.max_pruned = int(sum(self.initial) * fraction)  # the original's target: int(channels * fraction)
        self.max_steps = math.ceil(self.max_pruned / k)
        self.half_target = int(sum(self.initial) * 0.5)  # MorphNet's configuration: the original's --morph run
        self.half_widths: list[int] | None = None  # the widths once half_target channels are pruned
        self.widths = list(self.initial)  # physical widths of the current model
        self.alive: list[torch.Tensor] = [torch.ones(w, dtype=torch.bool) for w in self.initial]
        self.rows: list[list[int]] = []  # trajectory, once every layer has lost a channel
        self.row_steps: list[int] = []
        self.all_rows: list[list[int]] = []  # after every pruning step
        self.pruning_steps = 0
        self.notes: list[str] = []
        self.exhausted = False  # every layer is at its floor: nothing more can be pruned
        self.stop_reason = ""  # why pruning ended, once it has
        self._scores: list[torch.Tensor] | None = None  # summed since the last step
        self._batches = 0  # batches summed in _scores
        self._seen = 0  # batches scored since pruning began
        self._gates: list = []  # the current model's gates, refreshed whenever the model changes
        self._map = None
        self._trainer: Trainer | None = None

    # -- state -----------------------------------------------------------------
    @property
    def current(self) -> list[int]:
        """Unpruned channels per layer."""
        return [int(a.sum()) for a in self.alive]

    @property
    def pruned(self) -> int:
        return sum(self.initial) - sum(self.current)

    @property
    def done(self) -> bool:
        return bool(self.stop_reason) or self.exhausted or self.pruned >= self.max_pruned \
            or self.pruning_steps >= self.max_steps

    def state_dict(self) -> dict:
        return {"widths": self.widths, "alive": [a.clone() for a in self.alive], "rows": self.rows,
                "row_steps": self.row_steps, "all_rows": self.all_rows, "pruning_steps": self.pruning_steps,
                "physical": self.physical, "notes": self.notes, "exhausted": self.exhausted,
                "stop_reason": self.stop_reason, "half_widths": self.half_widths,
                "batches": self._batches, "seen": self._seen,
                "scores": None if self._scores is None else [s.detach().cpu() for s in self._scores]}

    def load_state_dict(self, state: dict, trainer: Trainer) -> None:
        self.widths = list(state["widths"])
        self.alive = [a.cpu().bool() for a in state["alive"]]
        self.rows, self.row_steps, self.all_rows = state["rows"], state["row_steps"], state["all_rows"]
        self.pruning_steps, self.physical, self.notes = state["pruning_steps"], state["physical"], state["notes"]
        self.exhausted = state.get("exhausted", False)
        self.stop_reason = state.get("stop_reason", "")
        self.half_widths = state.get("half_widths")
        self._batches, self._seen = state.get("batches", 0), state.get("seen", 0)
        scores = state.get("scores")
        self._scores = None if scores is None else [s.to(trainer.device) for s in scores]
        if self.widths != [w for _, w in sorted({g.index: g.width for g in gates(trainer.model)}.items())]:
            trainer.set_model(self.space.build(self.widths))

    # -- hooks -------------------------------------------------------------------
    def on_train_start(self, trainer: Trainer) -> None:
        self._trainer = trainer
        if self.physical:
            self._map = channel_map(self.space, self.widths)
            if any(m > 1 for m in self.multiples):
                self._mask_from_now(f"{self.space.name}: layers feeding grouped convolutions lose one channel per "
                                    "group at a time; pruning by masking")
            elif self._map is None:
                self._mask_from_now(f"{self.space.name} at these widths cannot be sliced exactly; pruning by masking")
        self._attach(trainer)

    def _mask_from_now(self, why: str) -> None:
        self.physical = False
        self._map = None
        self.notes.append(why)

    def _attach(self, trainer: Trainer) -> None:
        dtype = next(trainer.model.parameters()).dtype
        self._gates = gates(trainer.model)  # a layer tied across residual sums has one gate per producer
        masks = [alive.to(trainer.device, dtype) for alive in self.alive]
        for g in self._gates:
            # With nothing to mask, a gate right after an affine batch norm need not multiply: its gradient
            # is gamma * dgamma + beta * dbeta (see gate.py), which saves a pass over every activation.
            free = self.physical and g.source is not None and bool(self.alive[g.index].all()) \
                and g.source.weight.requires_grad and g.source.bias.requires_grad
            g.ones = None if free else masks[g.index].clone().requires_grad_(True)

    @staticmethod
    def _gate_grad(g) -> torch.Tensor | None:
        """dLoss/dgate for one gate, from the gate itself or from the batch norm it follows."""
        if g.ones is not None:
            grad, g.ones.grad = g.ones.grad, None
            return grad
        w, b = g.source.weight, g.source.bias
        if w.grad is None or b.grad is None:
            return None
        return w.detach() * w.grad + b.detach() * b.grad

    def _active(self, trainer: Trainer) -> bool:
        return trainer.epoch >= self.warmup_epochs and not self.done

    def after_backward(self, trainer: Trainer) -> None:
        if not self._active(trainer):
            for g in self._gates:  # gates are not parameters: no optimizer clears them
                if g.ones is not None:
                    g.ones.grad = None
            return
        grads = [None] * len(self.alive)
        for g in self._gates:  # a layer's score sums over its gates
            grad = self._gate_grad(g)
            if grad is None:
                continue
            d = grad.detach() ** 2
            grads[g.index] = d if grads[g.index] is None else grads[g.index] + d
        grads = [torch.zeros(len(a), device=trainer.device) if d is None else d
                 for d, a in zip(grads, self.alive)]
        self._scores = grads if self._scores is None else [s + d for s, d in zip(self._scores, grads)]
        self._batches += 1
        self._seen += 1

    def on_step_end(self, trainer: Trainer) -> None:
        # The original counts scored batches from 0 and prunes at counts interval, 2 * interval, ...: its
        # first step averages interval + 1 batches, every later one interval.
        if self._batches and (self._seen - 1) % self.interval == 0 and self._seen > 1 and self._active(trainer):
            self.prune_step(trainer)
            if self.done:
                trainer.stop = True

    def on_epoch_start(self, trainer: Trainer, epoch: int) -> None:
        if self.done:
            trainer.stop = True

    # -- pruning -----------------------------------------------------------------
    def choose(self) -> list[tuple[int, int]]:
        """The k lowest average scores across layers, as (layer, physical index), and any tied with the k-th.

        As in the original, the last step takes only what is left to reach the target.  With
        `stop_at_last_channel` nothing is skipped (`prune_step` decides whether the step may happen);
        otherwise a layer at `min_width` is passed over.

        A layer that feeds grouped convolutions (multiple m > 1) must keep equally many channels in each
        of its m groups, so it loses one channel per group at a time: a unit of m channels, the j-th
        lowest-scoring alive channel of every group, scored by their mean.  Candidates (channels and
        units) are taken cheapest first until k channels are chosen; a unit may take the step past k.
        """
        avg = [s.float().cpu() / self._batches for s in self._scores]
        candidates = []  # (score, layer, rank, [physical indices])
        for layer, (s, a, m) in enumerate(zip(avg, self.alive, self.multiples)):
            if m == 1:
                idx = torch.nonzero(a).flatten()
                candidates += [(v, layer, 0, [i]) for v, i in zip(s[idx].tolist(), idx.tolist())]
                continue
            per = len(a) // m  # physical channels per group
            groups = []
            for g in range(m):
                idx = torch.nonzero(a[g * per:(g + 1) * per]).flatten() + g * per
                groups.append(idx[torch.argsort(s[idx], stable=True)].tolist())
            alive_per_group = min(len(g) for g in groups)
            floor = max(1, -(-self.min_width // m))  # channels per group to keep
            for rank in range(alive_per_group - floor):
                unit = [g[rank] for g in groups]
                candidates.append((float(s[unit].mean()), layer, rank, unit))
        candidates.sort(key=lambda c: (c[0], c[1], c[2]))  # stable: ties go to the earlier layer and channel
        want = min(self.k, self.max_pruned - self.pruned)
        remaining = self.current
        chosen: list[tuple[int, int]] = []
        threshold = None
        for score, layer, _, unit in candidates:
            if len(chosen) >= want and not (threshold is not None and score <= threshold):
                break  # k taken, and no tie with the k-th left
            if not self.stop_at_last_channel and len(unit) == 1 and remaining[layer] <= self.min_width:
                continue
            remaining[layer] -= len(unit)
            chosen += [(layer, i) for i in unit]
            if len(chosen) >= want and threshold is None:
                threshold = score
        return chosen

    def last_channel(self, chosen: list[tuple[int, int]]) -> int | None:
        """The first layer (in layer order) that this step would empty, as the original checks it.

        Its check runs over every channel at or below the step's threshold, pruned ones included (they
        score 0), and ends pruning when a layer has one channel left: so a layer that would lose its
        last channel, and a pruned layer already down to one, both end it.
        """
        taken = [0] * len(self.alive)
        for layer, _ in chosen:
            taken[layer] += 1
        for layer, (left, start) in enumerate(zip(self.current, self.initial)):
            if (taken[layer] and taken[layer] >= left) or (left == 1 and start > 1):
                return layer
        return None

    def prune_step(self, trainer: Trainer) -> None:
        chosen = self.choose()
        self._scores, self._batches = None, 0
        if not chosen:
            self.exhausted = True
            self.stop_reason = f"every layer reached {self.min_width} channel(s) before {self.fraction:.0%} were pruned"
            self.notes.append(self.stop_reason)
            return
        self._note_half(chosen)  # before the stop rule: a run capped at half checks only its own channels
        if self.stop_at_last_channel:
            layer = self.last_channel(chosen)
            if layer is not None:
                self.stop_reason = (f"step {self.pruning_steps + 1} would remove the last channel of "
                                    f"{self.space.layer_names[layer]}; pruning ends before it (the original's rule)")
                self.notes.append(self.stop_reason)
                return
        self.pruning_steps += 1
        for layer, idx in chosen:
            self.alive[layer][idx] = False
        if self.physical and chosen:
            new_widths = self.current
            shapes = {k: tuple(v.shape) for k, v in self.space.build(new_widths, device="meta").state_dict().items()}
            if shapes.keys() != trainer.model.state_dict().keys():
                self._mask_from_now(f"step {self.pruning_steps}: the structure would change at {new_widths}; "
                                    "masking from here on")
            else:
                self._shrink(trainer, new_widths, shapes)
        row = self.current
        self.all_rows.append(row)
        if all(r < i for r, i in zip(row, self.initial)):
            self.rows.append(row)
            self.row_steps.append(self.pruning_steps)
        if self.done and not self.stop_reason:
            self.stop_reason = f"{self.pruned} of {sum(self.initial)} channels pruned ({self.fraction:.0%})"
        self._attach(trainer)

    def _note_half(self, chosen: list[tuple[int, int]]) -> None:
        """At the step that crosses half_target: the widths a run capped there (MorphNet's) would end with.

        Such a run's last step takes only the cheapest channels up to its target, so the widths are the
        current ones less the first channels of `chosen`, which come cheapest first.
        """
        before = self.pruned
        if self.half_widths is not None or before + len(chosen) < self.half_target:
            return
        capped = chosen[:self.half_target - before]
        if self.stop_at_last_channel and self.last_channel(capped) is not None:
            return  # that run would end here too, at the current widths
        widths = self.current
        for layer, _ in capped:
            widths[layer] -= 1
        self.half_widths = widths

    def _shrink(self, trainer: Trainer, new_widths: list[int], new_shapes: dict[str, tuple]) -> None:
        keep = [torch.nonzero(a).flatten() for a in self.alive]
        model = trainer.model
        names = [n for n, _ in model.named_parameters()]
        state = slice_state(model.state_dict(), self._map, keep)
        if any(tuple(state[k].shape) != shape for k, shape in new_shapes.items()):
            # The map derived at the old widths does not carry over: derive it afresh here.
            self._map = channel_map(self.space, self.widths)
            state = slice_state(model.state_dict(), self._map, keep) if self._map is not None else None
            if state is None or any(tuple(state[k].shape) != shape for k, shape in new_shapes.items()):
                self._mask_from_now(f"step {self.pruning_steps}: the model cannot be sliced exactly at "
                                    f"{new_widths}; masking from here on")
                return
        opt = trainer.optimizer.state_dict()
        opt["state"] = {i: {k: (slice_state({names[i]: v}, self._map, keep)[names[i]] if torch.is_tensor(v) and v.dim() else v)
                            for k, v in s.items()} for i, s in opt["state"].items()}
        dtype = next(model.parameters()).dtype
        new = self.space.build(new_widths, device="meta")  # no initialisation: every tensor comes from `state`
        new.load_state_dict(state, assign=True)
        new = new.to(trainer.device, dtype)
        new.train(model.training)
        trainer.set_model(new, opt)
        self.widths = new_widths
        self.alive = [torch.ones(w, dtype=torch.bool) for w in new_widths]
