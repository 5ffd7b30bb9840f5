"""The `neuralscale` command's own process: telling it from a user's program, and its Ctrl-C (imported first, by
the package's __init__, before torch: nothing here imports more than the standard library)."""

from __future__ import annotations

import _thread
import signal
import sys
import threading
from contextlib import contextmanager
from typing import Iterator


def as_command() -> bool:
    """Whether this process is the `neuralscale` command (its script, or `python -m neuralscale`), not a user's
    program importing the library, nor a local worker of the command (multiprocessing gives a worker the driver's
    sys.argv)."""
    mp = sys.modules.get("multiprocessing")  # a process multiprocessing started has imported it
    if mp is not None and mp.parent_process() is not None:
        return False
    argv = getattr(sys, "orig_argv", [])
    if _started_by_multiprocessing(argv):  # a worker still importing its driver's main script (spawn.prepare)
        return False
    return (bool(sys.argv) and sys.argv[0].rsplit("/", 1)[-1] == "neuralscale") or argv[1:3] == ["-m", "neuralscale"]


def torch_logs_refused(previous):
    """sys.excepthook for the command: a TORCH_LOGS that PyTorch cannot parse fails `import torch` (before any of
    the command runs) with a ValueError listing every setting it knows; said in one line instead, exit status 2."""
    def hook(kind, value, tb):
        import os
        given = os.environ.get("TORCH_LOGS")
        if given and issubclass(kind, ValueError) and str(value).strip().startswith("Invalid log settings"):
            sys.stderr.write(f"neuralscale: error: TORCH_LOGS={given!r} is not a setting PyTorch knows; fix it or "
                             "unset it (PyTorch lists its settings where a Python program imports torch)\n")
            sys.stderr.flush()
            os._exit(2)
        previous(kind, value, tb)
    return hook


def _started_by_multiprocessing(argv: list[str]) -> bool:
    """Whether this interpreter is multiprocessing's spawn child or fork server (or forked from that server):
    `python [flags] -c "from multiprocessing.spawn import ..."`. Such a worker imports its driver's main script
    (the `neuralscale` script: the whole package) before multiprocessing says it has a parent; taken for the
    command then, it printed the command's line for the SIGTERM or Ctrl-C its driver's Ctrl-C sent it."""
    first = argv.index("-c") if "-c" in argv else len(argv)  # -c ends the interpreter's options
    return argv[first + 1:first + 2] != [] and argv[first + 1].startswith("from multiprocessing.")


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the command is, so that it stops as Ctrl-C stops it: what is finished stays, what is
    in progress resumes on the next run, and the terminal gets one line. A kind of KeyboardInterrupt, as native
    code that checks for signals passes on only that (Ray's wait turns it into its own KeyboardInterrupt, and
    raised anything else as a SystemError): `terminated` tells them apart."""


_sigterm = False  # SIGTERM was received by this command (where native code raised its own KeyboardInterrupt)
_signalled = False  # Ctrl-C or SIGTERM was received by this command
_deferring = False  # the command imports its modules: a signal is remembered, not raised (`deferred`)
_raised = 0  # the KeyboardInterrupts and Terminateds the handlers raised in this command ...
_lost = 0  # ... and those of them raised where Python could only ignore them (`unraisable`)
_again_timer: threading.Timer | None = None  # the one that sends such a signal again, while the command runs
_generation = 0  # how many times a command has ended (or a timer has been replaced) in this process
_running = False  # a command runs (between `started` and `ended`): only then is a lost signal sent again


@contextmanager
def deferred() -> Iterator[None]:
    """While the command imports its modules (torch, the package, its `cli`): Ctrl-C and SIGTERM are remembered,
    not raised, and the importer says so after (`signalled`). Raised there, their exception met native code that
    swallowed it (the command went on, deaf to a second Ctrl-C, once with half a numpy), turned it into another
    error (`__set_name__`'s RuntimeError), could only ignore it (a `__del__`: "Exception ignored"), or, in pybind11
    code of torch.distributed, aborted the process (std::terminate, exit -6, a C++ trace) (interruption probes:
    benchmarks/interrupt_probe.py)."""
    global _deferring
    _deferring = True
    try:
        yield
    finally:
        _deferring = False


def optional_import(name: str):
    """The module `name`, or None where it is not installed, imported as the command imports its modules
    (`deferred`), and a Ctrl-C or SIGTERM that arrived meanwhile raised after it: pybind11 turns one raised inside an
    extension's start-up into ImportError('initialization failed'), which read as "not installed" (an adversarial
    pass: `export --onnx` stopped by Ctrl-C while it loaded onnxruntime went on, and said its ONNX was unchecked
    for want of onnxruntime). In a program of one's own (no handlers of the command's), an ImportError caused by
    a KeyboardInterrupt is that KeyboardInterrupt."""
    import importlib
    before = _signalled
    with deferred():
        try:
            module, cause = importlib.import_module(name), None
        except ImportError as e:
            module, cause = None, e.__cause__ or e.__context__
    if _signalled and not before:
        _raise_remembered()
    if isinstance(cause, KeyboardInterrupt):
        raise cause
    return module


def _raise_remembered() -> None:
    """The signal `deferred` remembered, raised as its handler raises it."""
    global _raised
    signum = signal.SIGTERM if _sigterm else signal.SIGINT
    if threading.current_thread() is threading.main_thread():
        signal.signal(signum, signal.SIG_IGN)
    _raised += 1
    raise Terminated() if _sigterm else KeyboardInterrupt()


def terminate(signum, frame) -> None:
    """SIGTERM in the command: Terminated once; a later SIGTERM (a scheduler sending several) is ignored instead
    of raising inside the handling of the first, which printed a traceback after the one line, exit 1, as
    `interrupt` ignores a second Ctrl-C."""
    global _sigterm, _signalled, _raised
    _sigterm = _signalled = True
    if not _deferring:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        _raised += 1
        raise Terminated()


def terminated(stop: BaseException | None = None) -> bool:
    """Whether the KeyboardInterrupt that stopped the command (or the signal `deferred` remembered) came from
    SIGTERM."""
    return isinstance(stop, Terminated) or _sigterm


def signalled() -> bool:
    """Whether Ctrl-C or SIGTERM reached the command since it started."""
    return _signalled


def started() -> None:
    """A command starts (main() may be called more than once in a process): no signal received yet."""
    global _sigterm, _signalled, _raised, _lost, _running
    ended()
    _sigterm = _signalled = False
    _raised = _lost = 0
    _running = True


def ended() -> None:
    """A command has ended: a signal it lost (`unraisable`) is not sent again, into another command or the
    process's exit."""
    global _running
    _running = False
    _forget_timer()


