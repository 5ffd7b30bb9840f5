"""The Python API behind the CLI: each function does one whole job."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Sequence

from .budget import Budget
from .data import DataConfig, dataset_info, image_folder
from .data.info import DatasetInfo
from .data.base import Splits, same_data
from .descent import DescentConfig, DescentDir, DescentResult, descend as run_descent, is_descent_dir
from .accounting import measure_latency
from .logs import for_api
from .validate import check_flags, check_paths, expand, plain, whole
from .errors import NeuralscaleError
from .figures import descent_figures
from .guard import check_new_file
from .importance import Importance
from .layout import RunDir, claim_folder
from .methods import SCALED, method_label, method_law, scale, source_objective
from .records import exclusive
from .baselines import check_cut, trained_record
from .captured import refused
from .runs import execute, load_run_splits
from .spec import RunSpec
from .store import read_record
from .scaling import ScalingLaw, fit, read_trajectory
from .space import WidthSpace
from .train import TrainConfig, paper_config, read_run_weights, refuse_untrainable, resolve_device
from .zoo import CONVCUT, located, moved, record_images, record_space, space as make_space

log = logging.getLogger(__name__)


def resolve_widths(space: WidthSpace, widths: Sequence[int] | None = None, ratio: float | None = None) -> list[int]:
    if widths is not None and ratio is not None:
        raise NeuralscaleError("give either widths or a ratio, not both")
    if widths is not None:
        return space.validate(widths)
    return space.uniform(1.0 if ratio is None else ratio)


def train_config(dataset: str, preset: str | None = None, **fields) -> TrainConfig:
    """A training recipe: `fields` over the paper's protocol for the dataset (`preset="paper"`; its learning-rate
    steps stay at the same fractions of the epochs, as a sweep's preset does), or over the defaults."""
    if preset is None:
        return TrainConfig(**fields)
    if preset != "paper":
        raise NeuralscaleError(f"unknown training preset {preset!r}; the one preset is paper")
    return paper_config(dataset, **fields)


def describe(space: WidthSpace, widths: Sequence[int], latency_batch: int | None = None,
             device: str = "cpu") -> dict:
    """A configuration's layers, widths, parameters and MACs; measured latency at batch 1 and `latency_batch`."""
    if not isinstance(space, WidthSpace):
        raise NeuralscaleError(f"describe: space must be a WidthSpace (ns.space(model, dataset)), not "
                               f"{type(space).__name__}")
    info = space.describe(widths)
    latency_batch = plain(latency_batch)  # (a notebook's NumPy number: the number it is)
    if latency_batch is not None:
        whole("latency_batch (--batch)", latency_batch)
        info["latency"] = measure_latency(space.build(widths), space.info.input_shape, resolve_device(device),
                                          batch_sizes=(1, latency_batch))
    return info


