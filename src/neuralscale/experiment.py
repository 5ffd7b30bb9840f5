"""A whole experiment (descent, sweep, report) described in one TOML file and run with one command.

    [experiment]
    model = "vgg11"
    dataset = "fashionmnist"
    out = "runs/demo"          # relative to the TOML file's folder unless absolute
    device = "cpu"             # optional (default auto)

    [data]                     # optional: seeded subsets, data_dir, tinyimagenet_split
    train_subset = 10000       # (or train, test)
    test_subset = 5000

    [descent]                  # optional: `neuralscale descend`'s flags (prune_k or prune-k for --prune-k)
    base_ratio = 0.125
    iterations = 2
    prune_interval = 10

    [sweep]                    # `neuralscale sweep`'s flags; `preset` = "quick" | "paper" fills in the rest
    methods = ["uniform", "morphnet", "neuralscale"]
    ratios = [0.125, 0.25]
    seeds = [0, 1]

    [sweep.train]              # the one training recipe (`neuralscale train`'s flags: epochs, lr, no_augment...)
    epochs = 3

    [executor]                 # optional: where the sweep's runs execute (default: sequential)
    name = "local"             # sequential | local | ray
    workers = 2                # local: processes; ray: at most this many at once
    # devices = ["cuda:0", "cuda:1"]; threads = 1; address = "HOST:PORT"; gpus_per_run = 0.25; cpus_per_run = 1

    [report]
    accuracy = "best-val"      # best-val | final | original
    format = ["png", "svg"]    # figure files: png, svg, pdf (default png)
    band = "ci"                # ci (95% CI of the mean, default) | minmax | none

Layout of `out`: descent/ (the descent directory), runs/ and sweep.json (the
sweep's run store), report/ (the report).  Running the file again continues
whatever was not finished.
"""

from __future__ import annotations

import logging
import os
import tomllib
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from . import modelfile
from .errors import NeuralscaleError
from .logs import for_api
from .api import load_splits
from .data import DataConfig, image_folder
from .descent import DescentConfig, descend
from .executors import check_counts, get_executor
from .layout import ExperimentDir, claim_folder
from .figures import BANDS, check_formats, descent_figures
from .report import ACCURACY, build_report
from .store import RunStore, load_records
from .methods import ITERATED
from .sweep import (SweepConfig, as_the_store_spells, check_descent_use, check_reachable, check_runnable,
                    LATENCY_BATCH, LATENCY_DEVICE, method_base, objective_asked, preset, read_plan, recipe,
                    refuse_moved, run_sweep, store_location)
from .train import TrainConfig, resolve_device
from .zoo import space as make_space
from .validate import check_data, matches, one_of, suggest

log = logging.getLogger(__name__)

SECTIONS = ("experiment", "data", "descent", "sweep", "executor", "report")
EXECUTOR_KEYS = ("name", "workers", "devices", "threads", "address", "gpus_per_run", "cpus_per_run", "retries")


REPORT_KEYS = ("accuracy", "format", "band")


def _strings(value, what: str) -> list[str]:
    """A list of words, or one string of them separated by commas ("png,svg")."""
    if isinstance(value, str):
        value = value.replace(",", " ").split()
    if not matches(value, list[str]):
        raise NeuralscaleError(f"[report] {what} must be a list of names, got {value!r}")
    return value


EXPERIMENT_KEYS = {"model": str, "dataset": str, "out": str, "device": str, "convcut": bool}

# Keys are the command-line flags' names (--prune-k: prune_k or prune-k) or the configuration's own field names, as
# each configuration declares them (settings.option); flags that invert a field (--masking, --no-augment) are read
# as such.
SECTION_SETTINGS = {"descent": DescentConfig, "data": DataConfig, "sweep": SweepConfig, "train": TrainConfig}
TRAIN_OR_DATA = {**{name: "[sweep.train]" for name in TrainConfig.flags()},  # where a misplaced key belongs
                 **{name: "[data]" for name in DataConfig.flags() if name not in ("dataset", "train", "test")}}


