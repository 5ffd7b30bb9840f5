"""The `neuralscale` command: parse, call the Python API, print.

Every user error ends in one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import functools
import re
import json
import logging
import sys
import warnings
from pathlib import Path
from typing import Sequence

from ._version import __version__
from .accounting import unstable
from .api import describe, describe_run, descend, fit_trajectory, resolve_widths, scale, train, train_config
from .budget import Budget, amount
from .command import as_command, ended, interrupt, started, terminate, terminated
from .data import DATASET_NAMES, DataConfig
from .data.info import DEFAULT_PROTOCOL as _DEF, protocol
from .descent import DescentConfig, DescentDir
from .objective import OBJECTIVES, UNITS
from .pruning import TRAJECTORY_STARTS
from .errors import NeuralscaleError, NeuralscaleWarning, first_line
from .executors import get_executor
from .experiment import run as run_experiment
from .figures import BANDS
from .export import export_run, pixels_text
from .layout import RunDir
from .logs import configure as configure_logging
from .records import strict
from .store import load_records
from .methods import BASE_METHODS, SCALED, method_label, method_law
from .report import ACCURACY, ACCURACY_SHORT, build_report, mean_std, run_summary
from .sweep import PRESETS, SweepConfig, run_sweep, sweep_config
from .train import SCHEDULES, TrainConfig
from .validate import parse_whole
from .zoo import FAMILIES, gone, space as make_space

_TINY = protocol("tinyimagenet")  # the protocol facts the help names (data.info.PROTOCOLS)

PRUNE_FRACTION_HELP = (f"stop when this fraction of channels is pruned (default {DescentConfig().prune_fraction}; "
                       "MorphNet's widths are read from any descent's first iteration, where it crossed 0.5)")
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
        return [parse_whole(w) for w in text.replace(",", " ").split()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"widths must be integers separated by commas, got {text!r}") from None


def _add_space_args(p: argparse.ArgumentParser, widths: bool = True, required: bool = True):
    recorded = "" if required else " (default: the descent's that holds the trajectory)"
    p.add_argument("--model", required=required, metavar="NAME",
                   help=f"network: {', '.join(FAMILIES)} (--convcut: all-conv shortcuts), torchvision:NAME "
                        "(e.g. torchvision:resnet50), timm:NAME, or file:PATH.py:NAME, a class or function of your "
                        "own that makes the network (called with num_classes= and in_channels= where it takes them)"
                        + recorded)
    p.add_argument("--dataset", required=required, metavar="NAME",
                   help=f"dataset: {', '.join(DATASET_NAMES)}{recorded}")
    p.add_argument("--convcut", action="store_true", help="every shortcut a 1x1 convolution (the paper's supplement)")
    p.add_argument("--data-dir", metavar="DIR", help="where datasets are (default $NEURALSCALE_DATA or ~/.cache/neuralscale/data)")
    if widths:
        g = p.add_mutually_exclusive_group()
        g.add_argument("--ratio", type=float, metavar="R", help="uniform scaling: every base width times R (default 1.0)")
        g.add_argument("--widths", type=_widths, metavar="W1,W2,...", help="explicit per-layer widths, in layer order")
        return g
    return None


def _budget(metric: str):
    """An argparse type: a budget of `metric`, a number (2795410, 2.8M, 150k) or a share of the base model (25%)."""
    def parse(text: str) -> Budget:
        try:
            return Budget.parse(text, metric)
        except NeuralscaleError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
    return parse


def _iteration(text: str) -> int | None:
    """An argparse type: a descent iteration as a sweep names one (first, last or a number from 1); last is None,
    the default."""
    if text in ("first", "last"):
        return 1 if text == "first" else None
    if text.strip().isascii() and text.strip().isdigit() and int(text) >= 1:
        return int(text)
    raise argparse.ArgumentTypeError(f"a descent iteration is first, last or a number from 1, got {text!r}")


def _budgets(metric: str):
    one = _budget(metric)
    return lambda text: [one(x) for x in text.replace(",", " ").split()]


def _floats(text: str) -> list[float]:
    try:
        return [float(x) for x in text.replace(",", " ").split()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas, got {text!r}") from None


def _ints(text: str) -> list[int]:
    try:
        return [parse_whole(x) for x in text.replace(",", " ").split()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers separated by commas, got {text!r}") from None


def _words(text: str) -> list[str]:
    return [x for x in text.replace(",", " ").split() if x]


def _add_json(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--json", action="store_true",
                   help=f"print JSON: {what} (with the keys the other commands use for the same things: model, "
                        "dataset, widths, params, macs, ...)")


def _add_force(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--force", action="store_true", help=f"write into an --out folder that holds other files and is "
                   f"not a {what} (refused without it)")


def _add_convert(p: argparse.ArgumentParser) -> None:
    p.add_argument("--convert", action="store_true",
                   help="solve a neuralscale law for a budget of another metric than it was fitted against (a law "
                        "of `descend --objective macs` for --params, or the paper's for --macs); refused without it")


INFO_DEVICE, INFO_BATCH = "cpu", 128  # info --latency's defaults (and what says they were given without it)


def _info_parser(sub) -> None:
    p = sub.add_parser("info", help="widths, parameters, MACs (and latency) of a configuration",
                       description="Print a configuration's per-layer widths, exact parameter count and MACs per "
                                   "image, computed without training.")
    _add_space_args(p)
    p.add_argument("--latency", action="store_true", help="also measure inference latency (batch 1 and --batch)")
    p.add_argument("--device", default=INFO_DEVICE, help=f"device for --latency: cpu, cuda, cuda:N (default "
                   f"{INFO_DEVICE})")
    p.add_argument("--batch", type=int, default=INFO_BATCH, help=f"large batch size for --latency (default "
                   f"{INFO_BATCH})")
    p.add_argument("--from", dest="source", metavar="DESCENT_DIR",
                   help="also list a descent's laws: rows, R^2 and out-of-sample error of each iteration")
    _add_json(p, "the configuration (and latency, and the descent's laws)")


def _add_data_args(p, train_help: str, test: bool) -> None:
    """Which images: seeded subsets and TinyImageNet's split (DataConfig's settings; `_data_settings` reads them)."""
    p.add_argument("--train-subset", type=int, metavar="N", help=train_help)
    if test:
        p.add_argument("--test-subset", type=int, metavar="N", help="test on a seeded random N images")
    p.add_argument("--tinyimagenet-split", choices=("official", "original"), default="official",
                   help="original: as the NeuralScale code, 25 val + 25 test images per class of the official val set "
                        "(the first and last 25 by image number)")


def _train_parser(sub) -> None:
    d = TrainConfig()
    p = sub.add_parser("train", help="train one network from scratch",
                       description="Train one network from scratch and record every epoch. Models are selected on a "
                                   "validation split carved from the training set; the test set is only reported.")
    g = _add_space_args(p)
    g.add_argument("--params", type=_budget("params"), metavar="N|P%",
                   help="train --method's configuration for this parameter budget: a count or a share of the base "
                        "model (25%%)")
    g.add_argument("--macs", type=_budget("macs"), metavar="N|P%", help="the same for a MACs budget (50%%)")
    p.add_argument("--method", metavar="METHOD",
                   help="uniform (default with --params/--macs), morphnet, neuralscale, or the ablations pruned "
                        "and shape: the method's widths for the budget (--ratio, --params or --macs); all but "
                        "uniform need --from")
    p.add_argument("--from", dest="source", metavar="DIR|FIT.json", help="descent directory or fit file (--method)")
    p.add_argument("--iteration", type=_iteration, metavar="K|first|last",
                   help="descent iteration whose law to use (default: last)")
    _add_convert(p)
    p.add_argument("--init-from", metavar="RUN", help="start from this finished run's weights (same model, no layer "
                   "narrower): in each layer its channels with the largest L1 filter norms. For fine-tuning; the "
                   "paper trains from scratch")
    _add_recipe(p)
    p.add_argument("--preset", choices=("paper",), help="the paper's protocol for the dataset "
                   f"({_DEF.epochs} epochs CIFAR, {_TINY.epochs} TinyImageNet); the options given override it")
    p.add_argument("--seed", type=int, default=0, help="training seed: initial weights, batch order, augmentation "
                   "(default 0; the validation split's own seed is fixed)")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--cuda-graphs", action="store_true",
                   help="replay the training step as one captured CUDA graph (CUDA only; small networks at small "
                        "batches, which kernel launches bound, train several times faster)")
    p.add_argument("--channels-last", action="store_true",
                   help="channels_last memory format (default: on CUDA; on the CPU per model, where it is "
                        "faster and oneDNN does not hang on layers of 1-2 channels; never for a model that views a "
                        "map as a vector, x.view(x.size(0), -1))")
    p.add_argument("--val-fraction", type=float, default=d.val_fraction,
                   help=f"fraction of the training set held out for validation (default {d.val_fraction})")
    _add_data_args(p, "train on a seeded random N images (quick looks); the validation split, held out of the whole "
                   "training set first, is cut in proportion (N/9 images at --val-fraction 0.1)", test=True)
    p.add_argument("--out", metavar="DIR", help="write record.json, metrics.csv and a checkpoint here (resumable)")
    _add_force(p, "run directory")
    _add_json(p, "the configuration, the run's id, budget and summary")
    p.add_argument("--quiet", action="store_true", help="no progress output")


def _add_convergence_args(p, dd: DescentConfig) -> None:
    p.add_argument("--until-converged", action="store_true",
                   help="stop before --iterations once the configuration at the base parameter count has moved "
                        "less than --converge-tolerance (every layer, relative) for --converge-patience iterations "
                        "in a row (the log says before each iteration how far the last law moved it, and where)")
    p.add_argument("--converge-tolerance", type=float, default=dd.converge_tolerance,
                   help=f"default {dd.converge_tolerance}")
    p.add_argument("--converge-patience", type=int, default=dd.converge_patience,
                   help=f"default {dd.converge_patience}")


def _add_objective_args(p, dd: DescentConfig) -> None:
    p.add_argument("--objective", choices=OBJECTIVES, default=dd.objective,
                   help="what the laws are fitted against and pruning saves: params (the paper's: tau is the "
                        "parameter count, channels ranked by Taylor-FO), macs (tau is MACs per image; each channel's "
                        "score divided by the MACs its removal saves) or latency (tau is the latency estimated from "
                        "per-operation tables measured on --latency-device, kept in DIR/latency_table.json; scores "
                        "per ms saved). Default params")
    p.add_argument("--latency-device", default=dd.latency_device,
                   help="--objective latency: where the network will run, and its latency is measured (default cpu)")
    p.add_argument("--latency-batch", type=int, default=dd.latency_batch,
                   help="--objective latency: the batch size measured (default 1)")


def _descend_parser(sub) -> None:
    dd = DescentConfig()
    p = sub.add_parser("descend", help="architecture descent: prune, fit a scaling law, rebuild, repeat",
                       description="Run NeuralScale's architecture descent, by the original implementation's rules "
                                   "(docs/FIDELITY.md). Each iteration trains a network on every training image with "
                                   "Taylor-FO pruning until --prune-fraction of its channels are gone (or, for the "
                                   "paper's families, a step would remove a layer's last channel), records the "
                                   "per-layer widths, and fits width = alpha * tau^beta per layer (tau: the "
                                   "parameters, or the --objective's MACs or latency); the next iteration starts "
                                   "from that law at the base network's tau. An iteration with too few rows for a fit stops the "
                                   "descent (exit status 2) unless --allow-fallback. Rerun the same command to "
                                   "continue where it stopped.")
    _add_space_args(p, widths=False)
    p.add_argument("--iterations", type=int, default=dd.iterations, help=f"default {dd.iterations}")
    p.add_argument("--warmup-epochs", type=int, default=dd.warmup_epochs, help=f"epochs before pruning starts (default {dd.warmup_epochs})")
    p.add_argument("--prune-fraction", type=float, default=dd.prune_fraction, help=PRUNE_FRACTION_HELP)
    p.add_argument("--prune-k", type=int, help="channels pruned per step (default: 10 per full-width network, in "
                   "proportion, at least 1: 1 from VGG11 at 1/8 width; 1 per 64 channels for others under 640)")
    p.add_argument("--prune-interval", type=int, default=None,
                   help=f"mini-batches between pruning steps (default {_DEF.prune_interval}; {_TINY.prune_interval} "
                   "for TinyImageNet, as the original)")
    p.add_argument("--batch-size", type=int, default=None, help=f"default {_DEF.prune_batch_size} "
                   f"({_TINY.prune_batch_size} for TinyImageNet, as the original)")
    p.add_argument("--lr", type=float, default=dd.lr,
                   help=f"learning rate before epoch --warmup-epochs (default {dd.lr}); from it on 0.01, divided by "
                        "1.5 every 10 epochs (the original's schedule)")
    p.add_argument("--add10", action=argparse.BooleanOptionalAction, default=None,
                   help="add 10 channels to every layer under 10 when the next iteration is built from a law "
                        "(default: on for resnet18 and mobilenetv2, off for vgg11 and generic models, as the original)")
    p.add_argument("--prune-past-one", action=argparse.BooleanOptionalAction, default=None,
                   help="keep pruning past a layer's last channel (skip it) up to --prune-fraction; default: off for "
                        "vgg11, resnet18 and mobilenetv2 (pruning ends at the first step that would empty a layer, as "
                        "the original), on for every other model")
    p.add_argument("--trajectory-start", choices=TRAJECTORY_STARTS,
                   help="all-lost: record rows once every layer has lost a channel (the original; default for the "
                        "paper's families); per-layer: from the first step, each layer fitted from its own first "
                        "loss (default for every model but the paper's families)")
    p.add_argument("--val-fraction", type=float, default=dd.val_fraction,
                   help="hold out this fraction of the training set (default 0: a descent selects nothing, and "
                        "the original prunes on every training image)")
    _add_convergence_args(p, dd)
    _add_objective_args(p, dd)
    p.add_argument("--allow-fallback", action="store_true",
                   help="go on when an iteration records too few trajectory rows for a fit (its law is then "
                        "uniform scaling, as the original does); default: stop with an error")
    p.add_argument("--base-ratio", type=float, default=1.0,
                   help="start from every base width times R (0 < R <= 1), keeping its parameter count")
    p.add_argument("--masking", action="store_true", help="prune by masking gates only (no physical shrinking)")
    p.add_argument("--amp", action="store_true", help="bf16 autocast on CUDA (default: float32, as the original)")
    p.add_argument("--max-epochs", type=int, help="cap on epochs per iteration (default: what pruning needs); one "
                                                    "it stops continues when rerun with a higher cap, or none")
    p.add_argument("--seed", type=int, default=0, help="seed of the descent's training (default 0)")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
    _add_data_args(p, "prune on a seeded random N training images", test=True)  # (test: when pruning ends)
    p.add_argument("--out", metavar="DIR", required=True, help="the descent directory (trajectories, fits.json, logs)")
    _add_force(p, "descent directory")
    p.add_argument("--plots", action="store_true", help="also write the growth and heatmap figures into DIR")
    _add_json(p, "the configuration at the base parameter count and every iteration's law")
    p.add_argument("--quiet", action="store_true", help="no progress output")


def _fit_parser(sub) -> None:
    p = sub.add_parser("fit", help="fit the power law to a pruning trajectory",
                       description="Fit width_l = alpha_l * tau^beta_l per layer by least squares in log space "
                                   "(tau: total parameters of each row's widths). Reads neuralscale's trajectories "
                                   "and the original implementation's header-less CSVs.")
    p.add_argument("trajectory", metavar="TRAJECTORY.csv", help="a descent's iteration_NN.csv, or the original "
                   "implementation's trajectory CSV")
    _add_space_args(p, widths=False, required=False)
    p.add_argument("--tau", choices=("auto", "exact", "original"), default="auto",
                   help="parameter count used as tau: exact (the built model) or original (the original code's "
                        "formula); auto: original for header-less original CSVs, exact otherwise")
    p.add_argument("--trajectory-start", choices=TRAJECTORY_STARTS,
                   help="per-layer: each layer fitted from its own first loss (from the widths the iteration started "
                        "from: a trajectory in its descent directory); all-lost: the rows as they are; default: as "
                        "the descent that wrote the file (so that fit gives its law), else all-lost")
    p.add_argument("--out", metavar="FIT.json", help="write the law here (a new file; see --force)")
    p.add_argument("--force", action="store_true", help="overwrite --out if it exists (never a file in a run or "
                   "descent directory or a sweep store: their records)")
    _add_json(p, "the law (alpha, beta, R^2 in layer order)")


def _scale_parser(sub) -> None:
    p = sub.add_parser("scale", help="a width configuration for a budget",
                       description="Solve a scaling method for a budget. uniform: every base width times one ratio; "
                                   "morphnet: the widths left after pruning 50% of the channels (iteration 1 of a "
                                   "descent), scaled uniformly; neuralscale: the fitted power law of a descent "
                                   "iteration; the ablations pruned (iteration 1's widths where its pruning ended) "
                                   "and shape (the widths --iteration started from), scaled uniformly. --ratio R "
                                   "means the parameter budget of uniform scaling by R.")
    _add_space_args(p, widths=False)
    p.add_argument("--method", required=True, metavar="METHOD", help=", ".join(SCALED))
    p.add_argument("--from", dest="source", metavar="DIR|FIT.json",
                   help="descent directory (morphnet, neuralscale, pruned, shape) or fit file (neuralscale)")
    p.add_argument("--iteration", type=_iteration, metavar="K|first|last",
                   help="descent iteration whose law to use (default: last)")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--ratio", type=float, help="the parameter count of uniform scaling by R")
    g.add_argument("--params", type=_budget("params"), metavar="N|P%",
                   help="parameter budget: a count (2795410, 2.8M) or a share of the base model (25%%)")
    g.add_argument("--macs", type=_budget("macs"), metavar="N|P%",
                   help="MACs-per-image budget: a count (150M) or a share of the base model (50%%)")
    g.add_argument("--latency-ms", type=_budget("latency"), metavar="MS|P%",
                   help="measured latency budget in ms, or a share of the base model's (see --device, --batch)")
    p.add_argument("--device", default="cpu", help="device for --latency-ms (default cpu)")
    p.add_argument("--batch", type=int, default=1, help="batch size for --latency-ms (default 1)")
    p.add_argument("--min-width", type=int, default=1, help="no layer narrower than this (default 1)")
    p.add_argument("--multiple", type=int, default=1, help="round widths to a multiple of this, e.g. 8 (default 1)")
    _add_convert(p)
    _add_json(p, "the configuration, budget, achieved cost and warnings")


def _add_sweep_budgets(p) -> None:
    p.add_argument("--ratios", type=_floats, metavar="R1,R2", help="budgets: parameter counts of uniform scaling by R")
    p.add_argument("--params", type=_budgets("params"), metavar="N1,N2",
                   help="budgets: parameter counts (2.8M) or shares of the base model (25%%,50%%)")
    p.add_argument("--macs", type=_budgets("macs"), metavar="N1,N2",
                   help="budgets: MACs per image (150M) or shares of the base model's (50%%)")
    p.add_argument("--latency-ms", dest="latency", type=_budgets("latency"), metavar="MS1,MS2",
                   help="budgets: inference latency in ms, or shares of the base model's (50%%), measured on the "
                        "CPU at batch 1 once and kept in sweep.json (not for l1-prune, l1-global, slimming)")


def _add_recipe(p) -> None:
    """The training recipe's flags, train's and a sweep's alike: TrainConfig's defaults, or a --preset's, where not
    given."""
    d = TrainConfig()
    p.add_argument("--epochs", type=int, help=f"default {d.epochs}")
    p.add_argument("--batch-size", type=int, help=f"default {d.batch_size}")
    p.add_argument("--lr", type=float, help=f"initial learning rate (default {d.lr})")
    p.add_argument("--momentum", type=float, help=f"SGD momentum (default {d.momentum}, the paper's)")
    p.add_argument("--weight-decay", type=float, help=f"default {d.weight_decay}")
    p.add_argument("--schedule", choices=SCHEDULES,
                   help="learning-rate schedule: step (x0.1 at 1/3, 2/3, 5/6 of the epochs, the paper's; the "
                        "default), cosine, constant; prune, prune-tinyimagenet: the original's descent schedules "
                        "(0.01 after the warm-up, then /1.5 every 10 epochs)")
    p.add_argument("--no-augment", action="store_true", help="no random crop/flip")
    p.add_argument("--amp", action=argparse.BooleanOptionalAction, default=None,
                   help="bf16 autocast (default: on CUDA, not on the CPU); --no-amp: float32 throughout, as the "
                        "original trains")


def _sweep_parser(sub) -> None:
    p = sub.add_parser("sweep", help="train every method at every budget over several seeds",
                       description="Train each scaling method at each budget with each seed, from scratch, with one "
                                   "recipe, into a run store (one record per run). Rerun the same command to skip "
                                   "finished runs and resume interrupted ones.",
                       epilog="example:\n  neuralscale sweep --model vgg11 --dataset fashionmnist --preset quick "
                              "--from runs/descent --out runs/sweep --report",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_space_args(p, widths=False)
    p.add_argument("--preset", choices=PRESETS,
                   help=f"paper: the paper's ratios, 5 seeds and {_DEF.epochs}/{_TINY.epochs}-epoch recipe; quick: "
                   "ratios 0.25,0.5, 2 seeds, 5 epochs")
    p.add_argument("--methods", type=_words, metavar="M1,M2",
                   help=f"from {', '.join(BASE_METHODS)}; neuralscale@K, shape@K for one descent iteration "
                        "(default uniform,morphnet,neuralscale). Runs of a descent of --objective macs are labelled "
                        "neuralscale-macs@K (neuralscale-macs names it here too), so that one store holds both")
    _add_sweep_budgets(p)
    p.add_argument("--seeds", type=_ints, metavar="S1,S2", help="training seeds (default 0,1,2)")
    p.add_argument("--from", dest="descent", metavar="DESCENT_DIR",
                   help="descent directory (morphnet, neuralscale, pruned, shape)")
    p.add_argument("--iterations", type=_words, metavar="first,last",
                   help="neuralscale, shape: which descent iterations (first, last or numbers; default last)")
    _add_convert(p)
    _add_recipe(p)
    p.add_argument("--val-fraction", type=float, metavar="F",
                   help="fraction of the training set held out for validation, which selects each run's reported "
                        "epoch (default 0.1; 0: every training image, as the original trains: then report with "
                        "--accuracy final)")
    p.add_argument("--finetune-epochs", type=int, help="l1-prune, l1-global, slimming: fine-tuning epochs (default 40)")
    p.add_argument("--finetune-lr", type=float, help="l1-prune, l1-global, slimming: fine-tuning learning rate (default 0.001)")
    p.add_argument("--pretrain-ratio", type=float, metavar="R",
                   help="l1-prune, l1-global, slimming: prune a network trained at uniform ratio R (default 1: the "
                        "full width); the budgets at or above it prune nothing")
    p.add_argument("--slimming-sparsity", type=float,
                   help="slimming: train the network it prunes with this L1 penalty on the batch norms' scales "
                        "(network slimming's sparsity training; default 1e-4, the original's; 0: without)")
    _add_data_args(p, "train every run on a seeded random N images; the validation split, held out of the whole "
                   "training set first, is cut in proportion (N/9 images: it is a tenth of the training set)",
                   test=True)
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
    p.add_argument("--out", metavar="DIR", required=True, help="the run store (sweep.json, runs/)")
    _add_force(p, "run store")
    p.add_argument("--retry-failed", action="store_true", help="run failed runs again")
    _add_executor(p)
    p.add_argument("--report", action="store_true", help="write the report when the sweep is done")
    _add_json(p, "counts and every run (its widths, params, macs and accuracies)")
    p.add_argument("--quiet", action="store_true", help="no progress output")


def _add_executor(p) -> None:
    """`sweep`'s executor and its resources."""
    p.add_argument("--executor", "--backend", dest="executor", choices=("sequential", "local", "ray"),
                   help="sequential: one run after another in this process (the default, unless --workers or "
                        "--devices is given: then local, as an experiment's does); local: --workers processes on "
                        "this machine; ray: each run a Ray task (needs neuralscale[ray])")
    p.add_argument("--workers", type=int, help="local: concurrent runs (default 2); ray: at most this many at once")
    p.add_argument("--devices", type=_words, metavar="cuda:0,cuda:1",
                   help="local: devices to pin workers to, round-robin (e.g. 8 workers on 2 GPUs = 4 runs per GPU)")
    p.add_argument("--threads", type=int, help="CPU threads per run (default: cores / workers; ray: --cpus-per-run)")
    p.add_argument("--address", metavar="HOST:PORT",
                   help="ray: the cluster to join (default: RAY_ADDRESS, else a local one for this sweep)")
    p.add_argument("--gpus-per-run", type=float, metavar="F",
                   help="ray: GPU share of each run (0.25 = 4 runs per GPU; default 0 = CPU)")
    p.add_argument("--cpus-per-run", type=float, metavar="N", help="ray: CPUs of each run (default 1)")


