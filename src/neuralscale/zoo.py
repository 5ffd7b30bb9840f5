"""The registry of width spaces: how a model name becomes a WidthSpace.

Two kinds of names:

- a registered family (`vgg11`, `resnet18`, `mobilenetv2`; `-convcut` for the
  paper's all-convolution shortcuts): one builder each, registered with
  `@register_family`;
- a scheme and a name (`torchvision:resnet50`, `timm:efficientnet_b0`, a file
  of one's own `file:models.py:Net`, modelfile.py): the model is made by that
  library or file and analysed from its graph (generic.py).
  Schemes are registered with `register_scheme`; the prefix is parsed once,
  here.

`space(name, dataset)` is the one entry point; a user's own module becomes a
space through `generic.module_space` (or `ns.space(model, example_input)`).
"""

from __future__ import annotations

import copy
import functools
from dataclasses import replace
from typing import Callable

import torch
from torch import nn

from .data import dataset_info
from .data.info import DatasetInfo
from .errors import NeuralscaleError, first_line
from . import modelfile
from .generic import DoesNotRun, module_space, timm_factory, torchvision_factory
from .models import mobilenetv2, resnet, vgg
from .space import Family, WidthSpace
from .validate import check_flags, suggest

FAMILIES: dict[str, Callable[[DatasetInfo, bool], WidthSpace]] = {}
FAMILY_INFO: dict[str, Family] = {}  # what descent and sweeps need to know of each family (space.Family)
SCHEMES: dict[str, Callable[[str, DatasetInfo], Callable]] = {}
SCHEME_INFO: dict[str, dict] = {}  # per scheme: own, stamp, canonical, identity and usage (register_scheme)
CONVCUT = "convcut"  # the paper's all-convolution shortcuts: `--convcut`, or the model name's suffix "-convcut"


def register_family(name: str, *, paper: bool = False, add10: bool = False):
    """Register `builder(info, convcut) -> WidthSpace` under `name` (a decorator), with the family's metadata
    (`space.Family`: whether the original's descent rules apply, whether it adds 10 channels to narrow layers)."""
    def add(builder: Callable[[DatasetInfo, bool], WidthSpace]):
        FAMILIES[name] = builder
        FAMILY_INFO[name] = Family(name, paper=paper, add10=add10)
        return builder
    return add


def register_scheme(prefix: str, factory: Callable[[str, DatasetInfo], Callable], *, own: bool = False,
                    stamp: Callable[[str], object] | None = None, canonical: Callable[[str], str] | None = None,
                    identity: Callable[[str], str] | None = None, usage: str = "NAME") -> None:
    """Names `prefix:NAME` are made by `factory(NAME, info)`, which returns a function making the module. `own`:
    NAME does not say what the module computes (a user's file may change), so its space carries the module's
    architecture digest, as a module of one's own does. `stamp(NAME)`: what the module is made from as it is now
    (a file's text), so that a space made before it changed is not reused. `canonical(NAME)`: the one spelling
    of NAME that spaces and records carry (a file's absolute path). `identity(NAME)`: NAME without where its
    module lies (a file's name without its folder), what runs know it by (`model_identity`). `usage`: NAME in
    messages."""
    SCHEMES[prefix] = factory
    SCHEME_INFO[prefix] = {"own": own, "stamp": stamp, "canonical": canonical, "identity": identity, "usage": usage}


def _scheme(source: str, what: str):
    """What `register_scheme` says of a scheme (`own`, `stamp`, `canonical`, `identity`, `usage`); None for other
    names."""
    return SCHEME_INFO.get(source, {}).get(what)


register_scheme("torchvision", torchvision_factory)
register_scheme("timm", timm_factory)
register_scheme(modelfile.SCHEME, modelfile.file_factory, own=True, stamp=modelfile.stamp,
                canonical=modelfile.canonical, identity=modelfile.identity, usage="PATH.py:NAME")


