"""Where a command may write: never over finished results, never into a run or descent directory or a sweep store.

Exports, fitted laws and reports are written only to new files, or (a report) into a folder that holds
nothing but an earlier report; `force` (the CLI's --force) overrides both rules, except that an export or a law is
never written among a run's, a descent's or a store's records.
"""

from __future__ import annotations

import json
from pathlib import Path

from .descent import DescentDir, is_descent_dir
from .errors import NeuralscaleError
from .layout import ReportDir, RunDir, StoreDir
from .records import LOCK, is_temp, read_text
from .store import is_run_dir



def holder(directory: Path) -> str | None:
    """'the run directory X' or 'the descent directory X' when `directory` is one, else None."""
    if is_run_dir(directory):
        return f"the run directory {directory}"
    if is_descent_dir(directory):
        return f"the descent directory {directory}"
    if StoreDir(directory).plan.is_file():
        return f"the sweep store {directory}"
    return None


def _within(folder: Path) -> str | None:
    """A run or descent directory above `folder` (whose --force rerun clears what is inside it: an export in
    runs/a/sub/ was lost so), or a store whose runs/ holds it; None where none is. Above the folder itself, a
    record.json or config.json counts only where neuralscale wrote it (a project's own files of those names do not
    make it a run's or a descent's folder)."""
    for above in folder.parents:
        if _ours(RunDir(above).record, "kind", "run") or (is_descent_dir(above) and _ours(
                DescentDir(above).config_path, "descent", None)):
            return holder(above)
        store = StoreDir(above)
        if store.plan.is_file() and (folder == store.runs or store.runs in folder.parents):
            return f"the sweep store {above}"
    return None


def _ours(path: Path, key: str, value) -> bool:
    """Whether `path` is a JSON table with `key` (equal to `value`, where one is given), as neuralscale writes it."""
    try:
        d = json.loads(read_text(path))
    except (OSError, ValueError, RecursionError):
        return False
    return isinstance(d, dict) and key in d and (value is None or d[key] == value)


def check_new_file(path: str | Path, force: bool = False) -> Path:
    """`path`, if writing it loses nothing; otherwise a NeuralscaleError that names what it would overwrite."""
    path = Path(path)
    if path.is_dir():
        raise NeuralscaleError(f"{path} is a directory; give a file name")
    inside = holder(path.parent) or _within(path.parent)
    if inside:  # even with --force: among its records (a law over its fits.json, a model over a run's record)
        raise NeuralscaleError(f"{path} would be written into {inside}, among its records; give another place")
    if force:
        return path
    if path.exists():
        raise NeuralscaleError(f"{path} exists; give another name, or --force (force=True in Python) to overwrite it")
    try:  # a place that cannot be written is found now, not after the work
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise NeuralscaleError(f"cannot write {path}: {e.strerror or e}") from None
    return path


def check_report_dir(path: str | Path, force: bool = False) -> Path:
    """A folder for a report: new, or holding only an earlier report (which is rebuilt)."""
    path = Path(path)
    if force or not path.exists():
        return path
    if not path.is_dir():
        raise NeuralscaleError(f"{path} is a file, not a folder for a report")
    inside = holder(path)
    if inside:
        raise NeuralscaleError(f"a report would be written into {inside}; give another --out, or --force "
                               "(force=True in Python)")
    # a report's lock and a killed write's temporary file are no one's content (a report killed before its first
    # page leaves them)
    content = [p for p in path.iterdir() if p.name != LOCK and not is_temp(p.name)]
    foreign = sorted(p.name for p in content if not ReportDir.belongs(p.name))
    if not foreign and content and not ReportDir(path).is_report():
        foreign = sorted(p.name for p in content)  # files named as a report's, not written as one
    if foreign:
        raise NeuralscaleError(f"{path} holds files that are not a report ({', '.join(foreign[:3])}); give another "
                               "--out, or --force (force=True in Python)")
    return path
