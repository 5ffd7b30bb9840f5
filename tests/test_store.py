"""store.py and layout.py: run records, the run store's plan, recipe and lock, and the folders' file names."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from neuralscale.store import load_records

from helpers import Command, run_cli, strict_json

SWEEP = ["sweep", "--model", "vgg11", "--dataset", "synthetic", "--methods", "uniform", "--ratios", "0.0625,0.125",
         "--seeds", "0,1,2", "--epochs", "3", "--train-subset", "640", "--test-subset", "60", "--batch-size", "32",
         "--lr", "0.05", "--momentum", "0.9", "--schedule", "cosine", "--device", "cpu"]


def test_a_store_holds_one_recipe_and_may_grow(tmp_path):
    out = tmp_path / "s"
    base = [*SWEEP[:SWEEP.index("--ratios")], "--ratios", "0.0625", "--seeds", "0", "--epochs", "1",
            "--train-subset", "64", "--test-subset", "16", "--device", "cpu", "--out", str(out), "--quiet"]
    assert run_cli(*base).returncode == 0
    r = run_cli(*[a if a != "1" else "2" for a in base])  # --epochs 2: another recipe
    assert r.returncode == 2 and "holds a sweep with another recipe (train.epochs: 1 before, 2 now)" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    r = run_cli(*[a if a != "0" else "0,1" for a in base])  # more seeds: the same recipe, grown
    assert r.returncode == 0, r.stderr
    plan = strict_json(out / "sweep.json")
    assert len(plan["runs"]) == 2 and plan["recipe"]["train"]["epochs"] == 1
    assert len(load_records(out)) == 2


def test_two_sweeps_on_one_store_train_every_run_once(tmp_path):
    out = tmp_path / "s"
    args = [*SWEEP, "--seeds", "0", "--out", str(out), "--quiet"]
    procs = [Command(args) for _ in range(2)]  # two commands at once, each a process of its own
    results = [p.communicate(timeout=300) + (p.returncode,) for p in procs]
    codes = sorted(code for _, _, code in results)
    assert codes[0] == 0, results
    if codes[1] != 0:  # the other found the store in use: one clear line, nothing trained
        err = next(e for _, e, c in results if c != 0)
        assert codes[1] == 2 and "is in use by another neuralscale command (pid" in err
        assert len(err.strip().splitlines()) == 1
    records = load_records(out)
    assert len(records) == 2 and all(r["status"] == "finished" and r["attempts"] == 1 for r in records)


def test_the_layouts_name_every_file(tmp_path):
    from neuralscale.layout import ExperimentDir, ReportDir, RunDir, StoreDir
    from neuralscale.store import RunStore
    run = RunStore(tmp_path).run_dir("abc")
    assert isinstance(run, RunDir) and Path(run) == tmp_path / "runs" / "abc"  # a path wherever one is taken
    assert (run.record.name, run.checkpoint.name, run.metrics.name, run.log.name) == (
        "record.json", "checkpoint.pt", "metrics.csv", "log.txt")
    assert run.weights.path == run.path / "weights" and StoreDir(tmp_path).plan.name == "sweep.json"
    assert ExperimentDir(tmp_path).descent == tmp_path / "descent" and StoreDir(tmp_path).report == tmp_path / "report"
    assert all(ReportDir.belongs(n) for n in ("report.md", "summary.json", "acc_vs_macs.svg", ".lock", "x.png"))
    assert not ReportDir.belongs("notes.txt")
    assert ReportDir.is_figure(Path("growth_iteration_03.pdf")) and not ReportDir.is_figure(Path("mine.png"))


def test_a_folder_not_neuralscales_is_refused_by_name_and_a_run_directory_clears_only_its_run(tmp_path):
    """A mutation audit of layout.py: the refusal's list of what a folder holds (sorted, three then a count), its
    lock, its marker and force; what `train --force` clears; where a store's runs are; and which folder is a report
    (its header, its summary) and which names are a report's figures each passed the tests when changed."""
    from neuralscale.errors import NeuralscaleError
    from neuralscale.layout import ReportDir, RunDir, StoreDir, claim_folder, growth_figure_name
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / ".lock").write_text("")
    claim_folder(folder, folder / "record.json", "run directory")  # its lock alone is no content
    for name in ("d.txt", "c.txt", "b.txt", "a.txt"):
        (folder / name).write_text("mine")
    with pytest.raises(NeuralscaleError) as err:
        claim_folder(folder, folder / "record.json", "run directory")
    assert f"{folder} is not empty (a.txt, b.txt, c.txt and 1 more) and is not a run directory (no record.json)" \
        in str(err.value)
    claim_folder(folder, folder / "record.json", "run directory", force=True)
    claim_folder(folder, folder / "a.txt", "run directory")  # its marker there: a folder of its own
    for name in ("c.txt", "d.txt"):
        (folder / name).unlink()
    with pytest.raises(NeuralscaleError, match=r"is not empty \(a\.txt, b\.txt\) and"):
        claim_folder(folder, folder / "record.json", "run directory")
    claim_folder(folder, folder / "record.json", "run directory", also=lambda p: p.suffix == ".txt")  # beside it

    run = RunDir(tmp_path / "run")
    (run.weights.path / "deep").mkdir(parents=True)
    for f in (run.record, run.checkpoint, run.metrics, run.log, run.path / "notes.txt"):
        f.write_text("x")
    run.clear()
    assert sorted(p.name for p in run.path.iterdir()) == ["notes.txt"]
    run.clear()  # nothing left to clear: no error

    store = StoreDir(tmp_path / "store")
    store.path.mkdir()
    assert store.runs_folder() == store.path  # a folder of run directories is its own runs folder
    store.runs.mkdir()
    assert store.runs_folder() == store.runs

    report = ReportDir(tmp_path / "report")
    report.path.mkdir()
    assert not report.is_report()  # no report.md
    report.markdown.write_text("# my notes\n")
    assert not report.is_report()
    report.markdown.write_text(ReportDir.HEADER + " of a store\n")
    assert report.is_report()
    for summary, ok in (('{"store": "s", "rows": []}', True), ('{"store": "s"}', False), ("[1]", False),
                        ("{", False), ('["store", "rows"]', False), (b"\xff\xfe", False)):
        (report.summary.write_bytes if isinstance(summary, bytes) else report.summary.write_text)(summary)
        assert report.is_report() is ok, summary
    report.markdown.write_bytes(b"\xff# neuralscale report\n")
    assert not report.is_report()
    assert ReportDir.belongs(".report.md.a1b2c3d_.ns.tmp") and not ReportDir.belongs(".notes.abcdefgh.tmp")
    assert growth_figure_name(3) == "growth_iteration_03.png" and ReportDir.is_figure(Path(growth_figure_name(3)))
    for name in ("acc_vs_params_old.png", "my_heatmap.png", "heatmap.txt", "widths"):
        assert not ReportDir.is_figure(Path(name)), name
    assert ReportDir.is_figure(Path("acc_vs_latency.svg")) and ReportDir.is_figure(Path("widths.png"))


