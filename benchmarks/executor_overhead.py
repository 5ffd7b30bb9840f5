"""Overhead of each sweep executor on tiny runs, in one process.

The same tiny sweep (VGG11 at 1/32 width on 128 synthetic images, one epoch,
one CPU thread per run) runs with the sequential executor, local workers and
Ray (a local cluster started here; its start-up is timed separately).  For
each it prints the sweep's wall time, the time the runs themselves measured
(`wall_s` in their records), and the overhead per run:

    overhead per run = (sweep wall time x concurrent slots - sum of run times) / runs

i.e. what an executor adds to each run (process start, imports, scheduling,
record I/O) beyond the run's own work.  With more slots than cores the runs
slow each other down, so the parallel executors use as many slots as cores.

    python benchmarks/executor_overhead.py [--runs 8] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from neuralscale.executors import get_executor
from neuralscale.store import load_records
from neuralscale.sweep import SweepConfig, run_sweep


def sweep_config(runs: int) -> SweepConfig:
    return SweepConfig(model="vgg11", dataset="synthetic", methods=["uniform"], ratios=[0.03125],
                       seeds=list(range(runs)), data={"train": 128, "test": 32},
                       train={"epochs": 1, "batch_size": 32, "device": "cpu", "lr": 0.05, "momentum": 0.9})


def measure(name: str, executor, runs: int, slots: int, root: Path) -> dict:
    out = root / name
    t0 = time.perf_counter()
    run_sweep(sweep_config(runs), out, progress=False, executor=executor)
    wall = time.perf_counter() - t0
    records = load_records(out)
    assert len(records) == runs and all(r["status"] == "finished" for r in records), name
    inside = sum(r["wall_s"] for r in records)
    return {"executor": name, "slots": slots, "runs": runs, "wall_s": wall, "runs_s": inside,
            "overhead_per_run_s": (wall * slots - inside) / runs}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=8)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    cores = os.cpu_count() or 1
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        results.append(measure("sequential", get_executor("sequential", threads=1), args.runs, 1, root))
        results.append(measure("local", get_executor("local", workers=cores, threads=1), args.runs, cores, root))
        try:
            import ray
        except ImportError:
            print("ray: not installed (pip install 'neuralscale[ray]'); skipped", file=sys.stderr)
        else:
            t0 = time.perf_counter()
            ray.init(num_cpus=cores, include_dashboard=False, log_to_driver=False, logging_level="error")
            start = time.perf_counter() - t0
            r = measure("ray", get_executor("ray", cpus_per_run=1, threads=1), args.runs, cores, root)
            r["cluster_start_s"] = start
            results.append(r)
            ray.shutdown()
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"{args.runs} tiny runs (VGG11 at 1/32 width, 128 images, 1 epoch, 1 thread each) on {cores} cores")
    print(f"{'executor':<11} {'slots':>5} {'wall s':>8} {'runs s':>8} {'overhead/run s':>15}")
    for r in results:
        extra = f"   (+ {r['cluster_start_s']:.1f} s to start the local Ray cluster)" if "cluster_start_s" in r else ""
        print(f"{r['executor']:<11} {r['slots']:>5} {r['wall_s']:>8.1f} {r['runs_s']:>8.1f} "
              f"{r['overhead_per_run_s']:>15.2f}{extra}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
