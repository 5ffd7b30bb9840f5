"""Datasets: names, metadata, and loading into uint8 tensors (cached)."""

from __future__ import annotations

import hashlib
import inspect
import logging
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path

from ..errors import NeuralscaleError
from ..settings import Settings, option
from ..validate import DATA_KEYS, check_data, plain, whole
from . import cifar, fashionmnist, imagefolder, synthetic as synthetic_data, tinyimagenet
from .base import (ImageData, Splits, content_digest, drop_cached, drop_versions, fingerprint, load_cached, same_data,
                   save_cached, tensor_problem)
from .download import DownloadError, fetch
from .info import KNOWN, DatasetInfo, dataset_key

log = logging.getLogger(__name__)

DATASET_NAMES = tuple(KNOWN) + ("imagefolder:PATH",)


def dataset_info(name: str, data_dir: str | Path | None = None) -> DatasetInfo:
    """Metadata of a dataset by name, without reading its images."""
    if not isinstance(name, str):
        raise NeuralscaleError(f"a dataset is named by a string (such as 'cifar10'), not {type(name).__name__}")
    if name.startswith("imagefolder:"):
        return imagefolder.imagefolder_info(name.split(":", 1)[1])
    if dataset_key(name) in KNOWN:
        return KNOWN[dataset_key(name)]
    raise NeuralscaleError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASET_NAMES)}")


def image_folder(name) -> Path | None:
    """The folder an image folder's dataset name (`imagefolder:PATH`) names, as its DatasetInfo's name spells it
    (`imagefolder:` and this path); None for any other dataset."""
    return Path(name.split(":", 1)[1]).expanduser() if isinstance(name, str) and name.startswith("imagefolder:") \
        else None


def spelled_folder(then, now) -> str:
    """'' unless `then` and `now` are two names of image folders: then what to do about it, to be said beside a
    refusal (an image folder is the dataset its name names: `imagefolder:shapes` and the same folder by its full
    path are two datasets' names, and a name relative to another directory is another folder)."""
    a, b = image_folder(then), image_folder(now)
    if a is None or b is None or then == now:
        return ""
    same = a.exists() and b.exists() and a.resolve() == b.resolve()
    if not same and (a.is_absolute() or a.exists()):  # two folders (cats, dogs): nothing to say of names
        return ""
    return (f"; an image folder is known by the name it was given: {then} then, {now} now"
            + (" (here both name one folder)" if same else "") + f"; name it {then}, from the folder it was named "
            "in then")


def dataset_name(name: str) -> str:
    """One spelling of a known dataset, as runs record it (`Fashion-MNIST` is `fashionmnist`); an image folder's
    name, or an unknown one, as given."""
    known = KNOWN.get(dataset_key(name)) if isinstance(name, str) and image_folder(name) is None else None
    return known.name if known is not None else name


@dataclass(frozen=True)
class DataConfig(Settings):
    """Which images a command reads: the dataset, seeded subsets of train and test, the data folder and
    TinyImageNet's split.  The one owner of these settings: every door (CLI, API, sweep, experiment file) builds
    one, its `settings()` are what a record's "data" holds, and `splits` is the one way to load them.
    """

    WHAT = "data setting"

    dataset: str
    train: int | None = option(None, flag="train_subset")  # a seeded subset of this many training images
    test: int | None = option(None, flag="test_subset")  # ... of test images
    data_dir: str | None = None
    tinyimagenet_split: str = "official"  # or "original" (the NeuralScale code's; see tinyimagenet.py)

    def __post_init__(self):
        check_data({k: getattr(self, k) for k in DATA_KEYS})
        if self.tinyimagenet_split != "official" and dataset_key(str(self.dataset)) != "tinyimagenet":
            raise NeuralscaleError(f"--tinyimagenet-split is TinyImageNet's; {self.dataset} has no other split to "
                                   "take")

    @classmethod
    def from_settings(cls, dataset: str, settings: dict | None = None, data_dir: str | Path | None = None
                      ) -> "DataConfig":
        """From a record's or an experiment file's data settings ({"train", "test", "data_dir",
        "tinyimagenet_split"}, any left out); `data_dir` given here wins over the settings'."""
        d = {k: plain(v) for k, v in settings.items() if v is not None} if isinstance(settings, dict) else settings or {}
        check_data(d)
        if data_dir is not None:
            d["data_dir"] = str(data_dir)
        return cls(dataset, **d)

    def settings(self, with_dir: bool = False) -> dict:
        """The settings that say which images were read (a record's "data"): the subsets given, and the split
        when it is not the default.  The folder only `with_dir` (where the data lives is not what it is)."""
        d = {"train": self.train, "test": self.test, "tinyimagenet_split": self.tinyimagenet_split}
        if with_dir:
            d["data_dir"] = self.data_dir
        if d["tinyimagenet_split"] == "official":
            del d["tinyimagenet_split"]
        return {k: v for k, v in d.items() if v is not None}

    def splits(self, val_fraction: float = 0.1, split_seed: int = 0) -> Splits:
        """The dataset split into train / validation / test, with the seeded subsets asked for."""
        data = load(self.dataset, self.data_dir, tinyimagenet_split=self.tinyimagenet_split)
        splits = data.split(val_fraction, split_seed)
        for part, asked in (("train", self.train), ("test", self.test)):
            have = len(getattr(splits, part)[1])
            if asked is not None and asked > have:  # taken as all of them: said, not silent
                log.info("note: a %s subset of %s images asked for; %s has %s: all are used", part, f"{asked:,}",
                         self.dataset, f"{have:,}")
        if self.train is not None or self.test is not None:
            splits = splits.subset(self.train, self.test, seed=split_seed)
        return splits