def flag_keys(section: str, table: dict, where: str) -> dict:
    """A section's keys as flag names (prune_k, prune-k) or field names (k), as the configuration's fields;
    an unknown key names the nearest of either."""
    cls = SECTION_SETTINGS[section]
    if section == "sweep":
        for key in table:
            name = key.replace("-", "_")
            if name in TRAIN_OR_DATA and name not in cls.flags():
                raise NeuralscaleError(f"{key} belongs in {TRAIN_OR_DATA[name]}, not [sweep]")
            if name in ("model", "dataset", "convcut", "data"):  # the sweep's own fields, which the file's other
                # tables give: here they overrode them without a word (found after the descent, if at all)
                raise NeuralscaleError(f"{key} belongs in {'[data]' if name == 'data' else '[experiment]'}, not "
                                       "[sweep]")
    if section == "descent":  # a descent's data are the file's [data] (and its subsets, the sweep's runs' too)
        for key in table:
            name = key.replace("-", "_")
            if name in DataConfig.flags() and name not in cls.flags() and name != "dataset":
                raise NeuralscaleError(f"{key} belongs in [data], not [descent]")
    if section == "data" and "dataset" in table:
        raise NeuralscaleError("unknown data setting(s): dataset (the dataset is [experiment]'s)")
    return cls.keys_from_flags(table, where)


def _sweep_keys_in_train(table: dict) -> None:
    """[sweep.train] holds the recipe; the seed of each run is the sweep's (its `seeds`), and so are the sweep's
    own settings: given there, they would be read as the recipe's, or overridden without a word."""
    for key in table:
        name = key.replace("-", "_")
        if name == "seed":
            raise NeuralscaleError("seed in [sweep.train] would be replaced by each run's: give seeds = [...] in "
                                   "[sweep]")
        if name in SweepConfig.flags() and name not in TrainConfig.flags():
            raise NeuralscaleError(f"{key} belongs in [sweep], not [sweep.train]")
        if name in DataConfig.flags() and name not in TrainConfig.flags() and name != "dataset":
            raise NeuralscaleError(f"{key} belongs in [data], not [sweep.train]")


def load(path: str | Path) -> dict:
    path = Path(path)
    if path.is_dir():
        raise NeuralscaleError(f"{path} is a folder; give the experiment's TOML file")
    if not path.exists():
        raise NeuralscaleError(f"experiment file {path} does not exist")
    if not path.is_file():
        raise NeuralscaleError(f"experiment file {path} is not a regular file")
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8-sig"))  # -sig: a byte-order mark some editors write
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise NeuralscaleError(f"{path} is not valid TOML ({e})") from None
    except RecursionError:
        raise NeuralscaleError(f"{path} nests its arrays or tables too deeply to be an experiment file") from None
    unknown = sorted(set(doc) - set(SECTIONS))
    if unknown:
        raise NeuralscaleError(f"{path}: unknown section(s) {', '.join(unknown)}; use {', '.join(SECTIONS)}"
                               + suggest(unknown[0], SECTIONS))
    for section in SECTIONS:
        if section in doc and not isinstance(doc[section], dict):
            raise NeuralscaleError(f"{path}: {section} must be a [{section}] section")
    try:
        for section in ("descent", "data", "sweep"):
            if section in doc:
                doc[section] = flag_keys(section, doc[section], f"[{section}]")
        if isinstance(doc.get("sweep", {}).get("train"), dict):
            _sweep_keys_in_train(doc["sweep"]["train"])
            doc["sweep"]["train"] = flag_keys("train", doc["sweep"]["train"], "[sweep.train]")
    except NeuralscaleError as e:
        raise NeuralscaleError(f"{path}: {e}") from None
    exp = doc.get("experiment", {})
    for key in ("model", "dataset"):
        if key not in exp:
            raise NeuralscaleError(f"{path}: [experiment] needs {key}")
    for key, value in exp.items():
        if key not in EXPERIMENT_KEYS:
            raise NeuralscaleError(f"{path}: unknown [experiment] setting {key}{suggest(key, EXPERIMENT_KEYS)}")
        if not matches(value, EXPERIMENT_KEYS[key]):
            raise NeuralscaleError(f"{path}: [experiment] {key} must be "
                                   f"{'true or false' if EXPERIMENT_KEYS[key] is bool else 'a string'}, got {value!r}")
    doc["_base"] = path.parent
    return doc


