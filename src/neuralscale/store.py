"""Run records and the run store: the record's format, reading and writing it, and the store's plan and lock.

A run lives in one directory (`train --out DIR`, or a store's `runs/<id>/`); a run store (a sweep's `--out`)
holds many.  Their files are named by `layout` (RunDir, StoreDir).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import typing
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, TypedDict

from .data import spelled_folder
from .errors import NeuralscaleError
from .records import atomic_write_json, exclusive, read_text
from .budget import METRICS, Budget
from .layout import RunDir, StoreDir
from .spec import NOT_IDENTITY, spec_problem
from .validate import matches

RECORD = RunDir.RECORD
STATUSES = ("running", "finished", "failed")


class RunRecord(TypedDict, total=False):
    """The one run record format (record.json).  Every key below; `summary` and later once finished."""

    id: str  # RunSpec.id: the hash of everything that decides the run
    kind: str  # always "run"
    status: str  # running | finished | failed
    method: str  # uniform | morphnet | neuralscale | l1-prune | l1-global | slimming | explicit
    label: str  # how reports name the method, e.g. "neuralscale@15"
    model: str
    dataset: str
    seed: int
    budget: dict  # {"metric": "params" | "macs", "value": N, "ratio": R (when given as a ratio)}
    spec: dict  # RunSpec.to_dict(): enough to run it again
    config: dict  # TrainConfig.to_dict()
    attempts: int  # how many times it was started
    started: float  # time.time() of the last start
    widths: list[int]
    params: int
    macs: int
    input: dict  # the space's DatasetInfo (input shape, classes): exporting the run needs no data
    normalization: dict  # {"mean", "std"} per input channel, in pixel values 0-255, of its training split
    classes: list[str]  # the data's class names, in label order ([] where the data has none)
    init: dict  # a warm start (train --init-from): the run it started from
    pruning: dict  # the pruning baselines: criterion, the run pruned, physical or masked
    extrapolated: bool  # `train`: its law was solved beyond the range it was fitted on (methods.scale); only if true
    resumed: bool  # the last attempt continued from a checkpoint
    summary: dict  # train.summarize: final and best-validation test accuracy, ...
    history: list[dict]  # every epoch's metrics (null where not evaluated)
    data: dict  # train / val / test sizes, and the dataset's digest where read from files (Splits.identity)
    environment: dict  # library versions, device, threads
    latency: dict  # accounting.measure_latency, when asked for
    wall_s: float
    finished: float
    error: str  # failed runs: the error in one line
    traceback: str  # failed runs: where it happened


def read_record(run_dir: str | Path) -> dict | None:
    """A run directory's record, or None when it has none; a damaged record (not JSON, or a field of RunRecord's
    missing, of another type or out of range) is one error naming the file and the field."""
    path = RunDir(run_dir).record
    if not path.exists():
        return None
    again = f"restore it, or remove {path.parent} to train that run again"  # a sweep reruns a run without one
    try:
        record = json.loads(read_text(path))
    except (ValueError, UnicodeDecodeError, OSError, RecursionError) as e:
        raise NeuralscaleError(f"{path} is not a run record ({str(e)[:200] or 'nested too deeply'}); {again}") \
            from None
    try:
        return check_record(record, path)
    except NeuralscaleError as e:
        raise NeuralscaleError(f"{e}; {again}") from None


# every status's records hold these (a failed run's record may have been written before training started)
REQUIRED = ("id", "kind", "status", "method", "label", "model", "dataset", "seed", "budget", "spec", "config")
# and a finished run's also these (what reports, exports and resumes read)
FINISHED_FIELDS = ("widths", "params", "macs", "summary", "history", "attempts", "started", "wall_s", "finished")


def _field_problem(key: str, value: Any, hints: dict) -> str:
    """'' when `value` is what RunRecord says field `key` holds, else why not."""
    if not matches(value, hints[key]):
        return f"{key} is {_short(value)}, not {_TYPE_WORDS.get(hints[key], hints[key])}"
    if key == "kind" and value != "run" or key == "status" and value not in STATUSES:
        return f"{key} is {_short(value)}"
    if key in ("seed", "params", "macs", "attempts") and not 0 <= value <= 2**53 \
            or key in ("started", "finished", "wall_s") and value < 0:
        return f"{key} is {_short(value)}, out of range"
    if key == "widths" and not (value and all(w >= 1 for w in value)):
        return f"widths are {_short(value)}, not positive"
    if key == "history" and not all(isinstance(h, dict) for h in value):
        return "history is not a list of epochs"
    if key == "normalization" and not (matches(value.get("mean"), list[float]) and matches(value.get("std"), list[float])
                                       and len(value["mean"]) == len(value["std"]) and all(x > 0 for x in value["std"])):
        return "normalization is not a mean and a positive std per channel"
    return ""


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# sweep.json; a store of neuralscale 0.1.0 has no recipe: it reads, but a sweep adds nothing to it
PLAN_FIELDS = {"recipe": dict, "config": dict, "runs": list[str], "written": str}
_TYPE_WORDS = {str: "text", int: "an integer", float: "a finite number", bool: "true or false", dict: "a table",
               list[int]: "a list of integers", list[str]: "a list of names", list[dict]: "a list of epochs"}


@functools.cache
def _record_types() -> dict:
    return typing.get_type_hints(RunRecord)


def check_record(record: Any, where: str | Path) -> dict:
    """A run record read back, field by field against RunRecord (types, ranges, the fields its status needs): the
    one schema check that every command reading a record goes through; else one error naming the file and field."""
    if not isinstance(record, dict):
        raise NeuralscaleError(f"{where} is not a run record (not a table)")
    hints = _record_types()
    need = REQUIRED + (FINISHED_FIELDS if record.get("status") == "finished" else ())
    missing = [k for k in need if k not in record]
    problem = (f"{missing[0]} is missing" if missing else
               next((p for k in hints if k in record for p in [_field_problem(k, record[k], hints)] if p), ""))
    if not problem:
        problem = (_config_problem(record["config"]) or spec_problem(record["spec"], record["id"])
                   or _mirror_problem(record))
    if not problem and record["status"] == "finished":
        problem = _finished_problem(record)
    if problem:
        what = "a finished run record" if record.get("status") == "finished" else "a run record"
        raise NeuralscaleError(f"{where} is not {what}: {problem}")
    return record


# a record's fields that its spec holds too (written from it): reports group by them, exports say them
MIRRORED = ("method", "label", "model", "dataset", "budget", "config", "widths")


def _mirror_problem(record: dict) -> str:
    """'' when the record's fields say what its spec (whose id the record's is, checked) says, else which does not:
    an edited field is not believed (a phantom row, a run counted as another seed)."""
    spec = record["spec"]
    for key in MIRRORED:
        said, told = spec.get(key), record.get(key)
        if key == "config" and isinstance(said, dict) and isinstance(told, dict):  # (where it ran: not compared)
            said, told = ({k: v for k, v in c.items() if k not in NOT_IDENTITY} for c in (said, told))
        if said not in (None, {}, []) and key in record and told != said:
            return f"{key} is {_short(record[key])}, where its spec says {_short(spec[key])}"
    seed = spec["config"].get("seed", 0)
    return f"seed is {_short(record['seed'])}, where its spec says {_short(seed)}" if record["seed"] != seed else ""


def _config_problem(config: dict) -> str:
    """'' when a record's training settings are settings TrainConfig takes (types and ranges; a key it no
    longer knows is left alone), else why not."""
    from .train import TrainConfig  # the one definition of the settings (train imports no record code)
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    try:
        TrainConfig.from_dict({k: v for k, v in config.items() if k in known})
    except NeuralscaleError as e:
        return f"config: {e}"
    return ""


def _number(x, optional: bool = False) -> bool:
    return (optional and x is None) or finite(x)


def _finished_problem(record: dict) -> str:
    """What else a report reads of a finished record, checked field by field: '' when all is well."""
    summary = record["summary"]
    if not _number(summary.get("final_test_acc")):  # every finished run is tested at its last epoch
        return f"summary.final_test_acc is {summary.get('final_test_acc')!r}, not a number"
    for key in ("test_acc_at_best_val", "best_test_acc_original_protocol", "final_val_acc",
                "best_val_acc", "best_val_epoch"):  # None: not measured (no validation split, say)
        if not _number(summary.get(key), optional=True):
            return f"summary.{key} is {summary.get(key)!r}, not a number"
    for key in ("final_test_acc", "test_acc_at_best_val", "best_test_acc_original_protocol", "final_val_acc",
                "best_val_acc"):
        if summary.get(key) is not None and not 0 <= summary[key] <= 100:
            return f"summary.{key} is {summary[key]!r}, not a percentage"
    b = record["budget"]
    if b and (b.get("metric", "params") not in METRICS
              or not all(_number(b.get(k), optional=True) for k in ("value", "share", "ratio"))
              or all(b.get(k) is None for k in ("value", "share", "ratio"))):
        return f"budget is {b!r}"
    history = record.get("history", [])
    if not isinstance(history, list) or not all(isinstance(h, dict) for h in history):
        return "history is not a list of epochs"
    latency = record.get("latency")
    if latency is not None:
        batches = latency.get("batches") if isinstance(latency, dict) else None
        if not isinstance(batches, dict) or not all(
                isinstance(m, dict) and all(_number(m.get(k), optional=k != "median_ms")
                                            for k in ("median_ms", "p10_ms", "p90_ms", "iqr_ms"))
                for m in batches.values()):
            return "latency is not a measurement (batches of median_ms, p10_ms, p90_ms, iqr_ms)"
    return ""


def write_record(run_dir: str | Path, record: dict) -> None:
    atomic_write_json(RunDir(run_dir).record, record)


def is_run_dir(path: str | Path) -> bool:
    return RunDir(path).record.is_file()


def load_records(root: str | Path) -> list[dict]:
    """Every run record under a run store (or a folder of run directories), sorted by directory name."""
    layout = StoreDir(root)
    runs = layout.runs_folder()
    records, seen = [], {}
    for d in sorted(p for p in runs.iterdir() if p.is_dir()) if runs.is_dir() else []:
        r = read_record(d)
        if r is None or r.get("kind") != "run":
            continue
        # a store names each run's directory by its id; in a folder of `train --out` directories, one run twice
        if runs == layout.runs and d.name != r["id"]:
            raise NeuralscaleError(f"{RunDir(d).record} is the record of run {r['id']}, not of {d.name} whose "
                                   f"directory it is in; move it back to runs/{r['id']} or remove it")
        if r["id"] in seen:
            raise NeuralscaleError(f"{seen[r['id']]} and {d} hold the same run ({r['id']}); remove one, or it "
                                   "would be counted twice")
        seen[r["id"]] = d
        records.append(r)
    return records


def finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def data_counts(settings: dict, data) -> dict | None:
    """What a run's recorded data (`data`: `Splits.identity()`, the parts' sizes and the files' digest) says of the
    files it read, to compare runs of one dataset and data `settings` (`same_data`): the training and validation
    images together (which other validation fractions split otherwise), unless a training subset fixes the training
    count (its validation is cut from the rest by the fraction), the test images, and the digest of the whole
    dataset where recorded. None where the record says none."""
    if not isinstance(data, dict):
        return None
    split = [data.get(k) for k in ("train", "val")]
    counts = ({} if "train" in settings else
              {"training": sum(split) if all(isinstance(n, int) for n in split) else split})
    return {**counts, "test": data.get("test"), **({"digest": data["digest"]} if "digest" in data else {})}


def said_counts(counts: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items())


def budget_key(record: dict) -> tuple:
    """What reports group a record by: its budget's key (a record without one: its parameter count)."""
    b = Budget.from_dict(record.get("budget"))
    return b.key if b is not None else ("params", float(record.get("params", 0)))


