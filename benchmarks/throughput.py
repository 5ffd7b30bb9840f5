"""Training throughput: neuralscale's trainer against a conventional reference loop.

Both train the same model (VGG11-BN at --ratio, by default 0.25) on the same
32x32 RGB images (CIFAR-shaped; random pixels, since throughput does not depend
on content and CIFAR cannot be downloaded everywhere), with the same batch size,
on the same device, in this one process:

- reference: the way the original code and most CIFAR scripts train: a
  torchvision-style Dataset of HWC uint8 images, per-sample PIL transforms
  (RandomCrop(32, padding=4), RandomHorizontalFlip, ToTensor, Normalize) in a
  DataLoader, fp32, NCHW, and a gate module (x * ones-parameter) after every BN.
- neuralscale: `neuralscale.Trainer` with its defaults for the device (data as
  uint8 on the device, crop and flip in batch there; channels_last on CUDA and,
  where it is faster, on the CPU; bf16 autocast on CUDA).

Prints images/s of each and the ratio.  Usage:
    python benchmarks/throughput.py [--device cpu|cuda] [--ratio 0.25] [--images 10000]
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

import neuralscale as ns
from neuralscale.data.base import Splits
from neuralscale.data.info import DatasetInfo
from neuralscale.models.gate import Gate
from neuralscale.train import TrainConfig, Trainer


class OriginalGate(nn.Module):
    """The original GateLayer: multiply by an all-ones parameter."""

    def __init__(self, width: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(width))

    def forward(self, x):
        return x * self.weight.view(1, -1, 1, 1)


def reference_model(space, widths):
    model = space.build(widths)
    for name, m in list(model.named_modules()):
        for child_name, child in list(m.named_children()):
            if isinstance(child, Gate):
                setattr(m, child_name, OriginalGate(child.width))
    return model


class HWCDataset(torch.utils.data.Dataset):
    def __init__(self, images: np.ndarray, labels: np.ndarray, transform):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return self.transform(Image.fromarray(self.images[i])), int(self.labels[i])


def reference_throughput(space, widths, x_hwc, y, batch_size, device, workers, epochs=1) -> float:
    import torchvision.transforms as T
    tf = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToTensor(),
                    T.Normalize((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))])
    loader = torch.utils.data.DataLoader(HWCDataset(x_hwc, y, tf), batch_size=batch_size, shuffle=True,
                                         num_workers=workers, pin_memory=device.type == "cuda",
                                         persistent_workers=workers > 0)
    torch.manual_seed(0)
    model = reference_model(space, widths).to(device)
    params = [p for n, p in model.named_parameters() if not n.endswith(".weight") or "gate" not in n]
    opt = torch.optim.SGD(params, lr=0.05, momentum=0.5, weight_decay=5e-4)
    model.train()

    def one_epoch():
        n = 0
        for xb, yb in loader:
            xb, yb = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            n += len(yb)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return n
    one_epoch()  # warm-up: worker start, allocator, cudnn autotune
    t0 = time.perf_counter()
    n = sum(one_epoch() for _ in range(epochs))
    return n / (time.perf_counter() - t0)


def neuralscale_throughput(space, widths, x_chw, y, batch_size, device, epochs=1, **overrides) -> float:
    info = DatasetInfo("bench", 10, 3, 32)
    empty = (x_chw[:0], y[:0])
    splits = Splits(info, (x_chw, y), empty, empty)
    torch.manual_seed(0)
    cfg = TrainConfig(epochs=epochs + 1, batch_size=batch_size, lr=0.05, schedule="constant",
                      device=str(device), **overrides)
    trainer = Trainer(space.build(widths), splits, cfg, progress=False)
    trainer.fit()
    neuralscale_throughput.channels_last = trainer.channels_last  # the layout the trainer chose
    return float(np.mean([m["images_per_s"] for m in trainer.history[1:]]))  # epoch 1 is warm-up


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--model", default="vgg11")
    p.add_argument("--ratio", type=float, default=0.25)
    p.add_argument("--images", type=int, default=10_000)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--workers", type=int, default=2, help="DataLoader workers of the reference loop")
    p.add_argument("--epochs", type=int, default=1, help="timed epochs (after one warm-up epoch)")
    p.add_argument("--skip-reference", action="store_true")
    p.add_argument("--compile", action="store_true", help="also time neuralscale with torch.compile")
    p.add_argument("--layout", choices=("default", "channels-last", "nchw"), default="default",
                   help="the trainer's memory layout (default: its own rule, train.cpu_channels_last on a CPU)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)

    device = torch.device(args.device)
    space = ns.space(args.model, "cifar10")
    widths = space.uniform(args.ratio)
    rng = np.random.default_rng(0)
    x_hwc = rng.integers(0, 256, size=(args.images, 32, 32, 3), dtype=np.uint8)
    y = rng.integers(0, 10, size=args.images)
    x_chw = torch.from_numpy(x_hwc).permute(0, 3, 1, 2).contiguous()
    y_t = torch.from_numpy(y).long()

    env = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu x{torch.get_num_threads()}",
           "torch": torch.__version__, "model": args.model, "ratio": args.ratio, "params": space.params(widths),
           "batch_size": args.batch_size, "images": args.images}
    print(f"# {json.dumps(env)}", file=sys.stderr)
    result = dict(env)
    layout = {"default": None, "channels-last": True, "nchw": False}[args.layout]
    result["neuralscale_images_per_s"] = neuralscale_throughput(space, widths, x_chw, y_t, args.batch_size, device,
                                                                 args.epochs, channels_last=layout)
    result["channels_last"] = neuralscale_throughput.channels_last
    print(f"neuralscale trainer:  {result['neuralscale_images_per_s']:10.0f} images/s "
          f"({'channels-last' if result['channels_last'] else 'NCHW'}: {args.layout})")
    if args.compile:
        result["neuralscale_compiled_images_per_s"] = neuralscale_throughput(
            space, widths, x_chw, y_t, args.batch_size, device, args.epochs, compile=True)
        print(f"neuralscale compiled: {result['neuralscale_compiled_images_per_s']:10.0f} images/s")
    if not args.skip_reference:
        result["reference_images_per_s"] = reference_throughput(space, widths, x_hwc, y, args.batch_size, device,
                                                                args.workers, args.epochs)
        result["speedup"] = result["neuralscale_images_per_s"] / result["reference_images_per_s"]
        print(f"reference loop:       {result['reference_images_per_s']:10.0f} images/s "
              f"(DataLoader, {args.workers} workers, PIL transforms, fp32 NCHW, gates)")
        print(f"ratio:                {result['speedup']:10.2f}x")
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
