"""Width spaces: a network family whose every gated layer's width is a parameter.

A width space knows its gated layers (names, base widths, in order) and builds a
freshly initialised model for any list of widths.  Everything downstream
(accounting, pruning, scaling laws, sweeps) talks to this interface only.
"""

from __future__ import annotations

import functools
from typing import Callable, Sequence

import torch
from torch import nn

from . import accounting
from .data.info import DatasetInfo
from .errors import NeuralscaleError
from .models import mobilenetv2, resnet, vgg
from .validate import MAX_WIDTH, ratio as check_ratio, suggest


class WidthSpace:
    """Gated layers with base widths, and `build(widths)` -> a new nn.Module."""

    def __init__(self, name: str, layer_names: Sequence[str], base_widths: Sequence[int],
                 info: DatasetInfo, make: Callable[[list[int]], nn.Module],
                 original_count: Callable[[list[int]], int] | None = None,
                 multiples: Sequence[int] | None = None,
                 costs: Callable[[list[int]], tuple[int, int]] | None = None):
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

    def __repr__(self) -> str:
        return f"WidthSpace({self.name!r}, dataset={self.info.name!r}, layers={len(self)})"

    def __len__(self) -> int:
        return len(self.base_widths)

    def rebased(self, widths: Sequence[int]) -> "WidthSpace":
        """The same family with other base widths (e.g. a narrower start for a descent)."""
        sp = WidthSpace(self.name, self.layer_names, self.validate(widths), self.info, self._make, self._original_count,
                        self.multiples, self._formula)
        sp._positions = self._positions
        return sp

    def validate(self, widths: Sequence[int]) -> list[int]:
        """Widths as a list of ints, or a NeuralscaleError saying what is wrong."""
        widths = list(widths)
        if len(widths) != len(self):
            raise NeuralscaleError(
                f"{self.name} has {len(self)} gated layers, got {len(widths)} widths")
        out = []
        for i, w in enumerate(widths):
            if isinstance(w, float) and not w.is_integer():
                raise NeuralscaleError(f"width {i + 1} ({self.layer_names[i]}) is not an integer: {w}")
            try:
                w = int(w)
            except (TypeError, ValueError):
                raise NeuralscaleError(f"width {i + 1} ({self.layer_names[i]}) is not an integer: {w!r}") from None
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
        """A freshly initialised model with exactly these widths."""
        widths = self.validate(widths)
        if device is None:
            return self._make(widths)
        with torch.device(device):
            return self._make(widths)

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
        return accounting.count_params(model), accounting.count_macs(model, self.info.input_shape, self._positions)

    def describe(self, widths: Sequence[int]) -> dict:
        widths = self.validate(widths)
        return {"model": self.name, "dataset": self.info.name, "layers": list(self.layer_names),
                "widths": widths, "params": self.params(widths), "macs": self.macs(widths)}


# --- the paper's three families ----------------------------------------------

def _vgg11(info: DatasetInfo, convcut: bool) -> WidthSpace:
    if convcut:
        raise NeuralscaleError("vgg11 has no shortcuts, so --convcut does not apply to it")
    return WidthSpace("vgg11", vgg.LAYER_NAMES, vgg.BASE_WIDTHS, info,
                      lambda w: vgg.VGG11(w, info.num_classes, info.in_channels),
                      lambda w: vgg.original_param_count(w, info.num_classes, info.in_channels))


def _resnet18(info: DatasetInfo, convcut: bool) -> WidthSpace:
    first_stride = 2 if info.resolution >= 64 else 1
    return WidthSpace("resnet18" + ("-convcut" if convcut else ""), resnet.LAYER_NAMES, resnet.BASE_WIDTHS, info,
                      lambda w: resnet.PreActResNet18(w, info.num_classes, info.in_channels, first_stride, convcut),
                      None if convcut else lambda w: resnet.original_param_count(w, info.num_classes, info.in_channels))


def _mobilenetv2(info: DatasetInfo, convcut: bool) -> WidthSpace:
    large = info.resolution >= 64
    return WidthSpace("mobilenetv2" + ("-convcut" if convcut else ""), mobilenetv2.LAYER_NAMES,
                      mobilenetv2.BASE_WIDTHS, info,
                      lambda w: mobilenetv2.MobileNetV2(w, info.num_classes, info.in_channels, large, convcut),
                      None if convcut else lambda w: mobilenetv2.original_param_count(w, info.num_classes, info.in_channels))


FAMILIES: dict[str, Callable[[DatasetInfo, bool], WidthSpace]] = {
    "vgg11": _vgg11, "resnet18": _resnet18, "mobilenetv2": _mobilenetv2,
}


def space(model: str, dataset: str | DatasetInfo, *, convcut: bool = False,
          data_dir: str | None = None) -> WidthSpace:
    """The width space of `model` for `dataset` (a name or a DatasetInfo)."""
    from .data import dataset_info

    info = dataset if isinstance(dataset, DatasetInfo) else dataset_info(dataset, data_dir)
    if ":" in model:
        return generic_space(model, info, convcut)
    name = model.lower()
    if name.endswith("-convcut"):
        name, convcut = name[: -len("-convcut")], True
    if name not in FAMILIES:
        raise NeuralscaleError(f"unknown model {model!r}; choose one of: {', '.join(FAMILIES)}, "
                               f"torchvision:NAME, timm:NAME{suggest(name, FAMILIES)}")
    sp = FAMILIES[name](info, convcut)
    try:
        sp.macs(sp.base_widths)  # one forward pass on the meta device: the images must be large enough
    except RuntimeError as e:
        raise NeuralscaleError(f"{info.name}'s {info.resolution}x{info.resolution} images are too small for "
                               f"{sp.name} ({str(e).splitlines()[0][:120]})") from None
    return sp


@functools.lru_cache(maxsize=64)
def _generic_cached(model: str, info: DatasetInfo) -> WidthSpace:
    from .generic import module_space, timm_factory, torchvision_factory
    source, _, name = model.partition(":")
    factories = {"torchvision": torchvision_factory, "timm": timm_factory}
    if source not in factories or not name:
        raise NeuralscaleError(f"unknown model source {source!r} in {model!r}; use torchvision:NAME or timm:NAME")
    return module_space(model, factories[source](name, info), info)


def generic_space(model: str, info: DatasetInfo, convcut: bool = False) -> WidthSpace:
    """The width space of a torchvision or timm model, found from its computation graph."""
    if convcut:
        raise NeuralscaleError("--convcut applies to the paper's resnet18 and mobilenetv2 only")
    return _generic_cached(model, info)