def fit_trajectory(trajectory: str | Path, space: WidthSpace, tau: str = "auto", out: str | Path | None = None,
                   force: bool = False, trajectory_start: str | None = None) -> ScalingLaw:
    """Fit the power law to a trajectory file; with `out`, save it there (a new file unless `force`).

    `tau`: exact (the built model's parameters), original (the original code's formula) or auto (original
    for the original's header-less files, exact otherwise). `trajectory_start`: per-layer (each layer fitted
    from its own first loss, as a descent with that start fits, from the widths its iteration started from) or
    all-lost (the rows as they are); None: as the descent whose iteration file it is (its config.json), else
    all-lost. A descent fitted against MACs or latency is fitted against parameters here, and said so.
    """
    check_flags("fit_trajectory", {"force": force})
    if trajectory_start not in (None, "all-lost", "per-layer"):
        raise NeuralscaleError(f"trajectory_start is all-lost or per-layer, got {trajectory_start!r}")
    if tau not in ("auto", "exact", "original"):
        raise NeuralscaleError(f"tau is auto, exact or original, got {tau!r}"[:200])
    if not isinstance(space, WidthSpace):
        raise NeuralscaleError(f"fit_trajectory: space must be a WidthSpace (ns.space(model, dataset)), not "
                               f"{type(space).__name__}")
    check_paths("fit_trajectory", {"trajectory": trajectory}, optional=False)
    check_paths("fit_trajectory", {"out": out})
    trajectory, out = expand(trajectory), expand(out)
    if out:
        if Path(out).resolve() == Path(trajectory).resolve():  # not even with force: the rows would be lost
            raise NeuralscaleError(f"--out {out} is the trajectory being fitted; give the law another file")
        check_new_file(out, force)
    traj = read_trajectory(trajectory, space)
    start = None
    own = DescentDir.of_trajectory(Path(trajectory))
    if own is not None:
        d = own[0]
        other = own[1].law.other_space(space)
        if other:  # (its rows counted for another network's or data's parameters: a law of neither)
            raise NeuralscaleError(f"{trajectory} is a trajectory of a descent whose laws were {other}; fit it with "
                                   "the space that descent pruned")
        recorded = d.config()["descent"]
        trajectory_start = trajectory_start or recorded.get("trajectory_start")
        if recorded.get("objective", "params") != "params":
            log.info("note: %s fitted its laws against %s; fit fits against parameters", d.path,
                     recorded["objective"])
    if trajectory_start == "per-layer":
        if own is None:
            raise NeuralscaleError(f"a per-layer trajectory start needs the widths pruning started from: fit "
                                   f"{Path(trajectory).name} where its descent wrote it (iteration_NN.csv beside its "
                                   "config.json and fits.json)")
        start = own[1].start_widths
    law = fit(space, traj.rows, count=traj.count if tau == "auto" else tau, start=start)
    if out:
        law.save(out, force=force)  # (checked again under its lock: another fit may have written it meanwhile)
    return law


def load_splits(dataset: str | DataConfig, config: TrainConfig, data_dir: str | None = None,
                subset: dict | None = None, tinyimagenet_split: str | None = None) -> Splits:
    """The splits a training configuration asks for (its validation fraction and split seed), of the images a
    DataConfig names (or a dataset name with its data settings in `subset`: train, test, tinyimagenet_split)."""
    if tinyimagenet_split is not None:
        subset = {**(subset or {}), "tinyimagenet_split": tinyimagenet_split}
    data = dataset if isinstance(dataset, DataConfig) else DataConfig.from_settings(dataset, subset, data_dir)
    return data.splits(config.val_fraction, config.split_seed)


def _configuration(space: WidthSpace, widths, ratio, method, params, macs, source, iteration, convert) -> dict:
    """What `train` trains: explicit widths, or a method's widths for one budget (method, label, Budget)."""
    iteration = plain(iteration)  # (a notebook's NumPy number: the number it is)
    whole("iteration", iteration)
    budgets = [b for b in (None if ratio is None else Budget.of_ratio(ratio),
                           None if params is None else Budget.parse(params, "params"),
                           None if macs is None else Budget.parse(macs, "macs")) if b is not None]
    if method in (None, "uniform") and (source is not None or iteration is not None):
        raise NeuralscaleError("--from and --iteration apply to the methods of a descent (morphnet, neuralscale, "
                               "pruned, shape)")
    if len(budgets) > 1 or (budgets and widths is not None):
        raise NeuralscaleError("give one of widths, ratio, params or macs")
    if method is None and widths is None and ratio is not None:  # uniform scaling by the ratio, as a sweep's
        return {"widths": space.uniform(ratio), "method": "uniform", "label": "uniform",
                "budget": Budget.of_ratio(ratio).resolve(space)}
    if method is None and not budgets:
        w = resolve_widths(space, widths, ratio)
        return {"widths": w, "method": "explicit", "label": "explicit", "budget": Budget("params", space.params(w))}
    if widths is not None:
        raise NeuralscaleError("--widths are explicit: give a method a budget instead (--ratio, --params, --macs)")
    method = method or "uniform"
    if method not in SCALED:
        raise NeuralscaleError(f"train takes a scaling method ({', '.join(SCALED)}); the pruning baselines "
                               "prune a trained network: run them with `neuralscale sweep`")
    objective = source_objective(source, method_law(space, method, source, iteration)) if method != "uniform" \
        else "params"
    # no budget: the base model's cost in the descent's objective (the full width's parameters for the paper's)
    budget = budgets[0] if budgets else Budget.of_ratio(1.0) if objective == "params" else Budget(objective, share=1.0)
    found = scale(space, method, budget, source=source, iteration=iteration, convert=convert)
    label = method_label(method, found["iteration"], objective)
    return {"widths": found["widths"], "method": method, "label": label,
            "budget": replace(budget, value=found["budget"]), "extrapolated": found["extrapolated"]}