def model_name(model: str) -> str:
    """A model's name as spaces and records carry it: a scheme's canonical spelling (a `file:` model's absolute
    path), any other name as given."""
    source, sep, name = model.partition(":") if isinstance(model, str) else ("", "", "")
    canonical = _scheme(source, "canonical") if sep and name else None
    return f"{source}:{canonical(name)}" if canonical else model


def model_identity(model: str) -> str:
    """What a run, a store's recipe and a descent know a recorded model name by: the name without where its module
    lies (`file:/home/me/study/nets.py:Net` is `file:nets.py:Net`; the architecture digest recorded beside it tells
    one such file's network from another's), any other name as it is. A study moved or cloned elsewhere with its
    file is the same study there."""
    source, sep, name = model.partition(":") if isinstance(model, str) else ("", "", "")
    identity = _scheme(source, "identity") if sep and name else None
    try:
        return f"{source}:{identity(name)}" if identity else model
    except NeuralscaleError:  # not a name of the scheme (a damaged record): as it is
        return model


def located(model: str) -> bool:
    """Whether a recorded model name says where its module lies (a file's absolute path), so that what hashes it
    knows it by `model_identity` instead: a record or a spec says so with `portable` (those written before hash the
    location, and keep their ids)."""
    return isinstance(model, str) and model_identity(model) != model


def moved(recorded, now) -> bool:
    """Whether two model names are one file's network at two places (a study moved since `recorded` was written)."""
    return located(recorded) and located(now) and recorded != now and model_identity(recorded) == model_identity(now)


def model_relative(model: str, root) -> str | None:
    """A located model's name with its file's path relative to the folder `root` (a store's: sweep.json keeps it,
    so that the store moved with its file finds the file), None for any other name."""
    source, _, name = model.partition(":") if located(model) else ("", "", "")
    return f"{source}:{modelfile.relative(name, root)}" if source == modelfile.SCHEME else None


def model_beside(relative: str, root) -> str | None:
    """A name `model_relative` wrote, read from `root` where it lies now (None where it is not one: damaged)."""
    source, _, name = relative.partition(":")
    try:
        return f"{source}:{modelfile.beside(name, root)}" if source == modelfile.SCHEME else None
    except (NeuralscaleError, OSError, ValueError):  # (a damaged name: none)
        return None


def model_spelling(model: str, convcut: bool = False) -> tuple[str, bool]:
    """One spelling of one network, as runs record it (a sweep's run ids hash it): a family by its space's name,
    as `train` records it, and the convcut flag (`VGG11` is `vgg11`; `resnet18 --convcut` and `resnet18-convcut`
    are `resnet18-convcut` with convcut), any other model as `model_name` spells it (an unknown name as given)."""
    if not isinstance(model, str) or ":" in model:
        return model_name(model), convcut
    family, convcut_ = parse_name(model, convcut)
    return (named(family, convcut_), convcut_) if family in FAMILIES else (model, convcut)


# --- the paper's three families ----------------------------------------------

@register_family("vgg11", paper=True)
def _vgg11(info: DatasetInfo, convcut: bool) -> WidthSpace:
    if convcut:
        raise NeuralscaleError("vgg11 has no shortcuts, so --convcut does not apply to it")
    return WidthSpace("vgg11", vgg.LAYER_NAMES, vgg.BASE_WIDTHS, info,
                      lambda w: vgg.VGG11(w, info.num_classes, info.in_channels),
                      lambda w: vgg.original_param_count(w, info.num_classes, info.in_channels),
                      shapes=lambda w: vgg.state_shapes(w, info.num_classes, info.in_channels), resize=vgg.resize,
                      # by formula where its five pools leave a map (narrower images fail as the model does)
                      costs=(lambda w: vgg.costs(w, info.num_classes, info.in_channels, info.resolution))
                      if info.resolution >= 32 else None)


