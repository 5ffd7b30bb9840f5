"""Sweeps, the run store, the pruning baselines, reports and experiment files: real runs on tiny data."""

from __future__ import annotations

import json
import math
import os
import re
import signal
import time

import pytest
import torch

import neuralscale as ns
from helpers import TINY_RUN_ARGS, Command, run_cli
from neuralscale.baselines import GateMask, choose_uniform_widths, choose_widths, importance, prune_pretrained
from neuralscale.errors import NeuralscaleError
from neuralscale.models.gate import gates
from neuralscale.graph import ChannelGraph
from neuralscale.runs import RunSpec, execute
from neuralscale.store import load_records, read_record
from neuralscale.sweep import SweepConfig, plan, preset, recipe
from neuralscale.train import TrainConfig, paper_config

TINY = TINY_RUN_ARGS


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


def test_one_network_and_dataset_spelled_several_ways_are_one_sweeps_runs():
    """`VGG11` is `vgg11`, `Synthetic` is `synthetic`, `resnet18-convcut` is `resnet18 --convcut`: the runs' ids
    hash one spelling of each, so that a store resumed with another spelling runs nothing again (before, each
    spelling was another run, or a store of another recipe)."""
    def ids(model, dataset, convcut=False):
        cfg = SweepConfig(model=model, dataset=dataset, convcut=convcut, methods=["uniform"], ratios=[0.25],
                          seeds=[0], train={"epochs": 1})
        return cfg, [s.id for s in plan(cfg)], recipe(cfg)

    cfg, plain, rec = ids("vgg11", "synthetic")
    for model, dataset in (("VGG11", "Synthetic"), ("Vgg11", "SYNTHETIC")):
        other, found, other_rec = ids(model, dataset)
        assert (other.model, other.dataset, found, other_rec) == ("vgg11", "synthetic", plain, rec)
    flag, convcut, _ = ids("resnet18", "synthetic", convcut=True)
    suffix, spelled, _ = ids("ResNet18-convcut", "synthetic")
    assert (flag.model, suffix.model, suffix.convcut, spelled) == ("resnet18-convcut",) * 2 + (True, convcut)
    assert convcut != ids("resnet18", "synthetic")[1]  # the shortcuts are another network
    with pytest.raises(NeuralscaleError, match="unknown model 'VGG99'"):  # an unknown name said as given
        plan(SweepConfig(model="VGG99", dataset="synthetic", methods=["uniform"], ratios=[0.25]))


def test_a_store_of_another_spelling_keeps_its_runs_ids(tmp_path, monkeypatch, caplog):
    """A store written before sweeps spelled a model and dataset one way holds runs whose ids hash its spelling
    (`VGG11` on `Synthetic`): resumed with any spelling of the same, none is run again; another network is still
    another recipe."""
    import neuralscale.sweep as sweep_module
    out = tmp_path / "s"
    kw = dict(methods=["uniform"], ratios=[0.03125], seeds=[0], data={"train": 64, "test": 16},
              train={"epochs": 1, "batch_size": 32, "device": "cpu"})
    with monkeypatch.context() as m:  # the release before: names kept as given
        m.setattr(sweep_module, "model_spelling", lambda model, convcut: (model, convcut))
        m.setattr(sweep_module, "dataset_name", lambda name: name)
        (old,) = sweep_module.run_sweep(SweepConfig(model="VGG11", dataset="Synthetic", **kw), out, progress=False)
    assert (old["model"], old["dataset"], old["status"]) == ("VGG11", "Synthetic", "finished")
    kept = (out / "runs" / old["id"] / "record.json").read_bytes()
    for model, dataset in (("vgg11", "synthetic"), ("VGG11", "Synthetic"), ("vgg11", "SYNTHETIC")):
        caplog.clear()
        with caplog.at_level("INFO", logger="neuralscale"):
            (again,) = sweep_module.run_sweep(SweepConfig(model=model, dataset=dataset, **kw), out, progress=False)
        assert again["id"] == old["id"] and (out / "runs" / old["id"] / "record.json").read_bytes() == kept
        assert "as the store spells them (VGG11 on Synthetic)" in caplog.text
        assert "1 already done, 0 to run" in caplog.text
    assert json.loads((out / "sweep.json").read_text())["recipe"]["model"] == "VGG11"
    with pytest.raises(NeuralscaleError, match="holds a sweep with another recipe"):
        sweep_module.run_sweep(SweepConfig(model="resnet18", dataset="synthetic", **kw), out, progress=False)
    # an experiment file checks the store's recipe before its work starts: as its sweep will, spelled as the store
    from neuralscale.experiment import prepare
    f = tmp_path / "e.toml"
    for model, fine in (("vgg11", True), ("resnet18", False)):
        f.write_text(f'[experiment]\nmodel = "{model}"\ndataset = "synthetic"\ndevice = "cpu"\n'
                     '[data]\ntrain = 64\ntest = 16\n[sweep]\nmethods = ["uniform"]\nratios = [0.03125]\n'
                     'seeds = [0]\n[sweep.train]\nepochs = 1\nbatch_size = 32\n')
        if fine:
            assert prepare(f, out=out).sweep.model == "vgg11"
        else:
            with pytest.raises(NeuralscaleError, match="holds a sweep with another recipe"):
                prepare(f, out=out)


