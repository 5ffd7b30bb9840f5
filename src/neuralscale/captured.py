"""The training step captured as one CUDA graph, replayed for every full batch (TrainConfig.cuda_graphs).

At batch 128 a small network's step on a GPU is bound by kernel launches, not arithmetic: forward, backward and
the optimizer are hundreds of launches of microseconds each. Captured once, the step is one launch. What a graph
needs, and how this meets it:

- fixed shapes and addresses: inputs are copied into static tensors; a batch of another size (the last, partial
  batch of an epoch) runs eagerly beside the graph, on the same parameters and optimizer state;
- warm-up before capture: the first WARMUP full batches run eagerly on a side stream (lazy cuBLAS/cuDNN set-up,
  the optimizer's momentum buffers), as torch's documentation prescribes: they are real training steps;
- nothing read back on the host inside the step: the learning rate is a Python number baked into the captured
  optimizer step, so the graph is captured again when it changes (at most once an epoch: the schedules move the
  rate between epochs), and callbacks, which run Python between steps (pruning, slimming's penalty), leave the
  step eager (Trainer decides; see `capturable`).

The arithmetic is the eager step's (the same kernels in the same order), so a captured run trains as an eager
one does, up to the nondeterminism CUDA kernels have anyway (tests/test_cuda.py compares them).
"""

from __future__ import annotations

import logging
import torch
import torch.nn.functional as F

log = logging.getLogger(__name__)

WARMUP = 3  # eager full batches before the first capture


def refused(config, device: torch.device) -> str | None:
    """Why a recipe that asks for CUDA graphs (`config.cuda_graphs`) cannot have them on `device`, or None: the
    trainer refuses such a recipe, and a sweep before its first run."""
    return _unsupported(device, config.compile) if config.cuda_graphs else None


def _unsupported(device: torch.device, compiled: bool) -> str | None:
    if device.type != "cuda":
        return "CUDA graphs need a CUDA device"
    if compiled:
        return "the step is compiled (torch.compile); give one of compile and cuda_graphs"
    return None


def capturable(trainer) -> str | None:
    """Why this trainer's step cannot be captured, or None when it can."""
    why = _unsupported(trainer.device, trainer.config.compile)
    if why is not None:
        return why
    if trainer.callbacks:
        return "callbacks run Python between steps (" + ", ".join(type(c).__name__ for c in trainer.callbacks) + ")"
    return None


class CapturedStep:
    """Replays one captured training step; `step(x, y)` has Trainer._eager_step's contract."""

    def __init__(self, trainer):
        self.trainer = trainer
        self.graph: torch.cuda.CUDAGraph | None = None
        self.lr: float | None = None
        self.warm = 0
        self.captures = 0
        self.x = self.y = self.loss = self.correct = None

    def reset(self) -> None:
        """Forget the graph (a new model or optimizer): the next full batches warm up and capture again."""
        self.graph, self.lr, self.warm = None, None, 0
        self.x = self.y = self.loss = self.correct = None

    def step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        t = self.trainer
        if len(y) != t.config.batch_size or (self.x is not None and x.stride() != self.x.stride()):
            return t._eager_step(x, y)  # a partial batch: never warmed up on, never captured
        lr = t.optimizer.param_groups[0]["lr"]
        if self.graph is not None and lr != self.lr:
            self.graph = None  # captured at another learning rate
        if self.graph is None:
            if self.warm < WARMUP:
                self.warm += 1
                return self._side_stream_step(x, y)
            self._capture(x, y, lr)
        self.x.copy_(x)
        self.y.copy_(y)
        self.graph.replay()
        t.step += 1
        return self.loss.clone(), self.correct.clone()

    def _side_stream_step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        device = self.trainer.device
        side = torch.cuda.Stream(device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side):
            out = self.trainer._eager_step(x, y)
        torch.cuda.current_stream(device).wait_stream(side)
        return out

    def _capture(self, x: torch.Tensor, y: torch.Tensor, lr: float) -> None:
        t = self.trainer
        self.graph = None
        self.x, self.y = x.clone(), y.clone()  # static inputs, in the batches' layout
        t.optimizer.zero_grad(set_to_none=True)  # gradients are allocated (not accumulated) inside the graph
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            with torch.autocast(t.device.type, dtype=torch.bfloat16, enabled=t.amp, cache_enabled=False):
                out = t.forward(self.x)
                loss = F.cross_entropy(out.float(), self.y)
            loss.backward()
            t.optimizer.step()
            self.loss = loss.detach()
            self.correct = (out.detach().argmax(1) == self.y).sum()
        self.graph, self.lr = graph, lr
        self.captures += 1
        log.debug("%s: training step captured as a CUDA graph (batch %d, lr %g)", t.desc, len(y), lr)
