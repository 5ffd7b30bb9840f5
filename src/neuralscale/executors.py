"""Executors: where a sweep's runs execute.

Every executor calls the same run function (`runs.execute_in_store`) against
the same run store, so records are the same whichever runs them:

- `sequential`: one run after another, in this process (the default);
- `local`: N long-lived worker processes on this machine, each pinned to a
  device (CPU threads divided between them; several runs per GPU);
- `ray`: each run a Ray task (a fractional GPU share, some CPUs) on a Ray
  cluster, local or remote, writing to a run store every node can reach.
  Ray is an optional extra (`pip install 'neuralscale[ray]'`), imported only
  when this executor is chosen.

A run that raises or diverges is recorded as failed by the run function
itself; the parallel executors share one scheduler (`_Pool`) that starts a
run when the run it depends on has finished, notices workers that die
without a final record and retries their run from its checkpoint a bounded
number of times.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
from multiprocessing.connection import wait
import logging
import math
import os
import signal
import sys
from pathlib import Path
from typing import Callable, Sequence

from .collector import own_process
from .command import optional_import, terminate
from .errors import EnvironmentFailure, NeuralscaleError, first_line
from .runs import execute_in_store, failed_record
from .spec import RunSpec
from .store import RunStore
from .logs import configure as configure_logging
from .threads import most_threads, set_limit
from .train import resolve_device

log = logging.getLogger(__name__)

EXECUTORS = ("sequential", "local", "ray")
PRELOAD = "_neuralscale_forkserver"  # src/_neuralscale_forkserver.py: what the workers' fork server imports


def _set_threads(threads: int | None) -> None:
    set_limit(threads)  # this process's share of the cores: its runs' trainers use at most so many threads


class Sequential:
    """One run after another, in this process."""

    name = "sequential"

    def __init__(self, threads: int | None = None):
        self.threads = threads

    def run(self, specs: Sequence[RunSpec], out_dir: str | Path, *, on_done: Callable | None = None,
            progress: bool = True) -> None:
        _set_threads(self.threads)
        store = RunStore(out_dir)
        for i, spec in enumerate(specs, 1):
            record = execute_in_store(spec, store, progress=progress)
            if on_done:
                on_done(i, spec, record)


class _Pool:
    """The scheduler the parallel executors share.

    A subclass says how to start a run (`_start`, returning a handle) and
    which started runs have ended (`_ended`, returning {run id: exit note});
    the pool does the rest: order (a pruning baseline waits for its pretrained
    run), slots, retries of runs whose worker died, and the callbacks.
    """

    slots: int = 1
    retries: int = 2

    def _open(self, out: Path) -> None:  # before the first run
        pass

    def _close(self, abort: bool = False) -> None:  # after the last run; `abort`: stop the runs in progress
        pass

    def _start(self, spec: RunSpec, slot: int, out: Path):  # pragma: no cover - abstract
        raise NotImplementedError

    def _ended(self, running: dict) -> dict[str, str]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _where(self, slot: int) -> str:
        return ""

    def run(self, specs: Sequence[RunSpec], out_dir: str | Path, *, on_done: Callable | None = None,
            progress: bool = True) -> None:
        self._store, self._on_done, self._done = RunStore(out_dir), on_done, 0
        self._pending, self._ids = list(specs), {s.id for s in specs}
        self._running: dict[str, tuple] = {}  # id -> (handle, spec, slot)
        self._deaths: dict[str, int] = {}
        self._free = list(range(self.slots))
        self._open(self._store.root)
        try:
            while self._pending or self._running:
                self._start_ready()
                for rid, note in self._ended(self._running).items():
                    self._collect(rid, note)
        except BaseException:  # Ctrl-C, SIGTERM, an error: the runs in progress stop now, resumable
            self._close(abort=True)
            raise
        self._close()

    def _finish(self, s: RunSpec, rec: dict) -> None:
        self._done += 1
        if self._on_done:
            self._on_done(self._done, s, rec)

    def _ready(self, s: RunSpec) -> bool | None:
        """True: can start; False: wait for the run it prunes; None: that run failed."""
        if s.pretrained is None or s.pretrained not in self._ids:
            return True
        r = self._store.read(s.pretrained)
        if r is not None and r["status"] == "finished":
            return True
        if r is not None and r["status"] == "failed" and s.pretrained not in [x.id for x in self._pending] \
                and s.pretrained not in self._running:
            return None
        return False

    def _start_ready(self) -> None:
        """Start every pending run whose dependency allows it, while slots are free."""
        for s in list(self._pending):
            if not self._free:
                break
            state = self._ready(s)
            if state is None:  # its pretrained run failed: record why, without running
                self._pending.remove(s)
                rec = failed_record(s, f"the run to prune ({s.pretrained}) failed")
                self._store.write(s.id, rec)
                self._finish(s, rec)
                continue
            if not state:
                continue
            self._pending.remove(s)
            slot = self._free.pop(0)
            self._store.run_dir(s.id).path.mkdir(parents=True, exist_ok=True)
            self._running[s.id] = (self._start(s, slot, self._store.root), s, slot)
            log.info("%s %d: started %s seed %d (%s)%s", self.name, slot, s.label, s.seed, s.id, self._where(slot))

    def _collect(self, rid: str, note: str) -> None:
        """A run's worker has ended: its record says how, or the worker died and the run is retried."""
        _, s, slot = self._running.pop(rid)
        self._free.append(slot)
        rec = self._store.read(rid)
        if rec is not None and rec["status"] in ("finished", "failed"):
            self._finish(s, rec)
            return
        self._deaths[rid] = self._deaths.get(rid, 0) + 1  # the worker died without a final record
        if self._deaths[rid] <= self.retries:
            log.warning("%s %d: worker died (%s) in %s; retrying from its checkpoint (%d/%d)", self.name, slot,
                        note, rid, self._deaths[rid], self.retries)
            self._pending.insert(0, s)
        else:
            rec = failed_record(s, f"worker died {self._deaths[rid]} times ({note})", rec)
            self._store.write(rid, rec)
            self._finish(s, rec)


