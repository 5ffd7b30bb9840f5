"""Do the MACs and latency objectives meet their budgets?  (issue 29's "done when")

MACs: the laws of a `descend --objective macs` directory solved at shares of the base model's MACs, and the MACs
of the configurations they give (exact, from the built model): the gap to the budget, which must be under 1%.

Latency: a latency table measured here (per-operation tables, `latency.py`), its estimate of whole networks
against fresh measurements (median and interquartile range of 30 timed calls); then a short latency descent
on Fashion-MNIST (one iteration on a training subset: the law, not the study) and its law solved at shares of
the base model's latency with `neuralscale scale --latency-ms`'s code, each configuration measured afresh: is
it within the tolerance (the measurement's spread, at least 2%)?

    python benchmarks/objectives.py --macs-descent studies/fmnist-vgg11/macs/descent [--threads 1] [--json]

Run it on a quiet machine: latency beside other work measures the other work.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

import neuralscale as ns
from neuralscale.descent import DescentDir
from neuralscale.latency import LatencyTable
from neuralscale.methods import scale


def macs_check(descent: Path, model: str, dataset: str, shares=(0.25, 0.5, 0.75)) -> list[dict]:
    sp = ns.space(model, dataset)
    start = DescentDir(descent).start_space(sp)
    base = start.macs(start.base_widths)
    out = []
    for it in ("first", "last"):
        number = 1 if it == "first" else len(DescentDir(descent).iterations())
        for share in shares:
            got = scale(start, "neuralscale", ns.Budget("macs", value=share * base), source=descent, iteration=number)
            out.append({"iteration": number, "share": share, "budget": share * base, "macs": got["macs"],
                        "rel_error": (got["macs"] - share * base) / (share * base), "widths": got["widths"]})
    return out


def latency_check(model: str, dataset: str, ratio: float, subset: int, shares=(0.6, 0.8)) -> dict:
    sp = ns.space(model, dataset)
    start = sp.rebased(sp.uniform(ratio))
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.time()
        table = LatencyTable("cpu")
        checks = [table.check(start, w) for w in (list(start.base_widths), start.uniform(0.5),
                                                  [max(1, w // 4) if i < 4 else w for i, w in
                                                   enumerate(start.base_widths)])]
        measured_s = time.time() - t0
        cfg = ns.DescentConfig(iterations=1, warmup_epochs=1, base_ratio=ratio, objective="latency", interval=10,
                               trajectory_start="per-layer", allow_fallback=True, device="cpu")
        t0 = time.time()
        laws = ns.descend(model, dataset, Path(tmp) / "d", cfg, subset={"train": subset}, progress=False)
        descent_s = time.time() - t0
        base_ms = table.whole(start, list(start.base_widths))[0]
        solved = []
        for share in shares:
            try:
                got = scale(start, "neuralscale", ns.Budget("latency", value=share * base_ms),
                            source=Path(tmp) / "d", convert=laws[-1].fallback)
            except ns.NeuralscaleError as e:  # below what the law reaches: the fixed cost of a call
                solved.append({"share": share, "budget_ms": share * base_ms, "error": str(e)})
                continue
            solved.append({"share": share, "budget_ms": share * base_ms, "widths": got["widths"],
                           "achieved_ms": got["achieved"], **{f"fresh_{k}": v for k, v in got["measured"].items()}})
        table_points = sum(len(t) for t in table.tables.values())
    return {"device": table.where, "table_points": table_points, "table_s": measured_s, "checks": checks,
            "descent_s": descent_s, "law": laws[-1].quality(), "law_objective": laws[-1].objective,
            "base_ms": base_ms, "solved": solved}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--macs-descent", type=Path, help="a descent directory of --objective macs")
    p.add_argument("--model", default="vgg11")
    p.add_argument("--dataset", default="fashionmnist")
    p.add_argument("--ratio", type=float, default=0.125, help="the latency descent's --base-ratio")
    p.add_argument("--subset", type=int, default=10000, help="the latency descent's training images")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    out = {"threads": a.threads}
    if a.macs_descent:
        cfg = json.loads((a.macs_descent / "config.json").read_text())
        out["macs"] = macs_check(a.macs_descent, cfg["model"], cfg["dataset"])
        for r in out["macs"]:
            print(f"macs objective, iteration {r['iteration']}, {r['share']:.0%} of the base MACs: "
                  f"{r['macs']:,} MACs for {r['budget']:,.0f} ({100 * r['rel_error']:+.2f}%)")
    out["latency"] = lat = latency_check(a.model, a.dataset, a.ratio, a.subset)
    print(f"latency table on {lat['device']}: {lat['table_points']} points measured in {lat['table_s']:.0f} s")
    for c in lat["checks"]:
        print(f"  widths {c['widths']}: estimate {c['estimate_ms']:.4f} ms, measured {c['measured_ms']:.4f} ms "
              f"(IQR {c['iqr_ms']:.4f}): {100 * c['error']:+.1f}%")
    print(f"latency descent (1 iteration, {a.subset} images, {lat['descent_s']:.0f} s): {lat['law']}, "
          f"fitted against {lat['law_objective']}")
    for s in lat["solved"]:
        if "error" in s:
            print(f"  {s['share']:.0%} of {lat['base_ms']:.4f} ms: {s['error']}")
            continue
        print(f"  {s['share']:.0%} of {lat['base_ms']:.4f} ms = {s['budget_ms']:.4f} ms: widths {s['widths']}, "
              f"fresh {s['fresh_median_ms']:.4f} ms (IQR {s['fresh_iqr_ms']:.4f}), {100 * s['fresh_rel_error']:+.1f}%, "
              f"{'within' if s['fresh_within'] else 'NOT within'} {100 * s['fresh_tolerance']:.1f}%")
    if a.json:
        json.dump(out, sys.stdout, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