def test_records_are_read_strictly(tmp_path):
    from neuralscale.errors import NeuralscaleError
    from neuralscale.store import is_run_dir, read_record, write_record
    assert read_record(tmp_path) is None and not is_run_dir(tmp_path)

    from neuralscale.spec import RunSpec

    def running(label: str) -> dict:  # what every record holds from its first write on (runs.execute)
        spec = RunSpec(model="vgg11", dataset="synthetic", method="uniform", config={}, label=label)
        return {"id": spec.id, "status": "running", "kind": "run", "method": "uniform", "label": label,
                "model": "vgg11", "dataset": "synthetic", "seed": 0, "budget": {}, "spec": spec.to_dict(),
                "config": {}}
    x = running("x")
    write_record(tmp_path, x)
    assert read_record(tmp_path)["id"] == x["id"] and is_run_dir(tmp_path)
    for damaged in ("{", '{"id": "x", "status": "lost"}', "[]", '{"status": "running"}',
                    json.dumps({**x, "seed": "0"}), json.dumps({**x, "kind": "other"}),
                    json.dumps({**x, "spec": {}}), json.dumps({**x, "spec": {**x["spec"], "widths": ["8"]}}),
                    json.dumps({**x, "spec": running("y")["spec"]})):  # another run's spec under this id
        (tmp_path / "record.json").write_text(damaged)
        with pytest.raises(NeuralscaleError, match=f"is not a run record.*; restore it, or remove {tmp_path} to "
                                                   "train that run again$"):  # the way on, as fits.json's says
            read_record(tmp_path)
    # a folder of run directories reads like a store
    ids = {name: running(name)["id"] for name in ("b", "a")}
    for name in ("b", "a"):
        write_record(tmp_path / "runs" / ids[name], running(name))
    assert [r["id"] for r in load_records(tmp_path)] == sorted(ids.values())
    assert [r["id"] for r in load_records(tmp_path / "runs")] == sorted(ids.values())