def _redirect(log_path: str):
    """Point this process's stdout and stderr at `log_path`; returns what restores them."""
    import sys
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)

    def restore() -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])
    return restore


def _exit_with_driver(alive) -> None:
    """A worker whose driver died stops at once, so that a restarted sweep never shares a run with it. `alive`
    is the reading end of a pipe whose only writing end the driver holds and never writes to: it reads end of
    file once the driver is gone (killed, or a zombie its own parent has not reaped), whoever the worker's parent
    is (the driver, or the fork server, which outlives the driver while any worker it forked lives)."""
    import threading

    def watch() -> None:
        try:
            alive.recv_bytes()
        except (EOFError, OSError):
            pass
        os._exit(1)
    threading.Thread(target=watch, daemon=True).start()


def _worker_context():
    """On Linux, local workers are forked from a server process that has imported torch once (per driver), not
    started as new interpreters: each new interpreter spent seconds of CPU importing it (issue 31). The server
    is a new interpreter of its own, started with the first worker, that runs no kernel and starts no thread,
    so a fork of it is as clean as a new interpreter. A worker takes the driver's working directory, sys.path
    and main module as spawn gives them, and the driver's environment as of its own start (`_worker`); what is
    fixed when a library loads (OMP_WAIT_POLICY, GOMP_SPINCOUNT, TORCH_LOGS) and the process's limits are the
    driver's as of the server's start. neuralscale itself is not preloaded: each worker imports it from the
    driver's sys.path (a few tenths of a second). Elsewhere (macOS, Windows), spawn."""
    if not sys.platform.startswith("linux") or "forkserver" not in mp.get_all_start_methods():
        return mp.get_context("spawn")
    ctx = mp.get_context("forkserver")
    # torch alone: the trainer's optimizer (sgd.py) needs neither torch._dynamo nor torchvision, each a second
    # or more to import; a worker that builds a torchvision model imports it itself. Imported by a module outside
    # the package that keeps Ctrl-C off the server while it loads (a traceback under the driver's one line); torch
    # named too, for a server that cannot import that module (a driver whose path was set inside its process: the
    # server's is a new interpreter's, and it passes over a module it cannot import without a word)
    ctx.set_forkserver_preload([PRELOAD, "torch"])
    return ctx


