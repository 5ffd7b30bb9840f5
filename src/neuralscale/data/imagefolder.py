"""Any dataset laid out as class folders: ROOT/train/<class>/*.png and ROOT/test/<class>/*
(or ROOT/val/).  Images are decoded to RGB and resized to squares whose side is the
first training image's longer side (a non-square image is stretched, not cropped), so
mixed sizes are read (said where most images are of another size than the first)."""

from __future__ import annotations

import logging
import os
from collections import Counter
from pathlib import Path

import torch
from tqdm import tqdm

from ..errors import NeuralscaleError
from ..memory import refuse_beyond
from .images import EXTENSIONS, decode, image_size, stack
from .info import DatasetInfo

log = logging.getLogger(__name__)


def _split_dir(root: Path, names: tuple[str, ...]) -> Path | None:
    for n in names:
        if (root / n).is_dir():
            return root / n
    return None


def _classes(train_dir: Path) -> list[str]:
    return sorted(p.name for p in train_dir.iterdir() if p.is_dir() and not p.name.startswith("."))


def _hidden(p: Path, root: Path) -> bool:
    """Under a name that starts with a dot, as file browsers hide it (Jupyter's .ipynb_checkpoints/, macOS's ._*
    stubs): not the user's images, so neither a class nor an image."""
    return any(part.startswith(".") for part in p.relative_to(root).parts)


def _files(d: Path) -> list[Path]:
    return sorted(_walk(d))


def _walk(d: Path):
    """The images under a class folder, links to folders followed as the tensor cache's key follows them
    (base.fingerprint; rglob did not follow them, and a linked folder's images were left out without a word),
    except into a folder walked already or one above it (a loop); a link into the dataset's other folders (another
    class's, the test images) is refused; hidden files and folders left out."""
    seen, start, root = set(), os.path.realpath(d), os.path.realpath(d.parent.parent)
    for top, dirs, names in os.walk(d, followlinks=True):
        real = os.path.realpath(top)
        if real in seen or start.startswith(real + os.sep):
            dirs[:] = []
            continue
        if real.startswith(root + os.sep) and real != start and not real.startswith(start + os.sep):
            raise NeuralscaleError(f"{top} links to {real}, inside the image folder but outside its class folder "
                                   f"{d}: its images would be read under two classes, or a test image trained on; "
                                   "remove the link")
        seen.add(real)
        dirs[:] = sorted(n for n in dirs if not n.startswith("."))
        for n in names:
            p = Path(top) / n
            if p.suffix.lower() in EXTENSIONS and not n.startswith(".") and p.is_file():
                yield p


def _any_image(d: Path) -> bool:
    """Whether a class folder holds an image (the first one found ends the search)."""
    return next(_walk(d), None) is not None


def _layout(root: str) -> tuple[Path, Path, Path, list[str]]:
    path = Path(root).expanduser()
    if not path.is_dir():
        raise NeuralscaleError(f"image folder {path} " + ("is a file, not a folder" if path.exists() else
                                                          "does not exist" + (f" here ({Path.cwd()}: a relative name "
                                                                              "is read from where the command runs)"
                                                                              if not path.is_absolute() else "")))
    train = _split_dir(path, ("train",))
    test = _split_dir(path, ("test", "val", "valid", "validation"))
    if train is None or test is None:
        raise NeuralscaleError(f"image folder {path} needs train/<class>/ and test/<class>/ (or val/) subfolders")
    classes = _classes(train)
    if not classes:
        raise NeuralscaleError(f"{train} has no class folders")
    if len(classes) < 2:
        raise NeuralscaleError(f"{train} has one class folder ({classes[0]}); a classifier needs two or more")
    return path, train, test, classes


def imagefolder_info(root: str) -> DatasetInfo:
    path, train, _, classes = _layout(root)
    first = next((f for c in classes for f in _files(train / c)), None)
    if first is None:
        raise NeuralscaleError(f"{train} holds no images ({', '.join(EXTENSIONS)})")
    empty = next((c for c in classes if not _any_image(train / c)), None)
    if empty is not None:  # (as reading it says: `info` counted it a class, of a network with one output too many)
        raise NeuralscaleError(f"{train / empty} holds no images ({', '.join(EXTENSIONS)}); fill it or remove it")
    return DatasetInfo(f"imagefolder:{path}", len(classes), 3, image_size(first.read_bytes(), str(first)))


def read(root: str) -> dict:
    info = imagefolder_info(root)
    _, train, test, classes = _layout(root)
    out = {"classes": classes}
    parts = {}
    for part, d in (("train", train), ("test", test)):
        items = []
        for i, c in enumerate(classes):
            if (d / c).is_dir():
                items += [(f, i) for f in _files(d / c)]
        unknown = sorted({p.name for p in d.iterdir() if p.is_dir() and not _hidden(p, d)} - set(classes))
        if unknown:
            raise NeuralscaleError(f"{d} has class folders not in train/: {', '.join(unknown[:5])}")
        if not items:
            raise NeuralscaleError(f"{d} holds no images")
        seen = {y for _, y in items}
        empty = [c for i, c in enumerate(classes) if part == "train" and i not in seen]
        if empty:  # a class the network would never see trained
            raise NeuralscaleError(f"{d / empty[0]} holds no images ({', '.join(EXTENSIONS)}); fill it or remove it")
        parts[part] = items
    _check_memory(root, sum(map(len, parts.values())), info.resolution)
    sizes: Counter = Counter()  # longer side -> images
    for part, items in parts.items():
        xs = []
        for f, _ in tqdm(items, desc=f"{part} images", disable=None, leave=False):
            blob = f.read_bytes()
            sizes[image_size(blob, str(f))] += 1
            xs.append(decode(blob, info.resolution, str(f)))
        out[f"{part}_x"] = stack(xs)
        out[f"{part}_y"] = torch.tensor([y for _, y in items], dtype=torch.int64)
    _say_sizes(root, sizes, info.resolution, next(f for f, _ in parts["train"]))
    return out


def _say_sizes(root: str, sizes: Counter, resolution: int, first: Path) -> None:
    """Images of several sizes are all resized to the first training image's: said where most are of another size
    (one large image sorted first made every image 200 px, and training a hundred times slower, without a word)."""
    common, most = sizes.most_common(1)[0]
    if common != resolution and most > sizes[resolution]:
        log.warning("warning: image folder %s: its images are resized to %dx%d px, the size of the first training "
                    "image (%s), while %d of its %d images are %d px on their longer side; resize them to one size "
                    "first (or make the first image that size)", root, resolution, resolution, first.name, most,
                    sum(sizes.values()), common)


def _check_memory(root: str, images: int, resolution: int) -> None:
    """Every image is decoded at the first training image's size and held in memory (twice while they are
    stacked): a folder of phone photos (4000 px) would exhaust it, so it is refused first."""
    refuse_beyond(images * 3 * resolution * resolution, 1 / 3,
                  f"image folder {root}: {images:,} images decoded at {resolution}x{resolution} px (the first "
                  "training image's size)", "resize them first (e.g. to 224 px)")