def _check_arguments(call: str, model, dataset, config, config_type, subset, splits, paths: dict) -> None:
    """The Python API's arguments of the wrong type, as one NeuralscaleError (the CLI's line), not a TypeError deep
    inside: a configuration of its class (a dict: `TrainConfig.from_dict(d)`, say), a subset a dict of counts,
    paths strings or Paths."""
    if not isinstance(model, (str, WidthSpace)):
        raise NeuralscaleError(f"{call}: model must be a name (such as 'vgg11') or a WidthSpace (ns.space(...)), "
                               f"not {type(model).__name__}")
    if not isinstance(dataset, str):
        raise NeuralscaleError(f"{call}: dataset must be a name (such as 'cifar10' or 'imagefolder:PATH'), not "
                               f"{type(dataset).__name__}")
    if config is not None and not isinstance(config, config_type):
        hint = f" (from a dict: {config_type.__name__}.from_dict(...))" if isinstance(config, dict) else ""
        raise NeuralscaleError(f"{call}: config must be a {config_type.__name__}{hint}, not {type(config).__name__}")
    if splits is not None and not isinstance(splits, Splits):
        raise NeuralscaleError(f"{call}: splits must be a Splits (ImageData.split(), ns.load_splits), not "
                               f"{type(splits).__name__}")
    if subset is not None and not isinstance(subset, dict):
        raise NeuralscaleError(f"{call}: subset must be a dict such as {{'train': 1000, 'test': 200}}, not "
                               f"{type(subset).__name__}")
    check_paths(call, paths)


