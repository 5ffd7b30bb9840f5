"""CPU threads: how many a process computes with, chosen for the machine as it is.

torch's CPU kernels run on an OpenMP pool (libgomp in the PyPI builds) whose idle threads spin for a while
before they sleep. Beside another CPU-bound process a pool as wide as the machine fights it for the cores: on
a 2-core machine the trainer with torch's defaults ran 8-15x slower beside one busy process than pinned to one
thread (issue 31; benchmarks/threads.py measures it). Making the idle threads wait passively
(OMP_WAIT_POLICY=PASSIVE) stops the fight but costs a quiet machine a quarter of its speed (measured: two
passive threads train no faster than one), so the wait policy stays libgomp's, and the thread count moves:

- `Governor`, ticked by the trainer at every step: every `every_s` seconds it measures how much CPU other
  processes use (the machine's busy time in /proc/stat less this process's own) and sets torch's threads to
  the cores they leave free (`choose`), between 1 and the process's limit (torch's own count, within the
  CPUs it may run on and its cgroup quota, or what a sweep worker was given), with some hysteresis; each
  change is logged. A descent's trainer keeps one count throughout (`follow=False`): a CPU's sums depend on
  how many threads share them, and a descent's law should repeat exactly on the same machine.

The user decides with their own environment: OMP_NUM_THREADS or NEURALSCALE_THREADS=N (a fixed count, no
governor), NEURALSCALE_THREADS=torch (torch's count, as before issue 31), OMP_WAIT_POLICY or GOMP_SPINCOUNT
(the wait policy, reported as theirs); a `torch.set_num_threads` of the program's own while training stops the
governor, and a later trainer takes that count as its limit. Where /proc/stat cannot be read (not Linux), the
threads stay at the limit.
"""

from __future__ import annotations

import logging
import math
import os
import time

log = logging.getLogger(__name__)

ENV = "NEURALSCALE_THREADS"
_WAIT_VARS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")
# the most threads (a sweep worker's share: set_limit, else the first trainer's count); the count set last
_state = {"limit": None, "set": None, "share": None}  # share: the limit a sweep worker was given (set_limit)


def most_threads() -> int:
    """The most threads a process computes with: 4 per CPU of the machine. More only oversubscribes the cores
    (NEURALSCALE_THREADS=3000 made libgomp fail to create them and the run die)."""
    return 4 * (os.cpu_count() or 1)


def _mode() -> str:
    """'auto' (the governor), 'torch' (leave it to torch), or a fixed count as text (at most most_threads())."""
    value = os.environ.get(ENV, "auto").strip().lower() or "auto"
    if value in ("auto", "torch"):
        return value
    if value.isascii() and value.isdigit() and int(value) >= 1:
        return str(min(int(value), most_threads()))
    return "auto"  # a malformed value is not worth failing a run for: said once in describe()


def wait_policy() -> str:
    """How idle OpenMP threads wait, in words: the user's settings, or libgomp's default."""
    mine = [f"{v}={os.environ[v]}" for v in _WAIT_VARS if v in os.environ]
    return f"the user's ({', '.join(mine)})" if mine else "libgomp's default (spin briefly, then sleep)"


def allowed_cpus() -> int:
    """The CPUs this process may use: its affinity, within its cgroup's CPU quota where one is set."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    try:
        quota, period = open("/sys/fs/cgroup/cpu.max").read().split()[:2]
        if quota != "max":
            n = min(n, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, n)


def set_limit(threads: int | None) -> None:
    """A sweep worker's share of the cores (executors): the most threads its runs use."""
    if threads:
        import torch
        _state["limit"] = _state["set"] = _state["share"] = int(threads)
        torch.set_num_threads(int(threads))


def settle() -> None:
    """Torch's CPU threads set now to the count a trainer starts at (the user's fixed count, or the quota's), as
    it sets them: what is measured before any training (a latency table opened for a descent) is measured, and
    recorded, at the count the descent's training then keeps."""
    Governor(follow=False)


def fixed_by_user() -> int | None:
    """The thread count the user fixed (NEURALSCALE_THREADS=N or OMP_NUM_THREADS), else None."""
    mode = _mode()
    if mode.isdigit():
        return int(mode)
    value = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    return int(value) if value.isascii() and value.isdigit() and int(value) >= 1 else None


def _machine_busy() -> tuple[float, int] | None:
    """(seconds of CPU time spent busy on the CPUs this process may run on, how many they are), from
    /proc/stat's per-CPU lines; None where it cannot be read (not Linux)."""
    try:
        mine = os.sched_getaffinity(0)
        with open("/proc/stat") as f:
            lines = [line.split() for line in f.read().splitlines() if line.startswith("cpu") and line[3:4].isdigit()]
        per_cpu = {int(p[0][3:]): [int(x) for x in p[1:]] for p in lines}
    except (AttributeError, OSError, ValueError, IndexError):
        return None
    ours = [fields for cpu, fields in per_cpu.items() if cpu in mine]
    if not ours:
        return None
    # user, nice, system, irq, softirq (guest time is within user; idle, iowait and steal are nobody's work here)
    busy = sum(fields[i] for fields in ours for i in (0, 1, 2, 5, 6) if i < len(fields))
    return busy / os.sysconf("SC_CLK_TCK"), len(ours)


