"""Files that must not be lost: atomic writes, strict JSON, and exclusive locks on directories."""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import math
import os
import re
import shutil
import stat
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import torch

from .errors import EnvironmentFailure, NeuralscaleError

LOCK = ".lock"
# what _atomic writes before its rename: tempfile.mkstemp's name, with a suffix of neuralscale's own (another
# tool's temporary files in a folder given with --force are not taken for its own)
_TEMP_SUFFIX = ".ns.tmp"
_TEMP = re.compile(r"\..+\.[a-z0-9_]{8}\.ns\.tmp")


def is_temp(name: str) -> bool:
    """Whether `name` is an atomic write's temporary file: a write killed before its rename leaves one."""
    return _TEMP.fullmatch(name) is not None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _atomic(path: Path, write: Callable[[str], None]) -> None:
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise NeuralscaleError(f"cannot write {path}: {path.parent} is a file, not a directory") from None
    except OSError as e:
        raise NeuralscaleError(f"cannot write {path}: {e.strerror or e}") from None
    if path.is_dir():
        raise NeuralscaleError(f"cannot write {path}: it is a directory")
    try:
        # the temporary file is named after the file, cut so that its name fits where the file's own fits
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name[:200]}.", suffix=_TEMP_SUFFIX)
    except OSError as e:  # the machine's doing (no space, no permission, a read-only disk), not the run's
        raise EnvironmentFailure(f"cannot write in {path.parent}: {e.strerror or e}") from None
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes files 0600; collaborators should read records
        os.replace(tmp, path)
    except OSError as e:  # a full disk, a file-size limit, ...: the run is not to blame (errors.EnvironmentFailure)
        Path(tmp).unlink(missing_ok=True)
        raise EnvironmentFailure(f"cannot write {path}: {e.strerror or e}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


MAX_RECORD_BYTES = 256 << 20  # far above any record, law or summary this package writes


def read_text(path: str | Path) -> str:
    """A JSON file this package wrote (a record, a descent's laws, a summary), as text: refused in one line where
    it is not a regular file (a device or a pipe would be read without end) or is larger than any it writes.
    Raises OSError where it cannot be read, UnicodeDecodeError (a ValueError) where it is not UTF-8."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # (a pipe opens without a writer; fstat says what it is)
    try:
        regular = stat.S_ISREG(os.fstat(fd).st_mode)
    except OSError:
        os.close(fd)
        raise
    if not regular:
        os.close(fd)
        raise NeuralscaleError(f"{path} is not a regular file")
    with os.fdopen(fd, "rb") as f:
        data = f.read(MAX_RECORD_BYTES + 1)
    if len(data) > MAX_RECORD_BYTES:
        raise NeuralscaleError(f"{path} holds more than {MAX_RECORD_BYTES >> 20} MiB: more than any file neuralscale "
                               "writes there; it is not one")
    return data.decode("utf-8")


def atomic_write(path: Path, write: Callable[[str], None]) -> None:
    """`write(tmp)` writes the file's content to the temporary file `tmp`, which then takes `path`'s place (a
    figure's savefig, say, given its format: the temporary file's name says none)."""
    _atomic(path, write)


def atomic_write_text(path: Path, text: str) -> None:
    def write(tmp):
        with open(tmp, "w") as f:
            f.write(text)
    _atomic(path, write)


def strict(obj: Any) -> Any:
    """`obj` with every NaN or infinite float replaced by None, so that any JSON reader accepts it."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: strict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict(v) for v in obj]
    return obj


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(strict(obj), indent=2, sort_keys=False, allow_nan=False) + "\n")


def atomic_torch_save(obj: Any, path: Path) -> None:
    """torch.save, atomically, streamed into the file (a dataset's tensor cache is not held twice in memory).
    A write the disk refuses in part (a file-size limit) reaches torch's zip writer as a short write, which it
    reports as a RuntimeError about positions: that is the OSError it is (a full disk raises one directly). So
    does an exception of the file's own write (Ctrl-C, a worker's SIGTERM, a write refused): that one is raised,
    not lost in it."""
    def write(tmp):
        with open(tmp, "wb") as f:
            try:
                torch.save(obj, f)
            except RuntimeError as e:
                # (a Ctrl-C was a cache "too large", and the command trained on with Ctrl-C ignored; a local
                # worker's SIGTERM, its SystemExit, stopped the sweep as "File too large")
                if isinstance(e.__context__, (KeyboardInterrupt, SystemExit, OSError)):
                    raise e.__context__ from None
                if "unexpected pos" not in str(e):
                    raise
                full = shutil.disk_usage(Path(tmp).parent).free < 1 << 20  # a full disk, or a file-size limit
                code = errno.ENOSPC if full else errno.EFBIG
                raise OSError(code, os.strerror(code)) from None  # written in part
    _atomic(path, write)


