"""Sweeps: scaling methods x budgets x seeds, every network trained with one recipe, into one run store.

    OUT/sweep.json        the store's recipe, the sweep's configuration and its plan (run ids in order)
    OUT/runs/<id>/        one directory per run (see store.py): record.json, metrics.csv, checkpoint.pt

Running a sweep again skips finished runs, resumes interrupted ones from their
checkpoints and leaves failed ones failed (unless `retry_failed`).  The
methods, and which line of the paper each is: methods.py.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import torch

from .budget import METRICS, Budget, amount
from .captured import refused
from .descent import DescentDir, is_descent_dir
from .errors import EnvironmentFailure, NeuralscaleError, first_line, warn
from .estimate import Rates, duration_text, runs_seconds
from .executors import get_executor
from .layout import StoreDir, claim_folder
from .logs import for_api
from .data import DataConfig, dataset_name, same_data
from .data.info import DEFAULT_PROTOCOL, protocol
from .methods import BASE_METHODS, BASELINES, ITERATED, SCALED, SPARSE_LABEL, method_label, scale
from .progress import progress_bar
from .runs import describe
from .spec import RunSpec
from .scaling import cost_function, layer_multiples, narrowest
from .settings import FLOAT32_MAX, Settings, option
from .store import RunStore, data_counts, read_record, said_counts
from .train import TrainConfig, checkpoint_seconds, check_splits, paper_config, resolve_device
from .validate import SEED_MAX, at_least, at_most, check_data, check_types, matches, positive, ratio, suggest
from .zoo import located, model_identity, model_relative, model_spelling, moved, space as make_space

log = logging.getLogger(__name__)

PRESETS = ("paper", "quick")


DEFAULT_METHODS = ("uniform", "morphnet", "neuralscale")  # what a sweep compares unless told


@dataclass
class SweepConfig(Settings):
    """A sweep: what to compare, at which budgets, over which seeds, with which recipe."""

    WHAT = "sweep setting"
    EXTRA_KEYS = ("preset",)  # an experiment file's [sweep] may name a preset

    model: str
    dataset: str
    methods: list[str] = field(default_factory=lambda: list(DEFAULT_METHODS))
    ratios: list[float] = field(default_factory=list)  # budgets as uniform ratios ...
    params: list[float | str] = field(default_factory=list)  # ... as parameter counts ("25%": of the base) ...
    macs: list[float | str] = field(default_factory=list)  # ... as MACs per image ...
    # ... or as inference latency (ms, or "50%" of the base model's), measured on the CPU at batch 1 (a latency
    # law: where its descent measured); solved once and kept in the store's sweep.json (`frozen`), so that a
    # rerun plans the same runs whatever the machine measures then
    latency: list[float | str] = field(default_factory=list)
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    train: dict = field(default_factory=dict)  # TrainConfig fields (the one recipe)
    descent: str | None = option(None, flag="from")  # descent directory (morphnet, neuralscale): --from
    iterations: list = field(default_factory=lambda: ["last"])  # neuralscale: which descent iterations
    # l1-prune, slimming: the original's fine-tuning (data.info.PROTOCOLS: 40, 20 on TinyImageNet; `preset` uses the
    # dataset's)
    finetune_epochs: int = DEFAULT_PROTOCOL.finetune_epochs
    pretrain_ratio: float = 1.0  # l1-prune, slimming: the trained network they prune, base widths times this
    finetune_lr: float = 0.001
    slimming_sparsity: float = 1e-4  # slimming: its trained network is trained with this L1 penalty on the batch
    # norms' scales (network slimming's sparsity training, the original's s); 0: trained without it
    convcut: bool = False
    min_width: int = 1
    multiple: int = 1
    data: dict = field(default_factory=dict)  # train / test subset sizes, data_dir, tinyimagenet_split
    latency_batches: list[int] = field(default_factory=lambda: [1])
    # solve a neuralscale law for budgets of another metric than it was fitted against (the paper's laws at equal
    # MACs); without it such a sweep is refused (methods.scale)
    convert: bool = False

    def __post_init__(self):
        for name in ("params", "macs", "latency"):  # a lone "25%" would be read as its characters below
            if not isinstance(getattr(self, name), (list, tuple)):
                raise NeuralscaleError(f"sweep setting {name} must be a list of budgets (such as [\"25%\", "
                                       f"\"2.8M\"]), got {getattr(self, name)!r}")
        # a Budget given here (the CLI's) is kept as a person spells it, as experiment files do
        self.params = [Budget.parse(b, "params").spelling if isinstance(b, Budget) else b for b in self.params]
        self.macs = [Budget.parse(b, "macs").spelling if isinstance(b, Budget) else b for b in self.macs]
        self.latency = [Budget.parse(b, "latency").spelling if isinstance(b, Budget) else b for b in self.latency]
        check_types(self, "sweep setting")
        # one spelling of one network and dataset, as the runs' ids hash it (a file's network by its absolute path)
        self.model, self.convcut = model_spelling(self.model, self.convcut)
        self.dataset = dataset_name(self.dataset)
        if not self.methods:
            raise NeuralscaleError("the sweep has no methods")
        for m in self.methods:
            if method_base(m) not in BASE_METHODS:
                raise NeuralscaleError(f"unknown method {m!r}; choose from: {', '.join(BASE_METHODS)} "
                                       "(neuralscale@K, shape@K for one descent iteration; neuralscale-macs, "
                                       f"neuralscale-latency for a descent of that objective){suggest(m, BASE_METHODS)}")
        for w in [m.split("@", 1)[1] for m in self.methods if "@" in m] + list(self.iterations):
            _iteration_spelling(w)  # what a descent must hold is checked when it is there; the spelling now
        _device_spelling(self.train.get("device", "auto"))
        if not (self.ratios or self.params or self.macs or self.latency):
            raise NeuralscaleError("the sweep has no budgets: give --ratios, --params, --macs or --latency-ms (ratios, "
                                   "params, macs or latency in [sweep]), or --preset")
        if not self.seeds:
            raise NeuralscaleError("the sweep has no seeds")
        for r in self.ratios:
            ratio(r)
        for metric in ("params", "macs", "latency"):
            for b in getattr(self, metric):
                Budget.parse(b, metric)
        fixed = [m for m in self.methods if m in BASELINES]
        if self.latency and fixed:
            raise NeuralscaleError(f"{', '.join(fixed)} prune to their budget as they run, where latency cannot be "
                                   "measured once for every run: give them params or macs budgets")
        for seed in self.seeds:
            at_least("a seed", seed, 0)
            at_most("a seed", seed, SEED_MAX)
        TrainConfig.from_dict(self.train)  # fails early on a bad recipe
        at_least("finetune_epochs", self.finetune_epochs, 1)
        at_least("slimming_sparsity", self.slimming_sparsity, 0)
        positive("finetune_lr", self.finetune_lr)
        at_most("finetune_lr", self.finetune_lr, FLOAT32_MAX)  # (fine-tuning trains in float32)
        at_most("slimming_sparsity", self.slimming_sparsity, FLOAT32_MAX)
        ratio(self.pretrain_ratio)
        at_least("min_width", self.min_width, 1)
        at_least("multiple", self.multiple, 1)
        for b in self.latency_batches:
            at_least("a latency batch size", b, 1)
        check_data(self.data)

def method_base(method: str) -> str:
    """The method a sweep's method name runs: neuralscale-macs@15 is neuralscale (from a MACs descent)."""
    base = method.split("@")[0]
    return "neuralscale" if base in (f"neuralscale-{o}" for o in METRICS) else base


