"""Executors: the same records from every executor, and a killed worker's run retried from its checkpoint."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from helpers import Command, run_cli, run_python
from neuralscale.runs import RunSpec
from neuralscale.store import load_records, read_record


def every_epoch() -> dict:
    """This test's environment, with checkpoints after every epoch (not at most every 5 s): a kill finds one."""
    return {**os.environ, "NEURALSCALE_CHECKPOINT_SECONDS": "0"}


TINY = ["sweep", "--model", "vgg11", "--dataset", "synthetic", "--train-subset", "160", "--test-subset", "40",
        "--batch-size", "32", "--device", "cpu", "--lr", "0.05", "--momentum", "0.9", "--schedule", "cosine",
        "--methods", "uniform", "--seeds", "0", "--threads", "1"]


def _metrics(records):
    keys = ("train_loss", "train_acc", "val_acc", "test_acc")
    return {r["id"]: [[m[k] for k in keys] for m in r["history"]] for r in records}


SAME = [*TINY, "--ratios", "0.0625,0.125", "--epochs", "2"]  # the sweep every executor must record alike


@pytest.fixture(scope="module")
def sequential_store(tmp_path_factory) -> Path:
    """The store of SAME run one after another (the default executor, in the driver). Read it; do not change it."""
    root = tmp_path_factory.mktemp("sequential")
    seq = run_cli(*SAME, "--out", str(root / "seq"),
                  env={"NEURALSCALE_CACHE": str(root / "cache"), "NEURALSCALE_DATA": str(root / "data")})
    assert seq.returncode == 0, seq.stderr
    return root / "seq"


@pytest.fixture(scope="module")
def sequential(sequential_store):
    """Its records: what the local workers and Ray must give, bit for bit."""
    return load_records(sequential_store)


def test_local_workers_give_the_same_records_as_sequential(tmp_path, sequential, sequential_store):
    """`sweep --workers N` alone runs local workers, as an experiment's --workers does (it used to run one run at
    a time in the driver, saying nothing): a local worker's run writes its own log.txt, the driver's does not
    (`--executor local` itself: the tests of killed workers below)."""
    par = run_cli(*SAME, "--out", str(tmp_path / "par"), "--workers", "2")
    assert par.returncode == 0, par.stderr
    a, b = sequential, load_records(tmp_path / "par")
    assert len(a) == len(b) == 2 and all(r["status"] == "finished" for r in a + b)
    assert _metrics(a) == _metrics(b)  # same seeds, same numbers, bit for bit
    assert all((tmp_path / "par" / "runs" / r["id"] / "log.txt").exists() for r in b)
    driver = [sequential_store / "runs" / r["id"] for r in a]  # the runs the driver trained itself
    assert all(d.is_dir() for d in driver) and not any((d / "log.txt").exists() for d in driver)


# many short epochs: a run outlasts its first checkpoint (its first epoch's; then one every few seconds, not every
# epoch, whose fsyncs would be most of the test's time) by 39 epochs, however fast or loaded the host (5 epochs,
# each checkpointed, left about 0.2 s on a fast host to a poll every 50 ms)
KILLED_EPOCHS = 40
KILL_MID_RUN = ["--train-subset", "32", "--ratios", "0.0625,0.125", "--epochs", str(KILLED_EPOCHS)]


def test_a_killed_worker_is_retried_from_its_checkpoint(tmp_path):
    out = tmp_path / "sweep"
    args = [*TINY, *KILL_MID_RUN, "--executor", "local", "--workers", "2", "--out", str(out)]
    # a fork of the tests' zygote (torch imported once): a real driver process, in a process group of its own (its
    # fork server and workers too), held still (SIGSTOP) from the first checkpoint seen while a victim is chosen
    proc = Command(args, new_session=True)
    victim, deadline = None, time.time() + 240
    while time.time() < deadline and victim is None and proc.poll() is None:
        if list(out.glob("runs/*/checkpoint.pt")):
            os.killpg(proc.pid, signal.SIGSTOP)
            try:
                victim = _kill_mid_run(out, spare=proc.pid)  # the worker whose log is the victim's (forked by the
            finally:                                         # driver's fork server)
                os.killpg(proc.pid, signal.SIGCONT)
        time.sleep(0.01)
    assert victim is not None, "no worker was caught mid-run before the sweep ended"
    _finishes_after_the_kill(proc, out, victim, "worker died (exit code -9)")  # the kill named


def _kill_mid_run(out: Path, spare: int) -> str | None:
    """SIGKILL a process training a run of the store `out` that has a checkpoint and is still running (not `spare`,
    the driver); the run's id, or None. The process is held still (SIGSTOP) and the run's record read again
    before the kill, so that the kill lands mid-run however fast this host ends a run (a process whose run ended
    in between is let go on)."""
    for ckpt in out.glob("runs/*/checkpoint.pt"):
        if (read_record(ckpt.parent) or {}).get("status") != "running":
            continue
        for pid in _holders(str(ckpt.parent / "log.txt")):
            if pid == spare:
                continue
            try:
                os.kill(pid, signal.SIGSTOP)
            except ProcessLookupError:
                continue
            if (read_record(ckpt.parent) or {}).get("status") == "running":
                os.kill(pid, signal.SIGKILL)
                return ckpt.parent.name
            os.kill(pid, signal.SIGCONT)
    return None


