"""Fixtures: an isolated cache for every test, and one tiny finished descent for the whole session (read it, or
copy it before changing it).  Shared helpers live in helpers.py."""

from __future__ import annotations

import atexit
import gc
import os

import pytest


if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs two test processes on two cores: one thread each, for them and the commands they start
    # (more would oversubscribe the cores and make every test crawl).  Set before torch is imported.
    for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_var, "1")
    # one thread per training run too, whatever the controlling process set below (workers inherit its
    # environment: a count of 2 here ran every training on two threads per worker, 6x slower on two cores)
    os.environ["NEURALSCALE_THREADS"] = os.environ["OMP_NUM_THREADS"]
elif not os.environ.get("PYTEST_XDIST_TESTRUNUID"):  # a plain pytest run, not xdist's controller
    # A fixed thread count for every training run of the tests (by default a run's count follows the machine's
    # load, threads.py, and a CPU's sums depend on it): tests that compare runs bit for bit must not depend on it.
    os.environ.setdefault("NEURALSCALE_THREADS", str(len(os.sched_getaffinity(0)))
                          if hasattr(os, "sched_getaffinity") else "1")


# The files whose tests take longest (most of the suite's CPU time; `pytest --durations`), heaviest first: run
# first, so that the two test processes end together on short tests instead of one waiting while the other
# finishes a long one (about half a minute of one idle core, measured on 2 cores)
HEAVY_FIRST = ("test_readme.py", "test_reliability.py", "test_demo.py", "test_executors.py", "test_generic.py",
               "test_report.py", "test_user_workflow.py", "test_sweep.py", "test_experiment.py", "test_gpu_check.py")


def pytest_configure(config):
    """A tensor cache and data directory of the test process's own, for what runs before any test's
    isolated_cache (a module's or the session's fixtures: the README's walkthrough wrote into the user's
    ~/.cache/neuralscale at every run), removed as the process ends. And the process as the command's own
    (neuralscale/collector.py): what is alive as it exits is left out of the interpreter's final collections (a
    test process holds torch's objects and every test's leftovers: its teardown took 2-3 s of the suite's end)."""
    import shutil
    import tempfile
    own = tempfile.mkdtemp(prefix="neuralscale-tests-")
    os.environ["NEURALSCALE_CACHE"], os.environ["NEURALSCALE_DATA"] = f"{own}/cache", f"{own}/data"
    if not _matplotlib_can_write():
        # else matplotlib, imported by tests/cli_zygote.py, makes a temporary folder that its exit handler
        # deletes: in every command forked from the zygote, so the first to end took it from all the others
        os.environ["MPLCONFIGDIR"] = f"{own}/matplotlib"
    atexit.register(shutil.rmtree, own, True)
    atexit.register(gc.freeze)  # registered last: runs first


def _matplotlib_can_write() -> bool:
    """Whether matplotlib has its configuration and cache folders (MPLCONFIGDIR, else the XDG ones under HOME)
    without falling back to a temporary one (a HOME that is missing or read-only, as in some containers)."""
    if os.environ.get("MPLCONFIGDIR"):
        return True
    from pathlib import Path
    try:
        home = Path.home()
    except RuntimeError:  # no HOME and no password entry
        return False
    for var, default in (("XDG_CONFIG_HOME", ".config"), ("XDG_CACHE_HOME", ".cache")):
        folder = Path(os.environ.get(var) or home / default) / "matplotlib"
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError:
            return False
        if not os.access(folder, os.W_OK):
            return False
    return True


def pytest_collection_finish(session):
    """What collecting imported (torch, torchvision, neuralscale, the test modules) is out of the collector's way
    for the rest of the session: a full collection walked it every time, about 0.2 s each (collector.py)."""
    gc.freeze()


def pytest_collection_modifyitems(config, items):
    """The heavy files first (HEAVY_FIRST); tests marked `cuda` need a CUDA device: skipped, with the reason,
    everywhere else."""
    rank = {name: i for i, name in enumerate(HEAVY_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: each file's own order kept
    import torch
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device (run benchmarks/gpu_check.py on a GPU machine)")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own tensor cache and default data directory."""
    root = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("NEURALSCALE_CACHE", str(root / "cache"))
    monkeypatch.setenv("NEURALSCALE_DATA", str(root / "data"))
    return root


@pytest.fixture(autouse=True)
def isolated_process_state():
    """What a test that trains in this process changes, put back after it: torch's thread count, the thread
    governor's state (threads.py) and the global random generator, so that no later test in the process depends on
    which tests ran before it."""
    import torch

    from neuralscale import threads
    count, state, rng = torch.get_num_threads(), dict(threads._state), torch.random.get_rng_state()
    yield
    torch.set_num_threads(count)
    threads._state.clear()
    threads._state.update(state)
    torch.random.set_rng_state(rng)


@pytest.fixture(scope="session")
def fashion_files(tmp_path_factory):
    """The folder that holds Fashion-MNIST's four IDX files for the tests that read the demo's and the studies'
    data: None where Debian's copy is installed (`make demo` installs it; neuralscale finds it by itself), else
    files of the same format and sizes (60,000 and 10,000 learnable images) written here once per test process,
    so that `make test` needs neither the package nor a download."""
    from neuralscale.data.fashionmnist import SYSTEM_DIR
    stems = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
    if all((SYSTEM_DIR / f"{stem}.gz").is_file() for stem in stems):
        return None
    from helpers import write_fashion
    return write_fashion(tmp_path_factory.mktemp("fmnist") / "fashion-mnist", n_train=60_000, n_test=10_000)


@pytest.fixture
def fashion_data(fashion_files, isolated_cache, monkeypatch):
    """Fashion-MNIST where a test's `neuralscale` finds it without a data_dir (fashion_files)."""
    if fashion_files is not None:
        monkeypatch.setenv("NEURALSCALE_DATA", str(fashion_files.parent))


@pytest.fixture(scope="session")
def tiny_descent(tmp_path_factory):
    """(directory, DescentResult) of a finished two-iteration descent (helpers.TINY_DESCENT), this test process's
    own; do not write into it (copy it). Descended once per test session: under xdist the first worker to ask
    descends into a folder all the workers share and leaves it as it is; each worker copies it into a folder of
    its own and calls the same descent there, which finds every iteration finished and redoes nothing (about 6
    CPU-seconds a worker saved)."""
    import fcntl
    import shutil

    import neuralscale as ns
    from helpers import TINY_DESCENT, TINY_DESCENT_TRAIN
    own = tmp_path_factory.mktemp("tiny-descent")
    shared = tmp_path_factory.getbasetemp().parent / "tiny-descent" if os.environ.get("PYTEST_XDIST_WORKER") else own
    shared.mkdir(exist_ok=True)
    saved = {k: os.environ.get(k) for k in ("NEURALSCALE_CACHE", "NEURALSCALE_DATA")}
    os.environ.update(NEURALSCALE_CACHE=str(own / "cache"), NEURALSCALE_DATA=str(own / "data"))

    def descend(where):
        return ns.descend("vgg11", "synthetic", where, ns.DescentConfig(**TINY_DESCENT),
                          subset={"train": TINY_DESCENT_TRAIN}, progress=False)
    try:
        with open(shared / "made.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released as the file closes, whatever happens inside
            if not (shared / "made").exists():
                descend(shared / "d")
                (shared / "made").touch()  # d is never written again: the workers read it only to copy it
            if shared != own:
                shutil.copytree(shared / "d", own / "d")
        laws = descend(own / "d")  # everything finished: nothing redone, the laws as DescentResult
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return own / "d", laws

