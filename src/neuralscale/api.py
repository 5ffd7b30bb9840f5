"""The Python API behind the CLI: each function does one whole job."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch

from .data import load as load_dataset
from .data.base import Splits
from .descent import is_descent_dir
from .errors import NeuralscaleError
from .records import exclusive
from .validate import check_data
from .space import WidthSpace, space as make_space
from .train import TrainConfig


def resolve_widths(space: WidthSpace, widths: Sequence[int] | None = None, ratio: float | None = None) -> list[int]:
    if widths is not None and ratio is not None:
        raise NeuralscaleError("give either widths or a ratio, not both")
    if widths is not None:
        return space.validate(widths)
    return space.uniform(1.0 if ratio is None else ratio)


def load_splits(dataset: str, config: TrainConfig, data_dir: str | None = None,
                subset: dict | None = None, tinyimagenet_split: str = "official") -> Splits:
    data = load_dataset(dataset, data_dir, tinyimagenet_split=tinyimagenet_split)
    splits = data.split(config.val_fraction, config.split_seed)
    if subset:
        splits = splits.subset(subset.get("train"), subset.get("test"), seed=config.split_seed)
    return splits


def train(model: str | WidthSpace, dataset: str, *, widths: Sequence[int] | None = None,
          ratio: float | None = None, config: TrainConfig | None = None, data_dir: str | None = None,
          out_dir: str | Path | None = None, subset: dict | None = None, splits: Splits | None = None,
          progress: bool = True, convcut: bool = False, latency_batches: Sequence[int] = ()) -> dict:
    """Train one network from scratch and return its run record (see runs.py).

    With `out_dir`, the record (record.json), per-epoch metrics (metrics.csv)
    and a checkpoint are written there; calling again resumes an interrupted
    run and returns a finished one's record without training.
    """
    from .runs import RunSpec, execute

    config = config or TrainConfig()
    check_data({k: v for k, v in (subset or {}).items() if v is not None})
    space = model if isinstance(model, WidthSpace) else make_space(model, dataset, convcut=convcut, data_dir=data_dir)
    widths = resolve_widths(space, widths, ratio)
    if splits is None:
        splits = load_splits(dataset, config, data_dir, subset)
    spec = RunSpec(model=space.name, dataset=space.info.name, method="explicit", config=config.to_dict(),
                   widths=widths, convcut=convcut, data={k: v for k, v in (subset or {}).items() if v is not None},
                   budget={"metric": "params", "value": space.params(widths)}, latency_batches=tuple(latency_batches))
    if out_dir is None:
        return execute(spec, None, space=space, splits=splits, progress=progress, raise_errors=True)
    if is_descent_dir(out_dir):
        raise NeuralscaleError(f"{out_dir} is a descent directory; give the run a directory of its own")
    with exclusive(out_dir, "run directory"):
        return execute(spec, out_dir, space=space, splits=splits, progress=progress, raise_errors=True)


METHODS = ("uniform", "morphnet", "neuralscale")


def scale(space: WidthSpace, method: str, metric: str, budget: float, *, source: str | Path | None = None,
          iteration: int | None = None, min_width: int = 1, multiple: int = 1, device: str = "cpu",
          batch_size: int = 1) -> dict:
    """Widths of `method` for a budget.  metric: ratio | params | macs | latency (ms)."""
    from .descent import law_from, morphnet_widths
    from .scaling import solve, uniform_law

    if method not in METHODS:
        raise NeuralscaleError(f"unknown method {method!r}; choose one of: {', '.join(METHODS)}")
    if metric == "ratio":
        if method == "uniform" and min_width == 1 and multiple == 1:
            widths = space.uniform(budget)
            p = space.params(widths)
            return {"method": method, "widths": widths, "params": p, "macs": space.macs(widths),
                    "metric": "params", "budget": p, "achieved": p, "rel_error": 0.0}
        metric, budget = "params", space.params(space.uniform(budget))
    if method == "uniform":
        law = uniform_law(space, space.base_widths)
    else:
        if source is None:
            raise NeuralscaleError(f"method {method} needs --from DESCENT_DIR" + (" or FIT.json" if method == "neuralscale" else ""))
        law = law_from(source, space, iteration) if method == "neuralscale" else \
            uniform_law(space, morphnet_widths(source, space), note="morphnet")
    sol = solve(law, space, budget, metric, min_width=min_width, multiple=multiple, device=device, batch_size=batch_size)
    return {"method": method, "widths": sol.widths, "params": space.params(sol.widths), "macs": space.macs(sol.widths),
            "metric": metric, "budget": sol.budget, "achieved": sol.achieved, "rel_error": sol.rel_error,
            "iteration": law.iteration}


def descend(model: str | WidthSpace, dataset: str, out_dir: str | Path, config=None, *, data_dir: str | None = None,
            convcut: bool = False, subset: dict | None = None, splits: Splits | None = None, progress: bool = True,
            plots: bool = False):
    """Run or continue an architecture descent; returns the laws of every finished iteration."""
    from .descent import DescentConfig, descend as run_descent

    check_data({k: v for k, v in (subset or {}).items() if v is not None})
    space = model if isinstance(model, WidthSpace) else make_space(model, dataset, convcut=convcut, data_dir=data_dir)
    config = (config or DescentConfig()).resolve(space)
    if splits is None:  # the whole training set unless config.val_fraction says otherwise
        splits = load_splits(dataset, config.train_config(), data_dir, subset)
    laws = run_descent(space, splits, out_dir, config, progress=progress)
    if plots:
        from .plots import descent_figures
        descent_figures(out_dir, space.rebased(space.uniform(config.base_ratio)) if config.base_ratio != 1 else space)
    return laws
