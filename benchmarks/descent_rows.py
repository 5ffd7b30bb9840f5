"""Trajectory rows and cost of one descent iteration: the original's fixed 10 channels a step against its pace
relative to the network (`pruning.paced_k`, the default), side by side in one process.

For each starting width (a share of the full-width model) and each k rule, one descent iteration runs on the
chosen data with the same seed and settings; printed: k, pruning steps, trajectory rows (what the law is fitted
on), whether the law is a fit, the parameter range of its rows, the epochs and the seconds it took.

    python benchmarks/descent_rows.py --dataset fashionmnist --ratios 0.125 0.25 --seeds 0 [--train-subset N]
        [--interval 50 --batch-size 256 --warmup-epochs 10] [--rules fixed paced] [--json FILE]

The defaults are the descent's own (the original's settings); the demo's are `--train-subset 12000
--batch-size 64 --interval 4 --warmup-epochs 1`.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import neuralscale as ns
from neuralscale.api import load_splits
from neuralscale.descent import DescentConfig, descend


def one(model: str, dataset: str, ratio: float, rule: str, seed: int, args) -> dict:
    base = ns.space(model, dataset)
    cfg = DescentConfig(iterations=1, base_ratio=ratio, seed=seed, device=args.device,
                        k=10 if rule == "fixed" else None, interval=args.interval, batch_size=args.batch_size,
                        warmup_epochs=args.warmup_epochs, allow_fallback=True).resolve(base)
    splits = load_splits(dataset, cfg.train_config(), subset={"train": args.train_subset, "test": 256})
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        laws = descend(base, splits, Path(d) / "d", cfg, progress=False)
        seconds = time.perf_counter() - t0
        it = json.loads((Path(d) / "d" / "fits.json").read_text())["laws"][0]
    law = laws[0]
    return {"model": model, "ratio": ratio, "rule": rule, "k": cfg.k, "seed": seed, "steps": it["pruning_steps"],
            "rows": law.rows, "fit": not law.fallback, "rows_params": [int(t) for t in law.tau_range] or [None, None],
            "epochs": it["epochs"], "seconds": round(seconds, 1), "stop": it["stop_reason"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="vgg11")
    p.add_argument("--dataset", default="fashionmnist")
    p.add_argument("--ratios", type=float, nargs="+", default=[0.125, 0.25])
    p.add_argument("--rules", nargs="+", choices=("fixed", "paced"), default=["fixed", "paced"])
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--train-subset", type=int, default=None)
    p.add_argument("--interval", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--warmup-epochs", type=int, default=10)
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args()
    results = []
    print(f"{'ratio':>6} {'rule':>6} {'k':>3} {'seed':>4} {'steps':>5} {'rows':>5} {'fit':>4} "
          f"{'rows span params':>20} {'epochs':>6} {'s':>7}", flush=True)
    for ratio in args.ratios:
        for seed in args.seeds:
            for rule in args.rules:
                r = one(args.model, args.dataset, ratio, rule, seed, args)
                results.append(r)
                span = "-" if r["rows_params"][0] is None else f"{r['rows_params'][0]:,}-{r['rows_params'][1]:,}"
                print(f"{ratio:>6} {rule:>6} {r['k']:>3} {seed:>4} {r['steps']:>5} {r['rows']:>5} "
                      f"{'yes' if r['fit'] else 'no':>4} {span:>20} {r['epochs']:>6} {r['seconds']:>7}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