def test_a_convcut_sweeps_baselines_and_report_name_its_network_whichever_way_it_is_spelled(tmp_path, monkeypatch):
    """`resnet18-convcut`, or `resnet18 --convcut`: its pruning baselines prune the sweep's trained run (they
    refused it as a `resnet18`: the sweep and `train` spelled it two ways), and its report is titled by it
    (and so draws no paper curves of the plain ResNet18), in a store written either way."""
    import neuralscale.sweep as sweep_module
    from neuralscale.report import build_report
    kw = dict(dataset="synthetic", methods=["l1-prune"], ratios=[0.03125], seeds=[0], pretrain_ratio=0.0625,
              finetune_epochs=1, data={"train": 64, "test": 16}, train={"epochs": 1, "batch_size": 32, "device": "cpu"})
    new, old = tmp_path / "new", tmp_path / "old"
    records = sweep_module.run_sweep(SweepConfig(model="resnet18-convcut", **kw), new, progress=False)
    with monkeypatch.context() as m:  # a store of the release before: `resnet18 --convcut` as given
        m.setattr(sweep_module, "model_spelling", lambda model, convcut: (model, convcut))
        legacy = sweep_module.run_sweep(SweepConfig(model="resnet18", convcut=True, **{**kw, "methods": ["uniform"]}),
                                        old, progress=False)
    assert {(r["model"], r["spec"]["convcut"]) for r in legacy} == {("resnet18", True)}
    records_old = sweep_module.run_sweep(SweepConfig(model="resnet18-convcut", **kw), old, progress=False)
    for got, store in ((records, new), (records_old, old)):
        assert [r["status"] for r in got] == ["finished", "finished"], [r.get("error") for r in got]
        assert got[1]["method"] == "l1-prune" and got[1]["pruning"]["from"] == got[0]["id"]
        title = open(build_report(store, figures=False)["markdown"]).readline()
        assert title == "# neuralscale report: resnet18-convcut on synthetic\n", title
    assert {(r["model"], r["spec"]["convcut"]) for r in records} == {("resnet18-convcut", True)}
    assert {(r["model"], r["spec"]["convcut"]) for r in records_old} == {("resnet18", True)}  # the store's spelling, kept
    # runs of it spelled three ways, gathered in one folder by hand, compare (they were "runs of 2 models", or of
    # two recipes: `train --model resnet18-convcut` records convcut false)
    from neuralscale.report import check_comparable
    import neuralscale.api as api_module
    one = dict(ratio=0.25, subset={"train": 64, "test": 16}, progress=False,
               config=TrainConfig(**{**TrainConfig().to_dict(), **kw["train"]}))
    trained = ns.train("resnet18-convcut", "synthetic", out_dir=tmp_path / "train", **one)
    assert (trained["model"], trained["spec"]["convcut"]) == ("resnet18-convcut", True)  # (it recorded false)
    as_read = lambda record: json.loads(json.dumps(record))  # noqa: E731 (the returned record, as its file holds it)
    assert ns.train("resnet18", "synthetic", convcut=True, out_dir=tmp_path / "train", **one) == as_read(trained)
    space = ns.space("resnet18", "synthetic", convcut=True)  # a space given says it itself
    assert ns.train(space, "synthetic", out_dir=tmp_path / "train", **one) == as_read(trained)
    with pytest.raises(NeuralscaleError, match=r"^convcut: the space given \(resnet18\) has no all-convolution "):
        ns.train(ns.space("resnet18", "synthetic"), "synthetic", convcut=True, out_dir=tmp_path / "plain", **one)
    assert not (tmp_path / "plain").exists()  # (it recorded a plain ResNet18 as resnet18-convcut)
    with pytest.raises(NeuralscaleError, match=r"^convcut: the space given \(resnet18\) has no all-convolution "):
        ns.descend(ns.space("resnet18", "synthetic"), "synthetic", tmp_path / "plain", convcut=True, progress=False)
    assert not (tmp_path / "plain").exists()  # (a descent ignored the flag)
    with monkeypatch.context() as m:  # `train` of the release before: the suffix recorded convcut false
        m.setattr(api_module, "_shortcuts", lambda space, convcut: convcut)  # (the flag as given)
        before = ns.train("resnet18-convcut", "synthetic", out_dir=tmp_path / "before", **one)
    assert (before["model"], before["spec"]["convcut"]) == ("resnet18-convcut", False) and before["id"] != trained["id"]
    for model, convcut in (("resnet18-convcut", False), ("resnet18", True)):  # returned as it is, either spelling
        assert ns.train(model, "synthetic", convcut=convcut, out_dir=tmp_path / "before", **one) == as_read(before)
    for run in (trained, before):  # (one run of one recipe twice, spelled two ways, is a run twice)
        check_comparable(tmp_path, [records[0], legacy[0], run])


def test_a_pruning_baseline_whose_budget_its_trained_network_meets_is_said_to_prune_nothing_before_it_runs(
        tmp_path, caplog):
    """A budget at or above the pretrain ratio's network: the sweep warns before training that the baselines prune
    nothing there (the report said so only once they had run), and the run it warned of did prune nothing; a
    budget below it is not named."""
    import logging
    from neuralscale.sweep import prunes_nothing, run_sweep
    sp = ns.space("vgg11", "synthetic")
    cfg = SweepConfig(model="vgg11", dataset="synthetic", methods=["uniform", "l1-prune", "l1-global"],
                      ratios=[0.03125, 0.0625, 0.125], params=[sp.params(sp.uniform(0.0625)) - 1], seeds=[0, 1],
                      pretrain_ratio=0.0625, finetune_epochs=2, train={"epochs": 1})
    tail = ("the network it prunes (uniform at the pretrain ratio) already meets these budgets, so it prunes nothing "
            "and its runs are 2 epochs of fine-tuning alone; a larger pretrain ratio (--pretrain-ratio; pretrain_ratio in "
            "an experiment's [sweep]), in a new store, gives it channels to prune")
    assert prunes_nothing(plan(cfg), sp) == [f"l1-prune at ratio 0.0625, ratio 0.125: {tail}",
                                             f"l1-global at ratio 0.0625, ratio 0.125: {tail}"]
    assert prunes_nothing(plan(SweepConfig(**{**cfg.to_dict(), "pretrain_ratio": 0.25})), sp) == []
    small = dict(model="vgg11", dataset="synthetic", methods=["l1-prune"], ratios=[0.0625], seeds=[0],
                 pretrain_ratio=0.0625, finetune_epochs=1, data={"train": 64, "test": 16},
                 train={"epochs": 1, "batch_size": 32, "device": "cpu"})
    with caplog.at_level(logging.WARNING, logger="neuralscale"):
        records = run_sweep(SweepConfig(**small), tmp_path / "store", progress=False)
    assert "sweep: l1-prune at ratio 0.0625: the network it prunes (uniform at the pretrain ratio) already meets this " \
           "budget, so it prunes nothing" in caplog.text
    pruned = next(r for r in records if r["method"] == "l1-prune")
    assert pruned["status"] == "finished" and pruned["pruning"]["from_widths"] == pruned["widths"]
    caplog.clear()  # said of the runs still to run: not again when the sweep is run again with them done
    with caplog.at_level(logging.WARNING, logger="neuralscale"):
        run_sweep(SweepConfig(**small), tmp_path / "store", progress=False)
    assert "prunes nothing" not in caplog.text