@register_family("resnet18", paper=True, add10=True)
def _resnet18(info: DatasetInfo, convcut: bool) -> WidthSpace:
    first_stride = 2 if info.resolution >= 64 else 1
    return WidthSpace(named("resnet18", convcut), resnet.LAYER_NAMES, resnet.BASE_WIDTHS, info,
                      lambda w: resnet.PreActResNet18(w, info.num_classes, info.in_channels, first_stride, convcut),
                      None if convcut else lambda w: resnet.original_param_count(w, info.num_classes, info.in_channels),
                      costs=lambda w: resnet.costs(w, info.num_classes, info.in_channels, info.resolution, first_stride,
                                                   convcut))


@register_family("mobilenetv2", paper=True, add10=True)
def _mobilenetv2(info: DatasetInfo, convcut: bool) -> WidthSpace:
    large = info.resolution >= 64
    return WidthSpace(named("mobilenetv2", convcut), mobilenetv2.LAYER_NAMES,
                      mobilenetv2.BASE_WIDTHS, info,
                      lambda w: mobilenetv2.MobileNetV2(w, info.num_classes, info.in_channels, large, convcut),
                      None if convcut else lambda w: mobilenetv2.original_param_count(w, info.num_classes,
                                                                                        info.in_channels),
                      costs=lambda w: mobilenetv2.costs(w, info.num_classes, info.in_channels, info.resolution, large,
                                                        convcut))


def named(family: str, convcut: bool) -> str:
    """A registered family's space name: "resnet18", or "resnet18-convcut" for the all-convolution shortcuts."""
    return f"{family}-{CONVCUT}" if convcut else family


def parse_name(model: str, convcut: bool = False) -> tuple[str, bool]:
    """A registered family's name and whether it has the all-convolution shortcuts, from a model name (the one
    place the "-convcut" suffix is read) and the `convcut` flag."""
    name = model.lower()
    if name.endswith(f"-{CONVCUT}"):
        return name.removesuffix(f"-{CONVCUT}"), True
    return name, convcut


def space(model: str | nn.Module, dataset: str | DatasetInfo | torch.Tensor | None = None, *, convcut: bool = False,
          data_dir: str | None = None, name: str | None = None) -> WidthSpace:
    """The width space of `model` for `dataset` (a name or a DatasetInfo): a family (`vgg11`), a library's model
    (`torchvision:resnet50`, `timm:efficientnet_b0`) or a network of one's own in a Python file
    (`file:models.py:Net`, modelfile.py).

    `model` may also be your own `nn.Module` with an example input, as Torch-Pruning takes it:
    `space(model, torch.randn(1, 3, 32, 32))`, or with the dataset it will train on: `space(model,
    "imagefolder:flowers")` takes the folder's image size and class count.  Its channels are found from its graph (generic.py);
    every network the space builds is a fresh copy of `model` at other widths, initialised afresh.
    """
    if not isinstance(model, (str, nn.Module)):
        raise NeuralscaleError(f"model must be a name (such as 'vgg11') or an nn.Module, not {type(model).__name__}")
    if dataset is not None and not isinstance(dataset, (str, DatasetInfo, torch.Tensor)):
        raise NeuralscaleError(f"dataset must be a name (such as 'cifar10'), a DatasetInfo or an example input "
                               f"tensor, not {type(dataset).__name__}")
    check_flags("space", {"convcut": convcut})
    _check_own(model, name, convcut)
    if isinstance(model, nn.Module):
        if isinstance(dataset, str):  # its images' shape and classes from the dataset (an image folder's own size)
            dataset = dataset_info(dataset, data_dir)
        return _module_space(model, dataset, name)
    if dataset is None or isinstance(dataset, torch.Tensor):
        raise NeuralscaleError("a model name needs a dataset (a name such as cifar10, or a DatasetInfo)")
    info = dataset if isinstance(dataset, DatasetInfo) else dataset_info(dataset, data_dir)
    if ":" in model:
        if convcut:
            raise NeuralscaleError("--convcut applies to the paper's resnet18 and mobilenetv2 only")
        try:
            model = model_name(model)
            source, _, name = model.partition(":")
            stamp = _scheme(source, "stamp")
            return _scheme_space(model, info, stamp(name) if stamp else None)
        except (RuntimeError, ValueError) as e:  # its graph is traced and run on meta at the dataset's size
            first = first_line(e, 120, type(e).__name__)
            small = "too small" in first or "greater than actual input" in first
            why = "are too small for" if small else "do not run through"
            raise NeuralscaleError(f"{info.name}'s {info.resolution}x{info.resolution} images {why} {model} "
                                   f"({first})") from None
    name, convcut = parse_name(model, convcut)
    if name not in FAMILIES:
        raise NeuralscaleError(f"unknown model {model!r}; choose one of: {', '.join(FAMILIES)}, "
                               f"{scheme_names()}{suggest(name, FAMILIES)}")
    sp = FAMILIES[name](info, convcut)
    sp.family = replace(FAMILY_INFO[name], variant=CONVCUT if convcut else None)
    try:
        sp.macs(sp.base_widths)  # where no formula counts it, one forward pass on the meta device: the images
        # must be large enough (a formula counts only where the model runs: VGG11 from 32 px)
    except RuntimeError as e:
        raise NeuralscaleError(f"{info.name}'s {info.resolution}x{info.resolution} images are too small for "
                               f"{sp.name} ({first_line(e, 120, type(e).__name__)})") from None
    return sp


