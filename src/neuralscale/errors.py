"""The one exception type that means "the user asked for something we cannot do".

The CLI turns it into a single line on stderr and exit status 2; anything else
escaping is a bug and keeps its traceback.
"""


class NeuralscaleError(Exception):
    """A problem with the user's input, data or files, explained in one line."""


class EnvironmentFailure(NeuralscaleError):
    """The machine, not the run, failed: no such device, out of device memory.

    A run that meets one is not recorded as failed (its record stays unfinished, so a rerun on a
    working machine runs it); the command stops with the message.
    """