def train(model: str | WidthSpace, dataset: str, *, widths: Sequence[int] | None = None,
          ratio: float | None = None, method: str | None = None, params: float | str | None = None,
          macs: float | str | None = None, source: str | Path | None = None, iteration: int | None = None,
          config: TrainConfig | None = None, data_dir: str | None = None,
          out_dir: str | Path | None = None, subset: dict | None = None, splits: Splits | None = None,
          progress: bool = True, convcut: bool = False, latency_batches: Sequence[int] = (),
          init_from: str | Path | None = None, convert: bool = False, force: bool = False) -> dict:
    """Train one network from scratch (or, with `init_from`, from a trained run) and return its run record.

    The network: explicit `widths`, uniform scaling by `ratio`, or `method` (uniform, morphnet,
    neuralscale; those two from the descent directory or fit file `source`, at `iteration`) solved
    for one budget: `ratio`, `params` or `macs`, a number or a share of the base model ("25%"); a
    neuralscale law fitted against another metric than the budget's only with `convert` (methods.scale).
    `init_from`: a finished run of the same model, no narrower in any layer, whose channels with the largest
    L1 filter norms start the network (baselines.warm_start); the paper trains from scratch.

    With `out_dir`, the record (record.json), per-epoch metrics (metrics.csv)
    and a checkpoint are written there; calling again resumes an interrupted
    run and returns a finished one's record without training.  A folder that holds other files and no
    run record is refused unless `force`.
    """
    check_flags("train", {"progress": progress, "convcut": convcut, "convert": convert, "force": force})
    for_api(progress)
    _check_arguments("train", model, dataset, config, TrainConfig, subset, splits,
                     {"out_dir": out_dir, "source": source, "init_from": init_from, "data_dir": data_dir})
    out_dir, source, init_from = expand(out_dir), expand(source), expand(init_from)
    config = config or TrainConfig()
    done, device = _before_training(config, out_dir, force, latency_batches, init_from)
    data = DataConfig.from_settings(dataset, subset, data_dir)
    recorded = _recorded_images(dataset, out_dir if done else None)
    space = model if isinstance(model, WidthSpace) else \
        make_space(model, recorded or dataset, convcut=convcut, data_dir=data_dir)
    convcut = _shortcuts(space, convcut)
    given = splits is not None
    what = _configuration(space, widths, ratio, method, params, macs, source, iteration, convert)
    if splits is None and not done:  # a finished run is returned as it is, on a machine without its images too
        splits = load_splits(data, config)
    info = splits.info if splits is not None else recorded or dataset_info(data.dataset, data.data_dir)
    _check_fits(space, info)
    if not done:  # before the record: not a failed run that refuses the corrected command later
        refuse_untrainable(space.params(what["widths"]), device)
    spec = RunSpec(model=space.name, dataset=info.name, method=what["method"], label=what["label"],
                   config=config.to_dict(), widths=what["widths"], convcut=convcut,
                   data=data.settings(),
                   budget=what["budget"], latency_batches=tuple(latency_batches),
                   init=_init(space, init_from, what["widths"], out_dir, force), architecture=space.architecture,
                   portable=located(space.name))
    notes = {"extrapolated": True} if what.get("extrapolated") else {}  # (said in the record, and by reports)
    if given:  # the caller's own splits: the spec's data settings do not say which images they are
        notes.update(own_splits=True, splits_content=splits.content())
    if out_dir is None:
        return execute(spec, None, space=space, splits=splits, progress=progress, raise_errors=True, notes=notes)
    # (extrapolated also for a run finished before records said it; the splits' notes only as the record says them)
    return {**_train_into(spec, out_dir, force, space, splits, progress, notes),
            **{k: v for k, v in notes.items() if k == "extrapolated"}}


def _same_data_as_finished(out_dir, spec: RunSpec, old: dict, given: Splits | None) -> None:
    """A run returned again or resumed (its id the one asked for) is of the data asked for now: a run's id says only
    the subsets asked for, not which images the caller's own splits hold (another's splits, or none, returned the
    run of the first as the result). The splits given are the run's own (their content, or for a run recorded
    before runs recorded it, their sizes and dataset); a run trained on splits given is returned only for them;
    else an image folder's files as they are now."""
    if given is None and old.get("own_splits") is True:
        raise NeuralscaleError(f"{out_dir} holds a run trained on splits given in Python (splits=), which the data "
                               "settings asked for now do not say: give the same splits again to have it returned, "
                               "or train into another out_dir")
    if given is None:
        return _same_images_as_finished(out_dir, spec, old)
    then = old["data"] if isinstance(old.get("data"), dict) else {}
    now = given.identity()
    content = given.content() if "splits_content" in old else None  # (hashed once: its notes' where given there)
    if same_data(then, now) and old.get("splits_content") == content:
        return

    def said(d: dict) -> str:
        return ", ".join(f"{k} {d[k]}" for k in ("train", "val", "test", "digest") if k in d)
    raise NeuralscaleError(f"{out_dir} holds a run trained on other data ({said(then)}) than the splits given "
                           f"({said(now)}{': other images of the same sizes' if same_data(then, now) else ''}); "
                           "train into another out_dir")


