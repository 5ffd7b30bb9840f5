"""When a pruning session prunes and how much: the schedule, the stop rule and where its rows start.

The original prunes k = 10 channels every `interval` = 50 mini-batches after `warmup_epochs` = 10, until
`prune_fraction` = 95% of the channels are gone, and stops at the first step that would empty a layer; its
trajectory (what a law is fitted on) starts once every layer has lost a channel.  A descent sets k by `paced_k`:
10 at full width as the original (fewer for a small network of one's own: `full_width_k`), the same share of a
narrower network.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

ORIGINAL_K = 10  # the original prunes 10 channels a step, from networks at full width
STEPS_AT_LEAST = 64  # a network of one's own this many times k channels or fewer: k scaled down (full_width_k)
TRAJECTORY_STARTS = ("all-lost", "per-layer")  # rows once every layer has lost a channel, or from the first step


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


def full_width_k(full_widths: Sequence[int], paper: bool) -> int:
    """Channels a step takes from a network at its full width: the original's 10 for the paper's three families;
    for any other network, 10 where it has 64 x 10 channels or more, else one per 64 of its channels (at least
    1), so that pruning 95% of it takes about 60 steps or more, one a channel under 64 channels (a network of 40
    channels was pruned in 4 steps: 4 rows, too few for a law). Every network the original pruned has thousands
    of channels."""
    if paper:
        return ORIGINAL_K
    return min(ORIGINAL_K, max(1, sum(full_widths) // STEPS_AT_LEAST))


@dataclass(frozen=True)
class Schedule:
    """A pruning session's rules, named as `DescentConfig` and the command line name them.

    k channels every `interval` scored mini-batches after `warmup_epochs`, until `prune_fraction` of the channels
    are gone; `prune_past_one` False: end at the first step that would empty a layer (the original's rule), True:
    skip a layer at `min_width` and go on; `trajectory_start`: "all-lost" (rows once every layer has lost a
    channel, the original's) or "per-layer" (rows from the first step; each layer fitted from its own first loss).
    """

    k: int = ORIGINAL_K
    interval: int = 50
    warmup_epochs: int = 10
    prune_fraction: float = 0.95
    min_width: int = 1
    prune_past_one: bool = False
    trajectory_start: str = "all-lost"

    def __post_init__(self):
        if self.trajectory_start not in TRAJECTORY_STARTS:
            raise ValueError(f"trajectory_start is one of {TRAJECTORY_STARTS}, got {self.trajectory_start!r}")
        if self.k < 1 or self.interval < 1 or self.min_width < 1 or not 0 < self.prune_fraction <= 1:
            raise ValueError(f"a pruning schedule needs k, interval, min_width >= 1 and a fraction in (0, 1]: {self}")

    def target(self, channels: int) -> int:
        """Channels to prune from a network of `channels`: the original's int(channels * fraction)."""
        return int(channels * self.prune_fraction)

    def max_steps(self, channels: int) -> int:
        return math.ceil(self.target(channels) / self.k)

    def due(self, seen: int) -> bool:
        """Whether a step comes after `seen` scored batches.  The original counts scored batches from 0 and prunes
        at counts interval, 2 * interval, ...: its first step averages interval + 1 batches, every later one
        interval."""
        return seen > 1 and (seen - 1) % self.interval == 0

    def epochs(self, channels: int, images: int, batch_size: int) -> int:
        """Epochs enough for the warm-up and the most steps the fraction allows, with one to spare."""
        per_epoch = max(1, images // batch_size)  # full batches only: never fewer epochs than needed
        return self.warmup_epochs + math.ceil((self.max_steps(channels) * self.interval + 1) / per_epoch) + 1
