"""runs.py: the one run function, what a run records, and a failure recorded, not lost."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import pytest

import neuralscale as ns
from neuralscale.data import load
from neuralscale.errors import EnvironmentFailure
from neuralscale.runs import RunSpec, execute, load_run_splits
from neuralscale.store import load_records, read_record
from neuralscale.train import TrainConfig, Trainer

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
    assert "sweep: 2 run(s) failed; see their record.json" in r.stderr  # the sweep's own warning, in its log too
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
    # --report of a sweep none of whose runs finished: no report, and exit status 1 for the failed runs (not 2, as
    # the report's "no finished runs" said before)
    r = run_cli(*args, "--report")
    assert r.returncode == 1 and f"warning: no report: none of the 2 run(s) in {out} finished" in r.stderr, r.stderr
    assert "error" not in r.stderr and not (out / "report").exists()
    # one run trained with `train` that fails: one line, exit status 1, its record failed (a rerun tries it again)
    run = tmp_path / "run"
    one = ["train", *[a if a != "0.05" else "1e12" for a in TINY], "--ratio", "0.0625", "--epochs", "1",
           "--no-augment", "--out", str(run)]
    for attempt in (1, 2):
        r = run_cli(*one)
        last = r.stderr.strip().splitlines()[-1]
        assert r.returncode == 1 and last.startswith("neuralscale: error: training diverged") \
            and last.endswith("; a lower learning rate (--lr; lr in an experiment's [sweep.train]) may train"), \
            r.stderr
        assert read_record(run)["status"] == "failed" and read_record(run)["attempts"] == attempt


def test_a_sweep_whose_own_runs_all_failed_still_reports_its_stores_finished_runs(tmp_path, monkeypatch, capsys):
    """--report decides by the store's records: runs of an earlier sweep that finished are reported even where every
    run of this one failed (exit 1 for those), not left without a report (a review of the change that skips it)."""
    from neuralscale import cli
    out = tmp_path / "s"
    args = ["sweep", *TINY, "--methods", "uniform", "--ratios", "0.0625", "--seeds", "0", "--epochs", "1", "--quiet",
            "--out", str(out)]
    assert cli.main(args) == 0
    (finished,) = load_records(out)
    failed = {**finished, "id": "uniform-x", "status": "failed", "error": "RunFailed: training diverged"}
    monkeypatch.setattr(cli, "run_sweep", lambda *a, **k: [failed])  # this sweep's one run failed
    capsys.readouterr()
    assert cli.main([*args, "--report"]) == 1
    assert (out / "report" / "report.md").is_file() and "no report" not in capsys.readouterr().err


def test_api_train_writes_a_record(tmp_path):
    r = ns.train("vgg11", "synthetic", ratio=0.125, config=TrainConfig(epochs=1, batch_size=64),
                 splits=_synthetic_splits(200), out_dir=tmp_path / "run", progress=False)
    import json
    rec = json.loads((tmp_path / "run" / "record.json").read_text())
    assert rec["status"] == "finished" and rec["params"] == ns.space("vgg11", "synthetic").params(rec["widths"])
    assert rec["summary"]["epochs"] == 1 and len(rec["history"]) == 1
    assert (tmp_path / "run" / "metrics.csv").read_text().startswith("epoch,lr,train_loss")
    assert rec == json.loads(json.dumps(r))


def _spec(widths, **config):
    return RunSpec(model="vgg11", dataset="synthetic", method="uniform", widths=widths, latency_batches=(),
                   config=TrainConfig(**{"epochs": 1, "batch_size": 32, "device": "cpu", **config}).to_dict())


def test_a_run_this_machine_cannot_train_raises_and_stays_unfinished_and_bad_widths_are_named(tmp_path):
    """A failure of the machine (a device it lacks) is not the run's: it is raised, and the record stays
    unfinished so that the run is tried again where it can train; widths its network cannot have are recorded
    failed, with what is wrong (a mutation audit: both checks could be dropped and every test passed)."""
    sp = ns.space("vgg11", "synthetic")
    splits = _synthetic_splits(120)
    with pytest.raises(EnvironmentFailure, match="cuda:99"):
        execute(_spec(sp.uniform(0.0625), device="cuda:99"), tmp_path / "r", space=sp, splits=splits,
                progress=False)
    assert read_record(tmp_path / "r")["status"] == "running"
    rec = execute(_spec([4, 8, 16]), None, space=sp, splits=splits, progress=False)
    assert rec["status"] == "failed" and rec["error"] == "NeuralscaleError: vgg11 has 8 gated layers, got 3 widths"


def test_a_failed_runs_record_says_the_errors_type_and_first_line_and_keeps_its_traceback(tmp_path, monkeypatch):
    """A sweep's table shows a failed run's error in one line: its type and the first line of its message (the
    type alone for an empty one); the traceback is kept in the record (a mutation audit: a multi-line message
    and a record without its traceback passed the tests)."""
    sp = ns.space("vgg11", "synthetic")
    splits = _synthetic_splits(120)

    def fails(message):
        def fit(self):
            raise RuntimeError(message)
        return fit
    monkeypatch.setattr(Trainer, "fit", fails("the first line\nthe second line"))
    rec = execute(_spec(sp.uniform(0.0625)), tmp_path / "r", space=sp, splits=splits, progress=False)
    assert rec["status"] == "failed" and rec["error"] == "RuntimeError: the first line"
    assert 'raise RuntimeError(message)' in rec["traceback"]
    assert read_record(tmp_path / "r") == json.loads(json.dumps(rec))  # as recorded
    monkeypatch.setattr(Trainer, "fit", fails(""))
    assert execute(_spec(sp.uniform(0.0625)), None, space=sp, splits=splits,
                   progress=False)["error"] == "RuntimeError: RuntimeError"

    # a resumed run that fails counts its earlier sessions' time in wall_s, as a finished one does (a review)
    def resumed_then_fails(self):
        self.elapsed_before = 1234.5  # (as _resume sets it from the checkpoint)
        raise RuntimeError("after resuming")
    monkeypatch.setattr(Trainer, "fit", resumed_then_fails)
    rec = execute(_spec(sp.uniform(0.0625)), tmp_path / "r2", space=sp, splits=splits, progress=False)
    assert rec["status"] == "failed" and rec["wall_s"] >= 1234.5


def test_an_interrupted_warm_start_resumes_without_its_source_and_keeps_where_it_started(tmp_path):
    """A warm start stopped after its checkpoint resumes from the checkpoint, its source moved away, and its
    record still says where it started; one stopped before its checkpoint whose source's folder now holds another
    run is refused (a mutation audit: its `init` cut down to the source's path and id, the resume reading the
    source again, `resumed` always false, and the other run's weights taken all passed the tests)."""
    import shutil
    sp = ns.space("vgg11", "synthetic")
    splits = _synthetic_splits(120)
    config = TrainConfig(epochs=1, batch_size=64, device="cpu")
    ns.train(sp, "synthetic", ratio=0.125, config=config, splits=splits, out_dir=tmp_path / "base", progress=False)
    first = ns.train(sp, "synthetic", ratio=0.0625, config=config, splits=splits, out_dir=tmp_path / "warm",
                     init_from=tmp_path / "base", progress=False)
    assert first["init"]["from_widths"] == sp.uniform(0.125) and first["resumed"] is False
    stopped = {**first, "status": "running"}  # as a run killed after its last checkpoint leaves its record
    (tmp_path / "warm" / "record.json").write_text(json.dumps(stopped))
    shutil.move(tmp_path / "base", tmp_path / "moved")
    again = ns.train(sp, "synthetic", ratio=0.0625, config=config, splits=splits, out_dir=tmp_path / "warm",
                     init_from=tmp_path / "base", progress=False)
    assert again["status"] == "finished" and again["resumed"] is True and again["attempts"] == 2
    assert again["init"] == first["init"] and again["summary"] == first["summary"]
    # stopped before its first checkpoint, while another run took its source's folder: refused, not started from it
    ns.train(sp, "synthetic", ratio=0.125, config=replace(config, seed=1), splits=splits, out_dir=tmp_path / "base",
             progress=False)
    (tmp_path / "warm" / "checkpoint.pt").unlink()
    (tmp_path / "warm" / "record.json").write_text(json.dumps(stopped))
    taken = (f"warm holds a run started from {re.escape(first['init']['from_id'])}, and "
             f"{re.escape(str(tmp_path / 'base'))} now holds run .*: give --force to start it over from that one")
    with pytest.raises(ns.NeuralscaleError, match=taken):
        ns.train(sp, "synthetic", ratio=0.0625, config=config, splits=splits, out_dir=tmp_path / "warm",
                 init_from=tmp_path / "base", progress=False)
    # finished from the source as it was, and the source trained again: refused as well, not the old run returned
    # as the command's (a walkthrough); --force starts it over from the run there now
    (tmp_path / "warm" / "record.json").write_text(json.dumps(first))
    with pytest.raises(ns.NeuralscaleError, match=taken):
        ns.train(sp, "synthetic", ratio=0.0625, config=config, splits=splits, out_dir=tmp_path / "warm",
                 init_from=tmp_path / "base", progress=False)
    over = ns.train(sp, "synthetic", ratio=0.0625, config=config, splits=splits, out_dir=tmp_path / "warm",
                    init_from=tmp_path / "base", progress=False, force=True)
    now = json.loads((tmp_path / "base" / "record.json").read_text())["id"]
    assert over["status"] == "finished" and over["init"]["from_id"] == now != first["init"]["from_id"]


def test_a_pruning_baseline_finds_its_pretrained_run_beside_its_own_directory(tmp_path):
    """Without `store_root`, a baseline's pretrained run is read from the folder its run directory is in; with
    neither a directory nor a store it is refused in one line, and so is a pretrained run that has not finished
    (a mutation audit: refusing the first, and training an unfinished run again to prune it, passed the tests)."""
    sp = ns.space("vgg11", "synthetic")
    splits = _synthetic_splits(120)
    small = sp.rebased(sp.uniform(0.125))
    pre = _spec(small.base_widths)
    assert execute(pre, tmp_path / pre.id, space=small, splits=splits, progress=False)["status"] == "finished"
    spec = RunSpec(model="vgg11", dataset="synthetic", method="l1-prune", criterion="l1-uniform", pretrained=pre.id,
                   budget={"metric": "params", "value": small.params(small.uniform(0.5))}, latency_batches=(),
                   config=TrainConfig(epochs=1, batch_size=32, device="cpu").to_dict())
    rec = execute(spec, tmp_path / spec.id, space=small, splits=splits, progress=False)
    assert rec["status"] == "finished" and rec["pruning"]["from"] == pre.id, rec.get("error")
    rec = execute(spec, None, space=small, splits=splits, progress=False)
    assert rec["status"] == "failed" and "needs a run store holding its pretrained run" in rec["error"]
    # a pretrained run that has not finished, its weights not on this machine: not trained again to be pruned
    record = read_record(tmp_path / pre.id)
    (tmp_path / pre.id / "record.json").write_text(json.dumps({**record, "status": "running"}))
    (tmp_path / pre.id / "checkpoint.pt").unlink()
    rec = execute(spec, None, space=small, splits=splits, progress=False, store_root=tmp_path)
    assert rec["status"] == "failed" and f"the run to prune ({pre.id}) has not finished" in rec["error"]
    assert not (tmp_path / pre.id / "weights").exists()


def test_a_runs_metrics_csv_is_its_history_with_empty_cells_where_nothing_was_measured(tmp_path):
    """metrics.csv: a header and a line per epoch (newline-ended), each value as the record's history has it to
    6 significant digits, and an empty cell for an epoch not evaluated (a mutation audit: "None" cells, 2 digits
    and a last line without its newline all passed the tests)."""
    import csv
    rec = ns.train("vgg11", "synthetic", ratio=0.0625, config=TrainConfig(epochs=3, batch_size=64, eval_every=2),
                   splits=_synthetic_splits(200), out_dir=tmp_path / "run", progress=False)
    text = (tmp_path / "run" / "metrics.csv").read_text()
    assert text.endswith("\n") and not text.endswith("\n\n")
    rows = list(csv.DictReader(text.splitlines()))
    assert [r["epoch"] for r in rows] == [str(m["epoch"]) for m in rec["history"]] and len(rows) == 3
    assert rec["history"][0]["val_acc"] is None and rows[0]["val_acc"] == rows[0]["test_acc"] == ""
    for row, m in zip(rows, rec["history"]):
        for key, value in m.items():
            if isinstance(value, float):
                assert float(row[key]) == pytest.approx(value, rel=1e-5), (key, row[key], value)


def test_a_pretrained_run_trained_again_for_its_weights_sees_its_own_data(tmp_path):
    """A baseline on other data than its pretrained run's (another subset): the copy trained again for the
    pretrained weights trains on the pretrained run's data, as the original did, not on the baseline's (a
    mutation audit: handing it the baseline's splits passed the tests)."""
    sp = ns.space("vgg11", "synthetic")
    small = sp.rebased(sp.uniform(0.125))
    config = TrainConfig(epochs=1, batch_size=32, device="cpu").to_dict()
    pre = RunSpec(model="vgg11", dataset="synthetic", method="uniform", widths=small.base_widths, latency_batches=(),
                  data={"train": 64, "test": 16}, config=config)
    first = execute(pre, tmp_path / pre.id, space=small, progress=False)
    (tmp_path / pre.id / "checkpoint.pt").unlink()  # its weights are on another machine
    spec = RunSpec(model="vgg11", dataset="synthetic", method="l1-prune", criterion="l1-uniform", pretrained=pre.id,
                   budget={"metric": "params", "value": small.params(small.uniform(0.5))}, latency_batches=(),
                   data={"train": 96, "test": 16}, config=config)
    done = execute(spec, tmp_path / spec.id, space=small, splits=load_run_splits(spec), progress=False,
                   store_root=tmp_path)
    assert done["status"] == "finished" and done["pruning"]["retrained"] is True, done.get("error")
    again = read_record(tmp_path / pre.id / "weights")
    assert again["data"] == first["data"] and first["data"]["train"] == 64 and done["data"]["train"] == 96


def test_a_run_that_failed_outside_execute_keeps_what_its_record_said():
    """failed_record (a worker that died too often, a baseline whose pretrained run failed): failed, with the
    reason, over the record the run had (its attempts, widths, history), or a new one that says what the run is
    (a mutation audit: dropping the old record, and leaving the status as it was, passed the tests)."""
    from neuralscale.runs import failed_record
    sp = ns.space("vgg11", "synthetic")
    spec = _spec(sp.uniform(0.0625))
    running = {"id": spec.id, "kind": "run", "status": "running", "attempts": 3, "widths": spec.widths,
               "history": [{"epoch": 1}], "spec": spec.to_dict()}
    rec = failed_record(spec, "worker died 3 times (killed)", running)
    assert rec == {**running, "status": "failed", "error": "worker died 3 times (killed)"}
    assert running["status"] == "running"  # the record it was given is left as it was
    new = failed_record(spec, "the run to prune (x) failed")
    assert (new["id"], new["status"], new["attempts"], new["seed"], new["spec"]) == (
        spec.id, "failed", 0, spec.seed, spec.to_dict())


def test_a_run_of_an_earlier_law_asked_for_again_says_which_iteration_it_trained():
    """`train --method neuralscale --from DIR` again after the descent went on: the default law is its last, another
    run's; "holds another run" alone (a walkthrough) now says which law it trained and how to ask for it."""
    from neuralscale.runs import _other_law
    spec = RunSpec(model="vgg11", dataset="synthetic", method="neuralscale", label="neuralscale@4", widths=[4] * 8,
                   config={})
    assert _other_law({"method": "neuralscale", "label": "neuralscale@2"}, spec) == (
        "; it trained neuralscale@2, and this is neuralscale@4: give --iteration 2 for that run")
    for old in ({"method": "neuralscale", "label": "neuralscale@4"}, {"method": "uniform", "label": "uniform"},
                {"method": "morphnet", "label": "morphnet"}, {}):
        assert _other_law(old, spec) == ""