def _record(label: str = "x", **changes) -> dict:
    """A finished run's record as a run writes it (its spec's id), with `changes`."""
    from neuralscale.spec import RunSpec
    spec = RunSpec(model="vgg11", dataset="synthetic", method="uniform", config={}, label=label)
    return {"id": spec.id, "status": "finished", "kind": "run", "method": "uniform", "label": label, "model": "vgg11",
            "dataset": "synthetic", "seed": 0, "budget": {"metric": "params", "value": 1000}, "spec": spec.to_dict(),
            "config": {}, "widths": [4] * 8, "params": 1000, "macs": 5000, "summary": {"final_test_acc": 50.0},
            "history": [{"epoch": 0}], "attempts": 1, "started": 1.0, "wall_s": 2.0, "finished": 3.0,
            "normalization": {"mean": [1.0, 2.0, 3.0], "std": [1.0, 1.0, 1.0]},
            "latency": {"batches": {"1": {"median_ms": 1.0, "p10_ms": None, "p90_ms": None, "iqr_ms": None}}},
            **changes}


INF = float("inf")


@pytest.mark.parametrize("changes, says", [
    (dict(status="lost"), "a run record: status is 'lost'"),
    (dict(seed=2**53 + 1), "seed is 9007199254740993, out of range"),
    (dict(params=-1), "params is -1, out of range"),
    (dict(widths=[4, 0, 4, 4, 4, 4, 4, 4]), "widths are [4, 0, 4, 4, 4, 4, 4, 4], not positive"),
    (dict(widths=[]), "widths are [], not positive"),
    (dict(normalization={"mean": [1.0, 2.0, 3.0], "std": [1.0, 0.0, 1.0]}), "normalization is not"),
    (dict(normalization={"mean": [1.0, 2.0, 3.0], "std": [1.0, 1.0]}), "normalization is not"),
    (dict(normalization={"mean": "grey"}), "normalization is not"),
    (dict(summary={"final_test_acc": None}), "summary.final_test_acc is None, not a number"),
    (dict(summary={"final_test_acc": True}), "summary.final_test_acc is True, not a number"),
    (dict(summary={"final_test_acc": 50.0, "best_val_epoch": "last"}), "summary.best_val_epoch is 'last'"),
    (dict(summary={"final_test_acc": 50.0, "best_val_epoch": INF}), "summary.best_val_epoch is inf"),
    (dict(budget={"metric": "flops", "value": 1000}), "budget is"),
    (dict(budget={"metric": "params"}), "budget is"),
    (dict(latency={"batches": {"1": {"median_ms": None}}}), "latency is not a measurement"),
])
def test_a_damaged_record_names_the_field(tmp_path, changes, says):
    """Each check of a record read back, one damage at a time on an otherwise sound finished record (a mutation
    audit: each could go unnoticed by the damaged-files matrix, whose damages other checks catch first)."""
    from neuralscale.errors import NeuralscaleError
    from neuralscale.store import read_record
    (tmp_path / "record.json").write_text(json.dumps(_record()))
    assert read_record(tmp_path)["status"] == "finished"
    (tmp_path / "record.json").write_text(json.dumps(_record(**changes)))  # (Infinity as Python's json writes it)
    with pytest.raises(NeuralscaleError, match="is not " + re.escape(says) if says.startswith("a ") else
                       "is not a finished run record: " + re.escape(says)):
        read_record(tmp_path)


