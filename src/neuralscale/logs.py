"""Where log messages go.  Every module logs to `logging.getLogger(__name__)`; a command decides the rest.

`configure(quiet)` sends the package's messages to stderr, one line each:
progress and results at INFO, problems at WARNING (all that `--quiet` keeps).
A descent also copies them into its log.txt while it runs (descent.DescentDir.open_log).
"""

from __future__ import annotations

import logging
import sys

PACKAGE = "neuralscale"
_handler: logging.Handler | None = None


def configure(quiet: bool = False) -> None:
    """Messages to the current stderr; called again, it replaces its handler (one per process)."""
    global _handler
    root = logging.getLogger(PACKAGE)
    if _handler is not None:
        root.removeHandler(_handler)
    _handler = logging.StreamHandler(sys.stderr)
    _handler.setFormatter(logging.Formatter("%(message)s"))
    _handler.setLevel(logging.WARNING if quiet else logging.INFO)
    root.addHandler(_handler)
    root.setLevel(logging.INFO)
