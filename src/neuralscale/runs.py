"""One run, one record: the unit every command and every executor shares.

A run trains one network with one recipe: from scratch at given widths, or
(the train-prune-fine-tune baselines) by pruning a finished full-width run to
a budget and fine-tuning it.  It lives in one run directory (its files and
the record's fields: store.py).

A run is identified by its configuration (`RunSpec.id`): the same spec always
maps to the same directory, so a sweep run twice skips what is finished and
resumes what was interrupted from its last epoch.
"""

from __future__ import annotations

import logging
import time
import traceback
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .accounting import measure_latency
from .baselines import prune_pretrained, trained_network, warm_start
from .data import DataConfig, spelled_folder
from .errors import EnvironmentFailure, NeuralscaleError, first_line
from .records import atomic_write_text, exclusive
from .layout import RunDir
from .spec import RunSpec
from .store import RunStore, read_record, write_record
from .train import Trainer, check_same_data, environment, read_checkpoint
from .zoo import record_space

log = logging.getLogger(__name__)


def _space(spec: RunSpec, data_dir: str | None):
    return record_space({"model": spec.model, "dataset": spec.dataset, "spec": spec.to_dict()}, data_dir)


def load_run_splits(spec: RunSpec, data_dir: str | None = None):
    config = spec.train_config()
    data = DataConfig.from_settings(spec.dataset, spec.data, data_dir)
    return data.splits(config.val_fraction, config.split_seed)


def _refuse_other_run(run_dir: Path, old: dict, spec: RunSpec) -> None:
    edited = (old.get("spec") or {}).get("architecture") not in (None, spec.architecture)
    raise NeuralscaleError(f"{run_dir} holds another run ({old.get('id')}"
                           + ("; the model's code or modules changed since, or its data's classes or image size"
                              if edited else "") + spelled_folder(old.get("dataset"), spec.dataset)
                           + _other_law(old, spec)
                           + "); use another directory, or --force (force=True) to replace it")


def _other_law(old: dict, spec: RunSpec) -> str:
    """A run of one law of a descent asked for again where the descent has gone on since: its last law (the
    default) is another iteration's (a walkthrough: "holds another run" alone)."""
    then, now = str(old.get("label") or ""), spec.label
    if old.get("method") != spec.method or then == now or "@" not in then or "@" not in now:
        return ""
    return f"; it trained {then}, and this is {now}: give --iteration {then.rsplit('@', 1)[1]} for that run"


def execute(spec: RunSpec, run_dir: str | Path | None, *, space=None, splits=None, progress: bool = True,
            data_dir: str | None = None, store_root: str | Path | None = None,
            raise_errors: bool = False, notes: dict | None = None) -> dict:
    """Run `spec` in `run_dir` (or return its finished record) and return the record.

    With `run_dir` None nothing is written (no record, no checkpoint), except by a pruning baseline
    whose pretrained run has no weights on this machine: they are trained in `store_root` (see
    `_weights_to_prune`).

    An interrupted run resumes from its checkpoint.  A run that raises or
    diverges is recorded as failed (status, error) and its record returned;
    with `raise_errors` the error is raised after recording.
    `store_root` is where the baselines find their pretrained run. `notes`: fields the record adds, which do not
    decide the run (`extrapolated`).
    """
    run_dir = Path(run_dir) if run_dir is not None else None
    old = read_record(run_dir) if run_dir is not None else None
    if old is not None:
        if old.get("id") != spec.id:
            _refuse_other_run(run_dir, old, spec)
        if old["status"] == "finished":
            log.info("%s: already finished; nothing redone", run_dir)
            return old
    if run_dir is not None and RunDir(run_dir).checkpoint.exists():  # another run's is refused, its record unchanged
        splits = _resumable(spec, RunDir(run_dir).checkpoint, splits, data_dir)

    def write(rec: dict) -> None:
        if run_dir is not None:
            write_record(run_dir, rec)
    d = spec.to_dict()
    record: dict[str, Any] = {
        "id": spec.id, "kind": "run", "status": "running", "method": spec.method, "label": spec.label,
        "model": spec.model, "dataset": spec.dataset, "seed": spec.seed, "budget": d["budget"],
        "spec": d, "config": spec.config, "attempts": (old or {}).get("attempts", 0) + 1,
        "started": time.time(), **(notes or {}),
    }
    if old is not None and "init" in old:  # a resumed warm start: where it started (its source may be gone)
        record["init"] = old["init"]
    write(record)
    t0 = time.time()
    trained: list[Trainer] = []  # the run's trainer, once made: its earlier sessions' seconds count in wall_s
    try:
        _train(spec, record, write, run_dir, space or _space(spec, data_dir),
               splits if splits is not None else load_run_splits(spec, data_dir), progress, store_root, trained)
        record.update(status="finished", wall_s=_before(trained) + time.time() - t0, finished=time.time())
        write(record)
        return record
    except EnvironmentFailure:
        raise  # not the run's failure: its record stays unfinished
    except torch.cuda.OutOfMemoryError as e:
        raise EnvironmentFailure(f"{describe(spec)}: out of GPU memory ({first_line(e, None)}); fewer runs "
                                 "per GPU or a smaller batch") from None
    except Exception as e:  # recorded, so that a sweep goes on
        write(_failed(record, e, _before(trained) + time.time() - t0))
        if raise_errors:
            raise
        return record


