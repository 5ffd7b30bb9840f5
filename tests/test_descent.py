"""Architecture descent end to end: files, resume after SIGKILL, scale from it, plots."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

import neuralscale as ns
from helpers import run_cli

ARGS = ["descend", "--model", "vgg11", "--dataset", "synthetic", "--base-ratio", "0.0625", "--iterations", "2",
        "--warmup-epochs", "1", "--prune-interval", "3", "--prune-k", "3", "--prune-fraction", "0.7",
        "--batch-size", "32", "--train-subset", "640", "--device", "cpu", "--prune-past-one", "--allow-fallback"]
# Tiny networks on synthetic data: these tests exercise resume and files, not the stop rule (test_fidelity.py)
# or how many rows an iteration records, so they let pruning go past one channel and accept a fallback law.
# Batches of 32: each iteration's 40-odd pruning steps (3 batches each) cost about a third less than with batches
# of 64; what is checked (resume, files, figures, scaling from the laws) passed so with --seed 0 to 5.


def test_descent_continues_where_it_stopped_and_redoes_nothing(tmp_path):
    """A descent stopped after iteration 1 continues with iteration 2; what is finished is never rewritten.
    (A kill at any moment inside an iteration: test_reliability.py's random kills.)"""
    out = tmp_path / "descent"
    first_run = ARGS[:ARGS.index("--iterations") + 1] + ["1"] + ARGS[ARGS.index("--iterations") + 2:]
    r = run_cli(*first_run, "--out", str(out))
    assert r.returncode == 0, r.stderr
    first = (out / "iteration_01.csv").read_bytes()
    mtime = (out / "iteration_01.csv").stat().st_mtime_ns
    laws = json.loads((out / "fits.json").read_text())["laws"]
    assert [d["iteration"] for d in laws] == [1]

    r = run_cli(*ARGS, "--out", str(out), "--plots")
    assert r.returncode == 0, r.stderr
    assert "descent iteration 1/" not in r.stderr and "descent iteration 2/2" in r.stderr
    assert (out / "iteration_01.csv").read_bytes() == first and (out / "iteration_01.csv").stat().st_mtime_ns == mtime
    laws = json.loads((out / "fits.json").read_text())["laws"]
    assert [d["iteration"] for d in laws] == [1, 2]
    assert not list(out.glob("*.ckpt"))
    assert (out / "growth_iteration_02.png").stat().st_size > 10_000 and (out / "heatmap.png").exists()
    sp = ns.space("vgg11", "synthetic").rebased(ns.space("vgg11", "synthetic").uniform(0.0625))
    # iteration 2 started from law 1 solved at the base parameter count
    assert abs(sp.params(laws[1]["start_widths"]) - sp.params(sp.base_widths)) <= 0.005 * sp.params(sp.base_widths) + 200

    again = run_cli(*ARGS, "--out", str(out))  # everything finished: nothing redone
    assert again.returncode == 0 and "descent iteration" not in again.stderr
    assert json.loads((out / "fits.json").read_text())["laws"] == laws

    # scale from the descent directory, by each method
    for method in ("neuralscale", "morphnet"):
        r = run_cli("scale", "--model", "vgg11", "--dataset", "synthetic", "--method", method, "--from", str(out),
                    "--params", "20000", "--json")
        assert r.returncode == 0, r.stderr
        res = json.loads(r.stdout)
        assert abs(res["params"] - 20000) <= 0.005 * 20000
    r = run_cli("scale", "--model", "resnet18", "--dataset", "synthetic", "--method", "neuralscale", "--from", str(out),
                "--ratio", "0.5")
    assert r.returncode == 2 and "fitted for vgg11" in r.stderr

    # MorphNet: iteration 1's widths once half the channels it started from are gone (k=3 per step)
    from neuralscale.descent import morphnet_widths
    mw = morphnet_widths(out, ns.space("vgg11", "synthetic"))
    start = laws[0]["start_widths"]
    assert 0.5 * sum(start) - 3 < sum(mw) <= 0.5 * sum(start)

    # another configuration in the same directory is refused
    r = run_cli(*[a if a != "0.7" else "0.8" for a in ARGS], "--out", str(out))
    assert r.returncode == 2 and "another configuration" in r.stderr


def test_a_descent_without_trajectory_rows_falls_back_loudly(tmp_path):
    args = ["descend", "--model", "vgg11", "--dataset", "synthetic", "--base-ratio", "0.0625", "--iterations", "2",
            "--warmup-epochs", "0", "--prune-interval", "1", "--prune-k", "1", "--prune-fraction", "0.02",
            "--batch-size", "64", "--train-subset", "128", "--device", "cpu", "--out", str(tmp_path / "d")]
    r = run_cli(*args, "--plots")
    # the iteration is recorded, then the descent stops with one clear line instead of building on a non-fit
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) <= 40
    assert "warning: iteration 1's law is not a fit" in r.stderr and "WARNING" not in r.stderr  # as every warning
    assert r.stderr.strip().splitlines()[-1].startswith("neuralscale: error: iteration 1's law is not a fit")
    assert "To accept it, rerun here with --allow-fallback (allow_fallback = true in an experiment file, " \
        "DescentConfig(allow_fallback=True) in Python); or record more rows, in a new --out" in r.stderr  # as it works
    # what records more rows, of the settings it does not have already (a smaller k or interval than 1 it cannot)
    assert r.stderr.strip().endswith("this one holds this configuration): a larger --prune-fraction (it is 0.02), "
                                     "more training images, --prune-past-one or --trajectory-start per-layer (rows "
                                     "from the first step, which a MACs or latency objective may need: it can leave "
                                     "a cheap layer whole)"), r.stderr
    from neuralscale.descent import DescentConfig, DescentDir, _more_rows
    it = DescentDir(tmp_path / "d").iteration(1)  # (pruned to its 2%)
    generic = DescentConfig(k=4, interval=1, prune_past_one=True, trajectory_start="per-layer")  # a file's network's
    assert _more_rows(generic, it) == "a smaller --prune-k, a larger --prune-fraction (it is 0.95) or more training " \
        "images"
    early = dataclasses.replace(it, stop_reason="step 3 would remove the last channel of conv1; pruning ends before "
                                "it (the original's rule)")  # a larger fraction records no more rows
    assert _more_rows(DescentConfig(k=1, interval=1, prune_past_one=True, trajectory_start="per-layer",
                                    prune_fraction=0.5), early) == "more training images"
    assert _more_rows(DescentConfig(k=1, interval=1, prune_past_one=False, trajectory_start="per-layer"), early) \
        == "more training images or --prune-past-one"
    laws = json.loads((tmp_path / "d" / "fits.json").read_text())["laws"]
    law = laws[0]
    assert len(laws) == 1 and law["fallback"] and law["rows"] == 0 and "no trajectory rows" in law["fallback_reason"]
    # as the original: uniform scaling of the widths at the end of pruning, not of the start
    assert law["origin"] == law["final_widths"] and law["final_widths"] != law["start_widths"]
    assert "not a fit" in (tmp_path / "d" / "log.txt").read_text()
    r = run_cli(*args, "--quiet")  # a rerun refuses to build on it too
    assert r.returncode == 2 and "--allow-fallback" in r.stderr
    r = run_cli(*args, "--quiet", "--allow-fallback", "--plots")
    assert r.returncode == 0, r.stderr
    laws = json.loads((tmp_path / "d" / "fits.json").read_text())["laws"]
    assert [d["iteration"] for d in laws] == [1, 2] and laws[0]["fallback"]
    # the figures still come out: the uniform law's curves, with no trajectory points
    assert (tmp_path / "d" / "growth_iteration_02.png").stat().st_size > 10_000
    assert (tmp_path / "d" / "heatmap.png").exists()
    # a sweep and report on it say which rows come from a fallback law
    r = run_cli("sweep", "--model", "vgg11", "--dataset", "synthetic", "--methods", "uniform,neuralscale",
                "--iterations", "first", "--ratios", "0.0625", "--seeds", "0", "--epochs", "1", "--train-subset", "64",
                "--test-subset", "16", "--batch-size", "32", "--device", "cpu", "--from", str(tmp_path / "d"),
                "--out", str(tmp_path / "s"), "--quiet", "--report")
    assert r.returncode == 0, r.stderr
    md = (tmp_path / "s" / "report" / "report.md").read_text()
    assert "| neuralscale@1 (fallback) |" in md and "**Fallback laws:** iteration 1's law is not a fit" in md


