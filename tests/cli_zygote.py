"""Start `neuralscale` commands for the tests as forks of one process that has already imported torch.

A command started as `python -m neuralscale ...` spends about a second importing torch, torchvision and
numpy before it reads its arguments, and the suite starts well over a hundred commands. This process
imports them once; for each command it forks a child that becomes that command: its own process id and
session where asked, its own working directory, environment, argv and standard streams (files), and it
runs the package's `__main__` as `python -m neuralscale` does, and exits as the interpreter does (exit
status, a traceback on stderr, threads joined, atexit handlers run, streams flushed). Only the imports are
shared, and what every command would make alike (the synthetic dataset at its defaults, below): nothing of
torch's runs here on more than one thread before the fork (no thread pool exists yet), and the environment
variables the commands read are read after it (torch's thread count, fixed as it is imported: below).

A request with "code" runs that source as `python -c CODE ARGS...` would instead (tests/helpers.py: run_python):
in a `__main__` module of its own (no `__file__`, `__spec__` None, so that multiprocessing pickles what it defines
by reference to it and a spawned child does not re-run this file), with `sys.path[0]` the working directory, as
`-c` has it. It is for a test whose point is a process of its own (a model loaded with nothing of the test's
state, a driver whose worker outlives it) rather than what a new interpreter imports or sets up: everything
imported here (torch, torchvision, neuralscale's CLI and the modules below) is imported there already.

Protocol, one JSON object per line: the parent writes requests on stdin ({"id", "args", "env", "cwd", "stdout",
"stderr", "new_session", "file_size_limit", "code"}); this process answers {"id", "pid"} at once and {"id", "pid",
"returncode"} when that child ends (negative for a signal, as subprocess reports it). Several commands may run at
once.

Differences from a new interpreter remain, none of which the tests depend on: the modules imported here are
imported already; torch's default thread count is fixed when it is imported here (tests/conftest.py sets
OMP_NUM_THREADS before that under xdist, and the commands set their own); and for a command, `sys.path[0]` is
tests/, not the working directory. Tests of the interpreter's own start use real `subprocess` calls
(tests/helpers.py: run_real_cli).
"""

from __future__ import annotations

import atexit
import gc
import json
import os
import runpy
import select
import signal
import sys
import threading
import traceback
import types

import numpy  # noqa: F401  (imported once, before any fork)
import torch  # noqa: F401
import torchvision  # noqa: F401

import neuralscale.cli  # noqa: F401

# What commands load lazily, each a second or more, loaded once here (none of it runs a kernel or starts a thread):
# a process's first forward pass on the meta device imports about 900 modules (sympy among them), and the generic
# spaces make one; reports draw with matplotlib (its Agg backend, as figures.py chooses it, and its font cache);
# `export --onnx` imports torch.onnx and onnx (an optional extra).
with torch.no_grad():
    torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2), torch.nn.Flatten(),
                        torch.nn.Linear(2, 1)).to("meta").eval()(torch.empty(1, 1, 3, 3, device="meta"))
try:
    import io

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    _fig = plt.figure()
    _fig.text(0.5, 0.5, "warm")
    _fig.savefig(io.BytesIO(), format="png")
    plt.close(_fig)
except ImportError:
    pass
try:
    import onnx  # noqa: F401
    import torch.onnx  # noqa: F401
except ImportError:
    pass
# The synthetic dataset at its defaults, which most of the commands train on (about 0.09 CPU-s each to make: 84
# commands of a suite did): neuralscale makes it once per process (data/synthetic.py), so a fork finds it made, the
# same tensors. Only where torch computes on one thread here (as under `make test`): then no thread pool exists
# before a fork (torch.set_num_threads would start one).
if torch.get_num_threads() == 1:
    from neuralscale.data import synthetic as _synthetic
    _synthetic.make()
# all of it lives as long as this process: out of every later collection, here and in each fork (a full collection
# in a child would walk every object, copying the pages it touches), as in the command's own process (collector.py)
gc.freeze()


def _become(req: dict) -> None:
    """In the child: take the command's session, directory, umask, environment and streams, then run it (as a
    process the test started would inherit them: the zygote keeps what it started with)."""
    if req.get("new_session"):
        os.setsid()
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if req.get("file_size_limit") is not None:  # the kernel refuses writes past it, as a full disk does, with an
        import resource                         # error instead of the signal it sends by default
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (req["file_size_limit"],) * 2)
    os.chdir(req["cwd"])
    os.umask(req["umask"])
    os.environ.clear()
    os.environ.update(req["env"])
    fd = os.open(os.devnull, os.O_RDONLY)
    os.dup2(fd, 0)
    for name, target in (("stdout", 1), ("stderr", 2)):
        fd = os.open(req[name], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, target)
        os.close(fd)
    sys.stdin = open(0, closefd=False)
    sys.stdout = open(1, "w", closefd=False)
    sys.stderr = open(2, "w", closefd=False)
    source = req.get("code")
    sys.argv = ["-c", *req["args"]] if source is not None else [sys.executable, *req["args"]]
    try:
        if source is not None:  # `python -c SOURCE ARGS...`
            module = types.ModuleType("__main__")
            module.__spec__, module.__builtins__ = None, __builtins__
            sys.modules["__main__"] = module
            sys.path[0] = ""
            exec(compile(source, "<string>", "exec"), module.__dict__)
        else:  # `python -m neuralscale ARGS...`
            runpy.run_module("neuralscale", run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as e:
        code = _exit_code(e.code)
    except BaseException:  # as the interpreter does with an uncaught exception
        traceback.print_exc()
        code = 1
    _shut_down(code)


def _exit_code(code) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def _shut_down(code: int) -> None:
    """The interpreter's exit (threads joined, atexit handlers, streams flushed) without its teardown of every
    module: in a fork, that teardown touches every page it shares with this process and takes a second."""
    threading._shutdown()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C in pytest stops the children, not this process
    answer = os.dup(1)
    children: dict[int, str] = {}  # pid -> request id
    pending = b""
    while True:
        if select.select([0], [], [], 0.02)[0]:
            data = os.read(0, 1 << 16)
            if not data:  # the tests are done; children that still run are theirs to end
                return
            pending += data
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                req = json.loads(line)
                pid = os.fork()
                if pid == 0:
                    os.close(answer)
                    try:
                        _become(req)  # never returns
                    finally:  # it failed before the command ran (tests/helpers.py checks the directory first)
                        traceback.print_exc()
                        os._exit(1)
                children[pid] = req["id"]
                _say(answer, {"id": req["id"], "pid": pid})
        while children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            _say(answer, {"id": children.pop(pid), "pid": pid, "returncode": os.waitstatus_to_exitcode(status)})


def _say(fd: int, message: dict) -> None:
    os.write(fd, (json.dumps(message) + "\n").encode())


if __name__ == "__main__":
    main()
