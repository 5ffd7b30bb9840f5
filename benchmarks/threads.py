"""The trainer's CPU threads, quiet and beside another CPU-bound process, side by side in one run (issue 31).

Three settings of the same trainer (VGG11 at --ratio on 32x32 single-channel images, Fashion-MNIST as loaded;
random pixels: throughput does not depend on content), each in a fresh process, since OpenMP reads its
settings once, when it starts:

- default: neuralscale's own choice (threads.py: the threads follow the cores other processes leave free,
  measured every 2 s; libgomp's wait policy);
- torch:   NEURALSCALE_THREADS=torch, torch's thread count throughout: the trainer before issue 31;
- pinned:  OMP_NUM_THREADS=1.

Each is timed quiet, then beside one busy process (a Python loop on one core, started before the trainer and
stopped after it). Prints images/s (the median epoch after a warm-up epoch) and the ratios the issue asks for:
contended default / contended pinned (at least 0.8) and quiet default / quiet torch (about 1).

Usage: python benchmarks/threads.py [--ratio 0.125] [--images 3000] [--epochs 4] [--repeats 2] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

SETTINGS = {"default": {}, "torch": {"NEURALSCALE_THREADS": "torch"}, "pinned": {"OMP_NUM_THREADS": "1"}}
_CLEAR = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "NEURALSCALE_THREADS")
# (a setting's own variables are added back per setting: e.g. {"OMP_WAIT_POLICY": "PASSIVE"} for a comparison)


def child(ratio: float, images: int, epochs: int) -> None:
    """Train in this process and print one JSON line: images/s per epoch and the threads used at the end."""
    import logging
    import neuralscale as ns
    import torch
    from neuralscale.data.base import Splits
    from neuralscale.data.info import DatasetInfo
    from neuralscale.train import TrainConfig, Trainer
    changes = []

    class Count(logging.Handler):
        def emit(self, record):
            if record.getMessage().startswith("threads: "):
                changes.append(record.getMessage())
    logging.getLogger("neuralscale").addHandler(Count())
    logging.getLogger("neuralscale").setLevel(logging.INFO)
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (images, 1, 32, 32), generator=g, dtype=torch.uint8)  # 28x28, padded
    y = torch.randint(0, 10, (images,), generator=g)
    empty = (x[:0], y[:0])
    space = ns.space("vgg11", "fashionmnist")
    torch.manual_seed(0)
    cfg = TrainConfig(epochs=epochs + 1, batch_size=128, lr=0.05, schedule="constant", device="cpu")
    trainer = Trainer(space.build(space.uniform(ratio)), Splits(DatasetInfo("bench", 10, 1, 32), (x, y), empty, empty),
                      cfg, progress=False)
    trainer.fit()
    print(json.dumps({"per_epoch": [m["images_per_s"] for m in trainer.history[1:]], "changes": changes,
                      "threads_at_start": trainer.governor and trainer.governor.limit,
                      "wait_policy": os.environ.get("OMP_WAIT_POLICY")}))


def _busy() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def measure(setting: str, contended: bool, args) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in _CLEAR}
    env.update(SETTINGS[setting])
    env["PYTHONPATH"] = os.pathsep.join([os.path.join(os.path.dirname(__file__), "..", "src"),
                                         env.get("PYTHONPATH", "")])
    busy = _busy() if contended else None
    try:
        if busy:
            time.sleep(0.5)
        out = subprocess.run([sys.executable, __file__, "--child", "--ratio", str(args.ratio), "--images",
                              str(args.images), "--epochs", str(args.epochs)], env=env, capture_output=True,
                             text=True, check=True).stdout
    finally:
        if busy:
            busy.kill()
            busy.wait()
    r = json.loads(out.strip().splitlines()[-1])
    r["images_per_s"] = statistics.median(r["per_epoch"])
    return r


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ratio", type=float, default=0.125)
    p.add_argument("--images", type=int, default=3000)
    p.add_argument("--epochs", type=int, default=4, help="timed epochs (after one warm-up epoch)")
    p.add_argument("--repeats", type=int, default=2, help="rounds of every setting, interleaved")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    if args.child:
        child(args.ratio, args.images, args.epochs)
        return 0
    print(f"# cpus {os.cpu_count()}, affinity {len(os.sched_getaffinity(0))}, VGG11 x{args.ratio}, "
          f"{args.images} images/epoch, batch 128", file=sys.stderr)
    results: dict = {}
    for _ in range(args.repeats):
        for contended in (False, True):
            for setting in SETTINGS:
                r = measure(setting, contended, args)
                results.setdefault((setting, contended), []).append(r)
                print(f"{setting:8s} {'contended' if contended else 'quiet':9s} {r['images_per_s']:8.0f} images/s "
                      f"(epochs {', '.join(f'{v:.0f}' for v in r['per_epoch'])}; {len(r['changes'])} thread "
                      f"change(s))", file=sys.stderr)
    med = {k: statistics.median(x["images_per_s"] for x in v) for k, v in results.items()}
    summary = {f"{s}_{'contended' if c else 'quiet'}": v for (s, c), v in med.items()}
    summary["contended_default_over_pinned"] = med["default", True] / med["pinned", True]
    summary["contended_torch_over_pinned"] = med["torch", True] / med["pinned", True]
    summary["quiet_default_over_torch"] = med["default", False] / med["torch", False]
    for k, v in summary.items():
        print(f"{k:32s} {v:10.2f}" if "over" in k else f"{k:32s} {v:10.0f} images/s")
    if args.json:
        print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