def default_data_dir() -> Path:
    """NEURALSCALE_DATA, or ~/.cache/neuralscale/data where it is unset or empty (an empty one is not the current
    folder)."""
    given = os.environ.get("NEURALSCALE_DATA")
    if given and Path(given).exists() and not Path(given).is_dir():
        raise NeuralscaleError(f"NEURALSCALE_DATA={given} is not a folder; point it at one, or unset it")
    return Path(given or Path.home() / ".cache" / "neuralscale" / "data")


def load(name: str, data_dir: str | Path | None = None, *, download: bool = True,
         tinyimagenet_split: str = "official", synthetic: dict | None = None) -> ImageData:
    """Read a dataset once into uint8 tensors; later calls load the tensor cache.

    Files are looked for in `data_dir` (default $NEURALSCALE_DATA or
    ~/.cache/neuralscale/data); if missing and `download` is true, the
    upstream archive is fetched and checked against its MD5.
    """
    if data_dir is not None and not isinstance(data_dir, (str, os.PathLike)):
        raise NeuralscaleError(f"data_dir must be a folder's path, not {type(data_dir).__name__}")
    info = dataset_info(name, data_dir)
    if data_dir is not None:
        data_dir = Path(data_dir).expanduser()
        if not data_dir.is_dir():
            raise NeuralscaleError(f"data directory {data_dir} " + ("is a file, not a folder" if data_dir.exists()
                                                                     else "does not exist"))
    else:
        data_dir = default_data_dir()
    key = "imagefolder" if name.startswith("imagefolder:") else dataset_key(name)
    return _LOADERS[key](name, info, data_dir, download, tinyimagenet_split, synthetic)


def _load_synthetic(name, info, data_dir, download, split, options) -> ImageData:
    known = inspect.signature(synthetic_data.make).parameters
    options = options or {}
    if not isinstance(options, dict):
        raise NeuralscaleError(f"synthetic options are a dict (such as {{'num_train': 200}}), not "
                               f"{type(options).__name__}")
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise NeuralscaleError(f"unknown synthetic option(s) {', '.join(unknown)}; use {', '.join(known)}")
    for key, value in options.items():  # a classifier needs two classes; the rest, one of each at least
        whole(f"synthetic option {key}", value, low=2 if key == "num_classes" else 0 if key in ("seed", "num_test")
              else 1)
    # its images as asked for (classes, channels, size: the info describes them), a test part left empty if asked
    info = replace(info, **{k: options[o] for k, o in (("num_classes", "num_classes"), ("in_channels", "channels"),
                                                         ("resolution", "size")) if o in options})
    tensors = synthetic_data.make(**options)
    _check(info, tensors, info.name, need_test=False)
    return _wrap(info, tensors)


def _load_cifar(name, info, data_dir, download, split, options) -> ImageData:
    key = dataset_key(name)
    src = cifar.locate(key, data_dir)
    if src is None:
        source = cifar.SOURCES[key]
        src = _download_or_fail(name, data_dir, source["url"], source["archive"], source["md5"], download,
                                f"{source['archive']} or {source['folder']}/")
    return _cached(info, [src], {}, lambda: cifar.read(key, src))


def _load_fashionmnist(name, info, data_dir, download, split, options) -> ImageData:
    files = fashionmnist.locate(data_dir)
    if files is None:
        if not download:
            raise NeuralscaleError(f"Fashion-MNIST not found in {data_dir} or {fashionmnist.SYSTEM_DIR}; install "
                                   "Debian's dataset-fashion-mnist or put the four IDX files in --data-dir")
        target = data_dir / "fashion-mnist"
        for stem, md5 in fashionmnist.FILES.values():
            if not (target / (stem + ".gz")).exists():
                _fetch(name, data_dir, fashionmnist.URL + stem + ".gz", target / (stem + ".gz"), md5,
                       "the four IDX files; install Debian's dataset-fashion-mnist or put them in --data-dir")
        files = fashionmnist.locate(data_dir)
    return _cached(info, list(files.values()), {}, lambda: fashionmnist.read(files))