def _report_parser(sub) -> None:
    p = sub.add_parser("report", help="report of a sweep, rebuilt from its run records",
                       description="Write DIR/report/report.md and report.html (self-contained) with accuracy "
                                   "against parameters, MACs and latency, per-layer widths, the descent's figures, "
                                   "and a table of mean and std over seeds with each method's gap to uniform.")
    p.add_argument("store", metavar="DIR", help="a sweep's output directory (or a folder of run directories of one "
                   "model, dataset and recipe)")
    p.add_argument("--accuracy", choices=tuple(ACCURACY), default="best-val",
                   help="best-val: test accuracy at the best validation epoch (default); final: at the last epoch; "
                        "original: best test epoch (the paper's protocol, selects on test; labelled as such)")
    p.add_argument("--out", metavar="DIR", help="where to write (default DIR/report)")
    p.add_argument("--descent", metavar="DIR", help="descent directory for the growth and heatmap figures, the "
                   "descent table and the laws (default: the one sweep.json records; refused unless it holds the "
                   "laws the runs were planned with)")
    p.add_argument("--model", metavar="file:PATH.py:NAME", help="the runs' network, where their records name a model "
                   "file where it lay before (moved with the runs): the file as it lies now, for the layers and "
                   "descent figures (a sweep's store: its sweep.json says where the file lies beside it)")
    p.add_argument("--format", type=_words, default=("png",), metavar="png,svg,pdf",
                   help="figure files to write (default png; the page embeds PNG, else SVG)")
    p.add_argument("--band", choices=BANDS, default="ci",
                   help="band around each accuracy curve: ci (95%% confidence interval of the mean over seeds, "
                        "default), minmax, none")
    _add_json(p, "the table's rows and every run (its widths, params, macs and accuracies)")
    p.add_argument("--no-figures", dest="figures", action="store_false",
                   help="the text and tables only, without drawing a figure (about half the time)")
    p.add_argument("--force", action="store_true",
                   help="write into --out even if it holds other files than an earlier report")


