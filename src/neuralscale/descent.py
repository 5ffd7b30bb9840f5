"""Architecture descent: prune, fit a scaling law, rebuild from it, repeat.

Iteration 1 prunes the base widths; iteration k builds a fresh network from
law k-1 solved at the base parameter count and prunes it again.  Everything
lives in one directory:

    config.json          the descent's configuration (a rerun must match it)
    iteration_NN.csv     the trajectory of iteration NN
    fits.json            {"laws": [...]}: alpha, beta, R^2 per finished iteration, and how it ended
    iteration_NN.ckpt    the running iteration's checkpoint (removed when it finishes)
    log.txt              one line per epoch and per iteration, with times
    .lock                held by the command running the descent

Everything but log.txt is a function of the configuration and the data: a
descent killed at any point and run again writes the same bytes.

Running the same command again continues after the last finished iteration
(and inside an unfinished one, from its last epoch); nothing finished is redone.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import torch

from .data.base import Splits
from .errors import NeuralscaleError
from .prune import TaylorPruner
from .records import atomic_write_json, exclusive
from .scaling import ScalingLaw, fit, read_trajectory, solve, uniform_law, write_trajectory
from .space import WidthSpace
from .train import TrainConfig, Trainer
from .validate import at_least, check_types, fraction, positive, ratio, suggest


ADD10_FAMILIES = ("resnet18", "mobilenetv2")  # the original adds 10 channels to narrow layers of these only
TINY = "tinyimagenet"


@dataclass
class DescentConfig:
    """How a descent prunes: the original implementation's settings by default.

    Fields left at None are decided per dataset and model by `resolve`, the one
    place that knows the original's dataset-dependent settings; `descend`
    resolves its configuration first and records the result in config.json.
    """

    iterations: int = 15
    warmup_epochs: int = 10
    prune_fraction: float = 0.95
    k: int = 10  # channels pruned per step
    interval: int | None = None  # mini-batches between steps; None: 50 (100 for TinyImageNet)
    batch_size: int | None = None  # None: 256 (100 for TinyImageNet)
    lr: float = 0.1
    momentum: float = 0.5
    weight_decay: float = 5e-4
    add10: bool | None = None  # +10 channels for layers under 10 when rebuilding; None: resnet18, mobilenetv2 only
    prune_past_one: bool = False  # False: pruning ends at the first step that would empty a layer (the original)
    val_fraction: float = 0.0  # a descent selects nothing, so it prunes on the whole training set (the original)
    schedule: str | None = None  # None: "prune" ("prune-tinyimagenet": decays at multiples of 10 epochs)
    crop_padding: int | None = None  # None: the dataset's (0 for TinyImageNet: its descent only rotates and flips)
    base_ratio: float = 1.0  # start from the base widths times this (a smaller network on small machines)
    physical: bool = True
    seed: int = 0
    device: str = "auto"
    max_epochs: int = 1000  # a safety cap; pruning normally ends first
    eval_every: int = 0  # evaluate val/test every N epochs while pruning; 0: only when pruning ends
    allow_fallback: bool = False  # go on when an iteration's law is a fallback, not a fit

    # Settings that do not change what a descent computes: a rerun may change them.
    NOT_IDENTITY = ("iterations", "eval_every", "allow_fallback", "device", "max_epochs")

    def __post_init__(self):
        check_types(self, "descent setting")
        for name in ("iterations", "k", "interval", "batch_size", "max_epochs"):
            at_least(name, getattr(self, name), 1)
        for name in ("warmup_epochs", "eval_every", "seed", "crop_padding"):
            at_least(name, getattr(self, name), 0)
        fraction("prune fraction", self.prune_fraction, low_open=True)
        fraction("validation fraction", self.val_fraction)
        positive("learning rate (lr)", self.lr)
        for name in ("momentum", "weight_decay"):
            at_least(name, getattr(self, name), 0)
        ratio(self.base_ratio)
        if self.schedule not in (None, "prune", "prune-tinyimagenet"):
            raise NeuralscaleError(f"a descent's schedule is prune or prune-tinyimagenet, got {self.schedule!r}")

    @classmethod
    def from_dict(cls, d: dict) -> "DescentConfig":
        """From a dict of fields (an experiment file's [descent]); an unknown key is an error."""
        if not isinstance(d, dict):
            raise NeuralscaleError(f"descent settings must be a table of settings, got {d!r}")
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise NeuralscaleError(f"unknown descent setting(s): {', '.join(unknown)}{suggest(unknown[0], names)}")
        return cls(**d)

    def resolve(self, space: WidthSpace) -> "DescentConfig":
        """A copy with every None decided for this model and dataset, as the original does."""
        tiny = space.info.name == TINY
        family = space.name.split("-")[0]
        defaults = {"interval": 100 if tiny else 50, "batch_size": 100 if tiny else 256,
                    "add10": family in ADD10_FAMILIES, "schedule": "prune-tinyimagenet" if tiny else "prune",
                    "crop_padding": 0 if tiny else space.info.crop_padding}
        return replace(self, **{k: v for k, v in defaults.items() if getattr(self, k) is None})

    def identity(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k not in self.NOT_IDENTITY}

    def train_config(self) -> TrainConfig:
        if self.interval is None or self.batch_size is None or self.schedule is None:
            raise NeuralscaleError("resolve the descent configuration for a space first (DescentConfig.resolve)")
        return TrainConfig(epochs=self.max_epochs, batch_size=self.batch_size, lr=self.lr, momentum=self.momentum,
                           weight_decay=self.weight_decay, schedule=self.schedule, warmup_epochs=self.warmup_epochs,
                           seed=self.seed, device=self.device, eval_every=self.eval_every,
                           val_fraction=self.val_fraction)


def is_descent_dir(path: str | Path) -> bool:
    """A folder that a descent has written (its configuration and log or laws)."""
    path = Path(path)
    return (path / "config.json").is_file() and ((path / "fits.json").is_file() or (path / "log.txt").is_file())


def load_laws(out: str | Path) -> list[dict]:
    """The finished iterations of a descent directory (fits.json), checked for shape; [] before the first."""
    path = Path(out) / "fits.json"
    if not path.exists():
        return []
    try:
        laws = json.loads(path.read_text())["laws"]
        if not isinstance(laws, list):
            raise TypeError("laws is not a list")
        for i, d in enumerate(laws, 1):
            ScalingLaw.from_dict(d)  # alpha, beta and layers of one length
            if d.get("iteration") != i:
                raise ValueError(f"entry {i} is not iteration {i}")
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError, NeuralscaleError) as e:
        raise NeuralscaleError(f"{path} is damaged ({e}); remove it and the later iterations to redo them") from None
    return laws


