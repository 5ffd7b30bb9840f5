"""Carrying out a pruning decision on the channel graph: gate masks, or physical removal of the channels.

Pruned channels leave the network physically where that is exactly what masking their gate would do: the
network is resized in place (a generic space's, VGG11's) or rebuilt at the new widths, with the surviving weights, BN
statistics and optimizer momentum.  Which
tensor dimensions belong to which gated layer comes from the channel graph (graph.py), derived once and checked
against the shapes after every step.  Where a channel is not cleanly removable (a residual identity carries it
past the gate, widths tied by a multiple, a structure that would change), its gate is set to 0 instead; the
trajectory is the same either way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

from ..graph import ChannelGraph, Layer
from ..models.resizing import as_fresh
from ..space import WidthSpace


def attach_masks(layers: Sequence[Layer], alive: Sequence[torch.Tensor], physical: bool, device,
                 dtype: torch.dtype) -> None:
    """Give every gate its mask (1 for a live channel, 0 for a pruned one), with a gradient to score it by."""
    masks = [a.to(device, dtype) for a in alive]
    for layer in layers:
        for g in layer.gates:  # a layer tied across residual sums has one gate per producer
            # With nothing to mask, a gate right after an affine batch norm need not multiply: its gradient is
            # gamma * dgamma + beta * dbeta (see gate.py), which saves a pass over every activation.
            free = physical and g.source is not None and bool(alive[g.index].all()) \
                and g.source.weight.requires_grad and g.source.bias.requires_grad
            g.ones = None if free else masks[g.index].clone().requires_grad_(True)


def clear_gate_grads(layers: Sequence[Layer]) -> None:
    """Gates are not parameters, so no optimizer clears their gradients: done here while nothing is scored."""
    for layer in layers:
        for g in layer.gates:
            if g.ones is not None:
                g.ones.grad = None


def has_gate_grads(layers: Sequence[Layer]) -> bool:
    return any(g.ones is not None and g.ones.grad is not None for layer in layers for g in layer.gates)


@dataclass
class Shrunk:
    """A network without its pruned channels (the caller's own, resized in place, or a new one), its optimizer's
    state sliced the same way."""

    model: nn.Module
    optimizer_state: dict  # {"state": {}, "param_groups": []} where no optimizer was given
    graph: ChannelGraph


def shrink(space: WidthSpace, graph: ChannelGraph, model: nn.Module, optimizer: torch.optim.Optimizer | None,
           keep: Sequence[torch.Tensor], old_widths: list[int], new_widths: list[int]) -> Shrunk | None:
    """`model` at `new_widths` with the channels `keep` lists per layer (weights, statistics, momentum): resized
    in place where the space can (`WidthSpace.resize`, after the sliced state is checked against the shapes the
    widths give), else rebuilt; None where it cannot be sliced exactly (the caller masks from then on).  Without
    an optimizer, its state is {} (nothing to carry over)."""
    old = model.state_dict()
    state = graph.slice_state(old, keep)
    in_place = space.resizes_in_place and graph.fits(state, space.state_shapes(new_widths))
    new = model if in_place else space.build(new_widths, device="meta")  # meta: every tensor comes from `state`
    if not in_place and not graph.fits(state, new):
        graph = ChannelGraph(space, old_widths)  # the graph derived at earlier widths does not carry over
        state = graph.slice_state(old, keep) if graph.exact else None
        if state is None or not graph.fits(state, new):
            return None
    if not in_place:  # a new model shares no tensor with the old one, which its caller may keep
        state = {k: v.clone() if v is old[k] else v for k, v in state.items()}
    # the state's indices count the optimizer's parameters (which may be some of the model's, in any order, and
    # others, such as a loss's own: not pruned, their state kept as it is)
    named = {id(p): n for n, p in model.named_parameters()}
    names = [named.get(id(p)) for g in optimizer.param_groups for p in g["params"]] if optimizer is not None else []
    opt = optimizer.state_dict() if optimizer is not None else {"state": {}, "param_groups": []}
    opt["state"] = {i: {k: (_slice_buffer(graph, names[i], v, keep, in_place)
                            if torch.is_tensor(v) and v.dim() and names[i] is not None else v)
                        for k, v in st.items()} for i, st in opt["state"].items()}
    if in_place:  # only now, with everything sliced: the same modules (and hooks), resized, no rebuild
        space.resize(model, new_widths)
    _assign(new, state)
    if not in_place:  # as the old one: its mode and its frozen parameters (a new build's are all trainable)
        new.train(model.training)
        frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
        for n, p in new.named_parameters():
            p.requires_grad_(n not in frozen)
    return Shrunk(new, opt, graph)


def _slice_buffer(graph: ChannelGraph, name: str, buf: torch.Tensor, keep, in_place: bool) -> torch.Tensor:
    """An optimizer buffer (momentum) of parameter `name` with the kept channels: a sliced one is a new contiguous
    tensor; one that keeps every channel is given the same strides (a copy only where its own differ, as a
    channels_last one does), and is copied for a rebuilt model, which shares nothing with the old one."""
    out = graph.slice_state({name: buf}, keep)[name]
    if out is not buf:
        return out
    fresh = as_fresh(buf, channels_last=False)
    return fresh if fresh is not buf or in_place else buf.clone()


def _assign(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """`model.load_state_dict(state, assign=True)` for a model whose tensors on meta `state` holds (checked by
    ChannelGraph.fits), without its per-module hooks and checks: a tenth of the time, once per pruning step. A
    tensor that is not on meta (resized in place and unchanged: `state` holds that very tensor) stays as it is."""
    for name, module in model.named_modules():
        prefix = f"{name}." if name else ""
        for key, p in module._parameters.items():
            if p is not None and p.is_meta:
                module._parameters[key] = nn.Parameter(state[prefix + key], requires_grad=p.requires_grad)
        for key, b in module._buffers.items():
            if b is not None and b.is_meta and key not in module._non_persistent_buffers_set:
                module._buffers[key] = state[prefix + key]
    leftover = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if leftover:
        raise RuntimeError(f"no value for {leftover[0]} after pruning")  # a non-persistent buffer: a bug here
