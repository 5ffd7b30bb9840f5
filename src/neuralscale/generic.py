"""Width spaces for any CNN: channel groups found from the model's computation graph.

A model is traced with torch.fx.  Every tensor's channel dimension is
described as a list of segments, each belonging to a channel group: a
convolution or linear layer starts a new group; batch norms, activations and
pooling keep their input's; an addition or multiplication of two tensors ties
their groups together (residual sums, squeeze-excitation gates); a depthwise
convolution keeps its input's group; a concatenation along channels joins
segments.  The image's channels and the classifier's outputs are fixed; every
other group is a gated layer whose width is a parameter of the space.

To build at any widths (smaller or larger than the original), a fresh model
is made and each convolution, batch norm and linear layer is given the new
shape, then initialised as the model's constructor initialised it
(initialise.py: its layers' resets, then its own torch.nn.init calls; no
zero-initialised normalisation scales, whose Taylor scores would be zero).  A gate
(see models/gate.py) follows every batch norm of a gated group (one per
segment where the norm reads a concatenation), and every convolution or
linear layer whose output a layer reads without passing one (a shortcut
without a batch norm, a pre-activation residual stream, a biased depthwise
convolution): a masked channel is 0 wherever it is read, as a removed one
would be, so pruning, physical shrinking and everything else run unchanged.
An operation that moves or reshapes channels in a way this analysis does not
follow (a channel shuffle, a permute to channels-last, a split) ends in an
error naming the node; a wrong model is never built.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import math
import operator
import pickle
import re
import sys
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F
from torch import fx, nn

from .collector import paused
from .command import optional_import
from .data.info import DatasetInfo
from .errors import NeuralscaleError, first_line, warn
from .initialise import followed, initialise, not_followed_text, recorded
from .models.gate import Gate, SegmentGates
from .models.resizing import resize_tensors as _resize
from .space import WidthSpace
from .validate import suggest

# Modules that keep their input's channels.
_SAME = (nn.ReLU, nn.ReLU6, nn.SiLU, nn.GELU, nn.Hardswish, nn.Hardsigmoid, nn.Sigmoid, nn.Tanh, nn.LeakyReLU,
         nn.ELU, nn.Mish, nn.Dropout, nn.Dropout2d, nn.Identity, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d,
         nn.AdaptiveMaxPool2d, nn.SELU, nn.CELU)
# Functions that keep their input's channels, and map 0 to 0 (a masked channel stays 0).
_SAME_FUNCTIONS = {F.relu, F.relu6, F.silu, F.gelu, F.hardswish, F.leaky_relu, F.elu, F.selu, F.celu, F.mish,
                   F.hardtanh, F.tanh, torch.tanh, F.adaptive_avg_pool2d, F.adaptive_max_pool2d, F.max_pool2d,
                   F.avg_pool2d, F.dropout, F.dropout2d, torch.relu, torch.dropout, operator.neg, torch.neg}
_SAME_METHODS = {"relu", "relu_", "tanh", "tanh_", "contiguous", "leaky_relu", "leaky_relu_", "neg"}
# ... and those that map 0 to something else: a masked channel they make must be gated away before it is read.
_NONZERO_FUNCTIONS = {torch.sigmoid, F.sigmoid, F.hardsigmoid, "sigmoid", "sigmoid_"}
_NONZERO_MODULES = (nn.Sigmoid, nn.Hardsigmoid)
# The classifier's own functions (and modules): fine on its outputs, not on a gated layer's channels (they mix them).
_OUTPUT_FUNCTIONS = {F.softmax, F.log_softmax, torch.softmax, torch.log_softmax, "softmax", "log_softmax"}
_OUTPUT_MODULES = (nn.Softmax, nn.LogSoftmax)
_TIE_FUNCTIONS = {operator.add, operator.mul, torch.add, torch.mul, operator.iadd, operator.imul, operator.sub,
                  torch.sub, operator.isub, "add", "mul", "add_", "mul_", "sub", "sub_"}
_PRODUCTS = {operator.mul, torch.mul, operator.imul, "mul", "mul_"}
_REDUCTIONS = {torch.mean, torch.sum, torch.amax, "mean", "sum", "amax"}
_RESHAPES = {torch.reshape, torch.squeeze, torch.unsqueeze, "view", "reshape", "squeeze", "unsqueeze"}
FIXED_INPUT, FIXED_OUTPUT = -1, -2  # pseudo-groups: the image's channels, the classifier's outputs


@dataclass
class _Tag:
    """A tensor's channel layout: segments of groups in channel order, and whether they are flattened."""
    segments: list[int]  # group ids in channel order
    flat: bool = False  # flattened into features (what a linear layer reads)
    positions: int | None = 1  # when flat: features per channel (spatial positions); None until shapes tell
    # The modules whose output reaches this tensor with no gate after them (and "@node" for a function that makes
    # a masked channel nonzero): where such a tensor is read by a layer, they need a gate (see _Analyser._read).
    raw: frozenset = frozenset()


@dataclass
class Conv:
    """A convolution: the groups of its input channels, the group it starts, and its kind."""
    segments: list[int]
    out: int | None  # the group its output starts (dense); None where the output follows the input
    kind: str  # dense | depthwise | grouped


@dataclass
class Linear:
    """A linear layer: the groups of its input, features per input channel, and the group it starts."""
    segments: list[int]
    positions: int | None  # None until resolved from the traced shapes (after a flatten)
    out: int