def test_the_ablations_scale_the_descents_widths_uniformly(descent_dir):
    """pruned: iteration 1's widths where its pruning ended; shape@K: the widths iteration K started from; both
    scaled by one ratio to the budget (what the law adds over 'prune once, then scale' and over the shape)."""
    from neuralscale.descent import DescentDir
    from neuralscale.methods import scale
    sp = ns.space("vgg11", "synthetic")
    d = DescentDir(descent_dir)
    first, last = d.iteration(1), d.iteration()
    assert first.final_widths != first.start_widths  # pruning happened: the ablation is not uniform scaling
    for method, iteration, origin in (("pruned", None, first.final_widths), ("shape", 2, last.start_widths),
                                      ("shape", 1, sp.base_widths)):
        for budget in (12000, 30000):
            found = scale(sp, method, budget, source=descent_dir, iteration=iteration)
            assert abs(found["params"] - budget) <= 0.02 * budget, (method, found)
            r = sum(found["widths"]) / sum(origin)  # one ratio for every layer, up to rounding to whole channels
            assert all(abs(w - r * o) <= 1 + 0.1 * r * o for w, o in zip(found["widths"], origin)), (method, found)
            assert found["iteration"] == (None if method == "pruned" else iteration)
    cfg = SweepConfig(model="vgg11", dataset="synthetic", methods=["uniform", "pruned", "shape", "neuralscale@1"],
                      ratios=[0.0625], seeds=[0], descent=str(descent_dir), iterations=["first", "last"],
                      train={"epochs": 1})
    labels = [s.label.removesuffix(" (fallback)") for s in plan(cfg)]
    assert labels == ["uniform", "pruned", "shape@1", "shape@2", "neuralscale@1"]
    shape1 = next(s for s in plan(cfg) if s.label == "shape@1")
    uniform = next(s for s in plan(cfg) if s.label == "uniform")
    assert shape1.widths == uniform.widths and shape1.id != uniform.id  # iteration 1 starts from the base widths
    # said before it trains: the report compares it with nothing (a walkthrough found out only from the report)
    from neuralscale.sweep import repeats_of_uniform
    assert repeats_of_uniform(plan(cfg)) == ["shape@1 at ratio 0.0625 trains uniform's network (the same widths): "
                                             "its runs repeat uniform's, and the report compares them with nothing"]
    r = run_cli("scale", "--model", "vgg11", "--dataset", "synthetic", "--method", "pruned", "--params", "20000")
    assert r.returncode == 2 and "needs --from" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_each_scaled_method_solves_its_own_configuration(descent_dir):
    """A mutation audit: MorphNet solved from where pruning ended (pruned's configuration) instead of its half
    point, the uniform shortcut taken despite a min_width or multiple, a MACs descent's uniform labelled
    uniform-macs, and shape's iteration for 'the last' left unsaid all passed the tests."""
    from neuralscale.budget import Budget
    from neuralscale.descent import DescentDir
    from neuralscale.methods import method_label, scale
    from neuralscale.scaling import solve, uniform_law
    sp = ns.space("vgg11", "synthetic")
    d = DescentDir(descent_dir)
    first, last = d.iteration(1), d.iteration()
    assert first.half_reached and first.half_widths != first.final_widths
    for budget in (12000, 30000):
        for method, origin in (("morphnet", first.half_widths), ("pruned", first.final_widths)):
            found = scale(sp, method, budget, source=descent_dir)
            assert found["widths"] == solve(uniform_law(sp, origin), sp, budget).widths, (method, budget)
    found = scale(sp, "shape", 30000, source=descent_dir)  # no iteration: the last one's, by its number
    assert found["iteration"] == last.number == 2
    for options, check in ((dict(multiple=8), lambda w: w % 8 == 0), (dict(min_width=16), lambda w: w >= 16)):
        found = scale(sp, "uniform", Budget.of_ratio(0.0625), **options)
        assert all(check(w) for w in found["widths"]) and found["widths"] != sp.uniform(0.0625), options
    assert scale(sp, "uniform", Budget.of_ratio(0.0625))["widths"] == sp.uniform(0.0625)
    assert [method_label(m, i, "macs") for m, i in (("uniform", None), ("morphnet", None), ("pruned", None),
                                                     ("shape", 2), ("neuralscale", 3))] == \
        ["uniform", "morphnet-macs", "pruned-macs", "shape-macs@2", "neuralscale-macs@3"]
    assert [method_label(m, i) for m, i in (("uniform", None), ("shape", 1), ("neuralscale", 2))] == \
        ["uniform", "shape@1", "neuralscale@2"]


def test_a_plan_names_each_run_once_and_a_descent_iteration_it_lacks(descent_dir, tmp_path):
    """neuralscale and neuralscale@2 (the last) are one method: its runs are planned once; an iteration the descent
    lacks is named with the ones it has; a fallback law's runs are labelled so (a mutation audit: runs planned
    twice, and no label on a fallback's runs, passed the tests)."""
    import shutil
    cfg = SweepConfig(model="vgg11", dataset="synthetic", methods=["neuralscale", "neuralscale@2"], ratios=[0.0625],
                      seeds=[0, 1], descent=str(descent_dir), train={"epochs": 1})
    specs = plan(cfg)
    assert len(specs) == 2 and len({s.id for s in specs}) == 2 and {s.seed for s in specs} == {0, 1}
    with pytest.raises(NeuralscaleError, match=r"has no iteration 9 \(it has 1 to 2\)"):
        plan(SweepConfig(**{**cfg.to_dict(), "methods": ["shape"], "iterations": ["first", 9]}))
    fallback = tmp_path / "d"
    shutil.copytree(descent_dir, fallback)
    fits = json.loads((fallback / "fits.json").read_text())
    fits["laws"][0]["fallback"] = True  # iteration 1's law: uniform scaling, not a fit
    (fallback / "fits.json").write_text(json.dumps(fits))
    labels = {s.label for s in plan(SweepConfig(**{**cfg.to_dict(), "methods": ["neuralscale@1", "neuralscale@2"],
                                                   "descent": str(fallback)}))}
    assert labels == {"neuralscale@1 (fallback)", "neuralscale@2"}


