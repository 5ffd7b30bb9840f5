"""Descent pruning from your own training loop.

`descend` trains with neuralscale's trainer.  When the training loop, the
DataLoader, the augmentation or the optimizer must be your own, drive the same
pruner yourself: it scores channels from the gates' gradients after each
backward pass, prunes every `interval` steps by masking gates (your model and
optimizer stay yours: nothing is rebuilt), and writes the iteration into a
descent directory exactly as `descend` does (iteration_NN.csv, fits.json), so
`fit`, `scale`, `sweep --from` and the report read it as any other.

    import neuralscale as ns
    space = ns.space(my_model, torch.randn(1, 3, 32, 32))
    model = space.build(space.base_widths)          # your model with a gate after each width
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    pruner = ns.Pruner(space, model, "runs/my-descent")
    for epoch in range(100):
        for x, y in loader:
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if epoch >= warmup:
                pruner.step()                       # after backward (and the optimizer's step)
            if pruner.done:
                break
        if pruner.done:
            break
    laws = pruner.finish()                          # the law of this iteration, and of earlier ones
    small = laws.build(params="25%")

For the next iteration of a descent, build `laws.build()` (the law at the base
parameter count) and prune it with a new Pruner on the same directory.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from .descent import DescentConfig, DescentDir, DescentResult, Iteration, _pruning_law
from .errors import NeuralscaleError
from .importance import Importance
from .models.gate import gates
from .prune import TaylorPruner, paced_k
from .records import exclusive
from .space import WidthSpace

log = logging.getLogger(__name__)


@dataclass
class _Loop:
    """What the pruner needs to know of a training loop that is not neuralscale's Trainer."""

    model: nn.Module
    device: torch.device
    epoch: int = 0  # pruning is on from the first step() (warm-up is the loop's business)
    stop: bool = False
    history: list = field(default_factory=list)


class Pruner:
    """The descent's pruning, one `step()` per mini-batch of your own loop (see the module docstring).

    k, interval, fraction, prune_past_one and trajectory_start are `descend`'s (defaults by the space's
    family, as `DescentConfig.resolve` decides them; k by default the original's pace relative to the model's
    channels, `prune.paced_k`); `importance` scores channels (default Taylor-FO).
    """

    def __init__(self, space: WidthSpace, model: nn.Module, out_dir: str | Path, *, k: int | None = None,
                 interval: int | None = None, fraction: float = 0.95, prune_past_one: bool | None = None,
                 trajectory_start: str | None = None, importance: Importance | None = None):
        # one width per gated layer: a layer tied across residual sums has a gate per producer, all one width
        by_layer = {g.index: g.width for g in gates(model)}
        widths = [by_layer[i] for i in sorted(by_layer)]
        if len(widths) != len(space) or sorted(by_layer) != list(range(len(space))):
            raise NeuralscaleError(f"the model has {len(widths)} gated layers, {space.name} has {len(space)}: build "
                                   "it with space.build(widths)")
        self.space, self.model = space, model
        self.dir = DescentDir(out_dir)
        if k is None:
            k = paced_k(widths, space.base_widths)
        self.config = DescentConfig(k=k, interval=interval, prune_fraction=fraction, prune_past_one=prune_past_one,
                                    trajectory_start=trajectory_start, physical=False).resolve(space)
        self._loop = _Loop(model, next(model.parameters()).device)
        self._pruner = TaylorPruner(space, widths, k=k, interval=self.config.interval, warmup_epochs=0,
                                    fraction=fraction, physical=False,
                                    stop_at_last_channel=not self.config.prune_past_one, importance=importance,
                                    rows_from="step" if self.config.trajectory_start == "per-layer" else "all-lost")
        self._pruner.start(self._loop)
        self._finished: DescentResult | None = None
        with exclusive(self.dir.path, "descent directory"):  # another configuration is refused now, not at the end
            self.dir.claim(space, self.config, {"loop": "user"})

    @property
    def done(self) -> bool:
        """Pruning has ended (the target fraction, or the step that would empty a layer)."""
        return self._pruner.done

    @property
    def widths(self) -> list[int]:
        """Unmasked channels per layer, now."""
        return self._pruner.current

    @property
    def rows(self) -> list[list[int]]:
        """The trajectory so far (what iteration_NN.csv will hold)."""
        return self._pruner.rows

    def status(self) -> str:
        return self._pruner.status(self._loop)

    def step(self) -> None:
        """Call once per mini-batch after `loss.backward()`: scores the gates' gradients and, every
        `interval` calls, masks the k lowest-scoring channels and records the widths."""
        if self._finished is not None:
            raise NeuralscaleError("this pruner has finished; start a new Pruner for the next iteration")
        if self.done:
            return
        if not any(g.ones is not None and g.ones.grad is not None for layer in self._pruner._layers
                   for g in layer.gates):
            raise NeuralscaleError("no gate gradients: call pruner.step() after loss.backward(), on the model "
                                   "given to the Pruner")
        self._pruner.after_backward(self._loop)
        self._pruner.on_step_end(self._loop)

    def finish(self) -> DescentResult:
        """Fit this iteration's law and write it into the descent directory; returns every iteration's law."""
        if self._finished is not None:
            return self._finished
        if not self.done:
            raise NeuralscaleError(f"pruning has not ended ({self.status()}); keep calling step()")
        p = self._pruner
        with exclusive(self.dir.path, "descent directory"):
            self.dir.claim(self.space, self.config, {"loop": "user"})
            done = self.dir.iterations()
            number = len(done) + 1
            law = _pruning_law(self.space, p, number)
            it = Iteration(law, list(p.initial), p.current, p.half_widths or p.current, p.half_widths is not None,
                           0, p.pruning_steps, False, p.stop_reason, p.notes)
            self.dir.add(self.space, it, p.rows, p.row_steps)
        log.info("iteration %d: %d trajectory rows, %d pruning steps; %s", number, len(p.rows), p.pruning_steps,
                 p.stop_reason)
        self._finished = DescentResult([*(i.law for i in done), law], self.space, self.dir.path)
        return self._finished