@dataclass
class Analysis:
    parent: dict[int, int] = field(default_factory=dict)
    base: dict[int, int] = field(default_factory=dict)  # group -> width in the traced model
    name: dict[int, str] = field(default_factory=dict)  # group -> the module that first produced it
    multiple: dict[int, int] = field(default_factory=dict)  # group -> widths must be a multiple (grouped convs)
    convs: dict[str, Conv] = field(default_factory=dict)
    norms: dict[str, list[int]] = field(default_factory=dict)  # name -> segments
    linears: dict[str, Linear] = field(default_factory=dict)
    fixed_width: dict[int, int] = field(default_factory=dict)  # FIXED_INPUT / FIXED_OUTPUT -> channels
    gate_after: dict[str, None] = field(default_factory=dict)  # modules whose output a layer reads ungated
    fixed_only: list[tuple[fx.Node, list[int], str]] = field(default_factory=list)  # fine on fixed groups only
    code: str = ""  # the traced forward, as torch.fx writes it
    positions: dict[str, int] = field(default_factory=dict)  # conv / linear -> output elements per channel (MACs)
    same_in_training: bool = False  # traced to the same code in training mode as in evaluation mode
    # activation modules not 0 at 0 (nn.Sigmoid as a LeNet uses it) -> the group they keep, and their calls: one
    # read by a layer is gated after, as a producer is
    activations: dict[str, int] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)
    # x.view(x.size(0), -1) of a map: it runs only in NCHW (a channels-last tensor's channels and positions cannot
    # be viewed as one dimension), so the trainer keeps such a model out of channels-last (`train.Trainer._layout`)
    nchw_only: bool = False

    def width(self, g: int) -> int:
        """A group's width in the traced model."""
        r = self.find(g)
        return self.base[r] if r >= 0 else self.fixed_width[r]

    def find(self, g: int) -> int:
        while self.parent.get(g, g) != g:
            g = self.parent[g]
        return g

    def made_by(self, name: str) -> int:
        """The group whose channels module `name` (a convolution, linear layer or gated activation) outputs: its
        root, negative where fixed."""
        if name in self.linears:
            return self.find(self.linears[name].out)
        if name in self.activations:
            return self.find(self.activations[name])
        c = self.convs[name]
        return self.find(c.out if c.out is not None else c.segments[0])

    def new(self, width: int, name: str) -> int:
        g = len(self.base)
        self.parent[g], self.base[g], self.name[g] = g, width, name
        return g

    def tie(self, a: int, b: int, where: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return
        if ra < 0 and rb < 0:
            raise NeuralscaleError(f"{where} ties the input channels to the classifier outputs")
        if rb < 0 or (ra >= 0 and rb < ra):
            ra, rb = rb, ra  # keep the fixed or the earlier group as the root
        if ra >= 0 and self.base[ra] != self.base[rb]:
            raise NeuralscaleError(f"{where} adds tensors of {self.base[ra]} and {self.base[rb]} channels")
        self.parent[rb] = ra
        m = math.lcm(self.multiple.get(ra, 1), self.multiple.get(rb, 1))  # a multiple of both
        if m > 1:
            self.multiple[ra] = m


_RESIZABLE = (nn.Conv2d, nn.BatchNorm2d, nn.Linear)
# Stochastic depth (torchvision's, timm's): whole samples of a residual branch zeroed in training; a masked channel
# stays 0. Leaves, so that their random masks (new_empty, bernoulli_) are not traced as channel operations.
_DROP_PATHS = ("StochasticDepth", "DropPath")
_STANDARD_TENSORS = {"weight", "bias", "running_mean", "running_var", "num_batches_tracked"}
_METADATA = {"shape", "ndim", "dtype", "device", "is_cuda", "requires_grad"}  # attributes that are not channels


class _Tracer(fx.Tracer):
    """torch.fx, with convolutions, batch norms and linear layers as leaves, subclasses too.

    timm's `BatchNormAct2d` (a batch norm followed by its activation) and
    `Conv2dSame` are subclasses whose own forward would otherwise be traced
    through; as leaves they are analysed, counted and resized as what they are.
    """

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return isinstance(m, _RESIZABLE) or type(m).__name__ in _DROP_PATHS or super().is_leaf_module(m, qualname)


def _tensor_args(node: fx.Node) -> list[fx.Node]:
    return [a for a in node.args if isinstance(a, fx.Node)]


def analyse(model: nn.Module, input_shape: tuple[int, ...], num_classes: int) -> Analysis:
    """Find the channel groups of `model`, traced with torch.fx in evaluation mode and again in training mode
    (where pruning scores and masks): both must be followed, with the same layers in the same groups; the gates
    either needs are placed. (Most models trace to the same code in both: it is analysed once.)"""
    was = model.training
    try:
        graphs = [_trace(model.train(mode)) for mode in (False, True)]
        an = _analyse_graph(model.train(False), graphs[0], input_shape, num_classes)
        if graphs[1].code == graphs[0].code:
            an.same_in_training = True
            return an
        trained = _analyse_graph(model.train(True), graphs[1], input_shape, num_classes)
    finally:
        model.train(was)
    if _groups(an) != _groups(trained):
        differ = sorted(set(_groups(an)) ^ set(_groups(trained)))[0]
        raise NeuralscaleError(f"{type(model).__name__} computes with other layers in training mode than in "
                               f"evaluation mode (as an auxiliary head does: {', '.join(differ)}); its channels "
                               "cannot be followed in both, so widths cannot be changed safely")
    an.gate_after.update(trained.gate_after)
    return an


def _trace(model: nn.Module) -> fx.GraphModule:
    try:
        return fx.GraphModule(model, _Tracer().trace(model))
    except Exception as e:  # fx raises many kinds
        raise NeuralscaleError(f"cannot trace {type(model).__name__} with torch.fx ({type(e).__name__}: "
                               f"{first_line(e, None, '')})") from None


def _groups(an: Analysis) -> tuple[tuple[str, ...], ...]:
    """The layers (convolutions, batch norms, linear layers) each channel group holds, by module name."""
    held: dict[int | None, set[str]] = {}
    for name in [*an.convs, *an.linears]:
        held.setdefault(an.made_by(name), set()).add(name)
    for name, segs in an.norms.items():
        held.setdefault(an.find(segs[0]) if len(segs) == 1 else None, set()).add(name)
    return tuple(sorted(tuple(sorted(names)) for names in held.values()))


class _Shapes(fx.Interpreter):
    """Runs the traced graph on meta tensors and keeps every node's output shape (`node.meta["shape"]`)."""

    def run_node(self, n: fx.Node):
        out = super().run_node(n)
        if isinstance(out, torch.Tensor):
            n.meta["shape"] = tuple(out.shape)
        return out


class DoesNotRun(RuntimeError):
    """The model's traced graph does not run on inputs of the dataset's shape (images too small, a `torch._assert`
    on the image size, as torchvision's ViT has): zoo.space says so in one line."""


def _analyse_graph(model: nn.Module, gm: fx.GraphModule, input_shape: tuple[int, ...], num_classes: int) -> Analysis:
    # every node's output shape (on meta, a batch of 2): what a view or an indexing does to the channels (an image
    # too small for the model raises here, as it would in any forward pass: zoo.space says so)
    try:
        _Shapes(gm).run(torch.zeros(2, *input_shape, device="meta"))
    except (RuntimeError, ValueError, TypeError, IndexError, AssertionError) as e:
        first = first_line(e, None, type(e).__name__)
        first = re.sub(r"Proxy\(\w+\)", "?", first)  # a size the message formatted while traced
        first = first if len(first) <= 160 else first[:157] + "..."
        if "expected device meta" in first or "at least two devices" in first:  # a tensor made on a fixed device
            raise NeuralscaleError(f"{type(model).__name__} makes a tensor on a fixed device in its forward "
                                   f"({first}); make it on the input's device (x.device, or torch.zeros_like(x))") \
                from None
        if "meta" in first.lower():  # an operation without a meta kernel: neuralscale's limit, not the model's
            raise NeuralscaleError(f"cannot follow {type(model).__name__}'s shapes: neuralscale runs its traced "
                                   "graph on the meta device (shapes only), and an operation it uses has no shape "
                                   f"rule there ({first})") from None
        raise DoesNotRun(first) from None
    an = _Analyser(model, gm, input_shape, num_classes).run()
    an.code = gm.code
    return an


class _Analyser:
    """Walks the traced graph once, giving every node's output a channel layout (`_Tag`)."""

    def __init__(self, model: nn.Module, gm: fx.GraphModule, input_shape: tuple[int, ...], num_classes: int):
        self.model_name = type(model).__name__
        self.training = model.training
        self.gm, self.num_classes = gm, num_classes
        self.modules = dict(gm.named_modules())
        self.an = Analysis(parent={FIXED_INPUT: FIXED_INPUT, FIXED_OUTPUT: FIXED_OUTPUT},
                           fixed_width={FIXED_INPUT: input_shape[0], FIXED_OUTPUT: num_classes})
        self.tags: dict[fx.Node, _Tag | None] = {}

    def run(self) -> Analysis:
        for node in self.gm.graph.nodes:
            if node.op == "placeholder":
                self.tags[node] = _Tag([FIXED_INPUT])
            elif node.op == "output":
                self._output(node)
            elif node.op == "get_attr":
                raise self.obstacle(node, "a parameter used directly in forward")
            elif node.op == "call_module":
                self.tags[node] = self._module(node, self.modules[node.target])
            elif node.op in ("call_function", "call_method"):
                self.tags[node] = self._function(node)
            if self._in_place(node) and isinstance(node.args[0], fx.Node):  # x.add_(1) on a line of its own:
                self.tags[node.args[0]] = self.tags[node]  # what reads x later reads what it became
        for node, segments, what in self.an.fixed_only:  # known now that every tie is made
            if any(self.an.find(g) >= 0 for g in segments):
                raise self.obstacle(node, what)
        shared = [n for n in self.an.gate_after
                  if self.an.calls.get(n, 1) > 1 and self.an.find(self.an.activations[n]) >= 0]
        if shared:  # one gate after a module called in several places would mask them all as one layer
            node = next(n for n in self.gm.graph.nodes if n.op == "call_module" and n.target == shared[0])
            raise self.obstacle(node, f"a {type(self.modules[shared[0]]).__name__} used in several places (not 0 where "
                                      "a channel is masked) read by a layer; give each use a module of its own")
        return self.an

    def _in_place(self, node: fx.Node) -> bool:
        if not node.args:
            return False
        if node.op == "call_module":
            return getattr(self.modules[node.target], "inplace", False) is True
        name = node.target if isinstance(node.target, str) else getattr(node.target, "__name__", "")
        return node.kwargs.get("inplace") is True or (name.endswith("_") and not name.startswith("_")) \
            or node.target in (operator.iadd, operator.imul, operator.isub)

    def _read(self, t: _Tag | None, node: fx.Node) -> None:
        """`t` is read by a layer (or is the output): every module whose output reaches it ungated needs a gate
        after it, so that a masked channel is 0 wherever it is read, as a removed one would be."""
        for name in sorted(t.raw) if t is not None else ():  # sorted: one message whatever the hash seed
            if name.startswith("@"):
                self.an.fixed_only.append((node, list(t.segments), f"{name[1:]} of a gated layer's channels (not 0 "
                                                                    "where a channel is masked) read by a layer"))
            else:
                self.an.gate_after[name] = None

    def _shape(self, node) -> tuple[int, ...] | None:
        return node.meta.get("shape") if isinstance(node, fx.Node) else None

    def width(self, segments: list[int]) -> int:
        return sum(self.an.width(s) for s in segments)

    def obstacle(self, node: fx.Node, what: str, way: str = "") -> NeuralscaleError:
        """The one-line refusal of what cannot be followed, at its node; `way`: what to write instead."""
        what += " in training mode" if self.training else ""
        return NeuralscaleError(f"{self.model_name}: {what} at node {node.name!r} "
                                f"({node.op} {getattr(node.target, '__name__', node.target)}); "
                                "its channels cannot be followed, so widths cannot be changed safely"
                                + (f" ({way})" if way else ""))

    def _output(self, node: fx.Node) -> None:
        """The model's output is the classes: whatever produced them keeps its width."""
        if not isinstance(node.args[0], fx.Node):
            raise self.obstacle(node, f"an output of {type(node.args[0]).__name__}, not one tensor of class scores",
                                "return the class scores alone")
        outs = []
        fx.node.map_arg(node.args, lambda a: outs.append(a))
        for a in outs:
            t = self.tags.get(a)
            if t is None:
                continue
            if len(t.segments) != 1:
                raise self.obstacle(node, f"an output concatenated from {len(t.segments)} tensors' channels")
            if self.width(t.segments) != self.num_classes:
                raise self.obstacle(node, f"an output of {self.width(t.segments)} channels for {self.num_classes} "
                                          "classes")
            self.an.tie(t.segments[0], FIXED_OUTPUT, "the output")
            self._read(t, node)

    def _module(self, node: fx.Node, mod: nn.Module) -> _Tag | None:
        src = self.tags.get(node.args[0]) if node.args and isinstance(node.args[0], fx.Node) else None
        if isinstance(mod, _RESIZABLE):
            extra = {n for n, _ in [*mod.named_parameters(recurse=False), *mod.named_buffers(recurse=False)]}
            if extra - _STANDARD_TENSORS:
                raise self.obstacle(node, f"a {type(mod).__name__} with its own tensors "
                                          f"({', '.join(sorted(extra - _STANDARD_TENSORS))})")
            if node.target in self.an.convs or node.target in self.an.norms or node.target in self.an.linears:
                raise self.obstacle(node, f"a {type(mod).__name__} called a second time (one module's weights "
                                          "used in two places)")
            if isinstance(mod, (nn.Conv2d, nn.Linear)):  # its output's elements per channel, per image
                out = self._shape(node)
                self.an.positions[node.target] = math.prod(out[1:]) // (mod.out_channels if isinstance(mod, nn.Conv2d)
                                                                        else mod.out_features)
        if isinstance(mod, nn.Conv2d):
            return self._conv(node, mod, src)
        if isinstance(mod, nn.BatchNorm2d):
            if src is None or src.flat:
                raise self.obstacle(node, "a batch norm of a tensor without channels")
            self.an.norms[node.target] = src.segments
            return _Tag(list(src.segments))  # no raw: a gate follows every batch norm of a gated layer
        if isinstance(mod, nn.Linear):
            if src is None or (not src.flat and src.segments != [FIXED_INPUT]):
                raise self.obstacle(node, "a linear layer on channels that are not flattened")
            g = self.an.new(mod.out_features, node.target)  # tied to the classes if it reaches the output
            positions = src.positions if src.flat else None
            if positions is None:  # after a flatten (or on the image itself): the features it reads, per channel
                features, channels = self._shape(node.args[0])[-1], self.width(src.segments)
                if features % channels:
                    raise NeuralscaleError(f"linear layer {node.target} reads {features} features from {channels} "
                                           "channels")
                positions = features // channels
            self.an.linears[node.target] = Linear(src.segments, positions, g)
            self._read(src, node)
            return _Tag([g], flat=True, raw=frozenset({node.target}))
        if isinstance(mod, nn.Flatten):
            return self._flatten(node, src)
        if isinstance(mod, _NONZERO_MODULES):
            if src is None:
                return None
            self.an.calls[node.target] = self.an.calls.get(node.target, 0) + 1
            if len(src.segments) == 1:  # gated after itself where a layer reads it (its input need not be)
                self.an.activations[node.target] = src.segments[0]
                return _Tag(list(src.segments), src.flat, src.positions, frozenset({node.target}))
            return _Tag(list(src.segments), src.flat, src.positions, src.raw | {f"@a {type(mod).__name__}"})
        if isinstance(mod, _SAME) or type(mod).__name__ in _DROP_PATHS:
            return src
        if isinstance(mod, _OUTPUT_MODULES) and src is not None:  # nn.LogSoftmax(dim=1) as the last module
            self.an.fixed_only.append((node, list(src.segments), f"a {type(mod).__name__} of a gated layer's channels"))
            return src
        norm = isinstance(mod, (nn.GroupNorm, nn.LayerNorm, nn.InstanceNorm2d, nn.LocalResponseNorm))
        raise self.obstacle(node, f"a {type(mod).__name__} module", "a layer's channels are gated after a "
                            "BatchNorm2d: use one in its place" if norm else "")

    def _conv(self, node: fx.Node, mod: nn.Conv2d, src: _Tag | None) -> _Tag:
        if src is None or src.flat:
            raise self.obstacle(node, "a convolution of a tensor without channels")
        cin = self.width(src.segments)
        if cin != mod.in_channels:
            raise self.obstacle(node, f"a convolution expecting {mod.in_channels} channels of {cin}")
        if mod.groups == 1:
            g = self.an.new(mod.out_channels, node.target)
            self.an.convs[node.target] = Conv(src.segments, g, "dense")
            self._read(src, node)
            return _Tag([g], raw=frozenset({node.target}))
        if mod.groups == mod.in_channels == mod.out_channels and len(src.segments) == 1:
            self.an.convs[node.target] = Conv(src.segments, None, "depthwise")  # channel by channel: a masked
            # channel stays 0, but for a bias (a gate after it then does all, and one before it would count twice)
            return _Tag(list(src.segments), raw=frozenset({node.target}) if mod.bias is not None else src.raw)
        if len(src.segments) == 1 and mod.in_channels % mod.groups == 0 and mod.out_channels % mod.groups == 0 \
                and mod.out_channels // mod.groups == mod.in_channels // mod.groups:
            # grouped convolution with as many channels out as in per group (ResNeXt, RegNet): the group
            # count stays; both sides must stay multiples of it, and out follows in.
            g_in = self.an.find(src.segments[0])
            self.an.multiple[g_in] = math.lcm(self.an.multiple.get(g_in, 1), mod.groups)  # and of any before
            self.an.convs[node.target] = Conv(src.segments, None, "grouped")
            self._read(src, node)  # its channels mix within each group
            return _Tag(list(src.segments), raw=frozenset({node.target}))
        joined = (f" of a concatenation ({len(src.segments)} layers' channels: a grouped or depthwise convolution is "
                  "followed on one layer's)" if len(src.segments) > 1 else "")
        raise self.obstacle(node, f"a grouped convolution ({mod.groups} groups, {mod.in_channels} in, "
                                  f"{mod.out_channels} out){joined}")

    def _function(self, node: fx.Node) -> _Tag | None:
        target = node.target
        ins = _tensor_args(node)
        if (target is getattr and len(node.args) > 1 and node.args[1] in _METADATA) \
                or target in ("size", "dim") or (ins and all(self.tags.get(a) is None for a in ins)):
            return None  # a shape, a check or a value without channels: nothing to follow
        if isinstance(target, type) and any(u.op == "output" for u in node.users):  # GoogLeNet's namedtuple
            raise self.obstacle(node, f"an output of {target.__name__} (several tensors, as with an auxiliary head: "
                                      "build the model without them), not one tensor of class scores")
        if target in _TIE_FUNCTIONS:
            return self._tie(node, ins)
        if target is torch.cat:
            return self._cat(node)
        t = self.tags.get(ins[0]) if ins else None
        if t is None:
            raise self.obstacle(node, "an operation whose first operand has no channels")
        if target in _SAME_FUNCTIONS or target in _SAME_METHODS \
                or getattr(target, "__name__", "") == "stochastic_depth":
            return t
        if target in _NONZERO_FUNCTIONS:
            return _Tag(list(t.segments), t.flat, t.positions, t.raw | {f"@a {getattr(target, '__name__', target)}"})
        if target in _OUTPUT_FUNCTIONS:
            self.an.fixed_only.append((node, list(t.segments),
                                       f"a {getattr(target, '__name__', target)} of a gated layer's channels"))
            return t
        if target in (torch.flatten, "flatten"):
            start = node.args[1] if len(node.args) > 1 else node.kwargs.get("start_dim", 0)
            if start != 1:
                raise self.obstacle(node, f"a flatten from dimension {start}")
            return self._flatten(node, t)
        if target in _REDUCTIONS:
            return self._reduce(node, t)
        if target in _RESHAPES:
            return self._reshape(node, t)
        if target is operator.getitem:
            return self._index(node, t)
        if target == "expand_as":
            return self._expand_as(node, t, ins)
        raise self.obstacle(node, "an operation that may move or reshape channels")

    def _expand_as(self, node: fx.Node, t: _Tag, ins: list[fx.Node]) -> _Tag:
        """`y.expand_as(x)` of a (N, C, 1, 1) scale to x's map (squeeze-excitation as senet.pytorch writes it):
        its channels stay, and are x's."""
        shape, out = self._shape(node.args[0]), self._shape(node)
        other = self.tags.get(ins[1]) if len(ins) > 1 else None
        if t.flat or shape is None or out is None or len(shape) != len(out) or shape[:2] != out[:2] \
                or other is None or other.flat or len(other.segments) != len(t.segments):
            raise self.obstacle(node, "an expand_as that may spread channels (one that keeps them expands only "
                                      "dimensions of size 1 past the channels, to a map of the same channels)")
        for a, b in zip(t.segments, other.segments):
            self.an.tie(a, b, f"node {node.name!r}")
        return _Tag(list(t.segments), raw=t.raw)

    def _reduce(self, node: fx.Node, t: _Tag) -> _Tag:
        """A mean, sum or maximum over spatial dimensions (global average pooling written by hand) keeps the
        channels; over the batch or the channels it cannot be followed."""
        dims = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim")
        shape, out = self._shape(node.args[0]), self._shape(node)
        dims = [dims] if isinstance(dims, int) else dims
        if t.flat or shape is None or out is None or not isinstance(dims, (list, tuple)) \
                or {int(d) % len(shape) for d in dims} & {0, 1}:
            raise self.obstacle(node, "a reduction over the channels (or of a tensor without them)")
        return _Tag(list(t.segments), flat=True, raw=t.raw) if len(out) == 2 else _Tag(list(t.segments), raw=t.raw)

    def _reshape(self, node: fx.Node, t: _Tag) -> _Tag:
        """A view, reshape, squeeze or unsqueeze that flattens a map of channels channel by channel (as
        `x.view(x.size(0), -1)` does), drops or adds dimensions of size 1, or changes nothing; any other
        moves channels."""
        shape, out = self._shape(node.args[0]), self._shape(node)
        if node.target in (torch.squeeze, "squeeze"):
            dims = node.args[1:] or [node.kwargs.get("dim")]
            dims = dims[0] if len(dims) == 1 and isinstance(dims[0], (tuple, list)) else dims
            if shape is None or not all(isinstance(d, int) and d % len(shape) > 1 for d in dims):
                raise self.obstacle(node, "a squeeze that may drop the channels (at a width of 1); name the "
                                          "dimensions, as x.squeeze(-1)")
        if shape is not None and out is not None and len(shape) >= 2 and out[:1] == shape[:1]:
            c, rest = shape[1], math.prod(shape[2:])
            if not t.flat and out == (shape[0], c * rest):
                self.an.nchw_only |= node.target == "view" and rest > 1  # a view cannot flatten a channels-last map
                return _Tag(list(t.segments), flat=True, positions=rest, raw=t.raw)
            if not t.flat and len(out) > 2 and out[1] == c and math.prod(out[2:]) == rest:
                return _Tag(list(t.segments), raw=t.raw)
            if t.flat and t.positions == 1 and len(shape) == 2 and len(out) > 2 and out[1] == c \
                    and math.prod(out[2:]) == 1:  # (N, C) to (N, C, 1, 1): channels again (a gate written by hand)
                return _Tag(list(t.segments), raw=t.raw)
            if out == shape:
                return t
        raise self.obstacle(node, f"a {getattr(node.target, '__name__', node.target)} from shape {shape} to {out} "
                                  "(one that keeps the channels flattens them in order, as x.view(x.size(0), -1), or "
                                  "only drops or adds dimensions of size 1)")

    def _index(self, node: fx.Node, t: _Tag) -> _Tag:
        """Indexing that keeps every channel (`x[:, :, 0, 0]`, `x[..., 1:]`): positions picked, channels kept."""
        index = node.args[1] if isinstance(node.args[1], tuple) else (node.args[1],)
        shape, out = self._shape(node.args[0]), self._shape(node)
        if index and index[0] is Ellipsis:
            index = (slice(None),) * ((len(shape) if shape else 0) - len(index) + 1) + index[1:]
        every = slice(None)
        if t.flat or shape is None or out is None or len(index) < 2 or index[:2] != (every, every) \
                or not all(isinstance(i, (int, slice)) for i in index[2:]) or len(out) < 2 or out[1] != shape[1]:
            raise self.obstacle(node, "an indexing that selects channels")
        return _Tag(list(t.segments), flat=True, raw=t.raw) if len(out) == 2 else _Tag(list(t.segments), raw=t.raw)

    def _tie(self, node: fx.Node, ins: list[fx.Node]) -> _Tag | None:
        """An elementwise sum or product: the channels of its operands are the same channels."""
        ts = [t for t in (self.tags.get(a) for a in ins) if t is not None]
        if not ts:
            return None
        first = ts[0]
        for t in ts[1:]:
            if t.flat != first.flat or len(t.segments) != len(first.segments):
                few, many = sorted((len(first.segments), len(t.segments)))
                other = "1 layer's" if few == 1 else f"{few} layers'"
                joined = (f" (a concatenation of {many} layers' channels with {other}: only operands laid out alike "
                          "are followed)" if t.flat == first.flat else "")  # (else: a map with a vector)
                raise self.obstacle(node, f"an elementwise operation on differently laid out channels{joined}")
            for a, b in zip(first.segments, t.segments):
                self.an.tie(a, b, f"node {node.name!r}")
        clean = [t.raw for t in ts if not any(n.startswith("@") for n in t.raw)]
        if node.target in _PRODUCTS and clean:  # 0 where a masked channel is 0 in any factor: the factor that needs
            raw = min(clean, key=len)  # the fewest gates for it (none: one gated already; a squeeze-excitation's
            # sigmoid scale is never gated)
        else:
            raw = frozenset().union(*(t.raw for t in ts))
            if node.target not in _PRODUCTS and any(isinstance(a, (int, float)) and a != 0 for a in node.args):
                raw |= {"@a sum with a constant"}  # x + 3 is 3 where x is masked
        return _Tag(list(first.segments), first.flat, first.positions, raw)

    def _cat(self, node: fx.Node) -> _Tag:
        parts = node.args[0]
        dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", 0)
        if dim != 1:
            raise self.obstacle(node, f"a concatenation along dimension {dim}")
        segs = []
        for p in parts:
            t = self.tags.get(p)
            if t is None or t.flat:
                raise self.obstacle(node, "a concatenation of tensors without channels")
            segs += t.segments
        return _Tag(segs, raw=frozenset().union(*(self.tags[p].raw for p in parts)))

    def _flatten(self, node: fx.Node, src: _Tag | None) -> _Tag:
        shape = self._shape(node.args[0])
        if src is not None and src.flat and shape is not None and len(shape) == 2 and self._shape(node) == shape:
            return src  # a vector of features already (as after x.mean((2, 3))): flattening changes nothing
        if src is None or src.flat:
            raise self.obstacle(node, "a flatten of a tensor without channels")
        return _Tag(list(src.segments), flat=True, positions=None, raw=src.raw)  # spatial size: from the shapes