def _export_parser(sub) -> None:
    p = sub.add_parser("export", help="save a trained run's network as widths (JSON) + weights, optionally ONNX",
                       description="Export a finished run (a run directory of a sweep or of `train --out`) as "
                                   "NAME.json (model, dataset, widths) and NAME.pt (weights). "
                                   "neuralscale.export.load_model('NAME.json') rebuilds it in one call.")
    p.add_argument("run", metavar="RUN_DIR", help="a finished run's directory (runs/<id> in a sweep's store, or "
                   "train --out)")
    p.add_argument("--out", metavar="NAME", required=True, help="writes NAME.json and NAME.pt (and NAME.onnx)")
    p.add_argument("--onnx", action="store_true", help="also export to ONNX (needs neuralscale[onnx]) and check it")
    p.add_argument("--model", metavar="file:PATH.py:NAME", help="the run's network, where its record names a model "
                   "file where it lay before (a study moved with its file): the file as it lies now")
    p.add_argument("--force", action="store_true", help="overwrite existing NAME.* files (an earlier export's NAME.onnx "
                   "is removed first; --onnx writes this network's); never files in a run or descent directory or a "
                   "sweep store")
    _add_json(p, "the files written and the configuration")


def _experiment_parser(sub) -> None:
    p = sub.add_parser("experiment", help="descent + sweep + report from one TOML file",
                       description="Run a whole experiment described in a TOML file ([experiment], [data], "
                                   "[descent], [sweep], [sweep.train], [executor], [report]); see examples/demo.toml. "
                                   "Rerun to continue. The last line printed is the report's path.")
    p.add_argument("file", metavar="FILE.toml", help="the experiment (examples/demo.toml is one)")
    p.add_argument("--out", metavar="DIR", help="override [experiment] out")
    _add_force(p, "run store")
    p.add_argument("--retry-failed", action="store_true", help="run failed runs again")
    p.add_argument("--workers", type=int, metavar="N", help="override [executor] workers (concurrent runs; a "
                   "sequential executor becomes local workers)")
    p.add_argument("--threads", type=int, metavar="N", help="override [executor] threads (CPU threads per run)")
    p.add_argument("--devices", metavar="cuda:0,cuda:1", help="override [executor] devices (runs spread over them)")
    _add_json(p, "the report's table and every run, as report --json")
    p.add_argument("--quiet", action="store_true", help="no progress output")


