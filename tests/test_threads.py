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
    (2, 2, 2, 0.5, 1), (1, 2, 2, 0.25, 2),   # the boundaries: half a core taken, a core and a quarter free
    (1, 8, 8, 5.0, 3),                        # back up to the cores free, not past them
])
def test_the_thread_count_follows_the_cores_others_leave(threads_now, limit, cpus, others, want):
    assert choose(threads_now, limit, cpus, others) == want


def test_the_wait_policy_is_the_users_or_libgomps(monkeypatch):
    for var in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME"):
        monkeypatch.delenv(var, raising=False)
    assert threads.wait_policy().startswith("libgomp's default")
    monkeypatch.setenv("GOMP_SPINCOUNT", "1000")
    assert threads.wait_policy() == "the user's (GOMP_SPINCOUNT=1000)"
    monkeypatch.setenv("KMP_BLOCKTIME", "0")  # every variable that sets it (Intel's OpenMP too) is the user's
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    assert threads.wait_policy() == "the user's (OMP_WAIT_POLICY=PASSIVE, GOMP_SPINCOUNT=1000, KMP_BLOCKTIME=0)"


def _files(monkeypatch, **contents):
    """threads.py's reads of /proc/stat and the cgroup's cpu.max answered with `contents` (None: unreadable)."""
    import io
    names = {"/proc/stat": contents.get("stat"), "/sys/fs/cgroup/cpu.max": contents.get("quota")}

    def fake_open(path, *args, **kw):
        if names.get(str(path)) is None:
            raise FileNotFoundError(2, "No such file or directory", str(path))
        return io.StringIO(names[str(path)])
    monkeypatch.setattr(threads, "open", fake_open, raising=False)


@pytest.mark.parametrize("quota, cpus", [(None, 4), ("max 100000\n", 4), ("150000 100000\n", 2),
                                         ("50000 100000\n", 1), ("800000 100000\n", 4), ("1000 100000\n", 1)])
def test_the_cpus_allowed_are_the_affinitys_within_the_cgroups_quota(monkeypatch, quota, cpus):
    """A container's CPU quota (cgroup v2 cpu.max: quota and period) caps the CPUs the affinity allows, rounded
    up and at least one; 'max' or no file leaves the affinity's count."""
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: {0, 1, 2, 5}, raising=False)
    monkeypatch.setattr(threads.os, "cpu_count", lambda: 8)  # the affinity's CPUs count, not the machine's
    _files(monkeypatch, quota=quota)
    assert threads.allowed_cpus() == cpus


def test_the_load_is_read_from_the_cpus_this_process_may_use(monkeypatch):
    """/proc/stat's per-CPU lines of the CPUs in the affinity (not the summary line, not the others): user, nice,
    system, irq and softirq in clock ticks (idle, iowait and steal are nobody's work), in seconds."""
    stat = ("cpu  9000 900 900 90000 90 90 90 0 0 0\n"
            "cpu0 100 10 20 5000 7 3 4 9 0 0\n"
            "cpu1 200 20 40 6000 8 6 8 9 0 0\n"
            "cpu2 400 40 80 7000 9 12 16 9 0 0\n"
            "intr 1 2 3\nctxt 5\n")
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    sysconf = threads.os.sysconf
    monkeypatch.setattr(threads.os, "sysconf", lambda name: 250 if name == "SC_CLK_TCK" else sysconf(name))
    _files(monkeypatch, stat=stat)
    busy, cpus = threads._machine_busy()
    assert cpus == 2 and busy == pytest.approx((100 + 10 + 20 + 3 + 4 + 200 + 20 + 40 + 6 + 8) / 250)
    _files(monkeypatch)  # not Linux: nothing to read
    assert threads._machine_busy() is None


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