def test_a_descent_computes_in_float32_unless_asked_and_old_records_resume(tmp_path):
    """bf16 autocast is on by default for training on CUDA, off for a descent (explicitly, so CUDA does not turn
    it on); `--amp` asks for it.  A config.json written before the setting existed still resumes."""
    import json
    from neuralscale.descent import DescentConfig, DescentDir
    sp = ns.space("vgg11", "synthetic")
    assert DescentConfig().resolve(sp).train_config().amp is False
    assert DescentConfig(amp=True).resolve(sp).train_config().amp is True
    cfg = DescentConfig(base_ratio=0.125, device="cpu").resolve(sp)
    d = DescentDir(tmp_path / "d")
    d.claim(sp, cfg, {"train": 10})
    old = json.loads(d.config_path.read_text())
    del old["descent"]["amp"]  # as written by an earlier release
    d.config_path.write_text(json.dumps(old))
    d.claim(sp, cfg, {"train": 10})  # the same configuration: accepted
    with pytest.raises(ns.NeuralscaleError, match="another configuration"):
        d.claim(sp, DescentConfig(base_ratio=0.125, device="cpu", amp=True).resolve(sp), {"train": 10})


def test_a_rerun_is_told_every_recorded_setting_it_differs_in(tmp_path):
    """Other data, and (on CUDA) a descent recorded before descents ran in float32 there, are named in the
    refusal (a mutation audit: neither was tested)."""
    from neuralscale.descent import DescentConfig, DescentDir
    sp = ns.space("vgg11", "synthetic")
    d = DescentDir(tmp_path / "d")
    d.claim(sp, DescentConfig(base_ratio=0.125, device="cuda").resolve(sp), {"train": 10})
    with pytest.raises(ns.NeuralscaleError, match=r"another configuration \(data: recorded \{'train': 10\}, now "
                                                  r"\{'train': 12\}\)"):
        d.claim(sp, DescentConfig(base_ratio=0.125, device="cuda").resolve(sp), {"train": 12})
    # recorded before digests were: continued, and recorded with its digest; another digest is other data
    same = DescentConfig(base_ratio=0.125, device="cuda").resolve(sp)
    d.claim(sp, same, {"train": 10, "digest": "1" * 16})
    assert json.loads(d.config_path.read_text())["data"] == {"train": 10, "digest": "1" * 16}
    with pytest.raises(ns.NeuralscaleError, match=r"\(data: recorded \{'train': 10, 'digest': '1{16}'\}, now "
                                                  r"\{'train': 10, 'digest': '2{16}'\}\)"):
        d.claim(sp, same, {"train": 10, "digest": "2" * 16})
    d.claim(sp, same, {"train": 10})  # data of one's own (no digest): the recorded digest kept
    assert json.loads(d.config_path.read_text())["data"] == {"train": 10, "digest": "1" * 16}
    old = json.loads(d.config_path.read_text())
    del old["descent"]["amp"]
    d.config_path.write_text(json.dumps(old))
    # on the CPU a descent computed in float32 before the setting existed too: accepted
    d.claim(sp, DescentConfig(base_ratio=0.125, device="cpu").resolve(sp), {"train": 10})
    old = json.loads(d.config_path.read_text())
    del old["descent"]["amp"]
    d.config_path.write_text(json.dumps(old))
    with pytest.raises(ns.NeuralscaleError, match="amp: recorded before descents ran in float32 on CUDA"):
        d.claim(sp, DescentConfig(base_ratio=0.125, device="cuda").resolve(sp), {"train": 10})


def test_a_latency_descent_measured_on_a_gpu_reads_on_a_machine_without_it(tmp_path):
    """The recorded latency device is not checked against this machine's (a descent measured on a GPU is read,
    reported and scaled from anywhere; a mutation audit: untested)."""
    from neuralscale.descent import DescentConfig, DescentDir
    sp = ns.space("vgg11", "synthetic")
    d = DescentDir(tmp_path / "d")
    d.claim(sp, DescentConfig(objective="latency", base_ratio=0.125).resolve(sp), {"train": 10})
    recorded = json.loads(d.config_path.read_text())
    recorded["descent"]["latency_device"] = "cuda:99"  # no machine here has it
    d.config_path.write_text(json.dumps(recorded))
    assert d.config()["descent"]["latency_device"] == "cuda:99" and d.objective() == "latency"


