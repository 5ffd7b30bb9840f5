"""CPU threads (threads.py): threads that follow the load in training and stay fixed in a descent, and the
user's own settings taking precedence."""

from __future__ import annotations

import json
import logging

import pytest
import torch

from helpers import TINY_RUN_ARGS, run_cli
from neuralscale import threads
from neuralscale.threads import Governor, choose

@pytest.mark.parametrize("threads_now, limit, cpus, others, want", [
    (2, 2, 2, 0.0, 2), (2, 2, 2, 0.4, 2),    # a light load: every core still worth a thread
    (2, 2, 2, 0.67, 1), (2, 2, 2, 1.0, 1),   # one busy process beside us: one thread
    (2, 2, 2, 2.0, 1),                        # never fewer than one
    (1, 2, 2, 1.0, 1), (1, 2, 2, 0.3, 1),    # hysteresis: back up only once a core and a quarter is free
    (1, 2, 2, 0.2, 2), (1, 2, 2, 0.0, 2),
    (8, 8, 8, 3.0, 5), (5, 8, 8, 0.0, 8),    # larger machines: the cores left, up to the limit
    (1, 1, 8, 0.0, 1),                        # a sweep worker's share is the most it takes
])
def test_the_thread_count_follows_the_cores_others_leave(threads_now, limit, cpus, others, want):
    assert choose(threads_now, limit, cpus, others) == want


def test_the_wait_policy_is_the_users_or_libgomps(monkeypatch):
    for var in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME"):
        monkeypatch.delenv(var, raising=False)
    assert threads.wait_policy().startswith("libgomp's default")
    monkeypatch.setenv("GOMP_SPINCOUNT", "1000")
    assert threads.wait_policy() == "the user's (GOMP_SPINCOUNT=1000)"


class _Load:
    """The machine's counters as a governor reads them, moved by hand: `others` cores busy per second."""

    def __init__(self, monkeypatch, cpus: int = 2):
        self.t = self.busy = self.own = 0.0
        self.cpus = cpus
        monkeypatch.setattr(threads, "_machine_busy", lambda: (self.busy, self.cpus))
        monkeypatch.setattr(threads, "_own_cpu", lambda: self.own)
        monkeypatch.setattr(threads, "_now", lambda: self.t)

    def advance(self, seconds: float, others: float, own: float) -> None:
        self.t += seconds
        self.busy += seconds * (others + own)
        self.own += seconds * own


@pytest.fixture
def free_threads(monkeypatch):
    """No thread count fixed by the environment (tests run with OMP_NUM_THREADS=1), and torch's count and the
    module's state put back afterwards."""
    before = torch.get_num_threads()
    for var in ("OMP_NUM_THREADS", "NEURALSCALE_THREADS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(threads, "_state", {"limit": None, "set": None, "share": None})
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_the_governor_gives_cores_back_under_load_and_takes_them_again(monkeypatch, free_threads, caplog):
    monkeypatch.setattr(threads, "allowed_cpus", lambda: 2)  # two CPUs whatever this host lets the process use
    load = _Load(monkeypatch)
    caplog.set_level(logging.INFO, logger="neuralscale")
    g = Governor(every_s=2.0)
    assert g.active and g.limit == 2 and torch.get_num_threads() == 2
    load.advance(1.0, others=1.0, own=1.0)
    g.tick()  # not yet: it measures every 2 s
    assert torch.get_num_threads() == 2
    load.advance(1.5, others=1.0, own=1.0)
    g.tick()
    assert torch.get_num_threads() == 1 and g.changes == 1 and abs(g.others - 1.0) < 1e-9
    assert "threads: 1 of 2 (other processes keep 1.0 of 2 CPUs busy)" in caplog.text
    load.advance(2.0, others=0.1, own=1.0)  # the other process ended
    g.tick()
    assert torch.get_num_threads() == 2 and g.changes == 2
    load.advance(2.0, others=1.0, own=2.0)
    g.tick()
    assert torch.get_num_threads() == 1
    g.restore()  # after training: the limit again, for a latency measured at a fixed count
    assert torch.get_num_threads() == 2
    assert "following the load" in g.describe() and "idle OpenMP threads wait: " in g.describe()


def test_the_users_own_thread_count_wins(monkeypatch, free_threads, caplog):
    monkeypatch.setattr(threads, "allowed_cpus", lambda: 2)  # (on one CPU the count would be 1 from the start)
    load = _Load(monkeypatch)
    caplog.set_level(logging.INFO, logger="neuralscale")
    g = Governor(every_s=1.0)
    torch.set_num_threads(1)  # the program's own choice while training
    load.advance(2.0, others=0.0, own=1.0)
    g.tick()
    assert not g.active and torch.get_num_threads() == 1 and "no longer following the load" in caplog.text
    assert Governor().limit == 1  # the next trainer takes the program's count as its limit
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    fixed = Governor(every_s=0.0)
    load.advance(5.0, others=2.0, own=1.0)
    fixed.tick()
    assert not fixed.active and fixed.changes == 0 and "fixed by OMP_NUM_THREADS" in fixed.describe()
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.setenv("NEURALSCALE_THREADS", "2")
    assert Governor().limit == 2 and torch.get_num_threads() == 2
    monkeypatch.delenv("NEURALSCALE_THREADS")
    descent = Governor(every_s=0.0, follow=False)  # a descent's trainer: one count throughout
    load.advance(5.0, others=2.0, own=1.0)
    descent.tick()
    assert not descent.active and torch.get_num_threads() == 2 and "a descent keeps one count" in descent.describe()


def test_a_sweep_workers_share_is_named_as_its_cap(monkeypatch, free_threads):
    threads.set_limit(1)  # what a local or Ray worker does with its share of the cores
    g = Governor(every_s=2.0)
    assert g.limit == 1 and torch.get_num_threads() == 1
    assert "at most 1 (this sweep worker's share of the cores)" in g.describe(), g.describe()
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the user's count is the reason then, not the share
    assert "this sweep worker's share" not in Governor().describe()


def test_a_run_records_how_its_threads_were_chosen(tmp_path):
    out = tmp_path / "run"
    r = run_cli("train", *TINY_RUN_ARGS, "--ratio", "0.0625", "--epochs", "1", "--out", str(out))
    assert r.returncode == 0, r.stderr
    env = json.loads((out / "record.json").read_text())["environment"]
    assert env["thread_policy"].startswith(f"threads: {env['threads']} of ") and env["thread_changes"] == 0
    assert "threads: " in r.stderr  # and in the run's log


def test_a_thread_count_past_four_per_cpu_is_capped_and_said(monkeypatch, free_threads):
    """NEURALSCALE_THREADS=3000 made libgomp fail to create its threads and the run die (an adversarial pass):
    the count is capped at 4 per CPU, and the run's log line says so."""
    from neuralscale import threads
    monkeypatch.setenv("NEURALSCALE_THREADS", "3000")
    monkeypatch.setattr(threads.os, "cpu_count", lambda: 2)
    assert threads.most_threads() == 8 and threads.fixed_by_user() == 8
    g = Governor()
    assert g.limit == 8 and "NEURALSCALE_THREADS=3000 capped at 8 (4 per CPU)" in g.describe(), g.describe()
    monkeypatch.setenv("NEURALSCALE_THREADS", "8")
    assert threads.fixed_by_user() == 8
