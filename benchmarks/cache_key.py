"""What keying a dataset's tensor cache costs for an extracted folder: every file beneath it (path, size, time).

TinyImageNet's extracted training set has 100,000 images in 200 class folders; this writes that many empty files
in a temporary folder of the same shape and times `data.base.fingerprint` over it (median of the rounds, after one
untimed round), beside a pathlib listing of the same files (`Path.rglob` + `stat`, the first way written, not kept).

    python benchmarks/cache_key.py [--classes 200] [--per-class 500] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from neuralscale.data.base import fingerprint


def _pathlib(root: Path) -> list:
    return [[str(f.relative_to(root)), st.st_size, st.st_mtime_ns]
            for f in sorted(root.rglob("*")) if f.is_file() for st in [f.stat()]]


def _median(fn, rounds: int) -> float:
    fn()
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--classes", type=int, default=200)
    ap.add_argument("--per-class", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        train = Path(tmp) / "train"
        for c in range(a.classes):
            d = train / f"n{c:08d}" / "images"
            d.mkdir(parents=True)
            for i in range(a.per_class):
                (d / f"n{c:08d}_{i}.JPEG").touch()
        n = a.classes * a.per_class
        ours = _median(lambda: fingerprint([train]), a.rounds)
        plain = _median(lambda: _pathlib(train), a.rounds)
        print(f"{n:,} files: fingerprint (os.scandir) {ours:.3f} s; pathlib listing {plain:.3f} s; "
              f"ratio {plain / ours:.2f}x")


if __name__ == "__main__":
    main()