@dataclass
class Experiment:
    """An experiment file, validated whole: nothing runs until every section is known to be right."""

    space: object  # the WidthSpace
    out: Path
    data: dict
    descent: object | None  # a resolved DescentConfig, or None
    sweep: object  # SweepConfig
    executor: object
    report: dict  # build_report's accuracy, formats and bands


def _underscored(table: dict, where: str) -> dict:
    """A section's keys with `-` read as `_` (`cpus-per-run` is `cpus_per_run`), as the other sections take them."""
    out: dict = {}
    for key, value in table.items():
        name = str(key).replace("-", "_")
        if name in out:
            raise NeuralscaleError(f"{where} sets {name} twice")
        out[name] = value
    return out


def _executor(table: dict):
    """The [executor] section: where the sweep's runs execute."""
    ex = dict(table)
    bad = sorted(set(ex) - set(EXECUTOR_KEYS))
    if bad:
        raise NeuralscaleError(f"unknown [executor] setting(s) {', '.join(bad)}; use {', '.join(EXECUTOR_KEYS)}"
                               + suggest(bad[0], EXECUTOR_KEYS))
    kinds = {"name": str, "workers": int, "threads": int, "retries": int, "address": str,
             "gpus_per_run": float, "cpus_per_run": float, "devices": list[str]}
    for k, v in ex.items():
        if not matches(v, kinds[k]):
            want = {int: "an integer", str: "a string", float: "a number"}.get(kinds[k], "a list of device names")
            raise NeuralscaleError(f"[executor] {k} must be {want}, got {v!r}")
    return get_executor(ex.pop("name", None), **ex)


def _report(table: dict) -> dict:
    """The [report] section: build_report's accuracy, formats and bands."""
    rep = table
    bad = sorted(set(rep) - set(REPORT_KEYS))
    if bad:
        raise NeuralscaleError(f"unknown [report] setting(s) {', '.join(bad)}{suggest(bad[0], REPORT_KEYS)}")
    accuracy = rep.get("accuracy", "best-val")
    one_of("[report] accuracy", accuracy, tuple(ACCURACY))
    report = {"accuracy": accuracy, "formats": check_formats(_strings(rep.get("format", ["png"]), "format")),
              "bands": rep.get("band", "ci")}
    one_of("[report] band", report["bands"], BANDS)
    return report


def prepare(path: str | Path, out: str | Path | None = None, executor: dict | None = None,
            force: bool = False) -> Experiment:
    """Read and check every section of an experiment file, before any work starts (`force`: write into an
    `out` folder that holds other files).

    `executor`: settings that replace the file's [executor] ones for this invocation (e.g. {"workers": 8}
    on a bigger machine); like `out`, they do not change what the runs compute.
    """
    doc = load(path)
    exp = doc["experiment"]
    given = {k: v for k, v in (executor or {}).items() if k in ("workers", "threads") and v is not None}
    named = (doc.get("executor") or {}).get("name")
    if given:  # given on the command line, not in the file: checked, and said, as the flags (the file's: below; a
        try:  # Ray cluster's nodes may be larger than this machine: not held to its cores)
            check_counts(given) if named == "ray" else get_executor("local", **given)
        except NeuralscaleError as e:
            raise NeuralscaleError(f"--{e}") from None
    if isinstance(exp.get("out"), str) and not exp["out"].strip():  # (it was the file's own folder)
        raise NeuralscaleError(f"{path}: [experiment] out is empty; name the experiment's folder, or leave out out "
                               "(a folder named as the file)")
    out_dir = Path(out) if out else Path(exp.get("out", Path(path).stem))
    if not out_dir.is_absolute() and not out:  # the file's own out (or its name): beside the file
        out_dir = Path(os.path.normpath(doc["_base"] / out_dir))
    with _in_file(path):  # a setting's error names the file it is in
        sections = _sections(doc, path, out_dir, executor)
    _claim_out(out_dir, force)
    return Experiment(*sections)


