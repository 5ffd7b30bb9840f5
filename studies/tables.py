"""The result tables of studies/README.md, rebuilt by `neuralscale report` from each store's committed records.

A table in the README sits between two markers naming its store (relative to this folder):

    <!-- report: fmnist-vgg11/params -->
    | method | budget | ... |
    <!-- /report -->

or its descent's iterations (`<!-- report: fmnist-vgg11-regime/regime | descent -->`; `| descent macs` where
its report has descents of several objectives), or its laws against their ablations (`| ablations`), or how
each method's gap to uniform changes from another store's runs to this store's, paired by seed (`| gap change
fmnist-vgg11-regime/regime`: the same runs trained 20 epochs against 60), or runs of one method against another's,
paired by seed, from any stores (`STORE:LABEL - STORE:LABEL; ... | paired | BUDGET`), or one row
(a method at a budget) from each of several stores, side by side with its widths (the method may name
alternatives, separated by commas, for a method labelled differently in some stores):

    <!-- report: fmnist-vgg11/warmup0 fmnist-vgg11/warmup2 fmnist-vgg11/params | neuralscale@1, neuralscale@1 (fallback) | ratio 0.0625 -->

    python studies/tables.py           rewrite every marked table from the committed finished records
    python studies/tables.py --check   exit 1 (naming the table) where a table differs from its reports

Only what the last commit holds counts (a study may be running in this checkout, with unfinished, uncommitted or
newly finished runs), and of that only finished runs: the table is what any clone of the repository rebuilds.
tests/test_studies.py runs the check.
"""

from __future__ import annotations

import argparse
import copy as copy_module
import io
import json
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import warnings
from pathlib import Path

from neuralscale.errors import NeuralscaleError
from neuralscale.layout import ReportDir, RunDir, StoreDir
from neuralscale.report import build_report, fmt_gap, fmt_p, summarize_records
from neuralscale.stats import holm, paired_gap, paired_p
from neuralscale.store import load_records

HERE = Path(__file__).resolve().parent
README = HERE / "README.md"
BLOCK = re.compile(r"(<!-- report: (?P<store>[^>]+?) -->\n)(?P<table>.*?)(<!-- /report -->)", re.S)
ROW_COLUMNS = ["method", "budget", "seeds", "params", "MACs (M)", "test acc (sel.)", "final-epoch test acc"]


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
        record = RunDir(run).record
        if not record.exists() or json.loads(record.read_text()).get("status") != "finished":
            shutil.rmtree(run)
    return dest


_REPORTS: dict[tuple[str, str], str] = {}  # (store, HEAD commit) -> report.md: a store's report is made once
_RECORDS: dict[tuple[str, str], list[dict]] = {}  # (store, HEAD commit) -> its committed finished records


def _key(store: Path) -> tuple[str, str]:
    """A store as the last commit holds it: its path and that commit (none outside a git checkout)."""
    head = _git(["rev-parse", "HEAD"], HERE)
    return str(store.resolve()), head.stdout.decode().strip() if head.returncode == 0 else ""


def report_markdown(store: Path) -> str:
    """The report.md of `neuralscale report` on the committed finished records of `store` (a study's store).

    Made once per store and commit in a process (several tables may name one store)."""
    key = _key(store)
    if key not in _REPORTS:
        _REPORTS[key] = _report_markdown(store)
    return _REPORTS[key]


def _report_markdown(store: Path) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        copy = committed_copy(store.parent, Path(tmp) / store.parent.name) / store.name
        try:  # what `neuralscale report COPY --no-figures` runs, in this process (one import of torch, not one each)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the report's own notes are in its text
                build_report(copy, figures=False)
        except NeuralscaleError as e:
            raise SystemExit(f"tables.py: neuralscale report {store} failed: {e}") from None
        return ReportDir(StoreDir(copy).report).markdown.read_text()


def _tables(md: str) -> list[list[list[str]]]:
    """Every table of a markdown text, as rows of cells (the header first, the rule left out)."""
    tables, current = [], []
    for line in md.splitlines() + [""]:
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if not all(set(c) <= {"-"} for c in cells):
                current.append(cells)
        elif current:
            tables.append(current)
            current = []
    return tables


def _markdown(rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows[1:]]) + "\n"


def report_table(store: Path) -> str:
    """The results table of the report on the committed finished records of `store`."""
    md = report_markdown(store)
    lines = md.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| method |"))
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    return "\n".join(lines[start:end]) + "\n"