def _check_own(model, name, convcut: bool) -> None:
    """`name` and `convcut` as `space` takes them: a name only for a network of one's own, and not one neuralscale
    gives a model it makes (a family, a known scheme's); no convcut flag for one."""
    if name is not None and (not isinstance(model, nn.Module) or not isinstance(name, str) or not name.strip()):
        raise NeuralscaleError("name names a space of your own nn.Module (a non-empty str); a model named by a str "
                               "is named so already" if isinstance(name, str) and name.strip() else
                               f"name must be a non-empty str, not {name!r}"[:200])
    if name is not None and (name.partition(":")[0].strip().lower() in SCHEMES and ":" in name
                             or parse_name(name.strip(), False)[0] in FAMILIES):
        raise NeuralscaleError(f"name {name!r} is how neuralscale names a model it makes itself (a family, or "
                               "scheme:name): records would take your network for that one; give another name")
    if isinstance(model, nn.Module) and convcut:  # (ignored, it said nothing)
        raise NeuralscaleError("convcut applies to the paper's resnet18 and mobilenetv2 only, not a network of your "
                               "own: make its shortcuts convolutions in its code")


def _module_space(model: nn.Module, example: torch.Tensor | DatasetInfo | None, name: str | None) -> WidthSpace:
    if isinstance(example, DatasetInfo):
        info = example
    elif isinstance(example, torch.Tensor) and example.dim() == 4 and example.shape[-1] == example.shape[-2]:
        first_param = next(model.parameters(), None)
        if first_param is None:
            raise NeuralscaleError("your model has no parameters: there is no width to scale")
        was = model.training
        model.eval()
        try:
            with torch.no_grad():
                out = model(example[:2].to(first_param.device))  # two images where given: a batch dimension
                # a squeeze would drop shows
        except (RuntimeError, ValueError, TypeError, IndexError, AssertionError) as e:  # it does not fit the model
            first = first_line(e, None, type(e).__name__)
            raise NeuralscaleError(f"your model does not run on the example input of shape "
                                   f"{tuple(example.shape)}: {first}") from None
        finally:
            model.train(was)
        if not isinstance(out, torch.Tensor) or out.dim() != 2:
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else f"a {type(out).__name__}"
            one = (" on an example of one image (a squeeze() without a dimension drops a batch of 1: squeeze only "
                   "the dimensions meant, as x.squeeze(-1).squeeze(-1), or x.flatten(1))"
                   if isinstance(out, torch.Tensor) and out.dim() == 1 and example.shape[0] == 1 else "")
            raise NeuralscaleError(f"the model must return class scores of shape (batch, classes), got {got}{one}")
        info = DatasetInfo("custom", int(out.shape[1]), int(example.shape[1]), int(example.shape[-1]))
    else:
        raise NeuralscaleError("your own model needs an example input: a tensor of shape (batch, channels, size, size)"
                               + (f", got shape {tuple(example.shape)}" if isinstance(example, torch.Tensor) else ""))
    template = copy.deepcopy(model).cpu()
    if isinstance(example, DatasetInfo):  # refused as a model file is, not by the graph's words for its output
        _check_module_fits(template, info)
    try:
        return module_space(name or f"module:{type(model).__name__}", lambda: copy.deepcopy(template), info, own=True)
    except DoesNotRun as e:  # a dataset's images, never run through it before; or its traced graph, on meta
        if isinstance(example, DatasetInfo):
            raise NeuralscaleError(f"your model does not run on {info.name}'s {info.input_shape} inputs: {e}") \
                from None
        raise NeuralscaleError(f"your model ran on the example input, but not on a batch of 2 such images as "
                               f"torch.fx traced it ({e})") from None


