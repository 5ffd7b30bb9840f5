"""neuralscale: find how wide each layer of a CNN should be for a budget (NeuralScale, CVPR 2020)."""

import signal as _signal
import sys as _sys

from . import collector as _collector
from .command import as_command as _as_command, deferred as _deferred, interrupt as _interrupt
from .command import signalled as _signalled, terminate as _terminate, terminated as _terminated
from .command import torch_logs_refused as _torch_logs_refused, unraisable as _unraisable

if _as_command():  # before torch is imported: one Ctrl-C, or SIGTERM, is one line
    if _signal.getsignal(_signal.SIGINT) is _signal.default_int_handler:
        _signal.signal(_signal.SIGINT, _interrupt)
    if _signal.getsignal(_signal.SIGTERM) == _signal.SIG_DFL:
        _signal.signal(_signal.SIGTERM, _terminate)
    _sys.unraisablehook = _unraisable(_sys.unraisablehook)
    _sys.excepthook = _torch_logs_refused(_sys.excepthook)

# Ctrl-C or SIGTERM while torch is imported (the first second or two of every command): remembered, and said
# once the imports are done, in the command's one line (command.deferred); a program importing the library gets
# Python's own KeyboardInterrupt
with _deferred(), _collector.paused():  # about a sixth of the import's time saved (collector.py)
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
    from .api import descend, load_splits, scale, train
    from .descent import DescentResult
    from .export import export_run, load_model
    from .loop import Pruner
    from .baselines import warm_start
    if _as_command():  # what its script imports next (the `cli` module's own imports), deferred too
        from . import cli as _cli  # noqa: F401
if _as_command() and _signalled():
    _term = _terminated()
    print(f"neuralscale: {'terminated (SIGTERM)' if _term else 'interrupted'}; nothing was changed", file=_sys.stderr)
    raise SystemExit(143 if _term else 130)

if _as_command():  # the command's own process: what it imported out of the collector's way (collector.py)
    _collector.own_process()

__all__ = ["Budget", "NeuralscaleError", "NeuralscaleWarning", "WidthSpace", "space", "TrainConfig", "Trainer", "paper_config", "load_dataset",
           "dataset_info", "DescentConfig", "Importance", "TaylorFO", "BNScale", "L1FilterNorm", "ScalingLaw",
           "descend", "scale", "train", "DescentResult", "Pruner", "load_model", "export_run", "__version__", "warm_start",
           "load_splits"]