def test_a_long_descent_iteration_says_at_most_how_long_it_takes(caplog):
    import logging
    from neuralscale.descent import _say_how_long
    from neuralscale.pruning import TaylorPruner
    sp = ns.space("vgg11", "synthetic")
    cfg = ns.DescentConfig(base_ratio=0.0625, batch_size=32, device="cpu").resolve(sp)
    widths = sp.uniform(0.0625)
    session = TaylorPruner(sp, widths, **cfg.schedule_fields()).session
    caplog.set_level(logging.INFO, logger="neuralscale")
    _say_how_long(sp, widths, cfg, session, 60000, 1, "cpu")  # 10 warm-up epochs of 60,000 images, then pruning
    line = next(r.getMessage() for r in caplog.records if "at most" in r.getMessage())
    assert line.startswith(f"descent iteration 1/{cfg.iterations}: ") and " at most for its training (" in line
    assert f"(10 warm-up epoch(s) and up to {session.max_steps} pruning steps at " in line
    caplog.clear()
    quick = ns.DescentConfig(base_ratio=0.0625, batch_size=32, device="cpu", warmup_epochs=1, interval=2).resolve(sp)
    _say_how_long(sp, widths, quick, TaylorPruner(sp, widths, **quick.schedule_fields()).session, 100, 1, "cpu")
    assert not caplog.records  # a few seconds of work: not worth measuring
    _say_how_long(sp, widths, cfg, session, 60000, 1, "cpu", resuming=True)
    assert not caplog.records  # resuming: the whole iteration's bound is not what is left


def test_a_small_datasets_schedule_is_not_taken_for_a_typo():
    """The schedule's cap counted epochs: a folder of 360 images is one batch an epoch, so the default schedule
    (about 11,000 batches, fewer than CIFAR-10's) read as 11,000 epochs and was refused. It counts batches now."""
    from dataclasses import replace
    from neuralscale.descent import MAX_SCHEDULE_BATCHES, DescentConfig, _epochs
    from neuralscale.errors import NeuralscaleError
    from neuralscale.pruning import TaylorPruner
    sp = ns.space("torchvision:resnet18", "synthetic")
    cfg = DescentConfig(base_ratio=0.25).resolve(sp)
    start = cfg.start_space(sp)
    widths = start.base_widths
    session = TaylorPruner(start, widths, **cfg.schedule_fields()).session
    epochs = _epochs(cfg, session, widths, 360)  # one batch of 256 an epoch
    assert epochs > 5_000 and epochs * 1 <= MAX_SCHEDULE_BATCHES
    typo = replace(cfg, interval=100_000)
    with pytest.raises(NeuralscaleError, match="training batches an iteration"):
        _epochs(typo, TaylorPruner(start, widths, **typo.schedule_fields()).session, widths, 360)
    assert _epochs(replace(typo, max_epochs=3), TaylorPruner(start, widths, **typo.schedule_fields()).session,
                   widths, 360) == 3


def test_a_large_datasets_schedule_is_counted_in_its_batches_not_its_epochs():
    """The other side of the cap: 60,000 images are 937 batches of 64 an epoch, so a pruning interval of 20,000
    batches needs about 1,185 epochs, over a million batches (a mutation audit: counting one batch an epoch
    passed the small dataset's test and let this through)."""
    from dataclasses import replace
    from neuralscale.descent import DescentConfig, _epochs
    from neuralscale.pruning import TaylorPruner
    sp = ns.space("vgg11", "synthetic")
    cfg = DescentConfig(base_ratio=0.0625, batch_size=64, k=3, interval=20_000).resolve(sp)
    start = cfg.start_space(sp)
    session = TaylorPruner(start, start.base_widths, **cfg.schedule_fields()).session
    with pytest.raises(ns.NeuralscaleError, match=r"needs about 1,1\d\d,\d{3} training batches an iteration"):
        _epochs(cfg, session, start.base_widths, 60_000)
    fine = replace(cfg, interval=2_000)
    assert 100 < _epochs(fine, TaylorPruner(start, start.base_widths, **fine.schedule_fields()).session,
                         start.base_widths, 60_000) < 200


def test_each_iteration_starts_from_the_last_law_with_its_own_seed(monkeypatch):
    """A mutation audit: no test ran three iterations, so starting from the first law instead of the last, the
    add10 rule's edge (a layer of exactly 10 channels gets none), and one seed for every iteration all passed."""
    import neuralscale.descent as descent_module
    from neuralscale.descent import DescentConfig, Iteration, at_base, iteration_seed, start_widths
    from neuralscale.scaling import ScalingLaw
    sp = ns.space("vgg11", "cifar10")
    laws = [ScalingLaw(sp.name, sp.info.name, list(sp.layer_names), [0.5 + 0.1 * i] * len(sp),
                       [0.3 + 0.02 * j * (i + 1) for j in range(len(sp))]) for i in range(3)]
    its = [Iteration(law, list(sp.base_widths), list(sp.base_widths), list(sp.base_widths), True, 1, 1, True, "")
           for law in laws]
    starts = [at_base(law, sp) for law in laws]
    assert len({tuple(s) for s in starts}) == 3  # three laws, three configurations at the base budget
    cfg = DescentConfig(add10=False)
    assert start_widths(sp, [], cfg) == list(sp.base_widths)
    for n in (1, 2, 3):
        assert start_widths(sp, its[:n], cfg) == starts[n - 1]
    monkeypatch.setattr(descent_module, "at_base", lambda *args: [9, 10, 11, 1] + [64] * (len(sp) - 4))
    assert start_widths(sp, its, DescentConfig(add10=True))[:5] == [19, 10, 11, 11, 64]
    assert [iteration_seed(DescentConfig(seed=s), n) for s in (0, 3) for n in (1, 2)] == [1, 2, 3001, 3002]


def test_a_trajectorys_rows_are_numbered_by_the_pruning_steps_they_follow(tiny_descent):
    """iteration_NN.csv's step column: one row after each step once recording began, the last at the iteration's
    last step (a mutation audit: the numbers could be off by one, untested)."""
    from neuralscale.descent import DescentDir
    d = DescentDir(tiny_descent[0])
    its = d.iterations()
    assert len(its) == 2
    for it in its:
        lines = d.trajectory_path(it.number).read_text().splitlines()
        assert lines[0].startswith("step,params,")
        steps = [int(line.split(",")[0]) for line in lines[1:]]
        rows = [[int(x) for x in line.split(",")[2:]] for line in lines[1:]]
        # (this descent records from the first step: --trajectory-start per-layer)
        assert len(steps) >= 6 and steps == list(range(1, it.pruning_steps + 1)) and rows[-1] == it.final_widths
        assert sum(rows[0]) < sum(it.start_widths)