def objective_asked(method: str) -> str | None:
    """The objective a method name asks its descent for (neuralscale-macs: macs), or None."""
    base = method.split("@")[0]
    return base.removeprefix("neuralscale-") if base.startswith("neuralscale-") else None


def preset(name: str, model: str, dataset: str, **overrides) -> SweepConfig:
    """`paper`: the paper's protocol (its ratios, 5 seeds, 300/150 epochs); `quick`: a short look."""
    if name == "paper":
        p = protocol(dataset)
        d = dict(ratios=list(p.ratios), seeds=[0, 1, 2, 3, 4], train=paper_config(dataset).to_dict(),
                 iterations=["first", "last"], finetune_epochs=p.finetune_epochs)
    elif name == "quick":
        d = dict(ratios=[0.25, 0.5], seeds=[0, 1],
                 train=TrainConfig(epochs=5, schedule="cosine", lr=0.05, momentum=0.9).to_dict(),
                 finetune_epochs=2)
    else:
        raise NeuralscaleError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}")
    train = d.pop("train")
    train.update(overrides.pop("train", {}))
    d.update(overrides)
    return SweepConfig(model=model, dataset=dataset, train=train, **d)


def sweep_config(model: str, dataset: str, preset_name: str | None = None, **fields) -> SweepConfig:
    """A sweep's configuration: a preset's (see `preset`) with `fields` over it, or `fields` alone."""
    if preset_name is not None:
        return preset(preset_name, model, dataset, **fields)
    return SweepConfig(model=model, dataset=dataset, **fields)


LATENCY_DEVICE, LATENCY_BATCH = "cpu", 1  # where a sweep's latency budgets are measured


def _budgets(cfg: SweepConfig, space, frozen: dict) -> list[Budget]:
    """The budgets, resolved; a latency budget's amount as `frozen` holds it (measured and added there first)."""
    stated = [Budget.of_ratio(r) for r in cfg.ratios] + [Budget.parse(v, "params") for v in cfg.params] \
        + [Budget.parse(v, "macs") for v in cfg.macs]
    out = [b.resolve(space) for b in stated]
    for v in cfg.latency:
        b = Budget.parse(v, "latency")
        kept = frozen.setdefault(str(b.spelling), {})
        if not isinstance(kept.get("value"), (int, float)):
            kept["value"] = b.resolve(space, cost_function(space, "latency", LATENCY_DEVICE, LATENCY_BATCH)).value
        out.append(replace(b, value=float(kept["value"])))
    return out


