"""How long a new .venv takes: `make venv`'s tools/install_venv.py (pip resolves once, parallel pip processes
unpack the wheels) against what it ran before, `pip install --upgrade pip` and one plain
`pip install --no-compile -e .[test]` (the reference), side by side.

Each builds a new virtual environment in a temporary folder (about 6 GB each, one at a time, deleted after) from
the same pip configuration; the page cache is dropped before each where this user may (root), so that neither
reads wheels the other brought into memory.

    python benchmarks/setup_speed.py [--rounds 1] [--extras test]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def drop_caches() -> bool:
    subprocess.run(["sync"])
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def timed(commands: list[list[str]], venv: Path) -> float:
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    t = time.monotonic()
    for command in commands:
        r = subprocess.run([python if c == "PYTHON" else c for c in command], capture_output=True, text=True,
                           cwd=ROOT)
        if r.returncode != 0:
            sys.exit(f"setup_speed: {' '.join(command)} failed: {r.stderr.strip().splitlines()[-1:]}")
    seconds = time.monotonic() - t
    check = subprocess.run([python, "-c", "import neuralscale, torch, torchvision"], capture_output=True, text=True)
    if check.returncode != 0:
        sys.exit(f"setup_speed: the environment does not import: {check.stderr.strip().splitlines()[-1:]}")
    return seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--extras", default="test")
    args = p.parse_args()
    ways = {  # the reference: what `make venv` ran until the twenty-sixth session
        "one pip install (reference)": [["PYTHON", "-m", "pip", "install", "-q", "--upgrade", "pip"],
                                        ["PYTHON", "-m", "pip", "install", "-q", "--no-compile", "-e",
                                         f".[{args.extras}]"]],
        "tools/install_venv.py": [["PYTHON", str(ROOT / "tools" / "install_venv.py"), "--extras", args.extras]],
    }
    times: dict[str, list[float]] = {k: [] for k in ways}
    for _ in range(args.rounds):
        for name, command in ways.items():
            with tempfile.TemporaryDirectory(dir=ROOT.parent) as tmp:
                cold = drop_caches()
                times[name].append(timed(command, Path(tmp) / "venv"))
                print(f"{name}: {times[name][-1]:.1f} s{' (page cache dropped)' if cold else ''}", flush=True)
    ref, new = (min(v) for v in times.values())
    print(f"\nbest of {args.rounds}: one pip install {ref:.1f} s, install_venv {new:.1f} s: {ref / new:.2f}x")


if __name__ == "__main__":
    main()