def _same_images_as_finished(out_dir, spec: RunSpec, old: dict) -> None:
    """A finished run returned again (its id the one asked for) is of the images there now: one of an image folder
    changed since (an image replaced, a class added) was returned as the command's result, its accuracy of other
    images (a walkthrough). Compared by the digest both say; an image folder's alone (the datasets' own files do
    not change), read here only where it can be (on a machine without it the run is returned as it is)."""
    then = old["data"].get("digest") if isinstance(old.get("data"), dict) else None
    if not isinstance(then, str) or image_folder(spec.dataset) is None:
        return
    try:
        now = load_run_splits(spec).identity().get("digest")
    except (NeuralscaleError, OSError):
        return
    if now is not None and now != then:
        raise NeuralscaleError(f"{out_dir} holds a run finished on other images of {spec.dataset} (digest {then} "
                               f"then, {now} now: its files changed since); put them back as they were, or train "
                               "into another --out")


def _shortcuts(space: WidthSpace, convcut: bool) -> bool:
    """Whether the network has the paper's all-convolution shortcuts, as its space says (`--model
    resnet18-convcut` recorded convcut false); a `convcut` flag the space given does not have is refused."""
    if convcut and space.family.variant != CONVCUT:
        raise NeuralscaleError(f"convcut: the space given ({space.name}) has no all-convolution shortcuts; leave "
                               "convcut out, or give a space made with them (ns.space(NAME, dataset, convcut=True), "
                               "of a family with shortcuts)")
    return space.family.variant == CONVCUT


def _train_into(spec: RunSpec, out_dir, force: bool, space, splits: Splits | None, progress: bool,
                notes: dict) -> dict:
    """`spec` trained into `out_dir` on `splits` (the caller's own where `notes` says so), or the run finished
    there returned."""
    old = read_record(out_dir)
    if old is not None and old.get("status") == "finished" and old.get("id") == _as_recorded(spec, old, out_dir,
                                                                                            force).id:
        _same_data_as_finished(out_dir, spec, old, splits if notes.get("own_splits") else None)
        log.info("%s: already finished; nothing redone", out_dir)  # read without its lock: a finished record is
        return old  # never written again, and a run on a read-only medium (an archive) is read as a descent is
    with exclusive(out_dir, "run directory"):
        old = read_record(out_dir)
        spec = _as_recorded(spec, old, out_dir, force)
        if old is not None and old.get("id") == spec.id:  # one stopped and resumed (or finished meanwhile): on the
            _same_data_as_finished(out_dir, spec, old, splits if notes.get("own_splits") else None)  # same splits
        if force and old is not None and old.get("id") != spec.id:  # "nothing finished is overwritten without
            log.info("%s: replacing run %s (--force)", out_dir, old.get("id"))  # --force"
            RunDir(out_dir).clear()
        return execute(spec, out_dir, space=space, splits=splits, progress=progress, raise_errors=True, notes=notes)


def _as_recorded(spec: RunSpec, old: dict | None, out_dir, force: bool) -> RunSpec:
    """`spec` as the run directory's record knows it: a run recorded before in another spelling (`_spelled_before`)
    keeps its id; one of a file's network whose id hashes where the file lay is refused where the file moved."""
    if old is not None and old.get("id") != spec.id:
        for before in _spelled_before(spec):
            if old.get("id") == before.id:
                return before
    if spec.portable and old is not None and old.get("id") != spec.id:
        model = (old.get("spec") or {}).get("model") if isinstance(old.get("spec"), dict) else None
        if not force and not old["spec"].get("portable") and moved(model, spec.model):
            raise NeuralscaleError(f"{out_dir} holds a run made from {model}, and its id hashes where that file lay (a "
                                   "run recorded before runs knew a file by its name): go on with it where the file "
                                   "is at that path, or use another --out (--force replaces it)")
    return spec


def _spelled_before(spec: RunSpec) -> list[RunSpec]:
    """`spec` as `train` recorded it before: a file's network hashed where the file lay, and `--model
    resnet18-convcut` recorded convcut false (its flag now says what its name does, as a sweep's runs record it)."""
    before = [replace(spec, portable=False)] if spec.portable else []
    return before + ([replace(spec, convcut=False)] if spec.convcut and not spec.portable else [])


