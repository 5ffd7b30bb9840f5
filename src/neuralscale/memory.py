"""This machine's memory, and the refusals that keep a command from asking for more than it has.

Past physical memory the kernel kills the process without a word (no MemoryError reaches Python), so what would
clearly not fit is refused before it is allocated, in one line: a model whose weights, gradients and momentum
alone would fill memory (`--ratio 64`, a typo'd `--params 50G`), an image folder whose decoded images would.
"""

from __future__ import annotations

import os

from .errors import NeuralscaleError


def physical_memory() -> int | None:
    """Bytes of physical memory, or None where the system does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def refuse_beyond(need: int, share: float, what: str, remedy: str) -> None:
    """A NeuralscaleError where `need` bytes exceed `share` of physical memory."""
    have = physical_memory()
    if have and need > share * have:
        raise NeuralscaleError(f"{what} take {need / 2**30:,.1f} GiB, too much for this machine's "
                               f"{have / 2**30:,.0f} GiB; {remedy}")
