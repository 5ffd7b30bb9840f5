"""Images as uint8 tensors, a tensor cache, and the seeded validation split."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..errors import NeuralscaleError, warn
from ..records import atomic_torch_save, is_temp
from ..validate import fraction, plain, whole
from .info import DatasetInfo

log = logging.getLogger(__name__)

CACHE_VERSION = 1


@dataclass
class ImageData:
    """A whole dataset in memory: uint8 NCHW images and int64 labels.

    `val_x`/`val_y` are set only when the dataset itself defines a validation
    set (TinyImageNet's original split); otherwise `split` carves one from the
    training set.
    """

    info: DatasetInfo
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    val_x: torch.Tensor | None = None
    val_y: torch.Tensor | None = None
    classes: list[str] = field(default_factory=list)
    digest: str | None = None  # `content_digest` of the files' images as read (None: made, not read from files)

    def tensors(self) -> dict[str, torch.Tensor]:
        out = {k: getattr(self, k) for k in ("train_x", "train_y", "test_x", "test_y", "val_x", "val_y")}
        return {k: v for k, v in out.items() if v is not None}

    def split(self, val_fraction: float = 0.1, seed: int = 0) -> "Splits":
        """Train/validation/test.  The validation set is a stratified, seeded
        `val_fraction` of the training set unless the dataset brings its own."""
        if self.val_x is not None:
            return Splits(self.info, (self.train_x, self.train_y), (self.val_x, self.val_y),
                          (self.test_x, self.test_y), self.classes, self.digest)
        fraction("validation fraction", val_fraction)
        whole("split seed", seed, low=0)
        g = torch.Generator().manual_seed(seed)
        val_idx = []
        for c in torch.unique(self.train_y):
            idx = torch.nonzero(self.train_y == c).flatten()
            idx = idx[torch.randperm(len(idx), generator=g)]
            val_idx.append(idx[: int(round(len(idx) * val_fraction))])
        val_idx = torch.cat(val_idx).sort().values
        if val_fraction > 0 and len(val_idx) == 0:  # (a tiny image folder: said as it happens, not by a report)
            warn(f"{self.info.name}: a validation fraction of {val_fraction:g} of {len(self.train_y):,} training "
                 "images holds none (it rounds to 0 in every class): nothing is selected on a validation split; "
                 "give more images or a larger fraction")
        mask = torch.ones(len(self.train_y), dtype=torch.bool)
        mask[val_idx] = False
        return Splits(self.info, (self.train_x[mask], self.train_y[mask]),
                      (self.train_x[val_idx], self.train_y[val_idx]), (self.test_x, self.test_y), self.classes,
                      self.digest)


@dataclass
class Splits:
    info: DatasetInfo
    train: tuple[torch.Tensor, torch.Tensor]
    val: tuple[torch.Tensor, torch.Tensor]
    test: tuple[torch.Tensor, torch.Tensor]
    classes: list[str] = field(default_factory=list)
    digest: str | None = None  # of the whole dataset they were cut from (`ImageData.digest`)

    def subset(self, train: int | None = None, test: int | None = None, seed: int = 0) -> "Splits":
        """A seeded random subset of each part (for quick runs and demos)."""
        train, test, seed = plain(train), plain(test), plain(seed)  # (a notebook's NumPy numbers)
        whole("a train subset", train)
        whole("a test subset", test)
        whole("a subset's seed", seed, low=0)
        g = torch.Generator().manual_seed(seed)

        def take(xy, n):
            if n is None or n >= len(xy[1]):
                return xy
            idx = torch.randperm(len(xy[1]), generator=g)[:n].sort().values
            return xy[0][idx], xy[1][idx]
        val_n = None if train is None else max(1, int(round(train * len(self.val[1]) / max(1, len(self.train[1])))))
        return Splits(self.info, take(self.train, train), take(self.val, val_n), take(self.test, test), self.classes,
                      self.digest)

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train[1]), "val": len(self.val[1]), "test": len(self.test[1])}

    def content(self) -> str:
        """These splits' own images, labels and classes, hashed (`content_digest`): two subsets of one dataset of the
        same sizes differ here, where `identity` (the sizes and the whole dataset's digest) does not."""
        def plain_bytes(t: torch.Tensor) -> torch.Tensor:  # (NumPy reads no GPU's tensor and no bfloat16)
            t = t.detach().cpu()
            return t.view(torch.int16) if t.dtype == torch.bfloat16 else t
        return content_digest({"train_x": plain_bytes(self.train[0]), "train_y": plain_bytes(self.train[1]),
                               "val_x": plain_bytes(self.val[0]), "val_y": plain_bytes(self.val[1]),
                               "test_x": plain_bytes(self.test[0]), "test_y": plain_bytes(self.test[1]),
                               "classes": list(self.classes)})

    def identity(self) -> dict:
        """What a run's record and checkpoint say of the data it trained on (their "data"): the parts' sizes and,
        where the images were read from files, the dataset's digest (an image replaced, not added, changes only
        that). `same_data` compares two."""
        return {**self.sizes(), **({"digest": self.digest} if self.digest is not None else {})}


def same_data(then: dict, now: dict) -> bool:
    """Whether two `Splits.identity()` (or `store.data_counts`) say the same data: every entry both have is equal
    (a record from before digests were recorded has none to compare)."""
    return all(then[k] == now[k] for k in then.keys() & now.keys())


def content_digest(tensors: dict) -> str:
    """A dataset's images, labels and class names as read, hashed (SHA-256, its first 16 hex digits): the same
    files read the same way give the same digest on any machine; an image replaced by another changes it. About
    0.03 s for Fashion-MNIST, 0.7 s for TinyImageNet (computed when its tensor cache is written, kept there)."""
    h = hashlib.sha256()
    for key in ("train_x", "train_y", "val_x", "val_y", "test_x", "test_y"):
        t = tensors.get(key)
        if t is None:
            continue
        t = t.contiguous()
        h.update(json.dumps([key, str(t.dtype), list(t.shape)]).encode())
        h.update(memoryview(t.numpy()).cast("B") if t.numel() else b"")
    h.update(json.dumps(list(tensors.get("classes", []))).encode())
    return h.hexdigest()[:16]


def cache_dir() -> Path:
    """NEURALSCALE_CACHE, or ~/.cache/neuralscale where it is unset or empty (an empty one is not the current
    folder)."""
    return Path(os.environ.get("NEURALSCALE_CACHE") or Path.home() / ".cache" / "neuralscale")


def fingerprint(paths: list[Path], extra: dict | None = None) -> str:
    """A key that changes when any source file (size, modification time to the nanosecond) or option changes.
    A folder stands for every file beneath it: a file replaced, added or removed deep inside changes the key (a
    folder's own time changes only with the entries directly in it)."""
    parts = []
    for p in sorted(paths):
        st = p.stat()
        parts.append([str(p.resolve()), st.st_size, st.st_mtime_ns])
        if p.is_dir():
            parts += _files_under(str(p))
    blob = json.dumps([CACHE_VERSION, parts, extra or {}], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def _files_under(top: str, rel: str = "", above: frozenset = frozenset()) -> list:
    """[path under the folder, size, modification time] of every file beneath `top`, in a fixed order (links to
    folders followed, as the readers follow them, except into a folder above: a loop; a dangling link stands as
    itself; TinyImageNet's 100,000 training images take about 0.3-0.5 s: benchmarks/cache_key.py)."""
    above = above | {os.path.realpath(top)}
    with os.scandir(top) as it:
        entries = sorted(it, key=lambda e: e.name)
    found = []
    for e in entries:
        if e.is_dir() and (not e.is_symlink() or os.path.realpath(e.path) not in above):
            found += _files_under(e.path, f"{rel}{e.name}/", above)
            continue
        try:
            st = e.stat()
        except OSError:
            st = e.stat(follow_symlinks=False)
        found.append([rel + e.name, st.st_size, st.st_mtime_ns])
    return found


def tensor_problem(info: DatasetInfo, t, need_test: bool = True) -> str:
    """What is wrong with a dataset's tensors for `info` ('' when nothing): every part there, uint8 images of
    its channels and size, one integer label per image, each a class of it, and images to train and test on."""
    if not isinstance(t, dict):
        return "not a table of tensors"
    parts = ["train", "test"] + (["val"] if t.get("val_x") is not None or t.get("val_y") is not None else [])
    shape = (info.in_channels, info.resolution, info.resolution)
    for part in parts:
        x, y = t.get(f"{part}_x"), t.get(f"{part}_y")
        if not (isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor)):
            return f"its {part} images or labels are missing"
        if len(x) == 0 and len(y) == 0:
            continue  # an empty part has no size to check (train and test may not be empty: below)
        if x.dtype != torch.uint8 or x.dim() != 4 or tuple(x.shape[1:]) != shape:
            return (f"its {part} images are {tuple(x.shape[1:]) if x.dim() == 4 else tuple(x.shape)} "
                    f"{str(x.dtype).removeprefix('torch.')}, not {info.name}'s {shape[0]}x{shape[1]}x{shape[2]} uint8")
        if y.dtype != torch.int64 or y.dim() != 1 or len(y) != len(x):
            return (f"its {part} labels are not one integer per image ({len(x)} images, labels of shape "
                    f"{tuple(y.shape)})")
        if len(y) and (int(y.min()) < 0 or int(y.max()) >= info.num_classes):
            bad = int(y.min()) if int(y.min()) < 0 else int(y.max())
            return f"its {part} labels include {bad}, outside {info.name}'s classes 0-{info.num_classes - 1}"
    for part in ("train", "test") if need_test else ("train",):
        if len(t[f"{part}_y"]) == 0:
            return f"it holds no {part} images"
    return ""


def load_cached(name: str, key: str) -> dict[str, torch.Tensor] | None:
    path = cache_dir() / "tensors" / f"{name}-{key}.pt"
    if not path.exists():
        return None
    try:
        tensors = torch.load(path, weights_only=True)
    except Exception:  # a damaged cache is rebuilt, never trusted
        drop_cached(name, key)
        return None
    try:
        os.utime(path)  # used now: the version drop_versions keeps
    except OSError:
        pass  # a read-only cache
    return tensors


def drop_cached(name: str, key: str) -> None:
    try:
        (cache_dir() / "tensors" / f"{name}-{key}.pt").unlink(missing_ok=True)
    except OSError:
        pass  # a read-only cache: rebuilt in memory each time


STALE_TEMP_S = 3600  # a tensor cache's temporary file this old is a killed writer's (drop_versions)


def drop_versions(name: str, key: str, names: tuple[str, ...] = (), keep: int = 1) -> None:
    """Remove the tensor caches of `name` under keys other than `key` but the `keep` used last (load_cached
    touches what it loads), and those of `names` under any key: an image folder's earlier versions (one file each,
    as large as its images, kept for good); one other is kept for two copies of a folder at one path (two machines
    sharing a cache folder), which would otherwise read their images again at every turn."""
    folder = cache_dir() / "tensors"
    ours = re.compile(re.escape(name) + r"-[0-9a-f]{20}\.pt")
    theirs = re.compile("(?:" + "|".join(re.escape(n) for n in names) + r")-[0-9a-f]{20}\.pt") if names else None
    current = f"{name}-{key}.pt"
    try:
        others = [p for p in folder.iterdir() if p.name != current and not p.name.startswith(f".{current}.")]
        found = sorted(((p.stat().st_mtime, p) for p in others if ours.fullmatch(p.name)), reverse=True)
        gone = [p for _, p in found[keep:]] + [p for p in others if theirs is not None and theirs.fullmatch(p.name)]
        # a killed write's temporary file of another version (save_cached clears its own key's), once no writer
        # of that version can be at work on it
        gone += [p for p in others if is_temp(p.name) and ours.match(p.name[1:])
                 and time.time() - p.stat().st_mtime > STALE_TEMP_S]
        for p in gone:
            p.unlink(missing_ok=True)
            log.info("removed %s (the tensor cache of an earlier version of the data)", p)
    except OSError:
        pass  # a cache folder that cannot be listed or changed: it only keeps what it holds


def save_cached(name: str, key: str, tensors: dict) -> None:
    path = cache_dir() / "tensors" / f"{name}-{key}.pt"
    try:
        atomic_torch_save(tensors, path)
        for stale in path.parent.glob(f".{path.name}.*"):  # a killed writer's (tens of MB each); a writer
            if is_temp(stale.name):  # of the same tensors now only loses its write (the cache is there)
                stale.unlink(missing_ok=True)
    except (OSError, NeuralscaleError) as e:  # a cache that cannot be written only costs speed
        if path.exists():  # another command wrote these tensors as this one did (and took its temporary file)
            return
        log.warning("the tensor cache is not written (%s); set NEURALSCALE_CACHE to a writable folder to keep "
                    "decoded data between commands", e)
