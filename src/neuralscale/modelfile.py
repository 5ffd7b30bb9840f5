"""A model of your own, named on the command line: `--model file:PATH.py:NAME`.

NAME is a class (an `nn.Module`) or a function in the Python file PATH that makes the network. It is called with
`num_classes=` and `in_channels=` (or `in_chans=`, timm's name) where it takes them, and with nothing else: give
everything else defaults. The file is imported as Python imports a script (its own folder first on the path while
it imports, so `from blocks import Block` beside it works) each time the name is read, and its network is analysed
from its graph as a `torchvision:` or `timm:` model is (generic.py).

A relative PATH is read from the folder the command runs in (an experiment file's, from the file's folder) and
recorded absolute (`canonical`): every later command, a sweep's workers and `load_model` of an export find the file
from any folder of this machine. The space carries the network's architecture digest
(generic.GenericSpace.fingerprint): an edited file makes different runs, and a run or an export of the file as it was
is refused against the file as it is. What a run is (its id, a store's recipe, a descent's) knows the network by its
file's name, its NAME and that digest (`identity`), not by the folder it lies in: a study moved or cloned elsewhere,
with its file, resumes there.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import io
import os
import sys
import threading
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Callable, Iterator

import torch
from torch import nn

from .data.info import DatasetInfo
from .errors import NeuralscaleError, first_line
from .validate import suggest

SCHEME = "file"
CHANNEL_ARGUMENTS = ("in_channels", "in_chans")  # the image's channels, as the user's constructor names them


def locate(name: str) -> tuple[Path, str]:
    """`PATH.py:NAME` (the part after `file:`) as the file and the name in it."""
    if "\0" in name:
        raise NeuralscaleError(f"file:{name!r}: a file's path holds no NUL character")
    path, sep, attr = name.rpartition(":")
    if not sep or not path:
        raise NeuralscaleError(f"file:{name}: name the class or function too, as file:PATH.py:NAME (such as "
                               "file:models.py:Net)")
    if not attr.isidentifier():
        raise NeuralscaleError(f"file:{name}: {attr!r} is not a Python name (file:PATH.py:NAME)")
    return Path(path).expanduser(), attr


def canonical(name: str) -> str:
    """`PATH.py:NAME` with PATH made absolute (resolved from where the command runs): the one name of the file's
    network, whatever the folder a later command runs in, and however the path was spelled."""
    path, attr = locate(name)
    return f"{path.resolve()}:{attr}"


def identity(name: str) -> str:
    """`PATH.py:NAME` without the folder PATH lies in (`nets.py:Net`): what a run knows the network by, beside its
    architecture digest, so that a study moved with its file is the same study (zoo.model_identity)."""
    path, attr = locate(name)
    return f"{path.name}:{attr}"


def relative(name: str, root: Path) -> str:
    """`PATH.py:NAME` with PATH relative to the folder `root` (a store's: its sweep.json says where the file lies
    beside it, so that the two moved together find each other)."""
    path, attr = locate(name)
    return f"{os.path.relpath(path.resolve(), Path(root).resolve())}:{attr}"


def beside(name: str, root: Path) -> str:
    """`relative`'s name read from `root` where it lies now, canonical (absolute)."""
    path, attr = locate(name)
    return canonical(f"{Path(root) / path}:{attr}")


def stamp(name: str) -> str | None:
    """Where the file is and a digest of its text and of the Python files and packages beside it that it may import
    (None where it cannot be read): a space read from the files before they were edited, or from another folder's
    file of the same name, is not reused (an edit in the same clock tick keeps the modification time)."""
    try:
        path = locate(name)[0].resolve()
        digest = hashlib.sha1(path.read_bytes())
        files = [f for p in _own_modules(path.parent).values()
                 for f in ([p] if p.is_file() else p.rglob("*.py")) if "site-packages" not in f.parts]
        for other in sorted(files):
            digest.update(str(other.relative_to(path.parent)).encode() + b"\0" + other.read_bytes())
        return f"{path}:{digest.hexdigest()}"
    except (OSError, NeuralscaleError):
        return None


