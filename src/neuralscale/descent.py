"""Architecture descent: prune, fit a scaling law, rebuild from it, repeat.

Iteration 1 prunes the base widths; iteration k builds a fresh network from
law k-1 solved at the base parameter count and prunes it again.  Everything
lives in one directory:

    config.json          the descent's configuration (a rerun must match it)
    iteration_NN.csv     the trajectory of iteration NN
    fits.json            {"objective", "laws": [...]}: what the laws are fitted against; alpha, beta, R^2 per
                         finished iteration, and how it ended
    iteration_NN.ckpt    the running iteration's checkpoint (removed when it finishes)
    log.txt              a line per iteration and per epoch (epochs under 10 s: one line per 10 s), with times
    latency_table.json   a latency objective's measurements (latency.py), measured on first use and kept
    .lock                held by the command running the descent

Everything but log.txt is a function of the configuration and the data (and, for
a latency objective, of latency_table.json, a measurement): a descent killed at
any point and run again writes the same bytes.

Running the same command again continues after the last finished iteration
(and inside an unfinished one, from its last epoch); nothing finished is redone.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import re
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Iterator

import torch

from .budget import Budget, amount
from .data.base import Splits, same_data
from .data.info import protocol
from .estimate import duration_text, training_rate
from .errors import EnvironmentFailure, NeuralscaleError, first_line, warn
from .importance import Importance, TaylorFO
from .latency import LatencyTable
from .layout import RunDir, StoreDir, claim_folder
from .objective import OBJECTIVES, Objective
from .pruning import (TRAJECTORY_STARTS, PruningSession, Schedule, TaylorPruner, ended_early, full_width_k,
                      paced_k)
from .records import atomic_write_json, exclusive, read_text
from .settings import DATA_ELSEWHERE, Settings, option
from .scaling import (ScalingLaw, check_objective, fit, law_label, read_trajectory, solve, uniform_law,
                      write_trajectory)
from .space import WidthSpace
from .train import TrainConfig, Trainer, little_learned_at, resolve_device
from .validate import MAX_WIDTH, SEED_MAX, expand, fraction, matches, ratio, whole
from .threads import settle
from .zoo import located, model_identity, moved

log = logging.getLogger(__name__)


@dataclass
class DescentConfig(Settings):
    """How a descent prunes: the original implementation's settings by default.

    Fields left at None are decided per dataset and model by `resolve`, the one
    place that knows the original's dataset-dependent settings; `descend`
    resolves its configuration first and records the result in config.json.
    """

    WHAT = "descent setting"
    ELSEWHERE = DATA_ELSEWHERE

    iterations: int = option(15, at_least=1)
    warmup_epochs: int = option(10, at_least=0)
    prune_fraction: float = 0.95
    # channels pruned per step (--prune-k); None: the original's pace relative to the network (`paced_k`)
    k: int | None = option(None, flag="prune_k", at_least=1)
    # mini-batches between steps (--prune-interval); None: the dataset's protocol (data.info.PROTOCOLS)
    interval: int | None = option(None, flag="prune_interval", at_least=1)
    batch_size: int | None = option(None, at_least=1)  # None: the dataset's protocol
    lr: float = option(0.1, positive=True, what="learning rate (lr)")
    momentum: float = option(0.5, at_least=0)
    weight_decay: float = option(5e-4, at_least=0)
    add10: bool | None = None  # +10 channels for layers under 10 when rebuilding; None: as the family (space.Family)
    prune_past_one: bool | None = None  # False: pruning ends at the first step that would empty a layer (the
    # original's rule); None: False for the paper's families, True for generic models (see docs/FIDELITY.md)
    trajectory_start: str | None = None  # "all-lost" (the original: rows once every layer has lost a channel)
    # or "per-layer" (rows from the first step; each layer fitted from its own first loss); None: by family
    val_fraction: float = 0.0  # a descent selects nothing, so it prunes on the whole training set (the original)
    schedule: str | None = None  # None: "prune" ("prune-tinyimagenet": decays at multiples of 10 epochs)
    # None: the dataset's (0 for TinyImageNet: its descent only rotates and flips)
    crop_padding: int | None = option(None, at_least=0)
    base_ratio: float = 1.0  # start from the base widths times this (a smaller network on small machines)
    physical: bool = option(True, flag="masking", inverted=True)  # --masking: prune by masking gates instead
    amp: bool = False  # bf16 autocast on CUDA; off: a descent computes in float32, as the original (training runs
    # default to bf16 on CUDA; a descent's choices are what its law is fitted on)
    seed: int = option(0, at_least=0, at_most=SEED_MAX // 1000 - 1)  # iteration n trains with seed * 1000 + n
    device: str = "auto"
    # a cap on epochs per iteration; None: what the pruning schedule needs (warm-up,
    max_epochs: int | None = option(None, at_least=1)
    # then every step's interval at the most steps the fraction allows), which pruning normally ends before
    eval_every: int = option(0, at_least=0)  # evaluate val/test every N epochs while pruning; 0: only when pruning ends
    allow_fallback: bool = False  # go on when an iteration's law is a fallback, not a fit
    until_converged: bool = False  # stop early once the configuration at the base budget has settled
    # ... each layer within this relative change of the previous iteration's
    converge_tolerance: float = option(0.05, positive=True)
    converge_patience: int = option(2, at_least=1)  # ... for this many iterations in a row
    # what the laws are fitted against and pruning ranks channels by (objective.py): params (the paper's), macs
    # (Taylor-FO per MAC saved) or latency (per ms saved, from a latency table measured on latency_device at
    # latency_batch, saved beside the descent as latency_table.json)
    objective: str = option("params", choices=OBJECTIVES)
    latency_device: str = "cpu"
    latency_batch: int = option(1, at_least=1)

    # Settings that do not change what a descent computes: a rerun may change them.
    NOT_IDENTITY = ("iterations", "eval_every", "allow_fallback", "device", "max_epochs", "until_converged",
                    "converge_tolerance", "converge_patience")

    def __post_init__(self):
        self.check()  # types and the declared ranges
        fraction("prune fraction", self.prune_fraction, low_open=True)
        fraction("validation fraction", self.val_fraction)
        ratio(self.base_ratio)
        if self.base_ratio > 1:  # (a descent starts from its base network or a narrower one: config.json says so)
            raise NeuralscaleError(f"base ratio (--base-ratio) is a ratio in (0, 1] of the base widths, got "
                                   f"{self.base_ratio:g}")
        if self.trajectory_start not in (None, *TRAJECTORY_STARTS):
            raise NeuralscaleError(f"trajectory_start is all-lost or per-layer, got {self.trajectory_start!r}")
        if self.schedule not in (None, "prune", "prune-tinyimagenet"):
            raise NeuralscaleError(f"a descent's schedule is prune or prune-tinyimagenet, got {self.schedule!r}")
        if self.objective == "latency":
            resolve_device(self.latency_device)  # a device this machine has, before anything is recorded

    def resolve(self, space: WidthSpace, out_dir=None) -> "DescentConfig":
        """A copy with every None decided for this model and dataset, as the original does (`out_dir`: where the
        descent is, whose k is kept where it began with an earlier release's default: `_kept_k`)."""
        if not isinstance(space, WidthSpace):
            raise NeuralscaleError(f"DescentConfig.resolve takes the space of a model and dataset (ns.space(model, "
                                   f"dataset)), not {type(space).__name__}")
        given = _kept_k(self, space, out_dir)
        p = protocol(space.info.name)
        generic = not space.family.paper
        defaults = {"k": default_k(space, space.uniform(given.base_ratio)),
                    "interval": p.prune_interval, "batch_size": p.prune_batch_size,
                    "add10": space.family.add10, "schedule": p.prune_schedule,
                    "crop_padding": space.info.crop_padding if p.prune_crop_padding is None else p.prune_crop_padding,
                    "prune_past_one": generic,
                    "trajectory_start": "per-layer" if generic else "all-lost"}
        return replace(given, **{k: v for k, v in defaults.items() if getattr(given, k) is None})

    def unused(self) -> list[str]:
        """Settings given (not their defaults) that change nothing with the others: said, not silently ignored."""
        base, notes = DescentConfig(), []
        for names, needs, when in ((("latency_device", "latency_batch"), self.objective != "latency",
                                    "the latency objective (objective latency)"),
                                   (("converge_tolerance", "converge_patience"), not self.until_converged,
                                    "until_converged")):
            notes += [f"{name} (--{name.replace('_', '-')}) is used only with {when}; it changes nothing here"
                      for name in names if needs and getattr(self, name) != getattr(base, name)]
        return notes

    def identity(self) -> dict:
        """What decides what a descent computes (a rerun must match it); where the latency is measured only
        counts for a latency objective."""
        skip = self.NOT_IDENTITY + (() if self.objective == "latency" else ("latency_device", "latency_batch"))
        return {k: v for k, v in asdict(self).items() if k not in skip}

    def schedule_fields(self) -> dict:
        """The pruning schedule's settings (pruning.Schedule), under the names this configuration gives them."""
        if self.k is None or self.interval is None or self.prune_past_one is None or self.trajectory_start is None:
            raise NeuralscaleError("resolve the descent configuration for a space first (DescentConfig.resolve)")
        return {f.name: getattr(self, f.name) for f in fields(Schedule) if hasattr(self, f.name)}

    def train_config(self) -> TrainConfig:
        if self.k is None or self.interval is None or self.batch_size is None or self.schedule is None:
            raise NeuralscaleError("resolve the descent configuration for a space first (DescentConfig.resolve)")
        return TrainConfig(epochs=self.max_epochs or 1, batch_size=self.batch_size, lr=self.lr, momentum=self.momentum,
                           weight_decay=self.weight_decay, schedule=self.schedule, warmup_epochs=self.warmup_epochs,
                           seed=self.seed, device=self.device, eval_every=self.eval_every,
                           val_fraction=self.val_fraction, amp=self.amp)


    def start_space(self, space: WidthSpace) -> WidthSpace:
        """The space a descent with this configuration prunes: the base widths times `base_ratio`."""
        return space.rebased(space.uniform(self.base_ratio)) if self.base_ratio != 1.0 else space

    def objective_for(self, space: WidthSpace, d: "DescentDir | None" = None, measure=None,
                      own_threads: bool = False) -> Objective:
        """The objective over `space`; a latency objective's table is the descent directory's (measured there on
        first use and kept), or a table in memory without one.  `measure`: a latency table's measurement (tests).
        `own_threads`: the descent's own process, whose training on the CPU fixes torch's threads: fixed first
        (threads.settle), so that its table records, and is timed at, the count its training keeps (a user's own
        loop, or a descent training on a GPU, keeps the threads it has)."""
        table = None
        if self.objective == "latency":
            device = str(resolve_device(self.latency_device))
            if own_threads and resolve_device(self.device).type == "cpu" and device == "cpu":
                settle()
            path = d.latency_table if d is not None else None
            table = (LatencyTable.open(path, device, self.latency_batch, measure) if path is not None
                     else LatencyTable(device, self.latency_batch, measure=measure))
        return Objective(space, self.objective, table)


@dataclass
class Iteration:
    """One finished iteration of a descent, as its directory records it."""

    law: ScalingLaw  # a fit to the trajectory, or a fallback (uniform scaling of one configuration)
    start_widths: list[int]
    final_widths: list[int]  # where pruning ended
    half_widths: list[int]  # MorphNet's configuration: as a run capped at 50% would end (see pruning/select.py)
    half_reached: bool  # False: pruning ended before 50%, and half_widths are the final widths
    epochs: int
    pruning_steps: int
    physical: bool
    stop_reason: str
    notes: list[str] = field(default_factory=list)
    final_val_acc: float | None = None

    @property
    def number(self) -> int:
        return int(self.law.iteration)

    def fallback_message(self) -> str:
        return f"iteration {self.number}'s law is not a fit ({self.law.note}); it scales one configuration uniformly"

    def to_dict(self) -> dict:
        d = {**self.law.to_dict(), **{k: v for k, v in asdict(self).items() if k != "law"}}
        if self.law.fallback:
            d["fallback_reason"] = self.law.note
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Iteration":
        law = ScalingLaw.from_dict(d)
        if "start_widths" not in d:
            raise NeuralscaleError("not a descent iteration: start_widths is missing")
        start = d["start_widths"]
        values = {"start_widths": start, "final_widths": d.get("final_widths") or start,
                  "half_widths": d.get("half_widths") or start}  # fields added later count as their default
        values.update({k: d.get(k, default) for k, default in ITERATION_DEFAULTS.items()})
        for k, tp in ITERATION_TYPES.items():
            v = values[k]
            ok = matches(v, tp) and (tp is not int or v >= 0) and (
                tp != list[int] or (len(v) == len(law.layers) and all(1 <= w <= MAX_WIDTH for w in v))) and (
                k != "final_val_acc" or v is None or 0 <= v <= 100)
            if not ok:
                words = f"{len(law.layers)} widths (integers from 1 to {MAX_WIDTH})" if tp == list[int] \
                    else ITERATION_WORDS[tp]
                raise NeuralscaleError(f"not a descent iteration: {k} must be {words}, got {v!r}")
        return cls(law, **values)


# an iteration's fields besides its law, their types, and (where a descent recorded before they existed lacks
# them) their defaults
TAYLOR = TaylorFO.name  # the method's criterion, as a descent's config.json names it

ITERATION_DEFAULTS = {"half_reached": True, "epochs": 0, "pruning_steps": 0, "physical": False, "stop_reason": "",
                      "notes": [], "final_val_acc": None}
ITERATION_TYPES = {"start_widths": list[int], "final_widths": list[int], "half_widths": list[int],
                   "half_reached": bool, "epochs": int, "pruning_steps": int, "physical": bool, "stop_reason": str,
                   "notes": list[str], "final_val_acc": float | None}
ITERATION_WORDS = {bool: "true or false", int: "a count", str: "text",
                   list[str]: "a list of notes", float | None: "a number or null (a percentage)"}


def _known(recorded: dict) -> dict:
    """A descent's recorded configuration (config.json's, or `DescentDir._identity`) with its model as the descent
    knows it: a portable one's file by its name alone (zoo.model_identity), one recorded before by where it lay."""
    portable = recorded.get("portable") is True
    return {**recorded, "model": model_identity(recorded.get("model")) if portable else recorded.get("model")}


def _same(key: str, recorded, now) -> bool:
    """One entry of a descent's identity as recorded and now; its data by `same_data` (a descent recorded before
    digests were has its sizes alone to compare)."""
    return same_data(recorded, now) if key == "data" and isinstance(recorded, dict) else recorded == now


def _on_cuda(device: str) -> bool:
    return device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())


