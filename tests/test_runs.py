"""runs.py: the one run function, what a run records, and a failure recorded, not lost."""

from __future__ import annotations

import neuralscale as ns
from neuralscale.data import load
from neuralscale.store import load_records
from neuralscale.train import TrainConfig

from helpers import TINY_RUN_ARGS as TINY
from helpers import run_cli


def _synthetic_splits(n=600):
    return load("synthetic", synthetic=dict(num_train=n, num_test=200)).split(0.1, 0)


def test_a_failing_run_is_recorded_and_the_sweep_goes_on(tmp_path):
    out = tmp_path / "sweep"
    r = run_cli("sweep", *[a if a != "0.05" else "1e12" for a in TINY], "--methods", "uniform",
                "--ratios", "0.0625,0.125", "--seeds", "0", "--epochs", "2", "--out", str(out), "--no-augment")
    assert r.returncode == 1, r.stderr  # the sweep went on, and its exit status says runs failed
    assert "0 of 2 runs finished, 2 failed" in r.stdout
    assert r.stderr.strip().splitlines()[-1].startswith("neuralscale: 2 of 2 run(s) failed")
    records = load_records(out)
    assert len(records) == 2 and all(x["status"] == "failed" and "diverged" in x["error"] for x in records)
    rep = run_cli("report", str(out))
    assert rep.returncode == 2 and "no finished runs" in rep.stderr
    # a rerun leaves failed runs failed and untried; --retry-failed tries them again (a mutation audit: the two
    # swapped passed every test)
    args = ["sweep", *[a if a != "0.05" else "1e12" for a in TINY], "--methods", "uniform", "--ratios",
            "0.0625,0.125", "--seeds", "0", "--epochs", "2", "--out", str(out), "--no-augment"]
    tries = {x["id"]: x.get("attempts") for x in records}
    assert run_cli(*args).returncode == 1
    assert {x["id"]: x.get("attempts") for x in load_records(out)} == tries
    assert run_cli(*args, "--retry-failed").returncode == 1
    again = load_records(out)
    assert all(x["status"] == "failed" and x["attempts"] == tries[x["id"]] + 1 for x in again), again


def test_api_train_writes_a_record(tmp_path):
    r = ns.train("vgg11", "synthetic", ratio=0.125, config=TrainConfig(epochs=1, batch_size=64),
                 splits=_synthetic_splits(200), out_dir=tmp_path / "run", progress=False)
    import json
    rec = json.loads((tmp_path / "run" / "record.json").read_text())
    assert rec["status"] == "finished" and rec["params"] == ns.space("vgg11", "synthetic").params(rec["widths"])
    assert rec["summary"]["epochs"] == 1 and len(rec["history"]) == 1
    assert (tmp_path / "run" / "metrics.csv").read_text().startswith("epoch,lr,train_loss")
    assert rec == json.loads(json.dumps(r))