def check_reachable(cfg: SweepConfig, space) -> None:
    """A parameter or MACs budget below every layer at its narrowest (min_width, --multiple, a grouped layer's
    groups) is out of reach for the methods a law gives widths for: refused before an experiment's descent, not
    after it. (The pruning baselines prune to one channel a layer whatever min_width says; uniform takes a ratio
    as it is.)"""
    solved = {method_base(m) for m in cfg.methods} & set(SCALED)
    if not solved:
        return
    multiples = layer_multiples(space, cfg.multiple)
    floor = narrowest(multiples, cfg.min_width)
    stated = [Budget.parse(v, "params") for v in cfg.params] + [Budget.parse(v, "macs") for v in cfg.macs]
    if solved - {"uniform"}:
        stated += [Budget.of_ratio(r) for r in cfg.ratios]
    for b in stated:
        low, value = getattr(space, b.metric)(floor), b.resolve(space).value
        if value < low:
            said = (f" ({b.spelling} of the base model)" if b.share is not None else
                    f" (ratio {b.ratio:g})" if b.ratio is not None else "")
            grouped = " or the multiple it must be" if max(multiples) > 1 else ""
            raise NeuralscaleError(f"a budget of {amount(value, b.metric)}{said} is out of reach: {space.name} has "
                                   f"{amount(low, b.metric)} with every layer at its narrowest ({cfg.min_width} "
                                   f"channel(s){grouped}); give a larger budget"
                                   + (", or a smaller min_width" if cfg.min_width > 1 else ""))


def _iteration_spelling(w) -> None:
    """A descent iteration as a sweep names it: first, last or a number from 1 (checked before any descent runs:
    an experiment file's sweep starts after its descent, hours later)."""
    if w in ("first", "last"):
        return
    ok = ((isinstance(w, int) and not isinstance(w, bool))
          or (isinstance(w, str) and w.strip().isascii() and w.strip().isdigit()))
    if not ok or int(w) < 1:
        raise NeuralscaleError(f"descent iteration must be first, last or a number from 1, got {w!r}")


def _device_spelling(name) -> None:
    """A device the trainer takes (resolve_device), checked as the sweep is set up; whether it is on this machine
    is checked when its runs start (an experiment's sweep may run where its file was not written)."""
    try:
        resolve_device(name)
    except EnvironmentFailure:
        pass


def _iterations(cfg: SweepConfig, method: str) -> list[int]:
    if cfg.descent is None:
        raise NeuralscaleError(f"method {method} needs a descent directory (--from DIR)")
    have = [it.number for it in DescentDir(cfg.descent).iterations()]
    if not have:
        raise NeuralscaleError(DescentDir(cfg.descent).none_finished())
    wanted = [method.split("@", 1)[1]] if "@" in method else cfg.iterations
    out = []
    for w in wanted:
        it = have[0] if w == "first" else have[-1] if w == "last" else None
        if it is None:
            try:
                it = int(w)
            except (TypeError, ValueError):
                raise NeuralscaleError(f"descent iteration must be first, last or a number, got {w!r}") from None
            if it not in have:
                raise NeuralscaleError(f"{cfg.descent} has no iteration {it} (it has {have[0]} to {have[-1]})")
        if it not in out:
            out.append(it)
    return out


def _label(cfg: SweepConfig, method: str, iteration: int) -> str:
    """neuralscale@K (neuralscale-macs@K for a descent of that objective), marked when iteration K's law is a
    fallback (uniform scaling, not a fit); shape@K."""
    d = DescentDir(cfg.descent)
    label = method_label(method, iteration, d.objective())
    if method == "neuralscale" and d.iteration(iteration).law.fallback:
        warn(f"{label} is a fallback law (uniform scaling, not a fit); its runs are labelled so")
        return f"{label} (fallback)"
    return label


def _check_descent(cfg: SweepConfig, space) -> str:
    """The sweep's descent exists, is of this space, and has the objective its method names ask for (returned:
    params without a descent)."""
    if cfg.descent is None:
        need = [m for m in cfg.methods if method_base(m) in SCALED and method_base(m) != "uniform"]
        if need:  # said for all of them at once, and where they came from when the user named none
            named = f" (of the default methods, {','.join(DEFAULT_METHODS)})" if tuple(cfg.methods) == DEFAULT_METHODS \
                else ""
            verb, them = ("needs", "it") if len(need) == 1 else ("need", "them")
            raise NeuralscaleError(f"{', '.join(need)}{named} {verb} a descent: give --from DESCENT_DIR (from = in "
                                   f"[sweep]), or --methods without {them}")
        objective = "params"
    else:
        if Path(cfg.descent).is_file():
            raise NeuralscaleError(f"{cfg.descent} is a file; a sweep's --from is a descent directory (its fits.json "
                                   "alone serves scale and train)")
        if not Path(cfg.descent).is_dir():
            raise NeuralscaleError(f"descent directory {cfg.descent} does not exist")
        laws = DescentDir(cfg.descent).laws()
        if laws:
            laws[0].check_space(space)
        objective = DescentDir(cfg.descent).objective()
    for m in cfg.methods:
        asked = objective_asked(m)
        if asked is not None and asked != objective:
            raise NeuralscaleError(f"method {m} needs a descent of objective {asked}, and "
                                   f"{cfg.descent or 'the sweep (no --from)'} was run with --objective {objective}")
    return objective


