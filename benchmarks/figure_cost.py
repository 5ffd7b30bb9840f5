"""What a descent's figures cost in a new process: neuralscale's plain-text log labels against matplotlib's own.

A command that draws figures (`descend` at its end, `report`) starts with nothing of matplotlib's text machinery
built. This script descends once (VGG11 on synthetic data at 1/16 width, two iterations, a few seconds), then,
round after round, starts a new process for each labelling, side by side: it imports matplotlib, draws one warm-up
figure (as tests/cli_zygote.py does before forking commands), and times `descent_figures` (the growth figure's
two log axes, the heatmap's panels) in CPU seconds of that process:

- plain:    as neuralscale draws them (figures._log_scale: matplotlib's ticks and labels, in plain text);
- mathtext: the same figures with matplotlib's own log formatters (`$\\mathdefault{10^{4}}$`, through mathtext).

    python benchmarks/figure_cost.py [--rounds 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import io, json, os, sys, time
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
fig = plt.figure(); fig.text(0.5, 0.5, "warm"); fig.savefig(io.BytesIO(), format="png"); plt.close(fig)
import neuralscale as ns
from neuralscale import figures
if sys.argv[3] == "mathtext":  # matplotlib's own log formatters, as before neuralscale wrote the labels itself
    figures._log_scale = lambda ax, which: getattr(ax, f"set_{which}scale")("log")
space = ns.space("vgg11", "synthetic")
t = time.process_time()
figures.descent_figures(sys.argv[1], space, dest=sys.argv[2])
print(json.dumps(time.process_time() - t))
"""


def descend(where: Path) -> None:
    import neuralscale as ns
    cfg = ns.DescentConfig(iterations=2, warmup_epochs=1, k=3, interval=2, prune_fraction=0.8, batch_size=64,
                           base_ratio=0.0625, prune_past_one=True, allow_fallback=True, device="cpu")
    ns.descend("vgg11", "synthetic", where, cfg, subset={"train": 256}, progress=False)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5, help="new processes per labelling (default 5)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="ns-figure-cost-") as tmp:
        tmp = Path(tmp)
        descend(tmp / "descent")
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        times: dict[str, list[float]] = {"plain": [], "mathtext": []}
        for r in range(args.rounds):
            for mode in (("plain", "mathtext") if r % 2 == 0 else ("mathtext", "plain")):
                dest = tmp / f"{mode}{r}"
                dest.mkdir()
                out = subprocess.run([sys.executable, "-c", CHILD, str(tmp / "descent"), str(dest), mode],
                                     capture_output=True, text=True, env=env, check=True)
                times[mode].append(float(out.stdout.strip().splitlines()[-1]))
    med = {m: statistics.median(v) for m, v in times.items()}
    print("a descent's two figures, CPU seconds in a new process (median of %d):" % args.rounds)
    for mode, v in times.items():
        print(f"  {mode:8s} {med[mode]:.3f}  ({', '.join(f'{x:.3f}' for x in v)})")
    print(f"  plain / mathtext: {med['plain'] / med['mathtext']:.2f}")
    if args.json:
        print(json.dumps({"rounds": times, "median": med}))


if __name__ == "__main__":
    main()