def build_parser() -> argparse.ArgumentParser:
    """The command line's parser: built once per process for the model families registered then (about 8 ms of
    argparse's work each time: a program or test that calls `main` many times builds it once; a family registered
    later gets a new one, its help listing the family). Parsing leaves it as it was."""
    return _built_parser(tuple(FAMILIES))


@functools.lru_cache(maxsize=1)
def _built_parser(families: tuple[str, ...]) -> argparse.ArgumentParser:
    parser = _Parser(prog="neuralscale", formatter_class=argparse.RawDescriptionHelpFormatter,
                     description="Find how wide each layer of a CNN should be for a budget (NeuralScale), and prove it.",
                     epilog=EPILOG)
    parser.add_argument("--version", action="version", version=f"neuralscale {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for add in (_info_parser, _train_parser, _descend_parser, _fit_parser, _scale_parser, _sweep_parser,
                _report_parser, _export_parser, _experiment_parser):
        add(sub)
    return parser


def _json(obj) -> int:
    print(json.dumps(strict(obj), indent=2, default=str))
    return 0


def _shares(info: dict) -> str:
    return f"{100 * info['params_share']:.1f}% of the base model's parameters, {100 * info['macs_share']:.1f}% of its MACs"


def cmd_export(args) -> int:
    result = export_run(args.run, args.out, onnx=args.onnx, force=args.force, model=args.model)
    if args.json:
        return _json(result)
    print(f"widths: {result['json']}")
    acc = result.get("final_test_acc")
    best = result.get("best_val_epoch")
    print(f"weights: {result['weights']} (the final epoch's, {result.get('weights_epoch')}"
          + (f": test accuracy {acc:.2f}%" if acc is not None else "")
          + (f"; the best-validation epoch, {best}, is in the record, not kept as weights)"
             if best is not None and best != result.get("weights_epoch") else ")"))
    print(f"input: {pixels_text(result['dataset'])}; classes in the JSON's \"classes\"")
    if args.onnx:
        check = (f" (onnxruntime matches PyTorch to {result['max_abs_diff']:.2g})" if result["checked"]
                 else " (not checked: onnxruntime is not installed)")
        print(f"onnx: {result['onnx']}{check}")
    return 0



