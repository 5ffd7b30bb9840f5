"""The `neuralscale` command: parse, call the Python API, print.

Every user error ends in one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence

from .errors import NeuralscaleError

EPILOG = """examples:
  neuralscale info --model vgg11 --dataset cifar100 --ratio 0.25 --json
  neuralscale info --model resnet18 --dataset tinyimagenet --widths 32,32,32,32,32,64,64,64,64,128,128,128,128,256,256,256,256
  neuralscale train --model vgg11 --dataset fashionmnist --ratio 0.25 --epochs 10 --out runs/vgg-025
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, not usage + error
        raise NeuralscaleError(f"{message} (see {self.prog} --help)")


def _widths(text: str) -> list[int]:
    try:
        return [int(w) for w in text.replace(",", " ").split()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"widths must be integers separated by commas, got {text!r}") from None


def _add_space_args(p: argparse.ArgumentParser, widths: bool = True) -> None:
    from .data import DATASET_NAMES
    from .space import FAMILIES
    p.add_argument("--model", required=True, metavar="NAME",
                   help=f"network family: {', '.join(FAMILIES)} (add --convcut for all-conv shortcuts)")
    p.add_argument("--dataset", required=True, metavar="NAME",
                   help=f"dataset: {', '.join(DATASET_NAMES)}")
    p.add_argument("--convcut", action="store_true", help="every shortcut a 1x1 convolution (the paper's supplement)")
    p.add_argument("--data-dir", metavar="DIR", help="where datasets are (default $NEURALSCALE_DATA or ~/.cache/neuralscale/data)")
    if widths:
        g = p.add_mutually_exclusive_group()
        g.add_argument("--ratio", type=float, metavar="R", help="uniform scaling: every base width times R (default 1.0)")
        g.add_argument("--widths", type=_widths, metavar="W1,W2,...", help="explicit per-layer widths, in layer order")