def _check_recorded_settings(recorded: dict) -> None:
    """A descent's recorded settings through DescentConfig's own checks (types and ranges), as a ValueError. A key
    it no longer knows is left alone (an older release's), and so is the latency device (a GPU's descent is read
    on a machine without one)."""
    known = {f.name for f in fields(DescentConfig)} - {"latency_device"}
    try:
        DescentConfig.from_dict({k: v for k, v in recorded.items() if k in known})
    except NeuralscaleError as e:
        raise ValueError(f"descent: {e}") from None


class DescentDir:
    """A descent's directory: the only code that knows its files (see the module docstring)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.config_path = self.path / "config.json"
        self.fits_path = self.path / "fits.json"
        self.log_path = self.path / "log.txt"
        self.latency_table = self.path / "latency_table.json"  # a latency objective's measurements, kept

    def __repr__(self) -> str:
        return f"DescentDir({str(self.path)!r})"

    def exists(self) -> bool:
        """A folder that a descent has written (its configuration and log or laws)."""
        return self.config_path.is_file() and (self.fits_path.is_file() or self.log_path.is_file())

    def trajectory_path(self, number: int) -> Path:
        return self.path / f"iteration_{number:02d}.csv"

    @classmethod
    def of_trajectory(cls, path: Path) -> "tuple[DescentDir, Iteration] | None":
        """(its descent, its iteration) for a trajectory a descent wrote (iteration_NN.csv beside its config.json),
        that iteration finished; None for any other file."""
        m = re.fullmatch(r"iteration_(\d+)\.csv", Path(path).name)
        d = cls(Path(path).parent)
        if m is None or d.config() is None:
            return None
        its = d.iterations()
        return (d, its[int(m.group(1)) - 1]) if 1 <= int(m.group(1)) <= len(its) else None

    def checkpoint(self, number: int) -> Path:
        return self.path / f"iteration_{number:02d}.ckpt"

    def iterations(self) -> list[Iteration]:
        """The finished iterations, checked for shape; [] before the first."""
        if not self.fits_path.exists():
            return []
        try:
            top = json.loads(read_text(self.fits_path))
            entries = top["laws"]
            if not isinstance(entries, list):
                raise TypeError("laws is not a list")
            for key in ("model", "dataset"):
                if not isinstance(top.get(key), str):
                    raise ValueError(f"{key} is {top.get(key)!r}, not a name")
            if top.get("objective", "params") not in OBJECTIVES:
                raise ValueError(f"objective is {top.get('objective')!r}, not one of {', '.join(OBJECTIVES)}")
            if not isinstance(top.get("descent", ""), str):
                raise ValueError(f"descent is {top['descent']!r}, not a descent's fingerprint")
            out = [Iteration.from_dict(d) for d in entries]
            for i, it in enumerate(out, 1):
                if it.law.iteration != i:
                    raise ValueError(f"entry {i} is not iteration {i}")
                if (model_identity(it.law.model), it.law.dataset) != (model_identity(top["model"]), top["dataset"]):
                    raise ValueError(f"iteration {i} is a law of {it.law.model} on {it.law.dataset}, the file's of "
                                     f"{top['model']} on {top['dataset']}")
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError, RecursionError,
                NeuralscaleError) as e:
            raise NeuralscaleError(f"{self.fits_path} is damaged ({str(e)[:200]}); remove it and the later iterations "
                                   "to redo them") from None
        mine = self.fingerprint() if "descent" in top else None  # laws written before fits.json carried it
        if mine is not None and top["descent"] != mine:
            raise NeuralscaleError(f"{self.fits_path} holds the laws of another descent ({top['descent']}), not of "
                                   f"the one {self.config_path} records ({mine}); put back this folder's own "
                                   "fits.json, or remove it to redo its iterations")
        return out

    def laws(self) -> list[ScalingLaw]:
        return [it.law for it in self.iterations()]

    def fingerprint(self) -> str | None:
        """A short hash of what decides this folder's descent, from config.json (model, data, every setting the
        configuration's identity holds): fits.json carries it, so that laws copied from another descent are not
        taken for this one's. None without a configuration."""
        cfg = self.config()
        if cfg is None:
            return None
        defaults = asdict(DescentConfig())
        what = {k: _known(cfg).get(k) for k in ("model", "dataset", "data")}
        if isinstance(what["data"], dict):  # its sizes (the digest, recorded later beside them, is checked by claim)
            what["data"] = {k: v for k, v in what["data"].items() if k != "digest"}
        if cfg.get("portable") is True:  # a file's network by its name: which of the files of that name, too
            what["architecture"] = cfg.get("architecture")
        if "importance" in cfg:  # (a descent recorded before descents recorded it: its fingerprint as it was)
            what["importance"] = cfg["importance"]
        what["descent"] = {k: cfg["descent"].get(k, defaults.get(k)) for k in DescentConfig().identity()}
        return hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()[:12]

    def none_finished(self) -> str:
        """'PATH holds no finished descent iteration', with what the folder is where it is another kind (a run's, a
        store's: --from given the wrong folder) or a descent not yet through its first iteration."""
        said = f"{self.path} holds no finished descent iteration"
        if RunDir(self.path).record.is_file():
            return said + "; it is a trained run's folder (train --out): give a descent's (descend --out)"
        if StoreDir(self.path).plan.is_file():
            return said + "; it is a sweep's store: give the descent's folder its laws came from (descend --out)"
        if self.config_path.is_file():
            return said + " (its first iteration has not finished: run descend into it to go on)"
        return said

    def iteration(self, number: int | None = None) -> Iteration:
        """One finished iteration (the last if `number` is None); an error naming what exists otherwise."""
        its = self.iterations()
        if not its:
            raise NeuralscaleError(self.none_finished())
        if number is None:
            return its[-1]
        if not 1 <= number <= len(its):
            raise NeuralscaleError(f"{self.path} has no iteration {number} (it has 1 to {len(its)})")
        return its[number - 1]

    def trajectory(self, number: int, space: WidthSpace) -> list[list[int]]:
        return read_trajectory(self.trajectory_path(number), space).rows

    def config(self) -> dict | None:
        """The recorded configuration ({"model", "dataset", "descent", "data"}), None before the first run."""
        if not self.config_path.exists():
            return None
        try:
            old = json.loads(read_text(self.config_path))
            if not isinstance(old, dict):
                raise ValueError("not a descent configuration")
            for key, tp in (("model", str), ("dataset", str), ("descent", dict), ("data", dict)):
                if not matches(old.get(key), tp):
                    raise ValueError(f"{key} is {old.get(key)!r}, not {'a name' if tp is str else 'a table'}")
            if "importance" in old and not (matches(old["importance"], str) and old["importance"]):
                raise ValueError(f"importance is {old['importance']!r}, not a name")
            ratio = old["descent"].get("base_ratio", 1.0)
            if not (matches(ratio, float) and 0 < ratio <= 1):
                raise ValueError(f"descent.base_ratio is {ratio!r}, not a ratio in (0, 1]")
            _check_recorded_settings(old["descent"])
        except (ValueError, UnicodeDecodeError, RecursionError) as e:
            raise NeuralscaleError(f"{self.config_path} is damaged ({e}); remove it only if this directory's "
                                   "iterations may be redone with the configuration given now") from None
        return old

    def refuse_foreign(self, force: bool = False) -> None:
        """Refuse a folder with content but no configuration (layout.claim_folder) unless `force`: checked before
        the folder is locked, so that a refused one gets no .lock, and again by `claim` under the lock."""
        if self.config() is None:
            claim_folder(self.path, self.config_path, "descent directory", force)

    def claim(self, space: WidthSpace, cfg: DescentConfig, data: dict, dataset: str | None = None,
              force: bool = False, importance: str = TAYLOR) -> None:
        """Record the configuration, or check that it is the one recorded (a rerun must match it).
        `dataset`: the data's name where the space's own is not it (a space of your own says "custom");
        `importance`: the name of the criterion scoring channels (`importance_name`).
        A folder with content but no configuration is refused (layout.claim_folder) unless `force`."""
        old = self.config()
        identity = self._identity(space, cfg, data, dataset, old is None or old.get("portable") is True,
                                  importance if old is None or "importance" in old else None)
        if old is None:
            self.refuse_foreign(force)
        else:
            self._refuse_other(old, identity, cfg)
            if isinstance(old.get("data"), dict):  # what either says (a digest recorded, not forgotten)
                identity["data"] = {**old["data"], **identity["data"]}
        atomic_write_json(self.config_path, {**identity, "descent": asdict(cfg)})

    @staticmethod
    def _identity(space: WidthSpace, cfg: DescentConfig, data: dict, dataset: str | None, portable: bool,
                  importance: str | None) -> dict:
        """What config.json records of a descent. `portable`: a file's network is known by the file's name, not
        where it lies (zoo.model_identity), so that the descent moved with its file goes on there; not for a
        descent recorded before (its fingerprint hashes the location). `importance`: the criterion that scores
        its channels; None for a descent recorded before descents recorded it (its fingerprint hashes none)."""
        return {"model": space.name, **space.own_architecture(), "dataset": dataset or space.info.name,
                "descent": cfg.identity(), "data": data, **({"portable": True} if portable and located(space.name)
                                                             else {}),
                **({"importance": importance} if importance is not None else {})}

    def _refuse_other(self, old: dict, identity: dict, cfg: DescentConfig) -> None:
        """A rerun must match the recorded configuration; what differs, named."""
        mismatch = [f"{k}: recorded {old.get(k)!r}, now {identity[k]!r}" for k in ("model", "dataset", "data")
                    if not _same(k, _known(old).get(k), _known(identity)[k])]
        if "importance" in old and old["importance"] != identity.get("importance"):  # (its iterations pruned by it;
            mismatch.append(f"importance: recorded {old['importance']!r}, now {identity.get('importance')!r}")
            # a descent recorded before descents recorded it says none)
        if old.get("portable") is not True and moved(old.get("model"), identity["model"]):
            mismatch[0] += (" (a descent recorded before runs knew a file by its name hashes where it lay: continue "
                            "it where the file is at that path)")
        if old.get("architecture") != identity.get("architecture") and "architecture" in old:
            mismatch.append("architecture: the model's code or modules changed, or its data's classes or image "
                            "size (put them back to continue it)" if old.get("model") == identity["model"] else
                            f"architecture: {identity['model']} is another network than {old.get('model')} (its code "
                            "or modules differ)")
        defaults = asdict(DescentConfig())  # a setting added after the record was written counts as its default there
        mismatch += [f"{k}: recorded {old['descent'].get(k, defaults.get(k))!r}, now {v!r}"
                     for k, v in identity["descent"].items() if old["descent"].get(k, defaults.get(k)) != v]
        if "amp" not in old["descent"] and not cfg.amp and _on_cuda(cfg.device):
            mismatch.append("amp: recorded before descents ran in float32 on CUDA, so it ran in bf16 there "
                            "(give --amp to continue it)")
        if mismatch:
            raise NeuralscaleError(f"{self.path} holds a descent with another configuration "
                                   f"({'; '.join(mismatch)}); continue it with the recorded settings, or use a "
                                   "new --out directory")

    def finished(self, space: WidthSpace, cfg: DescentConfig, data: dict,
                 dataset: str | None = None, importance: str = TAYLOR) -> "list[Iteration] | None":
        """This configuration's iterations, where all of them are here already (checked as `claim` checks it,
        writing nothing): a rerun then has nothing to do, and needs no lock (a read-only folder, an archive); else
        None."""
        old = self.config()
        if old is None:
            return None
        self._refuse_other(old, self._identity(space, cfg, data, dataset, old.get("portable") is True, importance),
                           cfg)  # (a recorded criterion compared; one recorded before descents recorded it, not)
        done = self.iterations()
        return done if len(done) >= cfg.iterations else None

    def objective(self) -> str:
        """What this descent's laws are fitted against (its recorded configuration's; params before objectives)."""
        cfg = self.config()
        return (cfg or {}).get("descent", {}).get("objective", "params")

    def objective_over(self, space: WidthSpace) -> Objective:
        """This descent's objective over `space`, to read (figures, reports): a latency objective's table as
        recorded, on any machine, measuring nothing."""
        name = self.objective()
        return Objective(space, name, LatencyTable.read(self.latency_table) if name == "latency" else None)

    def start_space(self, space: WidthSpace) -> WidthSpace:
        """The space this descent pruned (its --base-ratio start), from the recorded configuration."""
        cfg = self.config()
        r = cfg["descent"].get("base_ratio", 1.0) if cfg else 1.0
        return space.rebased(space.uniform(r)) if r != 1.0 else space

    def add(self, space: WidthSpace, it: Iteration, rows: list[list[int]], steps: list[int]) -> None:
        """Write a finished iteration: its trajectory, then its entry in fits.json (the commit point)."""
        write_trajectory(self.trajectory_path(it.number), space, rows, steps)
        entries = [i.to_dict() for i in self.iterations()] + [it.to_dict()]
        atomic_write_json(self.fits_path, {"model": space.name, "dataset": space.info.name,
                                           "objective": self.objective(), "descent": self.fingerprint(),
                                           "laws": entries})
        self.checkpoint(it.number).unlink(missing_ok=True)

    @contextmanager
    def open_log(self) -> Iterator[None]:
        """While open, the package's log messages also go to log.txt, with times."""
        handler = logging.FileHandler(self.log_path)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%Y-%m-%d %H:%M:%S"))
        handler.setLevel(logging.INFO)
        root = logging.getLogger("neuralscale")
        level = root.level
        root.addHandler(handler)
        if root.getEffectiveLevel() > logging.INFO:
            root.setLevel(logging.INFO)
        try:
            yield
        finally:
            root.removeHandler(handler)
            root.setLevel(level)
            handler.close()