def test_a_stores_recipe_fingerprints_morphnets_widths_and_leaves_out_the_device(descent_dir, tmp_path):
    """A store's recipe: another device is the same recipe (a sweep moved to a GPU continues its store), another
    MorphNet configuration in iteration 1 is another law (a mutation audit: the device in the recipe, and
    MorphNet's widths left out of iteration 1's fingerprint, passed the tests)."""
    import shutil
    from neuralscale.sweep import recipe
    cfg = SweepConfig(model="vgg11", dataset="synthetic", methods=["uniform", "morphnet"], ratios=[0.0625],
                      seeds=[0], descent=str(descent_dir), train={"epochs": 1, "device": "cpu"})
    assert recipe(SweepConfig(**{**cfg.to_dict(), "train": {"epochs": 1, "device": "cuda"}})) == recipe(cfg)
    other = tmp_path / "d"
    shutil.copytree(descent_dir, other)
    fits = json.loads((other / "fits.json").read_text())
    assert fits["laws"][0]["half_widths"] != fits["laws"][0]["final_widths"]
    fits["laws"][0]["half_widths"] = fits["laws"][0]["final_widths"]  # MorphNet's configuration, changed
    (other / "fits.json").write_text(json.dumps(fits))
    mine, theirs = recipe(cfg)["laws"], recipe(SweepConfig(**{**cfg.to_dict(), "descent": str(other)}))["laws"]
    assert theirs["1"] != mine["1"] and theirs["2"] == mine["2"] and theirs["pruned"] == mine["pruned"]
    for setting, value in (("pretrain_ratio", 0.5), ("min_width", 2), ("multiple", 8), ("finetune_epochs", 3),
                           ("finetune_lr", 0.01)):  # each decides how a store's runs train: another recipe
        assert recipe(SweepConfig(**{**cfg.to_dict(), setting: value})) != recipe(cfg), setting


def test_a_store_finds_its_descent_by_a_relative_path(descent_dir, tmp_path):
    """sweep.json keeps where the descent is relative to the store, so that a clone of a repository holding both
    (or the two moved together) still finds it (a mutation audit: an absolute path passed the tests)."""
    import shutil
    shutil.copytree(descent_dir, tmp_path / "study" / "descent")
    r = run_cli("sweep", *TINY, "--methods", "uniform", "--ratios", "0.0625", "--seeds", "0", "--epochs", "1",
                "--from", str(tmp_path / "study" / "descent"), "--out", str(tmp_path / "study" / "store"), "--quiet")
    assert r.returncode == 0, r.stderr
    config = json.loads((tmp_path / "study" / "store" / "sweep.json").read_text())["config"]
    assert config["descent_from_store"] == "../descent" and config["descents_from_store"] == {"params": "../descent"}


def test_what_every_run_would_fail_on_is_checked_where_the_runs_train(tmp_path):
    """check_runnable: the recipe on the devices local workers are pinned to (not the recipe's own device), and
    for a Ray cluster not the data on this machine, which its nodes do not read (a mutation audit: both checked
    the other way passed the tests). The executors are stand-ins: only their name and settings are read."""
    from types import SimpleNamespace
    from neuralscale.sweep import check_runnable
    graphs = SweepConfig(model="vgg11", dataset="synthetic", methods=["uniform"], ratios=[0.5],
                         train={"cuda_graphs": True, "device": "cuda"})
    with pytest.raises(NeuralscaleError) as e:
        check_runnable(graphs, SimpleNamespace(name="worker", devices=["cpu"]))
    assert str(e.value) == "cuda_graphs: CUDA graphs need a CUDA device (the runs' device: cpu)"
    elsewhere = SweepConfig(model="vgg11", dataset="cifar10", methods=["uniform"], ratios=[0.5],
                            data={"data_dir": str(tmp_path / "on-the-nodes")})
    with pytest.raises(NeuralscaleError, match="does not exist"):
        check_runnable(elsewhere, SimpleNamespace(name="sequential"))
    check_runnable(elsewhere, SimpleNamespace(name="ray task", gpus_per_run=0.0))  # the nodes' data: not read here


def test_presets():
    paper = preset("paper", "vgg11", "cifar10")
    assert paper.ratios == [0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0] and paper.seeds == [0, 1, 2, 3, 4]
    assert paper.train["epochs"] == 300 and paper.finetune_epochs == 40 and paper.iterations == ["first", "last"]
    tiny = preset("paper", "resnet18", "tinyimagenet")
    assert tiny.ratios == [0.25, 0.5, 0.75, 1.0] and tiny.train["epochs"] == 150 and tiny.finetune_epochs == 20
    assert preset("paper", "ResNet18", "Tiny-ImageNet") == tiny  # (any spelling: it was CIFAR's protocol, 300 epochs)
    assert paper_config("tiny_imagenet").epochs == 150
    quick = preset("quick", "vgg11", "fashionmnist")  # what --help says: ratios 0.25,0.5, 2 seeds, 5 epochs
    assert quick.ratios == [0.25, 0.5] and quick.seeds == [0, 1] and quick.finetune_epochs == 2
    assert {k: quick.train[k] for k in ("epochs", "schedule", "lr", "momentum")} == \
        {"epochs": 5, "schedule": "cosine", "lr": 0.05, "momentum": 0.9}
    quick = preset("quick", "vgg11", "fashionmnist", train={"epochs": 2}, seeds=[3])
    assert quick.train["epochs"] == 2 and quick.seeds == [3] and quick.ratios == [0.25, 0.5]
    assert quick.train["schedule"] == "cosine" and quick.train["lr"] == 0.05  # the rest of the preset's recipe
    from neuralscale.sweep import sweep_config  # what `sweep --preset quick --methods uniform` asks for
    assert sweep_config("vgg11", "synthetic", "quick", methods=["uniform"]) == \
        preset("quick", "vgg11", "synthetic", methods=["uniform"])
    with pytest.raises(NeuralscaleError, match="the sweep has no budgets"):
        sweep_config("vgg11", "synthetic", methods=["uniform"])
    with pytest.raises(NeuralscaleError, match="unknown preset"):
        preset("fast", "vgg11", "cifar10")


@pytest.mark.parametrize("setting, value, says", [
    ("slimming_sparsity", -1e-4, "slimming_sparsity must be at least 0, got -0.0001"),
    ("pretrain_ratio", 0, "a width ratio must be a number in (0, 64], got 0"),
    ("min_width", 0, "min_width must be at least 1, got 0"),
    ("multiple", 0, "multiple must be at least 1, got 0"),
    ("latency_batches", [1, 0], "a latency batch size must be at least 1, got 0"),
    ("finetune_lr", 0, "finetune_lr must be positive, got 0"),
    ("finetune_epochs", 0, "finetune_epochs must be at least 1, got 0"),
])
def test_a_sweep_setting_out_of_range_is_refused_as_it_is_set(setting, value, says):
    """Refused with the configuration, before any run (an experiment's sweep starts hours after its descent; a
    mutation audit: each of these checks could be dropped and pass the tests)."""
    with pytest.raises(NeuralscaleError) as e:
        SweepConfig(model="vgg11", dataset="synthetic", methods=["uniform"], ratios=[0.5], **{setting: value})
    assert str(e.value) == says