def test_a_descents_training_settings_and_identity_come_from_its_configuration():
    """What an iteration trains with is the descent's own settings (a mutation audit: a setting dropped on the way
    to TrainConfig, or the latency settings counted in a params descent's identity, passed)."""
    from neuralscale.descent import DescentConfig
    sp = ns.space("vgg11", "synthetic")
    cfg = DescentConfig(max_epochs=7, batch_size=16, lr=0.05, momentum=0.8, weight_decay=1e-3, warmup_epochs=3,
                        seed=4, eval_every=2, val_fraction=0.2, schedule="prune-tinyimagenet", device="cpu",
                        amp=True).resolve(sp)
    tc = cfg.train_config()
    assert (tc.epochs, tc.batch_size, tc.lr, tc.momentum, tc.weight_decay, tc.warmup_epochs, tc.seed, tc.eval_every,
            tc.val_fraction, tc.schedule, tc.device, tc.amp) == (7, 16, 0.05, 0.8, 1e-3, 3, 4, 2, 0.2,
                                                                   "prune-tinyimagenet", "cpu", True)
    assert DescentConfig().resolve(sp).train_config().epochs == 1  # no cap: the iteration sets its own
    for unresolved in (DescentConfig().train_config, DescentConfig().schedule_fields):
        with pytest.raises(ns.NeuralscaleError, match=r"resolve the descent configuration for a space first"):
            unresolved()
    # where a latency is measured is part of what a latency descent computes, and of nothing else's
    assert "latency_device" not in DescentConfig(latency_device="cuda:3").identity()
    latency = DescentConfig(objective="latency", latency_batch=8).identity()
    assert (latency["latency_device"], latency["latency_batch"]) == ("cpu", 8)
    assert not set(DescentConfig.NOT_IDENTITY) & set(latency)


def test_settings_that_change_nothing_with_the_others_are_noted(tmp_path):
    """--latency-device without the latency objective, --converge-tolerance without --until-converged: ignored
    without a word before; each is now a note in the descent's log (defaults are not noted)."""
    from neuralscale.descent import DescentConfig
    assert DescentConfig().unused() == [] and DescentConfig(objective="macs").unused() == []
    assert DescentConfig(objective="latency", latency_batch=8, until_converged=True,
                         converge_patience=5).unused() == []
    assert DescentConfig(latency_device="cuda:3", latency_batch=8, converge_tolerance=0.1).unused() == [
        "latency_device (--latency-device) is used only with the latency objective (objective latency); it changes "
        "nothing here",
        "latency_batch (--latency-batch) is used only with the latency objective (objective latency); it changes "
        "nothing here",
        "converge_tolerance (--converge-tolerance) is used only with until_converged; it changes nothing here"]
    assert DescentConfig(converge_patience=3).unused()[0].startswith("converge_patience (--converge-patience)")
    _descend_tiny(tmp_path, converge_tolerance=0.2, iterations=1)
    assert "note: converge_tolerance (--converge-tolerance) is used only with until_converged" in \
        (tmp_path / "log.txt").read_text()


def test_a_generic_models_descent_resolves_to_its_own_rules_and_a_descent_refuses_other_schedules():
    """A model of no paper family prunes past one channel and records rows per layer; the paper's keep the
    original's rules; a descent's schedule and trajectory start are one of theirs (a mutation audit)."""
    from neuralscale.descent import DescentConfig
    import torch
    nn = torch.nn
    own = ns.space(nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
                                 nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10)), torch.randn(2, 3, 32, 32))
    generic = DescentConfig().resolve(own)
    paper = DescentConfig().resolve(ns.space("resnet18", "synthetic"))
    assert (generic.prune_past_one, generic.trajectory_start) == (True, "per-layer")
    assert (paper.prune_past_one, paper.trajectory_start) == (False, "all-lost")
    mine = DescentConfig(prune_past_one=False, trajectory_start="all-lost").resolve(own)
    assert (mine.prune_past_one, mine.trajectory_start) == (False, "all-lost")  # given: kept
    with pytest.raises(ns.NeuralscaleError, match="trajectory_start is all-lost or per-layer, got 'first'"):
        DescentConfig(trajectory_start="first")
    with pytest.raises(ns.NeuralscaleError, match="a descent's schedule is prune or prune-tinyimagenet, got 'cosine'"):
        DescentConfig(schedule="cosine")
    for bad in (1.0, -0.1):  # refused as it is made (an experiment file's), not first by the split
        with pytest.raises(ns.NeuralscaleError, match="validation fraction"):
            DescentConfig(val_fraction=bad)


def _its(sp, tilts):
    """Finished iterations whose laws differ in conv1's exponent only (`tilts`)."""
    from neuralscale.descent import Iteration
    from neuralscale.scaling import ScalingLaw
    laws = [ScalingLaw(sp.name, sp.info.name, list(sp.layer_names), [t] + [1.0] * (len(sp) - 1), [0.5] * len(sp),
                       iteration=i) for i, t in enumerate(tilts, 1)]
    return [Iteration(law, list(sp.base_widths), list(sp.base_widths), list(sp.base_widths), True, 1, 1, True, "")
            for law in laws]


def test_the_convergence_rules_edges_and_its_count_so_far(caplog):
    """A move of exactly the tolerance is not under it, neither for the rule nor for the count it logs; the
    count stops at the patience; a change list that settles only at its last entry settles (a mutation audit)."""
    from neuralscale.descent import DescentConfig, _converged, configuration_changes, largest_move, settled_at
    assert settled_at([0.1, 0.05, 0.01], 0.05, 1) == 4 and settled_at([0.1, 0.04], 0.05, 1) == 3
    assert settled_at([0.01, 0.01], 0.05, 2) == 3 and settled_at([0.01, 0.06], 0.05, 2) is None
    assert settled_at([0.01], 0.05, 2) is None
    sp = ns.space("vgg11", "cifar10")
    its = _its(sp, [1.0, 2.0, 2.0, 2.0])  # conf. moves once, then stays
    change = configuration_changes([it.law for it in its], sp)[0]
    assert change > 0.3

    def count(tolerance, patience):
        caplog.clear()
        with caplog.at_level("INFO", logger="neuralscale"):
            stopped = _converged(its, sp, DescentConfig(until_converged=True, converge_tolerance=tolerance,
                                                        converge_patience=patience), None)
        return stopped, caplog.text.split(" so far)")[0].rsplit("(", 1)[1]
    assert count(0.05, 1) == (True, "1") and count(0.05, 2) == (True, "2")  # two still moves, at most the patience
    assert count(change, 3) == (False, "2")  # the first move equals the tolerance: not under it
    assert count(change * 1.001, 3) == (True, "3")
    assert not _converged(its[:1], sp, DescentConfig(until_converged=True), None)  # one iteration: nothing to compare
    assert largest_move([10, 20], [12, 30]) == (0.5, 1)  # relative to the width before