# what `DescentResult.configuration` passes on to scaling.solve (its keyword options; the cost is the objective's)
SOLVE_OPTIONS = tuple(name for name, p in inspect.signature(solve).parameters.items()
                      if p.kind is p.KEYWORD_ONLY and name != "cost")


class DescentResult(list):
    """What a descent found: the laws of its finished iterations (a list of ScalingLaw, the last the best
    estimate) and the width space they belong to, with the step from a budget to a model.

        laws = ns.descend(space, ...)
        small = laws.build(params="25%")        # an nn.Module at 25% of the base model's parameters
        laws.configuration(params="10%")        # its widths, parameters, MACs and shares, as `info` shows them
        laws.configuration(macs=150e6, convert=True)   # a MACs budget for a law fitted against parameters
    """

    def __init__(self, laws, space: WidthSpace, path: str | Path | None = None, base_params: int | None = None,
                 objective: Objective | None = None):
        super().__init__(laws)
        self.space = space
        self.path = Path(path) if path is not None else None
        self.base_params = base_params if base_params is not None else space.params(space.base_widths)
        self.objective = objective  # what the laws were fitted against, over the space the descent pruned

    def configuration(self, params: float | str | Budget | None = None, macs: float | str | Budget | None = None,
                      iteration: int | None = None, *, convert: bool = False, **solve_options) -> dict:
        """The configuration of one iteration's law (default the last) for a budget: `params` or `macs`, a
        number or a share of the base model ("25%"); neither: the descent's own base value of its objective
        (its parameter count, or its MACs or estimated latency).  A law fitted against MACs is solved for a
        parameter budget only with `convert` (and the other way round)."""
        if params is not None and macs is not None:
            raise NeuralscaleError("give a params or a macs budget, not both")
        unknown = sorted(set(solve_options) - set(SOLVE_OPTIONS))
        if unknown:  # (a TypeError from solve: `flops=` for `macs=`)
            raise NeuralscaleError(f"configuration: unknown option {unknown[0]!r}; a budget is params or macs, and "
                                   f"solving takes {', '.join(SOLVE_OPTIONS)}")
        if not self:
            raise NeuralscaleError("the descent has no finished iteration")
        whole("iteration", iteration)
        if iteration is not None and not 1 <= iteration <= len(self):
            raise NeuralscaleError(f"the descent has no iteration {iteration} (it has 1 to {len(self)})")
        law = self[(iteration or len(self)) - 1]
        if params is None and macs is None and self.objective is not None and self.objective.name != "params":
            o = self.objective
            sol = solve(law, self.space, o.cost(o.space.base_widths), o.name, cost=o.cost, stated=False,
                        **solve_options)
        else:
            budget = Budget.parse(macs, "macs") if macs is not None else Budget.parse(
                self.base_params if params is None else params, "params")
            if params is not None or macs is not None:
                check_objective(law, budget.metric, convert)
            sol = solve(law, self.space, budget.amount(self.space), budget.metric,
                        stated=params is not None and budget.share is None and budget.ratio is None, **solve_options)
        for w in sol.warnings:  # what `scale` prints for the same law and budget
            warn(f"{law_label(law.iteration, law.objective)} at {amount(sol.budget, sol.metric)}: {w}")
        return {**self.space.describe(sol.widths), "iteration": law.iteration, "metric": sol.metric,
                "objective": law.objective, "budget": sol.budget, "achieved": sol.achieved,
                "warnings": sol.warnings}

    def widths(self, params: float | str | None = None, macs: float | str | None = None,
               iteration: int | None = None, **solve_options) -> list[int]:
        return self.configuration(params, macs, iteration, **solve_options)["widths"]

    def build(self, params: float | str | None = None, macs: float | str | None = None,
              iteration: int | None = None, **solve_options):
        """A fresh, untrained network at the configuration for the budget (the paper trains it from scratch)."""
        return self.space.build(self.widths(params, macs, iteration, **solve_options))