def _run_logged(spec: dict, out_dir: str, log_path: str, device: str | None, setup: Callable | None = None):
    """A worker's run (`setup` first), its output in the run's log; what it replies to the driver (`_reply`): the
    run's id once its record is written (finished or failed), or (kind, message) where the run was refused before
    it started (an unreadable checkpoint, a log or lock it cannot write: the command stops with the message, as
    it does running in its own process) or the machine failed (a full disk, say: not the run's fault). Either
    leaves the run's record as it was, resumable; a worker that died instead was retried, then recorded failed."""
    try:
        restore = _redirect(log_path)
    except OSError as e:
        return "refused", f"cannot write {log_path}: {e.strerror or e}"
    try:
        if setup is not None:
            setup()
        s = RunSpec.from_dict(spec)
        if device:
            s.config = {**s.config, "device": device}  # the device is not part of a run's identity
        execute_in_store(s, RunStore(out_dir), progress=True)
        return s.id
    except EnvironmentFailure as e:
        return "environment", str(e)
    except NeuralscaleError as e:
        return "refused", str(e)
    finally:
        restore()


def _reply(reply) -> None:
    """A worker's reply (`_run_logged`): a run that was refused or met a machine's failure stops the command with
    its message."""
    if isinstance(reply, tuple) and reply[0] == "environment":
        raise EnvironmentFailure(reply[1])
    if isinstance(reply, tuple) and reply[0] == "refused":
        raise NeuralscaleError(reply[1])