def test_sweep_survives_sigkill_and_finishes_every_run_exactly_once(tmp_path):
    out = tmp_path / "sweep"
    args = ["sweep", *TINY, "--methods", "uniform", "--ratios", "0.0625,0.125", "--seeds", "0,1", "--epochs", "4",
            "--out", str(out)]
    proc = Command(args, new_session=True)  # a real driver process (forked with torch imported), its own group
    deadline = time.time() + 240
    killed_in = None

    def states():  # (finished runs, runs still running with a checkpoint)
        recs = {d.name: read_record(d) for d in (out / "runs").glob("*")} if (out / "runs").exists() else {}
        return ([k for k, r in recs.items() if r and r["status"] == "finished"],
                [k for k, r in recs.items() if r and r["status"] == "running" and (out / "runs" / k / "checkpoint.pt").exists()])
    while time.time() < deadline and proc.poll() is None:
        if all(states()):
            # held still (SIGSTOP) and looked at again, so that the kill lands mid-run however fast this host
            # ends a run (one that ended in between is let go on)
            os.killpg(proc.pid, signal.SIGSTOP)
            finished, midway = states()
            if finished and midway:
                killed_in = midway[0]
                os.killpg(proc.pid, signal.SIGKILL)
                break
            os.killpg(proc.pid, signal.SIGCONT)
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


def test_bad_sweeps_are_clear_errors(tmp_path, descent_dir):
    base = ["sweep", *TINY, "--out", str(tmp_path / "s")]
    cases = [
        (["--methods", "uniform,bogus", "--ratios", "0.25"], "unknown method 'bogus'"),
        (["--methods", "uniform"], "no budgets: give --ratios, --params, --macs or --latency-ms"),
        (["--methods", "", "--ratios", "0.25"], "no methods"),
        (["--methods", "uniform", "--ratios", "0.25", "--seeds", ""], "no seeds"),
        (["--methods", "neuralscale", "--ratios", "0.25"], "neuralscale needs a descent: give --from DESCENT_DIR"),
        # the methods a user did not name: said so
        (["--ratios", "0.25"], "morphnet, neuralscale (of the default methods, uniform,morphnet,neuralscale) need a "
                               "descent"),
        (["--methods", "uniform,morphnet,shape@1", "--ratios", "0.25"], "morphnet, shape@1 need a descent"),
        (["--methods", "neuralscale", "--ratios", "0.25", "--from", str(tmp_path / "nope")], "does not exist"),
        (["--methods", "uniform", "--ratios", "-1"], "a width ratio must be a number in (0, 64]"),
        # refused before any run, not recorded as failed runs (which a rerun with the right folder kept as failed)
        (["--methods", "uniform", "--ratios", "0.0625", "--data-dir", str(tmp_path / "nope")],
         f"data directory {tmp_path / 'nope'} does not exist"),
    ]
    for extra, message in cases:
        r = run_cli(*base, *extra)
        assert r.returncode == 2 and message in r.stderr and len(r.stderr.strip().splitlines()) == 1, (extra, r.stderr)
        assert not (tmp_path / "s" / "runs").exists(), extra
    r = run_cli(*base, "--methods", "uniform", "--ratios", "0.0625", env={"NEURALSCALE_CHECKPOINT_SECONDS": "-1"})
    assert r.returncode == 2 and "NEURALSCALE_CHECKPOINT_SECONDS" in r.stderr and not (tmp_path / "s").exists()
    r = run_cli("train", *TINY, "--ratio", "0.0625", "--val-fraction", "0.9999", "--out", str(tmp_path / "t"))
    assert r.returncode == 2 and "no training images are left" in r.stderr  # it trained on nothing, "finished"
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
    # a MACs budget is met in MACs (a mutation audit: pruning against parameters whatever the budget passed)
    macs = small.macs(small.uniform(0.5))
    for criterion, method in methods.items():
        spec = RunSpec(model="vgg11", dataset="synthetic", method=method, criterion=criterion, pretrained=pre.id,
                       budget={"metric": "macs", "value": macs}, latency_batches=(),
                       config=TrainConfig(epochs=1, batch_size=32, lr=0.001, schedule="constant", device="cpu").to_dict())
        _, widths, _, _ = prune_pretrained(small, store / pre.id, spec)
        assert macs * 0.97 <= small.macs(widths) <= macs, (criterion, widths)


def test_the_weight_magnitude_baseline_cuts_every_layer_at_one_ratio_as_the_original():
    """l1-prune's widths are the original's int(width * ratio) for one ratio (the largest that meets the budget),
    not rounded (a mutation audit); a GateMask masks the channels chosen, not the first ones."""
    from types import SimpleNamespace
    sp = ns.space("vgg11", "synthetic")
    base = sp.uniform(0.25)
    small = sp.rebased(base)
    g = torch.Generator().manual_seed(0)
    scores = [torch.rand(w, generator=g) for w in base]
    for share in (0.2, 0.35, 0.5, 0.7, 0.9):
        budget = share * small.params(base)
        widths, keep = choose_uniform_widths(small, scores, budget)
        # one ratio r with widths[i] = int(base[i] * r) for every layer: w / b <= r < (w + 1) / b
        low = max(w / b for w, b in zip(widths, base))
        high = min((w + 1) / b for w, b in zip(widths, base))
        assert low < high and small.params(widths) <= budget, (share, widths)
        above = [max(1, int(b * high)) for b in base]  # the next ratio's widths would not fit
        assert small.params(above) > budget, share
        assert all(torch.equal(k, torch.topk(sc, w).indices.sort().values) for sc, k, w in zip(scores, keep, widths))
    model = small.build(base)
    keep = [torch.tensor([w - 1]) for w in base]  # the last channel of every layer
    GateMask(keep, base).on_train_start(SimpleNamespace(model=model, device=torch.device("cpu")))
    assert [gate.ones.tolist() for gate in gates(model)] == [[0.0] * (w - 1) + [1.0] for w in base]


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
    # without slimming's sparsity penalty, slimming and l1-prune prune one trained network; the network they prune
    # is the full-width VGG11 (about 0.1 s a batch here), so every run trains on 64 images (two batches) and tests
    # on 16 (these later options override TINY's): what is checked is which runs train, not what they learn
    base = ["sweep", *TINY, "--train-subset", "64", "--test-subset", "16", "--seeds", "0", "--epochs", "1",
            "--finetune-epochs", "1", "--slimming-sparsity", "0", "--out", str(out), "--quiet"]
    r = run_cli(*base, "--methods", "slimming", "--ratios", "0.0625")
    assert r.returncode == 0, r.stderr
    (pre,) = [x for x in load_records(out) if x["method"] == "uniform"]
    (done,) = [x for x in load_records(out) if x["method"] == "slimming"]
    for ckpt in out.glob("runs/*/checkpoint.pt"):  # what a clone of the committed study holds
        ckpt.unlink()
    moved = out / "runs" / pre["id"] / "record.json"  # trained on a GPU machine: retrained on this one's device
    rec = json.loads(moved.read_text())
    rec["spec"]["config"]["device"] = "cuda:7"
    # and it reached an accuracy there that the copy trained here does not (a mutation audit: both accuracies
    # read from the copy passed, the copy being trained as the original was, to the same accuracy)
    rec["summary"]["final_test_acc"] = 0.987654
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
        assert info["from_test_acc"] == 0.987654  # the pretrained run's own, as its record says
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
    rep = run_cli("report", str(out), "--json", "--no-figures")  # no figure is checked here (test_report.py's)
    assert rep.returncode == 0 and len(json.loads(rep.stdout)["runs"]) == 7
    md = (out / "report" / "report.md").read_text()  # the recipe of the runs from scratch, and the fine-tuning
    assert "Recipe: 1 epochs, batch 32, lr 0.05 (cosine)" in md
    assert "The pruning baselines: pruned from a trained run, then fine-tuned 1 epochs at lr 0.001 (constant)" in md