def test_where_the_load_cannot_be_read_the_threads_stay_at_the_limit(monkeypatch, free_threads):
    monkeypatch.setattr(threads, "allowed_cpus", lambda: 2)
    _files(monkeypatch)  # no /proc/stat (not Linux)
    g = Governor(every_s=0.0)
    assert not g.active and g.limit == 2 and torch.get_num_threads() == 2
    assert "fixed (the load cannot be read here)" in g.describe(), g.describe()


def test_the_limit_is_torchs_count_within_the_cpus_allowed(monkeypatch, free_threads):
    """torch's count (2 here) capped by what the process may use (one CPU: its affinity or its cgroup quota)."""
    monkeypatch.setattr(threads, "allowed_cpus", lambda: 1)
    _Load(monkeypatch)
    g = Governor(every_s=2.0)
    assert g.limit == 1 and torch.get_num_threads() == 1 and g.active


def test_neuralscale_threads_torch_leaves_the_count_to_torch(monkeypatch, free_threads):
    """NEURALSCALE_THREADS=torch (any case): torch's own count, untouched and not following the load."""
    monkeypatch.setattr(threads, "allowed_cpus", lambda: 1)
    load = _Load(monkeypatch)
    monkeypatch.setenv("NEURALSCALE_THREADS", " Torch ")
    g = Governor(every_s=0.0)
    load.advance(5.0, others=2.0, own=1.0)
    g.tick()
    assert not g.active and torch.get_num_threads() == 2 and g.changes == 0
    assert "as torch chose (NEURALSCALE_THREADS=torch)" in g.describe() and "ignored" not in g.describe()


@pytest.mark.parametrize("given", ["0", "-2", "two", "2.5"])
def test_a_malformed_thread_count_is_ignored_and_said(monkeypatch, free_threads, given):
    monkeypatch.setattr(threads, "allowed_cpus", lambda: 2)
    _Load(monkeypatch)
    monkeypatch.setenv("NEURALSCALE_THREADS", given)
    assert threads.fixed_by_user() is None
    g = Governor()
    assert g.active and torch.get_num_threads() == 2
    assert f"ignored NEURALSCALE_THREADS={given!r} (auto, torch or a count)" in g.describe(), g.describe()


def test_omp_num_threads_fixes_the_count_by_its_first_level(monkeypatch, free_threads):
    """OMP_NUM_THREADS=4,2 (a count per nesting level) fixes 4; 0 or a word fixes nothing."""
    for value, fixed in (("4,2", 4), ("3", 3), ("0", None), ("", None), ("many", None)):
        monkeypatch.setenv("OMP_NUM_THREADS", value)
        assert threads.fixed_by_user() == fixed, value


def test_other_processes_time_is_never_negative(monkeypatch, free_threads):
    """The machine's counters and the process's own tick at different grains: this process's CPU time may run
    ahead of the machine's busy time; the others' share then reads 0, not less."""
    monkeypatch.setattr(threads, "allowed_cpus", lambda: 2)
    load = _Load(monkeypatch)
    g = Governor(every_s=1.0)
    load.advance(2.0, others=-0.5, own=2.0)
    g.tick()
    assert g.others == 0.0 and torch.get_num_threads() == 2


def test_after_training_the_programs_own_count_is_left_as_it_set_it(monkeypatch, free_threads):
    """The governor lowered the count, then the program set its own: restore (after training) leaves the
    program's count, not the governor's limit."""
    monkeypatch.setattr(threads, "allowed_cpus", lambda: 4)
    torch.set_num_threads(4)
    load = _Load(monkeypatch, cpus=4)
    g = Governor(every_s=1.0)
    load.advance(2.0, others=3.0, own=1.0)
    g.tick()
    assert torch.get_num_threads() == 1
    torch.set_num_threads(3)
    load.advance(2.0, others=0.0, own=1.0)
    g.tick()
    g.restore()
    assert not g.active and torch.get_num_threads() == 3


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
    assert threads.fixed_by_user() == 8 and "capped" not in Governor().describe()  # 4 per CPU exactly: not capped