def test_a_runs_status_is_its_records(tmp_path):
    """What a sweep decides to run again by: a running (interrupted) or failed run's status, None without a record."""
    from neuralscale.store import RunStore
    store = RunStore(tmp_path)
    for status in ("running", "failed", "finished"):
        record = _record(status)
        store.write(record["id"], {**record, "status": status})
        assert store.status(record["id"]) == status
    assert store.status(_record("none")["id"]) is None


def test_a_folder_of_runs_is_read_in_order_and_each_run_once(tmp_path):
    """A store's records in the order of their directories' names; a record in another run's directory, or one run
    in two directories of a folder of `train --out` runs, is an error naming both."""
    from neuralscale.errors import NeuralscaleError
    from neuralscale.store import write_record
    labels = ["f", "c", "a", "e", "b", "d"]
    for label in labels:
        write_record(tmp_path / "store" / "runs" / _record(label)["id"], _record(label))
    assert [r["label"] for r in load_records(tmp_path / "store")] == sorted(labels, key=lambda x: _record(x)["id"])
    moved = tmp_path / "store" / "runs" / "elsewhere"
    (tmp_path / "store" / "runs" / _record("c")["id"]).rename(moved)
    with pytest.raises(NeuralscaleError, match=f"is the record of run {_record('c')['id']}, not of elsewhere"):
        load_records(tmp_path / "store")
    for name in ("run1", "run2"):
        write_record(tmp_path / "mine" / name, _record("a"))
    with pytest.raises(NeuralscaleError, match=r"run1 and .*run2 hold the same run"):
        load_records(tmp_path / "mine")


def test_a_plan_keeps_its_runs_and_laws_as_it_grows(tmp_path):
    """A store's plan keeps the runs planned before (first, in their order) and every descent iteration's law."""
    from neuralscale.store import RunStore
    store = RunStore(tmp_path)
    one = {"alpha": [1.0], "beta": [0.5]}
    assert store.save_plan({"model": "vgg11", "laws": {"1": one}}, {}, ["b", "a"], "then") == ["b", "a"]
    assert store.save_plan({"model": "vgg11", "laws": {"2": one}}, {}, ["c", "a"], "now") == ["b", "a", "c"]
    plan = store.load_plan()
    assert plan["runs"] == ["b", "a", "c"] and list(plan["recipe"]["laws"]) == ["1", "2"]
    assert plan["written"] == "now"


def test_recipe_differences_are_said_four_at_most():
    from neuralscale.store import recipe_difference
    old, new = {f"k{i}": i for i in range(6)}, {f"k{i}": i + 1 for i in range(6)}
    said = recipe_difference(old, new)
    assert said.startswith("k0: 0 before, 1 now; k1: 1 before, 2 now") and said.endswith("k3: 3 before, 4 now; and 2 more")


def test_what_varies_between_executions_is_stripped():
    from neuralscale.store import budget_key, strip_timing
    record = {"id": "x", "started": 1, "finished": 2, "wall_s": 3, "attempts": 2, "resumed": True, "latency": {},
              "environment": {}, "summary": {"final_test_acc": 50.0, "images_per_s": 9.0},
              "history": [{"epoch": 0, "train_time_s": 1.0, "images_per_s": 5.0, "train_loss": 2.0}]}
    assert strip_timing(record) == {"id": "x", "summary": {"final_test_acc": 50.0},
                                    "history": [{"epoch": 0, "train_loss": 2.0}]}
    assert budget_key({"params": 1234}) == ("params", 1234.0)  # a record without a budget: by its parameters