def file_factory(name: str, info: DatasetInfo) -> Callable[[], nn.Module]:
    """`zoo.register_scheme`'s factory for `file:PATH.py:NAME`: a function making NAME's network for `info`'s
    images and classes, checked once (it makes a module; its class scores are the dataset's)."""
    path, attr = locate(name)
    folder = path.resolve().parent
    local = set(_own_modules(folder)) if path.is_file() else set()  # (read once: the stamp covers their files)
    maker = _attribute(_import(path, local), path, attr)
    kwargs = _arguments(maker, info, f"{path}:{attr}")

    def make() -> nn.Module:
        try:
            with _as_a_script(folder, path, local):
                model = maker(**kwargs)
        except (Exception, SystemExit) as e:  # the user's code: said in one line, where it was called
            raise NeuralscaleError(f"{path}:{attr}({_listed(kwargs)}) failed: {type(e).__name__}: "
                                   f"{first_line(e)}") from None
        if not isinstance(model, nn.Module):
            raise NeuralscaleError(f"{path}:{attr}({_listed(kwargs)}) returned {_a(type(model).__name__)}, not an "
                                   "nn.Module")
        return model
    _check_classes(make, info, f"{path}:{attr}", kwargs)
    return make


# Never hidden or taken away while a user's file imports, whatever its folder holds: what neuralscale runs on.
_KEPT = frozenset(sys.stdlib_module_names) | {"torch", "torchvision", "numpy", "neuralscale", "timm", "ray",
                                              "matplotlib", "onnx", "tqdm", "PIL"}


def _own_modules(folder: Path) -> dict[str, Path]:
    """The modules a file may import from its own folder, by name: its .py files, and its folders of them
    (packages, namespace ones too; not a virtual environment beside the file, nor a folder of data)."""
    found = {}
    for p in folder.iterdir():
        if p.suffix == ".py" and p.is_file():
            found[p.stem] = p
        elif p.is_dir() and not (p / "pyvenv.cfg").exists() and ((p / "__init__.py").is_file()
                                                                  or any(p.glob("*.py"))):
            found[p.name] = p
    return {n: p for n, p in found.items() if n.isidentifier() and n not in _KEPT}


_SCRIPT_LOCK = threading.RLock()  # the process's sys.path, sys.modules, sys.argv and stdout: one file at a time


@contextmanager
def _as_a_script(folder: Path, path: Path, local: set[str]) -> Iterator[None]:
    """While the user's file imports, and while its network is made: its folder first on the path and the modules
    of that folder imported from there, afresh, then taken away again (a Python user's own `utils` is theirs
    before and after; another folder's `blocks` is not this one's); no .pyc written beside their files; `sys.argv`
    the file's alone; and what it prints on stderr (stdout is the commands' --json). Everything is put back
    whatever the file did to it (appended its folder to the path again, replaced the path). `local`: the names of
    the folder's modules (_own_modules)."""
    with _SCRIPT_LOCK:
        hidden = {n: sys.modules.pop(n) for n in list(sys.modules) if n.split(".")[0] in local}
        before, path_before = set(sys.modules), list(sys.path)
        argv, bytecode = sys.argv, sys.dont_write_bytecode
        sys.path.insert(0, str(folder))
        sys.argv, sys.dont_write_bytecode = [str(path)], True
        try:
            with redirect_stdout(sys.stderr):
                yield
        finally:
            sys.argv, sys.dont_write_bytecode = argv, bytecode
            for n in set(sys.modules) - before:
                if n.split(".")[0] in local:
                    del sys.modules[n]
            sys.modules.update(hidden)
            if not isinstance(sys.path, list):
                sys.path = path_before
            while sys.path.count(str(folder)) > path_before.count(str(folder)):
                sys.path.remove(str(folder))