@contextmanager
def _in_file(path: str | Path) -> Iterator[None]:
    try:
        yield
    except NeuralscaleError as e:
        if str(e).startswith(f"{path}:"):
            raise
        raise type(e)(f"{path}: {e}") from None


def _sections(doc: dict, path: str | Path, out_dir: Path, executor: dict | None) -> tuple:
    """Every section checked: (space, out_dir, data, descent, sweep, executor, report), as Experiment holds them."""
    exp = doc["experiment"]
    device = exp.get("device", "auto")
    convcut = exp.get("convcut", False)
    data = dict(doc.get("data", {}))
    check_data(data)
    if isinstance(data.get("data_dir"), str) and not Path(data["data_dir"]).expanduser().is_absolute():
        data["data_dir"] = os.path.normpath(doc["_base"] / data["data_dir"])  # relative to the file, as out is
    _image_folder_beside(exp["dataset"], doc["_base"])
    exp = {**exp, "model": _model_beside(exp["model"], doc["_base"])}
    space = make_space(exp["model"], exp["dataset"], convcut=convcut, data_dir=data.get("data_dir"))

    cfg = None
    if "descent" in doc:
        # (resolved where it descends: a descent there begun with an earlier release's default k keeps it)
        cfg = DescentConfig.from_dict({"device": device, **doc["descent"]}).resolve(space,
                                                                                    ExperimentDir(out_dir).descent)

    sw = dict(doc.get("sweep", {}))
    if not sw:
        raise NeuralscaleError(f"{path}: [sweep] is missing; an experiment needs at least a sweep")
    train = sw.pop("train", {})
    if not isinstance(train, dict):
        raise NeuralscaleError(f"{path}: [sweep.train] must be a section of training settings")
    train = {"device": device, **train}
    if cfg is not None and ("from" in sw or "descent" in sw):
        raise NeuralscaleError(f"{path}: [sweep] from names a descent to scale, and the file has a [descent] of its "
                               "own (which descends into its out folder's descent/): keep one of the two")
    descent_dir = ExperimentDir(out_dir).descent if cfg is not None else sw.pop("descent", None)
    if isinstance(descent_dir, str) and not Path(descent_dir).is_absolute():  # relative to the file, as out is
        descent_dir = Path(os.path.normpath(doc["_base"] / descent_dir))
    common = dict(model=exp["model"], dataset=exp["dataset"], convcut=convcut, data=data,
                  descent=str(descent_dir) if descent_dir is not None else None)
    name = sw.pop("preset", None)
    if name is not None:
        sweep_cfg = preset(name, exp["model"], exp["dataset"], train=train,
                           **{k: v for k, v in {**common, **sw}.items() if k not in ("model", "dataset")})
    else:
        sweep_cfg = SweepConfig.from_dict({**common, **sw, "train": train})

    overrides = {k: v for k, v in (executor or {}).items() if v is not None}
    table = {**_underscored(doc.get("executor", {}), "[executor]"), **overrides}
    if table.get("name", "sequential") == "sequential" and ("workers" in overrides or "devices" in overrides):
        table["name"] = "local"  # asked for workers or devices: local workers, not one run at a time
    if table.get("name") == "ray" and "devices" in overrides:
        raise NeuralscaleError("--devices places local workers; a Ray cluster places runs by [executor] gpus_per_run")
    executor, report = _executor(table), _report(doc.get("report", {}))
    check_runnable(sweep_cfg, executor)  # now, not hours later after the descent
    _late_mistakes(sweep_cfg, cfg, report, out_dir, space)
    return space, out_dir, data, cfg, sweep_cfg, executor, report


