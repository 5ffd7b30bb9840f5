"""Every open GPU question in one command: CUDA correctness, training throughput, runs per GPU, descent step cost.

Made to run on a lent GPU machine in one call (no network, no virtual environment of ours: its python3 has
torch, torchvision, timm, numpy, matplotlib, tqdm, pytest, onnx), from the repository root:

    PYTHONUNBUFFERED=1 PYTHONPATH=src python3 benchmarks/gpu_check.py --out DIR

It finishes within --budget seconds (default 420, i.e. 7 minutes on one H100, start-up included), writing
DIR/gpu_check.json and DIR/gpu_check.md after every section, so a run cut short still leaves its figures.
Data are synthetic (CIFAR-shaped 32x32 images): nothing has to travel.  Sections:

1. correctness: the CUDA tests (`pytest -m cuda tests/test_cuda.py`): bf16 + channels_last training against
   fp32, physical pruning against masking from one state, a sweep with local workers on cuda:0, export and
   reload of a CUDA-trained run, resume of a CUDA run from its checkpoint;
2. throughput: neuralscale's trainer against the conventional reference loop (benchmarks/throughput.py),
   VGG11-BN at ratio 0.25 and at full width, batch 128 and a large batch: the eager step, the step captured as
   a CUDA graph (TrainConfig.cuda_graphs) and torch.compile;
3. runs per GPU: aggregate images/s of 1, 2, 4 and 8 concurrent small runs (VGG11 at ratio 0.25, batch 128, the
   eager and the captured step) on one device, against one run at a time;
4. descent step cost: one training step, physical widths against gate masking, at points of a pruning
   trajectory (benchmarks/prune_step_cost.py).

Targets (checked here, not in tests): the captured step >= 3x the eager one at ratio 0.25, batch 128; >= 10x the reference loop at ratio 0.25; >= 150,000 training images/s
for VGG11-BN at full width on one H100; >= 3x aggregate throughput with concurrent small runs.

`--device cpu --quick` runs every section at toy sizes on the CPU; a test runs it, so that the script is known
to work before a GPU is at hand.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT / "src")]

import numpy as np  # noqa: E402
import torch  # noqa: E402

import neuralscale as ns  # noqa: E402

TARGETS = {"graphs_over_eager_025_b128": 3.0, "speedup_025": 10.0, "full_width_images_per_s": 150_000,
           "runs_per_gpu_gain": 3.0}


class Check:
    """Sections run in turn within a time budget; results are written after each one."""

    def __init__(self, out: Path, budget: float, device: str, quick: bool):
        self.out, self.budget, self.device, self.quick = out, budget, device, quick
        self.t0 = time.monotonic()
        self.results: dict = {"environment": environment(device), "quick": quick, "sections": {}}

    def left(self) -> float:
        return self.budget - (time.monotonic() - self.t0)

    def section(self, name: str, fn, needs: float) -> None:
        if self.left() < needs:
            self.results["sections"][name] = {"not_run": f"{self.left():.0f} s left, {needs:.0f} s needed"}
            print(f"[{name}] skipped: not enough time left", flush=True)
            return
        t = time.monotonic()
        print(f"[{name}] ...", flush=True)
        try:
            result = fn(self)
        except Exception as e:  # one failed section must not cost the others' figures
            result = {"error": f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"}
        result["seconds"] = round(time.monotonic() - t, 1)
        self.results["sections"][name] = result
        print(f"[{name}] {json.dumps(result)[:600]}", flush=True)
        self.write()

    def write(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        self.results["targets"] = targets(self.results)
        (self.out / "gpu_check.json").write_text(json.dumps(self.results, indent=2) + "\n")
        (self.out / "gpu_check.md").write_text(markdown(self.results))


def environment(device: str) -> dict:
    env = {"device": device, "torch": torch.__version__, "python": platform.python_version(),
           "cpu_threads": torch.get_num_threads(), "neuralscale": ns.__version__}
    if device.startswith("cuda"):
        env["gpu"] = torch.cuda.get_device_name(0)
        env["gpu_memory_gib"] = round(torch.cuda.get_device_properties(0).total_memory / 2 ** 30, 1)
    return env


# --- 1. correctness -------------------------------------------------------------------------------------------

def correctness(c: Check) -> dict:
    cmd = [sys.executable, "-m", "pytest", "-q", "-m", "cuda", "-p", "no:cacheprovider", "-o", "addopts=",
           str(ROOT / "tests" / "test_cuda.py"), f"--junitxml={c.out / 'cuda_tests.xml'}"]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    run = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env,
                         timeout=max(30, c.left() - 30))
    (c.out / "cuda_tests.log").write_text(run.stdout + run.stderr)
    summary = (run.stdout.strip().splitlines() or [""])[-1]
    counts = {k: 0 for k in ("passed", "failed", "skipped", "errors")}
    for part in summary.replace(" in ", ",").split(","):
        words = part.strip().split()
        if len(words) >= 2 and words[0].isdigit():
            key = {"error": "errors", "errors": "errors"}.get(words[1], words[1])
            if key in counts:
                counts[key] = int(words[0])
    return {"summary": summary, **counts, "exit": run.returncode}


# --- 2. throughput ----------------------------------------------------------------------------------------------

def throughput(c: Check) -> dict:
    from throughput import neuralscale_throughput, reference_throughput
    device = torch.device(c.device)
    images = 256 if c.quick else 50_000
    rng = np.random.default_rng(0)
    x_hwc = rng.integers(0, 256, size=(images, 32, 32, 3), dtype=np.uint8)
    y = rng.integers(0, 10, size=images)
    x_chw = torch.from_numpy(x_hwc).permute(0, 3, 1, 2).contiguous()
    y_t = torch.from_numpy(y).long()
    space = ns.space("vgg11", "cifar10")
    # (ratio, batch, how the step runs): eager, torch.compile, or captured as a CUDA graph (issue 31's target:
    # batch 128 at 1/4 width at least 3x the eager step)
    cases = [(0.25, 128, "eager"), (0.25, 128, "graphs")] if c.quick else [
        (0.25, 128, "eager"), (0.25, 128, "graphs"), (1.0, 128, "eager"), (1.0, 128, "graphs"),
        (1.0, 1024, "eager"), (0.25, 1024, "eager"), (0.25, 1024, "graphs"), (0.25, 128, "compile")]
    # torch.compile last and once (its compile time is long): batch 128 at 1/4 width, the captured step's target
    rows = []
    for ratio, batch, mode in cases:
        if c.left() < (150 if mode == "compile" else 60):  # leave the later sections their time
            rows.append({"ratio": ratio, "batch": batch, "mode": mode, "skipped": "time"})
            continue
        widths = space.uniform(ratio)
        row = {"ratio": ratio, "batch": batch, "mode": mode}
        try:
            row["neuralscale_images_per_s"] = neuralscale_throughput(
                space, widths, x_chw, y_t, batch, device, 1 if c.quick else 2, compile=mode == "compile",
                cuda_graphs=mode == "graphs")
        except Exception as e:  # a mode that fails leaves the others' figures
            row["error"] = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
            rows.append(row)
            continue
        if mode == "eager":
            workers = 0 if c.quick else min(8, os.cpu_count() or 1)
            row["reference_images_per_s"] = reference_throughput(space, widths, x_hwc[: min(images, 20_000)],
                                                                 y[: min(images, 20_000)], batch, device, workers)
            row["speedup"] = row["neuralscale_images_per_s"] / row["reference_images_per_s"]
        else:
            eager = next((r for r in rows if (r["ratio"], r["batch"], r["mode"]) == (ratio, batch, "eager")
                          and "neuralscale_images_per_s" in r), None)
            if eager:
                row["over_eager"] = row["neuralscale_images_per_s"] / eager["neuralscale_images_per_s"]
        rows.append(row)
    return {"images": images, "rows": rows}


# --- 3. runs per GPU ----------------------------------------------------------------------------------------------

RUN = r"""
import json, sys, time, torch
import neuralscale as ns
from neuralscale.train import TrainConfig, Trainer
device, images, epochs, graphs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "graphs"
sp = ns.space("vgg11", "cifar10")
splits = ns.data.load("synthetic", synthetic=dict(num_train=images, num_test=8)).split(0.0, 0)
cfg = TrainConfig(epochs=epochs, batch_size=128, lr=0.05, schedule="constant", device=device, eval_every=0,
                  cuda_graphs=graphs)
