"""Architecture descent: prune, fit a scaling law, rebuild from it, repeat.

Iteration 1 prunes the base widths; iteration k builds a fresh network from
law k-1 solved at the base parameter count and prunes it again.  Everything
lives in one directory:

    config.json          the descent's configuration (a rerun must match it)
    iteration_NN.csv     the trajectory of iteration NN
    fits.json            {"laws": [...]}: alpha, beta, R^2 per finished iteration
    iteration_NN.ckpt    the running iteration's checkpoint (removed when it finishes)
    log.txt              one line per epoch and per iteration

Running the same command again continues after the last finished iteration
(and inside an unfinished one, from its last epoch); nothing finished is redone.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from .data.base import Splits
from .errors import NeuralscaleError
from .prune import TaylorPruner
from .records import atomic_write_json
from .scaling import ScalingLaw, fit, read_trajectory, solve, uniform_law, write_trajectory
from .space import WidthSpace
from .train import TrainConfig, Trainer


@dataclass
class DescentConfig:
    """How a descent prunes (the paper's defaults)."""

    iterations: int = 15
    warmup_epochs: int = 10
    prune_fraction: float = 0.95
    k: int = 10  # channels pruned per step
    interval: int = 50  # mini-batches between steps (100 for TinyImageNet in the paper)
    batch_size: int = 256
    lr: float = 0.1
    momentum: float = 0.5
    weight_decay: float = 5e-4
    add10: bool = False  # the original's +10 channels for layers under 10 when rebuilding
    base_ratio: float = 1.0  # start from the base widths times this (a smaller network on small machines)
    physical: bool = True
    seed: int = 0
    device: str = "auto"
    max_epochs: int = 1000  # a safety cap; pruning normally ends first
    eval_every: int = 0  # evaluate val/test every N epochs while pruning; 0: only when pruning ends

    def __post_init__(self):
        if self.iterations < 1:
            raise NeuralscaleError(f"iterations must be at least 1, got {self.iterations}")
        if not 0 < self.prune_fraction < 1:
            raise NeuralscaleError(f"prune fraction must be between 0 and 1, got {self.prune_fraction}")
        if self.k < 1 or self.interval < 1:
            raise NeuralscaleError("channels per step and steps between prunings must be at least 1")
        if self.warmup_epochs < 0:
            raise NeuralscaleError(f"warm-up epochs must be at least 0, got {self.warmup_epochs}")

    def train_config(self) -> TrainConfig:
        return TrainConfig(epochs=self.max_epochs, batch_size=self.batch_size, lr=self.lr, momentum=self.momentum,
                           weight_decay=self.weight_decay, schedule="prune", warmup_epochs=self.warmup_epochs,
                           seed=self.seed, device=self.device, eval_every=self.eval_every)


def load_laws(out: Path) -> list[dict]:
    path = out / "fits.json"
    if not path.exists():
        return []
    try:
        return json.loads(path.read_text())["laws"]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise NeuralscaleError(f"{path} is damaged ({e}); remove it and the later iterations to redo them") from None


def start_widths(space: WidthSpace, laws: list[dict], cfg: DescentConfig) -> list[int]:
    """Iteration 1: the base widths; later: the last law solved at the base parameter count."""
    if not laws:
        return list(space.base_widths)
    law = ScalingLaw.from_dict(laws[-1])
    widths = solve(law, space, space.params(space.base_widths)).widths
    if cfg.add10:
        widths = [w + 10 if w < 10 else w for w in widths]
    return widths


def descend(space: WidthSpace, splits: Splits, out_dir: str | Path, config: DescentConfig | None = None, *,
            progress: bool = True, data_note: dict | None = None) -> list[ScalingLaw]:
    """Run (or continue) an architecture descent in `out_dir`; returns the laws of all iterations."""
    cfg = config or DescentConfig()
    if cfg.base_ratio != 1.0:
        space = space.rebased(space.uniform(cfg.base_ratio))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    identity = {"model": space.name, "dataset": space.info.name, "descent": asdict(cfg), "data": data_note or splits.sizes()}
    cfg_path = out / "config.json"
    if cfg_path.exists():
        old = json.loads(cfg_path.read_text())
        mismatch = [k for k in ("model", "dataset", "data") if old.get(k) != identity[k]]
        mismatch += [k for k in identity["descent"] if k not in ("iterations", "eval_every") and old.get("descent", {}).get(k) != identity["descent"][k]]
        if mismatch:
            raise NeuralscaleError(f"{out} holds a descent with another configuration ({', '.join(mismatch)}); "
                                   "use a new --out directory")
    atomic_write_json(cfg_path, identity)
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
            widths = start_widths(space, laws, cfg)
            log(f"descent iteration {it}/{cfg.iterations}: start from {widths} ({space.params(widths):,} params)")
            torch.manual_seed(cfg.seed * 1000 + it)
            pruner = TaylorPruner(space, widths, k=cfg.k, interval=cfg.interval, warmup_epochs=cfg.warmup_epochs,
                                  fraction=cfg.prune_fraction, physical=cfg.physical)
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
            if pruner.rows:
                law = fit(space, pruner.rows, iteration=it)
            else:  # some layer never lost a channel before pruning stopped
                law = uniform_law(space, widths, note="no trajectory rows (a layer never lost a channel); "
                                                      "uniform scaling of the start widths")
                law.iteration = it
            half = next((r for r in pruner.all_rows if sum(r) <= 0.5 * sum(widths)), None)
            entry = {**law.to_dict(), "start_widths": widths, "final_widths": pruner.current, "half_widths": half,
                     "epochs": trainer.epoch, "pruning_steps": pruner.pruning_steps, "physical": pruner.physical,
                     "notes": pruner.notes, "wall_s": time.time() - t0,
                     "final_val_acc": trainer.history[-1]["val_acc"] if trainer.history else None}
            laws.append(entry)
            atomic_write_json(out / "fits.json", {"model": space.name, "dataset": space.info.name, "laws": laws})
            ckpt.unlink(missing_ok=True)
            log(f"descent iteration {it}/{cfg.iterations}: {len(pruner.rows)} trajectory rows, "
                f"{pruner.pruning_steps} pruning steps, {trainer.epoch} epochs, {entry['wall_s']:.0f} s"
                + (f"; {law.note}" if law.note else ""))
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
    fits.json records the widths at 50% from every pruning step; a trajectory
    CSV alone only has rows once every layer has lost a channel.
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