def _network(spec: RunSpec, space, splits, run_dir: Path | None, store_root,
             progress: bool) -> tuple[nn.Module, list[int], list, dict]:
    """The network a run starts from: built at its widths, or (a baseline) its pretrained run pruned."""
    if spec.pretrained is not None:
        if store_root is None and run_dir is None:
            raise NeuralscaleError("a pruning baseline needs a run store holding its pretrained run")
        root = Path(store_root) if store_root is not None else run_dir.parent
        source, again = _weights_to_prune(root / spec.pretrained, spec, space, splits, progress)
        model, widths, callbacks, info = prune_pretrained(space, source, spec)
        if again:  # pruned from a copy trained again here: the run's own accuracy, and the copy's
            info.update({"from": spec.pretrained, "retrained": True, "retrained_test_acc": info["from_test_acc"],
                         "from_test_acc": read_record(root / spec.pretrained)["summary"].get("final_test_acc")})
        return model, widths, callbacks, {"pruning": info}
    if spec.widths is None:
        raise NeuralscaleError(f"run {spec.id} has neither widths nor a run to prune")
    widths = space.validate(spec.widths)
    if spec.init is not None and run_dir is not None and RunDir(run_dir).checkpoint.exists():
        # resuming: the checkpoint holds the weights, so the run it started from is not needed again
        old = read_record(run_dir) or {}
        return space.build(widths), widths, [], {"init": old.get("init") or {"from": spec.init["run"],
                                                                             "from_id": spec.init["id"]}}
    if spec.init is not None:
        trained, source = trained_network(space, Path(spec.init["run"]))
        if source["id"] != spec.init["id"]:
            raise NeuralscaleError(f"{spec.init['run']} now holds run {source['id']}, not {spec.init['id']}")
        info = {"from": str(spec.init["run"]), "from_id": source["id"], "from_widths": source["widths"],
                "criterion": "l1-uniform"}
        return warm_start(space, trained, widths), widths, [], {"init": info}
    return space.build(widths), widths, [], {}


def _weights_to_prune(source: Path, spec: RunSpec, space, splits, progress: bool) -> tuple[Path, bool]:
    """Where the weights of baseline `spec`'s pretrained run lie, and whether they were trained again.

    A study keeps records, not checkpoints (they stay on the machine that trained them), so on another
    machine a finished pretrained run has no weights: they are trained again from its spec (the same
    widths, recipe and seed, on this baseline's device) in `<run>/weights/`, once per run and machine,
    while the run's own record stays as it is. Two baselines pruning the same run take turns: the second
    waits and uses the first one's weights. A copy whose weights are gone too (its record came from
    another machine) is trained again; one that failed stops every baseline of it with one clear error
    until its folder is removed.
    """
    record = read_record(source)
    if record is None or record.get("status") != "finished":
        raise NeuralscaleError(f"the run to prune ({source.name}) has not finished")
    if RunDir(source).checkpoint.exists():
        return source, False
    again = RunDir(source).weights
    with exclusive(again, "directory", wait=True):
        old = read_record(again) or {}
        if old.get("status") == "failed":
            raise NeuralscaleError(f"training {source.name} again for its weights failed ({old.get('error')}); "
                                   f"see {again.record}, and remove {again} to try again")
        if old.get("status") == "finished" and not again.checkpoint.exists():
            again.record.unlink()  # a record without its weights: from another machine
        if (read_record(again) or {}).get("status") != "finished":
            log.warning("%s: its weights are not on this machine (a study keeps records, not checkpoints); "
                        "training it again from its spec in %s", source.name, again)
        pre = RunSpec.from_dict(record["spec"])
        pre.config = {**pre.config, "device": spec.config.get("device", pre.config.get("device"))}  # this machine's
        same_data = pre.data == spec.data and pre.dataset == spec.dataset
        try:
            execute(pre, again, space=space, splits=splits if same_data else None, progress=progress,
                    raise_errors=True)
        except EnvironmentFailure:
            raise
        except Exception as e:
            raise NeuralscaleError(f"training {source.name} again for its weights failed: "
                                   f"{first_line(e, None, type(e).__name__)}") from None
    return again.path, True