def _given(args, cls, *, skip: tuple[str, ...] = ()) -> dict:
    """The settings of configuration `cls` a command was given, as its fields: every flag is read through the
    declaration on the dataclass (settings.option), as an experiment file's keys are; flags left out are left out."""
    names = cls.flags()
    table = {k: v for k, v in vars(args).items()
             if k in names and k not in skip and v is not None and not (names[k][1] and v is False)}
    return cls.keys_from_flags(table)


def _data_settings(args, *keys: str) -> dict:
    """The data settings a command was given, as DataConfig's (and a record's) keys; defaults left out."""
    d = {k: v for k, v in _given(args, DataConfig, skip=("dataset",)).items() if k in keys}
    if d.get("tinyimagenet_split") == "official":
        del d["tinyimagenet_split"]
    return d


def cmd_sweep(args) -> int:
    train = _given(args, TrainConfig)
    if args.report and train.get("val_fraction") == 0:  # refused before hours of training, as an experiment's is
        raise NeuralscaleError("--report selects each run's epoch on its validation split, and --val-fraction 0 holds "
                               "none: leave --report out and run `neuralscale report --accuracy final` after")
    data = _data_settings(args, "train", "test", "data_dir", "tinyimagenet_split")
    fields = _given(args, SweepConfig, skip=("model", "dataset", "convcut"))
    cfg = sweep_config(args.model, args.dataset, preset_name=args.preset, train=train, convcut=args.convcut, data=data,
                       **fields)
    executor = get_executor(args.executor, workers=args.workers, devices=args.devices, threads=args.threads,
                            address=args.address, gpus_per_run=args.gpus_per_run, cpus_per_run=args.cpus_per_run)
    records = run_sweep(cfg, args.out, progress=not args.quiet, retry_failed=args.retry_failed, executor=executor,
                        force=args.force)
    counts = {s: sum(r is not None and r["status"] == s for r in records) for s in ("finished", "failed")}
    stored = load_records(args.out) if args.report else []  # the store's, earlier sweeps' included
    reportable = any(r["status"] == "finished" for r in stored)
    if args.report and not reportable:  # nothing to report: exit 1 says why
        logging.getLogger("neuralscale").warning("warning: no report: none of the %d run(s) in %s finished",
                                                 len(stored), args.out)
    report = build_report(args.out, model=cfg.model)["document"] if reportable else None
    if args.json:
        _json({"model": cfg.model, "dataset": cfg.dataset, "store": args.out, **counts, "total": len(records),
               "report": report and report["report"], "html": report and report["html"],
               "runs": [run_summary(r) for r in records if r is not None]})
    else:
        print(f"{counts['finished']} of {len(records)} runs finished, {counts['failed']} failed: {args.out}")
        if report:
            print(report["html"])
    return _failed_runs(counts["failed"], len(records))


