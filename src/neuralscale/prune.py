"""Iterative Taylor-FO pruning on gates, as a trainer callback.

Every mini-batch after the warm-up, the importance criterion observes the
gradients (by default Taylor-FO: `(gate * dLoss/dgate)^2` per channel, the
gate being 1, averaged over the batches since the last pruning step; see
importance.py); every `interval` batches the `k` lowest-scoring channels
across all layers are pruned (with any channel tied with the k-th), until
`fraction` of all channels are gone.  A descent sets k by `paced_k`: 10 at
full width as the original, the same share of a narrower network.  As in the
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
dimensions belong to which gated layer comes from the channel graph
(graph.py), derived once and checked against the shapes after every step.
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

import logging
import math
import time
from typing import Sequence

import torch

from .graph import ChannelGraph, Layer, gate_layers
from .importance import Importance, TaylorFO
from .models.gate import gates
from .space import WidthSpace
from .train import Callback, Trainer

log = logging.getLogger(__name__)


ORIGINAL_K = 10  # the original prunes 10 channels a step, from networks at full width


def paced_k(widths: Sequence[int], full_widths: Sequence[int], per_full: int = ORIGINAL_K) -> int:
    """Channels a pruning step takes from a network at `widths`: the original's pace relative to the network.

    The original prunes 10 channels a step from its full-width networks (0.36% of VGG11's 2,752 a step).  From a
    narrower network the same 10 would be a larger share of it (2.9% of VGG11 at 1/8 width), and pruning would end
    after a few dozen steps, too few rows to fit a law on.  So the step takes the same share of the network as the
    original's does of the full-width one: `per_full` channels per full-width network, in proportion to the
    network's channels, rounded half up, at least 1.  At full width it is exactly `per_full`.
    """
    full = sum(full_widths)
    if full <= 0:
        return per_full
    return max(1, math.floor(per_full * sum(widths) / full + 0.5))


ROWS_FROM = ("all-lost", "step")  # a trajectory starts once every layer has lost a channel, or at the first step


class TaylorPruner(Callback):
    """Prunes a trainer's model during training and records the width trajectory."""

    def __init__(self, space: WidthSpace, widths: Sequence[int], *, k: int = 10, interval: int = 50,
                 warmup_epochs: int = 10, fraction: float = 0.95, min_width: int = 1, physical: bool = True,
                 stop_at_last_channel: bool = True, importance: Importance | None = None,
                 rows_from: str = "all-lost"):
        self.space = space
        self.multiples = list(space.multiples)
        self.initial = list(space.validate(widths))
        self.k, self.interval, self.warmup_epochs = k, interval, warmup_epochs
        self.fraction, self.min_width = fraction, min_width
        self.physical = physical
        self.stop_at_last_channel = stop_at_last_channel
        if rows_from not in ROWS_FROM:
            raise ValueError(f"rows_from is one of {ROWS_FROM}, got {rows_from!r}")
        self.rows_from = rows_from
        self.importance = importance if importance is not None else TaylorFO()
        self.max_pruned = int(sum(self.initial) * fraction)  # the original's target: int(channels * fraction)
        # a layer that starts at its floor can never lose a channel: it does not hold the trajectory back
        self._floors = [max(m, -(-min_width // m) * m) for m in self.multiples]
        self.max_steps = math.ceil(self.max_pruned / k)
        self.half_target = int(sum(self.initial) * 0.5)  # MorphNet's configuration: the original's --morph run
        self.half_widths: list[int] | None = None  # the widths once half_target channels are pruned
        self.widths = list(self.initial)  # physical widths of the current model
        self.alive: list[torch.Tensor] = [torch.ones(w, dtype=torch.bool) for w in self.initial]
        self.rows: list[list[int]] = []  # trajectory: once every layer has lost a channel, or from the first step
        self.row_steps: list[int] = []
        self.all_rows: list[list[int]] = []  # after every pruning step
        self.pruning_steps = 0
        self.notes: list[str] = []
        self.exhausted = False  # every layer is at its floor: nothing more can be pruned
        self.stop_reason = ""  # why pruning ended, once it has
        self._batches = 0  # batches scored since the last step
        self._seen = 0  # batches scored since pruning began
        # the current model's gated layers (gates, producers, norms), refreshed whenever the model changes
        self._layers: list[Layer] = [Layer(i, n, w, []) for i, (n, w) in enumerate(zip(space.layer_names, widths))]
        self._graph: ChannelGraph | None = None
        self._started: float | None = None  # when this process began scoring (for the time estimate)

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
                "batches": self._batches, "seen": self._seen, "importance": self.importance.state_dict()}

    def load_state_dict(self, state: dict, trainer: Trainer) -> None:
        self.widths = list(state["widths"])
        self.alive = [a.cpu().bool() for a in state["alive"]]
        self.rows, self.row_steps, self.all_rows = state["rows"], state["row_steps"], state["all_rows"]
        self.pruning_steps, self.physical, self.notes = state["pruning_steps"], state["physical"], state["notes"]
        self.exhausted = state.get("exhausted", False)
        self.stop_reason = state.get("stop_reason", "")
        self.half_widths = state.get("half_widths")
        self._batches, self._seen = state.get("batches", 0), state.get("seen", 0)
        self.importance.load_state_dict(state.get("importance", {}))
        if self.widths != [w for _, w in sorted({g.index: g.width for g in gates(trainer.model)}.items())]:
            trainer.set_model(self.space.build(self.widths))

    # -- hooks -------------------------------------------------------------------
    def on_train_start(self, trainer: Trainer) -> None:
        self._advise(trainer)
        self.start(trainer)

    def start(self, trainer) -> None:
        """Find the layers' gates and attach the masks (a Trainer, or loop.py's view of your own loop)."""
        if self.physical or self.importance.needs_graph:  # probing costs a build per layer: only when needed
            self._graph = ChannelGraph(self.space, self.widths)
        if self.physical and not self._graph.exact:
            self._mask_from_now(f"{self.space.name}: {self._graph.why_not_exact}; pruning by masking")
        if hasattr(self.importance, "to"):
            self.importance.to(trainer.device)
        self._attach(trainer)

    def _mask_from_now(self, why: str) -> None:
        self.physical = False
        self.notes.append(why)

    def _attach(self, trainer: Trainer) -> None:
        dtype = next(trainer.model.parameters()).dtype
        self._layers = self._graph.layers(trainer.model) if self._graph else gate_layers(self.space, trainer.model)
        masks = [alive.to(trainer.device, dtype) for alive in self.alive]
        for layer in self._layers:
            for g in layer.gates:  # a layer tied across residual sums has one gate per producer
                # With nothing to mask, a gate right after an affine batch norm need not multiply: its gradient
                # is gamma * dgamma + beta * dbeta (see gate.py), which saves a pass over every activation.
                free = self.physical and g.source is not None and bool(self.alive[g.index].all()) \
                    and g.source.weight.requires_grad and g.source.bias.requires_grad
                g.ones = None if free else masks[g.index].clone().requires_grad_(True)

    def _active(self, trainer: Trainer) -> bool:
        return trainer.epoch >= self.warmup_epochs and not self.done

    def after_backward(self, trainer: Trainer) -> None:
        if not self._active(trainer):
            for layer in self._layers:  # gates are not parameters: no optimizer clears them
                for g in layer.gates:
                    if g.ones is not None:
                        g.ones.grad = None
            return
        if self._started is None:
            self._started = time.monotonic()
        self.importance.observe(self._layers)
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

    def status(self, trainer: Trainer) -> str:
        """How far pruning has come: steps, channels against the target, and a time estimate."""
        if trainer.epoch < self.warmup_epochs and not self.pruning_steps:
            return f"warm-up {trainer.epoch + 1}/{self.warmup_epochs}"
        text = (f"pruning step {self.pruning_steps}/{self.max_steps}, {self.pruned}/{self.max_pruned} channels "
                f"({self.pruned / max(self.max_pruned, 1):.0%})")
        if self.done:
            return text + f"; ended: {self.stop_reason}"
        if self._seen > 1 and self._started is not None:
            per_batch = (time.monotonic() - self._started) / self._seen
            left = per_batch * self.interval * max(self.max_steps - self.pruning_steps, 0)
            text += f", about {left / 60:.0f} min left" if left >= 60 else f", about {left:.0f} s left"
        return text

    def _advise(self, trainer: Trainer) -> None:
        """A pruning step every many epochs makes a descent slow: say so, with an interval that would not."""
        per_epoch = math.ceil(len(trainer.train_data) / trainer.config.batch_size)
        epochs = self.max_steps * self.interval / max(per_epoch, 1)
        if epochs > 100 and per_epoch < self.interval:
            suggest = max(1, per_epoch // 2)
            log.warning("with %d mini-batches per epoch, %d pruning steps every %d batches take about %.0f epochs; "
                        "--prune-interval %d would take about %.0f", per_epoch, self.max_steps, self.interval, epochs,
                        suggest, self.max_steps * suggest / per_epoch)

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
        avg = [self.importance.score(layer).float().cpu() for layer in self._layers]
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
        self.importance.reset()
        self._batches = 0
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
            self._shrink(trainer, self.current)
        row = self.current
        self.all_rows.append(row)
        if self.rows_from == "step" or all(r < i or i <= f for r, i, f in zip(row, self.initial, self._floors)):
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

    def _shrink(self, trainer: Trainer, new_widths: list[int]) -> None:
        """Rebuild the model at `new_widths` from the surviving channels (weights, statistics, momentum)."""
        keep = [torch.nonzero(a).flatten() for a in self.alive]
        model = trainer.model
        state = self._graph.slice_state(model.state_dict(), keep)
        new = self.space.build(new_widths, device="meta")  # no initialisation: every tensor comes from `state`
        if not self._graph.fits(state, new):
            # The graph derived at the old widths does not carry over: derive it afresh here.
            self._graph = ChannelGraph(self.space, self.widths)
            state = self._graph.slice_state(model.state_dict(), keep) if self._graph.exact else None
            if state is None or not self._graph.fits(state, new):
                self._mask_from_now(f"step {self.pruning_steps}: the model cannot be sliced exactly at "
                                    f"{new_widths}; masking from here on")
                return
        names = [n for n, _ in model.named_parameters()]
        opt = trainer.optimizer.state_dict()
        opt["state"] = {i: {k: (self._graph.slice_state({names[i]: v}, keep)[names[i]]
                                if torch.is_tensor(v) and v.dim() else v) for k, v in st.items()}
                        for i, st in opt["state"].items()}
        dtype = next(model.parameters()).dtype
        new.load_state_dict(state, assign=True)
        new = new.to(trainer.device, dtype)
        new.train(model.training)
        trainer.set_model(new, opt)
        self.widths = new_widths
        self.alive = [torch.ones(w, dtype=torch.bool) for w in new_widths]
