"""One validation of every option, shared by the CLI, the Python API and experiment files.

The configuration dataclasses (TrainConfig, DescentConfig, SweepConfig) call
`check_types` and the range checks below from `__post_init__`, so a value is
checked the same way whichever door it came in by, and before any work starts.
"""

from __future__ import annotations

import functools
import math
import os
import re
import types
import typing
from dataclasses import fields
from pathlib import Path
from typing import Any

from .errors import NeuralscaleError, warn

MAX_WIDTH = 1 << 16  # channels in one layer: far beyond any real network, far below an allocation that kills the host
MAX_RATIO = 64.0  # uniform width multiplier


def plain(value: Any) -> Any:
    """A NumPy or torch scalar (`np.int64(8)`, `torch.tensor(0.5)`) as the Python number it holds, anything else as
    it is: the Python API takes a notebook's numbers, and records hold JSON's."""
    if getattr(value, "shape", None) == () and callable(getattr(value, "item", None)):
        return value.item()
    return value


def scalar_hint(value: Any) -> str:
    """' (a NumPy or torch number: pass int(x) or float(x))' where `value` is one a check refused as it is."""
    return " (a NumPy or torch number: pass int(x) or float(x))" if plain(value) is not value else ""


def _describe(tp) -> str:
    origin = typing.get_origin(tp)
    if tp is int:
        return "an integer"
    if tp is float:
        return "a finite number"
    if tp is bool:
        return "true or false"
    if tp is str:
        return "a string"
    if tp is dict or origin is dict:
        return "a table of settings"
    if tp is list or origin in (list, tuple):
        args = [a for a in typing.get_args(tp) if a is not Ellipsis]
        return "a list" + (f" of {_describe(args[0]).removeprefix('a ').removeprefix('an ')}s" if args else "")
    if origin in (typing.Union, types.UnionType):
        parts = [_describe(a) for a in typing.get_args(tp) if a is not type(None)]
        return " or ".join(parts) + (" (or left out)" if type(None) in typing.get_args(tp) else "")
    return str(tp)


def matches(value: Any, tp) -> bool:
    """Whether `value` has type `tp` (int, float, bool, str, list[...], tuple[X, ...], dict, X | None).

    Strict where Python is lax: a bool is not an int, "no" is not a bool, and a float must be finite.
    """
    origin = typing.get_origin(tp)
    if tp is Any:
        return True
    if tp is type(None):
        return value is None
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        try:
            return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        except OverflowError:  # an int past any float (10**400)
            return False
    if tp is str:
        return isinstance(value, str)
    if tp is dict or origin is dict:
        return isinstance(value, dict)
    if tp is list:
        return isinstance(value, list)
    if origin in (list, tuple):
        args = [a for a in typing.get_args(tp) if a is not Ellipsis]
        return isinstance(value, (list, tuple)) and all(matches(v, args[0]) for v in value) if args else \
            isinstance(value, (list, tuple))
    if origin in (typing.Union, types.UnionType):
        return any(matches(value, a) for a in typing.get_args(tp))
    return isinstance(value, tp)


@functools.lru_cache(maxsize=None)
def _hints(cls: type) -> dict:
    """A dataclass's annotations, evaluated once per class (get_type_hints evaluates every string annotation
    again on each call: about 0.7 ms a config, thousands of configs in a sweep's planning and the test suite)."""
    return typing.get_type_hints(cls)


def check_types(obj, what: str) -> None:
    """Every field of a dataclass instance against its annotation; one clear line for the first that is wrong."""
    hints = _hints(type(obj))
    for f in fields(obj):
        value = getattr(obj, f.name)
        if plain(value) is not value:  # a notebook's NumPy number: the number it is (records hold JSON's)
            object.__setattr__(obj, f.name, plain(value))
        if f.name in hints and not matches(getattr(obj, f.name), hints[f.name]):
            raise NeuralscaleError(f"{what} {f.name} must be {_describe(hints[f.name])}, got "
                                   f"{getattr(obj, f.name)!r}")


def at_least(what: str, value, low) -> None:
    if value is not None and value < low:
        raise NeuralscaleError(f"{what} must be at least {low}, got {value}")


SEED_MAX = 2**53  # what torch's and numpy's generators take, exact in every JSON reader


def at_most(what: str, value, high) -> None:
    if value is not None and value > high:
        raise NeuralscaleError(f"{what} must be at most {high:,}, got {value}")


