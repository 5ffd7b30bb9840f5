"""One descent iteration at the paper's pruning schedule: physical shrinking vs gate masking.

Same model, data, seed and schedule in one process: k=10 channels every 50
mini-batches of 256 after the warm-up, until 95% of the channels are gone.
The data is reduced (a seeded subset of Fashion-MNIST) so the run fits this
machine; the pruning schedule is the paper's.  Prints the wall time of each,
the ratio, and whether both made the same pruning decisions.

    python benchmarks/descent_speed.py [--base-ratio 0.25] [--images 2560] [--warmup-epochs 10]
                                       [--masking-channels-last] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import torch

import neuralscale as ns
from neuralscale.api import load_splits
from neuralscale.descent import DescentConfig
from neuralscale.pruning import TaylorPruner
from neuralscale.train import Trainer


class Clock(TaylorPruner):
    """The pruner, plus the wall time at each pruning step (to see where an iteration's time goes).

    It also counts training batches, and the MACs of the unpruned widths at each batch: `batches /
    mac_batches` is the speed-up over masking of an ideal physical run whose step cost is proportional
    to its MACs (no fixed costs), with masking's cost that of the start widths throughout.
    """

    def on_train_start(self, trainer) -> None:
        super().on_train_start(trainer)
        self.batches, self.mac_batches, self._frac = 0, 0.0, 1.0
        self._full = self.session.space.macs(self.session.initial)

    def on_step_end(self, trainer) -> None:
        self.batches += 1
        self.mac_batches += self._frac  # this batch ran at the widths before any pruning it triggers
        super().on_step_end(trainer)

    def prune_step(self, trainer):
        step = super().prune_step(trainer)
        if step.pruned:  # not the step the stop rule refused
            self._frac = self.session.space.macs(self.session.current) / self._full
            self.times.append(time.perf_counter() - self.t0)
        return step


def run(space, splits, cfg: DescentConfig, physical: bool, channels_last: bool | None = None
        ) -> tuple[float, TaylorPruner, int]:
    torch.manual_seed(cfg.seed)
    widths = list(space.base_widths)
    pruner = Clock(space, widths, physical=physical, **cfg.schedule_fields())
    tc = cfg.train_config()
    tc.channels_last = channels_last
    trainer = Trainer(space.build(widths), splits, tc, callbacks=[pruner], progress=False)
    pruner.times, pruner.t0 = [], time.perf_counter()
    trainer.fit()
    return time.perf_counter() - pruner.t0, pruner, trainer.epoch


def phases(p_phys: TaylorPruner, p_mask: TaylorPruner) -> list[dict]:
    """Seconds per pruning interval of each run, at the start, a quarter, half, three quarters and the end."""
    n = min(len(p_phys.times), len(p_mask.times))
    out = []
    for q in (1, n // 4, n // 2, 3 * n // 4, n - 1):
        dp = p_phys.times[q] - p_phys.times[q - 1]
        dm = p_mask.times[q] - p_mask.times[q - 1]
        out.append({"step": q + 1, "widths": p_phys.session.all_rows[q], "physical_s": dp, "masking_s": dm,
                    "ratio": dm / dp})
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="vgg11")
    p.add_argument("--dataset", default="fashionmnist")
    p.add_argument("--base-ratio", type=float, default=0.25)
    p.add_argument("--images", type=int, default=2560, help="training images (a seeded subset)")
    p.add_argument("--warmup-epochs", type=int, default=10)
    p.add_argument("--device", default="cpu")
    p.add_argument("--masking-channels-last", action="store_true",
                   help="also time masking in channels-last, its fastest layout on CPU at full width "
                        "(pruned widths make channels-last batch norm slow, so physical stays NCHW)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)

    base = ns.space(args.model, args.dataset)
    space = base.rebased(base.uniform(args.base_ratio))
    cfg = DescentConfig(warmup_epochs=args.warmup_epochs, device=args.device).resolve(space)  # k=10, every 50, batch 256
    splits = load_splits(args.dataset, cfg.train_config(), subset={"train": args.images, "test": 500})
    print(f"# {space.name} at base ratio {args.base_ratio} ({space.params(space.base_widths):,} params, "
          f"{sum(space.base_widths)} channels), {splits.sizes()}, device {args.device}", file=sys.stderr)
    t_phys, p_phys, ep_phys = run(space, splits, cfg, physical=True)
    print(f"physical shrinking: {t_phys:8.1f} s ({ep_phys} epochs, {p_phys.session.pruning_steps} pruning steps)")
    t_mask, p_mask, ep_mask = run(space, splits, cfg, physical=False)
    print(f"gate masking:       {t_mask:8.1f} s ({ep_mask} epochs, {p_mask.session.pruning_steps} pruning steps)")
    same = p_phys.session.all_rows == p_mask.session.all_rows
    print(f"ratio:              {t_mask / t_phys:8.2f}x  (same decisions: {same})")
    bound = p_phys.batches / p_phys.mac_batches
    print(f"MAC bound:          {bound:8.2f}x  (an ideal physical run whose step cost is proportional to its MACs, "
          f"over {p_phys.batches} batches; measured = {t_mask / t_phys / bound:.0%} of it)")
    t_mask_cl = None
    if args.masking_channels_last:
        t_mask_cl, p_cl, _ = run(space, splits, cfg, physical=False, channels_last=True)
        print(f"masking, channels-last: {t_mask_cl:6.1f} s ({p_cl.pruning_steps} pruning steps); "
              f"ratio to physical {t_mask_cl / t_phys:.2f}x")
    warm = {"physical_s": p_phys.times[0], "masking_s": p_mask.times[0]}
    print(f"to the first pruning step (warm-up, full width): physical {warm['physical_s']:.1f} s, "
          f"masking {warm['masking_s']:.1f} s")
    profile = phases(p_phys, p_mask)
    for ph in profile:
        print(f"  interval {ph['step']:3d}: physical {ph['physical_s']:6.2f} s, masking {ph['masking_s']:6.2f} s "
              f"({ph['ratio']:.2f}x) at widths {ph['widths']}")
    if args.json:
        print(json.dumps({"physical_s": t_phys, "masking_s": t_mask, "speedup": t_mask / t_phys,
                          "same_decisions": same, "mac_bound": bound, "batches": p_phys.batches,
                          "steps": p_phys.session.pruning_steps, "base_ratio": args.base_ratio, "images": args.images,
                          "device": args.device, "masking_channels_last_s": t_mask_cl, "to_first_step": warm,
                          "intervals": profile, "trajectory": p_phys.session.all_rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