def test_a_run_started_from_weights_is_identified_by_the_run_it_started_from():
    """A warm start's id names the run it started from by id, not by where that run lies (a mutation audit: the
    source left out of the identity passed); and a store's recipe names a descent iteration whose law changed."""
    from neuralscale.spec import RunSpec
    from neuralscale.store import recipe_difference
    common = dict(model="vgg11", dataset="synthetic", method="uniform", widths=[4] * 8, config={"epochs": 1})
    a = RunSpec(**common, init={"run": "/here/a", "id": "uniform-r0.25-s0-aaaaaaaaaa"})
    moved = RunSpec(**common, init={"run": "/elsewhere/a", "id": "uniform-r0.25-s0-aaaaaaaaaa"})
    other = RunSpec(**common, init={"run": "/here/a", "id": "uniform-r0.25-s1-bbbbbbbbbb"})
    cold = RunSpec(**common)
    assert a.id == moved.id and len({a.id, other.id, cold.id}) == 3
    laws = {"1": {"alpha": [1.0], "beta": [0.5]}, "2": {"alpha": [2.0], "beta": [0.4]}}
    changed = {**laws, "2": {"alpha": [2.0], "beta": [0.45]}}
    assert recipe_difference({"laws": laws}, {"laws": changed}) == "the laws of descent iteration(s) 2"
    assert recipe_difference({"laws": laws}, {"laws": {**laws, "3": {}}}) == ""  # a new iteration adds, not differs


def test_every_field_that_decides_a_run_is_in_its_id():
    """Field by field: changing any field of a run's spec or its training configuration changes the run's id,
    except the few written down as not deciding the outcome (where the data and a warm start's source lie, the
    device, the evaluation batch and the latency batches measured after training). A field added to either class
    is in the id unless it is listed here on purpose, so a new setting cannot silently join another's runs."""
    import dataclasses

    from neuralscale.budget import Budget
    from neuralscale.spec import RunSpec
    from neuralscale.train import TrainConfig
    not_deciding = {"config.device", "config.eval_batch_size", "latency_batches"}
    other_config = {"epochs": 7, "batch_size": 64, "lr": 0.05, "momentum": 0.9, "weight_decay": 1e-4,
                    "nesterov": True, "schedule": "cosine", "milestones": [0.5], "gamma": 0.2, "warmup_epochs": 3,
                    "augment": False, "seed": 3, "device": "cpu", "channels_last": True, "amp": True,
                    "compile": True, "cuda_graphs": True, "dtype": "float64", "eval_batch_size": 100,
                    "val_fraction": 0.2, "split_seed": 1, "eval_every": 2, "bn_sparsity": 1e-4}
    assert set(other_config) == {f.name for f in dataclasses.fields(TrainConfig)}, "a new training setting: add it"
    base = dict(model="vgg11", dataset="synthetic", method="uniform", widths=[4] * 8,
                config={**TrainConfig(momentum=0.5).to_dict()}, budget=Budget("params", 1000, 0.25), label="uniform",
                data={"train": 64, "test": 16}, pretrained=None, criterion=None, latency_batches=(1,), init=None,
                architecture=None)
    other_spec = dict(model="resnet18", dataset="cifar10", method="neuralscale", widths=[5] * 8,
                      budget=Budget("params", 2000, 0.5), label="neuralscale@2", convcut=True,
                      data={"train": 128, "test": 16}, pretrained="vgg11-full-s0-aaaaaaaaaa", criterion="l1",
                      latency_batches=(1, 8), init={"run": "/a", "id": "uniform-s0-aaaaaaaaaa"},
                      architecture="deadbeef", portable=True)
    assert set(other_spec) | {"config"} == {f.name for f in dataclasses.fields(RunSpec)}, "a new spec field: add it"
    first = RunSpec(**base).id
    for name, value in [*((f"config.{k}", v) for k, v in other_config.items()), *other_spec.items()]:
        if name.startswith("config."):
            key = name.partition(".")[2]
            changed = RunSpec(**{**base, "config": TrainConfig.from_dict({**base["config"], key: value}).to_dict()})
        else:
            changed = RunSpec(**{**base, name: value})
        assert (changed.id == first) == (name in not_deciding), name
    # and within the fields that hold a place: where the data lie and where a warm start's source lies
    assert RunSpec(**{**base, "data": {**base["data"], "data_dir": "/elsewhere"}}).id == first
    warm = RunSpec(**{**base, "init": other_spec["init"]})
    assert RunSpec(**{**base, "init": {**other_spec["init"], "run": "/b"}}).id == warm.id
    # and where a model file lies, for a run that knows its network by the file's name (zoo.model_identity); a run
    # recorded before (not portable) keeps the id that hashed it
    own = {**base, "model": "file:/study/nets.py:Net", "architecture": "deadbeef"}
    for portable in (True, False):
        here, there = (RunSpec(**{**own, "model": m, "portable": portable}).id
                       for m in ("file:/study/nets.py:Net", "file:/elsewhere/study/nets.py:Net"))
        assert (here == there) == portable
        assert RunSpec(**{**own, "model": "file:/study/other.py:Net", "portable": portable}).id != here
        assert RunSpec(**{**own, "portable": portable, "architecture": "0ddba11"}).id != here