def _now() -> float:  # the governor's clock (a test moves it)
    return time.monotonic()


def _own_cpu() -> float:
    t = os.times()
    return t.user + t.system


def choose(threads: int, limit: int, cpus: int, others: float) -> int:
    """The thread count for the cores that processes other than this one leave free (`others`: how many cores'
    worth of CPU they used lately, of the machine's `cpus`), from `threads` now, between 1 and `limit`.

    Fewer once they take half a core or more of ours (a parallel step waits for its slowest thread, so a
    thread on a shared core slows all of them); more only once a whole core and a quarter is free beyond
    ours, so that a load near a boundary does not make the count flap."""
    free = cpus - others
    if free <= threads - 0.5 and threads > 1:
        return max(1, min(limit, math.ceil(free - 0.5)))
    if free >= threads + 0.75 and threads < limit:
        return max(1, min(limit, math.floor(free + 0.25)))
    return threads


class Governor:
    """Keeps torch's CPU threads at the cores other processes leave free (see the module docstring)."""

    def __init__(self, every_s: float = 2.0, follow: bool = True):
        import torch
        self.every_s = every_s
        self.fixed = fixed_by_user()
        if _mode().isdigit():
            _state["limit"] = self.fixed
        elif _state["limit"] is None or torch.get_num_threads() != _state["set"]:
            # torch's own choice, or the program's torch.set_num_threads since, within the quota
            _state["limit"] = min(torch.get_num_threads(), allowed_cpus())
        self.limit = _state["limit"]
        self.follow = follow
        self.active = follow and _mode() == "auto" and self.fixed is None and _machine_busy() is not None
        if _mode() != "torch" and torch.get_num_threads() != self.limit:
            torch.set_num_threads(self.limit)
        self._set = _state["set"] = torch.get_num_threads()
        self._sample = self._take()
        self.others = 0.0  # cores other processes kept busy at the last measurement
        self.changes = 0

    def _take(self) -> tuple[float, float, float, int] | None:
        busy = _machine_busy()
        return None if busy is None else (_now(), busy[0], _own_cpu(), busy[1])

    def tick(self) -> None:
        """Cheap between measurements; call it once per training step."""
        if not self.active or self._sample is None or _now() - self._sample[0] < self.every_s:
            return
        import torch
        if torch.get_num_threads() != self._set:  # the user set the threads themselves: theirs from now on
            self.active = False
            log.info(f"threads: {torch.get_num_threads()} (set by the program; no longer following the load)")
            return
        now = self._take()
        wall = now[0] - self._sample[0]
        self.others = max(0.0, (now[1] - self._sample[1]) - (now[2] - self._sample[2])) / wall
        self._sample = now
        want = choose(self._set, self.limit, now[3], self.others)
        if want == self._set:
            return
        torch.set_num_threads(want)
        self._set = _state["set"] = want
        self.changes += 1
        log.info(f"threads: {want} of {self.limit} (other processes keep {self.others:.1f} of {now[3]} CPUs busy)")

    def restore(self) -> None:
        """Back to the limit (after training: latency is measured at a fixed thread count)."""
        if self.active and self._set != self.limit:
            import torch
            torch.set_num_threads(self.limit)
            self._set = _state["set"] = self.limit

    def describe(self) -> str:
        """The choice in words, for the run's log."""
        import torch
        how = ("following the load (fewer while other processes keep cores busy)" if self.active
               else "fixed by NEURALSCALE_THREADS" if _mode().isdigit()
               else "fixed (a descent keeps one count: its arithmetic, and so its law, repeats on this machine)"
               if not self.follow
               else "fixed by OMP_NUM_THREADS" if self.fixed is not None
               else "as torch chose (NEURALSCALE_THREADS=torch)" if _mode() == "torch"
               else "fixed (the load cannot be read here)")
        share = _state["share"]
        if share and self.fixed is None and _mode() == "auto":  # the cap is the worker's share, not the machine's
            how += f", at most {share} (this sweep worker's share of the cores)"
        given = os.environ.get(ENV, "auto").strip().lower()
        note = ""
        if given and given != "auto" and _mode() == "auto":
            note = f"; ignored {ENV}={given!r} (auto, torch or a count)"
        elif given.isascii() and given.isdigit() and int(given) > most_threads():
            note = f"; {ENV}={given} capped at {_mode()} (4 per CPU)"
        return (f"threads: {torch.get_num_threads()} of {allowed_cpus()} CPUs, {how}; idle OpenMP threads wait: "
                f"{wait_policy()}{note}")