def test_a_sweep_says_how_long_it_will_take_before_it_starts(caplog):
    """The estimate's arithmetic (estimate.py), and the line a long sweep logs before its first run (measured
    on this machine; the test runs none of it)."""
    import logging
    from neuralscale.estimate import Rates, duration_text, runs_seconds
    from neuralscale.executors import get_executor
    from neuralscale.sweep import _say_how_long
    assert [duration_text(s) for s in (30, 90, 3600, 9000)] == ["under a minute", "about 2 min", "about 1 h",
                                                                  "about 2 h 30 min"]
    assert runs_seconds([([4], 1000), ([4], 3000)], lambda w: 1000.0, workers=2) == 3.0  # the longest run
    assert runs_seconds([([4], 1000)] * 4, lambda w: 1000.0, workers=2) == 2.0  # shared by the workers
    sp = ns.space("vgg11", "synthetic")
    cheap, costly = sp.uniform(0.0625), sp.uniform(0.125)
    rates = Rates(sp, [costly, cheap, costly], batch_size=16)
    assert [m for m, _ in rates.points] == [sp.macs(cheap), sp.macs(costly)] and all(r > 0 for _, r in rates.points)
    assert rates(cheap) == pytest.approx(rates.points[0][1]) and rates(costly) == pytest.approx(rates.points[1][1])
    cfg = SweepConfig(model="vgg11", dataset="synthetic", methods=["uniform"], ratios=[0.0625, 0.125], seeds=[0],
                      train={"epochs": 400, "batch_size": 16}, data={"train": 400})  # 320,000 images to train
    caplog.set_level(logging.INFO, logger="neuralscale")
    _say_how_long(cfg, plan(cfg), get_executor("local", workers=2, threads=1))
    line = next(r.getMessage() for r in caplog.records if "on this machine as it is now" in r.getMessage())
    assert "for 2 run(s) 2 at a time (an estimate: " in line and "at 1 thread(s) each" in line
    caplog.clear()
    small = SweepConfig(**{**cfg.to_dict(), "train": {"epochs": 4, "batch_size": 16}})
    _say_how_long(small, plan(small), get_executor("sequential"))
    assert not caplog.records  # a few seconds of work is not worth measuring


def test_a_training_rate_is_images_per_second_at_the_threads_asked_and_changes_nothing_else(monkeypatch):
    """estimate.training_rate: timed steps x batch over the time they took (a clock of the test's own, so nothing
    depends on this machine's speed), timed at the thread count asked, with the thread count and the seeded
    generators as they were afterwards (a mutation audit: each of the four could be broken and pass the tests)."""
    from types import SimpleNamespace
    import neuralscale.estimate as estimate
    sp = ns.space("vgg11", "synthetic")
    before = torch.get_num_threads()
    seen = []

    def clock():  # 2 s between the timer's two readings, whatever the steps took
        seen.append(torch.get_num_threads())
        return 10.0 + 2.0 * (len(seen) - 1)
    monkeypatch.setattr(estimate, "time", SimpleNamespace(perf_counter=clock))
    torch.manual_seed(0)
    expected = torch.rand(4)
    torch.manual_seed(0)
    assert estimate.training_rate(sp, sp.uniform(0.0625), batch_size=4, threads=before + 1, steps=3) == 3 * 4 / 2.0
    assert seen == [before + 1] * 2 and torch.get_num_threads() == before
    assert torch.equal(torch.rand(4), expected)  # the run that follows draws what it would have drawn


def test_a_training_rate_on_a_device_it_cannot_use_leaves_the_thread_count_as_it_was():
    """FAILS NOW (a bug found by a mutation audit): training_rate sets the thread count asked before it parses the
    device, outside the try/finally that puts it back, so a device that torch refuses leaves the process on the
    estimate's thread count."""
    from neuralscale.estimate import training_rate
    sp = ns.space("vgg11", "synthetic")
    before = torch.get_num_threads()
    try:
        with pytest.raises(RuntimeError):
            training_rate(sp, sp.uniform(0.0625), batch_size=4, device="bogus", threads=before + 1)
        assert torch.get_num_threads() == before
    finally:
        torch.set_num_threads(before)


def test_a_sweeps_rate_is_read_in_log_log_between_its_cheapest_and_costliest_configurations():
    """estimate.Rates: the ends measured are the cheapest and the costliest of any number of configurations, a
    configuration between them is read on the straight line in log-log (a power law), ends of equal cost give the
    one rate; and no runs take no time (a mutation audit: linear interpolation, the second-cheapest as an end,
    and a division by zero all passed the tests)."""
    from neuralscale.estimate import Rates, runs_seconds
    sp = ns.space("vgg11", "synthetic")
    cheap, middle, costly = sp.uniform(0.0625), sp.uniform(0.09375), sp.uniform(0.125)
    rates = Rates(sp, [middle, costly, cheap], batch_size=8)
    assert [m for m, _ in rates.points] == [sp.macs(cheap), sp.macs(costly)]
    m0, m1 = sp.macs(cheap), sp.macs(costly)
    rates.points = [(m0, 1000.0), (m1, 10.0)]  # rates of the test's own: the arithmetic, not this machine
    t = (math.log(sp.macs(middle)) - math.log(m0)) / (math.log(m1) - math.log(m0))
    assert 0 < t < 1 and rates(middle) == pytest.approx(1000.0 * (10.0 / 1000.0) ** t, rel=1e-9)
    assert rates(cheap) == pytest.approx(1000.0) and rates(costly) == pytest.approx(10.0)
    rates.points = [(m0, 50.0), (m0, 70.0)]
    assert rates(middle) == 50.0
    assert runs_seconds([], rates, workers=2) == 0.0
    from neuralscale.estimate import duration_text
    assert [duration_text(s) for s in (59.9, 60, 7200)] == ["under a minute", "about 1 min", "about 2 h"]