class GenericSpace:
    """Everything the width space needs from an analysed model: gated groups, and a builder."""

    def __init__(self, name: str, make: Callable[[], nn.Module], info: DatasetInfo):
        # made once, on the CPU (some builders compute with tensors), and kept as a meta skeleton with the calls that
        # initialised it (initialise.py), which every build makes again; its own draws are dropped: seeded here on
        # the CPU's generator alone (fork_rng(devices=[]) gives back no device's), the caller's streams are untouched
        with torch.device("cpu"), torch.random.fork_rng(devices=[]):
            torch.random.default_generator.manual_seed(0)
            model, calls = recorded(make)
        self._calls, self.not_followed = followed(model, calls)
        model = model.to("meta").float().eval()  # trained in float32, whatever its own dtype
        self.template = model
        self._pickled: bytes | None = None
        # each build starts from a copy of the skeleton: unpickled in 1.5 ms where deepcopy takes 6 (ResNet18); only
        # where every class's module is imported already (pickle would import one that is not: a model file's
        # helper module, taken away after the file imported it, modelfile.py)
        if all(type(m).__module__ in sys.modules for m in model.modules()):
            try:
                self._pickled = pickle.dumps(model)
            except Exception:  # noqa: BLE001  (a module of the user's that does not pickle: deepcopy it each time)
                pass
        self.an = analyse(model, info.input_shape, info.num_classes)
        if self.not_followed:  # (said of a model that can be scaled only)
            warn(not_followed_text(name, self.not_followed))
        roots = sorted({self.an.find(g) for g in self.an.base if self.an.find(g) >= 0})
        self.roots = roots
        self.index = {r: i for i, r in enumerate(roots)}
        self.layer_names = [self.an.name[r] for r in roots]
        self.base_widths = [self.an.base[r] for r in roots]
        # the other layers each width also sets (a residual's branches, a shortcut's projection): tied to it
        # (a depthwise convolution's output is its input's channels: it follows the group it reads)
        starts = [(n, c.out if c.out is not None else c.segments[0]) for n, c in self.an.convs.items() if c.segments
                  or c.out is not None] + [(n, lin.out) for n, lin in self.an.linears.items()]
        self.tied = {self.an.name[r]: [n for n, g in starts if g >= 0 and self.an.find(g) == r and n != self.an.name[r]]
                     for r in roots}
        self.multiples = [self.an.multiple.get(r, 1) for r in roots]
        self.info = info
        self.name = name
        # what the model computes, as text: its traced code and its modules (their sizes, strides, ...)
        self.fingerprint = hashlib.sha256((self.an.code + repr(model)).encode()).hexdigest()[:10]
        self._prepare_costs()
        self._self_check()

    def _self_check(self) -> None:
        """Build at uneven widths (on meta) and run it, in evaluation and in training mode: a space that would
        build a wrong model fails here."""
        odd = [max(m, (w // 2 + 1) // m * m) + (m if i % 2 else 0)
               for i, (w, m) in enumerate(zip(self.base_widths, self.multiples))]
        with torch.device("meta"):
            model = self.build(odd)
        for mode in ("eval",) if self.an.same_in_training else ("eval", "train"):  # (the same code: the same run)
            where = "" if mode == "eval" else " in training mode"
            try:
                with torch.device("meta"):
                    out = model.train(mode == "train")(torch.zeros(2, *self.info.input_shape))
            except NeuralscaleError:
                raise
            except Exception as e:
                raise NeuralscaleError(f"{self.name}: a model rebuilt at other widths does not run{where} "
                                       f"({type(e).__name__}: {first_line(e, None, '')})") from None
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else f"a {type(out).__name__}"
            if got != (2, self.info.num_classes):
                raise NeuralscaleError(f"{self.name}: a model rebuilt at other widths gives outputs of shape {got}"
                                       f"{where}, not (2, {self.info.num_classes}); it cannot be scaled safely")

    def _prepare_costs(self) -> None:
        """Parameters and MACs from widths by formula (checked against built models in the tests)."""
        t = self.template
        self.positions = dict(self.an.positions)  # from the analysis's meta pass (`_Shapes`)
        replaced = set(self.an.convs) | set(self.an.norms) | set(self.an.linears)
        self.const_params = sum(p.numel() for n, p in t.named_parameters() if n.rpartition(".")[0] not in replaced)
        self.modules = {n: t.get_submodule(n) for n in replaced}

    def costs(self, widths: list[int]) -> tuple[int, int]:
        W = lambda segs: sum(self.width_of(s, widths) for s in segs)  # noqa: E731
        params, macs = self.const_params, 0
        for name, c in self.an.convs.items():
            m = self.modules[name]
            cin = W(c.segments)
            cout = self.width_of(c.out, widths) if c.kind == "dense" else cin
            groups = 1 if c.kind == "dense" else (cin if c.kind == "depthwise" else m.groups)
            k = m.kernel_size[0] * m.kernel_size[1]
            params += cout * (cin // groups) * k + (cout if m.bias is not None else 0)
            macs += self.positions[name] * cout * k * (cin // groups)
        for name, segs in self.an.norms.items():
            if self.modules[name].affine:
                params += 2 * W(segs)
        for name, lin in self.an.linears.items():
            m = self.modules[name]
            fin, fout = W(lin.segments) * lin.positions, self.width_of(lin.out, widths)
            params += fin * fout + (fout if m.bias is not None else 0)
            macs += self.positions[name] * fin * fout
        return int(params), int(macs)

    def state_shapes(self, widths: list[int]) -> dict[str, tuple[int, ...]]:
        """The shape of every entry of `build(widths)`'s state dict, by the same rules as `build`, without
        building it: the channel graph probes a space at about two widths per layer (DenseNet121: 121 layers,
        0.13 s a build)."""
        self.check(widths)
        W = lambda segs: sum(self.width_of(s, widths) for s in segs)  # noqa: E731
        out = dict(self._template_shapes)

        def put(name: str, **shapes: tuple[int, ...]) -> None:
            for alias in self._names_of[name]:  # a module held under two names is in the state dict twice
                for attr, shape in shapes.items():
                    if f"{alias}.{attr}" in out:  # as _resize: only what the module has
                        out[f"{alias}.{attr}"] = shape
        for name, c in self.an.convs.items():
            m = self.modules[name]
            cin = W(c.segments)
            cout = self.width_of(c.out, widths) if c.kind == "dense" else cin
            groups = 1 if c.kind == "dense" else (cin if c.kind == "depthwise" else m.groups)
            put(name, weight=(cout, cin // groups, *m.kernel_size), bias=(cout,))
        for name, segs in self.an.norms.items():
            n = W(segs)
            put(name, weight=(n,), bias=(n,), running_mean=(n,), running_var=(n,))
        for name, lin in self.an.linears.items():
            fin, fout = W(lin.segments) * lin.positions, self.width_of(lin.out, widths)
            put(name, weight=(fout, fin), bias=(fout,))
        return out

    @functools.cached_property
    def _template_shapes(self) -> dict[str, tuple[int, ...]]:
        return {k: tuple(v.shape) for k, v in self.template.state_dict().items()}

    @functools.cached_property
    def _names_of(self) -> dict[str, list[str]]:
        """Every name under which each resized module is reachable (its own first)."""
        names: dict[int, list[str]] = {}
        for n, m in self.template.named_modules(remove_duplicate=False):
            names.setdefault(id(m), []).append(n)
        return {n: names[id(self.modules[n])] for n in self.modules}

    def width_of(self, g: int, widths: list[int]) -> int:
        r = self.an.find(g)
        return widths[self.index[r]] if r >= 0 else self.an.fixed_width[r]

    def check(self, widths: list[int]) -> None:
        for w, m, n in zip(widths, self.multiples, self.layer_names):
            if w % m:
                raise NeuralscaleError(f"layer {n} feeds a grouped convolution of {m} groups: its width must be a "
                                       f"multiple of {m}, got {w}")

    def build(self, widths: list[int]) -> nn.Module:
        """A fresh model whose every group has exactly the given width."""
        self.check(widths)
        dev = torch.get_default_device()
        model = (pickle.loads(self._pickled) if self._pickled is not None else copy.deepcopy(self.template)).train()
        self._set_widths(model, widths)
        if dev.type != "meta":
            model.to_empty(device=dev)
            initialise(model, self._calls)
            for name, buf in model.named_buffers():
                if buf.is_floating_point() and not torch.isfinite(buf).all():
                    raise NeuralscaleError(f"buffer {name} has no initial value after rebuilding the model")
        self._add_gates(model, widths)
        if self.an.nchw_only:
            model.ns_nchw_only = True
        return model

    def resize(self, model: nn.Module, widths: list[int]) -> None:
        """`model`, built by `build`, given these widths in place (a pruning step without a rebuild): its modules'
        sizes and its gates' widths; every tensor of a resized module is left on meta, for the caller to assign."""
        self.check(widths)
        self._set_widths(model, widths)
        for m in model.modules():
            if isinstance(m, Gate):
                m.width = widths[m.index]
                m.ones = None  # as a new gate: a mask of the old width would not fit (a pruner attaches new ones)

    def _set_widths(self, model: nn.Module, widths: list[int]) -> None:
        W = lambda segs: sum(self.width_of(s, widths) for s in segs)  # noqa: E731
        # Resized in place, so that subclasses (timm's BatchNormAct2d, Conv2dSame) keep their behaviour.
        for name, c in self.an.convs.items():
            m = model.get_submodule(name)
            cin = W(c.segments)
            cout = self.width_of(c.out, widths) if c.kind == "dense" else cin
            m.groups = 1 if c.kind == "dense" else (cin if c.kind == "depthwise" else m.groups)
            m.in_channels, m.out_channels = cin, cout
            _resize(m, weight=(cout, cin // m.groups, *m.kernel_size), bias=(cout,))
        for name, segs in self.an.norms.items():
            m = model.get_submodule(name)
            m.num_features = W(segs)
            _resize(m, weight=(m.num_features,), bias=(m.num_features,), running_mean=(m.num_features,),
                    running_var=(m.num_features,))
        for name, lin in self.an.linears.items():
            m = model.get_submodule(name)
            m.in_features, m.out_features = W(lin.segments) * lin.positions, self.width_of(lin.out, widths)
            _resize(m, weight=(m.out_features, m.in_features), bias=(m.out_features,))

    def _add_gates(self, model: nn.Module, widths: list[int]) -> None:
        """A gate after every batch norm of a gated layer (one per segment where the norm reads a concatenation)
        and after every module whose output a layer reads without passing one (`_Analyser._read`): a masked
        channel is then 0 wherever it is read, which is what removing it computes."""
        gated = set()
        for name, segs in self.an.norms.items():
            roots = [self.an.find(g) for g in segs]
            if len(segs) == 1 and roots[0] >= 0:
                _gate_after(model.get_submodule(name), self.index[roots[0]], widths)
            elif len(segs) > 1 and any(r >= 0 for r in roots):
                norm = model.get_submodule(name)
                norm.ns_gate = SegmentGates([Gate(self.index[r], widths[self.index[r]]) if r >= 0
                                             else self.an.fixed_width[r] for r in roots])
                norm.register_forward_hook(_apply_gate)
            gated.update(r for r in roots if r >= 0)
        for name in self.an.gate_after:
            r = self.an.made_by(name)
            if r >= 0:
                _gate_after(model.get_submodule(name), self.index[r], widths)
                gated.add(r)
        producers = [n for n, c in self.an.convs.items() if c.kind == "dense"] + list(self.an.linears)
        for name in producers:  # a layer whose output no layer reads ungated (only multiplied by a gated one)
            r = self.an.made_by(name)
            if r >= 0 and r not in gated:
                _gate_after(model.get_submodule(name), self.index[r], widths)


def _replace(model: nn.Module, name: str, new: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, new)


def _gate_after(module: nn.Module, index: int, widths: list[int]) -> None:
    module.ns_gate = Gate(index, widths[index], module)  # a source only if `module` is a plain affine BN
    module.register_forward_hook(_apply_gate)


def _apply_gate(module, inputs, output):
    return module.ns_gate(output)


def torchvision_factory(name: str, info: DatasetInfo) -> Callable[[], nn.Module]:
    with paused():  # torchvision imports torch._dynamo: about a second, a fifth of it the collector's
        import torchvision
    models = torchvision.models
    classifiers = models.list_models(module=models)
    if name.lower() not in classifiers:  # torchvision's builders take any case (ResNet18)
        kinds = {"segmentation": "segmentation", "detection": "detection", "video": "video", "optical_flow":
                 "optical-flow", "quantization": "quantized"}
        kind = next((k for mod, k in kinds.items() if name.lower() in models.list_models(module=getattr(models, mod))),
                    None)
        if kind is not None:  # (and never a download: their builders fetch backbone weights by default)
            article = "an" if kind[0] in "aeiou" else "a"
            raise NeuralscaleError(f"torchvision:{name} is {article} {kind} model; neuralscale takes torchvision's "
                                   "image classifiers (torchvision.models.list_models(module=torchvision.models))")
        names = [f"torchvision:{n}" for n in classifiers]
        raise NeuralscaleError(f"unknown torchvision model {name!r}{suggest(f'torchvision:{name}', names)}")

    def make() -> nn.Module:
        kwargs = {"num_classes": info.num_classes}
        if name.startswith("inception") or name.startswith("googlenet"):
            kwargs["aux_logits"] = False
            kwargs["init_weights"] = False
        model = torchvision.models.get_model(name, weights=None, **kwargs)
        first = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
        if first.in_channels != info.in_channels:  # e.g. 1-channel Fashion-MNIST
            _retarget_input(model, first, info.in_channels)
        return model
    return make


def timm_factory(name: str, info: DatasetInfo) -> Callable[[], nn.Module]:
    with paused():
        timm = optional_import("timm")
    if timm is None:
        raise NeuralscaleError("timm models need the optional extra: pip install 'neuralscale[timm]'")
    if name not in timm.list_models():
        names = [f"timm:{n}" for n in timm.list_models()]
        raise NeuralscaleError(f"unknown timm model {name!r}{suggest(f'timm:{name}', names)}")

    def make() -> nn.Module:
        return timm.create_model(name, pretrained=False, num_classes=info.num_classes, in_chans=info.in_channels)
    return make


def _retarget_input(model: nn.Module, first: nn.Conv2d, channels: int) -> None:
    for n, m in model.named_modules():
        if m is first:
            new = nn.Conv2d(channels, first.out_channels, first.kernel_size, first.stride, first.padding,
                            first.dilation, first.groups, first.bias is not None)
            nn.init.kaiming_normal_(new.weight, mode="fan_out", nonlinearity="relu")  # torchvision's for its convs
            _replace(model, n, new)
            return


def module_space(name: str, make: Callable[[], nn.Module], info: DatasetInfo, own: bool = False):
    """A WidthSpace for the modules `make()` returns (fresh each call), on inputs of `info`; `own`: a model of the
    user's, whose name does not say what it computes (the space carries its fingerprint as its architecture)."""
    gs = GenericSpace(name, make, info)
    if not gs.layer_names:  # refused now, not after a descent's training finds no channel to prune
        raise NeuralscaleError(f"{name} has no layer whose width can change: every channel it computes is the "
                               "image's or a class score (a gated layer is a convolution or linear layer whose "
                               "outputs another layer reads)")
    space = WidthSpace(name, gs.layer_names, gs.base_widths, info, gs.build, multiples=gs.multiples, costs=gs.costs,
                       shapes=gs.state_shapes, resize=gs.resize, architecture=gs.fingerprint if own else None)
    space.generic = gs
    return space