def is_descent_dir(path: str | Path) -> bool:
    return DescentDir(path).exists()


def at_base(law: ScalingLaw, space: WidthSpace, objective: Objective | None = None) -> list[int]:
    """The law's configuration at the base model's value of the objective (default: its parameter count)."""
    if objective is None or objective.name == "params":
        return solve(law, space, space.params(space.base_widths)).widths
    return solve(law, space, objective.cost(space.base_widths), objective.name, cost=objective.cost).widths


def start_widths(space: WidthSpace, previous: list[Iteration], cfg: DescentConfig,
                 objective: Objective | None = None) -> list[int]:
    """Iteration 1: the base widths; later: the last law solved at the base model's value of the objective
    (its parameter count by default).

    With `add10` (the original's rule for ResNet18 and MobileNetV2), every layer
    under 10 channels gets 10 more.
    """
    if not previous:
        return list(space.base_widths)
    widths = at_base(previous[-1].law, space, objective)
    if cfg.add10:
        widths = [w + 10 if w < 10 else w for w in widths]
    return widths


def largest_move(before: list[int], after: list[int]) -> tuple[float, int]:
    """The largest relative change of a layer's width from `before` to `after`, and that layer's index."""
    change = [abs(b - a) / a for a, b in zip(before, after)]
    layer = max(range(len(change)), key=change.__getitem__)
    return change[layer], layer