def _worker(conn, device: str | None, threads: int | None, environ: dict | None = None, alive=None) -> None:
    """A local worker process: runs what the driver sends, one at a time, each run's output in its log.
    Ctrl-C reaches the whole process group; the driver alone answers it (and stops its workers), so that the
    terminal shows one line, not a traceback per worker. `environ`: the driver's environment as the worker
    started (a worker forked from the fork server would otherwise have the server's, from its own start).
    `alive`: see _exit_with_driver."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # stopped by its driver (Ctrl-C, SIGTERM): unwound quietly, so that a write in progress removes its temporary
    # file (records._atomic) and the run's record stays as it was, resumable
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(143))
    own_process()  # torch and neuralscale, imported, out of the collector's way (collector.py)
    if environ is not None:
        os.environ.clear()
        os.environ.update(environ)
    if alive is not None:
        _exit_with_driver(alive)
    _set_threads(threads)
    configure_logging()  # to stderr, which each run points at its own log.txt
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):  # the driver is gone
            return
        if msg is None:
            return
        spec, out_dir, log_path = msg
        reply = _run_logged(spec, out_dir, log_path, device)
        try:
            conn.send(reply)
        except (BrokenPipeError, EOFError, OSError):  # the driver stopped (Ctrl-C) as this run ended: its record
            return                                    # is on disk, and the driver's one line says the rest


class Local(_Pool):
    """N long-lived worker processes on this machine, one run each at a time.

    A worker is started once and runs one run after another, so a run does not
    pay for a new process, the imports and (on a GPU) a new CUDA context.  A
    worker that dies is replaced by a fresh one.
    """

    name = "worker"

    def __init__(self, workers: int = 2, devices: Sequence[str] | None = None, threads: int | None = None,
                 retries: int = 2, poll: float = 0.05):
        if workers < 1:
            raise NeuralscaleError(f"workers must be at least 1, got {workers}")
        for d in devices or ():
            resolve_device(d)  # a device this machine lacks stops the sweep before any run starts
        self.slots = workers
        self.devices = list(devices) if devices else [None]
        self.threads = threads or max(1, (os.cpu_count() or 1) // workers)
        self.retries = retries
        self.poll = poll
        self._ctx = _worker_context()
        self._procs: dict[int, tuple] = {}  # slot -> (process, connection, the writing end of its liveness pipe)

    def _device(self, slot: int) -> str | None:
        return self.devices[slot % len(self.devices)]

    def _where(self, slot: int) -> str:
        device = self._device(slot)
        return f" on {device}" if device else ""

    def _start(self, spec: RunSpec, slot: int, out: Path):
        proc = self._procs.get(slot)
        if proc is None or not proc[0].is_alive():
            here, there = self._ctx.Pipe()
            alive_r, alive_w = self._ctx.Pipe(duplex=False)  # this process holds the only writing end
            p = self._ctx.Process(target=_worker, daemon=False,
                                  args=(there, self._device(slot), self.threads, dict(os.environ), alive_r))
            p.start()
            there.close()
            alive_r.close()
            proc = self._procs[slot] = (p, here, alive_w)
        proc[1].send((spec.to_dict(), str(out), str(RunStore(out).run_dir(spec.id).log)))
        return slot

    def _ended(self, running: dict) -> dict[str, str]:
        conns = {self._procs[slot][1]: rid for rid, (slot, _, _) in running.items()}
        sentinels = {self._procs[slot][0].sentinel: rid for rid, (slot, _, _) in running.items()}
        if not conns:
            return {}
        wait([*conns, *sentinels], timeout=self.poll)
        ended = {}
        for rid, (slot, _, _) in running.items():
            p, conn, _ = self._procs[slot]
            try:
                if conn.poll():
                    _reply(conn.recv())  # (a refusal stops the pool: the run's record stays unfinished)
                    ended[rid] = "finished"
                    continue
            except (EOFError, OSError):
                pass
            if not p.is_alive():
                p.join()
                ended[rid] = f"exit code {p.exitcode}"
                self._procs.pop(slot)[2].close()
        return ended

    def _close(self, abort: bool = False) -> None:
        if abort:  # a worker's run stops where it is (its checkpoint and unfinished record resume it)
            for p, conn, _ in self._procs.values():
                if p.is_alive():
                    p.terminate()
        for p, conn, _ in self._procs.values():
            try:
                conn.send(None)
            except (BrokenPipeError, OSError):
                pass
        for p, conn, alive in self._procs.values():
            p.join(timeout=10)
            if p.is_alive():
                p.terminate()
                p.join(timeout=10)
            if p.is_alive():  # a worker stuck where SIGTERM cannot end it (in the kernel, or a native call)
                p.kill()
                p.join(timeout=10)
            conn.close()
            alive.close()
        self._procs.clear()


def _check_reachable(address: str | None, timeout: float = 5.0) -> None:
    """Fail in seconds, not minutes (Ray retries for long), when a cluster's host:port does not answer."""
    import socket
    if not address or address == "auto":
        return
    hostport = address.split("://", 1)[-1]
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise NeuralscaleError(f"--address {address!r} is not HOST:PORT (or ray://HOST:PORT, or auto)")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as e:
        raise NeuralscaleError(f"cannot reach the Ray cluster at {address}: {e.strerror or e}") from None


def _ray_task(spec: dict, out_dir: str, threads: int | None, log_path: str):
    """One run as a Ray task: its output in the run's log file, on the GPU share Ray gave it; its reply as a
    local worker's (`_run_logged`)."""
    import ray
    device = "cuda" if ray.get_gpu_ids() else None  # Ray set CUDA_VISIBLE_DEVICES to this task's GPU
    return _run_logged(spec, out_dir, log_path, device, setup=lambda: (configure_logging(), _set_threads(threads)))


