"""TinyImageNet (200 classes, 64x64) from the official zip or its extracted folder.

The official layout keeps validation images in one folder with their labels
in `val/val_annotations.txt`; this reader handles that directly (and also a
validation folder already sorted into class folders).  The official test
images have no labels and are not used.

Splits: `official` (default) tests on the 50 official validation images per
class and carves validation from the training set; `original` splits as the
NeuralScale code does: the official validation images of each class, in
file-name order, give the first 25 to validation and the last 25 to test (the
original's halves followed its file system's listing order, which no rule fixes).
"""

from __future__ import annotations

import re
import zipfile
import zlib
from collections import Counter
from pathlib import Path

import torch
from tqdm import tqdm

from ..errors import NeuralscaleError, first_line
from .images import decode, stack

URL = "http://cs231n.stanford.edu/tiny-imagenet-200.zip"
MD5 = "90528d7ca1a48142e341f4ef8d21d0de"
ARCHIVE, FOLDER = "tiny-imagenet-200.zip", "tiny-imagenet-200"
SPLITS = ("official", "original")


def locate(data_dir: Path) -> Path | None:
    for p in (data_dir / FOLDER, data_dir / ARCHIVE):
        if p.exists():
            return p
    return None


class _Tree:
    """Uniform read access to the zip or the folder, paths relative to tiny-imagenet-200/."""

    def __init__(self, path: Path):
        self.path = path
        if path.is_dir():
            self.zip = None
            self.names = [p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()]
        else:
            try:
                self.zip = zipfile.ZipFile(path)
            except (zipfile.BadZipFile, OSError) as e:
                raise NeuralscaleError(f"{path} is not a readable zip archive ({e}); delete it and download again") from None
            prefix = FOLDER + "/"
            self.names = [n[len(prefix):] for n in self.zip.namelist() if n.startswith(prefix) and not n.endswith("/")]
        self.name_set = set(self.names)

    def read(self, rel: str) -> bytes:
        try:
            if self.zip is None:
                return (self.path / rel).read_bytes()
            return self.zip.read(f"{FOLDER}/{rel}")
        except (KeyError, OSError, zipfile.BadZipFile, zlib.error, EOFError, RuntimeError, NotImplementedError) as e:
            # (zlib: a damaged stream; RuntimeError: an encrypted member; NotImplementedError: an unknown compression)
            raise NeuralscaleError(f"{self.path}: cannot read {rel} ({first_line(e, None, type(e).__name__)})") from None

    def text(self, rel: str) -> str:
        try:
            return self.read(rel).decode()
        except UnicodeDecodeError:
            raise NeuralscaleError(f"{self.path}: {rel} is not text (UTF-8)") from None


def _index(name: str) -> int:
    m = re.search(r"(\d+)\.\w+$", name)
    return int(m.group(1)) if m else 0


def read(path: Path, split: str = "official") -> dict:
    if split not in SPLITS:
        raise NeuralscaleError(f"unknown TinyImageNet split {split!r}; choose one of: {', '.join(SPLITS)}")
    tree = _Tree(path)
    if "wnids.txt" not in tree.name_set:
        raise NeuralscaleError(f"{path} has no {FOLDER}/wnids.txt; it is not the TinyImageNet dataset")
    wnids = [w.strip() for w in tree.text("wnids.txt").split() if w.strip()]
    if len(wnids) != len(set(wnids)) or len(wnids) > 200:
        raise NeuralscaleError(f"{path}: wnids.txt names {len(wnids)} classes ({len(set(wnids))} distinct); "
                               "TinyImageNet has 200")
    label = {w: i for i, w in enumerate(wnids)}

    train = sorted((n for n in tree.names if n.startswith("train/") and n.lower().endswith(".jpeg")))
    train_items = [(n, label[n.split("/")[1]]) for n in train if n.split("/")[1] in label]

    if "val/val_annotations.txt" in tree.name_set:
        val_items = []
        for line in tree.text("val/val_annotations.txt").splitlines():
            parts = line.split("\t")
            if len(parts) < 2:
                if line.strip():  # upstream's lines are tab-separated: one with spaces would be dropped silently
                    raise NeuralscaleError(f"{path}: val_annotations.txt has a line that is not tab-separated: "
                                           f"{line.strip()[:60]!r}")
                continue
            if parts[1] not in label:
                raise NeuralscaleError(f"{path}: val_annotations.txt names unknown class {parts[1]!r}")
            if "/" in parts[0] or "\\" in parts[0] or parts[0] in ("", ".", ".."):  # upstream: a bare file name
                raise NeuralscaleError(f"{path}: val_annotations.txt names {parts[0]!r}, not an image of val/images")
            val_items.append((f"val/images/{parts[0]}", label[parts[1]]))
    else:  # validation already sorted into class folders
        val_items = [(n, label[n.split("/")[1]]) for n in tree.names
                     if n.startswith("val/") and n.lower().endswith(".jpeg") and n.split("/")[1] in label]
    if not train_items or not val_items:
        raise NeuralscaleError(f"{path} has no training or no validation images; the dataset is incomplete")
    empty = sorted(set(wnids) - {wnids[y] for _, y in train_items})
    if empty:  # an image folder refuses the same: the class could never be learned
        more = f" ({len(empty) - 1} more)" if len(empty) > 1 else ""
        raise NeuralscaleError(f"{path}: class {empty[0]} of wnids.txt has no training images{more}; the dataset "
                               "is incomplete")
    twice = [n for n, k in Counter(n for n, _ in val_items).items() if k > 1]
    if twice:
        raise NeuralscaleError(f"{path}: the validation images list {twice[0]} twice")

    def load(items, desc):
        xs = [decode(tree.read(n), 64, f"{path}:{n}") for n, _ in tqdm(items, desc=desc, disable=None, leave=False)]
        return stack(xs), torch.tensor([y for _, y in items], dtype=torch.int64)

    train_x, train_y = load(train_items, "TinyImageNet train")
    out = {"train_x": train_x, "train_y": train_y, "classes": wnids}
    if split == "official":
        out["test_x"], out["test_y"] = load(val_items, "TinyImageNet val")
    else:
        by_class: dict[int, list] = {}
        for n, y in sorted(val_items, key=lambda it: _index(it[0])):
            by_class.setdefault(y, []).append((n, y))
        first = [it for y in sorted(by_class) for it in by_class[y][: len(by_class[y]) // 2]]
        last = [it for y in sorted(by_class) for it in by_class[y][len(by_class[y]) // 2:]]
        out["val_x"], out["val_y"] = load(first, "TinyImageNet val")
        out["test_x"], out["test_y"] = load(last, "TinyImageNet test")
    return out