def configuration_moves(laws: list[ScalingLaw], space: WidthSpace,
                        objective: Objective | None = None) -> list[tuple[float, int]]:
    """For each law after the first: the largest relative change of any layer's width at the base budget (of
    the objective's metric) from the law before, and that layer's index. What the convergence rule reads."""
    configs = [at_base(law, space, objective) for law in laws]
    return [largest_move(prev, cur) for prev, cur in zip(configs, configs[1:])]


def configuration_changes(laws: list[ScalingLaw], space: WidthSpace, objective: Objective | None = None) -> list[float]:
    """For each law after the first: the largest relative change of any layer's width at the base budget (of
    the objective's metric)."""
    return [change for change, _ in configuration_moves(laws, space, objective)]


def converged_at(laws: list[ScalingLaw], space: WidthSpace, tolerance: float = 0.05, patience: int = 2,
                 objective: Objective | None = None) -> int | None:
    """The iteration after which the configuration at the base budget has moved less than `tolerance` (every
    layer, relative) for `patience` iterations in a row; None if it has not."""
    return settled_at(configuration_changes(laws, space, objective), tolerance, patience)


def settled_at(changes: list[float], tolerance: float, patience: int) -> int | None:
    """converged_at over the changes already measured (`configuration_changes`)."""
    for i in range(patience, len(changes) + 1):
        if all(c < tolerance for c in changes[i - patience:i]):
            return i + 1  # changes[j] compares iterations j+1 and j+2
    return None