def _load_tinyimagenet(name, info, data_dir, download, split, options) -> ImageData:
    src = tinyimagenet.locate(data_dir)
    if src is None:
        src = _download_or_fail(name, data_dir, tinyimagenet.URL, tinyimagenet.ARCHIVE, tinyimagenet.MD5, download,
                                f"{tinyimagenet.ARCHIVE} or {tinyimagenet.FOLDER}/")
    files = [src] if src.is_file() else [src / "wnids.txt", src / "val", src / "train"]
    return _cached(info, files, {"split": split}, lambda: tinyimagenet.read(src, split))


def _load_imagefolder(name, info, data_dir, download, split, options) -> ImageData:
    root = Path(name.split(":", 1)[1]).expanduser()
    # the folder stands for every file in it: an image replaced in place changes the key, and the cache is rebuilt
    return _cached(info, [root], {}, lambda: imagefolder.read(str(root)), folder=root)


_LOADERS = {"synthetic": _load_synthetic, "cifar10": _load_cifar, "cifar100": _load_cifar,
            "fashionmnist": _load_fashionmnist, "tinyimagenet": _load_tinyimagenet, "imagefolder": _load_imagefolder}


def _download_or_fail(name, data_dir: Path, url, archive, md5, download, looked_for) -> Path:
    if not download:
        raise NeuralscaleError(f"{name} not found in {data_dir} (looked for {looked_for}); "
                               "put it there or pass --data-dir")
    return _fetch(name, data_dir, url, data_dir / archive, md5, looked_for)


def _fetch(name, data_dir: Path, url, dest: Path, md5, looked_for: str) -> Path:
    try:
        return fetch(url, dest, md5)
    except DownloadError as e:
        raise NeuralscaleError(f"{name} not found in {data_dir} (looked for {looked_for}) and the download "
                               f"failed: {e}; put it there or pass --data-dir") from None


def _cached(info: DatasetInfo, sources: list[Path], options: dict, read, folder: Path | None = None) -> ImageData:
    """A dataset's tensors from the tensor cache, or read and cached. `folder`: an image folder's, whose cache is
    named for the folder itself and keeps its latest version alone (each version of a folder edited by hand was
    kept, as large as its images, for good)."""
    try:  # (a folder by where it is, not how it was named: by a relative path, its full one, a link)
        key = fingerprint(sources, {"dataset": "imagefolder" if folder is not None else info.name, **options})
    except FileNotFoundError:  # a part of the dataset missing (TinyImageNet's wnids.txt): the reader's own words
        read()
        raise
    name = _cache_name(info.name)
    if folder is not None:  # one name for one folder, whatever path named it (two folders' did not collide)
        where = folder.resolve()
        name = (f"imagefolder_{re.sub(r'[^A-Za-z0-9._-]', '_', where.name)[-40:]}_"
                f"{hashlib.sha256(str(where).encode()).hexdigest()[:10]}")
    tensors = load_cached(name, key)
    if tensors is not None and tensor_problem(info, tensors):  # a cache that loads but holds other tensors:
        drop_cached(name, key)  # rebuilt, never trusted
        tensors = None
    if tensors is None:
        raw = read()
        tensors = {k: v for k, v in raw.items() if k != "classes"}
        tensors["classes"] = list(raw.get("classes", []))
        _check(info, tensors, sources[0] if len(sources) == 1 else sources[0].parent)  # the file, or its folder
        tensors["digest"] = content_digest(tensors)
        save_cached(name, key, tensors)
        if folder is not None:  # its earlier versions, and those of the names caches had before (read no more)
            drop_versions(name, key, names=(_cache_name(info.name),))
    elif not _is_digest(tensors.get("digest")):  # a cache written before digests were kept: kept from now on
        tensors["digest"] = content_digest(tensors)
        save_cached(name, key, tensors)
    return _wrap(info, tensors)


def _cache_name(dataset: str) -> str:
    """The tensor cache's name for a dataset (an image folder's before it was named for the folder itself)."""
    return dataset.replace(":", "_").replace("/", "_")[-60:]


def _is_digest(value) -> bool:
    return isinstance(value, str) and len(value) == 16 and all(c in "0123456789abcdef" for c in value)


def _check(info: DatasetInfo, tensors: dict, where, need_test: bool = True) -> None:
    problem = tensor_problem(info, tensors, need_test)
    if problem:
        raise NeuralscaleError(f"{where} is not {info.name} as neuralscale reads it: {problem}")


def _wrap(info: DatasetInfo, t: dict) -> ImageData:
    """Tensors `_check` has passed (read now, or a cache `tensor_problem` found nothing wrong with) as ImageData."""
    return ImageData(info, t["train_x"], t["train_y"], t["test_x"], t["test_y"],
                     t.get("val_x"), t.get("val_y"), list(t.get("classes", [])), t.get("digest"))


__all__ = ["DatasetInfo", "ImageData", "Splits", "same_data", "dataset_info", "load", "default_data_dir",
           "DATASET_NAMES"]