def _failed_runs(failed: int, total: int) -> int:
    """Exit status 1 when runs failed (their records say why), with the count on stderr; else 0."""
    if failed:
        print(f"neuralscale: {failed} of {total} run(s) failed; see their record.json, and rerun with "
              "--retry-failed to try them again", file=sys.stderr)
        return 1
    return 0


def cmd_report(args) -> int:
    result = build_report(args.store, accuracy=args.accuracy, out=args.out, descent=args.descent, force=args.force,
                          formats=args.format, bands=args.band, figures=args.figures, model=args.model)
    if args.json:
        return _json(result["document"])
    said = "" if args.accuracy == "best-val" else f"  ({ACCURACY_SHORT[args.accuracy]})"  # on every line
    if result["rows"] and not said:  # (the default's accuracy, said once above its lines)
        print(f"{ACCURACY[args.accuracy][1]}, mean ± std over seeds:")
    for r in result["rows"]:
        gap = "" if r["gap_to_uniform"] is None else f"  gap {r['gap_to_uniform']:+.2f}"
        print(f"{r['label']:<16} {r['budget']:<14} n={r['n']}  {r['params']:>10,} params  "
              f"{mean_std(r['mean'], r['std'], r['n']):>16}{gap}{said}")
    print(result["markdown"])
    print(result["html"])
    return 0


def cmd_experiment(args) -> int:
    executor = {"workers": args.workers, "threads": args.threads,
                "devices": args.devices.split(",") if args.devices else None}
    result = run_experiment(args.file, out=args.out, progress=not args.quiet, retry_failed=args.retry_failed,
                            executor=executor, force=args.force)
    if args.json:
        _json(result["document"] or {"report": None, "runs": [run_summary(r) for r in result["records"]]})
    elif result["document"] is not None:
        print(result["markdown"])
        print(result["html"])
    return _failed_runs(sum(r["status"] == "failed" for r in result["records"]), len(result["records"]))


def cmd_descend(args) -> int:
    cfg = DescentConfig.from_dict(_given(args, DescentConfig))
    laws = descend(args.model, args.dataset, args.out, cfg, data_dir=args.data_dir, convcut=args.convcut,
                   subset=_data_settings(args, "train", "test", "tinyimagenet_split"), progress=not args.quiet,
                   plots=args.plots, force=args.force)
    at_base = laws.configuration()
    if args.json:
        return _json({**at_base, "out": args.out, "iterations": len(laws), "laws": [law.to_dict() for law in laws]})
    print(f"{len(laws)} iteration(s) in {args.out}, fitted against {UNITS[cfg.objective]}; last law: beta = "
          + ", ".join(f"{b:.3f}" for b in laws[-1].beta))
    for law in laws:
        print(f"  iteration {law.iteration}: {law.quality()}")
    where = ("the full model's" if cfg.base_ratio == 1 else  # not the full model's: where the descent started
             f"the descent's base (the {cfg.base_ratio:g}-width network it started from):")
    print(f"at {where} {amount(at_base['budget'], at_base['metric'])}: widths {','.join(map(str, at_base['widths']))}")
    return 0


def cmd_fit(args) -> int:
    if args.model is None or args.dataset is None:  # a descent's trajectory: the model and data it records
        recorded = DescentDir(Path(args.trajectory).parent).config() if Path(args.trajectory).is_file() else None
        if recorded is None:
            raise NeuralscaleError(f"{args.trajectory} is not in a descent directory: give --model and --dataset")
        if args.model is None and gone(recorded["model"]):  # a descent moved with its file since
            raise NeuralscaleError(f"the descent records {recorded['model']}, and that file is not there now (it "
                                   "lay there when the descent ran): give --model file:PATH.py:NAME where it lies now")
        args.model = args.model or recorded["model"]
        args.dataset = args.dataset or recorded["dataset"]
        args.data_dir = args.data_dir or (recorded.get("data") or {}).get("data_dir")
    sp = make_space(args.model, args.dataset, convcut=args.convcut, data_dir=args.data_dir)
    law = fit_trajectory(args.trajectory, sp, tau=args.tau, out=args.out, force=args.force,
                         trajectory_start=args.trajectory_start)
    if args.json:
        return _json({**law.to_dict(), "out": args.out})
    if law.fallback:
        print(f"note: {law.note}")
    print(f"{law.model} on {law.dataset}: {law.quality()}")
    name_w = max(len(n) for n in law.layers)
    held = law.holdout_error or [None] * len(law.layers)
    for n, a, b, r2, e in zip(law.layers, law.alpha, law.beta, law.r2, held):
        print(f"  {n:<{name_w}}  alpha {a:12.6g}  beta {b:8.5f}  R^2 {r2:.4f}"
              + (f"  out-of-sample error {e:.1%}" if e is not None else ""))
    if args.out:
        print(f"law: {args.out}")
    return 0