def _import(path: Path, local: set[str]):
    """The file, imported afresh as a module of its own (as Python runs a script: see _as_a_script)."""
    if not path.is_file():
        here = "" if path.is_absolute() else f" (a relative path is read from where the command runs, {Path.cwd()})"
        raise NeuralscaleError(f"model file {path} does not exist{here}" if not path.exists() else
                               f"model file {path} is not a file")
    resolved = path.resolve()
    text = resolved.read_bytes()  # named by where it is and what it says: a space made before an edit keeps its own
    module_name = "neuralscale_model_" + hashlib.sha1(str(resolved).encode() + text).hexdigest()[:16]
    spec = importlib.util.spec_from_file_location(module_name, resolved)
    if spec is None or spec.loader is None:
        raise NeuralscaleError(f"model file {path} is not a Python file (name it .py)")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # (dataclasses and pickling look their module up by name)
    said = io.StringIO()  # what it prints as it imports: passed on to stderr, or quoted if it exits
    try:  # compiled from its text as it is now: a cached .pyc is trusted by its source's time and size, which an
        # edit in the same clock tick keeps
        with _as_a_script(resolved.parent, path, local), redirect_stdout(said), redirect_stderr(said):
            exec(compile(text, str(resolved), "exec"), module.__dict__)
    except SyntaxError as e:
        sys.modules.pop(module_name, None)
        raise NeuralscaleError(f"model file {path}, line {e.lineno}: {e.msg}") from None
    except SystemExit as e:  # argparse or sys.exit at its top level
        sys.modules.pop(module_name, None)
        last = ([line for line in said.getvalue().splitlines() if line.strip()] or [str(e.code or "")])[-1]
        raise NeuralscaleError(f"model file {path} exits as it is imported" + (f" ({last.strip()[:120]})" if last
                                                                               else "")
                               + ": put the code that runs it under `if __name__ == \"__main__\":`") from None
    except Exception as e:  # ImportError, NameError, ...: the user's code, in one line
        sys.modules.pop(module_name, None)
        raise NeuralscaleError(f"model file {path} does not import: {type(e).__name__}: {first_line(e)}") from None
    finally:
        sys.stderr.write(said.getvalue() if sys.modules.get(module_name) is module else "")
    return module


def _attribute(module, path: Path, attr: str):
    maker = getattr(module, attr, None)
    if maker is None:
        names = [n for n, v in vars(module).items() if not n.startswith("_") and callable(v)
                 and getattr(v, "__module__", None) == module.__name__]
        raise NeuralscaleError(f"model file {path} has no {attr}{suggest(attr, names)}"
                               + (f"; it defines {', '.join(sorted(names))}" if names else ""))
    if not callable(maker):
        raise NeuralscaleError(f"{path}:{attr} is {_a(type(maker).__name__)}, not a class or function that makes the "
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
    if "num_classes" in params or any(p.kind == p.VAR_KEYWORD for p in params.values()):  # (torchvision's and
        kwargs["num_classes"] = info.num_classes  # timm's builders take it among **kwargs)
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
    channels = "" if any(k in kwargs for k in CHANNEL_ARGUMENTS) else "; give it an in_channels argument"
    classes = "" if "num_classes" in kwargs else f"; give it a num_classes argument, or build it for {info.num_classes}"
    check_fits(model, info, where, channels, classes)


def check_fits(model: nn.Module, info: DatasetInfo, where: str, channels: str, classes: str) -> None:
    """`model` (on the meta device) reads the dataset's channels with its first convolution and gives its number of
    class scores, else one NeuralscaleError saying which, with the hint (`channels`, `classes`) that follows it. A
    network that does not run so for another reason is left to the analysis, which says why."""
    ran: list[nn.Conv2d] = []  # the convolutions in the order the forward reaches them
    done: list[nn.Conv2d] = []  # ... and those that ran through
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    hooks = [m.register_forward_pre_hook(lambda m, args: ran.append(m)) for m in convs] + \
        [m.register_forward_hook(lambda m, args, out: done.append(m)) for m in convs]
    try:
        with torch.no_grad():
            out = model.eval()(torch.zeros(2, *info.input_shape, device="meta"))
    except Exception:
        first = ran[0] if len(ran) == 1 and not done else None  # the forward stopped in the first convolution
        if first is not None and first.in_channels != info.in_channels:  # which, reading the images, read others
            raise NeuralscaleError(f"{where}'s first convolution reads {first.in_channels} channels, but "
                                   f"{info.name}'s images have {info.in_channels}{channels}") from None
        return
    finally:
        for h in hooks:
            h.remove()
    if isinstance(out, torch.Tensor) and out.dim() == 2 and out.shape[1] != info.num_classes:
        raise NeuralscaleError(f"{where} gives {out.shape[1]} class scores, but {info.name} has "
                               f"{info.num_classes} classes{classes}")


def _a(kind: str) -> str:
    return f"{'an' if kind[:1].lower() in 'aeiou' else 'a'} {kind}"


def _listed(kwargs: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in kwargs.items())