def test_an_iteration_recorded_before_fields_existed_reads_with_their_defaults():
    """fits.json entries of an earlier release lack the later fields: the widths fall back to the start (MorphNet's
    and pruning's ends unknown), the counts to 0 (a mutation audit)."""
    from neuralscale.descent import Iteration
    sp = ns.space("vgg11", "cifar10")
    d = _its(sp, [1.0])[0].to_dict()
    start = [w // 2 for w in sp.base_widths]
    old = {k: v for k, v in d.items() if k not in ("final_widths", "half_widths", "half_reached", "epochs",
                                                    "pruning_steps", "physical", "stop_reason", "notes",
                                                    "final_val_acc")}
    old["start_widths"] = start
    final = {**old, "final_widths": [w // 4 for w in sp.base_widths]}
    it = Iteration.from_dict(old)
    assert (it.final_widths, it.half_widths, it.half_reached, it.epochs, it.pruning_steps, it.notes) == (
        start, start, True, 0, 0, [])
    assert Iteration.from_dict(final).half_widths == start  # the start, not pruning's end
    for k, v in (("epochs", -1), ("final_widths", [0] * len(sp)), ("final_widths", start[:-1]),
                 ("final_val_acc", 101.0), ("pruning_steps", 1.5)):
        with pytest.raises(ns.NeuralscaleError, match=f"not a descent iteration: {k} must be"):
            Iteration.from_dict({**d, k: v})
    assert Iteration.from_dict({**d, "final_val_acc": 100.0}).final_val_acc == 100.0


def test_the_descent_log_is_open_only_while_the_descent_runs(tmp_path):
    import logging
    from neuralscale.descent import DescentDir
    root = logging.getLogger("neuralscale")
    before = (root.level, list(root.handlers))
    root.setLevel(logging.WARNING)
    try:
        d = DescentDir(tmp_path)
        with d.open_log():
            logging.getLogger("neuralscale.descent").info("inside")
        logging.getLogger("neuralscale.descent").warning("outside")
        assert root.level == logging.WARNING and root.handlers == before[1]
        assert d.log_path.read_text().rstrip().endswith(" inside")
    finally:
        root.setLevel(before[0])


def _copy_tiny(tiny_descent, tmp_path):
    import shutil
    return Path(shutil.copytree(tiny_descent[0], tmp_path / "d"))


def _descend_tiny(out, **changes):
    from helpers import TINY_DESCENT, TINY_DESCENT_TRAIN
    return ns.descend("vgg11", "synthetic", out, ns.DescentConfig(**{**TINY_DESCENT, **changes}),
                      subset={"train": TINY_DESCENT_TRAIN}, progress=False)


def test_a_finished_descent_run_again_writes_nothing(tiny_descent, tmp_path):
    """Every iteration finished: the laws are read, and no file is written, not even the log (a read-only folder,
    an archive; a mutation audit: a rerun that locked, claimed and logged passed)."""
    out = _copy_tiny(tiny_descent, tmp_path)
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.iterdir()}
    laws = _descend_tiny(out)
    assert [law.iteration for law in laws] == [1, 2]
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.iterdir()} == before


def test_a_continued_descent_removes_finished_iterations_checkpoints_and_stops_if_settled(tiny_descent, tmp_path):
    """A checkpoint its iteration's end did not get to remove (a kill between the two) is removed when the descent
    continues; with --until-converged, a descent that had settled before trains no further iteration (a mutation
    audit: both untested)."""
    out = _copy_tiny(tiny_descent, tmp_path)
    for n in (1, 2):
        (out / f"iteration_{n:02d}.ckpt").write_bytes(b"left by a kill")
    laws = _descend_tiny(out, iterations=6, until_converged=True, converge_tolerance=100.0, converge_patience=1)
    assert [law.iteration for law in laws] == [1, 2] and not list(out.glob("*.ckpt"))
    log = (out / "log.txt").read_text()
    assert "descent converged after iteration 2" in log and "iterations 1-2 already finished in" in log
    # settled: read on a machine without the device it names, as a finished descent is (a review: the early device
    # check refused it); one that would train further is refused, before it starts an iteration
    import torch
    if torch.cuda.device_count() < 8:
        settled = dict(iterations=6, until_converged=True, converge_tolerance=100.0, converge_patience=1)
        assert [law.iteration for law in _descend_tiny(out, device="cuda:7", **settled)] == [1, 2]
        with pytest.raises(ns.NeuralscaleError, match="cuda:7"):
            _descend_tiny(out, device="cuda:7", iterations=3)
        assert not (out / "iteration_03.csv").exists()


def test_an_iterations_checkpoint_is_refused_for_another_iteration(tiny_descent, tmp_path):
    """An iteration's checkpoint names the descent and the iteration it belongs to: iteration 1's state found as
    iteration 2's is refused, naming both, rather than continued (a mutation audit: the iteration number in the
    owner was untested)."""
    out = _copy_tiny(tiny_descent, tmp_path)
    fits = json.loads((out / "fits.json").read_text())
    fits["laws"] = fits["laws"][:1]
    (out / "fits.json").write_text(json.dumps(fits))
    import torch
    torch.save({"owner": "descent 0123456789 iteration 1", "epoch": 1}, out / "iteration_02.ckpt")
    with pytest.raises(ns.NeuralscaleError, match=r"belongs to descent 0123456789 iteration 1, not to descent "
                                                  r"[0-9a-f]{10} iteration 2;"):
        _descend_tiny(out)


def test_an_iteration_that_cannot_finish_pruning_in_its_epochs_is_refused_and_continues_under_a_higher_cap(tmp_path):
    """Its advice, "raise --max-epochs", is followed from the iteration's checkpoint: that was refused as written
    "with other training settings (epochs: 1 there, 20 here)", and so was going back to no cap, so the iteration's
    training was lost (an adversarial pass). It continues, and ends as the iteration run uncapped does."""
    import torch
    with pytest.raises(ns.NeuralscaleError, match=r"iteration 1 stopped after 1 epochs before pruning 80% of the "
                                                  r"channels; raise --max-epochs"):
        _descend_tiny(tmp_path / "d", iterations=1, max_epochs=1)
    assert not (tmp_path / "d" / "fits.json").exists()
    assert torch.load(tmp_path / "d" / "iteration_01.ckpt", weights_only=True)["epoch"] == 1
    with pytest.raises(ns.NeuralscaleError, match=r"iteration 1 stopped after 2 epochs"):
        _descend_tiny(tmp_path / "d", iterations=1, max_epochs=2, eval_every=1)  # (how often it evaluates, too)
    (law,) = _descend_tiny(tmp_path / "d", iterations=1)  # no cap: as many epochs as its pruning needs
    (whole,) = _descend_tiny(tmp_path / "whole", iterations=1)
    assert (law.alpha, law.beta, law.rows) == (whole.alpha, whole.beta, whole.rows)
    config = json.loads((tmp_path / "d" / "config.json").read_text())["descent"]
    assert config.get("max_epochs") is None  # (not an identity setting: the config is the descent's as rerun)


def test_a_fallback_law_in_the_last_iteration_is_refused_too(tmp_path):
    """Not only before building on it: a descent whose last iteration's law is a fallback ends in the refusal, and
    so does reading it back finished (a mutation audit: only a fallback before another iteration was tested)."""
    cfg = ns.DescentConfig(iterations=1, warmup_epochs=0, interval=1, k=1, prune_fraction=0.02, batch_size=64,
                           base_ratio=0.0625, device="cpu")  # all-lost rows: none before pruning ends
    with pytest.warns(ns.NeuralscaleWarning, match="not a fit"):  # as the iteration is recorded
        with pytest.raises(ns.NeuralscaleError, match="iteration 1's law is not a fit"):
            ns.descend("vgg11", "synthetic", tmp_path / "d", cfg, subset={"train": 128}, progress=False)
    with pytest.raises(ns.NeuralscaleError, match="iteration 1's law is not a fit"):  # read back, finished
        ns.descend("vgg11", "synthetic", tmp_path / "d", cfg, subset={"train": 128}, progress=False)
    assert len(json.loads((tmp_path / "d" / "fits.json").read_text())["laws"]) == 1
    accepting = ns.DescentConfig(**{**cfg.to_dict(), "allow_fallback": True})
    laws = ns.descend("vgg11", "synthetic", tmp_path / "d", accepting, subset={"train": 128}, progress=False)
    assert laws[0].fallback


def test_an_iteration_records_its_validation_accuracy_and_an_end_before_half(tmp_path):
    """fits.json's record of an iteration that holds out a validation split and prunes under half of its channels:
    the accuracy on that split where pruning ended, and MorphNet's widths as pruning's end, flagged as not half
    (a mutation audit: both fields were recorded unchecked)."""
    from neuralscale.descent import DescentDir
    cfg = ns.DescentConfig(iterations=1, warmup_epochs=0, k=3, interval=1, prune_fraction=0.3, batch_size=64,
                           base_ratio=0.0625, val_fraction=0.2, device="cpu", prune_past_one=True,
                           allow_fallback=True, trajectory_start="per-layer")
    ns.descend("vgg11", "synthetic", tmp_path / "d", cfg, subset={"train": 200}, progress=False)
    it = DescentDir(tmp_path / "d").iteration(1)
    assert isinstance(it.final_val_acc, float) and 0 <= it.final_val_acc <= 100
    assert not it.half_reached and it.half_widths == it.final_widths and sum(it.final_widths) < sum(it.start_widths)
    assert it.physical and it.pruning_steps >= 1 and it.stop_reason.endswith("pruned (30%)"), it.stop_reason


def test_a_descents_readers_give_the_iteration_asked_for(tiny_descent, tmp_path):
    """What each method reads from a descent folder: the law of the iteration asked for (the last by default),
    pruning's end of iteration 1 (`pruned`), the start of iteration K (`shape@K`), and a trajectory's own iteration;
    a file that is not a descent's trajectory is none (a mutation audit: which iteration each reader took was
    untested with two iterations)."""
    from neuralscale.descent import DescentDir, law_from, morphnet_widths, pruned_widths, shape_widths
    out = tiny_descent[0]
    sp = ns.space("vgg11", "synthetic")
    first, second = DescentDir(out).iterations()
    assert first.final_widths != first.start_widths != second.start_widths
    assert [law_from(out, sp, n).iteration for n in (1, 2, None)] == [1, 2, 2]
    assert law_from(out, sp, 1).beta == first.law.beta != second.law.beta
    assert pruned_widths(out, sp) == first.final_widths
    assert shape_widths(out, sp, 2) == second.start_widths and shape_widths(out, sp, 1) == first.start_widths
    assert shape_widths(out, sp) == second.start_widths
    d, it = DescentDir.of_trajectory(out / "iteration_02.csv")
    assert d.path == out and it.number == 2 and DescentDir.of_trajectory(out / "iteration_01.csv")[1].number == 1
    for name in ("iteration_00.csv", "iteration_03.csv", "x.csv"):
        assert DescentDir.of_trajectory(out / name) is None, name
    for name in ("iteration_01.csv", "fits.json"):  # a trajectory and laws without the descent's configuration
        (tmp_path / name).write_bytes((out / name).read_bytes())
    assert DescentDir.of_trajectory(tmp_path / "iteration_01.csv") is None
    for method in (pruned_widths, shape_widths, morphnet_widths):
        with pytest.raises(ns.NeuralscaleError, match="needs a descent directory"):
            method(out / "fits.json", sp)
    with pytest.raises(ns.NeuralscaleError, match="fitted for vgg11"):
        law_from(out, ns.space("resnet18", "synthetic"))
    laws = tiny_descent[1]
    with pytest.raises(ns.NeuralscaleError, match="give a params or a macs budget, not both"):
        laws.configuration(params="50%", macs="50%")
    with pytest.raises(ns.NeuralscaleError, match=r"the descent has no iteration 3 \(it has 1 to 2\)"):
        laws.configuration(params="50%", iteration=3)
    with pytest.raises(ns.NeuralscaleError, match="unknown option 'flops'; a budget is params or macs"):
        laws.widths(flops="25%")  # (a fourth adversarial pass: solve()'s TypeError)
    assert laws.widths(params=20000, multiple=2) == [w + w % 2 for w in laws.widths(params=20000, multiple=2)]
    for bad in ("1", 1.0, True):  # a TypeError, or True taken as 1 (a third adversarial pass)
        with pytest.raises(ns.NeuralscaleError, match="iteration must be a whole number, at least 1"):
            laws.widths(params="50%", iteration=bad)
    with pytest.raises(ns.NeuralscaleError, match="convert"):  # a law fitted against parameters, a MACs budget
        laws.configuration(macs="50%")
    # a share given with % is no count meant as one (a review: the hint "written with %" came back on this path)
    share = f"{0.25 / laws.base_params:.10%}"
    with pytest.raises(ns.NeuralscaleError, match="out of reach") as e:
        laws.configuration(params=share)
    assert "written with %" not in str(e.value), str(e.value)
    with pytest.raises(ns.NeuralscaleError, match=r"\(a share of the base model is written with %: 25%\)$"):
        laws.configuration(params=0.25)
    with pytest.raises(ns.NeuralscaleError, match=r"has no iteration 0 \(it has 1 to 2\)"):
        DescentDir(out).iteration(0)
    started = tmp_path / "started"  # configured, no iteration finished yet: said so, not "1 to 0" or an IndexError
    started.mkdir()
    (started / "config.json").write_bytes((out / "config.json").read_bytes())
    for number in (None, 1):
        with pytest.raises(ns.NeuralscaleError, match=r"started holds no finished descent iteration \(its first iteration has not finished"):
            DescentDir(started).iteration(number)


def test_a_descent_directory_is_one_with_its_configuration_and_a_log_or_laws(tiny_descent, tmp_path):
    """A descent killed in its first iteration (configuration and log, no laws yet) is a descent directory, and
    a training run is refused in it; a folder with only a file named config.json is not one (a mutation audit:
    the rule was untested)."""
    from neuralscale.descent import is_descent_dir
    d = tmp_path / "d"
    d.mkdir()
    (d / "config.json").write_bytes((tiny_descent[0] / "config.json").read_bytes())
    assert not is_descent_dir(d)
    (d / "log.txt").write_text("2026-01-01 00:00:00 descent iteration 1/2: start from [4, 8]\n")
    assert is_descent_dir(d)
    with pytest.raises(ns.NeuralscaleError, match="is a descent directory; give the run a directory of its own"):
        ns.train("vgg11", "synthetic", ratio=0.0625, out_dir=d, progress=False)
    (d / "log.txt").unlink()
    (d / "fits.json").write_bytes((tiny_descent[0] / "fits.json").read_bytes())
    assert is_descent_dir(d) and is_descent_dir(tiny_descent[0])


def test_laws_of_another_model_in_a_descents_fits_json_are_damage(tiny_descent, tmp_path):
    """An entry of fits.json whose law is of another model or dataset than the file's is refused as damage (a
    mutation audit: untested)."""
    from neuralscale.descent import DescentDir
    out = _copy_tiny(tiny_descent, tmp_path)
    fits = json.loads((out / "fits.json").read_text())
    fits["laws"][1]["model"] = "resnet18"
    (out / "fits.json").write_text(json.dumps(fits))
    with pytest.raises(ns.NeuralscaleError, match="iteration 2 is a law of resnet18 on synthetic, the file's of "
                                                  "vgg11 on synthetic"):
        DescentDir(out).iterations()


def test_a_descent_that_prunes_a_network_at_chance_says_its_law_says_little():
    """A walkthrough: a README-sized descent of one's own model pruned a network at 13% on ten classes (and fitted
    laws with a 74% hold-out error) without a word. The accuracy at the end of the warm-up (validation, else test,
    else training) at most twice chance is warned of; above it, nothing."""
    import warnings
    from neuralscale.descent import _learned_little
    from neuralscale.errors import NeuralscaleWarning
    cases = [([{"train_acc": 13.4}], 1, 10, "train accuracy 13.4% after epoch 1; chance is 10%"),
             ([{"train_acc": 90.0, "val_acc": 19.0}, {"train_acc": 95.0, "val_acc": 60.0}], 1, 10,
              "val accuracy 19.0% after epoch 1"),
             ([{"train_acc": 3.0, "test_acc": 50.0}] * 3, 5, 200, None),  # past the warm-up's end: the last epoch
             ([{"train_acc": 21.0}], 0, 10, None), ([], 2, 10, None), ([{"train_acc": 1.0}], 1, 200, "chance is 0.5%"),
             # two classes: twice chance is 100%, which every network is under (a review)
             ([{"train_acc": 92.0}], 1, 2, None), ([{"train_acc": 55.0}], 1, 2, "chance is 50%")]
    for history, warmup, classes, says in cases:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            _learned_little(history, warmup, classes, 3)
        got = [str(w.message) for w in caught if issubclass(w.category, NeuralscaleWarning)]
        if says is None:
            assert not got, (history, got)
        else:
            assert len(got) == 1 and got[0].startswith("descent iteration 3: the network pruned had learned little")
            assert says in got[0] and "--warmup-epochs" in got[0], got
            assert "--batch-size" not in got[0]
    # a warm-up of few steps (240 images at the default 256: one step an epoch, two in all): a smaller batch size
    # is advised too (a walkthrough: only more epochs or images were)
    for batches, says in (((240, 256), "a smaller --batch-size (its warm-up was 2 steps of 256 of 240 images)"),
                          ((50_000, 128), None)):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            _learned_little([{"train_acc": 12.0}] * 2, 2, 10, 1, batches)
        (got,) = [str(w.message) for w in caught if issubclass(w.category, NeuralscaleWarning)]
        assert (says in got) if says else "--batch-size" not in got, got


def test_a_descent_recorded_before_digests_goes_on_and_then_refuses_other_images(tiny_descent, tmp_path):
    """A descent whose config.json says its data's sizes alone (recorded before digests were, or of made data)
    continues on data read from files, and records their digest; the laws' fingerprint (fits.json) is of the sizes,
    so the recorded digest does not make them another descent's (a review: the folder was refused at once, and then
    by either version). Continued on the same sizes with other images, it is refused, naming both."""
    from dataclasses import replace

    from helpers import TINY_DESCENT, TINY_DESCENT_TRAIN
    from neuralscale.api import load_splits
    from neuralscale.data import DataConfig
    d = _copy_tiny(tiny_descent, tmp_path)
    assert "digest" not in json.loads((d / "config.json").read_text())["data"]
    cfg = ns.DescentConfig(**TINY_DESCENT).resolve(ns.space("vgg11", "synthetic"))
    splits = load_splits(DataConfig("synthetic", train=TINY_DESCENT_TRAIN), cfg.train_config())  # as descend's

    def descend(iterations, digest):
        return ns.descend("vgg11", "synthetic", d, ns.DescentConfig(**{**TINY_DESCENT, "iterations": iterations}),
                          splits=replace(splits, digest=digest), progress=False)
    assert len(descend(3, "1" * 16)) == 3
    assert json.loads((d / "config.json").read_text())["data"]["digest"] == "1" * 16
    with pytest.raises(ns.NeuralscaleError, match=r"another configuration \(data: recorded \{.*'digest': '1{16}'\}, "
                                                  r"now \{.*'digest': '2{16}'\}\)"):
        descend(3, "2" * 16)


def test_a_folder_of_another_kind_given_for_a_descent_or_a_run_says_what_it_is(tiny_descent, tmp_path):
    """`--from` a trained run's folder or a sweep's store said only "holds no finished descent iteration", and an
    export of a descent's folder "holds no run record" (a walkthrough): each says what the folder is and what to
    give; a descent whose first iteration has not finished says so."""
    import re

    from helpers import TINY_DESCENT
    from neuralscale.descent import DescentConfig, DescentDir
    from neuralscale.sweep import SweepConfig, run_sweep
    sp = ns.space("vgg11", "synthetic")
    run = tmp_path / "run"
    ns.train("vgg11", "synthetic", ratio=0.0625, config=ns.TrainConfig(epochs=1, batch_size=32, device="cpu"),
             subset={"train": 32, "test": 16}, out_dir=run, progress=False)
    with pytest.raises(ns.NeuralscaleError, match=re.escape(f"{run} holds no finished descent iteration; it is a "
                                                         "trained run's folder (train --out): give a descent's "
                                                         "(descend --out)")):
        ns.scale(sp, "neuralscale", "50%", source=run)
    store = tmp_path / "store"
    run_sweep(SweepConfig(model="vgg11", dataset="synthetic", methods=["uniform"], ratios=[0.0625], seeds=[0],
                          data={"train": 32, "test": 16}, train={"epochs": 1, "batch_size": 32, "device": "cpu"}),
              store, progress=False)
    with pytest.raises(ns.NeuralscaleError, match=re.escape(f"{store} holds no finished descent iteration; it is a "
                                                         "sweep's store")):
        ns.scale(sp, "neuralscale", "50%", source=store)
    started = tmp_path / "started"
    DescentDir(started).claim(sp, DescentConfig(**TINY_DESCENT).resolve(sp), {})
    assert DescentDir(started).none_finished().endswith("(its first iteration has not finished: run descend into "
                                                        "it to go on)")
    with pytest.raises(ns.NeuralscaleError, match=re.escape(f"{tiny_descent[0]} holds no run record; it is a descent's "
                                                         "folder, which keeps no network: train one of its laws")):
        ns.export_run(tiny_descent[0], tmp_path / "m")



def test_a_descent_records_the_criterion_that_scored_its_channels(tiny_descent, tmp_path):
    """`importance` was neither recorded nor compared: the same call with L1 returned the Taylor-FO laws as its
    own, and one more iteration pruned by L1 joined two pruned by Taylor-FO, nothing saying so (an adversarial
    pass). config.json names the criterion, and a rerun with another is refused, as another setting is."""
    from helpers import TINY_DESCENT, TINY_DESCENT_TRAIN
    from neuralscale.errors import NeuralscaleError
    taylor = _copy_tiny(tiny_descent, tmp_path)
    assert json.loads((taylor / "config.json").read_text())["importance"] == "taylor"
    for changes in ({}, {"iterations": 3}):
        with pytest.raises(NeuralscaleError, match="another configuration .importance: recorded 'taylor', now 'l1'"):
            ns.descend("vgg11", "synthetic", taylor, ns.DescentConfig(**{**TINY_DESCENT, **changes}),
                       subset={"train": TINY_DESCENT_TRAIN}, progress=False, importance=ns.L1FilterNorm())
    assert len(json.loads((taylor / "fits.json").read_text())["laws"]) == 2

    class Mine(ns.Importance):  # a criterion of one's own that gives no name: its class's
        def score(self, layer):
            return layer.producers[0].weight.detach().abs().flatten(1).sum(1).cpu()
    one = {**TINY_DESCENT, "iterations": 1}
    laws = ns.descend("vgg11", "synthetic", tmp_path / "mine", ns.DescentConfig(**one),
                      subset={"train": TINY_DESCENT_TRAIN}, progress=False, importance=Mine())
    recorded = json.loads((tmp_path / "mine" / "config.json").read_text())["importance"]
    assert recorded.endswith("Mine")
    assert ns.descend("vgg11", "synthetic", tmp_path / "mine", ns.DescentConfig(**one),
                      subset={"train": TINY_DESCENT_TRAIN}, progress=False, importance=Mine()) == laws
    with pytest.raises(NeuralscaleError, match=f"importance: recorded {recorded!r}, now 'taylor'"):
        ns.descend("vgg11", "synthetic", tmp_path / "mine", ns.DescentConfig(**one),
                   subset={"train": TINY_DESCENT_TRAIN}, progress=False)
    # a descent recorded before descents recorded their criterion says none: it goes on as before, whatever is
    # given (a review: it was taken for Taylor-FO's, and one pruned by L1 refused to its own call)
    from neuralscale.descent import DescentDir
    config = json.loads((tmp_path / "mine" / "config.json").read_text())
    del config["importance"]
    (tmp_path / "mine" / "config.json").write_text(json.dumps(config))
    fits = json.loads((tmp_path / "mine" / "fits.json").read_text())
    (tmp_path / "mine" / "fits.json").write_text(json.dumps({**fits, "descent": DescentDir(tmp_path / "mine")
                                                             .fingerprint()}))
    for importance in (Mine(), None):
        assert ns.descend("vgg11", "synthetic", tmp_path / "mine", ns.DescentConfig(**one), importance=importance,
                          subset={"train": TINY_DESCENT_TRAIN}, progress=False) == laws


def test_a_descents_trajectory_is_fitted_only_with_the_space_it_pruned(tiny_descent, tmp_path):
    """`fit_trajectory` of a descent's iteration file with a space for other data returned a law labelled for that
    data, its tau counted with that data's parameters (an adversarial pass): refused, naming both."""
    from neuralscale.api import fit_trajectory
    from neuralscale.errors import NeuralscaleError
    d = _copy_tiny(tiny_descent, tmp_path)
    law = fit_trajectory(d / "iteration_01.csv", ns.space("vgg11", "synthetic"))
    assert law.dataset == "synthetic"
    with pytest.raises(NeuralscaleError, match=re.escape(f"{d / 'iteration_01.csv'} is a trajectory of a descent "
                                                         "whose laws were fitted for vgg11 on synthetic, not vgg11 on "
                                                         "cifar10; fit it with the space that descent pruned")):
        fit_trajectory(d / "iteration_01.csv", ns.space("vgg11", "cifar10"))


def test_an_iteration_past_those_asked_for_does_not_refuse_them(tiny_descent, tmp_path):
    """A third iteration asked for once that fell back (refused, recorded) refused every later call, even for the
    two iterations that had returned before (an adversarial pass): a call returns the iterations it asks for, and
    only their last is held to allow_fallback."""
    from helpers import TINY_DESCENT, TINY_DESCENT_TRAIN
    from neuralscale.errors import NeuralscaleError
    d = _copy_tiny(tiny_descent, tmp_path)
    fits = json.loads((d / "fits.json").read_text())
    fits["laws"][1].update(fallback=True, note="too few rows")  # iteration 2 as one that fell back
    (d / "fits.json").write_text(json.dumps(fits))

    def call(iterations: int):
        return ns.descend("vgg11", "synthetic", d, ns.DescentConfig(**{**TINY_DESCENT, "iterations": iterations,
                                                                        "allow_fallback": False}),
                          subset={"train": TINY_DESCENT_TRAIN}, progress=False)
    with pytest.raises(NeuralscaleError, match="To accept it, rerun here with --allow-fallback"):
        call(2)
    laws = call(1)
    assert [law.iteration for law in laws] == [1] and not laws[0].fallback
