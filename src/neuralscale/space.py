"""Width spaces: a network family whose every gated layer's width is a parameter.

A width space knows its gated layers (names, base widths, in order) and builds a
freshly initialised model for any list of widths.  Everything downstream
(accounting, pruning, scaling laws, sweeps) talks to this interface only.
Which spaces exist, and how a name becomes one, is zoo.py's business.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import torch
from torch import nn

from .accounting import _output_positions, count_macs, count_params
from .data.info import DatasetInfo
from .errors import EnvironmentFailure, NeuralscaleError
from .initialise import initialisers_skipped
from .memory import refuse_beyond
from .validate import MAX_WIDTH, ratio as check_ratio


@dataclass(frozen=True)
class Family:
    """What the registry knows of a space's family, so that nothing downstream matches names.

    paper: one of the paper's three families, whose descent follows the original's rules (stop before a layer
    empties, rows from the step every layer has lost a channel); generic models prune on, rows per layer.
    add10: the original adds 10 channels to every layer under 10 when it rebuilds the network for the next
    descent iteration (its ResNet18 and MobileNetV2 code; not its VGG11).
    variant: "convcut" for the paper's all-convolution shortcuts, else None.
    """

    name: str
    paper: bool = False
    add10: bool = False
    variant: str | None = None


class WidthSpace:
    """Gated layers with base widths, and `build(widths)` -> a new nn.Module."""

    def __init__(self, name: str, layer_names: Sequence[str], base_widths: Sequence[int],
                 info: DatasetInfo, make: Callable[[list[int]], nn.Module],
                 original_count: Callable[[list[int]], int] | None = None,
                 multiples: Sequence[int] | None = None,
                 costs: Callable[[list[int]], tuple[int, int]] | None = None, family: Family | None = None,
                 shapes: Callable[[list[int]], dict[str, tuple[int, ...]]] | None = None,
                 resize: Callable[[nn.Module, list[int]], None] | None = None, architecture: str | None = None):
        if len(layer_names) != len(base_widths):
            raise ValueError("layer_names and base_widths differ in length")
        self.name = name
        self.layer_names = tuple(layer_names)
        self.base_widths = tuple(int(w) for w in base_widths)
        self.info = info
        self._make = make
        self._original_count = original_count  # the original code's parameter formula, where it has one
        self._positions: dict[str, int] = {}  # output positions per layer, for MACs
        # a layer feeding a grouped convolution must keep a multiple of its group count
        self.multiples = tuple(int(m) for m in multiples) if multiples else (1,) * len(self.base_widths)
        self._formula = costs  # (params, MACs) by formula, where the space has one; else a meta build counts
        self.family = family or Family(name.split(":", 1)[0])  # a generic space's family: its scheme or module
        self._shapes = shapes  # state-dict shapes by rule, where the space has one; else a meta build shows them
        self._resize = resize  # a built model given new widths in place, where the space can (generic, VGG11)
        # a digest of a model of the user's own (its traced code and modules): its name alone does not say which
        # version of it a run or a descent trained, so their records carry this too
        self.architecture = architecture

    def __repr__(self) -> str:
        return f"WidthSpace({self.name!r}, dataset={self.info.name!r}, layers={len(self)})"

    def own_architecture(self) -> dict:
        """{"architecture": digest} for a model of the user's own, {} for a named one: what a record of it adds."""
        return {"architecture": self.architecture} if self.architecture else {}

    def __len__(self) -> int:
        return len(self.base_widths)

    def rebased(self, widths: Sequence[int]) -> "WidthSpace":
        """The same family with other base widths (e.g. a narrower start for a descent)."""
        sp = WidthSpace(self.name, self.layer_names, self.validate(widths), self.info, self._make, self._original_count,
                        self.multiples, self._formula, self.family, self._shapes, self._resize, self.architecture)
        sp._positions = self._positions
        return sp

    def validate(self, widths: Sequence[int]) -> list[int]:
        """Widths as a list of ints, or a NeuralscaleError saying what is wrong."""
        if isinstance(widths, (str, bytes)) or not isinstance(widths, Iterable):
            raise NeuralscaleError(f"widths must be a list of {len(self)} integers, not {type(widths).__name__}")
        widths = list(widths)
        if len(widths) != len(self):
            raise NeuralscaleError(
                f"{self.name} has {len(self)} gated layers, got {len(widths)} widths")
        out = []
        for i, w in enumerate(widths):
            if getattr(w, "shape", None) == () and callable(getattr(w, "item", None)):
                w = w.item()  # a NumPy or torch scalar: its number (int() truncated 3.5 to 3)
            if isinstance(w, bool) or not isinstance(w, (int, float)) or (isinstance(w, float) and not w.is_integer()):
                raise NeuralscaleError(f"width {i + 1} ({self.layer_names[i]}) is not an integer: {w!r}")
            w = int(w)
            if not 1 <= w <= MAX_WIDTH:
                raise NeuralscaleError(f"width {i + 1} ({self.layer_names[i]}) must be between 1 and {MAX_WIDTH}, "
                                       f"got {w}")
            if w % self.multiples[i]:
                raise NeuralscaleError(f"width {i + 1} ({self.layer_names[i]}) feeds a grouped convolution of "
                                       f"{self.multiples[i]} groups, so it must be a multiple of {self.multiples[i]}; got {w}")
            out.append(w)
        return out

    def uniform(self, ratio: float) -> list[int]:
        """Every base width times `ratio`, truncated as the original does (at least 1, or down to a layer's multiple)."""
        ratio = check_ratio(ratio)
        return self.validate([max(m, int(w * ratio) // m * m) for w, m in zip(self.base_widths, self.multiples)])

    def build(self, widths: Sequence[int], device: torch.device | str | None = None) -> nn.Module:
        """A freshly initialised model with exactly these widths (on the meta device: shapes only, and
        torch.nn.init's initialisers are skipped, since a meta tensor has no values to fill)."""
        widths = self.validate(widths)
        if device is not None:
            device = _device(device)
        if device is None or torch.device(device).type != "meta":
            refuse_beyond(4 * self.params(widths), 1 / 2, f"{self.name} at widths {_short(widths)}: its weights",
                          "ask for a smaller model")  # training's share: Trainer (train.py)
        if device is None:
            return self._make(widths)
        if torch.device(device).type == "meta":
            with initialisers_skipped(), torch.device("meta"):
                return self._make(widths)
        with torch.device(device):
            return self._make(widths)

    @property
    def resizes_in_place(self) -> bool:
        """Whether `resize` can give a model this space built new widths in place (a generic space and VGG11 can)."""
        return self._resize is not None

    def resize(self, model: nn.Module, widths: Sequence[int]) -> None:
        """Give `model`, built by this space, these widths in place (a pruning step then needs no rebuild): its
        modules' sizes and its gates' widths, every tensor of a resized module left on meta for the caller to
        assign. Only where `resizes_in_place`."""
        if self._resize is None:
            raise NotImplementedError(f"{self.name} builds a new model for new widths; it does not resize one")
        self._resize(model, self.validate(widths))

    def state_shapes(self, widths: Sequence[int]) -> dict[str, tuple[int, ...]]:
        """The shape of every entry of the state dict of the model these widths build."""
        widths = self.validate(widths)
        if self._shapes is not None:
            return self._shapes(widths)
        return {k: tuple(v.shape) for k, v in self.build(widths, device="meta").state_dict().items()}

    def params(self, widths: Sequence[int]) -> int:
        """Exact parameter count of the model these widths build (gates hold none)."""
        return self._costs(tuple(self.validate(widths)))[0]

    def tau(self, widths: Sequence[int], count: str = "exact") -> int:
        """The parameter count a scaling law is fitted against.

        `exact` counts the built model; `original` uses the original
        implementation's formula (which the original's trajectories were
        fitted with), where this space has one.
        """
        if count == "exact":
            return self.params(widths)
        if count == "original":
            if self._original_count is None:
                raise NeuralscaleError(f"{self.name} has no original parameter formula; use the exact count")
            return int(self._original_count(self.validate(widths)))
        raise NeuralscaleError(f"unknown parameter count {count!r}; use exact or original")

    def macs(self, widths: Sequence[int]) -> int:
        """Multiply-accumulates of conv and linear layers for one image."""
        return self._costs(tuple(self.validate(widths)))[1]

    @functools.lru_cache(maxsize=4096)
    def _costs(self, widths: tuple[int, ...]) -> tuple[int, int]:
        if self._formula is not None:
            return self._formula(list(widths))
        model = self.build(widths, device="meta")
        names = [n for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
        for at in (self.multiples, widths):  # the narrowest first; a layer it lacks (a shortcut conv), at these
            if any(n not in self._positions for n in names):
                self._positions.update(self._cpu_positions(at))
        return count_params(model), count_macs(model, self.info.input_shape, self._positions)

    def _cpu_positions(self, widths: Sequence[int]) -> dict[str, int]:
        """Each layer's output positions at these widths, from one forward pass on the CPU (spatial sizes do not
        depend on widths, but which layers exist may: a shortcut conv where widths differ): milliseconds, where a
        process's first meta pass takes seconds. Its weights are zeros, not drawn (the caller's random stream is
        untouched). None found (a model that does not run so): count_macs makes its meta pass."""
        try:
            with torch.random.fork_rng(devices=[]), initialisers_skipped(), torch.device("cpu"):
                model = self._make(list(widths))
            with torch.no_grad():
                for t in (*model.parameters(), *model.buffers()):
                    if t.is_floating_point():
                        t.zero_()
            layers = {n: m for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}
            return _output_positions(model, self.info.input_shape, layers, on_cpu=True)
        except (RuntimeError, ValueError, ZeroDivisionError):
            return {}

    def describe(self, widths: Sequence[int]) -> dict:
        """The keys every command's --json shares: model, dataset, layers, widths, params, macs, and the
        shares of the base model's parameters and MACs."""
        widths = self.validate(widths)
        p, m = self.params(widths), self.macs(widths)
        return {"model": self.name, "dataset": self.info.name, "layers": list(self.layer_names), "widths": widths,
                "params": p, "macs": m, "params_share": p / self.params(self.base_widths),
                "macs_share": m / self.macs(self.base_widths)}


def _short(widths: Sequence[int]) -> str:
    """Widths for a one-line message: all of them, or the first few and a count."""
    return ",".join(map(str, widths)) if len(widths) <= 8 else ",".join(map(str, widths[:6])) + f",... ({len(widths)})"


def _device(device) -> torch.device:
    """A device to build on: one torch knows and this machine has (one clear line otherwise)."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise NeuralscaleError(f"unknown device {device!r}; use cpu, cuda, cuda:N or meta") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise EnvironmentFailure(f"CUDA was asked for ({device}) but no CUDA device is available; use cpu")
    return dev