def test_a_latency_budget_is_measured_once_and_kept_for_every_rerun(tmp_path, monkeypatch):
    """`sweep --latency-ms 60%`: the base model's latency and each method's widths are measured and solved once,
    kept in sweep.json, and a rerun plans the very same runs although another measurement would differ."""
    import sys as _sys
    sweep_module = _sys.modules["neuralscale.sweep"]
    out = tmp_path / "s"
    args = ["sweep", *TINY, "--methods", "uniform", "--latency-ms", "60%", "--seeds", "0", "--epochs", "1",
            "--out", str(out), "--quiet"]
    r = run_cli(*args)
    assert r.returncode == 0, r.stderr
    kept = json.loads((out / "sweep.json").read_text())["config"]["latency_budgets"]["60%"]
    (record,) = load_records(out)
    assert record["budget"]["metric"] == "latency" and record["budget"]["share"] == 0.6
    assert record["budget"]["value"] == kept["value"] > 0 and record["widths"] == kept["widths"]["uniform"]
    # another measurement (a busier machine) would plan other runs; the kept one plans this store's
    cfg = SweepConfig(model="vgg11", dataset="synthetic", methods=["uniform"], latency=["60%"], seeds=[0])
    calls = []

    def slower(space, metric, device="cpu", batch_size=1):
        calls.append(metric)
        return lambda widths: 3.0 * (1 + sum(widths))  # nothing like the first measurement
    monkeypatch.setattr(sweep_module, "cost_function", slower)
    monkeypatch.setattr(sweep_module, "scale", lambda *a, **k: {"widths": [1] * 8})  # a solve that differs too
    fresh = plan(cfg)[0]
    assert fresh.budget.value != kept["value"] and fresh.widths != kept["widths"]["uniform"] and calls == ["latency"]
    same = plan(cfg, {"60%": json.loads(json.dumps(kept))})[0]
    assert (same.budget.value, same.widths, calls) == (kept["value"], kept["widths"]["uniform"], ["latency"])
    other = run_cli("sweep", *TINY, "--methods", "uniform", "--ratios", "0.0625", "--seeds", "0", "--epochs", "1",
                    "--out", str(out), "--quiet")  # a sweep of other budgets into the store keeps them
    assert other.returncode == 0, other.stderr
    assert json.loads((out / "sweep.json").read_text())["config"]["latency_budgets"]["60%"] == kept
    again = run_cli(*args)
    assert again.returncode == 0, again.stderr
    assert [x for x in load_records(out) if x["budget"]["metric"] == "latency"] == [record]  # not redone
    with pytest.raises(ns.NeuralscaleError, match="give them params or macs budgets"):
        SweepConfig(model="vgg11", dataset="synthetic", methods=["uniform", "l1-prune"], latency=["60%"])


def test_a_budget_below_every_layer_at_its_narrowest_is_refused_for_the_methods_a_law_solves():
    """sweep.check_reachable, which an experiment calls before its descent: the floor is every layer at min_width
    (and its multiple) for uniform, morphnet and neuralscale; a ratio counts for the laws, not for uniform (which
    takes it as it is); the pruning baselines, which prune to one channel a layer, are not refused by it."""
    from neuralscale.sweep import check_reachable
    sp = ns.space("vgg11", "synthetic")
    floor8 = sp.params([8] * len(sp))

    def cfg(methods, **fields):
        return SweepConfig(model="vgg11", dataset="synthetic", methods=methods, **{"ratios": [], **fields})
    check_reachable(cfg(["uniform", "neuralscale"], params=[floor8], min_width=8), sp)  # exactly the floor
    with pytest.raises(NeuralscaleError, match=f"a budget of {floor8 - 1:,} parameters is out of reach: vgg11 has "
                                               f"{floor8:,} parameters with every layer at its narrowest \\(8 "):
        check_reachable(cfg(["uniform"], params=[floor8 - 1], min_width=8), sp)
    check_reachable(cfg(["l1-prune", "slimming"], params=[1000], min_width=8), sp)  # the baselines: not refused
    with pytest.raises(NeuralscaleError, match="is out of reach"):  # a MACs descent's law is a law too
        check_reachable(cfg(["neuralscale-macs@1"], params=[floor8 - 1], min_width=8), sp)
    low = [0.03]  # a ratio whose uniform widths fall below 16 channels in a layer
    assert sp.params(sp.uniform(low[0])) < sp.params([16] * len(sp))
    check_reachable(cfg(["uniform"], ratios=low, min_width=16), sp)
    with pytest.raises(NeuralscaleError, match=r"\(ratio 0.03\) is out of reach: .*, or a smaller min_width$"):
        check_reachable(cfg(["uniform", "neuralscale@1"], ratios=low, min_width=16, descent=None), sp)
    mult = cfg(["morphnet"], macs=["1%"], multiple=64)  # 64 channels a layer at least: more than 1% of the MACs
    with pytest.raises(NeuralscaleError, match=r"\(1% of the base model\) is out of reach: .* its narrowest \(1 "
                                               r"channel\(s\) or the multiple it must be\); give a larger budget$"):
        check_reachable(mult, sp)


def test_a_damaged_plan_says_how_to_plan_the_sweep_again_and_that_does(tmp_path):
    """"remove it to plan the sweep again" was followed by a refusal: without its plan the folder is no run store,
    and a sweep writes into it only with --force (an adversarial pass). The advice says so, and following it keeps
    the finished runs."""
    out = tmp_path / "store"
    args = ["sweep", *TINY, "--methods", "uniform", "--ratios", "0.0625", "--seeds", "0", "--epochs", "1",
            "--out", str(out)]
    assert run_cli(*args).returncode == 0
    (out / "sweep.json").write_text("{not json")
    r = run_cli(*args)
    assert r.returncode == 2 and "sweep.json is damaged (" in r.stderr, r.stderr
    assert r.stderr.strip().endswith("remove it and run the sweep (or experiment) again with --force to plan it "
                                     "again (its finished runs are kept; a latency budget's widths are solved "
                                     "again)"), r.stderr
    (out / "sweep.json").unlink()
    r = run_cli(*args, "--force")
    assert r.returncode == 0 and "1 already done, 0 to run" in r.stderr, r.stderr
    assert json.loads((out / "sweep.json").read_text())["recipe"]


