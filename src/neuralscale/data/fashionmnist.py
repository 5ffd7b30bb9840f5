"""Fashion-MNIST from the upstream IDX files (gzipped or not).

Looked for in the data directory (also its `fashion-mnist/` and torchvision's
`FashionMNIST/raw/`), then in /usr/share/datasets/fashion-mnist, where Debian's
`dataset-fashion-mnist` package puts them.  The 28x28 images are zero-padded to
32x32 so that every model family's pooling fits.
"""

from __future__ import annotations

import gzip
import math
import zlib
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import NeuralscaleError

FILES = {
    "train_x": ("train-images-idx3-ubyte", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
    "train_y": ("train-labels-idx1-ubyte", "25c81989df183df01b3e8a0aad5dffbe"),
    "test_x": ("t10k-images-idx3-ubyte", "bef4ecab320f06d8554ea6380940ec79"),
    "test_y": ("t10k-labels-idx1-ubyte", "bb300cfdad3c16e7a12a480ee83cd310"),
}
URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def candidate_dirs(data_dir: Path) -> list[Path]:
    return [data_dir, data_dir / "fashion-mnist", data_dir / "FashionMNIST" / "raw", SYSTEM_DIR]


def locate(data_dir: Path) -> dict[str, Path] | None:
    """The four files, all from one directory, or None."""
    for d in candidate_dirs(data_dir):
        found = {}
        for key, (stem, _) in FILES.items():
            for name in (stem + ".gz", stem):
                if (d / name).exists():
                    found[key] = d / name
                    break
        if len(found) == 4:
            return found
        if found and d == data_dir / "fashion-mnist":
            continue  # where a download puts them: an installed copy, or else the download, resumes there
        if found:  # not another folder's files instead, without a word
            missing = [FILES[k][0] for k in FILES if k not in found]
            raise NeuralscaleError(f"{d} holds {len(found)} of Fashion-MNIST's four IDX files (missing: "
                                   f"{', '.join(missing)}); put the others there, or remove these")
    return None


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (unsigned bytes) as a numpy array, with its header checked."""
    try:
        raw = gzip.open(path).read() if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, zlib.error) as e:  # zlib: a damaged deflate stream before its checksum is reached
        raise NeuralscaleError(f"{path} cannot be read ({e}); delete it and download it again") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise NeuralscaleError(f"{path} is not an IDX file of unsigned bytes (bad magic number)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    if not 1 <= ndim <= 3 or len(raw) != header + math.prod(dims):  # math.prod: numpy's wraps to 0 past 2**64
        raise NeuralscaleError(f"{path} is truncated or corrupt: header says {dims}, "
                               f"file has {len(raw) - header} bytes of data")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def read(files: dict[str, Path]) -> dict:
    arrays = {k: read_idx(p) for k, p in files.items()}
    out = {}
    for part in ("train", "test"):
        x, y = arrays[f"{part}_x"], arrays[f"{part}_y"]
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise NeuralscaleError(f"{files[part + '_x']} and {files[part + '_y']} do not match: "
                                   f"images {x.shape}, labels {y.shape}")
        if y.max(initial=0) >= len(CLASSES):
            raise NeuralscaleError(f"{files[part + '_y']} has labels outside 0-9")
        if x.shape[1:] not in ((28, 28), (32, 32)):  # 32x32: already padded as it is read (below)
            raise NeuralscaleError(f"{files[part + '_x']} holds {x.shape[1]}x{x.shape[2]} images; Fashion-MNIST's "
                                   "are 28x28")
        t = torch.from_numpy(x.copy()).unsqueeze(1)
        out[f"{part}_x"] = F.pad(t, (2, 2, 2, 2)) if t.shape[-1] == 28 else t
        out[f"{part}_y"] = torch.from_numpy(y.astype(np.int64))
    out["classes"] = CLASSES
    return out
