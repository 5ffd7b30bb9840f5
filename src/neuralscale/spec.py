"""A run's specification: everything that decides its outcome, and the id it is known by.

A run is identified by its configuration (`RunSpec.id`): the same spec always maps to the same directory, so a
sweep run twice skips what is finished and resumes what was interrupted.  A record carries its spec; reading it
back, `spec_problem` checks it field by field and that it hashes to the record's id (store.check_record).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from .budget import Budget
from .errors import NeuralscaleError
from .validate import matches

if TYPE_CHECKING:  # train (torch's world) is imported only when a run is trained
    from .train import TrainConfig

# Fields of the training configuration that do not change what is computed, so they are not part of a run's identity.
NOT_IDENTITY = ("device", "eval_batch_size")


@dataclass
class RunSpec:
    """Everything that decides a run's outcome (and a little that only labels it)."""

    model: str  # a width-space name, e.g. "vgg11"
    dataset: str
    method: str  # uniform | morphnet | neuralscale | l1-prune | l1-global | slimming | explicit
    config: dict  # TrainConfig.to_dict()
    widths: list[int] | None = None  # None for the pruning baselines: decided from the trained weights
    budget: Budget | None = None  # in the record: {"metric": "params", "value": 579786, "ratio": 0.25}
    label: str = ""  # how reports name the method, e.g. "neuralscale@15"
    convcut: bool = False
    data: dict = field(default_factory=dict)  # {"train": N, "test": N, "tinyimagenet_split": ...}
    pretrained: str | None = None  # baselines: the id of the finished run to prune
    criterion: str | None = None  # baselines: slimming | l1-uniform | l1 (see baselines.py)
    latency_batches: tuple[int, ...] = (1,)  # measured after training; () for none
    init: dict | None = None  # a warm start: {"run": path of a finished run, "id": its id} (see baselines.warm_start)
    architecture: str | None = None  # a model of the user's own: its space's fingerprint (space.WidthSpace)
    # the model's name says where its file lies, and the run is known by the file's name instead (zoo.model_identity),
    # so that a study moved with its file is the same there; False in a record written before (its id hashes the
    # location, and is kept) and for every other model
    portable: bool = False

    def __post_init__(self):
        self.label = self.label or self.method
        self.latency_batches = tuple(self.latency_batches)
        if not isinstance(self.budget, Budget):
            self.budget = Budget.from_dict(self.budget)
        if self.widths is not None:
            self.widths = [int(w) for w in self.widths]

    @property
    def seed(self) -> int:
        return int(self.config.get("seed", 0))

    def train_config(self) -> TrainConfig:
        from .train import TrainConfig
        return TrainConfig.from_dict(self.config)

    def identity(self) -> dict:
        d = self.to_dict()
        d["config"] = {k: v for k, v in self.config.items() if k not in NOT_IDENTITY}
        d.pop("latency_batches")
        init = d.pop("init")
        if init is not None:  # the run it starts from, by id: where that run lies does not change the outcome
            d["init"] = init["id"]
        d["data"] = {k: v for k, v in self.data.items() if k != "data_dir"}
        if self.portable:
            from .zoo import model_identity  # (torch's world: only for a model of one's own)
            d["model"] = model_identity(self.model)
        return d

    @property
    def id(self) -> str:
        digest = hashlib.sha256(json.dumps(self.identity(), sort_keys=True).encode()).hexdigest()[:10]
        budget = self.budget.slug if self.budget else ""
        slug = re.sub(r"[^A-Za-z0-9.]+", "-", f"{self.label}-{budget}-s{self.seed}").strip("-")
        return f"{slug}-{digest}"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["latency_batches"] = list(self.latency_batches)
        d["budget"] = self.budget.to_dict() if self.budget else {}
        if d["architecture"] is None:  # a named model's run: its name says what it computes (records and ids as
            del d["architecture"]  # before the field was added)
        if not d["portable"]:  # (records and ids as before the field was added)
            del d["portable"]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "RunSpec":
        return cls(**d)


# what each field of a spec holds in a record (JSON: tuples are lists, the budget a table)
SPEC_TYPES = {"model": str, "dataset": str, "method": str, "config": dict, "widths": list[int] | None,
              "budget": dict | None, "label": str, "convcut": bool, "data": dict, "pretrained": str | None,
              "criterion": str | None, "latency_batches": list[int], "init": dict | None,
              "architecture": str | None, "portable": bool}
_REQUIRED = ("model", "dataset", "method", "config")


def spec_problem(spec, record_id: str) -> str:
    """'' when `spec` is a RunSpec's dict whose id is `record_id`, else what is wrong (field by field)."""
    if not isinstance(spec, dict):
        return "spec is not a table"
    missing = [k for k in _REQUIRED if k not in spec]
    unknown = [k for k in spec if k not in SPEC_TYPES]
    if missing or unknown:
        return f"spec.{(missing or unknown)[0]} is {'missing' if missing else 'not a field of a run spec'}"
    for key, tp in SPEC_TYPES.items():
        if key in spec and not matches(spec[key], tp):
            return f"spec.{key} is {str(spec[key])[:40]!r}, not what a run spec holds there"
    if spec.get("widths") is not None and not (spec["widths"] and all(w >= 1 for w in spec["widths"])):
        return "spec.widths are not positive"
    if spec.get("init") is not None and not all(isinstance(spec["init"].get(k), str) for k in ("run", "id")):
        return "spec.init does not name a run and its id"
    try:
        found = RunSpec.from_dict(spec).id
    except (NeuralscaleError, TypeError, ValueError, AttributeError) as e:
        return f"spec: {e}"
    # the digest is the identity (the slug before it is a label, written otherwise by neuralscale 0.1.0)
    return "" if found.rpartition("-")[2] == record_id.rpartition("-")[2] else f"spec is run {found}'s, not {record_id}'s"