def _recorded_images(dataset, finished: Path | None) -> DatasetInfo | None:
    """For a finished run in `finished` of the image folder `dataset`, where the folder is not on this machine: the
    folder's image size and classes as the run's record describes them, so that `train` builds the model asked for
    without the folder and returns the run as it is, as it does a named dataset's (the spec's id then says whether
    it is the run asked for). None otherwise: the data are described from the folder (or its absence said)."""
    folder = image_folder(dataset)
    if finished is None or folder is None or folder.exists():
        return None
    record = read_record(finished) or {}
    if record.get("dataset") != f"imagefolder:{folder}":  # (as its info names it)
        return None
    return record_images({**record, "_path": str(RunDir(finished).record)})


def _before_training(config: TrainConfig, out_dir, force: bool, latency_batches, init_from) -> tuple:
    """`train`'s checks before anything is written, so that a refused run leaves no record that would refuse the
    corrected command: (whether `out_dir` holds a finished run, returned as it is on any machine; the device)."""
    if isinstance(latency_batches, (str, bytes)) or not isinstance(latency_batches, Sequence):
        raise NeuralscaleError(f"train: latency_batches must be a list of batch sizes (such as [1]), not "
                               f"{latency_batches!r}"[:200])
    for b in latency_batches:  # not after the training
        whole("latency_batches' batch size", b)
    done = (not force and out_dir is not None and Path(out_dir).is_dir()
            and (read_record(out_dir) or {}).get("status") == "finished")
    device = None if done else resolve_device(config.device)
    why = None if done else refused(config, device)
    if why is not None:
        raise NeuralscaleError(f"cuda_graphs: {why}; train on --device cuda, or leave --cuda-graphs out")
    if out_dir is not None and is_descent_dir(out_dir):
        raise NeuralscaleError(f"{out_dir} is a descent directory; give the run a directory of its own")
    if out_dir is not None:
        claim_folder(out_dir, RunDir(out_dir).record, "run directory", force)
        if init_from is not None and Path(init_from).resolve() == Path(out_dir).resolve():
            raise NeuralscaleError(f"--init-from and --out are both {out_dir}: the new run would replace the one it "
                                   "starts from; give another --out")
    return done, device


def _init(space: WidthSpace, init_from: str | Path | None, widths: list[int], out_dir, force: bool) -> dict | None:
    """A warm start's source, checked before anything is written: a finished run of this model, on data of the
    same shape and classes, from which `widths` can be cut. A run in `out_dir` that already started from it
    continues without reading the source again (its checkpoint holds the weights)."""
    if init_from is None:
        return None
    src = Path(init_from).resolve()
    old = read_record(out_dir) if out_dir is not None and Path(out_dir).is_dir() else None
    now = read_record(src) if src.is_dir() else None
    if old is not None and ((old.get("spec") or {}).get("init") or {}).get("run") == str(src):
        then = old["spec"]["init"].get("id")
        if now is None or now.get("id") == then:
            return old["spec"]["init"]
        if not force:  # the source trained again since (a walkthrough: the old run came back, even with --force)
            raise NeuralscaleError(f"{out_dir} holds a run started from {then}, and {init_from} now holds run "
                                   f"{now.get('id')}: give --force to start it over from that one, or put the "
                                   "source back")
    if now is None:
        raise NeuralscaleError(f"--init-from {init_from}: not a finished run directory")
    record = trained_record(space, src)
    theirs = record.get("input") or {}
    mine = {"num_classes": space.info.num_classes, "in_channels": space.info.in_channels,
            "resolution": space.info.resolution}
    if theirs and any(theirs.get(k) != v for k, v in mine.items()):
        raise NeuralscaleError(f"--init-from {init_from}: trained on {theirs.get('name')} "
                               f"({theirs.get('num_classes')} classes, {theirs.get('in_channels')}x"
                               f"{theirs.get('resolution')}x{theirs.get('resolution')}), which does not fit this data")
    check_cut(space, record["widths"], space.validate(widths))
    read_run_weights(RunDir(src).checkpoint, record["id"], record)  # its own, its last: before any record is
    return {"run": str(src), "id": record["id"]}  # written (read again when training starts)


