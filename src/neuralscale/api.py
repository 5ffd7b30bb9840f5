"""The Python API behind the CLI: each function does one whole job."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Sequence

import torch

from .data import load as load_dataset
from .data.base import Splits
from .errors import NeuralscaleError
from .records import atomic_write_json, atomic_write_text
from .space import WidthSpace, space as make_space
from .train import TrainConfig, Trainer, environment


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
          progress: bool = True, convcut: bool = False) -> dict:
    """Train one network from scratch and return its record.

    With `out_dir`, the record (record.json), per-epoch metrics (metrics.csv)
    and a checkpoint are written there, and calling again resumes the run.
    """
    config = config or TrainConfig()
    space = model if isinstance(model, WidthSpace) else make_space(model, dataset, convcut=convcut, data_dir=data_dir)
    widths = resolve_widths(space, widths, ratio)
    if splits is None:
        splits = load_splits(dataset, config, data_dir, subset)
    out = Path(out_dir) if out_dir is not None else None
    torch.manual_seed(config.seed)
    net = space.build(widths)
    trainer = Trainer(net, splits, config, checkpoint=out / "checkpoint.pt" if out else None,
                      progress=progress, desc=f"{space.name}")
    t0 = time.time()
    result = trainer.fit()
    record = {
        "kind": "train", "status": "finished", "model": space.name, "dataset": space.info.name,
        "widths": widths, "params": space.params(widths), "macs": space.macs(widths),
        "config": config.to_dict(), "data": splits.sizes(), "summary": result.summary,
        "history": result.history, "wall_s": result.wall_s, "started": t0,
        "environment": environment(trainer.device),
    }
    if out is not None:
        atomic_write_json(out / "record.json", record)
        atomic_write_text(out / "metrics.csv", _csv(result.history))
    return record


def _csv(history: list[dict]) -> str:
    if not history:
        return ""
    keys = list(history[0])
    lines = [",".join(keys)] + [",".join(f"{m[k]:.6g}" if isinstance(m[k], float) else str(m[k]) for k in keys) for m in history]
    return "\n".join(lines) + "\n"
