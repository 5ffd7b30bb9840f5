"""Datasets: names, metadata, and loading into uint8 tensors (cached)."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import NeuralscaleError
from .base import ImageData, Splits, fingerprint, load_cached, save_cached
from .info import KNOWN, DatasetInfo

DATASET_NAMES = tuple(KNOWN) + ("imagefolder:PATH",)


def _key(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "")


def dataset_info(name: str, data_dir: str | Path | None = None) -> DatasetInfo:
    """Metadata of a dataset by name, without reading its images."""
    if name.startswith("imagefolder:"):
        from .imagefolder import imagefolder_info
        return imagefolder_info(name.split(":", 1)[1])
    if _key(name) in KNOWN:
        return KNOWN[_key(name)]
    raise NeuralscaleError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASET_NAMES)}")


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
    key = _key(name)

    if key == "synthetic":
        from . import synthetic as syn
        return _wrap(info, syn.make(**(synthetic or {})))

    if key in ("cifar10", "cifar100"):
        from . import cifar
        src = cifar.locate(key, data_dir)
        if src is None:
            src = _download_or_fail(name, data_dir, cifar.SOURCES[key]["url"], cifar.SOURCES[key]["archive"],
                                    cifar.SOURCES[key]["md5"], download,
                                    f"{cifar.SOURCES[key]['archive']} or {cifar.SOURCES[key]['folder']}/")
        return _cached(info, [src], {}, lambda: cifar.read(key, src))

    if key == "fashionmnist":
        from . import fashionmnist as fm
        files = fm.locate(data_dir)
        if files is None:
            if not download:
                raise NeuralscaleError(
                    f"Fashion-MNIST not found in {data_dir} or {fm.SYSTEM_DIR}; "
                    "install Debian's dataset-fashion-mnist or put the four IDX files in --data-dir")
            target = data_dir / "fashion-mnist"
            for stem, md5 in fm.FILES.values():
                if not (target / (stem + ".gz")).exists():
                    _fetch(name, data_dir, fm.URL + stem + ".gz", target / (stem + ".gz"), md5,
                           "the four IDX files; install Debian's dataset-fashion-mnist or put them in --data-dir")
            files = fm.locate(data_dir)
        return _cached(info, list(files.values()), {}, lambda: fm.read(files))

    if key == "tinyimagenet":
        from . import tinyimagenet as tin
        src = tin.locate(data_dir)
        if src is None:
            src = _download_or_fail(name, data_dir, tin.URL, tin.ARCHIVE, tin.MD5, download,
                                    f"{tin.ARCHIVE} or {tin.FOLDER}/")
        files = [src] if src.is_file() else [src / "wnids.txt", src / "val", src / "train"]
        return _cached(info, files, {"split": tinyimagenet_split}, lambda: tin.read(src, tinyimagenet_split))

    if name.startswith("imagefolder:"):
        from . import imagefolder
        root = Path(name.split(":", 1)[1]).expanduser()
        files = [root] + [p for p in root.glob("*/*") if p.is_dir()]
        return _cached(info, files, {}, lambda: imagefolder.read(str(root)))
    raise AssertionError(name)


def _download_or_fail(name, data_dir: Path, url, archive, md5, download, looked_for) -> Path:
    if not download:
        raise NeuralscaleError(f"{name} not found in {data_dir} (looked for {looked_for}); "
                               "put it there or pass --data-dir")
    return _fetch(name, data_dir, url, data_dir / archive, md5, looked_for)


def _fetch(name, data_dir: Path, url, dest: Path, md5, looked_for: str) -> Path:
    from .download import DownloadError, fetch
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
