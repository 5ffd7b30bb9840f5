"""Nothing lost, nothing different: killed at random points, concurrent commands, one recipe per store, exit codes."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import run_cli
from neuralscale.store import load_records, strip_timing

DESCENT = ["descend", "--model", "vgg11", "--dataset", "synthetic", "--base-ratio", "0.0625", "--iterations", "2",
           "--warmup-epochs", "1", "--train-subset", "600", "--prune-interval", "2", "--prune-k", "2",
           "--batch-size", "64", "--device", "cpu", "--prune-past-one", "--allow-fallback"]
SWEEP = ["sweep", "--model", "vgg11", "--dataset", "synthetic", "--methods", "uniform", "--ratios", "0.0625,0.125",
         "--seeds", "0,1,2", "--epochs", "4", "--train-subset", "1200", "--test-subset", "60", "--batch-size", "32",
         "--lr", "0.05", "--momentum", "0.9", "--schedule", "cosine", "--device", "cpu"]


def strict_json(path: Path):
    """Parse as a strict reader would: NaN and Infinity are not JSON."""
    def refuse(name):
        raise ValueError(f"{path} holds {name}")
    return json.loads(path.read_text(), parse_constant=refuse)


def startup_seconds() -> float:
    """How long the command takes to start on this host (imports), so that kills land in the work on any host."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import neuralscale.cli, neuralscale.sweep, neuralscale.descent"],
                   check=True)
    return time.perf_counter() - t0


def kill_repeatedly(args: list[str], progress: Path, kills: int, seed: int) -> list[int]:
    """Start the command and SIGKILL it at random moments, `kills` times; returns the progress seen at each kill."""
    rng = random.Random(seed)
    start = startup_seconds()
    seen = []
    cmd = [sys.executable, "-m", "neuralscale", *args]
    env = {**os.environ, "NEURALSCALE_CHECKPOINT_SECONDS": "0"}  # every epoch: kills resume from many states
    for _ in range(kills):
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                                env=env)
        try:
            proc.wait(timeout=start + rng.uniform(0.0, 2.0))
            break  # it finished before this kill
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        seen.append(len(progress.read_text().splitlines()) if progress.exists() else 0)
    return seen


def test_a_descent_killed_at_random_points_writes_the_same_bytes(tmp_path):
    ref, hit = tmp_path / "ref", tmp_path / "hit"
    r = run_cli(*DESCENT, "--out", str(ref), "--quiet")
    assert r.returncode == 0, r.stderr
    laws = strict_json(ref / "fits.json")["laws"]
    assert [d["rows"] > 6 for d in laws] == [True, True]  # real fits: the resumed state reaches the law
    seen = kill_repeatedly([*DESCENT, "--out", str(hit)], hit / "log.txt", kills=12, seed=1)
    assert len(seen) >= 10, seen
    assert len(set(seen)) >= 5, seen  # killed at many different points of the work, not only at its start
    r = run_cli(*DESCENT, "--out", str(hit), "--quiet")
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in hit.glob("iteration_*")) == ["iteration_01.csv", "iteration_02.csv"]
    for name in ("config.json", "fits.json", "iteration_01.csv", "iteration_02.csv"):
        assert (hit / name).read_bytes() == (ref / name).read_bytes(), name


def test_a_sweep_killed_at_random_points_gives_the_same_records(tmp_path):
    ref, hit = tmp_path / "ref", tmp_path / "hit"
    r = run_cli(*SWEEP, "--out", str(ref), "--quiet")
    assert r.returncode == 0, r.stderr
    rng = random.Random(2)
    start = startup_seconds()
    cmd = [sys.executable, "-m", "neuralscale", *SWEEP, "--out", str(hit), "--quiet"]
    kills = 0
    points = []
    env = {**os.environ, "NEURALSCALE_CHECKPOINT_SECONDS": "0"}  # every epoch: kills resume from many states
    for _ in range(16):
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                                env=env)
        try:
            proc.wait(timeout=start + rng.uniform(0.0, 2.0))
            break
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            kills += 1
        recs = load_records(hit) if (hit / "runs").exists() else []
        points.append((sum(r["status"] == "finished" for r in recs), sum(r["status"] == "running" for r in recs)))
    assert kills >= 10, points
    assert sum(running for _, running in points) >= 3, points  # several kills landed inside a run
    r = run_cli(*SWEEP, "--out", str(hit), "--quiet")
    assert r.returncode == 0, r.stderr
    mine, theirs = load_records(hit), load_records(ref)
    assert [x["id"] for x in mine] == [x["id"] for x in theirs] and len(mine) == 6
    assert all(x["status"] == "finished" for x in mine)
    for a, b in zip(mine, theirs):
        assert strip_timing(a) == strip_timing(b), a["id"]
        strict_json(hit / "runs" / a["id"] / "record.json")


def test_two_sweeps_on_one_store_train_every_run_once(tmp_path):
    out = tmp_path / "s"
    cmd = [sys.executable, "-m", "neuralscale", *SWEEP, "--seeds", "0", "--out", str(out), "--quiet"]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [p.communicate(timeout=300) + (p.returncode,) for p in procs]
    codes = sorted(code for _, _, code in results)
    assert codes[0] == 0, results
    if codes[1] != 0:  # the other found the store in use: one clear line, nothing trained
        err = next(e for _, e, c in results if c != 0)
        assert codes[1] == 2 and "is in use by another neuralscale command (pid" in err
        assert len(err.strip().splitlines()) == 1
    records = load_records(out)
    assert len(records) == 2 and all(r["status"] == "finished" and r["attempts"] == 1 for r in records)


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


def test_a_device_this_machine_lacks_stops_before_any_run(tmp_path):
    pytest.importorskip("torch")
    import torch
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    out = tmp_path / "s"
    r = run_cli(*SWEEP[:-2], "--device", "cuda:5", "--out", str(out), "--quiet")
    assert r.returncode == 2 and "no CUDA device is available" in r.stderr and len(r.stderr.splitlines()) == 1
    assert not (out / "runs").exists() or not load_records(out)  # nothing recorded as the runs' failure
    r = run_cli(*SWEEP, "--executor", "local", "--devices", "cuda:1", "--out", str(out), "--quiet")
    assert r.returncode == 2 and "CUDA" in r.stderr and not load_records(out)


def test_no_file_holds_nan(tmp_path):
    # no validation split and evaluation only at the end: unmeasured numbers are null, not NaN
    r = run_cli("train", "--model", "vgg11", "--dataset", "synthetic", "--ratio", "0.0625", "--epochs", "2",
                "--train-subset", "64", "--test-subset", "16", "--val-fraction", "0", "--device", "cpu",
                "--out", str(tmp_path / "run"), "--quiet")
    assert r.returncode == 0, r.stderr
    rec = strict_json(tmp_path / "run" / "record.json")
    assert rec["summary"]["test_acc_at_best_val"] is None and rec["summary"]["final_test_acc"] is not None
    assert "nan" not in (tmp_path / "run" / "metrics.csv").read_text().lower()
    assert (tmp_path / "run" / "record.json").stat().st_mode & 0o044 == 0o044  # readable by collaborators
