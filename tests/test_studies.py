"""A committed study's report is rebuilt from its committed records alone, and its numbers are the records'."""

from __future__ import annotations

import json
import shutil
import statistics
from pathlib import Path

import pytest

from conftest import run_cli
from neuralscale.store import load_records

STUDIES = Path(__file__).resolve().parents[1] / "studies"
STORES = sorted(p.parent for p in STUDIES.glob("*/*/sweep.json"))


@pytest.mark.parametrize("store", STORES, ids=[f"{s.parent.name}/{s.name}" for s in STORES])
def test_a_study_report_comes_from_its_records_alone(store, tmp_path):
    copy = tmp_path / store.name
    # the records only: no checkpoints (never committed), and no run that had not finished
    shutil.copytree(store, copy, ignore=shutil.ignore_patterns("*.pt", "*.ckpt", ".lock", "log.txt"))
    for run in list((copy / "runs").iterdir()):
        if json.loads((run / "record.json").read_text())["status"] != "finished":
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
