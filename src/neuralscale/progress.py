"""Progress bars that stay readable in a log file.

On a terminal: a live tqdm bar.  Otherwise: nothing per step (the trainer logs
one line per epoch), so logs do not fill with carriage returns.
"""

from __future__ import annotations

import sys

from tqdm import tqdm


class _Quiet:
    n = 0

    def update(self, k: int = 1) -> None:
        self.n += k

    def set_postfix(self, **kw) -> None: ...
    def set_postfix_str(self, s: str) -> None: ...
    def set_description(self, desc: str) -> None: ...
    def close(self) -> None: ...


def progress_bar(total: int | None, desc: str, enabled: bool = True, leave: bool = False):
    if not enabled or not sys.stderr.isatty():
        return _Quiet()
    return tqdm(total=total, desc=desc, leave=leave, dynamic_ncols=True, file=sys.stderr)
