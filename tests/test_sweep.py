"""Sweeps, the run store, the pruning baselines, reports and experiment files: real runs on tiny data."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch

import neuralscale as ns
from helpers import run_cli
from neuralscale.baselines import GateMask, choose_uniform_widths, choose_widths, importance, prune_pretrained
from neuralscale.errors import NeuralscaleError
from neuralscale.models.gate import gates
from neuralscale.graph import ChannelGraph
from neuralscale.report import build_report, summarize_records
from neuralscale.stats import t975, welch_gap
from neuralscale.runs import RunSpec, execute
from neuralscale.store import load_records, read_record
from neuralscale.experiment import prepare
from neuralscale.sweep import SweepConfig, plan, preset, run_sweep
from neuralscale.train import TrainConfig

TINY = ["--model", "vgg11", "--dataset", "synthetic", "--train-subset", "160", "--test-subset", "40",
        "--batch-size", "32", "--device", "cpu", "--lr", "0.05", "--momentum", "0.9", "--schedule", "cosine"]


@pytest.fixture
def descent_dir(tiny_descent):
    """A real (tiny) two-iteration descent on synthetic data (conftest.tiny_descent)."""
    return tiny_descent[0]


def test_plan_covers_methods_budgets_seeds_and_ids_are_stable(descent_dir):
    cfg = SweepConfig(model="vgg11", dataset="synthetic", methods=["uniform", "morphnet", "neuralscale"],
                      ratios=[0.0625, 0.125], seeds=[0, 1], descent=str(descent_dir), iterations=["first", "last"],
                      train={"epochs": 1})
    specs = plan(cfg)
    labels = sorted({s.label.removesuffix(" (fallback)") for s in specs})  # a fallback law is labelled so
    assert labels == ["morphnet", "neuralscale@1", "neuralscale@2", "uniform"]
    assert len(specs) == 4 * 2 * 2 and len({s.id for s in specs}) == len(specs)
    assert [s.id for s in plan(cfg)] == [s.id for s in specs]  # the same configuration, the same ids
    sp = ns.space("vgg11", "synthetic")
    for s in specs:
        budget = sp.params(sp.uniform(s.budget.ratio))
        assert abs(sp.params(s.widths) - budget) <= 0.01 * budget, (s.label, s.widths)
        assert s.config["seed"] == s.seed
    # another recipe gives other ids; the device does not change a run's identity
    other = SweepConfig(**{**cfg.to_dict(), "train": {"epochs": 2}})
    assert not {s.id for s in plan(other)} & {s.id for s in specs}
    moved = SweepConfig(**{**cfg.to_dict(), "train": {"epochs": 1, "device": "cuda"}})
    assert [s.id for s in plan(moved)] == [s.id for s in specs]


def test_presets():
    paper = preset("paper", "vgg11", "cifar10")
    assert paper.ratios == [0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0] and paper.seeds == [0, 1, 2, 3, 4]
    assert paper.train["epochs"] == 300 and paper.finetune_epochs == 40 and paper.iterations == ["first", "last"]
    tiny = preset("paper", "resnet18", "tinyimagenet")
    assert tiny.ratios == [0.25, 0.5, 0.75, 1.0] and tiny.train["epochs"] == 150 and tiny.finetune_epochs == 20
    quick = preset("quick", "vgg11", "fashionmnist", train={"epochs": 2}, seeds=[3])
    assert quick.train["epochs"] == 2 and quick.seeds == [3] and quick.ratios == [0.25, 0.5]
    with pytest.raises(NeuralscaleError, match="unknown preset"):
        preset("fast", "vgg11", "cifar10")


def test_sweep_survives_sigkill_and_finishes_every_run_exactly_once(tmp_path):
    out = tmp_path / "sweep"
    args = ["sweep", *TINY, "--methods", "uniform", "--ratios", "0.0625,0.125", "--seeds", "0,1", "--epochs", "4",
            "--out", str(out)]
    proc = subprocess.Popen([sys.executable, "-m", "neuralscale", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.time() + 240
    killed_in = None
    while time.time() < deadline and proc.poll() is None:
        recs = {d.name: read_record(d) for d in (out / "runs").glob("*")} if (out / "runs").exists() else {}
        finished = [k for k, r in recs.items() if r and r["status"] == "finished"]
        midway = [k for k, r in recs.items() if r and r["status"] == "running" and (out / "runs" / k / "checkpoint.pt").exists()]
        if finished and midway:
            killed_in = midway[0]
            os.killpg(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.05)
    proc.wait()
    assert killed_in is not None, "the sweep ended before it could be killed mid-run"
    first = {k: (out / "runs" / k / "record.json").read_bytes() for k in finished}

    r = run_cli(*args)
    assert r.returncode == 0, r.stderr
    assert "4 of 4 runs finished" in r.stdout
    records = load_records(out)
    assert len(records) == 4 and all(x["status"] == "finished" for x in records)
    for k, before in first.items():  # finished runs are neither redone nor rewritten
        assert (out / "runs" / k / "record.json").read_bytes() == before
    resumed = read_record(out / "runs" / killed_in)
    assert resumed["attempts"] == 2 and resumed["resumed"] is True
    assert [m["epoch"] for m in resumed["history"]] == [1, 2, 3, 4]  # continued, not restarted
    for x in records:
        if x["id"] not in (killed_in, *first):
            assert x["attempts"] == 1

    again = run_cli(*args)  # nothing left to do
    assert again.returncode == 0 and "0 to run" in again.stderr


def test_report_is_rebuilt_from_the_records_alone(tmp_path, descent_dir):
    out = tmp_path / "sweep"
    r = run_cli("sweep", *TINY, "--methods", "uniform,morphnet,neuralscale", "--ratios", "0.0625,0.125",
                "--seeds", "0,1", "--epochs", "2", "--from", str(descent_dir), "--out", str(out), "--quiet")
    assert r.returncode == 0, r.stderr
    plan = json.loads((out / "sweep.json").read_text())["config"]  # the descent, found from wherever the store is
    assert (out / plan["descent_from_store"]).resolve() == descent_dir.resolve()
    for ckpt in out.glob("runs/*/checkpoint.pt"):  # no weights, no training: the records are enough
        ckpt.unlink()
    r = run_cli("report", str(out), "--json")
    assert r.returncode == 0, r.stderr
    runs = json.loads(r.stdout)["runs"]
    assert len(runs) == 12 and all(x["status"] == "finished" for x in runs)
    records = load_records(out)
    rows = summarize_records(records)
    assert len(rows) == 6
    for row in rows:  # the table is exactly the records' numbers
        mine = [x["summary"]["test_acc_at_best_val"] for x in records
                if x["label"] == row["label"] and x["budget"]["ratio"] == row["budget_key"][1]]
        assert sorted(row["values"]) == sorted(mine) and row["n"] == 2
        assert abs(row["mean"] - sum(mine) / 2) < 1e-9
        if row["label"] != "uniform":
            assert row["gap_to_uniform"] is not None
            mine_final = [x["summary"]["final_test_acc"] for x in records
                          if x["label"] == row["label"] and x["budget"]["ratio"] == row["budget_key"][1]]
            theirs = [x["summary"]["final_test_acc"] for x in records
                      if x["label"] == "uniform" and x["budget"]["ratio"] == row["budget_key"][1]]
            assert abs(row["final_gap"] - (sum(mine_final) - sum(theirs)) / 2) < 1e-9  # the final epoch's gap
            lo, hi = round(row["gap_to_uniform"] - row["gap_ci95"], 2), round(row["gap_to_uniform"] + row["gap_ci95"], 2)
            cell = f"{row['gap_to_uniform']:+.2f} [{lo:+.2f}, {hi:+.2f}]"
            md = (out / "report" / "report.md").read_text()
            assert (f"**{cell}**" in md) == (lo > 0 or hi < 0) and cell in md  # bold: the interval excludes 0
    rep = out / "report"
    for name in ("report.md", "report.html", "summary.json", "acc_vs_params.png", "acc_vs_macs.png",
                 "acc_vs_latency.png", "widths.png", "heatmap.png", "growth_iteration_02.png"):
        assert (rep / name).stat().st_size > 0, name
    html = (rep / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 6 and "<table>" in html
    md = (rep / "report.md").read_text()
    assert "test accuracy at the best-validation epoch" in md and "neuralscale@2" in md
    assert "## Methods" in md and "paper: 'weight magnitude'" not in md  # only the methods of this sweep
    assert "- `morphnet`: MorphNet-style" in md and "(paper: NeuralScale, iteration 1 / 15)" in md
    assert "| latency (ms) |" in md and "Latency: batch 1, median of each run's measurement on cpu" in md
    last = sum(x["summary"]["best_val_epoch"] == len(x["history"]) for x in records)  # where selection fell
    assert f"Selection: the best-validation epoch was the last epoch in {last} of 12 runs" in md
    # a run that measured its latency on another machine: no latency column or figure, and a note says why
    moved = out / "runs" / runs[0]["id"] / "record.json"
    rec = json.loads(moved.read_text())
    rec["latency"]["device"] = "NVIDIA H100 80GB HBM3"
    moved.write_text(json.dumps(rec))
    r = run_cli("report", str(out), "--out", str(tmp_path / "mixed"))
    assert r.returncode == 0, r.stderr
    mixed = (tmp_path / "mixed" / "report.md").read_text()
    assert "latency (ms)" not in mixed and not (tmp_path / "mixed" / "acc_vs_latency.png").exists()
    assert "Latency is left out: the runs measured it on different devices (NVIDIA H100 80GB HBM3; cpu" in mixed
    orig = run_cli("report", str(out), "--accuracy", "original", "--out", str(tmp_path / "orig"))
    assert orig.returncode == 0 and "ORIGINAL PROTOCOL" in (tmp_path / "orig" / "report.md").read_text()
    assert orig.stdout.strip().splitlines()[-1].endswith("report.html")
    for x in records:  # one seed left: no spread to show, and the table says so instead of "± 0.00"
        if x["seed"] == 1:
            shutil.rmtree(out / "runs" / x["id"])
    one = run_cli("report", str(out), "--out", str(tmp_path / "one"))
    assert one.returncode == 0, one.stderr
    md = (tmp_path / "one" / "report.md").read_text()
    row = next(line for line in md.splitlines() if line.startswith("| uniform |"))
    assert "(1 seed)" in row and "±" not in row and "CI needs 2+ seeds" in md


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


def test_bad_sweeps_are_clear_errors(tmp_path, descent_dir):
    base = ["sweep", *TINY, "--out", str(tmp_path / "s")]
    cases = [
        (["--methods", "uniform,bogus", "--ratios", "0.25"], "unknown method 'bogus'"),
        (["--methods", "uniform"], "no budgets"),
        (["--methods", "", "--ratios", "0.25"], "no methods"),
        (["--methods", "uniform", "--ratios", "0.25", "--seeds", ""], "no seeds"),
        (["--methods", "neuralscale", "--ratios", "0.25"], "needs a descent directory"),
        (["--methods", "neuralscale", "--ratios", "0.25", "--from", str(tmp_path / "nope")], "does not exist"),
        (["--methods", "uniform", "--ratios", "-1"], "a width ratio must be a number in (0, 64]"),
    ]
    for extra, message in cases:
        r = run_cli(*base, *extra)
        assert r.returncode == 2 and message in r.stderr and len(r.stderr.strip().splitlines()) == 1, (extra, r.stderr)
    other = run_cli("sweep", *[a if a != "vgg11" else "resnet18" for a in TINY], "--methods", "neuralscale",
                    "--ratios", "0.25", "--from", str(descent_dir), "--out", str(tmp_path / "s2"))
    assert other.returncode == 2 and "fitted for vgg11" in other.stderr
    assert run_cli("report", str(tmp_path / "empty")).returncode == 2
    (tmp_path / "bad" / "runs" / "x").mkdir(parents=True)
    (tmp_path / "bad" / "runs" / "x" / "record.json").write_text("{not json")
    r = run_cli("report", str(tmp_path / "bad"))
    assert r.returncode == 2 and "not a run record" in r.stderr


def test_pruning_baselines_prune_to_budget_and_slicing_equals_masking(tmp_path):
    sp = ns.space("vgg11", "synthetic")
    splits = ns.data.load("synthetic", synthetic=dict(num_train=120, num_test=40)).split(0.1, 0)
    base = sp.uniform(0.125)
    small = sp.rebased(base)
    store = tmp_path / "runs"
    pre = RunSpec(model="vgg11", dataset="synthetic", method="uniform", widths=base, latency_batches=(),
                  config=TrainConfig(epochs=1, batch_size=32, device="cpu").to_dict())
    rec = execute(pre, store / pre.id, space=small, splits=splits, progress=False)
    assert rec["status"] == "finished"
    budget = small.params(small.uniform(0.5))
    methods = {"l1": "l1-global", "slimming": "slimming", "l1-uniform": "l1-prune"}
    for criterion, method in methods.items():
        spec = RunSpec(model="vgg11", dataset="synthetic", method=method, criterion=criterion, pretrained=pre.id,
                       budget={"metric": "params", "value": budget}, latency_batches=(),
                       config=TrainConfig(epochs=1, batch_size=32, lr=0.001, schedule="constant", device="cpu").to_dict())
        model, widths, callbacks, info = prune_pretrained(small, store / pre.id, spec)
        assert info["physical"] and not callbacks and [g.width for g in gates(model)] == widths
        assert budget * 0.97 <= small.params(widths) <= budget
        # the sliced network computes what the full one computes with the pruned channels' gates at 0
        full = small.build(base)
        full.load_state_dict(torch.load(store / pre.id / "checkpoint.pt", weights_only=True)["model"])
        scores = importance(small, full, criterion)
        w2, keep = (choose_uniform_widths if criterion == "l1-uniform" else choose_widths)(small, scores, budget)
        assert w2 == widths
        for g, k, w in zip(gates(full), keep, base):
            g.ones = torch.zeros(w)
            g.ones[k] = 1
        x = torch.randn(4, *sp.info.input_shape)
        full.eval(), model.eval()
        with torch.no_grad():
            assert torch.allclose(full(x), model(x), atol=1e-5)
        if criterion == "l1-uniform":  # ranked within each layer (see test_fidelity)
            assert all(torch.equal(k, torch.topk(sc, len(k)).indices.sort().values) for sc, k in zip(scores, keep))
        else:  # the most important channels (globally) are kept; only a layer's floor channel may break the order
            flat_kept = torch.cat([s[k] for s, k in zip(scores, keep)])
            flat_dropped = torch.cat([s[torch.tensor(sorted(set(range(len(s))) - set(k.tolist())), dtype=torch.long)]
                                      for s, k in zip(scores, keep)])
            assert flat_dropped.numel() > 0
            assert int((flat_kept < flat_dropped.max()).sum()) <= len(base)
        done = execute(spec, store / spec.id, space=small, splits=splits, progress=False, store_root=store)
        assert done["status"] == "finished" and done["pruning"]["criterion"] == criterion
        assert done["params"] <= budget
    with pytest.raises(NeuralscaleError, match="below what pruning can reach"):
        choose_widths(small, [torch.rand(w) for w in base], 10)


def test_masking_baseline_for_a_model_that_cannot_be_sliced(tmp_path):
    sp = ns.space("resnet18", "synthetic")
    small = sp.rebased(sp.uniform(0.0625))
    splits = ns.data.load("synthetic", synthetic=dict(num_train=64, num_test=16)).split(0.1, 0)
    store = tmp_path / "runs"
    pre = RunSpec(model="resnet18", dataset="synthetic", method="uniform", widths=small.base_widths,
                  latency_batches=(), config=TrainConfig(epochs=1, batch_size=32, device="cpu").to_dict())
    assert execute(pre, store / pre.id, space=small, splits=splits, progress=False)["status"] == "finished"
    budget = small.params(small.uniform(0.6))
    spec = RunSpec(model="resnet18", dataset="synthetic", method="slimming", criterion="slimming", pretrained=pre.id,
                   budget={"metric": "params", "value": budget}, latency_batches=(),
                   config=TrainConfig(epochs=1, batch_size=32, device="cpu").to_dict())
    assert not ChannelGraph(small, small.base_widths).exact
    model, widths, callbacks, info = prune_pretrained(small, store / pre.id, spec)
    assert not info["physical"] and isinstance(callbacks[0], GateMask) and small.params(widths) <= budget
    rec = execute(spec, store / spec.id, space=small, splits=splits, progress=False, store_root=store)
    assert rec["status"] == "finished" and rec["widths"] == widths


def test_baselines_on_a_machine_without_the_pretrained_weights_train_them_again_once(tmp_path):
    """A study travels as records without checkpoints: on another machine the pretrained run is finished but
    its weights are not there. The baselines that still need them train the same spec again, once, in
    <run>/weights/, beside the run's untouched record; the runs finished before are not redone."""
    out = tmp_path / "sweep"
    # without slimming's sparsity penalty, slimming and l1-prune prune one trained network
    base = ["sweep", *TINY, "--seeds", "0", "--epochs", "1", "--finetune-epochs", "1", "--slimming-sparsity", "0",
            "--out", str(out), "--quiet"]
    r = run_cli(*base, "--methods", "slimming", "--ratios", "0.0625")
    assert r.returncode == 0, r.stderr
    (pre,) = [x for x in load_records(out) if x["method"] == "uniform"]
    (done,) = [x for x in load_records(out) if x["method"] == "slimming"]
    for ckpt in out.glob("runs/*/checkpoint.pt"):  # what a clone of the committed study holds
        ckpt.unlink()
    moved = out / "runs" / pre["id"] / "record.json"  # trained on a GPU machine: retrained on this one's device
    rec = json.loads(moved.read_text())
    rec["spec"]["config"]["device"] = "cuda:7"
    moved.write_text(json.dumps(rec))
    kept = {x: (out / "runs" / x / "record.json").read_bytes() for x in (pre["id"], done["id"])}
    # three more baselines of the same pretrained run, two at a time: one trains the weights, the other waits
    r = run_cli(*base, "--methods", "slimming,l1-prune", "--ratios", "0.0625,0.125", "--executor", "local",
                "--workers", "2", "--threads", "1")
    assert r.returncode == 0, r.stderr
    for x, before in kept.items():  # neither the pretrained run nor the finished baseline is redone
        assert (out / "runs" / x / "record.json").read_bytes() == before
    again = read_record(out / "runs" / pre["id"] / "weights")
    assert again["status"] == "finished" and again["id"] == pre["id"] and again["attempts"] == 1
    assert (out / "runs" / pre["id"] / "weights" / "checkpoint.pt").exists()
    new = [x for x in load_records(out) if x["method"] != "uniform" and x["id"] != done["id"]]
    assert len(new) == 3 and all(x["status"] == "finished" for x in new)
    said = [(out / "runs" / x["id"] / "log.txt").read_text() for x in new]  # a worker's log is its run's
    assert sum("its weights are not on this machine" in s for s in said) == 1, said
    for x in new:
        info = x["pruning"]
        assert info["from"] == pre["id"] and info["retrained"] is True
        assert info["from_test_acc"] == pre["summary"]["final_test_acc"]
        assert info["retrained_test_acc"] == again["summary"]["final_test_acc"]
    assert len(load_records(out)) == 5  # the copy in weights/ is not a run of the store
    assert again["environment"]["device"] == "cpu"

    # the copy's record came from another machine without its weights: trained again, not trusted
    (out / "runs" / pre["id"] / "weights" / "checkpoint.pt").unlink()
    r = run_cli(*base, "--methods", "slimming", "--ratios", "0.0625,0.125,0.25")
    assert r.returncode == 0, r.stderr
    assert (out / "runs" / pre["id"] / "weights" / "checkpoint.pt").exists()
    assert len([x for x in load_records(out) if x["status"] == "finished"]) == 6

    # a copy that failed: every baseline of it stops with one clear error (no traceback) until it is removed
    weights = out / "runs" / pre["id"] / "weights"
    (weights / "checkpoint.pt").unlink()
    failed = json.loads((weights / "record.json").read_text())
    failed.update(status="failed", error="RuntimeError: diverged")
    (weights / "record.json").write_text(json.dumps(failed))
    r = run_cli(*base, "--methods", "l1-prune", "--ratios", "0.25")
    assert r.returncode == 1
    (bad,) = [x for x in load_records(out) if x["status"] == "failed"]
    assert bad["error"].startswith(f"NeuralscaleError: training {pre['id']} again for its weights failed "
                                   "(RuntimeError: diverged)"), bad["error"]
    rep = run_cli("report", str(out), "--json")
    assert rep.returncode == 0 and len(json.loads(rep.stdout)["runs"]) == 7
    md = (out / "report" / "report.md").read_text()  # the recipe of the runs from scratch, and the fine-tuning
    assert "Recipe: 1 epochs, batch 32, lr 0.05 (cosine)" in md
    assert "The pruning baselines: pruned from a trained run, then fine-tuned 1 epochs at lr 0.001 (constant)" in md