@contextlib.contextmanager
def _workers_at_our_priority(address: str | None):
    """Where this sweep starts its own Ray instance (no address, none in RAY_ADDRESS), its workers train at this
    process's priority, as local workers do: Ray's default adds 15 to the niceness they inherit from this
    process, so that beside any other CPU-bound process (another sweep, a user's build) a run got a few percent
    of a core and crawled. A cluster started elsewhere keeps its own setting (also one that `ray.init` finds
    already running on this machine), as does a user's own RAY_worker_niceness."""
    ours = address is None and not os.environ.get("RAY_ADDRESS") and "RAY_worker_niceness" not in os.environ
    if ours:
        os.environ["RAY_worker_niceness"] = "0"  # added by each worker to what it inherits: the driver's own
    try:
        yield
    finally:
        if ours:
            os.environ.pop("RAY_worker_niceness", None)


@contextlib.contextmanager
def _our_sigterm():
    """ray.init puts its own SIGTERM handler (sys.exit(15)) in place of the command's, and the sweep ended silently
    with exit 15: the command's goes back after it (a KeyboardInterrupt kind, which Ray's native waits pass on as
    their own KeyboardInterrupt; command.terminated tells the command it was SIGTERM), and SIGTERM during ray.init
    stops the command as it does elsewhere."""
    import threading
    here = threading.current_thread() is threading.main_thread()
    ours = signal.getsignal(signal.SIGTERM) if here else None
    try:
        yield
    except SystemExit as e:
        if ours is terminate and e.code == signal.SIGTERM:
            terminate(signal.SIGTERM, None)
        raise
    finally:  # (not where the command's handler has raised: it ignores SIGTERM while the command stops)
        if ours is terminate and signal.getsignal(signal.SIGTERM) is not signal.SIG_IGN:
            signal.signal(signal.SIGTERM, ours)


class Ray(_Pool):
    """Each run a Ray task on a Ray cluster (`address`), or on one started here for the sweep."""

    name = "ray task"

    def __init__(self, address: str | None = None, gpus_per_run: float = 0.0, cpus_per_run: float = 1.0,
                 threads: int | None = None, retries: int = 2, max_concurrent: int | None = None):
        if optional_import("ray") is None:
            raise NeuralscaleError("the ray executor needs Ray: pip install 'neuralscale[ray]'")
        if not (math.isfinite(gpus_per_run) and math.isfinite(cpus_per_run)) or gpus_per_run < 0 or cpus_per_run <= 0:
            raise NeuralscaleError(f"a run needs a positive CPU share and a GPU share of at least 0 "
                                   f"(got --cpus-per-run {cpus_per_run}, --gpus-per-run {gpus_per_run})")
        self.address = address
        self.gpus_per_run = gpus_per_run
        self.cpus_per_run = cpus_per_run
        self.threads = threads or max(1, int(cpus_per_run))
        self.retries = retries
        self.slots = max_concurrent or 10_000  # Ray queues tasks by their resources
        self._started_here = False
        self._remote = None

    def _open(self, out: Path) -> None:
        import ray
        if not ray.is_initialized():
            _check_reachable(self.address)
            try:
                with _workers_at_our_priority(self.address), _our_sigterm():
                    ray.init(address=self.address, include_dashboard=False, log_to_driver=False,
                             configure_logging=False, logging_level="error")
            except ConnectionError as e:
                raise NeuralscaleError(f"cannot reach the Ray cluster at {self.address}: "
                                       f"{first_line(e, None, type(e).__name__)} (a cluster with token "
                                       f"authentication needs RAY_AUTH_MODE=token and its token in RAY_AUTH_TOKEN or "
                                       f"~/.ray/auth_token)") from None
            self._started_here = True
        res = ray.cluster_resources()
        if self.gpus_per_run > 0 and res.get("GPU", 0) == 0:
            self._close()
            raise NeuralscaleError("--gpus-per-run asks for GPUs but the Ray cluster has none")
        largest = max((n.get("Resources", {}).get("CPU", 0) for n in ray.nodes() if n.get("Alive")), default=0)
        if 0 < largest < self.cpus_per_run:  # no node can run one: the sweep would wait for ever (a cluster of
            self._close()  # nodes without CPUs yet, an autoscaler's head, may still get some: not refused)
            raise NeuralscaleError(f"--cpus-per-run {self.cpus_per_run:g} is more than any node of the Ray cluster "
                                   f"has (the largest: {largest:g} CPUs); a run would wait for ever")
        log.info(f"ray: {res.get('CPU', 0):g} CPUs, {res.get('GPU', 0):g} GPUs; each run {self.cpus_per_run:g} CPU"
            + (f" and {self.gpus_per_run:g} GPU" if self.gpus_per_run else ""))
        self._remote = ray.remote(_ray_task).options(num_cpus=self.cpus_per_run, num_gpus=self.gpus_per_run,
                                                     max_retries=0)  # retried by the pool, from the checkpoint

    def _close(self, abort: bool = False) -> None:
        import ray
        if self._started_here and ray.is_initialized():
            ray.shutdown()
        self._started_here = False

    def _start(self, spec: RunSpec, slot: int, out: Path):
        return self._remote.remote(spec.to_dict(), str(out.resolve()), self.threads,
                                   str(RunStore(out).run_dir(spec.id).log.resolve()))

    def _ended(self, running: dict) -> dict[str, str]:
        import ray
        refs = {h: rid for rid, (h, _, _) in running.items()}
        if not refs:
            return {}
        ready, _ = ray.wait(list(refs), num_returns=1, timeout=1.0)
        if ready:  # take every other one that has ended too
            ready, _ = ray.wait(list(refs), num_returns=len(refs), timeout=0)
        ended = {}
        for ref in ready:
            try:
                reply = ray.get(ref)
            except Exception as e:  # the worker died (or the task could not run): the pool decides
                ended[refs[ref]] = f"{type(e).__name__}: {first_line(e, None, '')}"[:300]
                continue
            _reply(reply)
            ended[refs[ref]] = "finished"
        return ended