@contextmanager
def exclusive(directory: str | Path, what: str = "directory", wait: bool = False) -> Iterator[None]:
    """Hold an exclusive lock on `directory` (its .lock file) for the duration, or stop with a clear error
    (with `wait`, wait for the holder instead).

    The lock is the kernel's (flock): it is released when the holder exits, crashes or is killed, so a
    lock never outlives its command.  The holder's pid is written into the file for the error message.
    """
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise NeuralscaleError(f"{directory} is a file, not a directory") from None
    except OSError as e:
        raise NeuralscaleError(f"cannot use {directory}: {e.strerror or e}") from None
    with _held(directory / LOCK, lambda pid: f"{directory} is in use by another neuralscale command (pid {pid}); "
               f"wait for it to finish, or use another {what}", wait):
        for stale in directory.iterdir():  # only the lock's holder writes here: a temporary file is a killed write's
            if is_temp(stale.name) and stale.is_file() and not stale.is_symlink():
                stale.unlink(missing_ok=True)
        yield


NAMED_SUFFIXES = (".json", ".pt", ".onnx")  # the files of one NAME that no folder of neuralscale's owns
STALE_S = 600  # a temporary file this old is no write under way


def clear_temps(path: str | Path) -> None:
    """Remove what killed atomic writes of `path` left beside it (their temporary files, named for it): by a writer
    that holds the lock on `path` (`exclusive_name`), and only this user's files at least STALE_S old, so that none
    is a write under way (another user's, or one on another machine of a shared folder, holds no lock here). A
    folder's lock holder clears its folder's (`exclusive`); this is for files that no folder of neuralscale's owns."""
    path = Path(path)
    if len(path.name) > 200:  # (a temporary file's name keeps 200 characters of it: it could be another file's)
        return
    prefix, now = f".{path.name}.", time.time()
    try:
        for p in path.parent.iterdir():
            if not (p.name.startswith(prefix) and len(p.name) == len(prefix) + 8 + len(_TEMP_SUFFIX)
                    and is_temp(p.name)):
                continue
            st = p.lstat()
            if stat.S_ISREG(st.st_mode) and st.st_uid == os.getuid() and now - st.st_mtime >= STALE_S:
                p.unlink(missing_ok=True)
    except OSError:  # (a folder not there yet, or not readable: its writes will say so)
        pass


@contextmanager
def exclusive_name(path: str | Path, busy: Callable[[str], str]) -> Iterator[None]:
    """Hold an exclusive lock named for `path` (files that no folder of neuralscale's owns, such as an export's
    NAME.json and NAME.pt in a folder of the user's), or stop with `busy(pid of the holder)`.  The lock
    file lies in this user's temporary folder, named for the path resolved (two spellings of one file are one
    lock), so that nothing is left beside the user's files, and is removed by its holder when done (a lock taken
    on a file its holder had removed is taken again on the file there now); it coordinates commands on this
    machine."""
    try:
        resolved = Path(path).resolve()
    except (OSError, RuntimeError) as e:  # a loop of links
        raise NeuralscaleError(f"cannot use {path}: {e.strerror if isinstance(e, OSError) else e}") from None
    if resolved.suffix in NAMED_SUFFIXES:  # NAME.json, NAME.pt, NAME.onnx: one NAME (an export's and a law's save)
        resolved = resolved.with_suffix("")
    folder = Path(tempfile.gettempdir()) / f"neuralscale-{os.getuid()}-locks"
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
        own = folder.lstat()
    except OSError as e:
        raise NeuralscaleError(f"cannot use {folder} for a lock: {e.strerror or e}") from None
    if own.st_uid != os.getuid() or not stat.S_ISDIR(own.st_mode):  # (another user's, or a link, in a shared folder)
        raise NeuralscaleError(f"{folder} is not a folder of this user's; remove it, or set TMPDIR to another folder")
    lock = folder / f"{hashlib.sha256(os.fsencode(resolved)).hexdigest()[:32]}.lock"
    for _ in range(100):  # (each try that finds its file removed under it follows a holder that has finished)
        with _held(lock, busy, False) as fd:
            try:
                current = os.stat(lock).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                current = False
            if not current:
                continue
            try:
                yield
            finally:
                lock.unlink(missing_ok=True)  # (while held: a command that opened it meanwhile takes it again)
            return
    raise NeuralscaleError(busy("unknown"))


@contextmanager
def _held(lock: Path, busy: Callable[[str], str], wait: bool) -> Iterator[int]:
    """The flock on `lock` (created if need be, never through a link), the holder's pid written in it."""
    try:
        # never through a link: a lock file that links elsewhere would have its target truncated
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o666 & ~_umask())
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise NeuralscaleError(f"{lock} is a link, not neuralscale's lock file; remove it") from None
        raise NeuralscaleError(f"cannot use {lock.parent}: {e.strerror or e}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
            raise NeuralscaleError(busy(holder)) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield fd
    finally:
        os.close(fd)  # releases the lock