def test_experiment_file_runs_descent_sweep_and_report(tmp_path):
    toml = tmp_path / "exp.toml"
    toml.write_text("""
[experiment]
model = "vgg11"
dataset = "synthetic"
out = "exp-out"
device = "cpu"

[data]
train_subset = 200   # the flags' names (--train-subset) ...
test = 40            # ... or the configuration's

[descent]
base_ratio = 0.0625
iterations = 1
warmup_epochs = 1
prune-interval = 2
prune_k = 3
prune_fraction = 0.8
batch_size = 64
prune_past_one = true
allow_fallback = true

[sweep]
methods = ["uniform", "neuralscale"]
ratios = [0.0625]
seeds = [0]

[sweep.train]
epochs = 1
batch_size = 32

[executor]
name = "local"
workers = 2
threads = 1
""")
    r = run_cli("experiment", str(toml), "--quiet")
    assert r.returncode == 0, r.stderr
    last = r.stdout.strip().splitlines()[-1]
    assert last == str(tmp_path / "exp-out" / "report" / "report.html")
    assert (tmp_path / "exp-out" / "descent" / "fits.json").exists()
    assert len(load_records(tmp_path / "exp-out")) == 2
    assert "growth" in (tmp_path / "exp-out" / "report" / "report.md").read_text()

    bad = tmp_path / "bad.toml"
    bad.write_text("[experiment\nmodel = 1")
    r = run_cli("experiment", str(bad))
    assert r.returncode == 2 and "not valid TOML" in r.stderr
    bad.write_text('[experiment]\nmodel = "vgg11"\ndataset = "synthetic"\n[sweep]\nmethods = ["uniform"]\nratios = [0.1]\nbogus = 1\n')
    r = run_cli("experiment", str(bad))
    assert r.returncode == 2 and "unknown sweep setting(s): bogus" in r.stderr
    bad.write_text('[experiment]\nmodel = "vgg11"\ndataset = "synthetic"\n[sweep]\nmethods = ["uniform"]\n'
                   'ratios = [0.1]\n[executor]\nname = "local"\nworkers = "two"\n')
    r = run_cli("experiment", str(bad))
    assert r.returncode == 2 and "[executor] workers must be" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("experiment", str(tmp_path / "missing.toml"))
    assert r.returncode == 2 and "does not exist" in r.stderr
    # the executor's settings may be replaced for one invocation (a bigger machine), checked as the file's
    e = prepare(toml, executor={"workers": 3, "threads": None, "devices": ["cpu"]})
    assert e.executor.slots == 3 and e.executor.threads == 1
    sequential = tmp_path / "seq.toml"  # no [executor]: one run at a time, unless workers are asked for
    sequential.write_text(toml.read_text().split("[executor]")[0])
    assert type(prepare(sequential).executor).__name__ == "Sequential"
    assert prepare(sequential, executor={"workers": 2}).executor.slots == 2
    ray = tmp_path / "ray.toml"
    ray.write_text(toml.read_text().replace('name = "local"', 'name = "ray"').replace("workers = 2\n", ""))
    with pytest.raises(NeuralscaleError, match="--devices places local workers"):
        prepare(ray, executor={"devices": ["cuda:0"]})
    r = run_cli("experiment", str(toml), "--workers", "0")
    assert r.returncode == 2 and "workers must be an integer of at least 1" in r.stderr and "Traceback" not in r.stderr
    assert run_cli("experiment", "--help").stdout.count("override [executor]") == 3


def test_statistics():
    assert t975(1) == 12.706 and t975(10) == 2.228 and t975(1000) == 1.96
    gap, ci = welch_gap([1.0, 2.0, 3.0], [0.0, 1.0, 2.0])
    assert gap == pytest.approx(1.0)
    # se = sqrt(1/3 + 1/3), df = 4 -> t = 2.776
    assert ci == pytest.approx(2.776 * (2 / 3) ** 0.5)
    assert welch_gap([1.0], [0.0, 1.0]) == (0.5, None)
