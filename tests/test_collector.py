"""The garbage collector around neuralscale's imports and a command's end (neuralscale/collector.py): a user's
program gets it back as it was; the command's own process, and a sweep's local worker, leave what they imported
out of later collections and everything out of the interpreter's final ones."""

from __future__ import annotations

import json
import subprocess

from helpers import run_python

# Each in a fork of the tests' zygote (torch and torchvision imported, everything frozen there) that imports the
# package anew, as a new interpreter would: what the package's import does is the point, not torch's
FRESH = """
import sys
for name in [m for m in sys.modules if m == "neuralscale" or m.startswith("neuralscale.")]:
    del sys.modules[name]
"""

# the library as a user's program imports it: its collector on (no collection runs during the import), then off
LIBRARY = FRESH + r"""
import gc, json
runs = []
gc.callbacks.append(lambda phase, info: runs.append(info["generation"]) if phase == "start" else None)
before = gc.get_freeze_count()
import neuralscale as ns
seen = [len(runs), gc.isenabled(), gc.get_freeze_count() - before]
gc.disable()
from neuralscale.generic import torchvision_factory
torchvision_factory("resnet18", ns.dataset_info("synthetic"))  # torchvision's lazy import, paused (done here already)
seen += [gc.isenabled(), gc.get_freeze_count() - before]
print(json.dumps(seen))
"""

# the command's own process: argv[0] as the `neuralscale` script has it; its import, a real command, its exit
COMMAND = FRESH + r"""
import atexit, gc, json
sys.argv[0] = "/usr/local/bin/neuralscale"
atexit.register(lambda: print(json.dumps(seen + [gc.get_freeze_count() - before, len(gc.get_objects())])))
before = gc.get_freeze_count()
import neuralscale.cli  # the command's import (the script's first line)
seen = [gc.isenabled(), gc.get_freeze_count() - before]
with neuralscale.collector.paused():  # a block that imports nothing: nothing frozen (a run's garbage stays
    junk = [{"c": [i]} for i in range(3000)]  # collectable)
seen.append(gc.get_freeze_count() - before)
assert "imaplib" not in sys.modules
with neuralscale.collector.paused():  # a lazy import (torchvision's) in the command: frozen after it too
    import imaplib
    lazily = [{"b": [i]} for i in range(3000)]
seen.append(gc.get_freeze_count() - before)
made = [{"a": [i]} for i in range(5000)]  # made after that: collectable until the end
sys.exit(neuralscale.cli.main(["info", "--model", "vgg11", "--dataset", "synthetic", "--json"]))
"""


def _last_json(r: subprocess.CompletedProcess):
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_a_users_import_pauses_the_collector_and_leaves_it_as_it_was():
    collections, on, frozen_on, off, frozen_off = _last_json(run_python(LIBRARY))
    # none while the package's modules import: at most one as collector.py itself imports, before the pause, and
    # one after it, whenever the allocation count happens to cross the threshold (without the pause: 9 here)
    assert collections <= 2, collections
    assert (on, off) == (True, False)  # as the program had it, after the import and after the lazy one
    assert frozen_on <= 0 and frozen_off <= 0  # a user's program: nothing frozen (what was may have been freed)


def test_the_command_freezes_what_it_imported_and_at_exit_everything():
    enabled, frozen_at_import, frozen_after_none, frozen_after_lazy, frozen_at_exit, left = \
        _last_json(run_python(COMMAND))
    assert enabled  # on for the command's own work
    assert frozen_at_import > 1000, frozen_at_import  # neuralscale's modules, classes and functions
    assert frozen_after_none <= frozen_at_import  # nothing imported, nothing frozen
    assert frozen_after_lazy >= frozen_at_import + 6000  # what a lazy import made (and what was alive then)
    assert frozen_at_exit >= frozen_after_lazy + 5000  # what was made after that, alive at exit, too
    assert left < 100, left  # the interpreter's final collections have next to nothing to walk


def test_a_local_worker_freezes_what_it_imported():
    # a fork of the tests' zygote (which froze its own imports): objects made after that, then the worker's
    # start (its driver sends nothing: None, stop)
    code = r"""
import gc, json, multiprocessing as mp
from neuralscale.executors import _worker
made = [{"a": [i]} for i in range(5000)]
here, there = mp.Pipe()
before = gc.get_freeze_count()
here.send(None)
_worker(there, None, 1)
print(json.dumps([before, gc.get_freeze_count()]))
"""
    before, after = _last_json(run_python(code))
    assert after >= before + 5000, (before, after)