def _descendants(pid: int) -> list[int]:
    """Every process below `pid`: a local sweep's workers are children of its fork server, not of the driver."""
    found, todo = [], [pid]
    while todo:
        kids = [int(c) for c in subprocess.run(["pgrep", "-P", str(todo.pop())], capture_output=True,
                                               text=True).stdout.split()]
        found += kids
        todo += kids
    return found


def _finishes_after_the_kill(proc, out, victim: str, died: str) -> None:
    """The sweep whose worker running `victim` was killed finishes every run once, the victim from its checkpoint."""
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    assert died in stderr and "retrying from its checkpoint" in stderr
    records = load_records(out)
    assert len(records) == 2 and all(r["status"] == "finished" for r in records)
    r = read_record(out / "runs" / victim)
    assert r["attempts"] == 2 and r["resumed"] is True
    assert [m["epoch"] for m in r["history"]] == list(range(1, KILLED_EPOCHS + 1))


# --- Ray: a real local cluster (this machine's CPUs), started by the tests ------------------------------
RAY_DEFAULT_PORTS = {6379, 8076, 8077, 8265, 10001, 52365}  # Ray's own components take these unless told


def free_port() -> int:
    """A free port for the head that none of Ray's other components takes by default (a random free port was
    once 52365, the dashboard agent's, and `ray start` refused it)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in RAY_DEFAULT_PORTS and not 10002 <= port <= 19999:  # 10002-19999: Ray's worker ports
            return port


@pytest.fixture(scope="module")
def ray_cluster():
    _need_ray()
    ray_bin = Path(sys.executable).parent / "ray"
    temp = tempfile.mkdtemp(prefix="nsray", dir="/tmp")  # short: Ray's socket paths must fit in 107 bytes
    port = free_port()
    # Token authentication, as Ray enables it by default: the head and every driver share one token
    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32), "RAY_USAGE_STATS_ENABLED": "0",
            # its workers at normal priority (Ray's default, 15, left the Ray tests crawling for minutes beside
            # any other CPU-bound process: docs/GUIDE.md says so for users' clusters)
            "RAY_worker_niceness": "0"}
    saved = {k: os.environ.get(k) for k in auth}
    os.environ.update(auth)  # the CLI subprocesses inherit it
    env = dict(os.environ)
    start = subprocess.run([str(ray_bin), "start", "--head", f"--port={port}", "--node-ip-address=127.0.0.1",
                            "--num-cpus=2", "--num-gpus=0", "--include-dashboard=false", f"--temp-dir={temp}",
                            "--disable-usage-stats"], capture_output=True, text=True, env=env, timeout=180)
    assert start.returncode == 0, start.stdout + start.stderr
    try:
        yield f"127.0.0.1:{port}"
    finally:
        _stop_cluster(temp)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _stop_cluster(temp: str) -> None:
    """End this cluster alone (`ray stop` would end every Ray cluster on the machine, another test process's
    too, and waits about 5 s): its processes name its temp folder; their children (workers, agents) follow."""
    found = subprocess.run(["pgrep", "-f", temp], capture_output=True, text=True).stdout.split()
    pids, todo = set(), [int(p) for p in found]
    while todo:
        pid = todo.pop()
        if pid in pids or pid == os.getpid():
            continue
        pids.add(pid)
        todo += [int(c) for c in subprocess.run(["pgrep", "-P", str(pid)], capture_output=True,
                                                text=True).stdout.split()]
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    shutil.rmtree(temp, ignore_errors=True)


def _need_ray() -> None:
    """Skip without Ray, without importing it here: Ray in the test process makes a later import of timm's
    safetensors crash (a segmentation fault seen on this machine); the tests drive Ray in subprocesses."""
    import importlib.util
    if importlib.util.find_spec("ray") is None:
        pytest.skip("ray is not installed")


RAY_HERE = r"""
import os, sys, ray
from neuralscale.executors import Ray
ex = Ray()
ex._open(sys.argv[1])  # no address: a Ray instance started for this sweep
try:
    assert "RAY_worker_niceness" not in os.environ  # set for the start only
    nice = ray.remote(lambda: os.nice(0)).options(num_cpus=1)
    print(os.nice(0), ray.get(nice.remote()))
finally:
    ex._close()