def check_descent_use(cfg: SweepConfig, space) -> None:
    """What plan() refuses of the sweep's descent, without solving a width or measuring a latency: a descent that
    is missing, is not one, is another model's or objective's, or lacks an iteration a method asks for."""
    _check_descent(cfg, space)
    for m in cfg.methods:
        if method_base(m) in ITERATED:
            _iterations(cfg, m)


def plan(cfg: SweepConfig, frozen: dict | None = None, located_ids: bool = False) -> list[RunSpec]:
    """Every run of the sweep, in order: seed by seed, budget by budget, method by method.

    The pruning baselines' full-width networks come first in their seed. `frozen`: the latency budgets' amounts
    and solved widths from an earlier plan of the store (by budget, then method), used as they are and added to
    where missing (measurements differ from one call to the next; a store's runs must not). `located_ids`: the
    store's runs hash where their model's file lies (`store_location`), as its new ones then do.
    """
    frozen = {} if frozen is None else frozen
    data_dir = cfg.data.get("data_dir")
    space = make_space(cfg.model, cfg.dataset, convcut=cfg.convcut, data_dir=data_dir)
    objective = _check_descent(cfg, space)
    budgets = _budgets(cfg, space, frozen)
    data = DataConfig.from_settings(cfg.dataset, cfg.data).settings(with_dir=True)  # as `train` records it
    common = dict(model=cfg.model, dataset=cfg.dataset, convcut=cfg.convcut, data=data,
                  latency_batches=tuple(cfg.latency_batches), architecture=space.architecture,
                  portable=located(cfg.model) and not located_ids)
    widths_for = _Widths(cfg, space, budgets, frozen)
    labels: dict[tuple[str, int], str] = {}  # (method, descent iteration) -> label

    specs: list[RunSpec] = []
    for seed in cfg.seeds:
        recipe = TrainConfig.from_dict({**cfg.train, "seed": seed}).to_dict()
        pretrained = _pretrained(cfg, space, recipe, common)  # criterion -> the trained run it prunes
        specs += list({p.id: p for p in pretrained.values()}.values())
        finetune = {**recipe, "epochs": cfg.finetune_epochs, "lr": cfg.finetune_lr, "schedule": "constant"}
        for bi, b in enumerate(budgets):
            for m in cfg.methods:
                base = method_base(m)
                if base in ("uniform", "morphnet", "pruned"):
                    specs.append(RunSpec(method=base, label=method_label(base, None, objective), config=recipe,
                                         widths=widths_for(base, None, bi), budget=b, **common))
                elif base in ITERATED:
                    for it in _iterations(cfg, m):
                        if (base, it) not in labels:
                            labels[base, it] = _label(cfg, base, it)
                        specs.append(RunSpec(method=base, label=labels[base, it], config=recipe,
                                             widths=widths_for(base, it, bi), budget=b, **common))
                else:
                    specs.append(RunSpec(method=base, config=finetune, budget=b,
                                         pretrained=pretrained[BASELINES[base]].id, criterion=BASELINES[base],
                                         **common))
    unique, seen = [], set()
    for s in specs:
        if s.id not in seen:
            seen.add(s.id)
            unique.append(s)
    return unique


class _Widths:
    """Each method's widths at each budget, solved once for every seed; a latency budget's as `frozen` keeps
    them (by budget, then method), solved and added there where missing."""

    def __init__(self, cfg: SweepConfig, space, budgets: list[Budget], frozen: dict):
        self.cfg, self.space, self.budgets, self.frozen = cfg, space, budgets, frozen
        self.solved: dict = {}  # (method, iteration, budget index) -> widths

    def __call__(self, method: str, iteration: int | None, bi: int) -> list[int]:
        key, b, cfg = (method, iteration, bi), self.budgets[bi], self.cfg
        kept = self.frozen[str(b.spelling)].setdefault("widths", {}) if b.metric == "latency" else {}
        name = method if iteration is None else f"{method}@{iteration}"
        if key not in self.solved and isinstance(kept.get(name), list):
            self.solved[key] = self.space.validate(kept[name])
        if key not in self.solved:
            self.solved[key] = scale(self.space, method, b, source=cfg.descent, iteration=iteration,
                                     min_width=cfg.min_width, multiple=cfg.multiple, convert=cfg.convert,
                                     device=LATENCY_DEVICE, batch_size=LATENCY_BATCH)["widths"]
            if b.metric == "latency":
                kept[name] = self.solved[key]
        return self.solved[key]


def _pretrained(cfg: SweepConfig, space, recipe: dict, common: dict) -> dict[str, RunSpec]:
    """The trained networks the pruning baselines prune, by criterion: uniform at `pretrain_ratio`, trained with
    the recipe; slimming's with the sparsity penalty on the batch norms' scales as well (unless it is 0)."""
    if not any(m in BASELINES for m in cfg.methods):
        return {}
    start = space.uniform(cfg.pretrain_ratio)
    at = Budget.of_ratio(cfg.pretrain_ratio).resolve(space)
    plain = RunSpec(method="uniform", config=recipe, widths=start, budget=at, **common)
    out = {BASELINES[m]: plain for m in cfg.methods if m in BASELINES}
    if "slimming" in cfg.methods and cfg.slimming_sparsity > 0:
        out["slimming"] = RunSpec(method="uniform", label=SPARSE_LABEL, widths=start, budget=at,
                                  config={**recipe, "bn_sparsity": cfg.slimming_sparsity}, **common)
    return out