# what plans a store's sweep again where its plan is lost: without sweep.json the folder is no store (its marker),
# so the sweep needs --force to write into it; the finished runs are found by their ids and kept
REPLAN = ("remove it and run the sweep (or experiment) again with --force to plan it again (its finished runs are "
          "kept; a latency budget's widths are solved again)")


class RunStore:
    """A sweep's output directory: its recipe, its plan and its run directories."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.layout = StoreDir(self.root)
        self.runs = self.layout.runs
        self.plan_path = self.layout.plan

    def run_dir(self, run_id: str) -> RunDir:
        return self.layout.run(run_id)

    def read(self, run_id: str) -> dict | None:
        """The record of run `run_id`, None if it has none; a record of another run in its directory (copied
        or moved there) is an error, never taken for this run's."""
        record = read_record(self.run_dir(run_id))
        if record is not None and record["id"] != run_id:
            raise NeuralscaleError(f"{self.run_dir(run_id).record} is the record of run {record['id']}, not of "
                                   f"{run_id} whose directory it is in; move it back to runs/{record['id']} or "
                                   "remove it")
        return record

    def write(self, run_id: str, record: dict) -> None:
        write_record(self.run_dir(run_id), record)

    def status(self, run_id: str) -> str | None:
        r = self.read(run_id)
        return None if r is None else r["status"]

    def records(self) -> list[dict]:
        return load_records(self.root)

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Held while a command trains in this store: a second command on it stops with a clear error."""
        with exclusive(self.root, "run store"):
            yield

    def load_plan(self) -> dict | None:
        if not self.plan_path.exists():
            return None
        try:
            plan = json.loads(read_text(self.plan_path))
        except (ValueError, UnicodeDecodeError, OSError, RecursionError) as e:
            raise NeuralscaleError(f"{self.plan_path} is damaged ({e}); {REPLAN}") from None
        if not isinstance(plan, dict):
            raise NeuralscaleError(f"{self.plan_path} is not a sweep file; {REPLAN}")
        for key, tp in PLAN_FIELDS.items():  # a recipe lost would let another recipe's runs be pooled with these
            if not matches(plan.get(key), tp) and not (key == "recipe" and key not in plan):
                raise NeuralscaleError(f"{self.plan_path} is damaged: {key} is {_short(plan.get(key))}, not "
                                       f"{_TYPE_WORDS[tp]}; restore it, or {REPLAN}")
        return plan

    def save_plan(self, recipe: dict, config: dict, run_ids: list[str], written: str) -> list[str]:
        """Record the sweep's recipe and runs; refuse a recipe that differs from the store's.

        The recipe is what decides how every run in the store trains (model, data, training
        settings, the laws it scales); methods, budgets and seeds may grow.  Returns every run id
        planned in this store so far, old ones first.
        """
        old = self.load_plan()
        recipe = json.loads(json.dumps(recipe))  # as it reads back: tuples are lists
        ids = list(run_ids)
        if old is not None:
            self.refuse_other_recipe(old, recipe)
            before = old["recipe"]
            if isinstance(before.get("laws"), dict):  # laws of every descent so far
                recipe["laws"] = {**before["laws"], **recipe.get("laws", {})}
            ids = list(old["runs"])
            ids += [i for i in run_ids if i not in set(ids)]
        atomic_write_json(self.plan_path, {"recipe": recipe, "config": config, "runs": ids, "written": written})
        return ids

    def refuse_other_recipe(self, old: dict, recipe: dict) -> None:
        """A store's plan (`old`, as load_plan reads it) that cannot take runs of `recipe`: one without a recipe,
        or with another (compared as the store's reads back: tuples are lists)."""
        recipe = json.loads(json.dumps(recipe))
        if "recipe" not in old:
            raise NeuralscaleError(f"{self.plan_path} records no recipe (a store of the first release, 0.1.0, or a "
                                   "damaged file): its runs cannot be checked against this sweep's settings, so nothing "
                                   "is added to it; use another --out (out in an experiment file)")
        diff = recipe_difference(old["recipe"], recipe)
        if diff:
            raise NeuralscaleError(f"{self.root} holds a sweep with another recipe ({diff}"
                                   f"{spelled_folder(old['recipe'].get('dataset'), recipe.get('dataset'))}); its "
                                   "runs would be pooled with these in one report: use another --out (out in an "
                                   "experiment file)")


def recipe_difference(old: dict, new: dict) -> str:
    """What differs between two recipes, in words ('' if nothing); laws are compared where both have one."""
    diffs = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if key == "laws" and isinstance(a, dict) and isinstance(b, dict):
            changed = sorted(k for k in set(a) & set(b) if a[k] != b[k])
            if changed:
                diffs.append(f"the laws of descent iteration(s) {', '.join(changed)}")
        elif isinstance(a, dict) and isinstance(b, dict):
            diffs += [f"{key}.{k}: {a.get(k)!r} before, {b.get(k)!r} now" for k in sorted(set(a) | set(b))
                      if a.get(k) != b.get(k)]
        elif a != b:
            diffs.append(f"{key}: {a!r} before, {b!r} now")
    return "; ".join(diffs[:4]) + (f"; and {len(diffs) - 4} more" if len(diffs) > 4 else "")


def strip_timing(record: dict[str, Any]) -> dict[str, Any]:
    """A record without what varies from one execution to another (times, attempts, speed, latency).

    Two executions of the same run on the same machine agree on everything else.
    """
    volatile = {"started", "finished", "wall_s", "attempts", "resumed", "latency", "environment"}
    out = {k: v for k, v in record.items() if k not in volatile}
    if "history" in out:
        out["history"] = [{k: v for k, v in m.items() if k not in ("train_time_s", "images_per_s")}
                          for m in out["history"]]
    if "summary" in out:
        out["summary"] = {k: v for k, v in out["summary"].items() if k != "images_per_s"}
    return out
