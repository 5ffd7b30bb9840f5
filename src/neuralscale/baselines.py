"""Train-prune-fine-tune baselines (the paper's supplement): prune a trained network to a budget, then fine-tune.

Criteria (`RunSpec.criterion`) and the sweep methods that use them:

- `slimming` (method `slimming`): network slimming (Liu et al., 2017), the
  original implementation's default criterion and so the curve its paper
  calls "weight magnitude".  A channel's importance is the absolute scale
  (gamma) of the batch norm in front of its gate; channels are removed in
  ascending importance, globally across layers.
- `l1-uniform` (method `l1-prune`): filter-magnitude pruning (Li et al., 2017)
  as the original implements it: one pruning ratio for every layer, the
  largest whose widths `int(width * ratio)` meet the budget, and in each layer
  the filters with the largest L1 norm kept.
- `l1` (method `l1-global`): the L1 norm of each filter divided by its size,
  ranked globally across layers (not in the original).

Global removal never takes a layer's last channel and stops once the
network's parameters (or MACs) are within the budget.  The pruned network is
physically smaller where the width space can be sliced exactly (see
prune.channel_map); otherwise its pruned channels stay masked by their gates
for the whole fine-tuning, which computes the same function.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from .errors import NeuralscaleError
from .models.gate import Gate, gates
from .prune import channel_map, slice_state
from .space import WidthSpace
from .store import read_record
from .train import Callback, Trainer

CRITERIA = ("slimming", "l1-uniform", "l1")


def gated_producers(model: nn.Module, input_shape) -> dict[int, list[tuple[nn.Module, nn.Module | None]]]:
    """For each gated layer: the (convolution or linear, batch norm or None) pairs whose output its gates gate.

    Found by running the model once and noting the order in which modules are
    called: a gate right after a batch norm gates that batch norm and the
    convolution called last before it; a gate right after a convolution or
    linear layer gates that layer.  A layer tied across residual sums has
    several such pairs.
    """
    order: list[nn.Module] = []
    hooks = [m.register_forward_pre_hook(lambda mod, inp: order.append(mod))
             for m in model.modules() if isinstance(m, (nn.Conv2d, nn.BatchNorm2d, nn.Linear, Gate))]
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            p = next(model.parameters())
            model(torch.zeros(1, *input_shape, device=p.device, dtype=p.dtype))
    finally:
        for h in hooks:
            h.remove()
        model.train(was)
    found: dict[int, list] = {}
    seen: set[int] = set()
    for i, m in enumerate(order):
        if not isinstance(m, Gate) or id(m) in seen:
            continue
        seen.add(id(m))
        prev = order[i - 1] if i else None
        if isinstance(prev, nn.BatchNorm2d):
            conv = next((x for x in reversed(order[:i - 1]) if isinstance(x, nn.Conv2d)), None)
            pair = (conv, prev)
        elif isinstance(prev, (nn.Conv2d, nn.Linear)):
            pair = (prev, None)
        else:
            pair = (None, None)
        producer = pair[0]
        out = getattr(producer, "out_channels", getattr(producer, "out_features", None))
        if producer is None or out != m.width or (pair[1] is not None and pair[1].num_features != m.width):
            raise NeuralscaleError(f"gated layer {m.index} is not preceded by a convolution (and batch norm) of its "
                                   "width; the pruning baselines cannot score it")
        found.setdefault(m.index, []).append(pair)
    return found


def importance(model: nn.Module, input_shape, criterion: str) -> list[torch.Tensor]:
    """Per gated layer, one importance score per channel (higher: keep), summed over the layer's producers."""
    if criterion not in CRITERIA:
        raise NeuralscaleError(f"unknown pruning criterion {criterion!r}; choose one of: {', '.join(CRITERIA)}")
    scores = []
    producers = gated_producers(model, input_shape)
    for index in sorted(producers):
        total = None
        for layer, bn in producers[index]:
            if criterion == "l1":  # per weight, so that layers with a large fan-in are not favoured
                s = layer.weight.detach().float().abs().flatten(1).mean(1).cpu()
            elif criterion == "l1-uniform":  # ranked within a layer only: the plain L1 norm
                s = layer.weight.detach().float().abs().flatten(1).sum(1).cpu()
            else:
                if bn is None:
                    raise NeuralscaleError(f"gated layer {index} has no batch norm, so network slimming cannot score it")
                s = bn.weight.detach().float().abs().cpu()
            total = s if total is None else total + s
        scores.append(total)
    return scores


