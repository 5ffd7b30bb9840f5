"""The trainer's optimizer: SGD with momentum, weight decay and Nesterov, without torch.optim.

torch.optim's optimizers import torch._dynamo on their first use (`Optimizer.step`, `zero_grad` and
`state_dict` are wrapped so that torch.compile leaves them alone), about 1.5 CPU-s of every process that trains:
a third of a `neuralscale train` command's start on a CPU, and of every sweep worker's and test's. This class
does what `torch.optim.SGD(..., foreach=True)` does, step for step and bit for bit (the same foreach kernels in
the same order, tests/test_sgd.py), with the state dict in torch's format, so that checkpoints load either way
and a user's own torch optimizer still works wherever the package takes one (pruning, `loop.py`).
"""

from __future__ import annotations

import copy
from collections import defaultdict
from typing import Any, Iterable

import torch

DEFAULTS = {"dampening": 0, "maximize": False, "foreach": True, "differentiable": False, "fused": None}
UNSUPPORTED = ("maximize", "differentiable", "fused")  # torch.optim.SGD's options this class does not run


class SGD:
    """`torch.optim.SGD(params, lr, momentum, weight_decay=..., nesterov=..., foreach=True)` for one parameter
    group of dense gradients: `param_groups`, `state`, `zero_grad`, `step`, `state_dict` and `load_state_dict`."""

    def __init__(self, params: Iterable[torch.nn.Parameter], lr: float, momentum: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False, dampening: float = 0):
        for name, value in (("learning rate", lr), ("momentum", momentum), ("weight_decay", weight_decay)):
            if value < 0:
                raise ValueError(f"Invalid {name} value: {value}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        group = {"params": list(params), "lr": lr, "momentum": momentum, "weight_decay": weight_decay,
                 "nesterov": nesterov, **DEFAULTS, "dampening": dampening}
        self.param_groups: list[dict[str, Any]] = [group]
        self.state: defaultdict[torch.Tensor, dict[str, torch.Tensor]] = defaultdict(dict)  # as torch's

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.param_groups[0]["params"]:
            if p.grad is not None:
                if set_to_none:
                    p.grad = None
                else:
                    if p.grad.grad_fn is not None:
                        p.grad.detach_()
                    else:
                        p.grad.requires_grad_(False)
                    p.grad.zero_()

    @torch.no_grad()
    def step(self) -> None:
        """torch's `_multi_tensor_sgd`: per device and dtype, weight decay added to a copy of the gradients,
        the momentum buffers scaled and added to (a first step's buffer: the gradient itself), then the update."""
        g = self.param_groups[0]
        by_kind: dict[tuple, list[torch.Tensor]] = {}
        for p in g["params"]:
            if p.grad is not None:
                if p.grad.is_sparse:
                    raise ValueError("neuralscale's SGD takes dense gradients only")
                by_kind.setdefault((p.device, p.dtype), []).append(p)
        for params in by_kind.values():
            self._update(params, g)

    def _update(self, params: list[torch.Tensor], g: dict[str, Any]) -> None:
        grads = [p.grad for p in params]
        momentum, lr = g["momentum"], g["lr"]
        if g["weight_decay"] != 0:
            grads = torch._foreach_add(grads, params, alpha=g["weight_decay"])
        if momentum != 0:
            bufs = [self.state.get(p, {}).get("momentum_buffer") for p in params]
            if all(b is not None for b in bufs):  # every step but the first: the buffers are in the state
                torch._foreach_mul_(bufs, momentum)
                torch._foreach_add_(bufs, grads, alpha=1 - g["dampening"])
            else:
                for i, (p, b) in enumerate(zip(params, bufs)):
                    if b is None:
                        bufs[i] = self.state[p]["momentum_buffer"] = grads[i].detach().clone()
                    else:
                        b.mul_(momentum).add_(grads[i], alpha=1 - g["dampening"])
            if g["nesterov"]:
                torch._foreach_add_(grads, bufs, alpha=momentum)
            else:
                grads = bufs
        torch._foreach_add_(params, grads, alpha=-lr)

    def state_dict(self) -> dict[str, Any]:
        """torch.optim's format: the state by parameter index, the group's settings with its parameters'
        indices (tensors shared, not copied, as torch's)."""
        params = self.param_groups[0]["params"]
        index = {id(p): i for i, p in enumerate(params)}
        group = {k: v for k, v in self.param_groups[0].items() if k != "params"}
        group["params"] = list(range(len(params)))
        return {"state": {index[id(p)]: dict(s) for p, s in self.state.items() if id(p) in index},
                "param_groups": [group]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """A state dict of this class's or of torch.optim.SGD's (one group of the same size): the settings
        and the momentum buffers (on each parameter's device and dtype: the same tensors where they are already
        there), as torch loads them."""
        groups = state_dict["param_groups"]
        params = self.param_groups[0]["params"]
        if len(groups) != 1 or len(groups[0]["params"]) != len(params):
            raise ValueError("loaded state dict has a different number of parameter groups or parameters")
        unsupported = [k for k in UNSUPPORTED if groups[0].get(k)]
        if unsupported:  # kept but not run, they would change nothing: refused instead
            raise ValueError(f"loaded state dict asks for SGD with {', '.join(unsupported)}, which neuralscale's "
                             "SGD does not run")
        index = {saved: p for saved, p in zip(groups[0]["params"], params)}
        self.state = defaultdict(dict)
        for k, s in state_dict["state"].items():
            p = index[k]
            self.state[p] = {name: (v.to(p.device, p.dtype) if p.is_floating_point() else v.to(p.device))
                             if torch.is_tensor(v) else copy.deepcopy(v) for name, v in s.items()}
        self.param_groups[0].update(copy.deepcopy({k: v for k, v in groups[0].items() if k != "params"}))
