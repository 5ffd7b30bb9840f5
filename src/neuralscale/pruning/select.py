"""Which channels a pruning step takes, given their scores and the widths: pure functions, nothing applied.

`choose` takes the k lowest average scores across layers (and any tied with the k-th); `last_channel` is the
original's stop rule; `half_widths` is MorphNet's configuration, the widths once half the channels are gone.
"""

from __future__ import annotations

from typing import Sequence

import torch

Choice = tuple[int, int]  # (layer, physical channel index)


def choose(scores: Sequence[torch.Tensor], alive: Sequence[torch.Tensor], multiples: Sequence[int], want: int,
           min_width: int = 1, prune_past_one: bool = False) -> list[Choice]:
    """The `want` lowest average scores across layers, as (layer, physical index), and any tied with the last.

    With `prune_past_one` False (the original's rule) nothing is skipped (`last_channel` decides whether the step
    may happen); otherwise a layer at `min_width` is passed over.

    A layer that feeds grouped convolutions (multiple m > 1) must keep equally many channels in each of its m
    groups, so it loses one channel per group at a time: a unit of m channels, the j-th lowest-scoring alive
    channel of every group, scored by their mean.  Candidates (channels and units) are taken cheapest first until
    `want` channels are chosen; a unit may take the step past it.
    """
    candidates = []  # (score, layer, rank, [physical indices])
    for layer, (s, a, m) in enumerate(zip(scores, alive, multiples)):
        s = s.float().cpu()
        if m == 1:
            idx = torch.nonzero(a).flatten()
            candidates += [(v, layer, 0, [i]) for v, i in zip(s[idx].tolist(), idx.tolist())]
            continue
        per = len(a) // m  # physical channels per group
        groups = []
        for g in range(m):
            idx = torch.nonzero(a[g * per:(g + 1) * per]).flatten() + g * per
            groups.append(idx[torch.argsort(s[idx], stable=True)].tolist())
        floor = max(1, -(-min_width // m))  # channels per group to keep
        for rank in range(min(len(g) for g in groups) - floor):
            unit = [g[rank] for g in groups]
            candidates.append((float(s[unit].mean()), layer, rank, unit))
    candidates.sort(key=lambda c: (c[0], c[1], c[2]))  # stable: ties go to the earlier layer and channel
    remaining = [int(a.sum()) for a in alive]
    chosen: list[Choice] = []
    threshold = None
    for score, layer, _, unit in candidates:
        if len(chosen) >= want and not (threshold is not None and score <= threshold):
            break  # enough taken, and no tie with the last one left
        if prune_past_one and len(unit) == 1 and remaining[layer] <= min_width:
            continue
        remaining[layer] -= len(unit)
        chosen += [(layer, i) for i in unit]
        if len(chosen) >= want and threshold is None:
            threshold = score
    return chosen


def last_channel(chosen: Sequence[Choice], current: Sequence[int], initial: Sequence[int]) -> int | None:
    """The first layer (in layer order) that this step would empty, as the original checks it.

    Its check runs over every channel at or below the step's threshold, pruned ones included (they score 0), and
    ends pruning when a layer has one channel left: so a layer that would lose its last channel, and a pruned
    layer already down to one, both end it.
    """
    taken = [0] * len(current)
    for layer, _ in chosen:
        taken[layer] += 1
    for layer, (left, start) in enumerate(zip(current, initial)):
        if (taken[layer] and taken[layer] >= left) or (left == 1 and start > 1):
            return layer
    return None


def half_widths(chosen: Sequence[Choice], current: Sequence[int], initial: Sequence[int], half_target: int,
                prune_past_one: bool = False) -> list[int] | None:
    """At the step that crosses `half_target` pruned channels: the widths a run capped there (MorphNet's, the
    original's `--morph` run) would end with; None before that step.

    Such a run's last step takes only the cheapest channels up to its target, so the widths are the current ones
    less the first channels of `chosen`, which come cheapest first.  Under the original's stop rule, a capped run
    that would end at this step ends at the current widths, as this one does: None (nothing was reached).
    """
    before = sum(initial) - sum(current)
    if before + len(chosen) < half_target:
        return None
    capped = list(chosen[:half_target - before])
    if not prune_past_one and last_channel(capped, current, initial) is not None:
        return None
    widths = list(current)
    for layer, _ in capped:
        widths[layer] -= 1
    return widths