"""


def test_a_ray_instance_started_for_a_sweep_trains_at_the_drivers_priority(tmp_path):
    """Ray runs its workers at niceness 15 by default, where beside any other CPU-bound process a run got a few
    percent of a core (test_executors.py took minutes instead of a minute on a loaded machine). The instance a
    sweep starts for itself runs them at the driver's priority, as local workers run."""
    _need_ray()
    temp = tempfile.mkdtemp(prefix="nsray", dir="/tmp")  # short: Ray's socket paths must fit in 107 bytes
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env |= {"RAY_USAGE_STATS_ENABLED": "0", "RAY_TMPDIR": temp}
    try:  # the sweep itself niced by 5: its workers must be at its niceness, not 5 + 15 nor 5 + 5
        r = subprocess.run(["nice", "-n", "5", sys.executable, "-c", RAY_HERE, str(tmp_path)], capture_output=True,
                           text=True, env=env, timeout=300)
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    assert r.returncode == 0, r.stderr[-3000:]
    driver, worker = map(int, r.stdout.split()[-2:])
    assert driver == min(19, os.nice(0) + 5) and worker == driver, r.stdout


def test_ray_cluster_gives_the_same_records_as_sequential(tmp_path, sequential, ray_cluster):
    ray = run_cli(*SAME, "--out", str(tmp_path / "ray"), "--backend", "ray", "--address", ray_cluster)
    assert ray.returncode == 0, ray.stderr
    assert "ray: 2 CPUs, 0 GPUs" in ray.stderr
    a, b = sequential, load_records(tmp_path / "ray")
    assert len(a) == len(b) == 2 and all(r["status"] == "finished" for r in a + b)
    assert _metrics(a) == _metrics(b)  # same seeds, same numbers, bit for bit
    assert all("epoch 2" in (tmp_path / "ray" / "runs" / r["id"] / "log.txt").read_text() for r in b)
    again = run_cli(*SAME, "--out", str(tmp_path / "ray"), "--backend", "ray", "--address", ray_cluster)
    assert again.returncode == 0 and "2 already done, 0 to run" in again.stderr  # nothing redone
    # a run no node can hold waited for ever (an adversarial pass: over ten minutes, until Ctrl-C)
    big = run_cli(*SAME, "--out", str(tmp_path / "big"), "--backend", "ray", "--address", ray_cluster,
                  "--cpus-per-run", "1000", timeout=120)
    assert big.returncode == 2 and "--cpus-per-run 1000 is more than any node of the Ray cluster has (the " \
        "largest: 2 CPUs)" in big.stderr, big.stderr
    gpus = run_cli(*SAME, "--out", str(tmp_path / "gpus"), "--backend", "ray", "--address", ray_cluster,
                   "--gpus-per-run", "0.5", timeout=120)
    assert gpus.returncode == 2 and "--gpus-per-run asks for GPUs but the Ray cluster has none" in gpus.stderr, \
        gpus.stderr


