"""Datasets: names, metadata, and loading into uint8 tensors (cached)."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import NeuralscaleError
from . import cifar, fashionmnist, imagefolder, synthetic as synthetic_data, tinyimagenet
from .base import ImageData, Splits, fingerprint, load_cached, save_cached
from .download import DownloadError, fetch
from .info import KNOWN, DatasetInfo

DATASET_NAMES = tuple(KNOWN) + ("imagefolder:PATH",)


def _key(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "")


def dataset_info(name: str, data_dir: str | Path | None = None) -> DatasetInfo:
    """Metadata of a dataset by name, without reading its images."""
    if name.startswith("imagefolder:"):
        return imagefolder.imagefolder_info(name.split(":", 1)[1])
    if _key(name) in KNOWN:
        return KNOWN[_key(name)]
    raise NeuralscaleError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASET_NAMES)}")


def load_splits(name: str, *, val_fraction: float = 0.1, split_seed: int = 0, data_dir: str | Path | None = None,
                subset: dict | None = None, tinyimagenet_split: str = "official") -> Splits:
    """A dataset split into train / validation / test, with seeded subsets of train and test if asked."""
    splits = load(name, data_dir, tinyimagenet_split=tinyimagenet_split).split(val_fraction, split_seed)
    if subset and (subset.get("train") is not None or subset.get("test") is not None):
        splits = splits.subset(subset.get("train"), subset.get("test"), seed=split_seed)
    return splits


def default_data_dir() -> Path:
    return Path(os.environ.get("NEURALSCALE_DATA", Path.home() / ".cache" / "neuralscale" / "data"))


def load(name: str, data_dir: str | Path | None = None, *, download: bool = True,
         tinyimagenet_split: str = "official", synthetic: dict | None = None) -> ImageData:
    """Read a dataset once into uint8 tensors; later calls load the tensor cache.

    Files are looked for in `data_dir` (default $NEURALSCALE_DATA or
    ~/.cache/neuralscale/data); if missing and `download` is true, the
    upstream archive is fetched and checked against its MD5.
    """
    info = dataset_info(name, data_dir)
    if data_dir is not None:
        data_dir = Path(data_dir).expanduser()
        if not data_dir.is_dir():
            raise NeuralscaleError(f"data directory {data_dir} does not exist")
    else:
        data_dir = default_data_dir()
    key = "imagefolder" if name.startswith("imagefolder:") else _key(name)
    return _LOADERS[key](name, info, data_dir, download, tinyimagenet_split, synthetic)


def _load_synthetic(name, info, data_dir, download, split, options) -> ImageData:
    return _wrap(info, synthetic_data.make(**(options or {})))


def _load_cifar(name, info, data_dir, download, split, options) -> ImageData:
    key = _key(name)
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
    files = [root] + [p for p in root.glob("*/*") if p.is_dir()]
    return _cached(info, files, {}, lambda: imagefolder.read(str(root)))


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


def _cached(info: DatasetInfo, sources: list[Path], options: dict, read) -> ImageData:
    key = fingerprint(sources, {"dataset": info.name, **options})
    name = info.name.replace(":", "_").replace("/", "_")[-60:]
    tensors = load_cached(name, key)
    if tensors is None:
        raw = read()
        tensors = {k: v for k, v in raw.items() if k != "classes"}
        tensors["classes"] = list(raw.get("classes", []))
        save_cached(name, key, tensors)
    return _wrap(info, tensors)


def _wrap(info: DatasetInfo, t: dict) -> ImageData:
    return ImageData(info, t["train_x"], t["train_y"], t["test_x"], t["test_y"],
                     t.get("val_x"), t.get("val_y"), list(t.get("classes", [])))


__all__ = ["DatasetInfo", "ImageData", "Splits", "dataset_info", "load", "default_data_dir", "DATASET_NAMES"]
