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
parameter count) and prune it with a new Pruner on the same directory (it takes the descent's k).
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

from torch import nn

from .descent import (DescentConfig, DescentDir, DescentResult, Iteration, default_k, importance_name, pruning_law,
                      start_widths)
from .errors import NeuralscaleError, warn
from .importance import Importance
from .logs import for_api
from .models.gate import gate_widths
from .pruning import PruningSession, Schedule
from .records import exclusive
from .space import WidthSpace
from .validate import check_flags, check_paths, expand

log = logging.getLogger(__name__)


class Pruner:
    """The descent's pruning, one `step()` per mini-batch of your own loop (see the module docstring).

    k, interval, prune_fraction, prune_past_one and trajectory_start are `descend`'s (defaults by the space's
    family, as `DescentConfig.resolve` decides them; k by default the original's pace relative to the model's
    channels, `pruning.paced_k`, fewer for a small one: `pruning.full_width_k`); `importance` scores channels
    (default Taylor-FO); `objective` (params, macs, latency) is `descend`'s: what each channel's score is weighed
    by and the law is fitted against.  The network is pruned by masking its gates: your model and optimizer stay
    yours.  `progress`: its lines (the iteration it makes, its end)
    on stderr, as `descend`'s; a next iteration that does not start from the last law (`laws.build()`) is warned of.
    """

    def __init__(self, space: WidthSpace, model: nn.Module, out_dir: str | Path, *, k: int | None = None,
                 interval: int | None = None, prune_fraction: float = 0.95, prune_past_one: bool | None = None,
                 trajectory_start: str | None = None, importance: Importance | None = None,
                 objective: str = "params", progress: bool = True):
        for_api(progress)  # its lines (the iteration it prunes, its end) on stderr, as descend's
        for name, value, kind, words in (("space", space, WidthSpace, "a WidthSpace (ns.space(...))"),
                                         ("model", model, nn.Module, "an nn.Module (space.build(widths))")):
            if not isinstance(value, kind):  # not an AttributeError from inside
                raise NeuralscaleError(f"Pruner: {name} must be {words}, not {type(value).__name__}")
        check_paths("Pruner", {"out_dir": out_dir}, optional=False)
        check_flags("Pruner", {"progress": progress, **({} if prune_past_one is None else
                                                          {"prune_past_one": prune_past_one})})
        out_dir = expand(out_dir)
        if importance is not None and not isinstance(importance, Importance):
            raise NeuralscaleError(f"Pruner: importance must be an Importance (such as ns.TaylorFO()), not "
                                   f"{importance!r}"[:200])
        by_layer = gate_widths(model)
        widths = [by_layer[i] for i in sorted(by_layer)]
        if sorted(by_layer) != list(range(len(space))):
            raise NeuralscaleError(f"the model has {len(by_layer)} gated layers, {space.name} has {len(space)}: "
                                   "build it with space.build(widths)")
        self.space, self.model = space, model
        self.dir = DescentDir(out_dir)
        if k is None:  # the descent's own where it has begun (a next iteration's model is another size: its paced k
            # differed, and the directory refused "another configuration"), else the original's pace for this model
            recorded = ((self.dir.config() or {}).get("descent") or {}).get("k")
            k = recorded if type(recorded) is int and recorded >= 1 else default_k(space, widths)
        self.config = DescentConfig(k=k, interval=interval, prune_fraction=prune_fraction,
                                    prune_past_one=prune_past_one, trajectory_start=trajectory_start,
                                    physical=False, objective=objective).resolve(space)
        weigh = self.config.objective_for(space, self.dir) if objective != "params" else None
        # pruning is on from the first step() (warm-up is the loop's business)
        schedule = Schedule(**{**self.config.schedule_fields(), "warmup_epochs": 0})
        self.session = PruningSession(space, widths, schedule, importance=importance, physical=False,
                                      objective=weigh)
        self.session.start(model, next(model.parameters()).device)
        self._finished: DescentResult | None = None
        self.dir.refuse_foreign()  # before the lock: a refused folder gets no .lock
        with exclusive(self.dir.path, "descent directory"):  # another configuration is refused now, not at the end
            self.dir.claim(space, self.config, {"loop": "user"}, importance=importance_name(importance))
            done = self.dir.iterations()
        self._check_start(widths, done, weigh)

    def _check_start(self, widths: list[int], done: list[Iteration], objective) -> None:
        """Say which iteration this pruner makes, and warn where it does not start where a descent's next
        iteration starts (the last law at the base model's size: `laws.build()`)."""
        log.info("pruner: iteration %d of %s, from widths %s", len(done) + 1, self.dir.path,
                 ",".join(map(str, widths)))
        if not done:
            return
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the law's own notes (extrapolation) are not this warning's point
            expected = start_widths(self.space, done, self.config, objective)
        if widths != expected:
            warn(f"iteration {len(done) + 1} of {self.dir.path} starts from widths {','.join(map(str, widths))}, "
                 f"not from iteration {len(done)}'s law at the base model's size "
                 f"({','.join(map(str, expected))}: laws.build() gives that network); a descent's iterations each "
                 "start from the last law")

    @property
    def done(self) -> bool:
        """Pruning has ended (the target fraction, or the step that would empty a layer)."""
        return self.session.done

    @property
    def widths(self) -> list[int]:
        """Unmasked channels per layer, now."""
        return self.session.current

    @property
    def rows(self) -> list[list[int]]:
        """The trajectory so far (what iteration_NN.csv will hold)."""
        return self.session.rows

    def status(self) -> str:
        return self.session.status()

    def step(self) -> None:
        """Call once per mini-batch after `loss.backward()`: scores the gates' gradients and, every
        `interval` calls, masks the k lowest-scoring channels and records the widths."""
        if self._finished is not None:
            raise NeuralscaleError("this pruner has finished; start a new Pruner for the next iteration")
        if self.done:
            return
        if not self.session.has_gradients():
            raise NeuralscaleError("no gate gradients: call pruner.step() after loss.backward(), on the model "
                                   "given to the Pruner")
        self.session.observe()
        if self.session.due() and self.session.step(self.model).pruned:
            self.session.attach(self.model, next(self.model.parameters()).device)

    def finish(self) -> DescentResult:
        """Fit this iteration's law and write it into the descent directory; returns every iteration's law."""
        if self._finished is not None:
            return self._finished
        if not self.done:
            raise NeuralscaleError(f"pruning has not ended ({self.status()}); keep calling step()")
        p = self.session
        with exclusive(self.dir.path, "descent directory"):
            self.dir.claim(self.space, self.config, {"loop": "user"},
                           importance=importance_name(self.session.importance))
            done = self.dir.iterations()
            number = len(done) + 1
            law = pruning_law(self.space, p, number)
            it = Iteration(law, list(p.initial), p.current, p.half_widths or p.current, p.half_widths is not None,
                           0, p.pruning_steps, False, p.stop_reason, p.notes)
            self.dir.add(self.space, it, p.rows, p.trajectory.row_steps)
        log.info("iteration %d: %d trajectory rows, %d pruning steps; %s", number, len(p.rows), p.pruning_steps,
                 p.stop_reason)
        self._finished = DescentResult([*(i.law for i in done), law], self.space, self.dir.path,
                                       objective=self.config.objective_for(self.space, self.dir))
        return self._finished
