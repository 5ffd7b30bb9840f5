"""How long a new .venv takes: `make venv`'s tools/install_venv.py (pip resolves once, parallel pip processes
unpack the wheels) against what it ran before, `pip install --upgrade pip` and one plain
`pip install --no-compile -e .[test]` (the reference), side by side; and install_venv with `--jobs 1` (the same
steps in one process), so that the parallel unpacking's own share is seen apart from the rest.

Each builds a new virtual environment next to the repository (about 6 GB each, one at a time, deleted after),
from the same pip configuration, the order of the three turned round each round; the page cache is dropped
before each where this user may (root), so that none reads wheels another brought into memory. The
environments are compared (`pip list`): the same distributions at the same versions.

    python benchmarks/setup_speed.py [--rounds 2] [--extras test]
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
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# as `make` runs it (its Makefile unexports this): Python writes the bytecode of what it imports
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def drop_caches() -> bool:
    subprocess.run(["sync"])
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def timed(commands: list[list[str]], venv: Path) -> tuple[float, dict[str, str]]:
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, env=ENV)
    python = str(venv / "bin" / "python")
    t = time.monotonic()
    for command in commands:
        r = subprocess.run([python if c == "PYTHON" else c for c in command], capture_output=True, text=True,
                           cwd=ROOT, env=ENV)
        if r.returncode != 0:
            last = (r.stderr.strip().splitlines() or ["no message"])[-1]
            sys.exit(f"setup_speed: {' '.join(command)} failed: {last}")
    seconds = time.monotonic() - t
    check = subprocess.run([python, "-c", "import neuralscale, torch, torchvision"], capture_output=True, text=True,
                           env=ENV)
    if check.returncode != 0:
        sys.exit(f"setup_speed: the environment does not import: {(check.stderr.strip().splitlines() or [''])[-1]}")
    listed = subprocess.run([python, "-m", "pip", "list", "--format=json"], capture_output=True, text=True, env=ENV)
    return seconds, {d["name"].lower(): d["version"] for d in json.loads(listed.stdout)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--extras", default="test")
    args = p.parse_args()
    tool = str(ROOT / "tools" / "install_venv.py")
    ways = {  # the reference: what `make venv` ran until the twenty-sixth session
        "one pip install (reference)": [["PYTHON", "-m", "pip", "install", "-q", "--upgrade", "pip"],
                                        ["PYTHON", "-m", "pip", "install", "-q", "--no-compile", "-e",
                                         f".[{args.extras}]"]],
        "install_venv --jobs 1": [["PYTHON", tool, "--extras", args.extras, "--jobs", "1"]],
        "install_venv (make venv)": [["PYTHON", tool, "--extras", args.extras]],
    }
    times: dict[str, list[float]] = {k: [] for k in ways}
    lists: dict[str, dict[str, str]] = {}
    names = list(ways)
    for i in range(args.rounds):
        for name in names[i % len(names):] + names[:i % len(names)]:
            with tempfile.TemporaryDirectory(dir=ROOT.parent) as tmp:
                cold = drop_caches()
                seconds, lists[name] = timed(ways[name], Path(tmp) / "venv")
                times[name].append(seconds)
                print(f"round {i + 1}: {name}: {seconds:.1f} s{' (page cache dropped)' if cold else ''}", flush=True)
    ref = lists[names[0]]
    for name in names[1:]:  # the same distributions (wheel is the project's build requirement, installed here)
        differ = {k for k in ref.keys() | lists[name].keys() if ref.get(k) != lists[name].get(k)} - {"wheel"}
        print(f"{name}: {'the same distributions and versions as the reference' if not differ else differ}")
    base = statistics.median(times[names[0]])
    print()
    for name in names:
        m = statistics.median(times[name])
        print(f"{name}: median {m:.1f} s of {', '.join(f'{t:.1f}' for t in times[name])}; {base / m:.2f}x the "
              "reference")


if __name__ == "__main__":
    main()
