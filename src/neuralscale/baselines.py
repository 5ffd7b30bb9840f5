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

Each criterion is an importance object (importance.py) asked about the layers
of the channel graph (graph.py): a layer's producers are the convolutions or
linear layers making its channels, its norms their batch norms.  Global
removal never takes a layer's last channel and stops once the network's
parameters (or MACs) are within the budget.  The pruned network is physically
smaller where the channel graph is exact; otherwise its pruned channels stay
masked by their gates for the whole fine-tuning, which computes the same
function.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from .errors import NeuralscaleError
from .graph import ChannelGraph
from .importance import BNScale, Importance, L1FilterNorm
from .models.gate import gates
from .space import WidthSpace
from .layout import RunDir
from .store import read_record
from .train import Callback, Trainer, read_run_weights
from .zoo import model_identity, record_model



CRITERIA = {"slimming": lambda: BNScale(), "l1-uniform": lambda: L1FilterNorm(), "l1": lambda: L1FilterNorm(True)}


def importance(space: WidthSpace, model: nn.Module, criterion: str | Importance) -> list[torch.Tensor]:
    """Per gated layer, one importance score per channel (higher: keep), from the channel graph's producers."""
    if isinstance(criterion, str):
        if criterion not in CRITERIA:
            raise NeuralscaleError(f"unknown pruning criterion {criterion!r}; choose one of: {', '.join(CRITERIA)}")
        criterion = CRITERIA[criterion]()
    layers = ChannelGraph(space, [g.width for g in sorted({g.index: g for g in gates(model)}.values(),
                                                          key=lambda g: g.index)]).layers(model)
    return [criterion.score(layer) for layer in layers]


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


def trained_record(space: WidthSpace, run_dir: Path) -> dict:
    """A finished run of `space`'s model with its weights on disk: its record (or one clear error)."""
    record = read_record(run_dir)
    if record is None or record.get("status") != "finished":
        raise NeuralscaleError(f"the trained run {run_dir} has not finished (or is not a run directory)")
    if model_identity(record_model(record)[0]) != model_identity(space.name):  # (any spelling of it; a file's
        # network by the file's name: a store moved with its file)
        raise NeuralscaleError(f"the trained run {run_dir} is a {record.get('model')}, not a {space.name}")
    recorded = (record.get("spec") or {}).get("architecture")
    if recorded and space.architecture and recorded != space.architecture:  # (another file of that name, or edited)
        raise NeuralscaleError(f"the trained run {run_dir} is not this {space.name}: its network's code or modules "
                               f"differ (architecture {recorded} recorded, {space.architecture} here)")
    if not RunDir(run_dir).checkpoint.exists():
        raise NeuralscaleError(f"{RunDir(run_dir).checkpoint} is missing; the trained run's weights are needed")
    return record


def trained_network(space: WidthSpace, run_dir: Path) -> tuple[nn.Module, dict]:
    """A finished run's final network (built by `space`, its weights loaded) and the run's record."""
    record = trained_record(space, run_dir)
    full = space.build(record["widths"])
    weights = read_run_weights(RunDir(run_dir).checkpoint, record["id"], record)
    try:
        full.load_state_dict(weights)
    except (RuntimeError, KeyError) as e:
        detail = " ".join(str(e).split())[:160]
        raise NeuralscaleError(f"the weights of {run_dir} do not fit {space.name} on this data: {detail}") from None
    return full, record


def check_cut(space: WidthSpace, base: list[int], widths: list[int]) -> ChannelGraph:
    """The channel graph that cuts `widths` out of a network at `base` (or one clear error): no layer grows,
    and the graph slices exactly."""
    grow = [(n, b, w) for n, b, w in zip(space.layer_names, base, widths) if w > b]
    if grow:
        n, b, w = grow[0]
        raise NeuralscaleError(f"a warm start keeps channels of the trained network, but layer {n} would grow "
                               f"from {b} to {w} channels; start from a wider network or train from scratch")
    graph = ChannelGraph(space, base)
    if not graph.exact:
        raise NeuralscaleError(f"{space.name} cannot be sliced exactly at these widths, which a warm start needs; "
                               "train from scratch")
    return graph


def _cut(space: WidthSpace, graph: ChannelGraph, trained: nn.Module, widths: list[int], keep) -> nn.Module:
    """A network at `widths` holding `trained`'s channels `keep` (per layer), sliced by `graph`."""
    model = space.build(widths, device="meta")
    state = trained.state_dict()
    # a tensor not sliced (every channel kept, or one no gated layer owns) is copied: the two networks share nothing
    sliced = {k: v.clone() if v is state[k] else v for k, v in graph.slice_state(state, keep).items()}
    model.load_state_dict(sliced, assign=True)
    return model.to(next(trained.parameters()).device)


def warm_start(space: WidthSpace, trained: nn.Module, widths: list[int]) -> nn.Module:
    """A network at `widths` that starts from `trained` (a network of `space`, e.g. `trained_network`'s):
    in each layer the channels with the largest L1 filter norms (the `l1-prune` criterion), with their
    weights, batch-norm statistics and the matching inputs of the next layers. Widths may only shrink.

    The paper trains every scaled network from scratch; this is for those who fine-tune instead.
    """
    if not isinstance(space, WidthSpace) or not isinstance(trained, nn.Module):
        raise NeuralscaleError(f"warm_start takes a width space and a network it built, not "
                               f"{type(space).__name__} and {type(trained).__name__}")
    base = [g.width for g in sorted({g.index: g for g in gates(trained)}.values(), key=lambda g: g.index)]
    if len(base) != len(space):
        raise NeuralscaleError(f"a warm start needs a network built by this space ({len(space)} gated layers), "
                               f"got one with {len(base)}: build it with space.build(widths) and load its weights")
    widths = space.validate(widths)
    graph = check_cut(space, base, widths)
    scores = importance(space, trained, "l1-uniform")
    keep = [torch.sort(torch.topk(s, w).indices).values for s, w in zip(scores, widths)]
    return _cut(space, graph, trained, widths, keep)


def prune_pretrained(space: WidthSpace, pretrained_dir: Path, spec) -> tuple[nn.Module, list[int], list, dict]:
    """The baseline's starting point: the pretrained run's final network, pruned to the spec's budget."""
    record = read_record(pretrained_dir)
    if record is None or record.get("status") != "finished":
        raise NeuralscaleError(f"the run to prune ({pretrained_dir.name}) has not finished")
    full, record = trained_network(space, pretrained_dir)
    base = record["widths"]
    scores = importance(space, full, spec.criterion)
    choose = choose_uniform_widths if spec.criterion == "l1-uniform" else choose_widths
    widths, keep = choose(space, scores, spec.budget.amount(space), spec.budget.metric)
    graph = ChannelGraph(space, base)
    info = {"criterion": spec.criterion, "from": pretrained_dir.name, "from_widths": base,
            "from_test_acc": record["summary"].get("final_test_acc")}
    if graph.exact:
        model = _cut(space, graph, full, widths, keep)
        info["physical"] = True
        return model, widths, [], info
    info["physical"] = False
    info["note"] = f"{space.name} cannot be sliced exactly; pruned channels are masked during fine-tuning"
    return full, widths, [GateMask(keep, base)], info