def recipe(cfg: SweepConfig, located_ids: bool = False) -> dict:
    """What decides how every run of the sweep trains; a run store holds one recipe (see store.RunStore).

    Methods, budgets and seeds may grow; the laws are fingerprinted per descent iteration, so that a
    label such as neuralscale@2 always means one law in one store. The model is named by `zoo.model_identity`
    (a file's network not by its folder: a store moved with its file is the same store), or where its file lies
    in a store whose runs hash that (`located_ids`).
    """
    train = {k: v for k, v in TrainConfig.from_dict(cfg.train).to_dict().items()
             if k not in ("seed", "device", "eval_batch_size")}
    laws = law_fingerprints(DescentDir(cfg.descent)) if cfg.descent is not None and Path(cfg.descent).is_dir() \
        else {}
    space = make_space(cfg.model, cfg.dataset, convcut=cfg.convcut, data_dir=cfg.data.get("data_dir"))
    return {"model": cfg.model if located_ids else model_identity(cfg.model),
            **space.own_architecture(),  # (a file's network, edited: another recipe)
            "dataset": cfg.dataset, "convcut": cfg.convcut, "train": train,
            "data": DataConfig.from_settings(cfg.dataset, cfg.data).settings(),
            "finetune_epochs": cfg.finetune_epochs, "finetune_lr": cfg.finetune_lr,
            "pretrain_ratio": cfg.pretrain_ratio, "min_width": cfg.min_width,
            "multiple": cfg.multiple, "laws": laws}  # slimming_sparsity: checked against the store's runs instead
    # (`_check_slimming`), so that methods may still grow and stores recorded before it still open


def law_fingerprints(d: DescentDir) -> dict[str, str]:
    """What a store's recipe records of a descent's laws: a short hash of each finished iteration's law (keyed by
    its number; `pruned`: where iteration 1's pruning ended), the keys prefixed with the objective where it is not
    params (`macs@2`: one store holds descents of each). The same laws, copied anywhere, hash alike."""
    prefix = law_prefix(d.objective())
    laws = {}
    for it in d.iterations():
        blob = json.dumps([it.law.alpha, it.law.beta, it.half_widths if it.number == 1 else None])
        laws[f"{prefix}{it.number}"] = hashlib.sha256(blob.encode()).hexdigest()[:12]
        if it.number == 1:  # the ablation `pruned` scales where iteration 1's pruning ended
            laws[f"{prefix}pruned"] = hashlib.sha256(json.dumps(it.final_widths).encode()).hexdigest()[:12]
    return laws


def law_prefix(objective: str) -> str:
    """How a recipe's law keys name a descent's objective: nothing for params, `macs@` for macs."""
    return "" if objective == "params" else f"{objective}@"


# what a store's sweep.json adds to a sweep's settings (run_sweep)
_PLAN_EXTRAS = {"latency_budgets": dict, "descent_from_store": str, "descents_from_store": dict,
                "model_from_store": str}


def read_plan(store: RunStore) -> dict:
    """A store's sweep.json ({} where there is none), its recorded settings read through SweepConfig's own checks
    (types, ranges, known methods and budgets) and the keys a sweep adds to them: one line naming the file and
    the setting otherwise. A key SweepConfig no longer knows is left alone (an older release's)."""
    plan = store.load_plan() or {}
    config = plan.get("config")
    if config is None:
        return plan
    known = {f.name for f in fields(SweepConfig)}
    problem = next((f"{k} is {str(config[k])[:40]!r}" for k, tp in _PLAN_EXTRAS.items()
                    if k in config and not matches(config[k], tp)), "")
    if not problem:
        try:
            SweepConfig.from_dict({k: v for k, v in config.items() if k in known})
        except NeuralscaleError as e:
            problem = str(e)
    if problem:
        raise NeuralscaleError(f"{store.plan_path} is damaged: config: {problem}; restore it (a sweep with this "
                               "store's recipe writes it again when it is removed)")
    return plan


def store_location(cfg: SweepConfig, recipe_before, store: RunStore) -> str | None:
    """Where a store's runs say the sweep's model file lies, where their ids hash that (a store of a file's network
    written before runs knew it by the file's name): the file's name as its recipe records it, or (its sweep.json
    lost or removed) as its first such record of that network does; None for any other store. Its runs keep
    their ids, and its new runs are planned alike, where it was made (`refuse_moved`)."""
    if not located(cfg.model):
        return None
    if isinstance(recipe_before, dict):
        model = recipe_before.get("model")
        return model if located(model) else None
    runs = StoreDir(store.root).runs
    for run in sorted(runs.iterdir()) if runs.is_dir() else ():
        try:
            r = (read_record(run) if run.is_dir() else None) or {}
        except NeuralscaleError:  # (a damaged record: the sweep says so when it reads it)
            continue
        if located(r.get("model")) and not r["spec"].get("portable") \
                and model_identity(r["model"]) == model_identity(cfg.model):
            return r["model"]
    return None


