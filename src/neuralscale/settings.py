"""Settings: one declaration per option for the configuration dataclasses, shared by the command line, experiment
files and the Python API.

A configuration dataclass (TrainConfig, DescentConfig, SweepConfig, DataConfig) derives from `Settings` and
declares, on the field itself, the name its command-line flag gives it where that differs from the field's
(`option(None, flag="prune_k")`: `--prune-k` on the command line, `prune_k` or `prune-k` in an experiment file,
`k` in Python), and whether the flag says the opposite (`option(True, flag="masking", inverted=True)`: `--masking`
sets `physical = False`).  `from_flags` reads a table of flag names or field names alike, so the command line and
experiment files go through the same declaration; nothing else maps one name to another.
"""

from __future__ import annotations

import dataclasses
from dataclasses import MISSING, asdict, fields
from typing import Any

from .errors import NeuralscaleError
from .validate import at_least, check_types, one_of, positive, at_most as check_at_most, suggest


def option(default: Any = MISSING, *, flag: str | None = None, inverted: bool = False, at_least: float | None = None,
           positive: bool = False, choices: tuple | None = None, what: str | None = None,
           default_factory: Any = MISSING, at_most: float | None = None) -> Any:
    """A dataclass field whose command-line flag is `flag` (with `_` for `-`); `inverted`: the flag is true when
    the field is false.  Its range, checked by `Settings.check`: `at_least`, `positive`, `choices` (None always
    passes: it means "decided later"), `at_most`; `what`: how messages name it (default: the
    field's name)."""
    meta: dict = {"flag": flag, "inverted": inverted} if flag else {}
    meta.update({k: v for k, v in (("at_least", at_least), ("positive", positive or None), ("choices", choices),
                                   ("what", what), ("at_most", at_most)) if v is not None})
    if default_factory is not MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def _spelled(f) -> str:
    """How a message names a field: its `what`, or as the user writes it where that differs from the field's name
    (`prune_k (--prune-k)` for the field k)."""
    flag = f.metadata.get("flag")
    if "what" in f.metadata:
        return f.metadata["what"]
    return f"{flag} (--{flag.replace('_', '-')})" if flag and not f.metadata.get("inverted") else f.name


# the data's subsets and folder are no training or descent setting: where a Python caller gives them instead
FLOAT32_MAX = 3.4028234663852886e38  # the largest float a float32 setting (a learning rate) can be as torch uses it

DATA_ELSEWHERE = {"train_subset": "a data setting: give subset={'train': N} to the call (--train-subset)",
                  "test_subset": "a data setting: give subset={'test': N} to the call (--test-subset)",
                  "data_dir": "a data setting: give data_dir= to the call (--data-dir)",
                  "tinyimagenet_split": "a data setting: give subset={'tinyimagenet_split': ...} to the call "
                                        "(--tinyimagenet-split)"}


class Settings:
    """Mixin for the configuration dataclasses: strict `from_dict`, `to_dict`, and `from_flags` (see the module)."""

    WHAT = "setting"  # how messages name one of them: "unknown descent setting(s)"
    EXTRA_KEYS: tuple[str, ...] = ()  # keys a section may hold beside the fields (a sweep's preset and train)
    ELSEWHERE: dict[str, str] = {}  # a name that belongs elsewhere -> where (DATA_ELSEWHERE)

    @classmethod
    def _unknown(cls, unknown: list[str], names) -> str:
        """The words for keyword arguments or keys no field has: each named, with where it belongs (a data setting)
        or the nearest field."""
        said = [f"{k} ({cls.ELSEWHERE[n]})" if n in cls.ELSEWHERE else k + suggest(n, names)
                for k, n in ((k, k.replace("-", "_")) for k in unknown)]
        return f"unknown {cls.WHAT}(s): {', '.join(said)}"

    def __new__(cls, *args, **kwargs):
        """An unknown keyword is one clear error naming the nearest field (`TrainConfig(epoch=3)`), not the
        dataclass's TypeError."""
        names = [f.name for f in fields(cls)]
        unknown = sorted(set(kwargs) - set(names))
        if unknown:
            raise NeuralscaleError(cls._unknown(unknown, names))
        return super().__new__(cls)

    @classmethod
    def flags(cls) -> dict[str, tuple[str, bool]]:
        """Every name a setting may be given by: flag or field name -> (field name, inverted)."""
        out = {f.name: (f.name, False) for f in fields(cls)}
        out.update({f.metadata["flag"]: (f.name, f.metadata["inverted"]) for f in fields(cls) if f.metadata.get("flag")})
        return out

    @classmethod
    def keys_from_flags(cls, table: dict, where: str = "") -> dict:
        """`table`'s keys (flag names, with - or _, or field names) as field names, inverted flags turned round;
        an unknown key names the nearest known one, a field set twice is an error."""
        names = cls.flags()
        out: dict = {}
        seen: dict = {}
        # every unknown key at once, each with the nearest known name (the flag's where a field has one, as the
        # command line spells it)
        flagged = {f.name for f in fields(cls) if f.metadata.get("flag")}
        known = sorted((set(names) - flagged) | set(cls.EXTRA_KEYS))
        unknown = [key for key in table if key.replace("-", "_") not in names and key.replace("-", "_") not in
                   cls.EXTRA_KEYS]
        if unknown:
            raise NeuralscaleError(cls._unknown(unknown, known))
        for key, value in table.items():
            name = key.replace("-", "_")
            if name in cls.EXTRA_KEYS:
                out[name], seen[name] = value, key
                continue
            field_name, inverted = names[name]
            if inverted:
                if not isinstance(value, bool):
                    raise NeuralscaleError(f"{where + ' ' if where else ''}{key} must be true or false, got {value!r}")
                value = not value
            if field_name in out:
                raise NeuralscaleError(f"{where + ' ' if where else ''}sets {field_name} twice: {seen[field_name]} "
                                       f"and {key}")
            out[field_name], seen[field_name] = value, key
        return out

    @classmethod
    def from_flags(cls, table: dict, where: str = ""):
        """A configuration from flag or field names (an experiment file's section, the command line's values)."""
        return cls.from_dict(cls.keys_from_flags(table, where))

    @classmethod
    def from_dict(cls, d: dict):
        """From a dict of field names; an unknown key is an error that names the nearest field."""
        if not isinstance(d, dict):
            raise NeuralscaleError(f"{cls.WHAT}s must be a table of settings, got {d!r}")
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise NeuralscaleError(cls._unknown(unknown, names))
        try:
            return cls(**d)
        except TypeError as e:
            raise NeuralscaleError(f"bad {cls.WHAT}s: {e}") from None

    def to_dict(self) -> dict:
        return asdict(self)

    def check(self) -> None:
        """Every field's type against its annotation, and its declared range (call from `__post_init__`)."""
        check_types(self, self.WHAT)
        for f in fields(self):
            value, what = getattr(self, f.name), _spelled(f)
            if isinstance(value, float) and abs(value) > FLOAT32_MAX and value == value:  # (training is float32)
                raise NeuralscaleError(f"{what} must be at most {FLOAT32_MAX:.4g} (float32's largest), got {value:g}")
            if "at_least" in f.metadata:
                at_least(what, value, f.metadata["at_least"])
            if f.metadata.get("positive"):
                positive(what, value)
            if "at_most" in f.metadata:
                check_at_most(what, value, f.metadata["at_most"])
            if "choices" in f.metadata and value is not None:
                one_of(what, value, f.metadata["choices"])