def start_widths(space: WidthSpace, laws: list[dict], cfg: DescentConfig) -> list[int]:
    """Iteration 1: the base widths; later: the last law solved at the base parameter count.

    With `add10` (the original's rule for ResNet18 and MobileNetV2), every layer
    under 10 channels gets 10 more.
    """
    if not laws:
        return list(space.base_widths)
    law = ScalingLaw.from_dict(laws[-1])
    widths = solve(law, space, space.params(space.base_widths)).widths
    if cfg.add10:
        widths = [w + 10 if w < 10 else w for w in widths]
    return widths


def fallback_message(entry: dict) -> str:
    return (f"iteration {entry['iteration']}'s law is not a fit ({entry.get('fallback_reason') or entry.get('note')}); "
            "it scales one configuration uniformly")


def _refuse_fallback(laws: list[dict], cfg: DescentConfig) -> None:
    if laws and laws[-1].get("fallback") and not cfg.allow_fallback:
        raise NeuralscaleError(f"{fallback_message(laws[-1])}. Rerun with --allow-fallback (allow_fallback = true "
                               "in an experiment file) to accept it, or record more rows: a smaller --prune-k or "
                               "--prune-interval, more training images, or --prune-past-one")


def _pruning_law(space: WidthSpace, pruner: TaylorPruner, it: int) -> ScalingLaw:
    """The iteration's law: a fit to its rows, or (as the original does) uniform scaling of one configuration."""
    if pruner.rows:
        return fit(space, pruner.rows, iteration=it)
    law = uniform_law(space, pruner.current, note="no trajectory rows (some layer never lost a channel): uniform "
                                                  "scaling of the widths at the end of pruning")
    law.iteration, law.rows = it, 0
    return law


