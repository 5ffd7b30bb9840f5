"""The Trainer's driver of a pruning session: pruning during neuralscale's own training (what `descend` runs)."""

from __future__ import annotations

import logging
import math
from typing import Sequence

from ..importance import Importance
from ..models.gate import gate_widths
from ..objective import Objective
from ..space import WidthSpace
from ..train import Callback, Trainer
from .schedule import Schedule
from .session import PruningSession, Step

log = logging.getLogger(__name__)


class TaylorPruner(Callback):
    """Prunes a trainer's model during training (a `PruningSession`, in `.session`) and records its trajectory.

    The keyword arguments are the `Schedule`'s (k, interval, warmup_epochs, prune_fraction, min_width,
    prune_past_one, trajectory_start), named as `DescentConfig` and the command line name them; `objective` weighs the
    scores by what each channel costs (objective.py).
    """

    def __init__(self, space: WidthSpace, widths: Sequence[int], *, importance: Importance | None = None,
                 physical: bool = True, objective: Objective | None = None, **schedule):
        self.session = PruningSession(space, widths, Schedule(**schedule), importance=importance, physical=physical,
                                      objective=objective)

    @property
    def done(self) -> bool:
        return self.session.done

    def _active(self, trainer: Trainer) -> bool:
        return trainer.epoch >= self.session.schedule.warmup_epochs and not self.session.done

    # -- the trainer's hooks -----------------------------------------------------
    def on_train_start(self, trainer: Trainer) -> None:
        self._advise(trainer)
        self.session.start(trainer.model, trainer.device)

    def after_backward(self, trainer: Trainer) -> None:
        if self._active(trainer):
            self.session.observe()
        else:
            self.session.idle()

    def on_step_end(self, trainer: Trainer) -> None:
        # due() asks its cheap counters first: `done` (a pass over every layer's mask) only when a step is due
        if self.session.due() and trainer.epoch >= self.session.schedule.warmup_epochs:
            self.prune_step(trainer)
            if self.session.done:
                trainer.stop = True

    def on_epoch_start(self, trainer: Trainer, epoch: int) -> None:
        if self.session.done:
            trainer.stop = True

    def prune_step(self, trainer: Trainer) -> Step:
        """One step now: the session decides and applies; the smaller network (resized in place or rebuilt)
        is installed in the trainer with its sliced optimizer state."""
        step = self.session.step(trainer.model, trainer.optimizer)
        if step.shrunk is not None:
            trainer.set_model(step.shrunk.model, step.shrunk.optimizer_state, pruned=True)
        if step.pruned:
            self.session.attach(trainer.model, trainer.device)
        return step

    def status(self, trainer: Trainer) -> str:
        return self.session.status(trainer.epoch)

    def state_dict(self) -> dict:
        return self.session.state_dict()

    def load_state_dict(self, state: dict, trainer: Trainer) -> None:
        self.session.load_state_dict(state)
        if self.session.widths != [w for _, w in sorted(gate_widths(trainer.model).items())]:
            trainer.set_model(self.session.space.build(self.session.widths))

    def _advise(self, trainer: Trainer) -> None:
        """A pruning step every many epochs makes a descent slow: say so, with an interval that would not."""
        s, per_epoch = self.session.schedule, math.ceil(len(trainer.train_data) / trainer.config.batch_size)
        epochs = self.session.max_steps * s.interval / max(per_epoch, 1)
        if epochs > 100 and per_epoch < s.interval:
            suggest = max(1, per_epoch // 2)
            log.warning("pruning: with %d mini-batches per epoch, %d pruning steps every %d batches take about %.0f epochs; "
                        "--prune-interval %d would take about %.0f", per_epoch, self.session.max_steps, s.interval,
                        epochs, suggest, self.session.max_steps * suggest / per_epoch)