def _failed(record: dict, e: Exception, wall_s: float) -> dict:
    """`record` as a run that raised `e` after `wall_s` seconds of its sessions."""
    record.update(status="failed", error=f"{type(e).__name__}: {first_line(e, None, type(e).__name__)}",
                  wall_s=wall_s, traceback=traceback.format_exc(limit=8))
    return record


def _before(trained: list) -> float:
    """The seconds a run's earlier sessions trained for, to its checkpoint (none before its trainer resumed)."""
    return trained[0].elapsed_before if trained else 0.0


def _train(spec: RunSpec, record: dict, write, run_dir: Path | None, space, splits, progress: bool,
           store_root, trained: list) -> None:
    """Train the run to its end (resuming from its checkpoint), filling in `record`; its trainer put in
    `trained` as it is made."""
    config = spec.train_config()
    torch.manual_seed(config.seed)
    model, widths, callbacks, extra = _network(spec, space, splits, run_dir, store_root, progress)
    record.update(widths=widths, params=space.params(widths), macs=space.macs(widths), input=asdict(space.info),
                  **extra)
    write(record)
    ckpt = RunDir(run_dir).checkpoint if run_dir is not None else None
    trainer = Trainer(model, splits, config, callbacks=callbacks, checkpoint=ckpt, progress=progress,
                      desc=describe(spec), owner=_owner(spec))
    trained.append(trainer)
    record["resumed"] = bool(ckpt and ckpt.exists())
    # what an exported model needs to take images as they are: the inputs' normalisation and the class names
    record.update(normalization={**trainer.input_stats, "units": "pixel values 0-255"},
                  classes=list(splits.classes))
    result = trainer.fit()
    record.update(summary=result.summary, history=result.history, data=splits.identity(),
                  environment=environment(trainer.device, trainer.governor))
    if spec.latency_batches:
        record["latency"] = measure_latency(space.build(widths), space.info.input_shape, trainer.device,
                                            batch_sizes=spec.latency_batches, warmup=3, repeats=15)
    if run_dir is not None:
        atomic_write_text(RunDir(run_dir).metrics, _csv(result.history))


def _owner(spec: RunSpec) -> str:
    """What a run's checkpoint says it belongs to."""
    return f"run {spec.id}"


def describe(spec: RunSpec) -> str:
    """A run in words: label, budget, seed."""
    return f"{spec.label} {spec.budget.words + ' ' if spec.budget else ''}seed {spec.seed}"


def _resumable(spec: RunSpec, checkpoint: Path, splits, data_dir: str | None):
    """The splits a run resumes on, where its checkpoint is its own, written with its settings, on splits of the
    sizes it trained on (an image folder added to since is refused); refused before its record is touched."""
    state = read_checkpoint(checkpoint, _owner(spec), spec.train_config())
    if isinstance(state.get("data"), dict):  # (checkpoints before 0.2 do not say)
        splits = splits if splits is not None else load_run_splits(spec, data_dir)  # as its trainer would
        check_same_data(checkpoint, state["data"], splits.identity())
    return splits


def failed_record(spec: RunSpec, error: str, old: dict | None = None) -> dict:
    """The record of a run that failed outside `execute` (its worker died, or the run it prunes failed)."""
    d = spec.to_dict()
    record = dict(old or {"id": spec.id, "kind": "run", "method": spec.method, "label": spec.label,
                          "model": spec.model, "dataset": spec.dataset, "seed": spec.seed, "budget": d["budget"],
                          "spec": d, "config": spec.config, "attempts": 0})
    record.update(status="failed", error=error)
    return record


def _csv(history: list[dict]) -> str:
    if not history:
        return ""
    keys = list(history[0])
    def cell(v) -> str:  # an empty cell where nothing was measured
        return "" if v is None else f"{v:.6g}" if isinstance(v, float) else str(v)
    lines = [",".join(keys)] + [",".join(cell(m[k]) for k in keys) for m in history]
    return "\n".join(lines) + "\n"


def execute_in_store(spec: RunSpec, store: RunStore, progress: bool = False) -> dict:
    """The one run function every executor calls: run `spec` in its directory of the run store, holding that
    directory's lock (as `train --out` does), so that no other command trains it at the same time."""
    run_dir = store.run_dir(spec.id)
    with exclusive(run_dir, "run directory"):
        return execute(spec, run_dir, store_root=store.runs, progress=progress)
