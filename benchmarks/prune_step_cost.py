"""What one training step costs along a pruning trajectory: physical widths vs gate masking, per layout.

For each width vector (by default five points of the descent benchmark's own
VGG11 trajectory on Fashion-MNIST at base ratio 0.25), one SGD step of batch
256 is timed (median of `--reps`, after two untimed steps) in three forms, in
NCHW and in channels-last:

- physical: the network built at those widths (gate-free, as the pruner runs it);
- pad8:     widths rounded up to a multiple of 8, the extra channels masked by their gate;
- masking:  the full base network with the pruned channels' gates at 0 (the reference).

It shows where a descent iteration's time goes, and how far physical
shrinking can go below masking at each stage of pruning.

    python benchmarks/prune_step_cost.py [--reps 12] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import torch
import torch.nn.functional as F

import neuralscale as ns
from neuralscale.models.gate import gates

TRAJECTORY = [  # descent_speed.py's physical run at pruning steps 2, 17, 34, 50 and 66 (of 66)
    [16, 32, 64, 64, 128, 128, 111, 125],
    [16, 32, 64, 64, 104, 85, 54, 99],
    [16, 29, 55, 53, 57, 41, 31, 66],
    [12, 25, 31, 30, 28, 22, 13, 27],
    [4, 3, 4, 2, 3, 3, 2, 7],
]


def step_ms(space, widths, channels_last, alive=None, reps=12, batch=256, device="cpu") -> float:
    torch.manual_seed(0)
    device = torch.device(device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    model = space.build(widths).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    if alive is not None:  # gate masking: the first alive[i] channels of layer i are kept
        for g in gates(model):
            mask = torch.zeros(g.width, device=device)
            mask[:alive[g.index]] = 1
            g.ones = mask.requires_grad_(True)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.5, weight_decay=5e-4, foreach=True)
    c, s = space.info.in_channels, space.info.resolution
    x = torch.randn(batch, c, s, s, device=device)
    x = x.contiguous(memory_format=torch.channels_last) if channels_last else x.contiguous().view(-1).view(x.shape)
    y = torch.randint(0, space.info.num_classes, (batch,), device=device)
    times = []
    for _ in range(reps + 2):
        sync()
        t = time.perf_counter()
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sync()
        times.append(time.perf_counter() - t)
    times = sorted(times[2:])
    return 1000 * times[len(times) // 2]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reps", type=int, default=12, help="timed steps per case (the median is reported)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    if args.reps < 1:
        p.error("--reps must be at least 1")
    space = ns.space("vgg11", "fashionmnist")  # the trajectory's model and data
    full = space.uniform(0.25)
    rows = []
    print(f"# ms per step of batch 256, {space.name} at base ratio 0.25 {full}, "
          f"{torch.get_num_threads()} threads", file=sys.stderr)
    print(f"{'widths':<36} {'phys':>7} {'pad8':>7} {'mask':>7} {'phys CL':>8} {'pad8 CL':>8} {'mask CL':>8}  "
          "mask/phys (same layout; best layout each)")
    for w in [full] + TRAJECTORY:
        pad = [min(f, -(-v // 8) * 8) for v, f in zip(w, full)]
        r = {"widths": w}
        for cl, tag in ((False, ""), (True, "_cl")):
            r["physical" + tag] = step_ms(space, w, cl, reps=args.reps)
            r["pad8" + tag] = step_ms(space, pad, cl, alive=w, reps=args.reps)
            r["masking" + tag] = step_ms(space, full, cl, alive=w, reps=args.reps)
        best_phys = min(r["physical"], r["physical_cl"], r["pad8"], r["pad8_cl"])
        best_mask = min(r["masking"], r["masking_cl"])
        r["ratio_nchw"] = r["masking"] / r["physical"]
        r["ratio_best"] = best_mask / best_phys
        rows.append(r)
        print(f"{str(w):<36} {r['physical']:7.1f} {r['pad8']:7.1f} {r['masking']:7.1f} {r['physical_cl']:8.1f} "
              f"{r['pad8_cl']:8.1f} {r['masking_cl']:8.1f}  {r['ratio_nchw']:.2f}x; {r['ratio_best']:.2f}x",
              flush=True)
    if args.json:
        print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
