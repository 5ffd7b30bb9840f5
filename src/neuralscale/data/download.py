"""Fetching upstream archives, with checksums, for users who are online."""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

from ..errors import NeuralscaleError


class DownloadError(NeuralscaleError):
    """The file could not be fetched or did not match its checksum."""


def md5sum(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def fetch(url: str, dest: Path, md5: str | None = None) -> Path:
    """Download `url` to `dest` (atomically) and verify its MD5."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=60) as r, open(tmp, "wb") as f:
            total = int(r.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=f"download {dest.name}",
                      disable=None, leave=False) as bar:
                while block := r.read(1 << 20):
                    f.write(block)
                    bar.update(len(block))
    except (urllib.error.URLError, OSError, ValueError) as e:
        tmp.unlink(missing_ok=True)
        raise DownloadError(f"{url}: {getattr(e, 'reason', e)}") from None
    if md5 is not None and (got := md5sum(tmp)) != md5:
        tmp.unlink(missing_ok=True)
        raise DownloadError(f"{url}: checksum mismatch, expected md5 {md5}, got {got}")
    os.replace(tmp, dest)
    return dest
