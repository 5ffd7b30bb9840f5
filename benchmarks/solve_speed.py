"""What costing a configuration takes: the solver's meta builds, with torch.nn.init skipped vs run.

The budget solver, the descent's convergence rule and the report's heatmap cost hundreds of configurations
(parameters and MACs of a model built on the meta device; a solve is ~35 of them, a report's heatmap ~600).
A meta tensor holds no values, so `WidthSpace.build(..., device="meta")` skips torch.nn.init's initialisers.
The reference, in the same process, is the same build with them run (what torch does by default).

For each space: `--n` distinct width vectors around the base widths, each costed once (the cost cache is
cleared first), then one `solve` of a law to the 1/4-width parameter budget.

    python benchmarks/solve_speed.py [--n 200] [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import random
import time

import numpy as np

import neuralscale as ns
from neuralscale.scaling import ScalingLaw, solve

space_module = importlib.import_module("neuralscale.space")  # the module (`ns.space` is the function)
SPACES = [("vgg11", "cifar10"), ("resnet18", "cifar100"), ("mobilenetv2", "cifar100")]


def cost_ms(sp, configs) -> float:
    sp._costs.cache_clear()
    t0 = time.perf_counter()
    for widths in configs:
        sp.params(widths), sp.macs(widths)
    return (time.perf_counter() - t0) / len(configs) * 1e3


def solve_ms(sp, law, budget) -> float:
    sp._costs.cache_clear()
    t0 = time.perf_counter()
    solve(law, sp, budget)
    return (time.perf_counter() - t0) * 1e3


@contextlib.contextmanager
def initialisers_run():
    """The reference: meta builds that run torch.nn.init, as before the skip."""
    skip = space_module._initialisers_skipped
    space_module._initialisers_skipped = contextlib.nullcontext
    try:
        yield
    finally:
        space_module._initialisers_skipped = skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=200, help="distinct configurations per space")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    rng = random.Random(0)
    rows = []
    for model, dataset in SPACES:
        sp = ns.space(model, dataset)
        sp.macs(sp.base_widths)  # the one meta forward pass for output positions, outside the timing
        configs = [[max(1, int(w * rng.uniform(0.05, 1.0))) for w in sp.base_widths] for _ in range(args.n)]
        # a law through the base widths with uneven exponents, solved at the 1/4-width budget
        tau0 = sp.params(sp.base_widths)
        beta = np.linspace(0.3, 0.9, len(sp))
        law = ScalingLaw(model=model, dataset=sp.info.name, layers=list(sp.layer_names),
                         alpha=list(np.array(sp.base_widths) / tau0 ** beta), beta=list(beta))
        budget = sp.params(sp.uniform(0.25))
        skip_cost, skip_solve = cost_ms(sp, configs), solve_ms(sp, law, budget)
        with initialisers_run():
            ref_cost, ref_solve = cost_ms(sp, configs), solve_ms(sp, law, budget)
        rows.append({"space": f"{model}/{dataset}", "cost_ms": round(skip_cost, 2), "cost_ms_with_init": round(ref_cost, 2),
                     "cost_speedup": round(ref_cost / skip_cost, 2), "solve_ms": round(skip_solve, 1),
                     "solve_ms_with_init": round(ref_solve, 1), "solve_speedup": round(ref_solve / skip_solve, 2)})
    if args.json:
        print(json.dumps(rows, indent=1))
        return
    print(f"{'space':<24}{'cost ms':>9}{'(init run)':>12}{'x':>7}{'solve ms':>10}{'(init run)':>12}{'x':>7}")
    for r in rows:
        print(f"{r['space']:<24}{r['cost_ms']:>9}{r['cost_ms_with_init']:>12}{r['cost_speedup']:>7}"
              f"{r['solve_ms']:>10}{r['solve_ms_with_init']:>12}{r['solve_speedup']:>7}")


if __name__ == "__main__":
    main()