def descend(space: WidthSpace, splits: Splits, out_dir: str | Path, config: DescentConfig | None = None, *,
            progress: bool = True, data_note: dict | None = None) -> list[ScalingLaw]:
    """Run (or continue) an architecture descent in `out_dir`; returns the laws of all iterations.

    `splits` should hold the whole training set (no validation split: a
    descent selects nothing); `config.val_fraction` says how it was made.
    """
    cfg = (config or DescentConfig()).resolve(space)
    if cfg.base_ratio != 1.0:
        space = space.rebased(space.uniform(cfg.base_ratio))
    if cfg.crop_padding != splits.info.crop_padding:
        splits = replace(splits, info=replace(splits.info, crop_padding=cfg.crop_padding))
    out = Path(out_dir)
    with exclusive(out, "descent directory"):
        return _descend(space, splits, out, cfg, progress, data_note)


def _descend(space: WidthSpace, splits: Splits, out: Path, cfg: DescentConfig, progress: bool,
             data_note: dict | None) -> list[ScalingLaw]:
    identity = {"model": space.name, "dataset": space.info.name, "descent": cfg.identity(),
                "data": data_note or splits.sizes()}
    cfg_path = out / "config.json"
    if cfg_path.exists():
        try:
            old = json.loads(cfg_path.read_text())
            if not isinstance(old, dict) or not isinstance(old.get("descent"), dict):
                raise ValueError("not a descent configuration")
        except (ValueError, UnicodeDecodeError) as e:
            raise NeuralscaleError(f"{cfg_path} is damaged ({e}); remove it only if this directory's iterations "
                                   "may be redone with the configuration given now") from None
        mismatch = [k for k in ("model", "dataset", "data") if old.get(k) != identity[k]]
        mismatch += [k for k in identity["descent"] if old.get("descent", {}).get(k) != identity["descent"][k]]
        if mismatch:
            raise NeuralscaleError(f"{out} holds a descent with another configuration ({', '.join(mismatch)}); "
                                   "use a new --out directory")
    atomic_write_json(cfg_path, {**identity, "descent": asdict(cfg)})
    log_file = open(out / "log.txt", "a")

    def log(msg: str) -> None:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        log_file.write(f"{stamp} {msg}\n")
        log_file.flush()
        if progress:
            import sys
            print(msg, file=sys.stderr, flush=True)

    laws = load_laws(out)
    try:
        for it in range(len(laws) + 1, cfg.iterations + 1):
            _refuse_fallback(laws, cfg)
            widths = start_widths(space, laws, cfg)
            log(f"descent iteration {it}/{cfg.iterations}: start from {widths} ({space.params(widths):,} params)")
            torch.manual_seed(cfg.seed * 1000 + it)
            pruner = TaylorPruner(space, widths, k=cfg.k, interval=cfg.interval, warmup_epochs=cfg.warmup_epochs,
                                  fraction=cfg.prune_fraction, physical=cfg.physical,
                                  stop_at_last_channel=not cfg.prune_past_one)
            tc = cfg.train_config()
            tc.seed = cfg.seed * 1000 + it
            ckpt = out / f"iteration_{it:02d}.ckpt"
            trainer = Trainer(space.build(widths), splits, tc, callbacks=[pruner], checkpoint=ckpt,
                              progress=progress, log=log, desc=f"descent {it}/{cfg.iterations}")
            t0 = time.time()
            trainer.fit()
            if not pruner.done:
                raise NeuralscaleError(f"iteration {it} stopped after {cfg.max_epochs} epochs before pruning "
                                       f"{cfg.prune_fraction:.0%} of the channels; raise --max-epochs")
            traj = out / f"iteration_{it:02d}.csv"
            write_trajectory(traj, space, pruner.rows, pruner.row_steps)
            law = _pruning_law(space, pruner, it)
            val = trainer.history[-1]["val_acc"] if trainer.history else None
            entry = {**law.to_dict(), "start_widths": widths, "final_widths": pruner.current,
                     "half_widths": pruner.half_widths or pruner.current, "half_reached": pruner.half_widths is not None,
                     "epochs": trainer.epoch, "pruning_steps": pruner.pruning_steps, "physical": pruner.physical,
                     "stop_reason": pruner.stop_reason, "notes": pruner.notes, "final_val_acc": val}
            if law.fallback:
                entry["fallback_reason"] = law.note
            laws.append(entry)
            atomic_write_json(out / "fits.json", {"model": space.name, "dataset": space.info.name, "laws": laws})
            ckpt.unlink(missing_ok=True)
            log(f"descent iteration {it}/{cfg.iterations}: {len(pruner.rows)} trajectory rows, "
                f"{pruner.pruning_steps} pruning steps, {trainer.epoch} epochs, {time.time() - t0:.0f} s; "
                f"{pruner.stop_reason}")
            if law.fallback:
                log(f"WARNING: {fallback_message(entry)}")
        _refuse_fallback(laws, cfg)
    finally:
        log_file.close()
    return [ScalingLaw.from_dict(d) for d in laws]