def _check_module_fits(template: nn.Module, info: DatasetInfo) -> None:
    """Your own nn.Module given with a dataset: its first convolution reads the images' channels and it gives a
    score per class (modelfile.check_fits), tried on a copy on the meta device."""
    try:
        meta = copy.deepcopy(template).to("meta")
    except (RuntimeError, NotImplementedError, TypeError):  # a module that will not move there: the analysis says
        return
    kind = type(template).__name__
    n = info.in_channels
    modelfile.check_fits(meta, info, "your model", f"; build it for {n} input channel{'s' * (n != 1)} ({kind}(...))",
                         f"; build it for {info.num_classes} classes ({kind}(...))")


@functools.lru_cache(maxsize=64)
def _scheme_space(model: str, info: DatasetInfo, stamp=None) -> WidthSpace:
    """(`stamp`: a user's file as it is now, so that one edited since is read again.)"""
    source, _, name = model.partition(":")
    if source not in SCHEMES or not name:
        raise NeuralscaleError(f"unknown model source {source!r} in {model!r}; use {scheme_names()}")
    return module_space(model, SCHEMES[source](name, info), info, own=bool(_scheme(source, "own")))


def scheme_names() -> str:
    """The schemes as a model is named with them: torchvision:NAME, timm:NAME or file:PATH.py:NAME."""
    names = [f"{s}:{SCHEME_INFO[s]['usage']}" for s in SCHEMES]
    return ", ".join(names[:-1]) + " or " + names[-1]


def _record_convcut(record: dict) -> bool:
    spec = record.get("spec") if isinstance(record.get("spec"), dict) else {}
    return record.get("convcut", spec.get("convcut", False)) is True


def record_model(record: dict) -> tuple[str, bool]:
    """A run record's (or a saved model's) network, spelled one way (`model_spelling` of its model and convcut
    flag): `train --model resnet18-convcut` recorded convcut false, and a sweep before the one spelling `resnet18`
    with convcut; either is `resnet18-convcut`."""
    return model_spelling(record.get("model"), _record_convcut(record))


def record_images(record: dict) -> DatasetInfo | None:
    """The images a run record (its `input`) or a saved model's metadata (its `data`) describes, None where it
    describes none (records and files of 0.1 name only their dataset); a damaged description is one line."""
    info = record.get("input") if "spec" in record or "input" in record else record.get("data")
    try:
        return DatasetInfo(**info) if isinstance(info, dict) else None
    except TypeError:
        raise NeuralscaleError(f"{record.get('_path', 'the record')}'s data description is damaged") from None


WHERE_NOW = "--model file:PATH.py:NAME; model= in Python"  # how a command names a moved file's network now


def gone(model) -> bool:
    """Whether a model name says where its file lies and no file is there (a study moved since it was recorded)."""
    if not (located(model) and model.partition(":")[0] == modelfile.SCHEME):
        return False
    try:
        return not modelfile.locate(model.partition(":")[2])[0].exists()
    except (NeuralscaleError, OSError, ValueError):
        return False