def _converged(done: list[Iteration], space: WidthSpace, cfg: DescentConfig, objective: Objective) -> bool:
    """Whether the descent stops after its last iteration (--until-converged); how far that iteration's law moved
    the configuration is logged whether or not (as the report's "next start moved" column has it)."""
    if len(done) < 2:
        return False
    try:
        moves = configuration_moves([it.law for it in done], space, objective)
    except NeuralscaleError as e:  # a law that cannot be solved at the base budget (the report's column says so too)
        log.info("descent: how far iteration %d's law moved the configuration cannot be said (%s)", len(done),
                 first_line(e))
        return False
    change, layer = moves[-1]
    moved = ("descent: iteration %d's law moved the configuration at the base budget by up to %.1f%% (%s) from "
             "iteration %d's", len(done), 100 * change, space.layer_names[layer], len(done) - 1)
    if not cfg.until_converged:
        log.info(*moved)
        return False
    streak = 0
    for c, _ in reversed(moves):
        if c >= cfg.converge_tolerance:
            break
        streak += 1
    log.info(moved[0] + "; it stops once every layer moves under %.0f%% for %d iteration(s) in a row (%d so far)",
             *moved[1:], 100 * cfg.converge_tolerance, cfg.converge_patience, min(streak, cfg.converge_patience))
    at = settled_at([c for c, _ in moves], cfg.converge_tolerance, cfg.converge_patience)
    if at is not None:
        log.info("descent converged after iteration %d: the configuration at the base budget moved less than "
                 "%.0f%% per layer for %d iterations in a row", at, 100 * cfg.converge_tolerance,
                 cfg.converge_patience)
    return at is not None


def default_k(space: WidthSpace, widths: list[int]) -> int:
    """The channels a pruning step takes from `space`'s network at `widths` by default: the original's pace
    (`pruning.paced_k`) from the full-width step its family takes (`pruning.full_width_k`)."""
    return paced_k(widths, space.base_widths, full_width_k(space.base_widths, space.family.paper))


def _kept_k(cfg: DescentConfig, space: WidthSpace, out_dir) -> DescentConfig:
    """`cfg` with the k of a descent in `out_dir` that began with the default of releases before `full_width_k`
    (the original's 10 at full width for any network) where k is not given: it continues as it began (a network
    of one's own under 640 channels now defaults to fewer, and its descent was refused as another)."""
    if cfg.k is not None or not isinstance(out_dir, (str, Path)):
        return cfg
    try:
        recorded = ((DescentDir(out_dir).config() or {}).get("descent") or {}).get("k")
        start = space.uniform(cfg.base_ratio)
        before, now = paced_k(start, space.base_widths), default_k(space, start)
    except (NeuralscaleError, OSError, TypeError, ValueError):
        return cfg  # (the descent's own checks say what is wrong with its folder or settings)
    return replace(cfg, k=before) if type(recorded) is int and recorded == before != now else cfg


def _refuse_fallback(done: list[Iteration], cfg: DescentConfig) -> None:
    if done and done[-1].law.fallback and not cfg.allow_fallback:
        raise NeuralscaleError(f"{done[-1].fallback_message()}. To accept it, rerun here with --allow-fallback "
                               "(allow_fallback = true in an experiment file, DescentConfig(allow_fallback=True) in "
                               "Python); or record more rows, in a new --out directory (this one holds this "
                               f"configuration): {_more_rows(cfg, done[-1])}")


def _more_rows(cfg: DescentConfig, it: Iteration) -> str:
    """What records more pruning rows than `cfg` (resolved) did in `it`: only the settings it does not have already
    (a larger prune fraction only where pruning got to this one, not where a layer would have emptied first)."""
    ways = [f"a smaller {flag}" for flag, value in (("--prune-k", cfg.k), ("--prune-interval", cfg.interval))
            if value is not None and value > 1]
    reached = not any(ended_early(said) for said in (it.stop_reason, *it.notes))  # (notes: before stop_reason)
    ways += [f"a larger --prune-fraction (it is {cfg.prune_fraction:g})"] * (reached and cfg.prune_fraction < 0.99)
    ways += ["more training images"] + ["--prune-past-one"] * (not cfg.prune_past_one)
    if cfg.trajectory_start != "per-layer":
        ways.append("--trajectory-start per-layer (rows from the first step, which a MACs or latency objective may "
                    "need: it can leave a cheap layer whole)")
    return ", ".join(ways[:-1]) + " or " + ways[-1] if len(ways) > 1 else ways[0]


# a schedule needing more training batches an iteration is refused unless max_epochs caps it (the paper's CIFAR-10
# descent: about 13,000; TinyImageNet's about 40,000)
MAX_SCHEDULE_BATCHES = 1_000_000


def pruning_law(space: WidthSpace, session: PruningSession, number: int) -> ScalingLaw:
    """The iteration's law: a fit to its rows (against the session's objective), or (as the original does)
    uniform scaling of one configuration."""
    if session.rows:
        return fit(space, session.rows, iteration=number, start=session.trajectory.fit_start,
                   objective=session.objective)
    law = uniform_law(space, session.current, note="no trajectory rows (some layer never lost a channel): uniform "
                                                  "scaling of the widths at the end of pruning")
    law.iteration, law.rows = number, 0
    return law


