"""The convergence rule (`descend --until-converged`) on the original implementation's four recorded descents.

For each reference descent (15 iterations, `shared/reference/original_descent/`), the original's laws are
solved at the base parameter count; the rule stops after the first iteration from which the configuration
has moved less than the tolerance (every layer, relative) for `patience` iterations in a row.  Printed: the
iteration it would stop at, how far that configuration is from iteration 15's, and the configurations at
ratio 0.25 (the paper's headline budget) at the stop and at 15.

    python benchmarks/convergence.py [--reference DIR] [--tolerance 0.05] [--patience 2] [--json]

With `--descent DIR` (a neuralscale descent directory), the same for that descent, at the tolerances given
(`--tolerances 0.05 0.1 0.15`), with each iteration's trajectory rows and whether its law is a fit.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import neuralscale as ns
from neuralscale.descent import configuration_changes, converged_at
from neuralscale.scaling import ScalingLaw, solve

REFERENCES = {"vgg11_cifar100": ("vgg11", "cifar100"), "resnet18_cifar100": ("resnet18", "cifar100"),
              "mobilenetv2_cifar100": ("mobilenetv2", "cifar100"),
              "resnet18_tinyimagenet": ("resnet18", "tinyimagenet")}


def laws_of(path: Path, space) -> list[ScalingLaw]:
    fits = json.loads((path / "fits.json").read_text())["iterations"]
    return [ScalingLaw(space.name, space.info.name, list(space.layer_names), it["alpha"], it["beta"],
                       iteration=it["iteration"]) for it in fits]


def study(path: Path, model: str, dataset: str, tolerance: float, patience: int) -> dict:
    sp = ns.space(model, dataset)
    laws = laws_of(path, sp)
    changes = configuration_changes(laws, sp)
    stop = converged_at(laws, sp, tolerance, patience)
    quarter = sp.params(sp.uniform(0.25))
    at = {k: solve(laws[k - 1], sp, quarter).widths for k in sorted({1, stop or 15, 15})}
    end = at[15]
    chosen = at[stop or 15]
    return {"reference": path.name, "stop": stop, "saved": 15 - (stop or 15),
            "changes": [round(c, 4) for c in changes],
            "max_rel_diff_to_15": max(abs(a - b) / b for a, b in zip(chosen, end)),
            "max_abs_diff_to_15": max(abs(a - b) for a, b in zip(chosen, end)),
            "widths_ratio_025": {str(k): v for k, v in at.items()}}


def own(path: Path, tolerances: list[float], patience: int) -> dict:
    """The rule on a neuralscale descent directory: changes per iteration, where each tolerance would stop."""
    from neuralscale.descent import DescentDir
    d = DescentDir(path)
    recorded = d.config()
    sp = d.start_space(ns.space(recorded["model"], recorded["dataset"]))
    its = d.iterations()
    laws = [it.law for it in its]
    changes = configuration_changes(laws, sp)
    return {"descent": str(path), "iterations": len(its), "rows": [it.law.rows for it in its],
            "fits": [not it.law.fallback for it in its], "changes": [round(c, 4) for c in changes],
            "stops": {str(t): converged_at(laws, sp, t, patience) for t in tolerances},
            "base_widths": {str(k): solve(laws[k - 1], sp, sp.params(sp.base_widths)).widths
                            for k in sorted({1, len(laws) // 2, len(laws)})}}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    here = Path(__file__).resolve().parents[1]
    p.add_argument("--reference", type=Path, default=here.parent / "shared" / "reference" / "original_descent")
    p.add_argument("--tolerance", type=float, default=0.05)
    p.add_argument("--patience", type=int, default=2)
    p.add_argument("--json", action="store_true")
    p.add_argument("--descent", type=Path, help="a neuralscale descent directory to study instead")
    p.add_argument("--tolerances", type=float, nargs="+", default=[0.05, 0.1, 0.15])
    args = p.parse_args(argv)
    if args.descent is not None:
        r = own(args.descent, args.tolerances, args.patience)
        if args.json:
            print(json.dumps(r, indent=2))
            return 0
        print(f"{r['descent']}: {r['iterations']} iterations; rows per iteration {r['rows']}; "
              f"fits {sum(r['fits'])} of {len(r['fits'])}")
        print("  largest per-layer change of the configuration at the base count, per iteration: "
              + ", ".join(f"{c:.0%}" for c in r["changes"]))
        for t, stop in r["stops"].items():
            print(f"  tolerance {float(t):.0%} for {args.patience} in a row: "
                  + (f"stops after iteration {stop}" if stop else "never stops"))
        for k, w in r["base_widths"].items():
            print(f"  iteration {k:>2} at the base count: {w}")
        return 0
    if not args.reference.is_dir():
        print(f"no reference data at {args.reference}", file=sys.stderr)
        return 2
    results = [study(args.reference / name, model, dataset, args.tolerance, args.patience)
               for name, (model, dataset) in REFERENCES.items()]
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"rule: every layer within {args.tolerance:.0%} of the previous iteration's configuration (base "
          f"parameter count) for {args.patience} iterations in a row")
    for r in results:
        print(f"\n{r['reference']}: stops after iteration {r['stop']} ({r['saved']} of 15 saved); at ratio 0.25 "
              f"its configuration is within {r['max_rel_diff_to_15']:.1%} ({r['max_abs_diff_to_15']} channels) "
              "of iteration 15's")
        print("  largest change per iteration: " + ", ".join(f"{c:.3f}" for c in r["changes"]))
        for k, w in r["widths_ratio_025"].items():
            print(f"  iteration {k:>2} at ratio 0.25: {w}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
