"""The registry of width spaces: how a model name becomes a WidthSpace.

Two kinds of names:

- a registered family (`vgg11`, `resnet18`, `mobilenetv2`; `-convcut` for the
  paper's all-convolution shortcuts): one builder each, registered with
  `@register_family`;
- a scheme and a name (`torchvision:resnet50`, `timm:efficientnet_b0`): the
  model is made by that library and analysed from its graph (generic.py).
  Schemes are registered with `register_scheme`; the prefix is parsed once,
  here.

`space(name, dataset)` is the one entry point; a user's own module becomes a
space through `generic.module_space` (or `ns.space(model, example_input)`).
"""

from __future__ import annotations

import functools
from typing import Callable

from .data import dataset_info
from .data.info import DatasetInfo
from .errors import NeuralscaleError
from .generic import module_space, timm_factory, torchvision_factory
from .models import mobilenetv2, resnet, vgg
from .space import WidthSpace
from .validate import suggest

FAMILIES: dict[str, Callable[[DatasetInfo, bool], WidthSpace]] = {}
SCHEMES: dict[str, Callable[[str, DatasetInfo], Callable]] = {}


def register_family(name: str):
    """Register `builder(info, convcut) -> WidthSpace` under `name` (a decorator)."""
    def add(builder: Callable[[DatasetInfo, bool], WidthSpace]):
        FAMILIES[name] = builder
        return builder
    return add


def register_scheme(prefix: str, factory: Callable[[str, DatasetInfo], Callable]) -> None:
    """Names `prefix:NAME` are made by `factory(NAME, info)`, which returns a function making the module."""
    SCHEMES[prefix] = factory


register_scheme("torchvision", torchvision_factory)
register_scheme("timm", timm_factory)


# --- the paper's three families ----------------------------------------------

@register_family("vgg11")
def _vgg11(info: DatasetInfo, convcut: bool) -> WidthSpace:
    if convcut:
        raise NeuralscaleError("vgg11 has no shortcuts, so --convcut does not apply to it")
    return WidthSpace("vgg11", vgg.LAYER_NAMES, vgg.BASE_WIDTHS, info,
                      lambda w: vgg.VGG11(w, info.num_classes, info.in_channels),
                      lambda w: vgg.original_param_count(w, info.num_classes, info.in_channels))


@register_family("resnet18")
def _resnet18(info: DatasetInfo, convcut: bool) -> WidthSpace:
    first_stride = 2 if info.resolution >= 64 else 1
    return WidthSpace("resnet18" + ("-convcut" if convcut else ""), resnet.LAYER_NAMES, resnet.BASE_WIDTHS, info,
                      lambda w: resnet.PreActResNet18(w, info.num_classes, info.in_channels, first_stride, convcut),
                      None if convcut else lambda w: resnet.original_param_count(w, info.num_classes, info.in_channels))


@register_family("mobilenetv2")
def _mobilenetv2(info: DatasetInfo, convcut: bool) -> WidthSpace:
    large = info.resolution >= 64
    return WidthSpace("mobilenetv2" + ("-convcut" if convcut else ""), mobilenetv2.LAYER_NAMES,
                      mobilenetv2.BASE_WIDTHS, info,
                      lambda w: mobilenetv2.MobileNetV2(w, info.num_classes, info.in_channels, large, convcut),
                      None if convcut else lambda w: mobilenetv2.original_param_count(w, info.num_classes,
                                                                                        info.in_channels))


def family(name: str) -> str:
    """The family a space's name belongs to ('resnet18' for 'resnet18-convcut'; the scheme name for generic)."""
    return name.split(":", 1)[0] if ":" in name else name.lower().removesuffix("-convcut")


def space(model: str, dataset: str | DatasetInfo, *, convcut: bool = False,
          data_dir: str | None = None) -> WidthSpace:
    """The width space of `model` for `dataset` (a name or a DatasetInfo)."""
    info = dataset if isinstance(dataset, DatasetInfo) else dataset_info(dataset, data_dir)
    if ":" in model:
        if convcut:
            raise NeuralscaleError("--convcut applies to the paper's resnet18 and mobilenetv2 only")
        return _scheme_space(model, info)
    name = model.lower()
    if name.endswith("-convcut"):
        name, convcut = name[: -len("-convcut")], True
    if name not in FAMILIES:
        raise NeuralscaleError(f"unknown model {model!r}; choose one of: {', '.join(FAMILIES)}, "
                               f"{', '.join(f'{s}:NAME' for s in SCHEMES)}{suggest(name, FAMILIES)}")
    sp = FAMILIES[name](info, convcut)
    try:
        sp.macs(sp.base_widths)  # one forward pass on the meta device: the images must be large enough
    except RuntimeError as e:
        raise NeuralscaleError(f"{info.name}'s {info.resolution}x{info.resolution} images are too small for "
                               f"{sp.name} ({str(e).splitlines()[0][:120]})") from None
    return sp


@functools.lru_cache(maxsize=64)
def _scheme_space(model: str, info: DatasetInfo) -> WidthSpace:
    source, _, name = model.partition(":")
    if source not in SCHEMES or not name:
        raise NeuralscaleError(f"unknown model source {source!r} in {model!r}; use "
                               f"{' or '.join(f'{s}:NAME' for s in SCHEMES)}")
    return module_space(model, SCHEMES[source](name, info), info)
