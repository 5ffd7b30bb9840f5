"""Python's cyclic garbage collector around what a neuralscale process imports, and at a command's end.

Importing torch, torchvision and neuralscale leaves about 336,000 objects the collector tracks, and it walks
all of them at every full collection: several while they are being imported (about 0.45 s of a 2.7 s import on
this project's machines), more during the run, and again as the interpreter shuts down (about 0.75 s of every
command's end, 1 s after a descent; benchmarks/process_cost.py measures both). Almost none of them ever becomes
garbage: they are modules, classes and functions that live as long as the process.

- `paused()`: the collector off while the package imports torch, and while torchvision, timm or matplotlib are
  imported when first needed (as it was before, after): for every process, a user's program included (a
  program that turns the collector off from another thread meanwhile finds it on again after).
- `own_process()`: in a process that is neuralscale's own (the `neuralscale` command, a sweep's local worker),
  not a user's program: what it has imported is moved out of the collector's reach (`gc.freeze`; what it
  imports later too, once), so that later collections walk only what the process makes, and everything is again as
  the command's interpreter exits (a worker leaves through `os._exit`). Python's own teardown still runs: every
  object it frees by reference counting is finalized as before; only cycles still alive then are left to the
  operating system, as `os._exit` leaves them, and neuralscale closes its own files before that. What the
  paused import left as cyclic garbage is frozen with the rest: 7,324 objects after `import neuralscale.cli`
  (`gc.collect()`'s count), kept for the process's life.

The command is told from a user's program by its argv (`command.as_command`): the
installed script, or `python -m neuralscale`; other ways of starting it (`python -X ... -m neuralscale`) only
miss the speed-up, and a program that names itself `neuralscale` in sys.argv[0] is taken for the command.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import sys


@contextlib.contextmanager
def paused():
    """The cyclic collector off inside (reference counting still frees what it can), left as it was after."""
    was, modules = gc.isenabled(), len(sys.modules)
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
        # in neuralscale's own process, a lazy import (torchvision's, matplotlib's) joins the frozen: only where
        # the block imported something (later calls import nothing, and a freeze then would keep for good the
        # cycles of a run's garbage not yet collected: a finished run's model)
        if _state["registered"] and len(sys.modules) > modules:
            gc.freeze()


def own_process() -> None:
    """What the process has imported so far is left out of later collections, and whatever is alive at exit out
    of the interpreter's final ones (registered once)."""
    gc.freeze()
    if not _state["registered"]:
        atexit.register(gc.freeze)  # registered early, so it runs after the handlers registered later
        _state["registered"] = True


_state = {"registered": False}
