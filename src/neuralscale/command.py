"""The `neuralscale` command's own process: telling it from a user's program, and its Ctrl-C (imported first, by
the package's __init__, before torch: nothing here imports more than the standard library)."""

from __future__ import annotations

import signal
import sys


def as_command() -> bool:
    """Whether this process is the `neuralscale` command (its script, or `python -m neuralscale`), not a user's
    program importing the library, nor a local worker of the command (multiprocessing gives a worker the driver's
    sys.argv)."""
    mp = sys.modules.get("multiprocessing")  # a process multiprocessing started has imported it
    if mp is not None and mp.parent_process() is not None:
        return False
    argv = getattr(sys, "orig_argv", [])
    return (bool(sys.argv) and sys.argv[0].rsplit("/", 1)[-1] == "neuralscale") or argv[1:3] == ["-m", "neuralscale"]


class Terminated(BaseException):
    """SIGTERM, raised where the command is, so that it stops as Ctrl-C stops it: what is finished stays, what is
    in progress resumes on the next run, and the terminal gets one line."""


def terminate(signum, frame) -> None:
    raise Terminated()


def interrupt(signum, frame) -> None:
    """Ctrl-C in the command: KeyboardInterrupt once; a second Ctrl-C (pressed again while the first stops the
    command) is ignored instead of raising inside the handling of the first, which printed a traceback."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt
