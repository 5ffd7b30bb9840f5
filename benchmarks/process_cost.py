"""What a `neuralscale` command's process costs around its work: the collector as neuralscale leaves it against
Python's default, side by side.

Round after round, each command line runs in a new process twice, alternated:

- default:   Python's cyclic collector as it comes (what every command did before collector.py): on during the
             imports, walking torch's objects at every full collection and at the interpreter's end;
- neuralscale: as the command runs now (collector.paused while the package imports torch, collector.own_process
             after it and at exit).

Both start the same way (`python -c` that calls the CLI's main with argv[0] `neuralscale`, so that the package
takes itself for the command); the default is had by making gc.disable and gc.freeze do nothing before the import.
Each process's wall time and CPU time (user + system, from wait4) are printed, medians of the rounds, and the
ratio, and the time from its last atexit handler to its end (the interpreter's teardown).

    python benchmarks/process_cost.py [--rounds 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

CHILD = r"""
import atexit, gc, os, sys, time
if sys.argv[1] == "default":
    gc.disable = gc.freeze = lambda *a: None  # the collector as Python has it, whatever neuralscale asks
fd = int(os.environ.pop("PROCESS_COST_FD"))
atexit.register(lambda: os.write(fd, repr(time.time()).encode()))  # registered first: runs last of the handlers
sys.argv = ["neuralscale", *sys.argv[2:]]
from neuralscale.cli import main
sys.exit(main())
"""

# (label, argv): the command with the least work, one with torchvision's models, a short descent
COMMANDS = [
    ("info vgg11", ["info", "--model", "vgg11", "--dataset", "synthetic"]),
    ("info resnet18", ["info", "--model", "torchvision:resnet18", "--dataset", "synthetic"]),
    ("descend", ["descend", "--model", "vgg11", "--dataset", "synthetic", "--base-ratio", "0.0625",
                 "--iterations", "1", "--warmup-epochs", "1", "--prune-interval", "1", "--train-subset", "256",
                 "--batch-size", "64", "--quiet", "--out", "{tmp}/d-{n}"]),
]


def one(variant: str, argv: list[str]) -> dict:
    r, w = os.pipe()
    env = {**os.environ, "NEURALSCALE_THREADS": "1", "PROCESS_COST_FD": str(w)}
    t = time.time()
    with tempfile.TemporaryFile("w+") as err_file:  # a file: a pipe left unread until the end could fill
        proc = subprocess.Popen([sys.executable, "-c", CHILD, variant, *argv], stdout=subprocess.DEVNULL,
                                stderr=err_file, pass_fds=(w,), env=env, text=True)
        os.close(w)
        _, status, usage = os.wait4(proc.pid, 0)
        end = time.time()
        mark = os.read(r, 64)
        os.close(r)
        err_file.seek(0)
        err = err_file.read()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"process_cost: {variant} {' '.join(argv)} failed: {err.strip().splitlines()[-1:]}")
    return {"wall_s": end - t, "cpu_s": usage.ru_utime + usage.ru_stime,
            "teardown_s": end - float(mark) if mark else None}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = p.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        n = 0
        for label, argv in COMMANDS:
            got = {"default": [], "neuralscale": []}
            for _ in range(args.rounds):
                for variant in ("default", "neuralscale"):
                    n += 1
                    got[variant].append(one(variant, [a.format(tmp=tmp, n=n) for a in argv]))
            row = {"command": label}
            for variant, runs in got.items():
                for key in ("wall_s", "cpu_s", "teardown_s"):
                    row[f"{variant}_{key}"] = statistics.median(r[key] for r in runs)
            row["cpu_ratio"] = row["neuralscale_cpu_s"] / row["default_cpu_s"]
            rows.append(row)
            if not args.json:
                print(f"{label:14s} default: {row['default_wall_s']:.2f} s wall, {row['default_cpu_s']:.2f} CPU-s, "
                      f"teardown {row['default_teardown_s']:.2f} s | neuralscale: {row['neuralscale_wall_s']:.2f} s "
                      f"wall, {row['neuralscale_cpu_s']:.2f} CPU-s, teardown {row['neuralscale_teardown_s']:.2f} s"
                      f" | CPU ratio {row['cpu_ratio']:.2f}  (medians of {args.rounds})", flush=True)
    if args.json:
        print(json.dumps({"rounds": args.rounds, "python": sys.version.split()[0], "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