def _forget_timer() -> None:
    global _again_timer, _generation
    _generation += 1
    timer, _again_timer = _again_timer, None
    if timer is not None:
        timer.cancel()


def interrupt(signum, frame) -> None:
    """Ctrl-C in the command: KeyboardInterrupt once; a second Ctrl-C (pressed again while the first stops the
    command) is ignored instead of raising inside the handling of the first, which printed a traceback."""
    global _signalled, _raised
    _signalled = True
    if _deferring:
        return
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _raised += 1
    raise KeyboardInterrupt


def _again(generation: int, signum: int) -> None:
    """`signum` sent to the main thread again (`unraisable`), unless a signal reached the command meanwhile or
    the command has ended since (`generation`: `_generation` when it was lost)."""
    if _lost < _raised or generation != _generation:
        return
    if hasattr(signal, "pthread_kill"):
        signal.pthread_kill(threading.main_thread().ident, signum)
    else:  # (Windows: the handler runs at the main thread's next check, without ending a wait)
        _thread.interrupt_main(signum)


def unraisable(hook):
    """`sys.unraisablehook` for the command: Ctrl-C or SIGTERM whose exception was raised where Python can only
    ignore it (a `__del__`, a weakref callback: importlib's module locks have one) printed "Exception ignored" and
    a traceback, and the command went on (deaf to a second Ctrl-C; a SIGTERM, once silenced, as if none came).
    Not a word of it now: where no signal has reached the command yet, the signal is made to arrive again, so
    that the command stops on it, in its one line. Another thread sends it to the main thread a moment later (a
    signal, which also ends a wait in a system call); sent from here, its handler ran before this hook returned,
    inside it. Should it land in a `__del__` again, it comes back here and is sent again. Any other unraisable
    exception is `hook`'s."""
    def quietly(u) -> None:
        global _lost, _again_timer
        if u.exc_type is None or not issubclass(u.exc_type, KeyboardInterrupt) or not _signalled:
            return hook(u)
        _lost += 1
        if _lost < _raised or not _running:  # the command was told of one already and is stopping, or has ended:
            return  # this one is not raised again
        if _sigterm and signal.getsignal(signal.SIGTERM) is signal.SIG_IGN:
            signal.signal(signal.SIGTERM, terminate)  # (`terminate` ignores SIGTERM once it has raised it)
        elif not _sigterm and signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
            signal.signal(signal.SIGINT, interrupt)  # (`interrupt` ignores Ctrl-C once it has raised it)
        _forget_timer()  # (one timer at a time)
        _again_timer = threading.Timer(0.05, _again, (_generation, signal.SIGTERM if _sigterm else signal.SIGINT))
        _again_timer.daemon = True
        _again_timer.start()
    return quietly
