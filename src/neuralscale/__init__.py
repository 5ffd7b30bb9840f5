"""neuralscale: find how wide each layer of a CNN should be for a budget (NeuralScale, CVPR 2020)."""

import os as _os
import signal as _signal
import sys as _sys

from . import collector as _collector
from .command import as_command as _as_command, interrupt as _interrupt, signalled as _signalled
from .command import terminate as _terminate, terminated as _terminated, unraisable as _unraisable

if _as_command():  # before torch is imported: one Ctrl-C, or SIGTERM, is one line
    if _signal.getsignal(_signal.SIGINT) is _signal.default_int_handler:
        _signal.signal(_signal.SIGINT, _interrupt)
    if _signal.getsignal(_signal.SIGTERM) == _signal.SIG_DFL:
        _signal.signal(_signal.SIGTERM, _terminate)
    _sys.unraisablehook = _unraisable(_sys.unraisablehook)

try:  # Ctrl-C while torch is imported: the command's one line, not Python's traceback
    with _collector.paused():  # about a sixth of the import's time saved (collector.py)
        from ._version import __version__
        from .budget import Budget
        from .errors import NeuralscaleError, NeuralscaleWarning
        from .space import WidthSpace
        from .zoo import space
        from .train import TrainConfig, Trainer, paper_config
        from .data import load as load_dataset, dataset_info
        from .descent import DescentConfig
        from .importance import BNScale, Importance, L1FilterNorm, TaylorFO
        from .scaling import ScalingLaw
        from .api import descend, scale, train
        from .descent import DescentResult
        from .export import export_run, load_model
        from .loop import Pruner
        from .baselines import warm_start
        if _as_command():  # what its script imports next (the `cli` module's own imports), under this guard too
            from . import cli as _cli  # noqa: F401
    if _as_command() and _signalled():  # a signal whose exception native code swallowed as torch loaded: the
        raise KeyboardInterrupt  # command went on (deaf to another Ctrl-C), or on with half a numpy
except BaseException as _stop:  # Ctrl-C, or SIGTERM (a Terminated); or another error it became inside an import
    if not _as_command() or not (isinstance(_stop, KeyboardInterrupt) or _signalled()):
        raise
    _term = _terminated(_stop)
    print(f"neuralscale: {'terminated (SIGTERM)' if _term else 'interrupted'}; nothing was changed", file=_sys.stderr)
    _sys.stderr.flush()
    # not SystemExit: after this line, Python's own shutdown ended about one in ten such processes by SIGINT (-2,
    # no excepthook called: seen in probes of Ctrl-C as torch loads), instead of 130; nothing is left to shut down
    _os._exit(143 if _term else 130)

if _as_command():  # the command's own process: what it imported out of the collector's way (collector.py)
    _collector.own_process()

__all__ = ["Budget", "NeuralscaleError", "NeuralscaleWarning", "WidthSpace", "space", "TrainConfig", "Trainer", "paper_config", "load_dataset",
           "dataset_info", "DescentConfig", "Importance", "TaylorFO", "BNScale", "L1FilterNorm", "ScalingLaw",
           "descend", "scale", "train", "DescentResult", "Pruner", "load_model", "export_run", "__version__", "warm_start"]
