"""CPU latency at batch 1 of every configuration a study trained, measured together on one quiet machine.

Each run measures its own latency after training, on the machine that trained it and beside whatever else ran
there (other runs, on a GPU machine its CPU under load), so a store's runs may hold latencies of different
hardware that cannot be compared (the report then leaves them out). This measures one network per store, method
and budget (the lowest seed's finished run: a method solved for a budget gives every seed the same network; a
pruning baseline that chooses its widths from training, such as slimming, gives each seed its own, of which only
that one is measured), all in one process, interleaved round by round so that a change in the machine's load
touches every configuration alike, and writes one CSV beside the stores:

    python studies/latency.py studies/fmnist-vgg11/params studies/fmnist-vgg11/macs \\
        --out studies/fmnist-vgg11/latency.csv

Columns: store, label, budget, params, macs, widths, median_ms, p10_ms, p90_ms, rounds, threads, device.
Run it on a machine doing nothing else; the file records where it ran.
"""

from __future__ import annotations

import argparse
import csv
import io
import platform
import statistics
import time
from pathlib import Path

import torch

from neuralscale.records import atomic_write_text
from neuralscale.budget import Budget
from neuralscale.store import budget_key, load_records
from neuralscale.zoo import record_space


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("stores", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (default 1, as the study's runs)")
    parser.add_argument("--rounds", type=int, default=15, help="timed rounds (each times every configuration)")
    parser.add_argument("--calls", type=int, default=20, help="timed calls per configuration and round")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    configs: dict[tuple, dict] = {}
    for store in args.stores:
        for r in sorted(load_records(store), key=lambda r: r.get("seed") or 0):  # the lowest seed's network
            if r["status"] != "finished":
                continue
            key = (store.name, r["label"], budget_key(r))
            configs.setdefault(key, {"store": store.name, "label": r["label"],
                                     "budget": Budget.from_key(budget_key(r)).text, "model": r["model"],
                                     "dataset": r["dataset"], "widths": r["widths"], "params": r["params"],
                                     "macs": r["macs"], "record": r})
    nets = {}
    for key, c in configs.items():
        space = record_space(c["record"])  # the record's network (its convcut, its data's shape)
        nets[key] = (space.build(c["widths"]).eval(), torch.randn(1, *space.info.input_shape))
    times: dict[tuple, list[float]] = {k: [] for k in nets}
    with torch.inference_mode():
        for key, (net, x) in nets.items():  # warm-up
            for _ in range(10):
                net(x)
        for _ in range(args.rounds):
            for key, (net, x) in nets.items():
                t0 = time.perf_counter()
                for _ in range(args.calls):
                    net(x)
                times[key].append((time.perf_counter() - t0) / args.calls * 1000)
    device = f"cpu ({platform.machine()}, {args.threads} threads, {cpu_name()})"
    fields = ["store", "label", "budget", "params", "macs", "widths", "median_ms", "p10_ms", "p90_ms", "rounds",
              "threads", "device"]
    rows = []
    for key, c in configs.items():
        t = sorted(times[key])
        q = statistics.quantiles(t, n=10) if len(t) > 1 else [t[0]] * 9
        rows.append({**{k: c[k] for k in ("store", "label", "budget", "params", "macs")},
                     "widths": ",".join(map(str, c["widths"])), "median_ms": f"{statistics.median(t):.4f}",
                     "p10_ms": f"{q[0]:.4f}", "p90_ms": f"{q[-1]:.4f}", "rounds": len(t),
                     "threads": args.threads, "device": device})
    rows.sort(key=lambda r: (r["store"], r["budget"], r["label"]))
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(args.out, text.getvalue())
    for r in rows:
        print(f"{r['store']:<8} {r['budget']:<16} {r['label']:<16} {int(r['macs']):>11,} MACs "
              f"{int(r['params']):>8,} params  {r['median_ms']} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