def build_parser() -> argparse.ArgumentParser:
    from . import __version__
    from .train import SCHEDULES, TrainConfig

    parser = _Parser(prog="neuralscale", formatter_class=argparse.RawDescriptionHelpFormatter,
                     description="Find how wide each layer of a CNN should be for a budget (NeuralScale), and prove it.",
                     epilog=EPILOG)
    parser.add_argument("--version", action="version", version=f"neuralscale {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("info", help="widths, parameters, MACs (and latency) of a configuration",
                       description="Print a configuration's per-layer widths, exact parameter count and MACs per "
                                   "image, computed without training.")
    _add_space_args(p)
    p.add_argument("--latency", action="store_true", help="also measure inference latency (batch 1 and --batch)")
    p.add_argument("--device", default="cpu", help="device for --latency: cpu, cuda, cuda:N (default cpu)")
    p.add_argument("--batch", type=int, default=128, help="large batch size for --latency (default 128)")
    p.add_argument("--json", action="store_true", help="print JSON (keys: model, dataset, layers, widths, params, macs)")

    d = TrainConfig()
    p = sub.add_parser("train", help="train one network from scratch",
                       description="Train one network from scratch and record every epoch. Models are selected on a "
                                   "validation split carved from the training set; the test set is only reported.")
    _add_space_args(p)
    p.add_argument("--epochs", type=int, default=d.epochs, help=f"default {d.epochs}")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help=f"default {d.batch_size}")
    p.add_argument("--lr", type=float, default=d.lr, help=f"initial learning rate (default {d.lr})")
    p.add_argument("--momentum", type=float, default=d.momentum, help=f"SGD momentum (default {d.momentum}, the paper's)")
    p.add_argument("--weight-decay", type=float, default=d.weight_decay, help=f"default {d.weight_decay}")
    p.add_argument("--schedule", choices=SCHEDULES, default=d.schedule,
                   help="learning-rate schedule: step (x0.1 at 1/3, 2/3, 5/6 of the epochs, the paper's), cosine, constant")
    p.add_argument("--preset", choices=("paper",), help="the paper's protocol for the dataset (300 epochs CIFAR, 150 TinyImageNet)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--no-augment", action="store_true", help="no random crop/flip")
    p.add_argument("--val-fraction", type=float, default=d.val_fraction,
                   help=f"fraction of the training set held out for validation (default {d.val_fraction})")
    p.add_argument("--train-subset", type=int, metavar="N", help="train on a seeded random N images (quick looks)")
    p.add_argument("--test-subset", type=int, metavar="N", help="test on a seeded random N images")
    p.add_argument("--tinyimagenet-split", choices=("official", "original"), default="official",
                   help="original: the NeuralScale code's 25 val + 25 test images per class of the official val set")
    p.add_argument("--out", metavar="DIR", help="write record.json, metrics.csv and a checkpoint here (resumable)")
    p.add_argument("--json", action="store_true", help="print the run's summary as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    return parser


def cmd_info(args) -> int:
    from .api import resolve_widths
    from .space import space as make_space

    sp = make_space(args.model, args.dataset, convcut=args.convcut, data_dir=args.data_dir)
    widths = resolve_widths(sp, args.widths, args.ratio)
    info = sp.describe(widths)
    if args.latency:
        from .accounting import measure_latency
        from .train import resolve_device
        if args.batch < 1:
            raise NeuralscaleError(f"--batch must be at least 1, got {args.batch}")
        info["latency"] = measure_latency(sp.build(widths), sp.info.input_shape, resolve_device(args.device),
                                          batch_sizes=(1, args.batch))
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"{info['model']} on {info['dataset']} (input {'x'.join(map(str, sp.info.input_shape))}, "
          f"{sp.info.num_classes} classes)")
    name_w = max(len(n) for n in info["layers"])
    for n, w, b in zip(info["layers"], widths, sp.base_widths):
        print(f"  {n:<{name_w}}  {w:>6}  (base {b})")
    print(f"params  {info['params']:,}")
    print(f"macs    {info['macs']:,} per image ({info['macs'] / 1e6:.2f} M)")
    if args.latency:
        lat = info["latency"]
        for bs, m in lat["batches"].items():
            print(f"latency batch {bs}: median {m['median_ms']:.3f} ms (p10 {m['p10_ms']:.3f}, p90 {m['p90_ms']:.3f}), "
                  f"{m['per_image_ms']:.4f} ms/image on {lat['device']}")
    return 0


def cmd_train(args) -> int:
    from .api import train
    from .train import TrainConfig, paper_config

    common = dict(seed=args.seed, device=args.device, compile=args.compile, augment=not args.no_augment,
                  val_fraction=args.val_fraction)
    if args.preset == "paper":
        config = paper_config(args.dataset, **common)
    else:
        config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, momentum=args.momentum,
                             weight_decay=args.weight_decay, schedule=args.schedule, **common)
    subset = {"train": args.train_subset, "test": args.test_subset}
    for k, v in subset.items():
        if v is not None and v < 1:
            raise NeuralscaleError(f"--{k}-subset must be at least 1, got {v}")
    record = train(args.model, args.dataset, widths=args.widths, ratio=args.ratio, config=config,
                   data_dir=args.data_dir, out_dir=args.out, subset=subset, progress=not args.quiet,
                   convcut=args.convcut)
    s = record["summary"]
    if args.json:
        print(json.dumps({k: record[k] for k in ("model", "dataset", "widths", "params", "macs", "summary")}, indent=2))
    else:
        print(f"{record['model']} {record['params']:,} params: final test accuracy {s['final_test_acc']:.2f}%, "
              f"test accuracy at best validation epoch ({s['best_val_epoch']}) {s['test_acc_at_best_val']:.2f}%")
        if args.out:
            print(f"record: {args.out}/record.json")
    return 0


COMMANDS = {"info": cmd_info, "train": cmd_train}


def main(argv: Sequence[str] | None = None) -> int:
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 2
        return COMMANDS[args.command](args)
    except NeuralscaleError as e:
        message = "; ".join(line.strip() for line in str(e).splitlines() if line.strip())
        print(f"neuralscale: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("neuralscale: interrupted; run the same command again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
