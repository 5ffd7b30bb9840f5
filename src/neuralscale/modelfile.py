"""A model of your own, named on the command line: `--model file:PATH.py:NAME`.

NAME is a class (an `nn.Module`) or a function in the Python file PATH that makes the network. It is called with
`num_classes=` and `in_channels=` (or `in_chans=`, timm's name) where it takes them, and with nothing else: give
everything else defaults. The file is imported as Python imports a script (its own folder first on the path while
it imports, so `from blocks import Block` beside it works) each time the name is read, and its network is analysed
from its graph as a `torchvision:` or `timm:` model is (generic.py).

The name is recorded as written, as an image folder's is, so a relative PATH is read from the folder the command
runs in; a sweep's local workers run there too. The space carries the network's architecture digest
(generic.GenericSpace.fingerprint): an edited file makes different runs, and a run or an export of the file as it was
is refused against the file as it is.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import sys
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from .data.info import DatasetInfo
from .errors import NeuralscaleError
from .validate import suggest

SCHEME = "file"
CHANNEL_ARGUMENTS = ("in_channels", "in_chans")  # the image's channels, as the user's constructor names them


def split(name: str) -> tuple[Path, str]:
    """`PATH.py:NAME` (the part after `file:`) as the file and the name in it."""
    path, sep, attr = name.rpartition(":")
    if not sep or not path or not attr.isidentifier():
        raise NeuralscaleError(f"file:{name}: name the class or function too, as file:PATH.py:NAME (such as "
                               "file:models.py:Net)")
    return Path(path).expanduser(), attr


def stamp(name: str) -> str | None:
    """Where the file is and a digest of its text (None where it cannot be read): a space read from the file before
    it was edited, or from another folder's file of the same name, is not reused (an edit in the same clock tick
    keeps the modification time)."""
    try:
        path = split(name)[0].resolve()
        return f"{path}:{hashlib.sha1(path.read_bytes()).hexdigest()}"
    except (OSError, NeuralscaleError):
        return None


def file_factory(name: str, info: DatasetInfo) -> Callable[[], nn.Module]:
    """`zoo.register_scheme`'s factory for `file:PATH.py:NAME`: a function making NAME's network for `info`'s
    images and classes, checked once (it makes a module; its class scores are the dataset's)."""
    path, attr = split(name)
    maker = _attribute(_import(path), path, attr)
    kwargs = _arguments(maker, info, f"{path}:{attr}")

    def make() -> nn.Module:
        try:
            model = maker(**kwargs)
        except Exception as e:  # the user's code: said in one line, where it was called
            raise NeuralscaleError(f"{path}:{attr}({_listed(kwargs)}) failed: {type(e).__name__}: "
                                   f"{_first_line(e)}") from None
        if not isinstance(model, nn.Module):
            raise NeuralscaleError(f"{path}:{attr}({_listed(kwargs)}) returned a {type(model).__name__}, not an "
                                   "nn.Module")
        return model
    _check_classes(make, info, f"{path}:{attr}", kwargs)
    return make


def _import(path: Path):
    """The file, imported afresh as a module of its own (its folder on the path while it imports, as for a
    script)."""
    if not path.is_file():
        raise NeuralscaleError(f"model file {path} does not exist" if not path.exists() else
                               f"model file {path} is not a file")
    resolved = path.resolve()
    module_name = "neuralscale_model_" + hashlib.sha1(str(resolved).encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(module_name, resolved)
    if spec is None or spec.loader is None:
        raise NeuralscaleError(f"model file {path} is not a Python file (name it .py)")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # (dataclasses and pickling look their module up by name)
    sys.path.insert(0, str(resolved.parent))
    try:  # compiled from its text as it is now: a cached .pyc is trusted by its source's time and size, which an
        # edit in the same clock tick keeps (and none is written beside the user's file)
        exec(compile(resolved.read_bytes(), str(resolved), "exec"), module.__dict__)
    except SyntaxError as e:
        raise NeuralscaleError(f"model file {path}, line {e.lineno}: {e.msg}") from None
    except Exception as e:  # ImportError, NameError, ...: the user's code, in one line
        raise NeuralscaleError(f"model file {path} does not import: {type(e).__name__}: {_first_line(e)}") from None
    finally:
        sys.path.remove(str(resolved.parent))
    return module


def _attribute(module, path: Path, attr: str):
    maker = getattr(module, attr, None)
    if maker is None:
        names = [n for n, v in vars(module).items() if not n.startswith("_") and callable(v)
                 and getattr(v, "__module__", None) == module.__name__]
        raise NeuralscaleError(f"model file {path} has no {attr}{suggest(attr, names)}"
                               + (f"; it defines {', '.join(sorted(names))}" if names else ""))
    if not callable(maker):
        raise NeuralscaleError(f"{path}:{attr} is a {type(maker).__name__}, not a class or function that makes the "
                               "network")
    return maker


def _arguments(maker, info: DatasetInfo, where: str) -> dict:
    """The dataset's class count and image channels, for the parameters that take them; any other parameter
    must have a default."""
    try:
        params = inspect.signature(maker).parameters
    except (TypeError, ValueError):  # a builtin or a C extension: called without arguments
        return {}
    kwargs = {}
    if "num_classes" in params:
        kwargs["num_classes"] = info.num_classes
    for name in CHANNEL_ARGUMENTS:
        if name in params:
            kwargs[name] = info.in_channels
    needed = [n for n, p in params.items() if p.default is p.empty and n not in kwargs
              and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if needed:
        raise NeuralscaleError(f"{where} needs {', '.join(needed)}; neuralscale passes only num_classes and "
                               f"in_channels (or in_chans): give the others defaults")
    return kwargs


def _check_classes(make: Callable[[], nn.Module], info: DatasetInfo, where: str, kwargs: dict) -> None:
    """One forward pass of two images on the meta device: a network whose class scores are not the dataset's
    (built without num_classes) is refused here, not at the first batch of training. A network that does not run
    so is left to the analysis, which says why."""
    try:
        with torch.device("meta"):
            model = make()
    except NeuralscaleError:  # (a constructor that computes with tensors may not build on meta: the analysis will)
        return
    first = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    if first is not None and first.in_channels != info.in_channels:
        hint = "" if any(k in kwargs for k in CHANNEL_ARGUMENTS) else "; give it an in_channels argument"
        raise NeuralscaleError(f"{where}'s first convolution reads {first.in_channels} channels, but {info.name}'s "
                               f"images have {info.in_channels}{hint}")
    try:
        with torch.no_grad():
            out = model.eval()(torch.zeros(2, *info.input_shape, device="meta"))
    except Exception:
        return
    if isinstance(out, torch.Tensor) and out.dim() == 2 and out.shape[1] != info.num_classes:
        hint = "" if "num_classes" in kwargs else (f"; give it a num_classes argument, or build it for "
                                                    f"{info.num_classes}")
        raise NeuralscaleError(f"{where} gives {out.shape[1]} class scores, but {info.name} has "
                               f"{info.num_classes} classes{hint}")


def _listed(kwargs: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in kwargs.items())


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:200] if text else "(no message)"
