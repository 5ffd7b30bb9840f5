"""The one exception type that means "the user asked for something we cannot do".

The CLI turns it into a single line on stderr and exit status 2; anything else
escaping is a bug and keeps its traceback.
"""


class NeuralscaleError(Exception):
    """A problem with the user's input, data or files, explained in one line."""