def descend(model: str | WidthSpace, dataset: str, out_dir: str | Path, config=None, *, data_dir: str | None = None,
            convcut: bool = False, subset: dict | None = None, splits: Splits | None = None, progress: bool = True,
            plots: bool = False, importance: Importance | None = None, measure=None,
            force: bool = False) -> DescentResult:
    """Run or continue an architecture descent; returns the laws of its iterations (those `config.iterations` asks
    for, where more have finished), as a DescentResult (a list of ScalingLaw whose `build(params="25%")` gives a
    network for a budget).

    `importance` scores channels for pruning (default: Taylor-FO, the method's; see importance.py).
    What the laws are fitted against: `config.objective` (params, macs or latency; objective.py); `measure`
    replaces a latency objective's timing (tests).  `force`: descend into a folder that holds other files.
    """
    check_flags("descend", {"progress": progress, "convcut": convcut, "plots": plots, "force": force})
    for_api(progress)
    _check_arguments("descend", model, dataset, config, DescentConfig, subset, splits, {"data_dir": data_dir})
    if importance is not None and not isinstance(importance, Importance):  # not after the warm-up's epochs
        raise NeuralscaleError(f"importance must be an Importance (such as ns.TaylorFO()), not "
                               f"{importance!r}"[:200])
    if measure is not None and not callable(measure):  # (not after the descent's config is written)
        raise NeuralscaleError(f"measure must be a function timing a layer (a latency table's; tests), not "
                               f"{measure!r}"[:200])
    check_paths("descend", {"out_dir": out_dir}, optional=False)
    out_dir = expand(out_dir)
    data = DataConfig.from_settings(dataset, subset, data_dir)
    space = model if isinstance(model, WidthSpace) else make_space(model, dataset, convcut=convcut, data_dir=data_dir)
    _shortcuts(space, convcut)  # (a flag the space given lacks was ignored)
    config = (config or DescentConfig()).resolve(space, out_dir)
    if splits is None:  # the whole training set unless config.val_fraction says otherwise
        splits = load_splits(data, config.train_config())
    _check_fits(space, splits.info)
    laws = run_descent(space, splits, out_dir, config, progress=progress, importance=importance, measure=measure,
                       force=force)
    if plots:
        descent_figures(out_dir, space)
    start = config.start_space(space)
    return DescentResult(laws, space, out_dir, base_params=start.params(start.base_widths),
                         objective=config.objective_for(start, DescentDir(out_dir), measure, own_threads=True))


def _check_fits(space: WidthSpace, data: DatasetInfo) -> None:
    """A space of your own (`space(model, example_input)`) must take the data's images and classes."""
    mine = space.info
    if (mine.input_shape, mine.num_classes) != (data.input_shape, data.num_classes):
        raise NeuralscaleError(f"{space.name} takes {'x'.join(map(str, mine.input_shape))} inputs and "
                               f"{mine.num_classes} classes, but {data.name} has {'x'.join(map(str, data.input_shape))}"
                               f" images and {data.num_classes} classes")


def describe_run(record: dict, model: str | None = None) -> dict:
    """A run record in the keys every command's --json shares (see WidthSpace.describe), with its outcome. `model`:
    the network as the command named it, which made the run or found it finished: made from there (a file's
    network recorded where the file lay when it ran: a study moved with its file since)."""
    space = record_space(record, named=model)
    return {**space.describe(record["widths"]),
            **{k: record.get(k) for k in ("id", "status", "method", "label", "budget", "seed", "summary")},
            "extrapolated": record.get("extrapolated") is True,
            **({"init": record["init"]} if isinstance(record.get("init"), dict) else {})}  # (a warm start's source)