def rows_table(stores: list[str], label: str, budget: str) -> str:
    """One method at one budget from each store's report: its row and its widths, a store per line.

    `label` may name alternatives separated by commas (a method labelled differently in some stores)."""
    labels = [x.strip() for x in label.split(",")]
    out = [["store", *ROW_COLUMNS, "widths"]]
    for store in stores:
        results, *rest = _tables(report_markdown(HERE / store))
        head = results[0]
        widths = next((t for t in rest if t[0] == ["method", "budget", "widths"]), [])
        found = [row for row in results[1:] if row[0] in labels and row[1] == budget]
        if not found:  # (a row whose name gained a mark, "(extrapolated)", was dropped without a word)
            names = sorted({row[0] for row in results[1:] if row[1] == budget})
            raise SystemExit(f"tables.py: the report of {store} has no row {' or '.join(labels)} at {budget}; its "
                             f"rows there: {', '.join(names) or 'none'}")
        for row in found:
            w = next((x[2] for x in widths[1:] if x[0] == row[0] and x[1] == budget), "")
            out.append([store, *(row[head.index(c)] for c in ROW_COLUMNS), w])
    return _markdown(out)


def report_sections(store: Path) -> dict[str, str]:
    """The sections of the report on the committed finished records of `store`, by their `## ` heading (each
    section's text starts with its heading's line)."""
    sections = re.split(r"^## ", report_markdown(store), flags=re.M)[1:]
    return {body.partition("\n")[0]: body for body in sections}


def descent_markdown(store: Path, objective: str = "") -> str:
    """The descent table of the report on the committed finished records of `store` (its iterations' rows, R^2
    and out-of-sample error); of the descent of `objective` where the report has several."""
    found = {(m.group(1) or ""): body for heading, body in report_sections(store).items()
             if (m := re.fullmatch(r"Descent(?: \((\w+)\))?", heading))}
    if not found:
        raise SystemExit(f"tables.py: the report of {store} has no descent table")
    if objective not in found:
        names = ", ".join(f"'descent {k}'" for k in sorted(found) if k)
        raise SystemExit(f"tables.py: the report of {store} has descents of several objectives; name one: {names}"
                         if not objective else f"tables.py: the report of {store} has no descent of {objective}")
    return _markdown(_tables(found[objective])[0])


def ablations_markdown(store: Path) -> str:
    """The table "The law against its ablations" of the report on the committed finished records of `store`:
    each law against `pruned` and `shape@K` at the same budget, paired by seed, with Holm's correction."""
    body = report_sections(store).get("The law against its ablations")
    if body is None:
        raise SystemExit(f"tables.py: the report of {store} has no table of the law against its ablations")
    return _markdown(_tables(body)[0])


def _committed_records(store: Path) -> list[dict]:
    """The finished records of `store` as the last commit holds them (read once per store and commit in a
    process: several tables may compare one store's runs; each caller gets a copy of its own)."""
    key = _key(store)
    if key not in _RECORDS:
        with tempfile.TemporaryDirectory() as tmp:
            copy = committed_copy(store.parent, Path(tmp) / store.parent.name) / store.name
            _RECORDS[key] = [r for r in load_records(copy) if r.get("status") == "finished"]
    return copy_module.deepcopy(_RECORDS[key])


def gap_change_markdown(store: Path, against: Path) -> str:
    """How each method's gap to uniform changes from the store `against` (e.g. the same runs trained shorter) to
    `store`: per seed, (method - uniform in `store`) - (method - uniform in `against`), at the same budget, for
    the seeds all four runs share; its mean and 95% interval (Student's t on those differences), at the
    best-validation epoch and at the final epoch, and the paired t-test's p with Holm's correction over the
    table's rows. A change whose interval spans zero says the gap may hold; it does not say that it holds."""
    def by_row(rows: list[dict]) -> dict:
        return {(r["label"], tuple(r["budget_key"])): r for r in rows}

    def epochs(records: list[dict]) -> str:  # of the runs the table compares
        shown = {"uniform", *(row["label"] for row in rows)}
        return ", ".join(map(str, sorted({r["config"]["epochs"] for r in records if r["label"] in shown})))

    new_records, old_records = _committed_records(store), _committed_records(against)
    new, old = by_row(summarize_records(new_records)), by_row(summarize_records(old_records))
    rows = []
    for (label, bkey), r in new.items():
        u, r0, u0 = new.get(("uniform", bkey)), old.get((label, bkey)), old.get(("uniform", bkey))
        if label == "uniform" or None in (u, r0, u0):
            continue
        seeds = sorted(set(r["by_seed"]) & set(u["by_seed"]) & set(r0["by_seed"]) & set(u0["by_seed"]))
        gaps = {}
        for name, (a, b, a0, b0) in (("sel", (r["by_seed"], u["by_seed"], r0["by_seed"], u0["by_seed"])),
                                     ("final", [x["finals_by_seed"] for x in (r, u, r0, u0)])):
            gaps[name] = ({s: a[s] - b[s] for s in seeds}, {s: a0[s] - b0[s] for s in seeds})
        rows.append({"label": label, "budget": r["budget"], "n": len(seeds), "gaps": gaps,
                     "p": paired_p(*gaps["sel"])})
    for row, holds in zip(rows, holm([x["p"] for x in rows])):
        row["holm"] = holds
    old_e, new_e = epochs(old_records), epochs(new_records)
    out = [["method", "budget", "seeds paired", f"gap to uniform, paired (sel.), {old_e} epochs",
            f"gap to uniform, paired (sel.), {new_e} epochs", f"change, {new_e} minus {old_e} epochs (sel.) [95% CI]",
            "change (final epoch) [95% CI]", "p of the change (sel.), Holm"]]
    for row in rows:
        new_gap, old_gap = row["gaps"]["sel"]
        zero = dict.fromkeys(new_gap, 0.0)  # a mean over seeds and its interval: paired against nothing
        out.append([row["label"], row["budget"], str(row["n"]), fmt_gap(*paired_gap(old_gap, zero)[:2]),
                    fmt_gap(*paired_gap(new_gap, zero)[:2]), fmt_gap(*paired_gap(*row["gaps"]["sel"])[:2]),
                    fmt_gap(*paired_gap(*row["gaps"]["final"])[:2]), fmt_p({**row, "p_test": "paired"})])
    return _markdown(out)