def whole(what: str, value, low: int = 1) -> None:
    """`value` a whole number (not a bool, a float or a string) of at least `low`, or None."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < low):
        raise NeuralscaleError(f"{what} must be a whole number, at least {low}, got {value!r}{scalar_hint(value)}")


def positive(what: str, value) -> None:
    if value is not None and not value > 0:
        raise NeuralscaleError(f"{what} must be positive, got {value}")


def fraction(what: str, value, *, low_open: bool = False, high_open: bool = True) -> None:
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    ok = number and (value > 0 if low_open else value >= 0) and (value < 1 if high_open else value <= 1)
    if not ok:
        raise NeuralscaleError(f"{what} must be a number in {'(' if low_open else '['}0, 1"
                               f"{')' if high_open else ']'}, got {value!r}")


def ratio(value) -> float:
    """A uniform width multiplier: positive, finite and at most MAX_RATIO."""
    value = plain(value)
    if not matches(value, float) or not 0 < value <= MAX_RATIO:
        raise NeuralscaleError(f"a width ratio must be a number in (0, {MAX_RATIO:g}], got {value!r}")
    return float(value)


def one_of(what: str, value, choices) -> None:
    if value not in choices:
        raise NeuralscaleError(f"unknown {what} {value!r}; choose one of: {', '.join(map(str, choices))}")


def suggest(name: str, choices) -> str:
    """' (did you mean X?)' for the nearest of `choices`, or ''."""
    import difflib
    close = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1)
    return f" (did you mean {close[0]}?)" if close else ""


DATA_KEYS = ("train", "test", "data_dir", "tinyimagenet_split")


def check_data(data: dict) -> None:
    """Data settings: seeded subset sizes (at least 1 image), a data folder, TinyImageNet's split."""
    if not isinstance(data, dict):
        raise NeuralscaleError(f"data settings must be a table of settings, got {data!r}")
    unknown = sorted(set(data) - set(DATA_KEYS))
    if unknown:
        raise NeuralscaleError(f"unknown data setting(s): {', '.join(unknown)}{suggest(unknown[0], DATA_KEYS)}")
    for key in ("train", "test"):
        v = data.get(key)
        if v is not None and (not matches(v, int) or v < 1):
            raise NeuralscaleError(f"a {key} subset must be a number of images of at least 1, got {v!r}")
    if data.get("data_dir") is not None and not isinstance(data["data_dir"], str):
        raise NeuralscaleError(f"data_dir must be a path, got {data['data_dir']!r}")
    split = data.get("tinyimagenet_split")
    if split is not None:
        one_of("tinyimagenet_split", split, ("official", "original"))


def is_whole(text: str) -> bool:
    """Text that is a whole number as a user or a CSV writes one: ASCII digits, with a sign and spaces around them
    (not int()'s `1_0`, which it reads as 10, nor other scripts' digits)."""
    return re.fullmatch(r"\s*[+-]?[0-9]+\s*", text) is not None


def parse_whole(text: str) -> int:
    """`text` as an int where `is_whole`, else ValueError."""
    if not is_whole(text):
        raise ValueError(f"not a whole number: {text!r}")
    return int(text)


def expand(path):
    """A path argument with `~` read as the user's home folder, as a shell reads it (a literal `~` folder in the
    working directory was made), of the type given; anything else as it is."""
    if not isinstance(path, (str, Path)) or not str(path).startswith("~"):
        return path
    home = os.path.expanduser(path) if isinstance(path, str) else path.expanduser()
    if os.path.lexists(path) and os.path.abspath(path) != os.path.abspath(home):  # (an earlier version's `~` folder)
        warn(f"{os.path.abspath(path)} (a folder named ~ in the working directory) is not used: ~ is the home folder, "
             f"{home}; move what it holds there to go on with it")
    return home


def check_flags(call: str, flags: dict) -> None:
    """Flags of the Python API (force, progress, ...) as true or false: "no" counted as true (force="no" replaced a
    finished run)."""
    for name, value in flags.items():
        if not isinstance(plain(value), bool):
            raise NeuralscaleError(f"{call}: {name} must be True or False, not {value!r}"[:200])


def check_paths(call: str, paths: dict, optional: bool = True) -> None:
    """Path arguments of the Python API (None: not given, where `optional`) as one NeuralscaleError naming the one
    of the wrong type."""
    for name, value in paths.items():
        if not (optional and value is None) and not isinstance(value, (str, os.PathLike)):
            raise NeuralscaleError(f"{call}: {name} must be a path (a str or os.PathLike), not {type(value).__name__}")
        where = os.fspath(value) if value is not None else ""
        if ("\0" if isinstance(where, str) else b"\0") in where:
            raise NeuralscaleError(f"{call}: {name} {where!r} holds a NUL character, which no path can")
