"""What the fork server of neuralscale's local workers imports first (`neuralscale.executors._worker_context`):
torch, with Ctrl-C ignored while it loads. Outside the package, as importing any part of neuralscale imports all
of it (its __init__), which the server must not: each worker imports neuralscale from its driver's sys.path.

Ctrl-C reaches the driver's whole process group, the fork server too, and the driver alone answers it (one line,
and it stops its workers). The server ignores SIGINT once it serves, but not while it imports what it preloads:
a Ctrl-C in a sweep's first second or two printed the server's KeyboardInterrupt traceback under the driver's line.
What the server had is put back after: every process a program forks from it (one server per program, a user's own
pool's too) gets Python's Ctrl-C as it would without neuralscale."""

import signal
import sys
import threading


def _import_torch_deaf_to_ctrl_c() -> None:
    if "torch" in sys.modules or threading.current_thread() is not threading.main_thread():
        return  # imported already (a driver that pickles a reference to this module), or signals not ours to set
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        import torch  # noqa: F401
    except ImportError:  # each worker then imports it itself, and says so
        pass
    finally:
        signal.signal(signal.SIGINT, previous)


_import_torch_deaf_to_ctrl_c()
