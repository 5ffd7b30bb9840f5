"""What building a generic width space costs (generic.GenericSpace: tracing, the channel analysis in evaluation and
training mode, the meta pass that gives every node's shape, the self-check build): once per command and model.

Each model is built three times in this process and the best is printed (the first includes imports and
torchvision's or timm's own model construction).

    python benchmarks/space_build.py [torchvision:densenet201 timm:resnet152 ...]
"""

from __future__ import annotations

import argparse
import time

from neuralscale import generic
from neuralscale.data.info import DatasetInfo

DEFAULT = ("torchvision:densenet201", "timm:resnet152", "torchvision:resnet18", "torchvision:efficientnet_b0")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="*", default=list(DEFAULT), help="SCHEME:NAME (torchvision or timm)")
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    info = DatasetInfo("x", 100, 3, 64)  # 64 x 64 images, 100 classes
    for model in args.models:
        scheme, name = model.split(":")
        try:
            make = (generic.torchvision_factory if scheme == "torchvision" else generic.timm_factory)(name, info)
        except Exception as e:  # noqa: BLE001  (timm not installed: said, and the others go on)
            print(f"{model}: {e}")
            continue
        times = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            generic.GenericSpace(model, make, info)
            times.append(time.perf_counter() - t)
        print(f"{model}: best of {args.repeats} {min(times):.2f} s")


if __name__ == "__main__":
    main()