def descend(space: WidthSpace, splits: Splits, out_dir: str | Path, config: DescentConfig | None = None, *,
            progress: bool = True, importance: Importance | None = None, measure=None,
            force: bool = False) -> list[ScalingLaw]:
    """Run (or continue) an architecture descent in `out_dir`; returns the laws of all iterations.

    `splits` should hold the whole training set (no validation split: a
    descent selects nothing); `config.val_fraction` says how it was made.
    `importance` scores channels (default: Taylor-FO, the method's).
    `measure`: a latency objective's table measurement in place of timing (tests; see latency.py).
    `force`: descend into a folder with other content (layout.claim_folder).
    """
    cfg = (config or DescentConfig()).resolve(space, out_dir)
    space = cfg.start_space(space)
    if cfg.crop_padding != splits.info.crop_padding:
        splits = replace(splits, info=replace(splits.info, crop_padding=cfg.crop_padding))
    try:
        resolve_device(cfg.device)  # a device named wrong: refused before anything is written
    except EnvironmentFailure:
        pass  # one this machine lacks: refused where an iteration would train on it (finished work reads anywhere)
    d = DescentDir(out_dir)
    d.refuse_foreign(force)  # before the lock: a refused folder is left as it was (no .lock in it)
    scores = importance_name(importance)
    done = d.finished(space, cfg, splits.identity(), dataset=splits.info.name, importance=scores)
    if done is not None:  # nothing to do: read, neither locked nor written (a read-only folder, an archive); the
        done = done[:cfg.iterations]  # iterations asked for (one more, asked for once and refused, refuses no other)
        _refuse_fallback(done, cfg)
        return [it.law for it in done]
    with exclusive(d.path, "descent directory"):
        d.claim(space, cfg, splits.identity(), dataset=splits.info.name, force=force, importance=scores)
        with d.open_log():
            for note in cfg.unused():  # in the descent's log.txt too
                log.info("note: %s", note)
            objective = cfg.objective_for(space, d, measure, own_threads=True)
            done = d.iterations()
            for it in done:  # a checkpoint its iteration's end did not get to remove (a kill between the two)
                d.checkpoint(it.number).unlink(missing_ok=True)
            if done:
                log.info("descent: iteration%s already finished in %s", f"s 1-{len(done)}" if len(done) > 1
                         else " 1", d.path)
            stop = cfg.until_converged and _converged(done, space, cfg, objective)  # continued: settled before?
            if not stop and len(done) < cfg.iterations:
                resolve_device(cfg.device)  # one this machine lacks: before an iteration starts on it
            for number in range(len(done) + 1, cfg.iterations + 1):
                if stop:
                    break
                _refuse_fallback(done, cfg)
                done.append(_iteration(d, space, splits, cfg, done, number, progress, importance, objective))
                stop = _converged(done, space, cfg, objective)
            _refuse_fallback(done, cfg)
    return [it.law for it in done]


def importance_name(importance: Importance | None) -> str:
    """How a descent's config.json names the criterion that scored its channels: its `name`, or, for a criterion
    of one's own that gives none, its class's qualified name (two of one class with other settings, or a subclass
    that keeps its parent's name, are not told apart)."""
    if importance is None:
        return TAYLOR
    name = importance.name if isinstance(importance.name, str) and importance.name else Importance.name
    return type(importance).__qualname__ if name == Importance.name else name


def _fingerprint(space: WidthSpace, cfg: DescentConfig, splits: Splits, portable: bool) -> str:
    """A short hash of what decides a descent (its checkpoints carry it: see Trainer's owner); `portable`: as its
    config.json knows the model (`_known`)."""
    what = {"model": _known({"model": space.name, "portable": portable})["model"], "base": list(space.base_widths),
            "descent": cfg.identity(), "data": splits.sizes(), **space.own_architecture()}
    return hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()[:10]


def _say_how_long(space: WidthSpace, widths: list[int], cfg: DescentConfig, session, n_train: int, number: int,
                  device, resuming: bool = False) -> None:
    """Log at most how long the iteration takes (estimate.py): its warm-up and its most pruning steps at the speed
    of its widest network, measured now; pruning only speeds it up. Not for iterations of under a minute or so,
    nor for one resuming from its checkpoint (the whole iteration's bound would overstate what is left; its
    pruning lines estimate that, at this process's pace)."""
    images = cfg.warmup_epochs * n_train + session.max_steps * session.schedule.interval * cfg.batch_size
    if images < 200_000 or resuming:
        return
    try:
        rate = training_rate(space, widths, cfg.batch_size, str(device))
    except (RuntimeError, OSError) as e:  # only an estimate: the descent goes on without it
        log.warning("descent: no time estimate (%s)", first_line(e, empty=type(e).__name__))
        return
    log.info(f"descent iteration {number}/{cfg.iterations}: {duration_text(images / rate)} at most for its training "
             f"({cfg.warmup_epochs} warm-up epoch(s) and up to {session.max_steps} pruning steps at "
             f"{rate:,.0f} training images/s, measured now at its starting widths; an estimate, evaluation not "
             "counted)")


