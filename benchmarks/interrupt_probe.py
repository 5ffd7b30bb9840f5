"""Ctrl-C or SIGTERM at many moments of a command's start-up: what the terminal shows and the exit status.

Starts the command again and again in a process group of its own (as a terminal does), sends the signal after a
delay that steps from --from to --to seconds (SIGINT to the whole group, as Ctrl-C; SIGTERM to the command alone,
as `kill`), and counts the outcomes. The contract (docs/RELIABILITY.md): one line on stderr and exit 130 (SIGINT)
or 143 (SIGTERM); a command that finished before the signal exits 0; one killed before Python runs, or after
main() has returned, ends by the signal (-2, -15) with no line. A traceback, two lines, or the line with another
exit status is a failure, listed with its delay. Timing decides where each signal lands: this is a probe, not a
test (tests/test_reliability.py makes each case happen every time with an import hook).

Usage:
    python benchmarks/interrupt_probe.py [--signal SIGINT|SIGTERM] [--from 0.25] [--to 1.9] [--step 0.03]
        [--form module|script] [-- neuralscale arguments (default: info --model vgg11 --dataset synthetic)]
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import signal
import subprocess
import sys
import time


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--signal", choices=("SIGINT", "SIGTERM"), default="SIGINT")
    p.add_argument("--from", dest="start", type=float, default=0.25, help="first delay, seconds (default 0.25)")
    p.add_argument("--to", dest="stop", type=float, default=1.9, help="last delay, seconds (default 1.9)")
    p.add_argument("--step", type=float, default=0.03, help="seconds between delays (default 0.03)")
    p.add_argument("--form", choices=("module", "script"), default="module",
                   help="python -m neuralscale, or the installed `neuralscale` script beside this Python")
    p.add_argument("command", nargs="*", default=["info", "--model", "vgg11", "--dataset", "synthetic"])
    args = p.parse_args()
    script = os.path.join(os.path.dirname(sys.executable), "neuralscale")
    if args.form == "script" and not shutil.which(script):
        p.error(f"no neuralscale script beside {sys.executable}")
    head = [sys.executable, "-m", "neuralscale"] if args.form == "module" else [script]
    sig = getattr(signal, args.signal)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "NEURALSCALE_THREADS": "1"}
    seen, failures = collections.Counter(), []
    steps = int(round((args.stop - args.start) / args.step)) + 1
    for i in range(steps):
        delay = args.start + i * args.step
        proc = subprocess.Popen(head + args.command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                start_new_session=True, env=env)
        time.sleep(delay)
        try:
            os.killpg(proc.pid, sig) if sig == signal.SIGINT else os.kill(proc.pid, sig)
        except ProcessLookupError:
            pass
        _, err = proc.communicate()
        lines = [line for line in err.splitlines() if line.strip()]
        outcome = ("traceback" if "Traceback" in err else f"{len(lines)} line(s)") + f", exit {proc.returncode}"
        seen[outcome] += 1
        if "Traceback" in err or len(lines) > 1 or (lines and proc.returncode not in (130, 143, 2)):
            failures.append(f"  {delay:.2f} s: exit {proc.returncode}: {err.strip()[-300:]!r}")
    print(f"{args.signal}, {args.form} form, {steps} delays from {args.start:g} to {args.stop:g} s: "
          + "; ".join(f"{n}x {k}" for k, n in seen.most_common()))
    print(f"failures: {len(failures)}", *failures, sep="\n")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
