"""Giving a built module new sizes in place: a pruning step then keeps the model it has instead of building one."""

from __future__ import annotations

import torch
from torch import nn


def resize_tensors(m: nn.Module, **shapes: tuple[int, ...]) -> None:
    """Give a module's own parameters and buffers new shapes (uninitialised, on meta, for the caller to assign).
    A tensor that has its shape already is left as it is, values and all (a pruning step changes a few layers:
    the rest keep their tensors)."""
    for name, shape in shapes.items():
        if name in m._parameters and m._parameters[name] is not None:
            old = m._parameters[name]
            if tuple(old.shape) != tuple(shape) or old.is_meta:
                m._parameters[name] = nn.Parameter(torch.empty(shape, device="meta", dtype=old.dtype),
                                                   requires_grad=old.requires_grad)
        elif name in m._buffers and m._buffers[name] is not None:
            old = m._buffers[name]
            if tuple(old.shape) != tuple(shape) or old.is_meta:
                m._buffers[name] = torch.empty(shape, device="meta", dtype=old.dtype)
