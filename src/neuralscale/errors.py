"""The one exception type that means "the user asked for something we cannot do".

The CLI turns it into a single line on stderr and exit status 2 (1 for a run
that started and failed: `RunFailed`); anything else escaping is a bug and
keeps its traceback.
"""


class NeuralscaleError(Exception):
    """A problem with the user's input, data or files, explained in one line."""


class EnvironmentFailure(NeuralscaleError):
    """The machine, not the run, failed: no such device, out of device memory.

    A run that meets one is not recorded as failed (its record stays unfinished, so a rerun on a
    working machine runs it); the command stops with the message.
    """


class RunFailed(NeuralscaleError):
    """Training that started and failed (it diverged), not the input or the machine: a run's record holds it as
    its error. The CLI exits with status 1 for it, as a sweep whose runs failed does, not 2."""

    exit_status = 1


class NeuralscaleWarning(UserWarning):
    """Something a user should know about a result that is still given: a law solved outside the rows it was
    fitted on, a configuration that costs more MACs than the base model, a fallback law.  The Python API raises
    it as a warning from the call that found it; the CLI prints the same text as one `warning:` line."""


def warn(message: str) -> None:
    """Warn of `message` from the public call that found it (see NeuralscaleWarning)."""
    import warnings
    warnings.warn(message, NeuralscaleWarning, stacklevel=3)


def first_line(e: BaseException, limit: int | None = 200, empty: str = "(no message)") -> str:
    """An exception's message for a one-line error: its first line, cut to `limit` characters (None: not cut), or
    `empty` where it has none (say `type(e).__name__`, where the message stands alone)."""
    text = str(e).strip()
    return text.splitlines()[0].rstrip()[:limit] if text else empty