def _image_folder_beside(dataset, base: Path) -> None:
    """An image folder named relative to the folder the command runs in (the name every run records, as the
    command line's) that is not there but is beside the file: said, with both ways on."""
    folder = image_folder(dataset)
    if folder is not None and not folder.is_absolute() and not folder.exists() and (base / folder).is_dir():
        raise NeuralscaleError(f"image folder {folder} does not exist here ({Path.cwd()}); it is beside the file, "
                               f"and a dataset's path is read from where the command runs (its runs record it as "
                               f"written): run from {base}, or give dataset = \"imagefolder:{base / folder}\"")


def _model_beside(model, base: Path):
    """A model file named relative to the experiment file, as its other paths are (`file:nets.py:Net` beside it);
    its runs record it by its absolute path (modelfile.canonical)."""
    if not isinstance(model, str) or not model.startswith(f"{modelfile.SCHEME}:"):
        return model
    path, name = modelfile.locate(model.split(":", 1)[1])
    if not path.is_absolute() and not (base / path).exists() and path.exists():
        raise NeuralscaleError(f"model file {path} is not beside the experiment file ({base}): an experiment file's "
                               f"paths are read from its folder; give model = \"{modelfile.SCHEME}:"
                               f"{path.resolve()}:{name}\", or move the file beside it")
    return f"{modelfile.SCHEME}:{base / path}:{name}"  # (made absolute and resolved by zoo.model_name)


def _late_mistakes(sweep_cfg: SweepConfig, cfg: DescentConfig | None, report: dict, out_dir: Path, space) -> None:
    """What the sweep or the report would refuse only after the descent (hours later), refused now."""
    check_reachable(sweep_cfg, space)
    if report["accuracy"] == "best-val" and TrainConfig.from_dict(sweep_cfg.train).val_fraction == 0:
        raise NeuralscaleError('[report] accuracy is best-val (the default), and [sweep.train] val_fraction = 0 '
                               'holds no validation split to select on: give [report] accuracy = "final", or a '
                               "val_fraction above 0")
    if cfg is None:  # its descent is there already (or none is needed): its use checked as the sweep's plan will
        check_descent_use(sweep_cfg, space)  # (no width solved, no latency measured: the store's are kept)
    else:
        _iterations_asked(sweep_cfg, cfg)
        _objective_budgets(sweep_cfg, cfg)
    store = RunStore(out_dir)
    old = read_plan(store) if store.plan_path.is_file() else {}
    if old:
        spelled = as_the_store_spells(sweep_cfg, old.get("recipe"))
        location = store_location(spelled, old.get("recipe"), store)
        refuse_moved(spelled, location, store)
        store.refuse_other_recipe(old, recipe(spelled, location is not None))


def _iterations_asked(sweep_cfg: SweepConfig, cfg: DescentConfig) -> None:
    """The descent iterations the sweep's methods ask for (K of neuralscale@K, shape@K; `iterations` for those
    without one), within the iterations the file's descent runs."""
    asked = []
    for m in sweep_cfg.methods:
        if method_base(m) in ITERATED:
            asked += [m.split("@", 1)[1]] if "@" in m else list(sweep_cfg.iterations)
    numbers = [int(str(w).strip()) for w in asked if str(w).strip().isdigit()]
    if numbers and max(numbers) > cfg.iterations:
        raise NeuralscaleError(f"[sweep] asks for descent iteration {max(numbers)}, and [descent] runs "
                               f"{cfg.iterations} iteration(s): give [descent] iterations = {max(numbers)}, or ask "
                               f"for iterations up to {cfg.iterations}")


