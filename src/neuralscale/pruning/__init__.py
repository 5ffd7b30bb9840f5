"""Pruning during training, split as Torch-Pruning splits it: deciding apart from applying.

    schedule.py    when and how much: `Schedule` (k, interval, warm-up, fraction, stop rule, where rows start),
                   `paced_k` (the original's pace relative to the network)
    select.py      which channels, given scores and widths (pure): `choose`, the last-channel rule, MorphNet's
                   half point
    apply.py       carrying it out on the channel graph: gate masks, physical removal with the optimizer state
    trajectory.py  the widths after every step, and the rows a law is fitted on
    session.py     `PruningSession`: one network being pruned, the state the two drivers share
    callback.py    `TaylorPruner`: the session driven by neuralscale's Trainer (`descend`); `loop.Pruner` drives
                   the same session from a user's own training loop
"""

from .callback import TaylorPruner
from .schedule import ORIGINAL_K, TRAJECTORY_STARTS, Schedule, full_width_k, paced_k
from .session import PruningSession, Step, ended_early

__all__ = ["TaylorPruner", "ORIGINAL_K", "TRAJECTORY_STARTS", "Schedule", "full_width_k", "paced_k", "PruningSession",
           "Step", "ended_early"]