def choose_widths(space: WidthSpace, scores: list[torch.Tensor], budget: float, metric: str = "params",
                  min_width: int = 1) -> tuple[list[int], list[torch.Tensor]]:
    """Remove the least important channels globally until `metric` is within `budget`.

    Returns the widths and, per layer, the sorted indices of the channels kept.
    The number removed is found by bisection (cost falls as channels go).
    """
    cost = space.params if metric == "params" else space.macs
    base = [len(s) for s in scores]
    if cost(base) <= budget:
        return base, [torch.arange(w) for w in base]
    flat = torch.cat(scores)
    owner = torch.cat([torch.full((len(s),), i) for i, s in enumerate(scores)])
    offset = torch.cat([torch.arange(len(s)) for s in scores])
    order = torch.argsort(flat, stable=True).tolist()
    # The removal sequence, skipping channels that would take a layer below min_width.
    left = list(base)
    sequence = []
    for j in order:
        layer = int(owner[j])
        if left[layer] > min_width:
            left[layer] -= 1
            sequence.append((layer, int(offset[j])))

    def widths_after(n: int) -> list[int]:
        w = list(base)
        for layer, _ in sequence[:n]:
            w[layer] -= 1
        return w

    if cost(widths_after(len(sequence))) > budget:
        floor = cost(widths_after(len(sequence)))
        raise NeuralscaleError(f"a budget of {budget:,.0f} {metric} is below what pruning can reach "
                               f"({floor:,.0f} with every layer at {min_width} channel(s))")
    lo, hi = 0, len(sequence)  # cost(lo) > budget >= cost(hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if cost(widths_after(mid)) <= budget:
            hi = mid
        else:
            lo = mid
    removed = [set() for _ in base]
    for layer, idx in sequence[:hi]:
        removed[layer].add(idx)
    keep = [torch.tensor([i for i in range(b) if i not in r], dtype=torch.long) for b, r in zip(base, removed)]
    return [len(k) for k in keep], keep


def choose_uniform_widths(space: WidthSpace, scores: list[torch.Tensor], budget: float, metric: str = "params",
                          min_width: int = 1) -> tuple[list[int], list[torch.Tensor]]:
    """One ratio for every layer, the largest whose widths `int(width * ratio)` meet the budget; in each
    layer the most important channels are kept (the original's weight-magnitude baseline).

    The original lowers the ratio from 0.9 by factors of 0.999 until the budget is met; bisection finds
    the largest such ratio, so the widths agree up to that step.
    """
    cost = space.params if metric == "params" else space.macs
    base = [len(s) for s in scores]

    def widths_at(ratio: float) -> list[int]:
        return [max(min_width, int(b * ratio)) for b in base]
    if cost(base) <= budget:
        widths = base
    else:
        if cost(widths_at(0.0)) > budget:
            raise NeuralscaleError(f"a budget of {budget:,.0f} {metric} is below what pruning can reach "
                                   f"({cost(widths_at(0.0)):,.0f} with every layer at {min_width} channel(s))")
        lo, hi = 0.0, 1.0  # cost(widths_at(lo)) <= budget < cost(widths_at(hi))
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            if cost(widths_at(mid)) <= budget:
                lo = mid
            else:
                hi = mid
        widths = widths_at(lo)
    keep = [torch.argsort(s, descending=True, stable=True)[:w].sort().values for s, w in zip(scores, widths)]
    return widths, keep


class GateMask(Callback):
    """Keeps pruned channels masked (gate 0) for a whole training run, and over resumes."""

    def __init__(self, keep: list[torch.Tensor], base: list[int]):
        self.keep, self.base = keep, base

    def on_train_start(self, trainer: Trainer) -> None:
        dtype = next(trainer.model.parameters()).dtype
        masks = []
        for keep, w in zip(self.keep, self.base):
            mask = torch.zeros(w, dtype=dtype)
            mask[keep] = 1
            masks.append(mask.to(trainer.device))
        for g in gates(trainer.model):
            g.ones = masks[g.index]


def prune_pretrained(space: WidthSpace, pretrained_dir: Path, spec) -> tuple[nn.Module, list[int], list, dict]:
    """The baseline's starting point: the pretrained run's final network, pruned to the spec's budget."""
    record = read_record(pretrained_dir)
    if record is None or record.get("status") != "finished":
        raise NeuralscaleError(f"the run to prune ({pretrained_dir.name}) has not finished")
    ckpt = pretrained_dir / "checkpoint.pt"
    if not ckpt.exists():
        raise NeuralscaleError(f"{ckpt} is missing; the pretrained run's weights are needed to prune it")
    base = record["widths"]
    full = space.build(base)
    state = torch.load(ckpt, map_location="cpu", weights_only=True)["model"]
    full.load_state_dict(state)
    scores = importance(full, space.info.input_shape, spec.criterion)
    metric = spec.budget.get("metric", "params")
    choose = choose_uniform_widths if spec.criterion == "l1-uniform" else choose_widths
    widths, keep = choose(space, scores, spec.budget["value"], metric)
    mapping = channel_map(space, base)
    info = {"criterion": spec.criterion, "from": pretrained_dir.name, "from_widths": base,
            "from_test_acc": record["summary"].get("final_test_acc")}
    if mapping is not None:
        model = space.build(widths, device="meta")
        model.load_state_dict(slice_state(full.state_dict(), mapping, keep), assign=True)
        model = model.to("cpu")
        info["physical"] = True
        return model, widths, [], info
    info["physical"] = False
    info["note"] = f"{space.name} cannot be sliced exactly; pruned channels are masked during fine-tuning"
    return full, widths, [GateMask(keep, base)], info
