"""A whole experiment (descent, sweep, report) described in one TOML file and run with one command.

    [experiment]
    model = "vgg11"
    dataset = "fashionmnist"
    out = "runs/demo"          # relative to the TOML file's folder unless absolute
    device = "cpu"             # optional (default auto)

    [data]                     # optional: seeded subsets, data_dir, tinyimagenet_split
    train = 10000
    test = 5000

    [descent]                  # optional: any DescentConfig field (see `neuralscale descend --help`)
    base_ratio = 0.125
    iterations = 2

    [sweep]                    # any SweepConfig field; `preset` = "quick" | "paper" fills in the rest
    methods = ["uniform", "morphnet", "neuralscale"]
    ratios = [0.125, 0.25]
    seeds = [0, 1]

    [sweep.train]              # the one training recipe (TrainConfig fields)
    epochs = 3

    [executor]                 # optional: where the sweep's runs execute (default: sequential)
    name = "local"             # sequential | local | ray
    workers = 2                # local: processes; ray: at most this many at once
    # devices = ["cuda:0", "cuda:1"]; threads = 1; address = "HOST:PORT"; gpus_per_run = 0.25; cpus_per_run = 1

    [report]
    accuracy = "best-val"      # best-val | final | original

Layout of `out`: descent/ (the descent directory), runs/ and sweep.json (the
sweep's run store), report/ (the report).  Running the file again continues
whatever was not finished.
"""

from __future__ import annotations

import os
import sys
import tomllib
from dataclasses import fields
from pathlib import Path

from .errors import NeuralscaleError

SECTIONS = ("experiment", "data", "descent", "sweep", "executor", "report")
EXECUTOR_KEYS = ("name", "workers", "devices", "threads", "address", "gpus_per_run", "cpus_per_run", "retries")


def load(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise NeuralscaleError(f"experiment file {path} does not exist")
    try:
        doc = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise NeuralscaleError(f"{path} is not valid TOML ({e})") from None
    unknown = set(doc) - set(SECTIONS)
    if unknown:
        raise NeuralscaleError(f"{path}: unknown section(s) {', '.join(sorted(unknown))}; use {', '.join(SECTIONS)}")
    exp = doc.get("experiment", {})
    for key in ("model", "dataset"):
        if key not in exp:
            raise NeuralscaleError(f"{path}: [experiment] needs {key}")
    extra = set(exp) - {"model", "dataset", "out", "device", "convcut"}
    if extra:
        raise NeuralscaleError(f"{path}: unknown [experiment] setting(s) {', '.join(sorted(extra))}")
    doc["_base"] = path.parent
    return doc


def run(path: str | Path, out: str | Path | None = None, progress: bool = True, retry_failed: bool = False) -> dict:
    """Run (or continue) the experiment; returns build_report's result."""
    from .api import load_splits
    from .descent import DescentConfig, descend
    from .report import build_report
    from .space import space as make_space
    from .sweep import SweepConfig, preset, run_sweep

    doc = load(path)
    exp = doc["experiment"]
    out_dir = Path(out) if out else Path(exp.get("out", Path(path).stem))
    if not out_dir.is_absolute() and out is None:
        out_dir = Path(os.path.normpath(doc["_base"] / out_dir))
    device = exp.get("device", "auto")
    convcut = bool(exp.get("convcut", False))
    data = dict(doc.get("data", {}))
    extra = set(data) - {"train", "test", "data_dir", "tinyimagenet_split"}
    if extra:
        raise NeuralscaleError(f"unknown [data] setting(s) {', '.join(sorted(extra))}")
    say = (lambda m: print(m, file=sys.stderr, flush=True)) if progress else (lambda m: None)

    descent_dir = None
    if "descent" in doc:
        d = dict(doc["descent"])
        names = {f.name for f in fields(DescentConfig)}
        bad = set(d) - names
        if bad:
            raise NeuralscaleError(f"unknown [descent] setting(s) {', '.join(sorted(bad))}")
        d.setdefault("device", device)
        space = make_space(exp["model"], exp["dataset"], convcut=convcut, data_dir=data.get("data_dir"))
        cfg = DescentConfig(**d).resolve(space)
        splits = load_splits(exp["dataset"], cfg.train_config(), data.get("data_dir"),
                             subset={"train": data.get("train"), "test": data.get("test")},
                             tinyimagenet_split=data.get("tinyimagenet_split", "official"))
        descent_dir = out_dir / "descent"
        say(f"experiment: descent into {descent_dir}")
        descend(space, splits, descent_dir, cfg, progress=progress)
        from .plots import descent_figures
        descent_figures(descent_dir, space.rebased(space.uniform(cfg.base_ratio)) if cfg.base_ratio != 1 else space)

    sw = dict(doc.get("sweep", {}))
    if not sw:
        raise NeuralscaleError(f"{path}: [sweep] is missing; an experiment needs at least a sweep")
    train = dict(sw.pop("train", {}))
    train.setdefault("device", device)
    common = dict(model=exp["model"], dataset=exp["dataset"], convcut=convcut, data=data,
                  descent=str(descent_dir) if descent_dir else sw.pop("descent", None))
    name = sw.pop("preset", None)
    if name:
        sweep_cfg = preset(name, exp["model"], exp["dataset"], train=train,
                           **{k: v for k, v in {**common, **sw}.items() if k not in ("model", "dataset")})
    else:
        sweep_cfg = SweepConfig.from_dict({**common, **sw, "train": train})
    ex = dict(doc.get("executor", {}))
    bad = set(ex) - set(EXECUTOR_KEYS)
    if bad:
        raise NeuralscaleError(f"unknown [executor] setting(s) {', '.join(sorted(bad))}; use {', '.join(EXECUTOR_KEYS)}")
    kinds = {"name": str, "workers": int, "threads": int, "retries": int, "address": str,
             "gpus_per_run": (int, float), "cpus_per_run": (int, float), "devices": list}
    for k, v in ex.items():
        if not isinstance(v, kinds[k]) or isinstance(v, bool):
            want = {int: "an integer", str: "a string", list: "a list of device names"}.get(kinds[k], "a number")
            raise NeuralscaleError(f"[executor] {k} must be {want}, got {v!r}")
    from .executors import get_executor
    executor = get_executor(ex.pop("name", "sequential"), **ex)
    say(f"experiment: sweep into {out_dir}")
    run_sweep(sweep_cfg, out_dir, progress=progress, retry_failed=retry_failed, executor=executor)
    rep = doc.get("report", {})
    bad = set(rep) - {"accuracy"}
    if bad:
        raise NeuralscaleError(f"unknown [report] setting(s) {', '.join(sorted(bad))}")
    return build_report(out_dir, accuracy=rep.get("accuracy", "best-val"))