def law_from(source: str | Path, space: WidthSpace, iteration: int | None = None) -> ScalingLaw:
    """A law from a descent directory (its fits.json) or a fit JSON file."""
    path = Path(source)
    if path.is_dir():
        laws = load_laws(path)
        if not laws:
            raise NeuralscaleError(f"{path} holds no finished descent iteration")
        if iteration is None:
            d = laws[-1]
        else:
            found = [d for d in laws if d.get("iteration") == iteration]
            if not found:
                raise NeuralscaleError(f"{path} has no iteration {iteration} (it has 1 to {len(laws)})")
            d = found[0]
        law = ScalingLaw.from_dict(d)
    else:
        law = ScalingLaw.load(path)
    law.check_space(space)
    return law


def morphnet_widths(source: str | Path, space: WidthSpace, fraction: float = 0.5) -> list[int]:
    """The MorphNet (Taylor-FO) configuration: iteration 1's widths once `fraction` of channels are pruned.

    The fraction is of the widths iteration 1 started from (a descent's
    `--base-ratio` start, as fits.json records it), else of the base widths.
    fits.json records the widths at 50% as the original's separate `--morph`
    run (pruning capped at 50%) would end; where pruning ended before 50%, the
    widths at its end, which is where that run would have stopped too.  A
    trajectory CSV alone only has rows once every layer has lost a channel.
    """
    path = Path(source)
    traj = path / "iteration_01.csv" if path.is_dir() else path
    if not traj.exists():
        raise NeuralscaleError(f"{traj} does not exist; run a descent (or --prune-fraction 0.5 --iterations 1) first")
    start = space.base_widths
    if path.is_dir():
        first = [d for d in load_laws(path) if d.get("iteration") == 1 and d.get("start_widths")]
        if first:
            start = first[0]["start_widths"]
            if fraction == 0.5 and first[0].get("half_widths"):
                return list(first[0]["half_widths"])
    rows = read_trajectory(traj, space).rows
    total = sum(start)
    if rows and sum(rows[0]) <= (1 - fraction) * total:
        raise NeuralscaleError(f"{traj} starts after {fraction:.0%} of the channels were already pruned "
                               "(rows begin once every layer has lost a channel); rerun the descent to record it")
    for row in rows:
        if sum(row) <= (1 - fraction) * total:
            return row
    raise NeuralscaleError(f"{traj} never reaches {fraction:.0%} of the channels pruned")
