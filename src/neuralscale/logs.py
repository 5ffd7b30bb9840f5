"""Where log messages go.  Every module logs to `logging.getLogger(__name__)`; a command decides the rest.

`configure(quiet)` sends the package's messages to stderr, one line each:
progress and results at INFO, problems at WARNING (all that `--quiet` keeps).
The Python API calls `for_api(progress)`: the same lines, unless the program has configured logging itself
(then its configuration decides) or asked for no progress.
A descent also copies them into its log.txt while it runs (descent.DescentDir.open_log).
"""

from __future__ import annotations

import logging
import sys

PACKAGE = "neuralscale"
_handler: logging.Handler | None = None
_for_api = False  # whether _handler is the Python API's (for_api), not a command's (configure)


class _Stderr(logging.StreamHandler):
    """Writes to whatever sys.stderr is when a message comes (a test's capture, a worker's log file), never to
    a stream that has since been closed."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # StreamHandler sets it; the current stderr is always used
        pass


class _SameThreadsAgain(logging.Filter):
    """A sequential sweep's runs each say how their threads were chosen, the same line run after run: said once on
    one stream (a run's own log, where a worker writes it, still gets its own; the record keeps it too, as
    environment.thread_policy)."""

    def __init__(self):
        super().__init__()
        self.last: tuple | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        head, sep, rest = record.getMessage().partition(": threads: ")
        if not sep:
            return True
        said, self.last = self.last, (id(sys.stderr), rest)
        return said != self.last


def configure(quiet: bool = False) -> None:
    """Messages to the current stderr; called again, it replaces its handler (one per process)."""
    global _handler, _for_api
    _for_api = False
    root = logging.getLogger(PACKAGE)
    if _handler is not None:
        root.removeHandler(_handler)
    _handler = _Stderr()
    _handler.setFormatter(logging.Formatter("%(message)s"))
    _handler.setLevel(logging.WARNING if quiet else logging.INFO)
    _handler.addFilter(_SameThreadsAgain())
    root.addHandler(_handler)
    root.setLevel(logging.INFO)


def for_api(progress: bool) -> None:
    """What the Python API's long calls (train, descend, sweeps, experiments) print: the CLI's lines on stderr
    when `progress` is asked (the default) and the program has set up no logging of its own; nothing otherwise.
    Warnings are Python warnings either way (errors.warn)."""
    global _for_api
    if _handler is not None:
        if _for_api:  # each call as it asks: progress=False after a call with progress prints no progress either
            _handler.setLevel(logging.INFO if progress else logging.WARNING)
        return
    if not progress:
        return
    if logging.getLogger().handlers or logging.getLogger(PACKAGE).handlers:
        return  # the program decides where messages go
    configure()
    _for_api = True
    _handler.addFilter(_until_the_program_configures)


def _until_the_program_configures(record: logging.LogRecord) -> bool:
    """The API's own lines stop once the program sets up logging after all (basicConfig after a first call):
    its handlers get the package's messages by propagation, and ours would print each a second time."""
    return not logging.getLogger().handlers
