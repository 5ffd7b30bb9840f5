"""How long work will take, said before it starts: a sweep's runs and a descent's iterations, from this
machine's training speed, measured.

`Rates` times a few training steps (forward, backward, SGD) of a network on random inputs of the dataset's
shape, on the device and at the thread count the work will use; a configuration's speed is interpolated in
log-log from the cheapest and the costliest configuration measured (by MACs per image). A run costs its
epochs over its training images at that speed; a sweep's runs are shared among its workers. It is an
estimate: evaluation, data loading and a busy machine are not in it, and the log says it is one.
"""

from __future__ import annotations

import math
import time
from typing import Sequence

import torch
import torch.nn.functional as F

from .sgd import SGD
from .space import WidthSpace


def training_rate(space: WidthSpace, widths: Sequence[int], batch_size: int, device: str = "cpu",
                  threads: int | None = None, steps: int = 3) -> float:
    """Training images per second of the network at `widths` (after one untimed step)."""
    before = torch.get_num_threads()
    try:  # the thread count goes back whatever fails (a device this machine lacks included)
        if threads:
            torch.set_num_threads(threads)
        dev = torch.device(device)
        cuda = [dev.index or 0] if dev.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda):  # the work it times draws from the seeded generators, not this
            return _rate(space, widths, batch_size, dev, steps)
    finally:
        torch.set_num_threads(before)


def _rate(space, widths, batch_size, dev, steps) -> float:
    model = space.build(list(widths)).to(dev).train()
    opt = SGD(model.parameters(), lr=1e-3, momentum=0.9)  # the trainer's
    x = torch.randn(batch_size, *space.info.input_shape, device=dev)
    y = torch.randint(0, space.info.num_classes, (batch_size,), device=dev)

    def step():
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()
    step()
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    return steps * batch_size / max(time.perf_counter() - t0, 1e-9)


class Rates:
    """Training speed by configuration, from two measured ones (the cheapest and the costliest by MACs)."""

    def __init__(self, space: WidthSpace, configurations: Sequence[Sequence[int]], batch_size: int,
                 device: str = "cpu", threads: int | None = None):
        self.space = space
        by_macs = sorted({tuple(w) for w in configurations}, key=space.macs)
        ends = [by_macs[0], by_macs[-1]] if len(by_macs) > 1 else by_macs[:1]
        self.points = [(space.macs(list(w)), training_rate(space, w, batch_size, device, threads)) for w in ends]

    def __call__(self, widths: Sequence[int]) -> float:
        m = self.space.macs(list(widths))
        if len(self.points) == 1 or self.points[0][0] == self.points[1][0]:
            return self.points[0][1]
        (m0, r0), (m1, r1) = self.points
        t = (math.log(m) - math.log(m0)) / (math.log(m1) - math.log(m0))
        return math.exp(math.log(r0) + t * (math.log(r1) - math.log(r0)))


def duration_text(seconds: float) -> str:
    """'about 2 h 30 min', 'about 12 min', 'under a minute'."""
    if seconds < 60:
        return "under a minute"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"about {minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"about {hours} h" + (f" {minutes} min" if minutes else "")


def runs_seconds(work: Sequence[tuple[Sequence[int], float]], rates: Rates, workers: int = 1) -> float:
    """Wall time of runs given as (widths, training images to see), `workers` at a time: the longer of the
    longest run and the total shared evenly."""
    times = [images / rates(widths) for widths, images in work]
    if not times:
        return 0.0
    return max(max(times), sum(times) / max(1, min(workers, len(times))))