def test_a_records_spec_is_checked_field_by_field_and_names_what_is_wrong():
    """spec_problem's own lines, one damage at a time (a mutation audit: the damaged-files matrix refuses these
    records anyway, by the id they no longer hash to, so a dropped check passed); and what a spec's id is made
    of: the label (the method's unless given), ten hex digits of digest, the same for the same run written
    otherwise (widths as floats, the configuration's keys in another order)."""
    from neuralscale.spec import RunSpec, spec_problem
    spec = RunSpec(model="vgg11", dataset="synthetic", method="uniform", config={"seed": 3, "epochs": 1},
                   widths=[4] * 8)
    d, rid = spec.to_dict(), spec.id
    assert spec.label == "uniform" and rid.startswith("uniform-s3-") and "architecture" not in d
    digest = rid.rpartition("-")[2]
    assert len(digest) == 10 and int(digest, 16) >= 0
    assert spec_problem(d, rid) == "" and spec_problem(d, "a-label-of-0.1.0-" + digest) == ""
    assert spec_problem(d, "uniform-s3-0123456789") == f"spec is run {rid}'s, not uniform-s3-0123456789's"
    for damaged, says in [([], "spec is not a table"),
                          ({k: v for k, v in d.items() if k != "config"}, "spec.config is missing"),
                          ({**d, "colour": "red"}, "spec.colour is not a field of a run spec"),
                          ({**d, "budget": "half"}, "spec.budget is 'half', not what a run spec holds there"),
                          ({**d, "widths": [4, 0, 4, 4, 4, 4, 4, 4]}, "spec.widths are not positive"),
                          ({**d, "widths": []}, "spec.widths are not positive"),
                          ({**d, "init": {"run": "/a"}}, "spec.init does not name a run and its id")]:
        assert spec_problem(damaged, rid) == says, says
    same = RunSpec(model="vgg11", dataset="synthetic", method="uniform", config={"epochs": 1, "seed": 3},
                   widths=[4.0] * 8)
    assert same.id == rid and same.widths == [4] * 8 and all(type(w) is int for w in same.widths)
    assert RunSpec(**{**d, "label": "(mine)"}).id.startswith("mine-s3-")  # no dash left at either end


def test_a_store_of_an_image_folder_named_another_way_says_how_it_was_named(tmp_path, monkeypatch):
    """A sweep into a store whose runs named their image folder another way (a relative name, now the full path):
    "another recipe (dataset: ...)" alone; it says both names, that both name one folder here, and how to name it."""
    from neuralscale.errors import NeuralscaleError
    from neuralscale.store import RunStore
    (tmp_path / "imgs").mkdir()
    monkeypatch.chdir(tmp_path)
    old = {"recipe": {"model": "vgg11", "dataset": "imagefolder:imgs"}}
    with pytest.raises(NeuralscaleError, match=re.escape(
            f"(here both name one folder); name it imagefolder:imgs, from the folder it was named in then); its runs "
            "would be pooled")):
        RunStore(tmp_path / "store").refuse_other_recipe(old, {"model": "vgg11",
                                                               "dataset": f"imagefolder:{tmp_path / 'imgs'}"})
