"""One pruning session: the state of a network being pruned, driven by a Trainer callback (callback.py) or by a
user's own loop (loop.Pruner), which call the same methods.

With an `objective` of MACs or latency (objective.py), each layer's scores are divided by what removing one of its
channels saves at the current widths, so that channels are ranked by importance per unit of the objective.

Every mini-batch after the warm-up, the importance criterion observes the gates' gradients (by default
Taylor-FO: `(gate * dLoss/dgate)^2` per channel, the gate being 1, averaged over the batches since the last
step; see importance.py); when the schedule says a step is due, `select.choose` picks the channels, the stop rule
may end pruning before them (`select.last_channel`), and `apply` masks them or removes them physically.  As in
the original, the last step prunes only up to the target.

When pruning stops (`prune_past_one` False, the original's rule, by default): at the first step that would
remove a layer's last channel.  That step is not carried out, and the trajectory ends with the row recorded
before it.  In the original a pruned channel keeps a score of 0, below every threshold, so a layer already
pruned down to one channel counts as such: the step after a layer reaches one channel ends pruning.  With
`prune_past_one` a layer at `min_width` is skipped and pruning goes on to the fraction.

A layer that feeds grouped convolutions (ResNeXt, RegNet) keeps a multiple of their group count: it loses one
channel in each group at a time, and is pruned by masking.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

from ..graph import ChannelGraph, Layer, gate_layers
from ..importance import Importance, TaylorFO
from ..objective import Objective
from ..space import WidthSpace
from .apply import Shrunk, attach_masks, clear_gate_grads, has_gate_grads, shrink
from .schedule import Schedule
from .select import choose, half_widths, last_channel
from .trajectory import Trajectory


# how a stop_reason (and the note of it) says pruning ended before its prune fraction; records keep these words,
# and a descent's fallback advice reads them (`ended_early`)
EMPTIED = "every layer reached"
LAST_CHANNEL = "would remove the last channel"


def ended_early(said: str) -> bool:
    """Whether a stop reason or note says pruning ended before its prune fraction (a layer would have emptied)."""
    return EMPTIED in said or LAST_CHANNEL in said


@dataclass
class Step:
    """What a pruning step did: whether it pruned, and the smaller network (resized in place or rebuilt) where it
    removed channels physically (to be installed with its optimizer state, then `attach`ed)."""

    pruned: bool
    shrunk: Shrunk | None = None


class PruningSession:
    """A network being pruned: which channels are alive, the steps taken, the trajectory, and why it ended."""

    def __init__(self, space: WidthSpace, widths: Sequence[int], schedule: Schedule | None = None, *,
                 importance: Importance | None = None, physical: bool = True, objective: Objective | None = None):
        self.space, self.schedule = space, schedule or Schedule()
        self.multiples = list(space.multiples)
        self.initial = list(space.validate(widths))
        self.physical = physical
        self.importance = importance if importance is not None else TaylorFO()
        self.objective = objective  # macs / latency: scores per unit saved (objective.py); None or params: as they are
        self.max_pruned = self.schedule.target(sum(self.initial))
        self.max_steps = self.schedule.max_steps(sum(self.initial))
        self.half_target = int(sum(self.initial) * 0.5)  # MorphNet's configuration: the original's --morph run
        self.half_widths: list[int] | None = None  # the widths once half_target channels are pruned
        # a layer that starts at its floor can never lose a channel: it does not hold the trajectory back
        m = self.schedule.min_width
        self.trajectory = Trajectory(self.initial, [max(k, -(-m // k) * k) for k in self.multiples],
                                     self.schedule.trajectory_start)
        self.widths = list(self.initial)  # physical widths of the current model
        self.alive: list[torch.Tensor] = [torch.ones(w, dtype=torch.bool) for w in self.initial]
        self.pruning_steps = 0
        self.notes: list[str] = []
        self.exhausted = False  # every layer is at its floor: nothing more can be pruned
        self.stop_reason = ""  # why pruning ended, once it has
        self.batches = 0  # batches scored since the last step
        self.seen = 0  # batches scored since pruning began
        self.layers: list[Layer] = [Layer(i, n, w, []) for i, (n, w) in enumerate(zip(space.layer_names, widths))]
        self._graph: ChannelGraph | None = None
        self._started: float | None = None  # when this process began scoring (for the time estimate)
        self._seen_at_start = 0  # batches scored before then (by an earlier process, for a resumed descent)

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

    @property
    def rows(self) -> list[list[int]]:
        """The trajectory's rows (what a law is fitted on)."""
        return self.trajectory.rows

    @property
    def row_steps(self) -> list[int]:
        return self.trajectory.row_steps

    @property
    def all_rows(self) -> list[list[int]]:
        """The widths after every step."""
        return self.trajectory.all_rows

    def state_dict(self) -> dict:
        return {"widths": self.widths, "alive": [a.clone() for a in self.alive], **self.trajectory.state_dict(),
                "pruning_steps": self.pruning_steps, "physical": self.physical, "notes": self.notes,
                "exhausted": self.exhausted, "stop_reason": self.stop_reason, "half_widths": self.half_widths,
                "batches": self.batches, "seen": self.seen, "importance": self.importance.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        """Resume; the model must then be the space's network at `widths` (rebuild it where it is not)."""
        self.widths = list(state["widths"])
        self.alive = [a.cpu().bool() for a in state["alive"]]
        self.trajectory.load_state_dict(state)
        self.pruning_steps, self.physical, self.notes = state["pruning_steps"], state["physical"], state["notes"]
        self.exhausted = state.get("exhausted", False)
        self.stop_reason = state.get("stop_reason", "")
        self.half_widths = state.get("half_widths")
        self.batches, self.seen = state.get("batches", 0), state.get("seen", 0)
        self.importance.load_state_dict(state.get("importance", {}))

    # -- driving it ------------------------------------------------------------
    def start(self, model: nn.Module, device) -> None:
        """Find the layers' gates in `model` and attach the masks."""
        if self.physical or self.importance.needs_graph:  # probing costs a build per layer: only when needed
            self._graph = ChannelGraph(self.space, self.widths)
        if self.physical and not self._graph.exact:
            self._mask_from_now(f"{self.space.name}: {self._graph.why_not_exact}; pruning by masking")
        if hasattr(self.importance, "to"):
            self.importance.to(device)
        self.attach(model, device)

    def attach(self, model: nn.Module, device) -> None:
        """(Re)find the gated layers of `model` (after it was replaced) and give their gates the masks."""
        self.layers = self._graph.layers(model) if self._graph else gate_layers(self.space, model)
        attach_masks(self.layers, self.alive, self.physical, device, next(model.parameters()).dtype)

    def observe(self) -> None:
        """After a backward pass while pruning: the criterion reads the gates' gradients."""
        if self._started is None:
            self._started, self._seen_at_start = time.monotonic(), self.seen
        self.importance.observe(self.layers)
        self.batches += 1
        self.seen += 1

    def idle(self) -> None:
        """After a backward pass while not pruning (warm-up, or ended)."""
        clear_gate_grads(self.layers)

    def has_gradients(self) -> bool:
        return has_gate_grads(self.layers)

    def due(self) -> bool:
        return bool(self.batches) and self.schedule.due(self.seen) and not self.done

    def choose(self) -> list[tuple[int, int]]:
        """The channels the next step would take (see select.choose)."""
        want = min(self.schedule.k, self.max_pruned - self.pruned)
        scores = [self.importance.score(layer) for layer in self.layers]
        if self.objective is not None:
            scores = self.objective.weigh(scores, self.current)
        return choose(scores, self.alive, self.multiples, want, self.schedule.min_width, self.schedule.prune_past_one)

    def step(self, model: nn.Module, optimizer: torch.optim.Optimizer | None = None) -> Step:
        """One pruning step on `model`: choose, apply the stop rule, mask or remove, record the widths."""
        chosen = self.choose()
        self.importance.reset()
        self.batches = 0
        if not chosen:
            self.exhausted = True
            self.stop_reason = (f"{EMPTIED} {self.schedule.min_width} channel(s) before "
                                f"{self.schedule.prune_fraction:.0%} were pruned")
            self.notes.append(self.stop_reason)
            return Step(False)
        if self.half_widths is None:  # before the stop rule: a run capped at half checks only its own channels
            self.half_widths = half_widths(chosen, self.current, self.initial, self.half_target,
                                           self.schedule.prune_past_one)
        if not self.schedule.prune_past_one:
            layer = last_channel(chosen, self.current, self.initial)
            if layer is not None:
                self.stop_reason = (f"step {self.pruning_steps + 1} {LAST_CHANNEL} of "
                                    f"{self.space.layer_names[layer]}; pruning ends before it (the original's rule)")
                self.notes.append(self.stop_reason)
                return Step(False)
        self.pruning_steps += 1
        for layer, idx in chosen:
            self.alive[layer][idx] = False
        shrunk = self._shrink(model, optimizer) if self.physical else None
        self.trajectory.record(self.current, self.pruning_steps)
        if self.done and not self.stop_reason:
            self.stop_reason = (f"{self.pruned} of {sum(self.initial)} channels pruned "
                                f"({self.schedule.prune_fraction:.0%})")
        return Step(True, shrunk)

    def _shrink(self, model: nn.Module, optimizer) -> Shrunk | None:
        new_widths = self.current
        out = shrink(self.space, self._graph, model, optimizer, [torch.nonzero(a).flatten() for a in self.alive],
                     self.widths, new_widths)
        if out is None:
            self._mask_from_now(f"step {self.pruning_steps}: the model cannot be sliced exactly at {new_widths}; "
                                "masking from here on")
            return None
        self._graph = out.graph
        self.widths = new_widths
        self.alive = [torch.ones(w, dtype=torch.bool) for w in new_widths]
        return out

    def _mask_from_now(self, why: str) -> None:
        self.physical = False
        self.notes.append(why)

    def status(self, epoch: int | None = None) -> str:
        """How far pruning has come: steps, channels against the target, and a time estimate."""
        if epoch is not None and epoch < self.schedule.warmup_epochs and not self.pruning_steps:
            return f"warm-up {epoch + 1}/{self.schedule.warmup_epochs}"
        text = (f"pruning step {self.pruning_steps}/{self.max_steps}, {self.pruned}/{self.max_pruned} channels "
                f"({self.pruned / max(self.max_pruned, 1):.0%})")
        if self.done:
            return text + f"; ended: {self.stop_reason}"
        # this process's pace: a resumed descent's earlier batches took time this process did not measure
        if self._started is not None and self.seen - self._seen_at_start > 1:
            per_batch = (time.monotonic() - self._started) / (self.seen - self._seen_at_start)
            left = per_batch * self.schedule.interval * max(self.max_steps - self.pruning_steps, 0)
            text += f", about {left / 60:.0f} min left" if left >= 60 else f", about {left:.0f} s left"
        return text
