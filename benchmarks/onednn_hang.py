"""Which channels-last training steps hang on this CPU (oneDNN), and how fast each layout is.

Each case trains a few steps of one model at one set of widths in one memory layout, in a subprocess with a
time limit (a hang is a case that does not finish in time; it is killed; a crash is a case killed by a signal).  Printed per case: the step time in
NCHW and in channels-last, or HANG.  The trainer's layout rule (train.cpu_layout) is checked against the result.

    python benchmarks/onednn_hang.py [--timeout 60] [--steps 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CASES = [  # (model, dataset, widths or a uniform ratio)
    ("vgg11", "cifar10", 0.25),
    ("vgg11", "cifar10", [2, 2, 2, 2, 2, 2, 2, 2]),
    ("vgg11", "cifar10", [1, 1, 1, 1, 1, 1, 1, 1]),
    ("vgg11", "fashionmnist", 0.25),
    ("vgg11", "fashionmnist", [4, 4, 4, 4, 4, 4, 4, 4]),
    ("resnet18", "cifar10", 0.25),
    ("resnet18", "cifar10", [2] * 17),
    ("resnet18", "cifar10", [1] * 17),
    ("resnet18", "fashionmnist", 0.25),
    ("resnet18", "fashionmnist", [4] * 17),
    ("mobilenetv2", "cifar10", 0.25),
    ("mobilenetv2", "cifar10", [2] * 19),
    ("torchvision:regnet_x_400mf", "cifar10", 0.125),  # grouped convolutions: a crash in channels-last
    ("torchvision:resnext50_32x4d", "cifar10", 0.125),
]

CHILD = r"""
import sys, time, json, torch
import neuralscale as ns
from neuralscale.train import TrainConfig, Trainer
model, dataset, widths, layout, steps = json.loads(sys.argv[1])
sp = ns.space(model, dataset)
w = sp.uniform(widths) if isinstance(widths, float) else widths
splits = ns.data.load("synthetic", synthetic=dict(num_train=128 * (steps + 1), num_test=8,
                                                   channels=sp.info.in_channels)).split(0.0, 0)
cfg = TrainConfig(epochs=1, batch_size=128, lr=0.01, schedule="constant", device="cpu", eval_every=0,
                  channels_last=(layout == "channels_last"))
torch.manual_seed(0)
tr = Trainer(sp.build(w), splits, cfg, progress=False)
x, y = next(tr.train_data.train_batches(128, torch.Generator().manual_seed(0), 4))
tr.train_step(x, y)  # warm-up
t0 = time.perf_counter()
for _ in range(steps):
    tr.train_step(x, y)
print(json.dumps((time.perf_counter() - t0) / steps))
"""


def run(case, layout: str, steps: int, timeout: float):
    try:
        out = subprocess.run([sys.executable, "-c", CHILD, json.dumps([*case, layout, steps])], capture_output=True,
                             text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "hang"
    if out.returncode < 0:
        return f"crash (signal {-out.returncode})"
    if out.returncode != 0:
        return "error: " + (out.stderr.strip().splitlines() or ["?"])[-1][:120]
    return float(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--timeout", type=float, default=60)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    results = []
    for case in CASES:
        r = {"model": case[0], "dataset": case[1], "widths": case[2]}
        for layout in ("nchw", "channels_last"):
            r[layout] = run(case, layout, args.steps, args.timeout)
        results.append(r)
        show = {k: (f"{v * 1000:.1f} ms" if isinstance(v, float) else v) for k, v in r.items()
                if k in ("nchw", "channels_last")}
        print(f"{case[0]:12} {case[1]:13} {str(case[2]):28} NCHW {show['nchw']:>12}  channels-last "
              f"{show['channels_last']:>12}", flush=True)
    if args.json:
        print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