tr = Trainer(sp.build(sp.uniform(0.25)), splits, cfg, progress=False)
tr.fit()
print(json.dumps([m["train_time_s"] for m in tr.history]))
"""


def runs_per_device(c: Check) -> dict:
    images, epochs = (128, 2) if c.quick else (10_000, 3)
    counts = (1, 2) if c.quick else (1, 2, 4, 8)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    threads = max(1, (os.cpu_count() or 1) // max(counts))
    env.update(OMP_NUM_THREADS=str(threads))
    modes = ("eager",) if not c.device.startswith("cuda") else ("eager", "graphs")  # the captured step: CUDA only
    rows = []
    for mode in modes:
        for n in counts:
            if c.left() < 40:
                rows.append({"runs": n, "mode": mode, "skipped": "time"})
                continue
            procs = [subprocess.Popen([sys.executable, "-c", RUN, c.device, str(images), str(epochs), mode],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
                     for _ in range(n)]
            outs = [p.communicate(timeout=max(30, c.left() - 20)) for p in procs]
            if any(p.returncode for p in procs):
                raise RuntimeError(next(e for (o, e), p in zip(outs, procs) if p.returncode).strip().splitlines()[-1])
            # the epochs after the first (start-up, CUDA context, cudnn autotune) ran while all runs were training
            per_run = [json.loads(o.strip().splitlines()[-1])[1:] for o, _ in outs]
            busy = max(sum(t) for t in per_run)
            rows.append({"runs": n, "mode": mode, "aggregate_images_per_s": n * images * (epochs - 1) / busy})
    for mode in modes:
        base = next((r["aggregate_images_per_s"] for r in rows
                     if (r["runs"], r["mode"]) == (1, mode) and "aggregate_images_per_s" in r), None)
        for r in rows:
            if base and r["mode"] == mode and "aggregate_images_per_s" in r:
                r["gain"] = r["aggregate_images_per_s"] / base
    return {"images_per_run": images, "epochs": epochs, "rows": rows}


# --- 4. descent step cost -----------------------------------------------------------------------------------------

def step_cost(c: Check) -> dict:
    from prune_step_cost import TRAJECTORY, step_ms
    space = ns.space("vgg11", "fashionmnist")
    full = space.uniform(0.25)
    points = TRAJECTORY[-1:] if c.quick else TRAJECTORY
    reps = 1 if c.quick else 20
    rows = []
    for w in points:
        cl = c.device.startswith("cuda")
        phys = step_ms(space, w, cl, reps=reps, device=c.device)
        mask = step_ms(space, full, cl, alive=w, reps=reps, device=c.device)
        rows.append({"widths": w, "physical_ms": phys, "masking_ms": mask, "ratio": mask / phys})
    return {"batch": 256, "rows": rows}


# --- targets and the summary ---------------------------------------------------------------------------------------

def targets(results: dict) -> dict:
    s = results["sections"]
    out = {}
    rows = s.get("throughput", {}).get("rows", [])
    speedups = [r["speedup"] for r in rows if r.get("ratio") == 0.25 and "speedup" in r]
    full = [r["neuralscale_images_per_s"] for r in rows if r.get("ratio") == 1.0 and "neuralscale_images_per_s" in r]
    gains = [r["gain"] for r in s.get("runs_per_device", {}).get("rows", []) if "gain" in r]
    captured = [r["over_eager"] for r in rows if (r.get("ratio"), r.get("batch"), r.get("mode")) == (0.25, 128, "graphs")
                and "over_eager" in r]
    for key, values, target in (("graphs_over_eager_025_b128", captured, TARGETS["graphs_over_eager_025_b128"]),
                                ("speedup_025", speedups, TARGETS["speedup_025"]),
                                ("full_width_images_per_s", full, TARGETS["full_width_images_per_s"]),
                                ("runs_per_gpu_gain", gains, TARGETS["runs_per_gpu_gain"])):
        best = max(values) if values else None
        out[key] = {"target": target, "best": best, "met": best is not None and best >= target}
    return out


def markdown(results: dict) -> str:
    env = results["environment"]
    lines = [f"# gpu_check on {env.get('gpu', env['device'])}", "",
             f"torch {env['torch']}, {env['cpu_threads']} CPU threads; quick = {results['quick']}", ""]
    for name, sec in results["sections"].items():
        lines += [f"## {name}", "", "```", json.dumps(sec, indent=1)[:4000], "```", ""]
    lines += ["## Targets", "", "| target | wanted | best | met |", "|---|---:|---:|---|"]
    for k, t in results.get("targets", {}).items():
        best = "" if t["best"] is None else f"{t['best']:,.2f}"
        lines.append(f"| {k} | {t['target']:,} | {best} | {'yes' if t['met'] else 'no'} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--quick", action="store_true", help="toy sizes (for checking the script itself on a CPU)")
    p.add_argument("--budget", type=float, default=420, help="seconds for everything (default 420)")
    p.add_argument("--skip", default="", help="sections to leave out, comma-separated")
    args = p.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("gpu_check: no CUDA device here; use --device cpu --quick to check the script", file=sys.stderr)
        return 2
    c = Check(args.out, args.budget, args.device, args.quick)
    skip = set(filter(None, args.skip.split(",")))
    for name, fn, needs in (("correctness", correctness, 60), ("throughput", throughput, 60),
                            ("runs_per_device", runs_per_device, 45), ("step_cost", step_cost, 20)):
        if name not in skip:
            c.section(name, fn, needs)
    c.write()
    print((args.out / "gpu_check.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
