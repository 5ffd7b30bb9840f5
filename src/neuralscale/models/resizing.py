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


_STRIDES: dict[tuple, tuple[int, ...]] = {}


def fresh_strides(shape: torch.Size, channels_last: bool) -> tuple[int, ...]:
    """The strides a new tensor of this shape has in a model laid out as the trainer lays one out: contiguous,
    then `.to(memory_format=torch.channels_last)` where channels_last (worked out on meta: the same rule, no
    memory)."""
    key = (tuple(shape), channels_last)
    if key not in _STRIDES:
        t = torch.empty(shape, device="meta")
        _STRIDES[key] = (t.to(memory_format=torch.channels_last) if channels_last else t).stride()
    return _STRIDES[key]


def as_fresh(t: torch.Tensor, channels_last: bool) -> torch.Tensor:
    """`t` itself where it has the strides `fresh_strides` gives, else a copy that has them (4-D tensors; others
    as they are)."""
    if t.dim() != 4:
        return t
    want = fresh_strides(t.shape, channels_last)
    if t.stride() == want:
        return t
    new = torch.empty_strided(t.shape, want, dtype=t.dtype, device=t.device)
    with torch.no_grad():
        new.copy_(t)
    return new
