"""The result tables of studies/README.md, rebuilt by `neuralscale report` from each store's committed records.

A table in the README sits between two markers naming its store (relative to this folder):

    <!-- report: fmnist-vgg11/params -->
    | method | budget | ... |
    <!-- /report -->

    python studies/tables.py           rewrite every marked table from the committed finished records
    python studies/tables.py --check   exit 1 (naming the store) where a table differs from its report

Only what the last commit holds counts (a study may be running in this checkout, with unfinished, uncommitted or
newly finished runs), and of that only finished runs: the table is what any clone of the repository rebuilds. tests/test_studies.py runs
the check.
"""

from __future__ import annotations

import argparse
import io
import json
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
README = HERE / "README.md"
BLOCK = re.compile(r"(<!-- report: (?P<store>[^ ]+) -->\n)(?P<table>.*?)(<!-- /report -->)", re.S)


def _git(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True)


def committed_stores() -> list[Path]:
    """Every run store of every study in the last commit (all of them outside a git checkout)."""
    tree = _git(["ls-tree", "-r", "--name-only", "HEAD", "--", "."], HERE)  # names relative to HERE
    if tree.returncode == 0 and tree.stdout:
        names = tree.stdout.decode().splitlines()
        return sorted((HERE / n).parent for n in names if re.fullmatch(r"[^/]+/[^/]+/sweep\.json", n))
    return sorted(p.parent for p in HERE.glob("*/*/sweep.json"))


def committed_copy(study: Path, dest: Path) -> Path:
    """A study folder as the last commit holds it (as it is, less checkpoints, outside a git checkout), with
    only the finished runs of each store; its stores keep their places (a store may use another's descent).

    Not the working tree: a study running here changes its files (a run committed unfinished finishes)."""
    top = _git(["rev-parse", "--show-toplevel"], study)
    if top.returncode == 0:
        root = Path(top.stdout.decode().strip()).resolve()
        prefix = study.resolve().relative_to(root).as_posix()
        archive = _git(["archive", "--format=tar", "HEAD", prefix], root)
        if archive.returncode != 0:
            raise SystemExit(f"tables.py: git archive HEAD {prefix} failed: {archive.stderr.decode().strip()}")
        with tempfile.TemporaryDirectory() as tmp:
            with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
                tar.extractall(tmp, filter="data")
            shutil.move(str(Path(tmp) / prefix), dest)
    else:
        shutil.copytree(study, dest, ignore=shutil.ignore_patterns("*.pt", "*.ckpt", ".lock", "*.tmp", "log.txt",
                                                                   "report", "weights"))
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