def _objective_budgets(sweep_cfg: SweepConfig, cfg: DescentConfig) -> None:
    """What the sweep refuses of the file's descent's objective after the descent, refused before it: a method
    naming another objective (neuralscale-macs), neuralscale laws solved for budgets of another metric without
    `convert` (scaling.check_objective; a fallback law would pass), and latency budgets of a latency descent not
    measured where sweeps measure them."""
    for m in sweep_cfg.methods:
        if objective_asked(m) not in (None, cfg.objective):
            raise NeuralscaleError(f"[sweep] method {m} needs a descent of objective {objective_asked(m)}, and "
                                   f"[descent] objective is {cfg.objective}: give [descent] objective = "
                                   f"\"{objective_asked(m)}\", or another method")
    if not any(method_base(m) == "neuralscale" for m in sweep_cfg.methods):
        return
    given = {"params": bool(sweep_cfg.ratios or sweep_cfg.params), "macs": bool(sweep_cfg.macs),
             "latency": bool(sweep_cfg.latency)}
    other = [m for m, g in given.items() if g and m != cfg.objective]
    keys = {"params": "ratios or params", "macs": "macs", "latency": "latency"}
    if other and not sweep_cfg.convert:
        raise NeuralscaleError(f"[descent] objective = \"{cfg.objective}\" fits laws against {cfg.objective}, and "
                               f"[sweep] has {keys[other[0]]} budgets (its own or its preset's): give [sweep] "
                               f"{keys[cfg.objective]} budgets, or convert = true to solve its laws for them anyway")
    where = (str(resolve_device(cfg.latency_device)), cfg.latency_batch) if cfg.objective == "latency" else None
    if where is not None and given["latency"] and where != (LATENCY_DEVICE, LATENCY_BATCH):
        raise NeuralscaleError(f"[sweep] latency budgets are measured on {LATENCY_DEVICE} at batch {LATENCY_BATCH}, "
                               f"and [descent] measures latency on {where[0]} at batch {where[1]}: give [descent] "
                               f"latency_device = \"{LATENCY_DEVICE}\" and latency_batch = {LATENCY_BATCH}, or "
                               "[sweep] budgets of another metric with convert = true")


def _claim_out(out_dir: Path, force: bool) -> None:
    """The experiment's folder, checked now rather than after the descent: writable, and new, empty or a run
    store (its descent/ aside) unless `force`."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise NeuralscaleError(f"cannot use {out_dir}: it is a file") from None
    except OSError as e:
        raise NeuralscaleError(f"cannot use {out_dir}: {e.strerror or e}") from None
    except ValueError:  # (pathlib's "embedded null byte")
        raise NeuralscaleError(f"cannot use {str(out_dir)!r}: it holds a NUL character, which no path can") from None
    layout = ExperimentDir(out_dir)
    claim_folder(out_dir, layout.plan, "run store", force, also=lambda p: p == layout.descent and p.is_dir())


def run(path: str | Path, out: str | Path | None = None, progress: bool = True, retry_failed: bool = False,
        executor: dict | None = None, force: bool = False) -> dict:
    """Run (or continue) the experiment; returns build_report's result (with "document" None and no report where
    none of its runs finished). `executor` and `force` as in `prepare`."""
    for_api(progress)
    e = prepare(path, out, executor, force)
    if e.descent is not None:
        splits = load_splits(DataConfig.from_settings(e.sweep.dataset, e.data), e.descent.train_config())
        descent_dir = Path(e.sweep.descent)
        log.info("experiment: descent into %s", descent_dir)
        descend(e.space, splits, descent_dir, e.descent, progress=progress, force=force)
        descent_figures(descent_dir, e.space, formats=e.report["formats"])
    log.info("experiment: sweep into %s", e.out)
    run_sweep(e.sweep, e.out, progress=progress, retry_failed=retry_failed, executor=e.executor, force=force)
    records = load_records(e.out)
    if not any(r["status"] == "finished" for r in records):  # nothing to report: its failed runs are the news
        log.warning("warning: no report: none of the %d run(s) in %s finished", len(records), e.out)
        return {"records": records, "document": None}
    return build_report(e.out, **e.report, force=force, model=e.sweep.model)