def test_a_sweep_run_resumed_on_an_image_folder_changed_since_is_refused_before_its_record(tmp_path):
    """The checkpoint's data sizes were checked as its trainer resumed: inside the run, which was recorded as
    failed and then skipped by every rerun (a review). Refused before its record is touched, in one line; the
    folder put back, the run resumes and finishes."""
    import shutil

    from helpers import write_imagefolder
    folder = write_imagefolder(tmp_path / "imgs", per_class=6, size=32)
    shutil.copytree(folder, tmp_path / "as_it_was")
    out = tmp_path / "store"
    args = ["sweep", "--model", "vgg11", "--dataset", f"imagefolder:{folder}", "--batch-size", "8", "--device",
            "cpu", "--methods", "uniform", "--ratios", "0.0625", "--seeds", "0", "--epochs", "1", "--out", str(out)]
    env = {"NEURALSCALE_CACHE": str(tmp_path / "cache")}
    assert run_cli(*args, env=env).returncode == 0
    (path,) = out.glob("runs/*/record.json")
    record = {**json.loads(path.read_text()), "status": "running"}  # as a run stopped after its last checkpoint
    path.write_text(json.dumps(record))
    write_imagefolder(folder, per_class=9, size=32)
    r = run_cli(*args, env=env)
    lines = [x for x in r.stderr.splitlines() if x.startswith("neuralscale:")]  # (after the plan's line)
    assert r.returncode == 2 and len(lines) == 1 and re.search(r"trained on other data \(train 15, val 3, test 6 "
                                                               r"images \(digest \w+\) then; train 24, val 3, test 6 "
                                                               r"images \(digest \w+\) now", lines[0]), r.stderr
    assert json.loads(path.read_text()) == record
    shutil.rmtree(folder)
    shutil.copytree(tmp_path / "as_it_was", folder)
    trained = torch.load(path.with_name("checkpoint.pt"), weights_only=True)["elapsed_s"]
    r = run_cli(*args, env=env)
    assert r.returncode == 0 and json.loads(path.read_text())["status"] == "finished", r.stderr
    assert json.loads(path.read_text())["wall_s"] >= trained > 0  # (its sessions' time: the first's counted too)


def test_a_sweep_into_a_store_whose_image_folder_changed_since_is_refused_before_any_run(tmp_path):
    """Images added to a folder between a store's sweeps: the new seed trained on them without a word, and the
    report refused the store only after the sweep's hours (a review left it open). Refused before any run, naming
    the counts then and now; the folder put back, the seed is trained."""
    import shutil

    from helpers import write_imagefolder
    folder = write_imagefolder(tmp_path / "imgs", per_class=6, size=32)
    shutil.copytree(folder, tmp_path / "as_it_was")
    out = tmp_path / "store"
    args = ["sweep", "--model", "vgg11", "--dataset", f"imagefolder:{folder}", "--batch-size", "8", "--device",
            "cpu", "--methods", "uniform", "--ratios", "0.0625", "--epochs", "1", "--out", str(out)]
    env = {"NEURALSCALE_CACHE": str(tmp_path / "cache")}
    assert run_cli(*args, "--seeds", "0", env=env).returncode == 0
    # an image replaced by another, the counts as they were (its digest differs)
    write_imagefolder(tmp_path / "other", per_class=6, size=32, seed=5)
    shutil.copy(tmp_path / "other" / "test" / "class_2" / "img1.png", folder / "test" / "class_2" / "img1.png")
    r = run_cli(*args, "--seeds", "0,1", env=env)
    lines = [x for x in r.stderr.splitlines() if x.startswith("neuralscale:")]
    assert r.returncode == 2 and len(lines) == 1 and re.search(r": training 18, test 6, digest [0-9a-f]{16} then; "
                                                               r"training 18, test 6, digest [0-9a-f]{16} now\)",
                                                               lines[0]), r.stderr
    write_imagefolder(folder, per_class=9, size=32)
    r = run_cli(*args, "--seeds", "0,1", env=env)
    lines = [x for x in r.stderr.splitlines() if x.startswith("neuralscale:")]
    assert r.returncode == 2 and len(lines) == 1 and "holds finished runs on other data than " in lines[0] and \
        re.search(r": training 18, test 6, digest \w+ then; training 27, test 6, digest \w+ now\): its files "
                  "changed since", lines[0]), r.stderr
    assert len(list(out.glob("runs/*"))) == 1  # no run begun
    shutil.rmtree(folder)
    shutil.copytree(tmp_path / "as_it_was", folder)
    r = run_cli(*args, "--seeds", "0,1", env=env)
    assert r.returncode == 0 and "1 already done, 1 to run" in r.stderr, r.stderr


def test_a_sweep_trains_on_every_training_image_with_val_fraction_0(tmp_path):
    """`sweep --val-fraction 0` trains on every training image, as the original does (`--preset paper` kept a 10%
    validation split, and sweep had no option for it: an experiment file alone could); its report selects nothing
    and says so, and `--report` with it is refused before any training."""
    store = tmp_path / "s"
    base = ["sweep", *TINY_RUN_ARGS, "--methods", "uniform", "--ratios", "0.0625", "--seeds", "0", "--epochs", "1",
            "--out", str(store), "--quiet", "--val-fraction", "0"]
    r = run_cli(*base, "--report")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "--val-fraction 0 holds none" in r.stderr, r.stderr
    assert not store.exists()
    assert run_cli(*base).returncode == 0
    (record,) = [json.loads(p.read_text()) for p in store.glob("runs/*/record.json")]
    assert record["config"]["val_fraction"] == 0 and record["data"]["val"] == 0 and record["data"]["train"] == 160
    assert record["summary"]["test_acc_at_best_val"] is None
    r = run_cli("report", str(store), "--no-figures")
    assert r.returncode == 2 and "report them with --accuracy final" in r.stderr, r.stderr
    assert run_cli("report", str(store), "--no-figures", "--accuracy", "final").returncode == 0