def _as_the_store_knows(cfg: SweepConfig, recipe_before, store: RunStore) -> tuple[SweepConfig, bool]:
    """`cfg` as the store spells its model and dataset (`as_the_store_spells`), and whether its runs' ids hash where
    the model's file lies (`store_location`; refused where it lies elsewhere now: `refuse_moved`)."""
    cfg = as_the_store_spells(cfg, recipe_before)
    location = store_location(cfg, recipe_before, store)
    refuse_moved(cfg, location, store)
    return cfg, location is not None


def refuse_moved(cfg: SweepConfig, location: str | None, store: RunStore) -> None:
    """A store whose runs hash where their model's file lay (`store_location`), given the file where it lies now:
    one line saying why it cannot go on here (not "another recipe", nor every run trained again)."""
    if moved(location, cfg.model):
        raise NeuralscaleError(f"{store.root}'s runs were made from {location}, and their ids hash where that file "
                               "lay (a store recorded before runs knew a file by its name): go on with it where the "
                               "file is at that path, or sweep into a new --out")


def as_the_store_spells(cfg: SweepConfig, recipe_before) -> SweepConfig:
    """`cfg` with its model and dataset spelled as a store's recipe (`recipe_before`) spells the same network and
    dataset: a store written before sweeps spelled them one way (`VGG11`, `fashion-mnist`) keeps its runs' ids,
    which hash its spelling. `cfg` itself where the store names others (its recipe check says so) or has none."""
    old = recipe_before if isinstance(recipe_before, dict) else {}
    model, dataset, convcut = old.get("model"), old.get("dataset"), old.get("convcut", False)
    if not (isinstance(model, str) and isinstance(dataset, str) and isinstance(convcut, bool)) or ":" in model \
            or (model, dataset, convcut) == (cfg.model, cfg.dataset, cfg.convcut) \
            or (model_spelling(model, convcut), dataset_name(dataset)) != ((cfg.model, cfg.convcut), cfg.dataset):
        return cfg
    log.info("sweep: %s on %s, as the store spells them (%s on %s)", cfg.model, cfg.dataset, model, dataset)
    spelled = copy.copy(cfg)  # not through __post_init__, which would spell them one way again
    spelled.model, spelled.dataset, spelled.convcut = model, dataset, convcut
    return spelled


def check_runnable(cfg: SweepConfig, ex) -> dict | None:
    """What every run would fail on, checked once before any: its recipe on the devices it trains on, and its data
    (read once: the runs then read the tensor cache). One line now, not every run recorded failed (hours later in
    an experiment, after its descent). A Ray cluster's nodes read their own data and have their own devices.
    Returns the data's split sizes where it read them (not for Ray)."""
    train = TrainConfig.from_dict(cfg.train)
    ray = str(getattr(ex, "name", "")).startswith("ray")
    if ray:  # a Ray task trains on CUDA where it was given a GPU share, else on its node's CPU (executors._ray_task)
        gpus = getattr(ex, "gpus_per_run", 0) > 0
        where = {torch.device("cuda" if gpus else "cpu"): "a Ray task with " + ("a GPU share" if gpus else
                                                                               "no GPU share (--gpus-per-run)")}
    else:
        where = {resolve_device(name): f"the runs' device: {name}"
                 for name in [d for d in getattr(ex, "devices", ()) if d] or [train.device]}
    for device, said in where.items():
        why = refused(train, device)
        if why is not None:
            raise NeuralscaleError(f"cuda_graphs: {why} ({said})")
    if ray:
        return None
    splits = DataConfig.from_settings(cfg.dataset, cfg.data).splits(train.val_fraction, train.split_seed)
    check_splits(splits, train.val_fraction)
    return splits.identity()


def _statuses(store: RunStore, cfg: SweepConfig, specs: list[RunSpec], sizes: dict | None) -> dict:
    """Each planned run's status (None: not begun), its record read and checked, the finished ones' data against
    the data read now (`sizes`, from `check_runnable`)."""
    records = {s.id: store.read(s.id) for s in specs}
    _check_same_data(store, cfg, sizes, [r for r in records.values() if (r or {}).get("status") == "finished"])
    return {i: r["status"] if r is not None else None for i, r in records.items()}


def _check_same_data(store: RunStore, cfg: SweepConfig, sizes: dict | None, finished: list[dict]) -> None:
    """The data as read now against the store's finished runs' (`store.data_counts`): an image folder added to
    since they ran would train the new runs on other data, which a report refuses to pool (after the sweep's
    hours); refused now, before any run."""
    settings = DataConfig.from_settings(cfg.dataset, cfg.data).settings()  # (as a report reads a record's)
    now = data_counts(settings, sizes)
    for record in finished if now is not None else ():
        then = data_counts(settings, record.get("data"))
        if then is not None and not same_data(then, now):
            raise NeuralscaleError(f"{store.root} holds finished runs on other data than {cfg.dataset} has now (run "
                                   f"{record['id']}: {said_counts(then)} then; {said_counts(now)} now): its files "
                                   "changed since; put them back as they were, or sweep into a new store")


