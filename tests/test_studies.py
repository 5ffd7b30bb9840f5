"""A committed study's report is rebuilt from its committed records alone, and its numbers are the records'."""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
from pathlib import Path

import pytest

from conftest import run_cli
from neuralscale.store import load_records

STUDIES = Path(__file__).resolve().parents[1] / "studies"
STORES = sorted(p.parent for p in STUDIES.glob("*/*/sweep.json"))


@pytest.mark.parametrize("store", STORES, ids=[f"{s.parent.name}/{s.name}" for s in STORES])
def test_a_study_report_comes_from_its_records_alone(store, tmp_path):
    copy = tmp_path / store.name
    # what is committed (a study may be running in this checkout), else the folder without checkpoints
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=store, capture_output=True)  # relative to store
    if tracked.returncode == 0 and tracked.stdout:
        for name in filter(None, tracked.stdout.decode().split("\0")):
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(store / name, copy / name)
    else:
        shutil.copytree(store, copy, ignore=shutil.ignore_patterns("*.pt", "*.ckpt", ".lock", "*.tmp", "log.txt"))
    for run in list((copy / "runs").iterdir()):  # only finished runs: an unfinished one has nothing to report
        record = run / "record.json"
        if not record.exists() or json.loads(record.read_text())["status"] != "finished":
            shutil.rmtree(run)
    r = run_cli("report", str(copy), "--format", "png")
    assert r.returncode == 0, r.stderr
    summary = json.loads((copy / "report" / "summary.json").read_text())
    records = [x for x in load_records(copy) if x["status"] == "finished"]
    assert summary["rows"] and sum(row["n"] for row in summary["rows"]) == len(records)
    for row in summary["rows"]:
        mine = [x["summary"]["test_acc_at_best_val"] for x in records
                if x["label"] == row["label"] and [x["budget"].get(row["budget_key"][0])] == [row["budget_key"][1]]]
        assert sorted(mine) == sorted(row["values"]) and row["n"] == len(mine)
        assert abs(row["mean"] - statistics.fmean(mine)) < 0.01
