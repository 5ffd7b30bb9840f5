"""CIFAR-10 and CIFAR-100 in the upstream "python version" format.

Either the archive (`cifar-10-python.tar.gz`, `cifar-100-python.tar.gz`) or the
folder it extracts to (`cifar-10-batches-py/`, `cifar-100-python/`) in the data
directory.  The batches are Python pickles, so they are read with an
unpickler that admits only the numpy types the upstream files contain.
"""

from __future__ import annotations

import io
import pickle
import tarfile
import zlib
from pathlib import Path

import numpy as np
import torch

from ..errors import NeuralscaleError, first_line

SOURCES = {
    "cifar10": {
        "archive": "cifar-10-python.tar.gz", "folder": "cifar-10-batches-py",
        "url": "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        "md5": "c58f30108f718f92721af3b95e74349a",
        "train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"],
        "labels": b"labels", "meta": "batches.meta", "names": b"label_names",
    },
    "cifar100": {
        "archive": "cifar-100-python.tar.gz", "folder": "cifar-100-python",
        "url": "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
        "md5": "eb9058c3a382ffc7106e4002c42a8d85",
        "train": ["train"], "test": ["test"],
        "labels": b"fine_labels", "meta": "meta", "names": b"fine_label_names",
    },
}

_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"), ("_codecs", "encode"),
}


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"unexpected object {module}.{name}")
        if module.startswith("numpy.core"):
            module = module.replace("numpy.core", "numpy._core" if hasattr(np, "_core") else "numpy.core")
        return super().find_class(module, name)


def _unpickle(blob: bytes, where: str) -> dict:
    try:
        obj = _SafeUnpickler(io.BytesIO(blob), encoding="bytes").load()
    except Exception as e:
        raise NeuralscaleError(f"{where} is not a readable CIFAR batch ({e}); delete it and download again") from None
    if not isinstance(obj, dict):
        raise NeuralscaleError(f"{where} is not a CIFAR batch (no dict inside)")
    return obj


def locate(name: str, data_dir: Path) -> Path | None:
    src = SOURCES[name]
    for p in (data_dir / src["folder"], data_dir / src["archive"]):
        if p.exists():
            return p
    return None


def _blobs(name: str, path: Path, members: list[str]) -> dict[str, bytes]:
    """Each member's bytes, from the extracted folder or the archive at `path`; one line where one is missing,
    not a file, or the archive cannot be read."""
    src = SOURCES[name]
    blobs: dict[str, bytes] = {}
    if path.is_dir():
        for m in members:
            f = path / m
            if not f.exists():
                raise NeuralscaleError(f"{f} is missing; the CIFAR folder is incomplete, download it again")
            if not f.is_file():
                raise NeuralscaleError(f"{f} is not a file; the CIFAR folder is damaged, download it again")
            blobs[m] = f.read_bytes()
    else:
        try:
            with tarfile.open(path, "r:*") as tar:
                for m in members:
                    try:
                        member = tar.extractfile(f"{src['folder']}/{m}")
                    except KeyError:
                        member = None
                    if member is None:  # (extractfile gives None for a folder, a link to nothing, a device)
                        raise NeuralscaleError(f"{path} has no file {src['folder']}/{m}; it is not the {name} archive")
                    blobs[m] = member.read()
                while tar.fileobj.read(1 << 24):  # on to the stream's end, where gzip's checksum is checked (tarfile
                    pass  # stops before it: a flipped bit would decode as other pixels without a word)
        except (tarfile.TarError, EOFError, OSError, zlib.error) as e:
            reason = first_line(e, None, type(e).__name__)
            raise NeuralscaleError(f"{path} is not a readable archive ({reason}); delete it and download again") from None
    return blobs


def read(name: str, path: Path) -> dict:
    """Read train/test tensors from the archive or extracted folder at `path`."""
    src = SOURCES[name]
    members = src["train"] + src["test"] + [src["meta"]]
    blobs = _blobs(name, path, members)

    def part(files):
        xs, ys = [], []
        for m in files:
            d = _unpickle(blobs[m], f"{path}:{m}")
            try:
                data = np.asarray(d[b"data"])
                if data.size and data.dtype != np.uint8:  # upstream's are bytes: floats read as black, 300 as 44
                    raise NeuralscaleError(f"{path}:{m} is not a {name} batch: its images are {data.dtype}, not "
                                           "bytes (uint8)")
                raw = np.asarray(d[src["labels"]])
                xs.append(data.astype(np.uint8).reshape(-1, 3, 32, 32))
            except (KeyError, ValueError, TypeError) as e:
                raise NeuralscaleError(f"{path}:{m} is not a {name} batch ({e})") from None
            if raw.ndim != 1 or (raw.size and raw.dtype.kind not in "iu"):  # 1.5 would be read as class 1
                raise NeuralscaleError(f"{path}:{m} is not a {name} batch: its labels are not a list of class "
                                       "numbers")
            labels = raw.astype(np.int64)
            if len(labels) != len(xs[-1]):
                raise NeuralscaleError(f"{path}:{m} has {len(xs[-1])} images but {len(labels)} labels")
            ys.append(labels)
        return torch.from_numpy(np.concatenate(xs)), torch.from_numpy(np.concatenate(ys))

    train_x, train_y = part(src["train"])
    test_x, test_y = part(src["test"])
    meta = _unpickle(blobs[src["meta"]], f"{path}:{src['meta']}")
    names = meta.get(src["names"], [])
    if not isinstance(names, (list, tuple)):
        raise NeuralscaleError(f"{path}:{src['meta']} is not {name}'s meta file: its class names are not a list")
    classes = [n.decode(errors="replace") if isinstance(n, bytes) else str(n) for n in names]
    count = 10 if name == "cifar10" else 100
    if len(classes) != count or len(set(classes)) != count:  # exports name each class index by them
        raise NeuralscaleError(f"{path}:{src['meta']} is not {name}'s meta file: it names {len(set(classes))} "
                               f"different classes of {len(classes)}, not {count}")
    return {"train_x": train_x, "train_y": train_y, "test_x": test_x, "test_y": test_y, "classes": classes}
