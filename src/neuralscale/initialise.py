"""How a model rebuilt at other widths gets its first weights: as its own constructor gave them.

A generic model (a file of the user's, torchvision's or timm's) is built at any widths by resizing its layers
(generic.py), which leaves their tensors without values.  They are filled as the model's constructor filled them:

1. every module's own `reset_parameters()` (children before parents, as a constructor runs them): PyTorch's
   default for its layers, at their new shapes;
2. then, in their order, the calls the constructor made outside those resets to `torch.nn.init`'s initialisers
   (`nn.init.kaiming_normal_(m.weight, mode="fan_out")`, `constant_`, `normal_`, ...) and to a tensor's
   `normal_`, `uniform_`, `fill_` and `zero_` (`m.weight.data.normal_(0, 0.01)`), each on the parameter it
   filled, with the arguments it was given (a `generator=` aside): `torch.nn.init`'s compute their fan at the
   new shapes, as does a normal draw whose spread is Kaiming's for the base widths' fan (`_as_fan`); other
   numbers the code computed itself stay as computed;
3. a normalisation whose scale the constructor set to zero (a residual branch's last batch norm, timm's
   `zero_init_last`) starts at one: a zero scale's channels would have a Taylor score of zero, and be pruned
   first for it.

The calls are recorded while the constructor runs (`recorded`), and checked once: replayed at the base widths,
each parameter must come out as the constructor made it (its spread, largest value and mean, or its constant).
A parameter whose values came otherwise (a module handed over already built, whose construction was not seen; an
initialiser imported by name before the recording; timm's own `trunc_normal_`; arithmetic on a tensor) is given
the first that gives its values of: its layer's default, its constant, or one of the schemes models use
(`SCHEMES`: Kaiming normal by fan out or in, Xavier, N(0, 0.01), ...); where none does, it keeps its layer's
default, and a warning names it.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import sys
import threading
from typing import Callable, Iterator

import torch
from torch import nn

INITIALISERS = [n for n in dir(torch.nn.init)
                if n.endswith("_") and not n.startswith("_") and callable(getattr(torch.nn.init, n))]
FILLS = ("normal_", "uniform_", "fill_", "zero_")  # a tensor's own in-place initialisers, as models call them
RESETS = ("reset_parameters", "_reset_parameters", "reset_running_stats")  # what step 1 redoes
_LOCK = threading.RLock()  # re-entrant: a model whose constructor builds another (on meta, or recorded)

_NORMS = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)
Call = tuple[str, bool, str, tuple, dict]  # (initialiser, a tensor's method?, parameter, args, kwargs)


def _unchanged(tensor, *args, **kwargs):
    return tensor


@contextlib.contextmanager
def initialisers_skipped() -> Iterator[None]:
    """torch.nn.init's in-place initialisers (kaiming_normal_, zeros_, ...) as no-ops while a model is built
    on the meta device, where they would fill nothing: a meta build for costing (the solver builds hundreds)
    takes a third of the time.  Their module attributes are swapped and always restored; models call them
    through the module (`nn.init.x_(...)`, as torch's own layers do), so this reaches them.  Only ever used
    around a meta build in this process's main work (no thread of neuralscale builds models beside it)."""
    with _LOCK:
        saved = {name: getattr(torch.nn.init, name) for name in INITIALISERS}
        try:
            for name in saved:
                setattr(torch.nn.init, name, _unchanged)
            yield
        finally:
            for name, f in saved.items():
                setattr(torch.nn.init, name, f)


def _not_recorded() -> bool:
    """Whether the caller's call is not the constructor's own: made inside a module's reset (step 1 redoes those
    at the new shapes), or from torch.nn.init's code (an initialiser imported by name, `from torch.nn.init import
    kaiming_normal_`, unseen: its `tensor.normal_(0, std)` would replay the base widths' std)."""
    frame = sys._getframe(2)
    if frame.f_globals.get("__name__") == "torch.nn.init":
        return True
    while frame is not None:
        if frame.f_code.co_name in RESETS:
            return True
        frame = frame.f_back
    return False


def _plain(value) -> tuple[bool, object]:
    """(whether a call's argument can be given again, the value to give): numbers, words and None; a one-number
    tensor as its number; tuples of those."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return True, value
    if isinstance(value, torch.Tensor) and value.numel() == 1 and value.device.type != "meta":
        return True, value.item()
    if isinstance(value, (tuple, list)):
        parts = [_plain(v) for v in value]
        return all(ok for ok, _ in parts), type(value)(v for _, v in parts)
    return False, None


def recorded(make: Callable[[], nn.Module]) -> tuple[nn.Module, list[Call]]:
    """`make()`'s model and the initialisers its construction called on its parameters, outside its modules'
    resets, in order (step 2 of the module's docstring)."""
    seen: list[tuple[str, bool, torch.Tensor, tuple, dict]] = []
    me, depth = threading.get_ident(), [0]

    def wrap(f, name: str, method: bool):
        @functools.wraps(f)
        def call(tensor, *args, **kwargs):
            if threading.get_ident() != me:  # (another thread's calls: neither recorded nor counted)
                return f(tensor, *args, **kwargs)
            if depth[0] == 0 and isinstance(tensor, torch.Tensor) and not _not_recorded():
                seen.append((name, method, tensor, args, kwargs))  # (the tensor kept: no other reuses its memory)
            depth[0] += 1
            try:
                return f(tensor, *args, **kwargs)
            finally:
                depth[0] -= 1
        return call
    with _LOCK:
        saved = {name: getattr(torch.nn.init, name) for name in INITIALISERS}
        own = {name: torch.Tensor.__dict__.get(name) for name in FILLS}  # (inherited from TensorBase: None)
        try:
            for name, f in saved.items():
                setattr(torch.nn.init, name, wrap(f, name, False))
            for name in FILLS:
                setattr(torch.Tensor, name, wrap(getattr(torch.Tensor, name), name, True))
            model = make()
        finally:
            for name, f in saved.items():
                setattr(torch.nn.init, name, f)
            for name, f in own.items():
                if f is None:
                    delattr(torch.Tensor, name)
                else:
                    setattr(torch.Tensor, name, f)
    return model, _named(model, seen)


def _named(model: nn.Module, seen: list) -> list[Call]:
    """The recorded calls on the model's parameters (the parameter itself, or its `.data`), by parameter name;
    calls on anything else (a layer replaced afterwards, a temporary tensor, part of a parameter) are dropped."""
    by_id, by_memory = {}, {}
    for name, p in model.named_parameters():
        by_id.setdefault(id(p), name)
        if p.device.type != "meta":
            by_memory.setdefault((p.untyped_storage().data_ptr(), p.storage_offset(), tuple(p.shape)), name)
    calls = []
    for fn, method, tensor, args, kwargs in seen:
        name = by_id.get(id(tensor))
        if name is None and tensor.device.type != "meta":
            name = by_memory.get((tensor.untyped_storage().data_ptr(), tensor.storage_offset(), tuple(tensor.shape)))
        kwargs = {k: v for k, v in kwargs.items() if k != "generator"}  # (replayed from the global stream)
        ok_args, args = _plain(args)
        ok_kwargs, values = _plain(list(kwargs.values()))
        if name is not None and ok_args and ok_kwargs:
            calls.append(_as_fan((fn, method, name, tuple(args), dict(zip(kwargs, values))), tensor))
    return calls


def _as_fan(call: Call, tensor: torch.Tensor) -> Call:
    """A normal draw whose std is Kaiming's for the tensor's fan at the base widths (`normal_(0, sqrt(2. / n))`,
    n = k * k * out_channels: the original VGG's and network slimming's init, timm's EfficientNet's), as the
    Kaiming call that computes that fan at any widths; any other call as it is."""
    fn, method, name, args, kwargs = call
    if fn != "normal_" or tensor.dim() < 2:
        return call
    mean, std = (list(args) + [kwargs.get("mean", 0.0), kwargs.get("std", 1.0)][len(args):])[:2]
    if mean != 0 or not isinstance(std, (int, float)) or std <= 0:
        return call
    fan_in, fan_out = torch.nn.init._calculate_fan_in_and_fan_out(tensor)
    for mode, fan in (("fan_out", fan_out), ("fan_in", fan_in)):
        if fan > 0 and abs(std / (2 / fan) ** 0.5 - 1) < 1e-3:
            return ("kaiming_normal_", False, name, (), {"mode": mode, "nonlinearity": "relu"})
    return call


def _children_first(model: nn.Module) -> list[nn.Module]:
    out, seen = [], set()

    def visit(m: nn.Module) -> None:
        if id(m) not in seen:
            seen.add(id(m))
            for child in m.children():
                visit(child)
            out.append(m)
    visit(model)
    return out


@torch.no_grad()
def initialise(model: nn.Module, calls: list[Call]) -> None:
    """Fill a rebuilt model's tensors as its constructor did (the module's docstring: its resets, then its calls,
    then no zero normalisation scale). A call that does not apply at the new shape leaves the default."""
    for m in _children_first(model):
        for reset in ("reset_parameters", "_reset_parameters"):
            if callable(getattr(m, reset, None)):
                try:
                    getattr(m, reset)()
                except TypeError:  # (one that needs arguments: the constructor gave them; its calls were seen)
                    pass
                break
    for fn, method, name, args, kwargs in calls:
        try:
            tensor = model.get_parameter(name)
            getattr(tensor, fn)(*args, **kwargs) if method else getattr(torch.nn.init, fn)(tensor, *args, **kwargs)
        except (AttributeError, RuntimeError, ValueError, TypeError, ZeroDivisionError):
            continue  # (a call the new shape does not take: the checked base replays every call)
    for m in model.modules():
        if isinstance(m, _NORMS) and getattr(m, "weight", None) is not None and not m.weight.any():
            m.weight.fill_(1.0)


SAMPLE = 65536  # values compared at most, evenly spaced (VGG's 100-million-weight layer: milliseconds)


def _sample(t: torch.Tensor) -> torch.Tensor:
    flat = t.detach().flatten()
    return flat[:: max(1, flat.numel() // SAMPLE)][:SAMPLE].double()


def _alike(made: torch.Tensor, again: torch.Tensor) -> bool:
    """Whether `again` was drawn as `made` was: equal where `made` is constant; else a spread and a 99th
    percentile of magnitudes within 20% and means within a fifth of a spread, each loosened by four standard
    errors for the chance differences of few values (a tensor of 16 values: a factor of 2.6; of 4,608: 1.28; of
    65,536: 1.22); under 8 values tell too little: alike (a normal and a uniform draw of one spread differ in that
    percentile by 1.5x; Kaiming's fan out and PyTorch's default for a first convolution of 3 to 64 channels, 7x7,
    in spread by 1.9x). Read from 65,536 evenly spaced values of each at most."""
    a, b = _sample(made), _sample(again)
    if not (torch.isfinite(a).all() and torch.isfinite(b).all()):
        return bool(a.numel() == b.numel() and torch.equal(a.isnan(), b.isnan()))
    if a.numel() and bool((a == a[0]).all()):
        return bool((b == a[0]).all())
    if min(a.numel(), b.numel()) < 8:
        return True
    chance = 4 * (2 / min(a.numel(), b.numel())) ** 0.5
    factor = 1.2 + chance
    sa, sb = float(a.std()), float(b.std())
    qa, qb = (float(torch.quantile(x.abs(), 0.99)) for x in (a, b))  # (the largest value is too noisy: a normal's
    # of 37,000 values varies by 20% between draws)
    return (sa / factor <= sb <= sa * factor and qa / factor <= qb <= qa * factor
            and abs(float(a.mean() - b.mean())) <= (0.2 + chance) * sa)


# the schemes models draw their weights by (PyTorch's, torchvision's, timm's), tried in this order on a parameter
# whose values no recorded call gives (a module handed over already built, whose construction was not seen): the
# call, and the draw it makes from (fan in, fan out): a normal's or a uniform's spread
_RELU = {"nonlinearity": "relu"}
SCHEMES = [("kaiming_normal_", {"mode": "fan_out", **_RELU}, lambda fi, fo: ("normal", (2 / fo) ** 0.5)),
           ("kaiming_normal_", {"mode": "fan_in", **_RELU}, lambda fi, fo: ("normal", (2 / fi) ** 0.5)),
           ("xavier_uniform_", {}, lambda fi, fo: ("uniform", (6 / (fi + fo)) ** 0.5)),
           ("xavier_normal_", {}, lambda fi, fo: ("normal", (2 / (fi + fo)) ** 0.5)),
           ("normal_", {"std": 0.01}, lambda fi, fo: ("normal", 0.01)),
           ("normal_", {"std": 0.001}, lambda fi, fo: ("normal", 0.001)),
           ("trunc_normal_", {"std": 0.02}, lambda fi, fo: ("normal", 0.02))]  # (cut at +-2: nothing at this std)


def _replayed(model: nn.Module, calls: list[Call]) -> dict[str, torch.Tensor]:
    again = copy.deepcopy(model)
    initialise(again, calls)
    return dict(again.named_parameters())


def _scheme_of(made: torch.Tensor, name: str) -> Call | None:
    """The call that gives values like `made`: its constant, or the first of SCHEMES that draws them (compared on
    a draw of the sample's size, not the tensor's)."""
    flat = made.detach().flatten()
    if flat.numel() and bool((flat == flat[0]).all()):
        return ("fill_", True, name, (float(flat[0]),), {})
    fans = torch.nn.init._calculate_fan_in_and_fan_out(made) if made.dim() >= 2 else (0, 0)  # (none for a bias)
    n = min(flat.numel(), SAMPLE)
    for fn, kwargs, draw in SCHEMES:
        if fn.startswith(("kaiming", "xavier")) and min(fans) <= 0:
            continue
        kind, spread = draw(*fans)
        drawn = torch.randn(n, dtype=torch.float64) * spread if kind == "normal" else \
            (torch.rand(n, dtype=torch.float64) * 2 - 1) * spread
        if _alike(made, drawn):
            return (fn, False, name, (), dict(kwargs))
    return None


def followed(model: nn.Module, calls: list[Call]) -> tuple[list[Call], list[str]]:
    """The calls that give `model`'s first values (the constructor's model, with its values), and the parameters
    none gives: replayed on a copy at its own shapes and compared parameter by parameter (`_alike`), the calls on
    a parameter that does not come out alike are dropped; its layer's default, its constant or one of SCHEMES is
    taken where it gives them, else it is named (and keeps its layer's default)."""
    if not any(p.device.type != "meta" for p in model.parameters()):
        return calls, []
    zero_scales = {f"{n}.weight" if n else "weight" for n, m in model.named_modules()  # (step 3 sets them to one)
                   if isinstance(m, _NORMS) and getattr(m, "weight", None) is not None and not m.weight.any()}
    with torch.random.fork_rng(devices=[]):
        torch.random.default_generator.manual_seed(1)  # (the same draws on every run: the same verdict; the CPU's
        # only: fork_rng(devices=[]) gives back no device's stream)
        try:
            replayed = _replayed(model, calls)
        except Exception:  # noqa: BLE001  (a module of the user's that does not copy: its calls are kept unchecked)
            return calls, []
        made = dict(model.named_parameters())
        differ = [n for n, p in made.items() if n in replayed and n not in zero_scales and not _alike(p, replayed[n])]
        kept = [c for c in calls if c[2] not in differ]
        defaults = _replayed(model, kept) if differ else {}
        found, unknown = [], []
        for n in differ:
            if _alike(made[n], defaults[n]):
                continue
            call = _scheme_of(made[n], n)
            found += [call] if call is not None else []
            unknown += [n] if call is None else []
    return kept + found, unknown


def not_followed_text(model: str, names: list[str]) -> str:
    """The warning for parameters whose first values `followed` could not give again."""
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    return (f"{model}: the first values of {shown} are not what the model's calls to torch.nn.init (or a tensor's "
            "normal_/uniform_/fill_/zero_) gave them; rebuilt, at any widths, they start at their layer's default")
