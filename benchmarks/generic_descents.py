"""First descent iterations of torchvision models on real Fashion-MNIST: enough rows for a fit, R^2, time.

Each model gets one iteration of a descent with a reduced schedule (a seeded subset of the training images,
one warm-up epoch, a pruning step every few mini-batches), then the law is fitted; printed per model: the
trajectory rows, when they started (the pruning step of the first row, against all steps), R^2 per layer
(min / median), why pruning ended and the wall time.  `--compare-resnet` also runs the paper's hand-written
ResNet18 on the same data and schedule, to compare its trajectory with torchvision's.

    python benchmarks/generic_descents.py [--models torchvision:resnet18,...] [--images 6000] [--json]

Descents are written under --out (default runs/generic-descents) and resume if interrupted.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import neuralscale as ns
from neuralscale.descent import DescentConfig, DescentDir
from neuralscale.logs import configure

MODELS = ["torchvision:resnet18", "torchvision:resnet50", "torchvision:mobilenet_v2", "torchvision:efficientnet_b0"]


def one(model: str, args, out: Path) -> dict:
    # pruning goes past a layer's last channel for every model here (the default for generic models), so that
    # the paper's ResNet18 and torchvision's are pruned by the same rule when compared
    cfg = DescentConfig(iterations=1, warmup_epochs=1, base_ratio=args.base_ratio, k=args.k, interval=args.interval,
                        batch_size=args.batch_size, device=args.device, allow_fallback=True, prune_past_one=True)
    t0 = time.time()
    ns.descend(model, "fashionmnist", out, cfg, subset={"train": args.images}, progress=False)
    wall = time.time() - t0
    it = DescentDir(out).iteration(1)
    r2 = it.law.r2 if not it.law.fallback else []
    first = None
    rows_file = DescentDir(out).trajectory_path(1).read_text().splitlines()[1:]
    if rows_file:
        first = int(rows_file[0].split(",")[0])
    return {"model": model, "layers": len(it.start_widths), "channels": sum(it.start_widths),
            "rows": it.law.rows, "fallback": it.law.fallback, "first_row_step": first,
            "pruning_steps": it.pruning_steps, "r2_min": min(r2) if r2 else None,
            "r2_median": statistics.median(r2) if r2 else None, "stop_reason": it.stop_reason,
            "physical": it.physical, "epochs": it.epochs, "wall_s": round(wall, 1),
            "final_widths": it.final_widths}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--images", type=int, default=6000)
    p.add_argument("--base-ratio", type=float, default=0.25)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--interval", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--device", default="cpu")
    p.add_argument("--compare-resnet", action="store_true", help="also the paper's resnet18, same data and schedule")
    p.add_argument("--out", type=Path, default=Path("runs/generic-descents"))
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    configure(quiet=True)
    models = [m for m in args.models.split(",") if m] + (["resnet18"] if args.compare_resnet else [])
    results = []
    for m in models:
        r = one(m, args, args.out / m.replace(":", "_"))
        results.append(r)
        print(f"{m}: {r['rows']} rows (first at step {r['first_row_step']} of {r['pruning_steps']}), "
              f"R^2 min {r['r2_min'] if r['r2_min'] is None else round(r['r2_min'], 3)} median "
              f"{r['r2_median'] if r['r2_median'] is None else round(r['r2_median'], 3)}, {r['epochs']} epochs, "
              f"{r['wall_s']:.0f} s; {r['stop_reason']}", flush=True)
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