def _holders(path_part: str) -> list[int]:
    """Processes with a file whose path contains `path_part` open (Ray workers are not our children)."""
    pids = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            if any(path_part in os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")):
                pids.append(int(pid))
        except (FileNotFoundError, ProcessLookupError, PermissionError, NotADirectoryError):
            pass
    return pids


def test_a_killed_ray_worker_is_retried_from_its_checkpoint(tmp_path, ray_cluster):
    out = tmp_path / "sweep"
    args = [*TINY, *KILL_MID_RUN, "--backend", "ray", "--address", ray_cluster, "--out", str(out)]
    proc = Command(args)  # a fork of the tests' zygote (torch imported once): a real driver process
    killed, deadline = None, time.time() + 240
    while time.time() < deadline and killed is None and proc.poll() is None:
        killed = _kill_mid_run(out, spare=proc.pid)  # Ray's worker: not a child of the driver
        time.sleep(0.05)
    assert killed is not None, "no Ray worker was caught mid-run"
    _finishes_after_the_kill(proc, out, killed, "worker died")


def _sigint_ignored(pid: int) -> bool:
    """Whether process `pid` ignores SIGINT (its SigIgn mask in /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigIgn:"):
            return bool(int(line.split()[1], 16) & (1 << (signal.SIGINT - 1)))
    return False


@pytest.mark.parametrize("sig, code, word", [(signal.SIGINT, 130, "interrupted"),
                                             (signal.SIGTERM, 143, "terminated (SIGTERM)")])
def test_ctrl_c_on_a_ray_sweep_is_one_line_and_a_rerun_finishes(tmp_path, ray_cluster, sig, code, word):
    """Ctrl-C (or SIGTERM) on a sweep whose runs train on a Ray cluster: the driver cancels them and says one line
    (no traceback from it or from Ray), the cluster stays up, and a rerun finishes every run (issue 32). SIGTERM
    ended it silently with exit 15: ray.init had put its own handler (sys.exit) in place of the command's; putting
    the command's back raised a SystemError where the signal landed inside Ray's native wait, which passes on only a
    KeyboardInterrupt (so the command's SIGTERM is a kind of one)."""
    out = tmp_path / "sweep"
    # many short epochs: a run outlasts the signal on the fastest host (its first epoch is checkpointed, then
    # one every few seconds: not every epoch, whose fsyncs would be most of the test's time); the signal follows
    # the first checkpoint within about 10 ms (looked for every 10 ms), and 39 epochs are left then
    args = [*TINY, "--train-subset", "32", "--ratios", "0.0625,0.125", "--epochs", "40", "--backend", "ray",
            "--address", ray_cluster, "--out", str(out), "--quiet"]
    # as a terminal starts it: its own process group, and SIGINT at Python's default, whatever this test process
    # inherited (a background job of a non-interactive shell starts with SIGINT ignored, and Python keeps an
    # inherited ignore: the command would then rightly ignore Ctrl-C, as it did twice when the suite ran so).
    # A fork of the tests' zygote (torch imported once), which sets both (tests/cli_zygote.py); checked below.
    proc = Command(args, new_session=True)
    deadline = time.time() + 240

    def under_way() -> list[str]:  # runs with a checkpoint, still training
        return [d.name for d in out.glob("runs/*") if (d / "checkpoint.pt").exists()
                and (read_record(d) or {}).get("status") == "running"]
    while time.time() < deadline and proc.poll() is None and not under_way():
        time.sleep(0.01)
    assert proc.poll() is None, "the sweep ended before a checkpoint"
    ignored = _sigint_ignored(proc.pid)  # a terminal's Ctrl-C reaches a command that does not ignore it
    if sig == signal.SIGINT:
        os.killpg(proc.pid, signal.SIGINT)  # the terminal's Ctrl-C: the driver's whole process group
    else:
        os.kill(proc.pid, signal.SIGTERM)  # a scheduler's or `kill`'s: the driver alone
    _, err = proc.communicate(timeout=120)
    lines = [x for x in err.splitlines() if x.strip()]
    assert not ignored and proc.returncode == code and "Traceback" not in err, (proc.returncode, ignored, err)
    assert len(lines) == 1 and lines[0].startswith(f"neuralscale: {word}") and "resume" in lines[0], err
    r = run_cli(*args, timeout=600)  # the rerun: a fork of the tests' zygote (no second import of torch)
    assert r.returncode == 0, r.stderr
    records = load_records(out)
    assert len(records) == 2 and all(x["status"] == "finished" for x in records)


def test_ray_bad_address_is_one_clear_line(tmp_path):
    _need_ray()
    # (a fork: Ray is not imported here); a CPU share of 0 was read as the default, 1 (a mutation audit)
    for share in (["--gpus-per-run", "nan"], ["--cpus-per-run", "inf"], ["--cpus-per-run", "0"]):
        r = run_cli(*TINY, "--ratios", "0.0625", "--epochs", "1", "--out", str(tmp_path / "x"), "--backend", "ray",
                    *share)
        assert r.returncode == 2 and "a run needs a positive CPU share" in r.stderr.strip().splitlines()[-1], share
    r = run_cli(*TINY, "--ratios", "0.0625", "--epochs", "1", "--out", str(tmp_path / "x"),
                "--backend", "ray", "--address", "127.0.0.1:1")
    assert r.returncode != 0
    assert r.stderr.strip().splitlines()[-1].startswith("neuralscale: error: cannot reach the Ray cluster")
    assert "Traceback" not in r.stderr


def test_killing_the_driver_stops_its_workers_and_a_rerun_resumes(tmp_path):
    out = tmp_path / "sweep"
    epochs = 10
    args = [*TINY, "--ratios", "0.0625,0.125", "--epochs", str(epochs), "--executor", "local", "--workers", "2",
            "--out", str(out)]
    # a fork of the tests' zygote (torch imported once): a real driver process, in a process group of its own (its
    # fork server and workers are in it too), so that one signal holds them all still
    proc = Command(args, every_epoch(), new_session=True)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None and not list(out.glob("runs/*/checkpoint.pt")):
        time.sleep(0.01)
    assert proc.poll() is None, "the sweep ended before a checkpoint"
    # Held still (SIGSTOP) from its first checkpoint while its workers are looked for, so that the kill lands
    # mid-run however fast this host ends a run; going again (SIGCONT) before the kill: the workers must notice
    # their driver's death themselves (a stopped group orphaned by it would get the kernel's SIGHUP instead)
    os.killpg(proc.pid, signal.SIGSTOP)
    try:
        workers = _descendants(proc.pid)  # its fork server and the workers forked from it
        assert workers, "the driver has no fork server or workers"
        assert set(_holders(str(out / "runs"))) & set(workers), "no worker found among the driver's descendants"
    finally:
        os.killpg(proc.pid, signal.SIGCONT)
    proc.kill()
    proc.wait()
    deadline = time.time() + 20  # orphaned workers notice within about a second
    while time.time() < deadline and any(os.path.exists(f"/proc/{p}") and
                                         open(f"/proc/{p}/stat").read().split()[2] != "Z" for p in workers):
        time.sleep(0.1)
    alive = [p for p in workers if os.path.exists(f"/proc/{p}") and open(f"/proc/{p}/stat").read().split()[2] != "Z"]
    assert not alive, f"workers outlived their driver: {alive}"
    interrupted = [d.name for d in out.glob("runs/*") if (d / "checkpoint.pt").exists()
                   and read_record(d)["status"] == "running"]
    assert interrupted, ("no run was interrupted mid-run",
                         [(d.name, (read_record(d) or {}).get("status"), sorted(x.name for x in d.iterdir()))
                          for d in out.glob("runs/*")])
    again = run_cli(*args)
    assert again.returncode == 0, again.stderr
    records = load_records(out)
    assert len(records) == 2 and all(r["status"] == "finished" for r in records)
    assert all(read_record(out / "runs" / i)["resumed"] for i in interrupted)
    assert all([m["epoch"] for m in r["history"]] == list(range(1, epochs + 1)) for r in records)


def test_a_worker_whose_driver_stopped_as_its_run_ended_exits_without_a_traceback(tmp_path):
    """Ctrl-C on a local sweep: the driver closes its end while a worker's run is ending; the worker's answer finds
    no reader. It exits quietly (its record is on disk): the terminal shows the driver's one line, not a
    worker's BrokenPipeError (issue 32). A real worker process, its driver's end closed before the answer.
    The worker is forked from a driver that has imported torch, as the local executor's fork server forks its
    workers on Linux (not spawned: a new interpreter would import torch again, seconds of CPU); the driver's end
    is closed before the fork, so that the worker holds no copy of it and its answer finds no reader."""
    code = (
        "import multiprocessing as mp, sys\n"
        "from neuralscale.executors import _worker\n"
        "from neuralscale.runs import RunSpec\n"
        "if __name__ == '__main__':\n"
        "    ctx = mp.get_context('fork')\n"
        "    here, there = ctx.Pipe()\n"
        "    spec = RunSpec(model='vgg11', dataset='synthetic', method='uniform', widths=[4] * 8, latency_batches=(),\n"
        "                   config={'epochs': 1, 'batch_size': 32, 'device': 'cpu'}, data={'train': 64, 'test': 16})\n"
        f"    out = {str(tmp_path / 'store')!r}\n"
        "    here.send((spec.to_dict(), out, out + '/log.txt'))\n"
        "    here.close()  # the driver stopped: nobody reads the answer\n"
        "    p = ctx.Process(target=_worker, args=(there, None, 1))\n"
        "    p.start()\n"
        "    there.close()\n"
        "    p.join(300)\n"
        "    print('exit', p.exitcode)\n")
    (tmp_path / "store").mkdir()
    r = run_python(code, timeout=600)  # a driver process of its own
    assert r.stdout.strip().splitlines()[-1] == "exit 0", (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr and "BrokenPipeError" not in r.stderr, r.stderr
    (record,) = load_records(tmp_path / "store")
    assert record["status"] == "finished"


def test_a_local_worker_sees_the_drivers_environment_as_it_starts(tmp_path, monkeypatch):
    """Workers are forked from a fork server started with the first of them; a worker started later, after the
    driver's environment changed, runs in the changed environment, as a new interpreter would (here: the thread
    count a user fixes with NEURALSCALE_THREADS, which the run's log states)."""
    from neuralscale.executors import Local
    from neuralscale.runs import RunSpec

    def spec(seed: int) -> RunSpec:
        return RunSpec(model="vgg11", dataset="synthetic", method="uniform", widths=[4] * 8, latency_batches=(),
                       config={"epochs": 1, "batch_size": 32, "device": "cpu", "seed": seed},
                       data={"train": 64, "test": 16})
    monkeypatch.delenv("NEURALSCALE_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    Local(workers=1, threads=1).run([spec(0)], tmp_path / "a", progress=False)  # starts the fork server
    monkeypatch.setenv("NEURALSCALE_THREADS", "1")
    Local(workers=1, threads=1).run([spec(1)], tmp_path / "b", progress=False)
    (a,), (b,) = (list((tmp_path / s / "runs").glob("*/log.txt")) for s in ("a", "b"))
    assert "fixed by NEURALSCALE_THREADS" not in a.read_text()
    assert "fixed by NEURALSCALE_THREADS" in b.read_text(), b.read_text()


# --- the scheduler the parallel executors share (_Pool), driven in this process --------------------------------
def _pool_specs():
    from neuralscale.runs import RunSpec
    config = {"epochs": 1, "batch_size": 32, "device": "cpu"}
    pre = RunSpec(model="vgg11", dataset="synthetic", method="uniform", widths=[4] * 8, latency_batches=(),
                  config=config, data={"train": 64, "test": 16})
    base = RunSpec(model="vgg11", dataset="synthetic", method="l1-prune", criterion="l1-uniform", pretrained=pre.id,
                   budget={"metric": "params", "value": 20000}, latency_batches=(), config={**config, "lr": 0.001},
                   data={"train": 64, "test": 16})
    return pre, base


class _InProcess:
    """A parallel executor whose 'workers' are this process: a run started is run (or made to fail, or its worker
    made to die without a record) when the pool next asks which runs have ended, one at a time."""

    def __new__(cls, slots: int = 2, retries: int = 2, fail=(), die=()):
        from neuralscale.executors import _Pool
        from neuralscale.runs import execute_in_store, failed_record

        class InProcess(_Pool):
            name = "test worker"

            def _start(self, spec, slot, out):
                self.started.append(spec.id)
                return spec

            def _ended(self, running):
                if not running:  # (asked once more after the last run was settled)
                    return {}
                rid, (spec, _, _) = next(iter(running.items()))
                if rid in self.die:
                    return {rid: "killed"}
                if rid in self.fail:
                    self._store.write(rid, failed_record(spec, "RuntimeError: diverged"))
                else:
                    execute_in_store(spec, self._store, progress=False)
                return {rid: "finished"}
        pool = InProcess()
        pool.slots, pool.retries, pool.fail, pool.die, pool.started = slots, retries, set(fail), set(die), []
        return pool


@pytest.mark.parametrize("backend", ["local", "ray"])
def test_a_run_refused_in_a_worker_stops_the_sweep_in_one_line_as_in_the_drivers_process(tmp_path, request,
                                                                                           backend):
    """An unreadable checkpoint refuses its run before it starts: with local workers that was three worker
    tracebacks, two retries and the run recorded failed ("worker died 3 times"), which a rerun then skipped (an
    adversarial pass found it; on Ray, "RayTaskError" likewise). One line, exit 2, the record as it was, as the
    sequential executor says it; and a run's log the worker cannot open likewise."""
    import json
    workers = (["--backend", "ray", "--address", request.getfixturevalue("ray_cluster")] if backend == "ray" else
               ["--executor", "local", "--workers", "1"])
    out = tmp_path / "store"
    args = [*TINY, "--ratios", "0.0625", "--epochs", "1", "--out", str(out), "--quiet"]
    assert run_cli(*args).returncode == 0
    (path,) = out.glob("runs/*/record.json")
    record = {**json.loads(path.read_text()), "status": "running"}  # as a run stopped after its last checkpoint
    path.write_text(json.dumps(record))
    checkpoint = path.parent / "checkpoint.pt"
    checkpoint.write_bytes(checkpoint.read_bytes()[:1000])
    for executor in (workers, []):
        r = run_cli(*args, *executor)
        lines = [x for x in r.stderr.splitlines() if x.strip()]
        assert r.returncode == 2 and len(lines) == 1 and "checkpoint.pt is unreadable" in lines[0], r.stderr
        assert json.loads(path.read_text()) == record, executor  # neither failed nor retried
    checkpoint.unlink()
    (path.parent / "log.txt").unlink()
    (path.parent / "log.txt").mkdir()  # a log the worker cannot open (another user's, say)
    r = run_cli(*args, *workers)
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert r.returncode == 2 and len(lines) == 1 and lines[0].endswith("log.txt: Is a directory"), r.stderr
    assert json.loads(path.read_text()) == record


def test_a_run_whose_worker_keeps_dying_is_retried_so_often_then_recorded_failed(tmp_path):
    """A worker that dies without a final record: its run is retried `retries` times, then recorded failed with
    the count; a run that fails (its record says so) is not retried (a mutation audit: one retry fewer, and a
    failed run taken for a dead worker, passed the tests)."""
    from dataclasses import replace
    from neuralscale.store import RunStore
    pre, base = _pool_specs()
    done = []
    pool = _InProcess(retries=2, die={pre.id})
    pool.run([pre], tmp_path / "a", on_done=lambda i, s, rec: done.append((i, s.id, rec["status"])))
    assert pool.started == [pre.id] * 3 and done == [(1, pre.id, "failed")]
    assert RunStore(tmp_path / "a").read(pre.id)["error"] == "worker died 3 times (killed)"
    pool = _InProcess(retries=0, fail={pre.id})
    pool.run([pre], tmp_path / "b")
    assert pool.started == [pre.id]
    assert RunStore(tmp_path / "b").read(pre.id)["error"] == "RuntimeError: diverged"
    other = replace(pre, config={**pre.config, "seed": 1})  # one slot, two runs: one after the other
    pool = _InProcess(slots=1, fail={pre.id, other.id})
    pool.run([pre, other], tmp_path / "c")
    assert pool.started == [pre.id, other.id]


def test_a_baseline_waits_for_the_run_it_prunes_and_is_recorded_failed_when_that_fails(tmp_path):
    """A pruning baseline starts only after its pretrained run, even one recorded failed before that is being
    retried now; when that run fails, the baseline is recorded failed without running (a mutation audit: the
    record not written, and a retried run's old failure taken as its outcome, passed the tests)."""
    from neuralscale.runs import failed_record
    from neuralscale.store import RunStore
    pre, base = _pool_specs()
    done = []
    pool = _InProcess(fail={pre.id})
    pool.run([pre, base], tmp_path / "a", on_done=lambda i, s, rec: done.append((i, s.id, rec["status"])))
    assert pool.started == [pre.id] and done == [(1, pre.id, "failed"), (2, base.id, "failed")]
    said = RunStore(tmp_path / "a").read(base.id)
    assert said["status"] == "failed" and said["error"] == f"the run to prune ({pre.id}) failed"
    store = RunStore(tmp_path / "b")  # --retry-failed: the pretrained run failed before and runs again now
    store.write(pre.id, failed_record(pre, "RuntimeError: diverged"))
    pool = _InProcess(fail={base.id})
    pool.run([pre, base], store.root)
    assert pool.started == [pre.id, base.id] and store.read(pre.id)["status"] == "finished"
    assert store.read(base.id)["error"] == "RuntimeError: diverged"  # it ran (and failed as this test made it)


def test_an_executor_is_what_its_options_ask_for_and_nothing_is_silently_replaced():
    """get_executor's defaults and refusals, and Local's settings: constructing them starts no process (a
    mutation audit: the default of 2 workers and 2 retries, the refusal of workers=True, the bound at exactly
    4 threads per CPU, workers or devices given to the sequential executor, a device this machine cannot name,
    the threads shared between workers, and the devices taken round-robin all could change and pass)."""
    from neuralscale.errors import NeuralscaleError
    from neuralscale.executors import Local, Sequential, get_executor
    from neuralscale.threads import most_threads
    local = get_executor("local")
    assert isinstance(local, Local) and local.slots == 2 and local.retries == 2
    assert local.threads == max(1, (os.cpu_count() or 1) // 2)
    assert isinstance(get_executor(workers=3), Local) and isinstance(get_executor(devices=["cpu"]), Local)
    assert isinstance(get_executor(), Sequential) and get_executor("sequential", threads=3).threads == 3
    assert get_executor("local", workers=most_threads()).slots == most_threads()  # at the bound: accepted
    for options, says in ((dict(name="local", workers=True), "workers must be an integer of at least 1, got True"),
                          (dict(name="local", workers=most_threads() + 1), "workers must be at most"),
                          (dict(name="local", threads=0), "threads must be an integer of at least 1, got 0"),
                          (dict(name="local", retries=-1), "retries must be an integer of at least 0, got -1"),
                          (dict(name="sequential", workers=2), "the sequential executor runs one run at a time"),
                          (dict(name="sequential", devices=["cpu"]), "the sequential executor runs one run"),
                          (dict(name="local", devices=["bogus"]), "unknown device 'bogus'"),
                          (dict(name="nope"), "unknown executor 'nope'")):
        with pytest.raises(NeuralscaleError, match=re.escape(says)):
            get_executor(**options)
    with pytest.raises(NeuralscaleError, match="workers must be at least 1, got 0"):
        Local(workers=0)
    pinned = Local(workers=3, devices=["cpu", "cpu:0"])
    assert [pinned._device(slot) for slot in range(3)] == ["cpu", "cpu:0", "cpu"]
    assert get_executor("local", retries=0).retries == 0


RAY_SETTINGS = r"""
import sys
from neuralscale.executors import get_executor
ex = get_executor("ray", workers=3, cpus_per_run=2.5)
print(ex.slots, ex.threads, ex.retries, get_executor("ray").slots, get_executor("ray", threads=4).threads)
print(get_executor("ray", threads=100_000).threads)  # a cluster's nodes may be larger than this machine
print("ray" in sys.modules, ex._remote is None)  # constructed, not started: no cluster, no task yet
"""


def test_a_ray_executors_settings():
    """--workers caps a Ray sweep's concurrent runs (Ray queues the rest by their resources), a run's threads are
    its CPU share's (a mutation audit: either ignored passed the tests). In a process of its own: Ray is never
    imported here."""
    _need_ray()
    r = run_python(RAY_SETTINGS)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["3", "2", "2", "10000", "4", "100000", "True", "True"]


def test_a_retried_runs_log_keeps_what_its_earlier_attempts_said(tmp_path):
    """A run's log is appended to by each attempt (a worker that died, retried from its checkpoint): what the
    first attempt said stays (a mutation audit: a log truncated by the retry passed the tests)."""
    from neuralscale.executors import _redirect
    log = tmp_path / "log.txt"
    log.write_text("attempt 1: epoch 1\n")
    restore = _redirect(str(log))
    try:
        os.write(1, b"attempt 2: epoch 2\n")
        os.write(2, b"attempt 2: done\n")
    finally:
        restore()
    assert log.read_text() == "attempt 1: epoch 1\nattempt 2: epoch 2\nattempt 2: done\n"


def test_the_sequential_executor_runs_in_order_on_its_threads(tmp_path):
    """One run after another in this process, each reported with its number from 1; its thread count is the one
    asked for (a mutation audit: numbers from 0, and the threads ignored, passed the tests). The thread count in
    a process of its own, so that this one keeps its own."""
    from dataclasses import replace
    from neuralscale.executors import Sequential
    pre, _ = _pool_specs()
    other = replace(pre, config={**pre.config, "seed": 1})
    done = []
    Sequential().run([pre, other], tmp_path / "s", progress=False,
                     on_done=lambda i, s, rec: done.append((i, s.id, rec["status"])))
    assert done == [(1, pre.id, "finished"), (2, other.id, "finished")]
    code = ("import sys, torch\n"
            "from neuralscale.executors import Sequential\n"
            "Sequential(threads=3).run([], sys.argv[1])\n"
            "print(torch.get_num_threads())\n")
    r = run_python(code, str(tmp_path / "t"))
    assert r.returncode == 0 and r.stdout.split() == ["3"], (r.stdout, r.stderr)


def test_a_local_worker_trains_on_the_device_it_is_pinned_to(tmp_path):
    """--devices: a worker's runs train on its device whatever their recipe says (the device is not part of a run's
    identity); the run's record says where it trained (a mutation audit: the pin ignored passed the tests)."""
    from neuralscale.executors import Local
    pre, _ = _pool_specs()
    spec = RunSpec.from_dict({**pre.to_dict(), "config": {**pre.config, "device": "auto"}})
    assert spec.id == pre.id
    Local(workers=1, devices=["cpu:0"], threads=1).run([spec], tmp_path / "s", progress=False)
    (record,) = load_records(tmp_path / "s")
    assert record["status"] == "finished" and record["spec"]["config"]["device"] == "cpu:0"


def test_a_ray_address_is_host_and_port_or_auto():
    """Checked before Ray is asked (it retries for minutes): HOST:PORT, ray://HOST:PORT or auto (a mutation
    audit: a port that is not a number, and auto refused, passed the tests)."""
    from neuralscale.errors import NeuralscaleError
    from neuralscale.executors import _check_reachable
    _check_reachable(None)
    _check_reachable("auto")  # Ray finds the cluster itself
    for address in ("localhost", "localhost:abc", ":6379", "ray://host"):
        with pytest.raises(NeuralscaleError, match="is not HOST:PORT"):
            _check_reachable(address)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads a process's signal mask in /proc")
def test_a_local_worker_leaves_ctrl_c_to_its_driver(tmp_path):
    """Ctrl-C reaches the whole process group; a worker ignores it (its driver stops it), so that the terminal shows
    the driver's one line, not a KeyboardInterrupt per worker (a mutation audit: a worker that took Ctrl-C passed
    the tests, its traceback lost in a race with the driver's SIGTERM). A real worker, looked at as it runs."""
    from neuralscale.executors import Local
    from neuralscale.store import RunStore
    pre, _ = _pool_specs()
    ex = Local(workers=1, threads=1)
    RunStore(tmp_path).run_dir(pre.id).path.mkdir(parents=True)
    try:
        ex._start(pre, 0, tmp_path)
        worker = ex._procs[0][0]
        deadline = time.monotonic() + 120
        log = tmp_path / "runs" / pre.id / "log.txt"
        while time.monotonic() < deadline and worker.is_alive() and not log.exists():
            time.sleep(0.01)  # the worker has set its handlers before it opens the run's log
        assert worker.is_alive() and _sigint_ignored(worker.pid)
    finally:
        ex._close(abort=True)


def test_the_workers_fork_server_loads_torch_deaf_to_ctrl_c_and_then_hears_it_again(tmp_path):
    """The fork server of local workers is in the driver's process group: a Ctrl-C while it imported torch (a
    sweep's first second or two) printed its KeyboardInterrupt traceback under the driver's one line. What it
    preloads ignores SIGINT while torch loads (here a stand-in torch that sends itself Ctrl-C as it loads), and
    puts Python's handler back after, for the other processes a program forks from the same server."""
    from neuralscale.executors import PRELOAD
    fake = tmp_path / "torch"
    fake.mkdir()
    (fake / "__init__.py").write_text("import os, signal\nos.kill(os.getpid(), signal.SIGINT)\nLOADED = True\n")
    code = (f"import signal, sys, {PRELOAD}\n"
            "assert sys.modules['torch'].LOADED\n"
            "print(signal.getsignal(signal.SIGINT) is signal.default_int_handler)\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "True" and not r.stderr, (r.returncode, r.stdout, r.stderr)


def test_a_forked_worker_importing_the_command_script_is_not_the_command(tmp_path):
    """A local worker forked from the fork server imports its driver's main script, the `neuralscale` script, so
    the whole package, before multiprocessing says it has a parent: it was taken for the command and given the
    command's handlers, and the SIGTERM by which its driver stops it on Ctrl-C printed a second line ("terminated
    (SIGTERM); nothing was changed") under the driver's. The real context, with a script named as the command;
    the worker was forked from a server that had imported torch by the module the context preloads."""
    script = tmp_path / "neuralscale"
    script.write_text(
        "import signal, sys\n"
        "from neuralscale.executors import PRELOAD, _worker_context\n"
        "def probe(conn):\n"
        "    conn.send([signal.getsignal(signal.SIGTERM) == signal.SIG_DFL, PRELOAD in sys.modules])\n"
        "if __name__ == '__main__':\n"
        "    assert signal.getsignal(signal.SIGTERM) != signal.SIG_DFL  # the command's own\n"
        "    ctx = _worker_context()\n"
        "    here, there = ctx.Pipe()\n"
        "    p = ctx.Process(target=probe, args=(there,))\n"
        "    p.start()\n"
        "    print(here.recv())\n"
        "    p.join()\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=300,
                       cwd=tmp_path)
    assert r.returncode == 0 and r.stdout.strip() == "[True, True]", (r.returncode, r.stdout, r.stderr)
