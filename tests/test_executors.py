"""Executors: the same records from every executor, and a killed worker's run retried from its checkpoint."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from conftest import run_cli
from neuralscale.runs import load_records, read_record

TINY = ["sweep", "--model", "vgg11", "--dataset", "synthetic", "--train-subset", "160", "--test-subset", "40",
        "--batch-size", "32", "--device", "cpu", "--lr", "0.05", "--momentum", "0.9", "--schedule", "cosine",
        "--methods", "uniform", "--seeds", "0", "--threads", "1"]


def _metrics(records):
    keys = ("train_loss", "train_acc", "val_acc", "test_acc")
    return {r["id"]: [[m[k] for k in keys] for m in r["history"]] for r in records}


def test_local_workers_give_the_same_records_as_sequential(tmp_path):
    args = [*TINY, "--ratios", "0.0625,0.125", "--epochs", "2"]
    seq = run_cli(*args, "--out", str(tmp_path / "seq"))
    assert seq.returncode == 0, seq.stderr
    par = run_cli(*args, "--out", str(tmp_path / "par"), "--executor", "local", "--workers", "2")
    assert par.returncode == 0, par.stderr
    a, b = load_records(tmp_path / "seq"), load_records(tmp_path / "par")
    assert len(a) == len(b) == 2 and all(r["status"] == "finished" for r in a + b)
    assert _metrics(a) == _metrics(b)  # same seeds, same numbers, bit for bit
    assert all((tmp_path / "par" / "runs" / r["id"] / "log.txt").exists() for r in b)


def test_a_killed_worker_is_retried_from_its_checkpoint(tmp_path):
    out = tmp_path / "sweep"
    args = [*TINY, "--ratios", "0.0625,0.125", "--epochs", "5", "--executor", "local", "--workers", "2", "--out", str(out)]
    proc = subprocess.Popen([sys.executable, "-m", "neuralscale", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    victim = None
    deadline = time.time() + 240
    while time.time() < deadline and victim is None and proc.poll() is None:
        for ckpt in out.glob("runs/*/checkpoint.pt"):
            rec = read_record(ckpt.parent)
            if rec and rec["status"] == "running":
                victim = ckpt.parent.name
                break
        time.sleep(0.05)
    assert victim is not None, "no run reached a checkpoint before the sweep ended"
    children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
    killed = False
    for pid in children:  # the worker whose log is the victim's
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
            if any(victim in os.readlink(f"/proc/{pid}/fd/{fd}") for fd in fds):
                os.kill(int(pid), signal.SIGKILL)
                killed = True
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            pass
    assert killed, "could not find the victim's worker"
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    assert "died" in stderr and "retrying from its checkpoint" in stderr
    records = load_records(out)
    assert len(records) == 2 and all(r["status"] == "finished" for r in records)
    r = read_record(out / "runs" / victim)
    assert r["attempts"] == 2 and r["resumed"] is True
    assert [m["epoch"] for m in r["history"]] == [1, 2, 3, 4, 5]
