"""Executors: where a sweep's runs execute.

Every executor calls the same run function (`sweep.execute_in_store`) against
the same run store, so records are the same whichever runs them:

- `sequential`: one run after another, in this process (the default);
- `local`: N worker processes on this machine, each pinned to a device (CPU
  threads divided between them; several runs per GPU), a dead worker's run
  retried from its checkpoint a bounded number of times.

A run that raises or diverges is recorded as failed by the run function
itself; an executor only has to notice processes that die without a record.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from pathlib import Path
from typing import Callable, Sequence

from .errors import NeuralscaleError
from .records import atomic_write_json
from .runs import RECORD, RunSpec, failed_record, read_record

EXECUTORS = ("sequential", "local")


def _set_threads(threads: int | None) -> None:
    if threads:
        import torch
        torch.set_num_threads(threads)


class Sequential:
    """One run after another, in this process."""

    name = "sequential"

    def __init__(self, threads: int | None = None):
        self.threads = threads

    def run(self, specs: Sequence[RunSpec], out_dir: str | Path, *, on_done: Callable | None = None,
            progress: bool = True, log=None) -> None:
        from .sweep import execute_in_store
        _set_threads(self.threads)
        for i, spec in enumerate(specs, 1):
            record = execute_in_store(spec, out_dir, progress=progress, log=log)
            if on_done:
                on_done(i, spec, record)


def _child(spec: dict, out_dir: str, device: str | None, threads: int | None, log_path: str) -> None:
    """A worker process: one run, its output in the run's log file."""
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    _set_threads(threads)
    from .sweep import execute_in_store
    s = RunSpec.from_dict(spec)
    if device:
        s.config = {**s.config, "device": device}  # the device is not part of a run's identity
    execute_in_store(s, out_dir, progress=True)


class Local:
    """N worker processes on this machine, one run each at a time."""

    name = "local"

    def __init__(self, workers: int = 2, devices: Sequence[str] | None = None, threads: int | None = None,
                 retries: int = 2, poll: float = 0.2):
        if workers < 1:
            raise NeuralscaleError(f"workers must be at least 1, got {workers}")
        self.workers = workers
        self.devices = list(devices) if devices else [None]
        self.threads = threads or max(1, (os.cpu_count() or 1) // workers)
        self.retries = retries
        self.poll = poll

    def run(self, specs: Sequence[RunSpec], out_dir: str | Path, *, on_done: Callable | None = None,
            progress: bool = True, log=None) -> None:
        out = Path(out_dir)
        say = log or (lambda m: None)
        ctx = mp.get_context("spawn")
        pending = list(specs)
        running: dict[str, tuple] = {}  # id -> (process, spec, slot)
        deaths: dict[str, int] = {}
        free = list(range(self.workers))
        done = 0
        ids = {s.id for s in specs}

        def ready(s: RunSpec) -> bool | None:
            """True: can start; False: wait for the run it prunes; None: that run failed."""
            if s.pretrained is None or s.pretrained not in ids:
                return True
            r = read_record(out / "runs" / s.pretrained)
            if r is not None and r["status"] == "finished":
                return True
            if r is not None and r["status"] == "failed" and s.pretrained not in [x.id for x in pending] \
                    and s.pretrained not in running:
                return None
            return False

        while pending or running:
            for s in list(pending):
                if not free:
                    break
                state = ready(s)
                if state is None:  # its pretrained run failed: record why, without running
                    pending.remove(s)
                    rec = failed_record(s, f"the run to prune ({s.pretrained}) failed")
                    atomic_write_json(out / "runs" / s.id / RECORD, rec)
                    done += 1
                    if on_done:
                        on_done(done, s, rec)
                    continue
                if not state:
                    continue
                pending.remove(s)
                slot = free.pop(0)
                device = self.devices[slot % len(self.devices)]
                run_dir = out / "runs" / s.id
                run_dir.mkdir(parents=True, exist_ok=True)
                p = ctx.Process(target=_child, args=(s.to_dict(), str(out), device, self.threads,
                                                     str(run_dir / "log.txt")), daemon=False)
                p.start()
                running[s.id] = (p, s, slot)
                if progress:
                    say(f"worker {slot}: started {s.label} seed {s.seed} ({s.id})" + (f" on {device}" if device else ""))
            time.sleep(self.poll)
            for rid, (p, s, slot) in list(running.items()):
                if p.is_alive():
                    continue
                p.join()
                del running[rid]
                free.append(slot)
                rec = read_record(out / "runs" / rid)
                if rec is not None and rec["status"] in ("finished", "failed"):
                    done += 1
                    if on_done:
                        on_done(done, s, rec)
                    continue
                deaths[rid] = deaths.get(rid, 0) + 1  # the worker died without a final record
                if deaths[rid] <= self.retries:
                    say(f"worker {slot} died (exit {p.exitcode}) in {rid}; retrying from its checkpoint "
                        f"({deaths[rid]}/{self.retries})")
                    pending.insert(0, s)
                else:
                    rec = failed_record(s, f"worker died {deaths[rid]} times (last exit code {p.exitcode})", rec)
                    atomic_write_json(out / "runs" / rid / RECORD, rec)
                    done += 1
                    if on_done:
                        on_done(done, s, rec)


def get_executor(name: str, **options):
    if name == "sequential":
        return Sequential(threads=options.get("threads"))
    if name == "local":
        return Local(workers=options.get("workers") or 2, devices=options.get("devices"),
                     threads=options.get("threads"), retries=options.get("retries", 2))
    raise NeuralscaleError(f"unknown executor {name!r}; choose one of: {', '.join(EXECUTORS)}")