def _say_plan(specs: list[RunSpec], done_before: int, todo: list[RunSpec], root: Path, space) -> None:
    log.info("sweep: %d runs, %d already done, %d to run in %s", len(specs), done_before, len(todo), root)
    for note in repeats_of_uniform(specs):
        log.info("sweep: note: %s", note)
    for warning in prunes_nothing(specs, space, todo):
        log.warning("sweep: %s", warning)


def prunes_nothing(specs: list[RunSpec], space, todo: list[RunSpec] | None = None) -> list[str]:
    """The pruning baselines' budgets that the trained network they prune already meets (uniform at
    `pretrain_ratio`, as baselines.choose_widths counts it), said before they train (of `todo`, those still to
    run, where given): they remove no channel, and their runs are fine-tuning alone (the report marks them
    `pruned nothing` only once they ran)."""
    starts = {s.id: s for s in specs}
    said: dict[tuple, list[str]] = {}
    for s in specs if todo is None else todo:
        start = starts.get(s.pretrained) if s.pretrained is not None else None
        if start is None or start.widths is None or s.budget is None or s.budget.metric not in ("params", "macs"):
            continue
        if cost_function(space, s.budget.metric)(start.widths) <= s.budget.amount(space):
            texts = said.setdefault((s.label, s.config.get("epochs")), [])
            if s.budget.text not in texts:
                texts.append(s.budget.text)
    return [f"{label} at {', '.join(budgets)}: the network it prunes (uniform at the pretrain ratio) already meets "
            f"{'this budget' if len(budgets) == 1 else 'these budgets'}, so it prunes nothing and its runs are "
            f"{epochs} epochs of fine-tuning alone; a larger pretrain ratio (--pretrain-ratio; pretrain_ratio in an "
            "experiment's [sweep]), in a new store, gives it channels to prune"
            for (label, epochs), budgets in said.items()]


def repeats_of_uniform(specs: list[RunSpec]) -> list[str]:
    """The planned labels whose runs train uniform's very networks (its widths at its budget, from scratch:
    `shape@1`, whose iteration started from uniform widths), said before they train: a report compares them with
    nothing (report._same_network)."""
    uniform = {(s.budget.key, s.seed): s.widths for s in specs
               if s.label == "uniform" and s.init is None and s.budget is not None}
    same: dict[str, list[str]] = {}
    for s in specs:
        if s.label != "uniform" and s.widths is not None and s.init is None and s.pretrained is None \
                and s.budget is not None \
                and uniform.get((s.budget.key, s.seed)) == s.widths:
            texts = same.setdefault(s.label, [])
            if s.budget.text not in texts:
                texts.append(s.budget.text)
    return [f"{label} at {', '.join(budgets)} trains uniform's network (the same widths): its runs repeat "
            "uniform's, and the report compares them with nothing" for label, budgets in same.items()]


def run_sweep(cfg: SweepConfig, out_dir: str | Path, *, progress: bool = True, retry_failed: bool = False,
              executor=None, force: bool = False) -> list[dict]:
    """Plan the sweep and run every run not yet finished; returns the records in plan order.

    The store is locked for the duration (a second command on it stops with an error), and a store
    that holds another recipe is refused, as is a folder with other content and no sweep.json (unless
    `force`: layout.claim_folder).
    """
    for_api(progress)
    store = RunStore(out_dir)
    train = TrainConfig.from_dict(cfg.train)
    resolve_device(train.device)  # before planning: no run fails for the machine, ...
    checkpoint_seconds()  # ... for a setting of this environment ...
    ex = executor or get_executor("sequential")
    # refused before the lock too, so that a refused folder is left as it was (no .lock in it); again under it
    claim_folder(store.root, store.plan_path, "run store", force, also=is_descent_dir)
    sizes = check_runnable(cfg, ex)  # ... or for its recipe or data
    before = read_plan(store)
    cfg, by_location = _as_the_store_knows(cfg, before.get("recipe"), store)
    # the store's latency budgets as measured and solved before, kept whatever this sweep's budgets are
    frozen = dict((before.get("config") or {}).get("latency_budgets") or {})
    specs = plan(cfg, frozen, by_location)
    with store.lock():
        claim_folder(store.root, store.plan_path, "run store", force, also=is_descent_dir)
        config = cfg.to_dict()
        if frozen:  # what the latency budgets were measured and solved as, for every rerun
            config["latency_budgets"] = frozen
        old = read_plan(store).get("config") or {}  # every descent the store's runs came from, by objective: kept
        # by a sweep from none (its baselines, say)
        config.update({k: old[k] for k in ("descent_from_store", "descents_from_store") if k in old})
        if (beside := model_relative(cfg.model, store.root)) is not None:  # a file's: found by a report of the
            config["model_from_store"] = beside  # store moved with it (its runs name where it was)
        if cfg.descent is not None:  # found by a report from any folder, and in a clone of the store's repository
            config["descent_from_store"] = os.path.relpath(Path(cfg.descent).resolve(), store.root.resolve())
            config["descents_from_store"] = {**(old.get("descents_from_store") or {}),
                                             DescentDir(cfg.descent).objective(): config["descent_from_store"]}
        _check_slimming(store, cfg)
        statuses = _statuses(store, cfg, specs, sizes)  # every record read (and checked) before any write
        store.save_plan(recipe(cfg, by_location), config, [s.id for s in specs], time.strftime("%Y-%m-%d %H:%M:%S"))
        todo = [s for s in specs
                if not (statuses[s.id] == "finished" or (statuses[s.id] == "failed" and not retry_failed))]
        done_before = len(specs) - len(todo)
        _say_plan(specs, done_before, todo, store.root,
                  make_space(cfg.model, cfg.dataset, convcut=cfg.convcut, data_dir=cfg.data.get("data_dir")))
        _say_how_long(cfg, todo, ex)
        bar = progress_bar(len(specs), "sweep", enabled=progress, leave=True)
        bar.update(done_before)

        def on_done(i: int, spec: RunSpec, record: dict) -> None:
            bar.update(1)
            log.info("[%d/%d] %s: %s", done_before + i, len(specs), describe(spec), _outcome(record))

        ex.run(todo, store.root, on_done=on_done, progress=progress)
        bar.close()
    records = [store.read(s.id) for s in specs]
    failed = [r for r in records if r and r["status"] == "failed"]
    if failed:
        log.warning("sweep: %d run(s) failed; see their record.json (rerun with --retry-failed to try again)",
                    len(failed))
    return records