def paired_markdown(pairs: str, budget: str) -> str:
    """Runs of one method against runs of another, paired by seed, each from a store of its own or the same:
    `pairs` is `STORE:LABEL - STORE:LABEL` pairs separated by `;` (e.g. the same method on two devices). Each row
    a comparison read alone (no correction over the rows: they answer separate questions)."""
    def row_of(ref: str) -> dict:
        store, _, label = ref.strip().partition(":")
        found = [r for r in summarize_records(_committed_records(HERE / store))
                 if r["label"] == label and r["budget"] == budget]
        if not found:
            raise SystemExit(f"tables.py: {store} has no finished {label} at {budget}")
        return found[0]

    out = [["runs", "against", "budget", "seeds paired", "mean", "against mean", "gap, paired by seed (sel.) "
            "[95% CI]", "gap, paired (final epoch) [95% CI]", "p (paired, read alone)"]]
    for pair in pairs.split(";"):
        a_ref, sep, b_ref = pair.partition(" - ")
        if not sep:
            raise SystemExit(f"tables.py: a paired table's pair is 'STORE:LABEL - STORE:LABEL', got {pair.strip()!r}")
        a, b = row_of(a_ref), row_of(b_ref)
        gap, half, n = paired_gap(a["by_seed"], b["by_seed"])
        p = paired_p(a["by_seed"], b["by_seed"])
        out.append([a_ref.strip(), b_ref.strip(), budget, str(n), f"{a['mean']:.2f}", f"{b['mean']:.2f}",
                    fmt_gap(gap, half), fmt_gap(*paired_gap(a["finals_by_seed"], b["finals_by_seed"])[:2]),
                    fmt_p({"p": p, "p_test": "paired"})])
    return _markdown(out)


def table_for(spec: str) -> str:
    """The table a marker names: a store's whole table, its descent's, its laws against their ablations, or one
    row of several stores."""
    parts = [p.strip() for p in spec.split("|")]
    if len(parts) == 1:
        return report_table(HERE / parts[0])
    if len(parts) == 2 and parts[1].split()[:1] == ["descent"]:
        return descent_markdown(HERE / parts[0], " ".join(parts[1].split()[1:]))
    if len(parts) == 2 and parts[1] == "ablations":
        return ablations_markdown(HERE / parts[0])
    if len(parts) == 2 and parts[1].split()[:2] == ["gap", "change"] and len(parts[1].split()) == 3:
        return gap_change_markdown(HERE / parts[0], HERE / parts[1].split()[2])
    if len(parts) != 3:
        raise SystemExit(f"tables.py: a marker is 'STORE', 'STORE | descent [OBJECTIVE]', 'STORE | ablations', "
                         f"'STORE | gap change OTHER_STORE', 'STORE:LABEL - STORE:LABEL; ... | paired | BUDGET' or "
                         f"'STORE STORE ... | LABEL | BUDGET', got {spec!r}")
    if parts[1] == "paired":
        return paired_markdown(parts[0], parts[2])
    return rows_table(parts[0].split(), parts[1], parts[2])


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
        table = table_for(m["store"])
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