def record_space(record: dict, data_dir: str | None = None, given: WidthSpace | None = None,
                 named: str | None = None, where_now: str = WHERE_NOW) -> WidthSpace:
    """The width space a run record, a run spec or a saved model's metadata belongs to: `given` if any (checked
    against its layers), else rebuilt from its model name and the data it describes (a run record's `input`, a
    model file's `data`; records and files of 0.1 name only their dataset), without reading the data. `named`:
    the network as the command names it now, made in place of the record's where both are one file's network
    (`model_identity`) and the record's lay elsewhere then (a study moved with its file since): the architecture
    recorded is checked against it as against the record's own. `where_now`: how the caller names the file where
    it lies now, said where the record's file is gone."""
    here = model_name(named) if isinstance(named, str) and given is None else None
    replaced = moved(record.get("model"), here)
    recorded_as = record.get("model")
    if replaced:
        record = {**record, "model": here}
    model = record.get("model")
    if not isinstance(model, str):
        raise NeuralscaleError(f"{record.get('_path', 'the record')} names no model")
    if given is None and model.startswith("module:"):
        raise NeuralscaleError(f"{model} is a space of your own, made in Python from a module (ns.space(module, "
                               "example_input)): pass that space as space= in Python (the command line knows "
                               "networks by name, such as file:PATH.py:NAME, and cannot make it)")
    spec = record.get("spec") if isinstance(record.get("spec"), dict) else {}
    sp = given if given is not None else _rebuilt(record, spec, data_dir, None if replaced else where_now)
    recorded = record.get("architecture") or spec.get("architecture")
    layers = "layers" in record and list(record["layers"]) != list(sp.layer_names)
    own = _scheme(model.partition(":")[0], "own")
    if given is None and own and (layers or (recorded and sp.architecture and recorded != sp.architecture)):
        differ = "its layers differ" if layers else f"architecture {sp.architecture}, {recorded} recorded"
        if replaced:  # another file of that name and class, not the recorded one edited
            raise NeuralscaleError(f"{model} is another network than the one {recorded_as} made ({differ}): its "
                                   "code or modules differ")
        # rebuilt from its name: a file of one's own (modelfile.py), edited since
        raise NeuralscaleError(f"{model} is not the network this was trained as: "
                               + ("its layers differ now" if layers else "its code or modules changed since "
                                  f"(architecture {sp.architecture} now, {recorded} recorded)")
                               + "; put its code back as it was")
    widths = record.get("widths")  # (a file that names its layers says its own damage, below and in build)
    if given is not None and "layers" not in record and isinstance(widths, list) and len(widths) != len(sp.layer_names):
        n = len(sp.layer_names)
        raise NeuralscaleError(f"the space given ({sp.name}, {n} gated layer{'s' * (n != 1)}) is not the recorded "
                               f"network ({model}, {len(widths)} layer{'s' * (len(widths) != 1)})")
    if layers:
        raise NeuralscaleError(f"the space given is not {model}'s: its layers differ" if given is not None else
                               f"{model} here has other layers than the record's (another version of its library?)")
    if recorded and sp.architecture and recorded != sp.architecture:
        raise NeuralscaleError(f"the space given is not the {model} this was trained as: its code or modules "
                               f"differ (architecture {sp.architecture}, recorded {recorded})")
    return sp


def _rebuilt(record: dict, spec: dict, data_dir: str | None, where_now: str | None) -> WidthSpace:
    """`record_space`'s space made from the record's model name and images; `where_now`: said where the record's
    model file is gone (None: the model was named by the command, not the record)."""
    try:
        dataset = record_images(record) or record["dataset"]
    except KeyError:
        raise NeuralscaleError(f"{record.get('_path', 'the record')}'s data description is damaged") from None
    data_dir = data_dir or (spec.get("data") or {}).get("data_dir")
    try:
        return space(record["model"], dataset, convcut=_record_convcut(record), data_dir=data_dir)
    except NeuralscaleError as e:
        if where_now and gone(record["model"]):  # a study moved since: the file is where the command can name it
            raise NeuralscaleError(f"{e}; the record names it where it lay when the run was made: name the file "
                                   f"where it lies now ({where_now})") from None
        raise