def check_counts(options: dict) -> None:
    """An executor's counts (workers, threads, retries) are whole numbers in range, whatever the executor."""
    for key in ("workers", "threads", "retries"):
        v = options.get(key)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < (0 if key == "retries" else 1)):
            raise NeuralscaleError(f"{key} must be an integer of at least {0 if key == 'retries' else 1}, got {v!r}")


def get_executor(name: str | None = None, **options):
    """An executor by name; options that are given must make sense (nothing is silently replaced). Without a
    name: local workers where workers or devices are given (what they ask for), else one run after another."""
    if name is None:
        name = "local" if options.get("workers") is not None or options.get("devices") else "sequential"
    check_counts(options)
    ray_only = [k for k in ("address", "gpus_per_run", "cpus_per_run") if options.get(k) is not None]
    if name != "ray" and ray_only:  # nothing is silently ignored either
        flags = ", ".join("--" + k.replace("_", "-") for k in ray_only)
        raise NeuralscaleError(f"{flags} place runs on a Ray cluster (--executor ray); the {name} executor runs "
                               "them on this machine")
    if name != "ray":  # on this machine (a Ray cluster's nodes may be larger): more only oversubscribes its cores
        for key in ("workers", "threads"):
            if (options.get(key) or 0) > most_threads():
                raise NeuralscaleError(f"{key} must be at most {most_threads()} on this machine (4 per CPU), "
                                       f"got {options[key]}")
    if name == "sequential":
        if options.get("workers") is not None or options.get("devices"):
            raise NeuralscaleError("the sequential executor runs one run at a time, in this process: workers and "
                                   "devices are for local workers (or leave the executor's name out)")
        return Sequential(threads=options.get("threads"))
    if name == "local":
        return Local(workers=options.get("workers") or 2, devices=options.get("devices"),
                     threads=options.get("threads"), retries=options.get("retries", 2))
    if name == "ray":
        cpus = options.get("cpus_per_run")  # 0 is refused by Ray(), not read as the default
        return Ray(address=options.get("address"), gpus_per_run=options.get("gpus_per_run") or 0.0,
                   cpus_per_run=1.0 if cpus is None else cpus, threads=options.get("threads"),
                   retries=options.get("retries", 2), max_concurrent=options.get("workers"))
    raise NeuralscaleError(f"unknown executor {name!r}; choose one of: {', '.join(EXECUTORS)}")