def cmd_scale(args) -> int:
    sp = make_space(args.model, args.dataset, convcut=args.convcut, data_dir=args.data_dir)
    budget = Budget.of_ratio(args.ratio) if args.ratio is not None else next(
        b for b in (args.params, args.macs, args.latency_ms) if b is not None)
    if args.method == "uniform" and (args.source is not None or args.iteration is not None):
        # accepted, so that one command line serves a loop over methods, and said, so that it is not silent
        logging.getLogger("neuralscale").info("note: --method uniform scales the base model; --from and "
                                              "--iteration apply to the methods of a descent and are not used")
        args.source = args.iteration = None
    result = scale(sp, args.method, budget, source=args.source, iteration=args.iteration,
                   min_width=args.min_width, multiple=args.multiple, device=args.device, batch_size=args.batch,
                   convert=args.convert)
    if args.json:
        return _json(result)
    label = method_label(result["method"], result["iteration"], result.get("objective") or "params")
    print(f"{label} {sp.name} on {sp.info.name}: widths {','.join(map(str, result['widths']))}")
    print("  " + ", ".join(f"{n} {w}" for n, w in zip(sp.layer_names, result["widths"])))  # (by layer, as info)
    print(f"params {result['params']:,}  macs {result['macs']:,}  ({_shares(result)})")
    print(f"budget {amount(result['budget'], result['metric'])}, achieved "
          f"{amount(result['achieved'], result['metric'])} "
          f"({100 * result['rel_error']:+.2f}%)")
    if result["method"] == "neuralscale":  # how far to trust it, beside what it gives (not a warning: most laws of
        # a short descent predict their own last rows poorly; the report's Laws section says the same)
        print(f"law: {method_law(sp, 'neuralscale', args.source, args.iteration).quality()}")
    if "measured" in result:
        m = result["measured"]
        print(f"measured again on {m['device']}: {m['median_ms']:.4g} ms (interquartile range {m['iqr_ms']:.3g} ms), "
              f"{100 * m['rel_error']:+.1f}% from the budget: {'within' if m['within'] else 'NOT within'} the "
              f"tolerance of {100 * m['tolerance']:.1f}%")
    return 0


def cmd_info(args) -> int:
    sp = make_space(args.model, args.dataset, convcut=args.convcut, data_dir=args.data_dir)
    widths = resolve_widths(sp, args.widths, args.ratio)
    unused = [flag for flag, given in (("--device", args.device != INFO_DEVICE), ("--batch", args.batch != INFO_BATCH))
              if given]
    if unused and not args.latency:  # as scale's unused --from: said, not silently ignored
        logging.getLogger("neuralscale").info("note: %s %s used only with --latency; nothing is measured",
                                              " and ".join(unused), "is" if len(unused) == 1 else "are")
    info = describe(sp, widths, latency_batch=args.batch if args.latency else None, device=args.device)
    if args.source and not Path(args.source).is_dir():
        raise NeuralscaleError(f"--from {args.source} " + ("is a file; give its descent directory"
                               if Path(args.source).exists() else "does not exist"))
    laws = DescentDir(args.source).laws() if args.source else []
    if args.source and not laws:
        raise NeuralscaleError(DescentDir(args.source).none_finished())
    for law in laws:
        law.check_space(sp)
    tied = {n: t for n, t in getattr(getattr(sp, "generic", None), "tied", {}).items() if t}  # (an analysed model's)
    if args.json:
        laws_json = [{**law.to_dict(), "quality": law.quality()} for law in laws]
        return _json({**info, **({"tied": tied} if tied else {}), **({"laws": laws_json} if args.source else {})})
    print(f"{info['model']} on {info['dataset']} (input {'x'.join(map(str, sp.info.input_shape))}, "
          f"{sp.info.num_classes} classes)")
    name_w = max(len(n) for n in info["layers"])
    for n, w, b in zip(info["layers"], widths, sp.base_widths):
        also = f"  also sets {', '.join(tied[n])}" if n in tied else ""
        print(f"  {n:<{name_w}}  {w:>6}  (base {b}){also}")
    print(f"params  {info['params']:,} ({100 * info['params_share']:.1f}% of the base model)")
    print(f"macs    {info['macs']:,} per image ({info['macs'] / 1e6:.2f} M, {100 * info['macs_share']:.1f}% of the base "
          "model)")
    if args.latency:
        lat = info["latency"]
        for bs, m in lat["batches"].items():
            print(f"latency batch {bs}: median {m['median_ms']:.3f} ms (p10 {m['p10_ms']:.3f}, p90 {m['p90_ms']:.3f}, "
                  f"interquartile range {m['iqr_ms']:.3f}), {m['per_image_ms']:.4f} ms/image on {lat['device']}"
                  + ("; UNSTABLE: the spread is over 20% of the median (another process busy?), measure again"
                     if unstable(m["median_ms"], m["iqr_ms"]) else ""))
    for law in laws:
        against = "" if law.fallback else f"; fitted against {UNITS[law.objective]}"
        print(f"{args.source} iteration {law.iteration}: {law.quality()}{against}")
    return 0


def _train_config(args) -> TrainConfig:
    """`train`'s recipe: the options given, over --preset's or the defaults (flags left out are left out)."""
    fields = _given(args, TrainConfig, skip=("channels_last",))  # --channels-last: on; left out: the device's rule
    return train_config(args.dataset, preset=args.preset, **fields,
                        **({"channels_last": True} if args.channels_last else {}))


def cmd_train(args) -> int:
    config = _train_config(args)
    subset = _data_settings(args, "train", "test", "tinyimagenet_split")
    record = train(args.model, args.dataset, widths=args.widths, ratio=args.ratio, method=args.method,
                   params=args.params, macs=args.macs, source=args.source, iteration=args.iteration, config=config,
                   data_dir=args.data_dir, out_dir=args.out, subset=subset, progress=not args.quiet,
                   convcut=args.convcut, init_from=args.init_from, convert=args.convert, force=args.force)
    s = record["summary"]
    if args.json:
        _json({**describe_run(record, args.model), "out": args.out})
    else:
        fraction = (record.get("config") or {}).get("val_fraction")
        data = record.get("data") if isinstance(record.get("data"), dict) else {}  # (a record may lack it: by design)
        none = ("no validation split (--val-fraction 0)" if not fraction else  # asked for, but too few images
                f"no validation split ({fraction:g} of {_count(data.get('train'))}training images is none per class)")
        val = data.get("val")
        at_best = (f"test accuracy at best validation epoch ({s['best_val_epoch']}) {s['test_acc_at_best_val']:.2f}%"
                   + (f" (on {_count(val)}validation image{'s' * (val != 1)})" if val is not None else "")
                   if s.get("test_acc_at_best_val") is not None
                   else none)
        run = describe_run(record, args.model)  # (the network as it is made here: where its file lies now)
        init = record.get("init") if isinstance(record.get("init"), dict) else {}
        start = f", started from run {init.get('from_id')} ({init.get('from')})" if init else ""  # (a warm start)
        print(f"{record['label']} {run['model']} {record['params']:,} params "
              f"({_shares(run)}){start}: final test accuracy {s['final_test_acc']:.2f}%, " + at_best)
        if args.out:
            print(f"record: {RunDir(args.out).record}")
    return 0