def _epochs(cfg: DescentConfig, session: PruningSession, widths: list[int], images: int) -> int:
    """An iteration's epochs: --max-epochs, or what its pruning schedule needs (refused past
    MAX_SCHEDULE_BATCHES of training: a typo in --prune-interval, not a plan; counted in batches, not epochs, which
    a small dataset's one batch an epoch would multiply)."""
    needed = session.schedule.epochs(sum(widths), images, cfg.batch_size)
    per_epoch = max(1, images // cfg.batch_size)
    if cfg.max_epochs is None and needed * per_epoch > MAX_SCHEDULE_BATCHES:
        raise NeuralscaleError(f"this pruning schedule needs about {needed * per_epoch:,} training batches an "
                               f"iteration (up to {session.max_steps:,} steps, one every "
                               f"{session.schedule.interval:,} batches): give a smaller --prune-interval or a larger "
                               "--prune-k, or --max-epochs to run it capped")
    return cfg.max_epochs or needed


def iteration_seed(cfg: DescentConfig, number: int) -> int:
    """The seed iteration `number` builds and trains its network with: each its own, all from the descent's."""
    return cfg.seed * 1000 + number


def _iteration(d: DescentDir, space: WidthSpace, splits: Splits, cfg: DescentConfig, done: list[Iteration],
               number: int, progress: bool, importance: Importance | None, objective: Objective) -> Iteration:
    """Prune one network to the end, fit its law, and record it; resumes from the iteration's checkpoint."""
    widths = start_widths(space, done, cfg, objective)
    torch.manual_seed(iteration_seed(cfg, number))
    pruner = TaylorPruner(space, widths, physical=cfg.physical, importance=importance,
                          objective=objective if objective.weighs else None, **cfg.schedule_fields())
    p = pruner.session
    epochs = _epochs(cfg, p, widths, len(splits.train[1]))
    log.info("descent iteration %d/%d: start from %s (%s params, %s MACs)", number, cfg.iterations, widths,
             f"{space.params(widths):,}", f"{space.macs(widths):,}")
    tc = replace(cfg.train_config(), seed=iteration_seed(cfg, number), epochs=epochs)
    trainer = Trainer(space.build(widths), splits, tc, callbacks=[pruner], checkpoint=d.checkpoint(number),
                      progress=progress, desc=f"descent {number}/{cfg.iterations}",
                      owner=f"descent {_fingerprint(space, cfg, splits, (d.config() or {}).get('portable') is True)} "
                            f"iteration {number}", follow_load=False)
    trainer.lr_setting, trainer.eval_diverges = "--lr; lr in an experiment's [descent]", False
    # max_epochs and eval_every may change on a rerun (DescentConfig.NOT_IDENTITY): a capped iteration continues
    # under a higher cap (its schedules, prune and prune-tinyimagenet, set an epoch's learning rate by its number
    # alone, not by how many there are)
    trainer.resume_may_differ = ("epochs", "eval_every")
    _say_how_long(space, widths, cfg, p, len(splits.train[1]), number, trainer.device,
                  resuming=d.checkpoint(number).exists())
    t0 = time.time()
    trainer.fit()
    if not p.done:
        raise NeuralscaleError(f"iteration {number} stopped after {trainer.epoch} epochs before pruning "
                               f"{cfg.prune_fraction:.0%} of the channels; raise --max-epochs")
    _learned_little(trainer.history, cfg.warmup_epochs, splits.info.num_classes, number,
                    (len(splits.train[1]), cfg.batch_size))
    law = pruning_law(space, p, number)
    it = Iteration(law, widths, p.current, p.half_widths or p.current, p.half_widths is not None,
                   trainer.epoch, p.pruning_steps, p.physical, p.stop_reason, p.notes,
                   trainer.history[-1]["val_acc"] if trainer.history else None)
    d.add(space, it, p.rows, p.trajectory.row_steps)
    log.info("descent iteration %d/%d: %d trajectory rows, %d pruning steps, %d epochs, %.0f s; %s", number,
             cfg.iterations, len(p.rows), p.pruning_steps, trainer.epoch, time.time() - t0, p.stop_reason)
    if law.fallback:
        warn(it.fallback_message())  # as every warning: "warning: ..." on the command line, a Python warning
    return it


WARMUP_STEPS = 100  # a warm-up of fewer training steps: a smaller batch size is advised where it learned little


def _learned_little(history: list[dict], warmup: int, classes: int, number: int,
                    batches: tuple[int, int] = (0, 1)) -> None:
    """Warn where the network pruned had hardly learned when pruning began (its validation, else test, else training
    accuracy at the end of the warm-up at most twice chance, or a quarter of the way from chance to 100% where that
    is less): its Taylor scores, and the law fitted from them, then
    say little (a walkthrough: a README-sized descent of one's own model pruned a network at 13% on ten classes,
    without a word)."""
    if not history:
        return
    epoch = min(max(warmup, 1), len(history))
    at = history[epoch - 1]
    part, acc = next(((k, at[f"{k}_acc"]) for k in ("val", "test", "train") if isinstance(at.get(f"{k}_acc"),
                                                                                           (int, float))), ("", None))
    chance = 100.0 / classes
    images, batch = batches  # (training images, batch size): few steps an epoch are few steps of warm-up
    steps = epoch * max(1, -(-images // batch)) if images else None
    if acc is not None and acc <= little_learned_at(classes):
        warn(f"descent iteration {number}: the network pruned had learned little when pruning began ({part} "
             f"accuracy {acc:.1f}% after epoch {epoch}; chance is {chance:.3g}%), so its pruning scores and the law "
             "fitted from them say little: give it more warm-up epochs (--warmup-epochs)"
             + (f", a smaller --batch-size (its warm-up was {steps} step{'s' * (steps != 1)} of {batch} of "
                f"{images} images)" if steps is not None and steps < WARMUP_STEPS else "")
             + " or more training images")


def law_from(source: str | Path, space: WidthSpace, iteration: int | None = None) -> ScalingLaw:
    """A law from a descent directory (its fits.json) or a fit JSON file."""
    path = Path(expand(source))
    law = DescentDir(path).iteration(iteration).law if path.is_dir() else ScalingLaw.load(path)
    if iteration is not None and law.iteration != iteration:  # (a file's law: the iteration was ignored)
        raise NeuralscaleError(f"{path} gives the law of iteration {law.iteration} (a law file's one law, or a "
                               f"descent's last), not iteration {iteration}: give the descent's folder to choose an "
                               "iteration, or leave the iteration out")
    law.check_space(space)
    return law


def morphnet_widths(source: str | Path, space: WidthSpace) -> list[int]:
    """The MorphNet (Taylor-FO) configuration: iteration 1's widths once half of its channels are pruned.

    fits.json records them as the original's separate `--morph` run (pruning
    capped at 50%) would end; where pruning ended before 50%, the widths at its
    end, which is where that run would have stopped too.
    """
    path = Path(source)
    if not path.is_dir():
        raise NeuralscaleError(f"MorphNet needs a descent directory (its iteration 1), not {path}")
    first = DescentDir(path).iteration(1)
    space.validate(first.half_widths)
    return list(first.half_widths)


def pruned_widths(source: str | Path, space: WidthSpace) -> list[int]:
    """An ablation's configuration (`pruned`): iteration 1's widths where its pruning ended (its prune fraction of
    the channels gone, 95% by default, or the step that would have emptied a layer), with no law fitted: prune once,
    then scale."""
    path = Path(source)
    if not path.is_dir():
        raise NeuralscaleError(f"method pruned needs a descent directory (its iteration 1), not {path}")
    return list(space.validate(DescentDir(path).iteration(1).final_widths))


def shape_widths(source: str | Path, space: WidthSpace, iteration: int | None = None) -> list[int]:
    """An ablation's configuration (`shape@K`): the widths iteration K started from (the previous law solved at
    the base budget; iteration 1's are the base widths), with none of the law's exponents: the descent's shape
    alone, to be scaled uniformly."""
    path = Path(source)
    if not path.is_dir():
        raise NeuralscaleError(f"method shape needs a descent directory, not {path}")
    return list(space.validate(DescentDir(path).iteration(iteration).start_widths))
