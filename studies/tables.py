"""The result tables of studies/README.md, rebuilt by `neuralscale report` from each store's committed records.

A table in the README sits between two markers naming its store (relative to this folder):

    <!-- report: fmnist-vgg11/params -->
    | method | budget | ... |
    <!-- /report -->

    python studies/tables.py           rewrite every marked table from the committed finished records
    python studies/tables.py --check   exit 1 (naming the store) where a table differs from its report

Only what git tracks counts (a study may be running in this checkout, with unfinished and uncommitted runs), and
of that only finished runs: the table is what any clone of the repository rebuilds. tests/test_studies.py runs
the check.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
README = HERE / "README.md"
BLOCK = re.compile(r"(<!-- report: (?P<store>[^ ]+) -->\n)(?P<table>.*?)(<!-- /report -->)", re.S)


def committed_stores() -> list[Path]:
    """Every run store of every study that git tracks (all of them outside a git checkout)."""
    tracked = subprocess.run(["git", "ls-files", "-z", "*/*/sweep.json"], cwd=HERE, capture_output=True)
    if tracked.returncode == 0 and tracked.stdout:
        return sorted((HERE / name).parent for name in filter(None, tracked.stdout.decode().split("\0")))
    return sorted(p.parent for p in HERE.glob("*/*/sweep.json"))


def committed_copy(study: Path, dest: Path) -> Path:
    """A study folder's git-tracked files (all of it outside a git checkout, less checkpoints), with only the
    finished runs of each store; its stores keep their places (a store may use another's descent)."""
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=study, capture_output=True)  # relative to study
    if tracked.returncode == 0 and tracked.stdout:
        for name in filter(None, tracked.stdout.decode().split("\0")):
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(study / name, dest / name)
    else:
        shutil.copytree(study, dest, ignore=shutil.ignore_patterns("*.pt", "*.ckpt", ".lock", "*.tmp", "log.txt",
                                                                   "report"))
    for run in [p for p in dest.glob("*/runs/*") if p.is_dir()]:
        record = run / "record.json"
        if not record.exists() or json.loads(record.read_text()).get("status") != "finished":
            shutil.rmtree(run)
    return dest


def report_markdown(store: Path) -> str:
    """The report.md of `neuralscale report` on the committed finished records of `store` (a study's store)."""
    with tempfile.TemporaryDirectory() as tmp:
        copy = committed_copy(store.parent, Path(tmp) / store.parent.name) / store.name
        r = subprocess.run([sys.executable, "-m", "neuralscale", "report", str(copy), "--format", "png"],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit(f"tables.py: neuralscale report {store} failed: {r.stderr.strip()}")
        return (copy / "report" / "report.md").read_text()


def report_table(store: Path) -> str:
    """The results table of the report on the committed finished records of `store`."""
    md = report_markdown(store)
    lines = md.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| method |"))
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    return "\n".join(lines[start:end]) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 where a table differs")
    parser.add_argument("--readme", type=Path, default=README, help="the file holding the tables (its stores are "
                        "named relative to this folder)")
    args = parser.parse_args(argv)
    readme = args.readme
    text = readme.read_text()
    stale = []

    def rebuild(m: re.Match) -> str:
        table = report_table(HERE / m["store"])
        if table != m["table"]:
            stale.append(m["store"])
        return m.group(1) + table + m.group(4)

    new = BLOCK.sub(rebuild, text)
    if args.check:
        for store in stale:
            print(f"tables.py: the table of {store} in {readme} is not its report's (run python studies/tables.py)",
                  file=sys.stderr)
        return 1 if stale else 0
    if new != text:
        readme.write_text(new)
    print(f"{len(BLOCK.findall(text))} table(s), {len(stale)} rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main())