def _say_how_long(cfg: SweepConfig, todo: list[RunSpec], ex) -> None:
    """Log an estimate of the sweep's wall time on this machine before it starts (estimate.py); not for work of
    under a minute or so, nor for a Ray cluster, whose machines this one cannot time."""
    train = TrainConfig.from_dict(cfg.train)
    if not todo or str(getattr(ex, "name", "")).startswith("ray") or resolve_device(train.device).type != "cpu":
        return  # a cluster's machines, or a GPU the workers would hold (not the driver), are not timed from here
    try:
        _estimate(cfg, todo, ex, train)
    except (NeuralscaleError, OSError, RuntimeError) as e:  # only an estimate: the sweep goes on without it
        log.warning("sweep: no time estimate (%s)", first_line(e, None, type(e).__name__))


def _estimate(cfg: SweepConfig, todo: list[RunSpec], ex, train: TrainConfig) -> None:
    data = DataConfig.from_settings(cfg.dataset, cfg.data)
    if data.train is not None:
        n_train = data.train
    else:
        n_train = data.splits(train.val_fraction, train.split_seed).sizes()["train"]
    images = [s.config["epochs"] * n_train for s in todo]
    if sum(images) < 200_000:
        return
    space = make_space(cfg.model, cfg.dataset, convcut=cfg.convcut, data_dir=cfg.data.get("data_dir"))
    widths = [s.widths or scale(space, "uniform", s.budget)["widths"] for s in todo]
    threads = getattr(ex, "threads", None)
    rates = Rates(space, widths, train.batch_size, str(resolve_device(train.device)), threads)
    seconds = runs_seconds(list(zip(widths, images)), rates, getattr(ex, "slots", 1))
    log.info(f"sweep: {duration_text(seconds)} on this machine as it is now, for {len(todo)} run(s) "
             f"{getattr(ex, 'slots', 1)} at a time (an estimate: {min(r for _, r in rates.points):,.0f}-"
             f"{max(r for _, r in rates.points):,.0f} training images/s measured"
             f"{f' at {threads} thread(s) each' if threads else ''}; evaluation not counted)")


def _check_slimming(store: RunStore, cfg: SweepConfig) -> None:
    """A store's slimming rows pool runs of one sparsity: refuse a sweep whose slimming prunes a network trained
    with another penalty than the slimming runs the store already holds."""
    if "slimming" not in cfg.methods:
        return
    records = {r["id"]: r for r in store.records()}
    for r in records.values():
        source = records.get((r.get("spec") or {}).get("pretrained") or "")
        if r.get("method") == "slimming" and source is not None:
            theirs = (source.get("config") or {}).get("bn_sparsity", 0.0)
            if theirs != cfg.slimming_sparsity:
                raise NeuralscaleError(f"{store.root} holds slimming runs pruned from a network trained with a "
                                       f"sparsity penalty of {theirs:g}, and this sweep asks for "
                                       f"{cfg.slimming_sparsity:g}; give slimming_sparsity = {theirs:g} "
                                       "(--slimming-sparsity) or use a new store")


def _outcome(record: dict) -> str:
    if record["status"] != "finished":
        return f"{record['status']} ({record.get('error', '')})"
    s = record["summary"]
    return (f"test {_pct(s.get('final_test_acc'))} final, {_pct(s.get('test_acc_at_best_val'))} at best val "
            f"({record['params']:,} params, {record['wall_s']:.0f} s)")


def _pct(x) -> str:
    return f"{x:.2f}%" if isinstance(x, (int, float)) else "n/a"
