"""Architecture descent end to end: files, resume after SIGKILL, scale from it, plots."""

from __future__ import annotations

import json

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
    assert "--allow-fallback" in r.stderr.strip().splitlines()[-1]
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