def _count(n) -> str:
    """A record's count of images and a space, as a number is written (a damaged one as it is: the run is returned
    anyway); '' where the record has none."""
    return "" if n is None else f"{n:,} " if isinstance(n, int) and not isinstance(n, bool) else f"{n!r} "


COMMANDS = {"info": cmd_info, "train": cmd_train, "descend": cmd_descend, "fit": cmd_fit, "scale": cmd_scale,
            "sweep": cmd_sweep, "report": cmd_report, "experiment": cmd_experiment, "export": cmd_export}


def main(argv: Sequence[str] | None = None) -> int:
    import signal
    import threading
    here = threading.current_thread() is threading.main_thread()
    if here:  # (a call in another thread leaves the main thread's command as it is)
        started()
    previous = signal.signal(signal.SIGTERM, terminate) if here else None
    # one Ctrl-C stops it, and a second is not raised inside the first's handling; where Ctrl-C is ignored (a
    # job started in the background by a shell), it stays ignored
    previous_int = signal.getsignal(signal.SIGINT) if here else None
    if here and previous_int is not signal.SIG_IGN:
        signal.signal(signal.SIGINT, interrupt)
    try:
        return _main(argv)
    finally:
        if here:
            ended()  # (a signal its work lost is not sent again after it)
        if here and as_command():  # the command's process is ending: a signal now ends it as the system does
            signal.signal(signal.SIGTERM, signal.SIG_DFL)  # (not a traceback from an exit handler)
            if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
                signal.signal(signal.SIGINT, signal.SIG_DFL)
        elif here:  # a program calling main(): its handlers as they were
            signal.signal(signal.SIGTERM, previous)
            signal.signal(signal.SIGINT, previous_int)


RESUMABLE = ("train", "descend", "sweep", "experiment")  # the commands whose work a rerun continues


def _stopped(command: str | None) -> str:
    """What to do after a command was stopped (Ctrl-C, SIGTERM)."""
    if command in RESUMABLE:
        return "run the same command again to resume"
    if command == "report":
        return "run the same command again to build it"
    if command in ("export", "fit"):
        return "run it again (with --force if it had begun to write its files: they may be incomplete)"
    return "nothing was changed"


def _negative_values(argv: list[str]) -> list[str]:
    """`--params -5%` as `--params=-5%`: argparse takes a value starting with '-' for an option unless it reads as a
    plain number (-5, -0.5), so a negative amount with a unit or suffix ended in "expected one argument" instead of
    the budget's own line."""
    out: list[str] = []
    for token in argv:
        if out and out[-1].startswith("--") and "=" not in out[-1] and re.match(r"-\.?\d", token) \
                and not re.fullmatch(r"-\d+|-\d*\.\d+", token):
            out[-1] = f"{out[-1]}={token}"
        else:
            out.append(token)
    return out


def _main(argv: Sequence[str] | None) -> int:
    args = None
    try:
        parser = build_parser()
        args = parser.parse_args(_negative_values(sys.argv[1:] if argv is None else list(argv)))
        if args.command is None:
            parser.print_help()
            return 2
        configure_logging(quiet=getattr(args, "quiet", False))
        with warnings.catch_warnings():  # the API's warnings, each as one line (restored when the command ends)
            warnings.simplefilter("always", NeuralscaleWarning)
            warnings.showwarning = functools.partial(_show_warning, warnings.showwarning)
            return COMMANDS[args.command](args)
    except NeuralscaleError as e:
        message = "; ".join(line.strip() for line in str(e).splitlines() if line.strip())
        print(f"neuralscale: error: {message}", file=sys.stderr)
        return getattr(e, "exit_status", 2)
    except BrokenPipeError:  # output piped into head & co.
        import os
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt as e:  # Ctrl-C, or SIGTERM (command.Terminated)
        term = terminated(e)
        print(f"neuralscale: {'terminated (SIGTERM)' if term else 'interrupted'}; "
              f"{_stopped(getattr(args, 'command', None))}", file=sys.stderr)
        return 143 if term else 130
    except OSError as e:  # the file system said no (a name too long, a full disk, no permission): one line
        print(f"neuralscale: error: {_os_error(e)}", file=sys.stderr)
        return 2
    except MemoryError:
        print("neuralscale: error: out of memory; ask for less (a smaller batch, subset or model)", file=sys.stderr)
        return 2
    except OverflowError as e:  # a JSON file's integer of hundreds of digits where a float goes (a damaged file)
        print(f"neuralscale: error: a number too large to compute with ({e}); is an input file damaged?",
              file=sys.stderr)
        return 2
    except RuntimeError as e:  # PyTorch's allocators say it as a RuntimeError (CUDA's OutOfMemoryError is one)
        if not _out_of_memory(e):
            raise
        first = first_line(e, None, type(e).__name__)
        print(f"neuralscale: error: out of memory ({first}); ask for less (a smaller batch, subset, image size or "
              "model)", file=sys.stderr)
        return 2


def _out_of_memory(e: RuntimeError) -> bool:
    import torch
    text = str(e)
    cuda_oom = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)  # torch.OutOfMemoryError: 2.5+
    return isinstance(e, cuda_oom) or "can't allocate memory" in text or "out of memory" in text.lower()


def _show_warning(shown, message, category, filename, lineno, file=None, line=None) -> None:
    """A NeuralscaleWarning as the line `warning: ...` (through logging, so --quiet keeps it); others as Python
    shows them (`shown`)."""
    if issubclass(category, NeuralscaleWarning):
        logging.getLogger("neuralscale").warning("warning: %s", message)
    else:
        shown(message, category, filename, lineno, file, line)


def _os_error(e: OSError) -> str:
    """An OSError in one line, its file name shortened."""
    name = str(e.filename) if e.filename is not None else ""
    if len(name) > 120:
        name = name[:60] + "..." + name[-40:]
    return f"{e.strerror or type(e).__name__}" + (f": {name}" if name else "")


if __name__ == "__main__":
    sys.exit(main())
