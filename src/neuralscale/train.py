"""The one training loop: plain training, pruning and fine-tuning all run here.

Data lives on the training device as uint8 and is batched and augmented there
(see data/augment.py).  Behaviour beyond plain SGD (pruning, logging, early
stops) comes from callbacks, never from copies of this loop.
"""

from __future__ import annotations

import logging
import math
import os
import platform
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ._version import __version__
from .captured import CapturedStep, capturable, refused
from .data.augment import DeviceBatches, channel_stats
from .data.base import Splits, same_data
from .data import dataset_info
from .data.info import protocol
from .errors import EnvironmentFailure, NeuralscaleError, RunFailed, first_line, warn
from .memory import refuse_beyond
from .models.gate import gates
from .models.resizing import as_fresh
from .progress import progress_bar
from .records import atomic_torch_save
from .settings import DATA_ELSEWHERE, Settings, option
from .sgd import SGD
from .threads import Governor
from .validate import SEED_MAX, fraction

log = logging.getLogger(__name__)

SCHEDULES = ("step", "cosine", "constant", "prune", "prune-tinyimagenet")
EPOCH_LINE_S = 10.0  # epochs shorter than this are logged at most one line per this many seconds
PRUNE_LR = 0.01  # the original's learning rate from the end of warm-up on


@dataclass
class TrainConfig(Settings):
    """Everything that decides how a network is trained (the paper's defaults)."""

    WHAT = "training setting"
    ELSEWHERE = DATA_ELSEWHERE

    epochs: int = option(30, at_least=1)
    batch_size: int = option(128, at_least=1)
    lr: float = option(0.1, positive=True, what="learning rate (lr)")
    momentum: float = option(0.5, at_least=0)
    weight_decay: float = option(5e-4, at_least=0)
    nesterov: bool = False
    schedule: str = option("step", choices=SCHEDULES)  # step | cosine | constant | prune
    milestones: tuple[float, ...] = (1 / 3, 2 / 3, 5 / 6)  # step: fractions of `epochs`
    gamma: float = option(0.1, positive=True)  # step: factor at each milestone
    # prune: epochs 1..W-1 at `lr`, then 0.01, / 1.5 every 10 epochs (see lr_at)
    warmup_epochs: int = option(10, at_least=0)
    augment: bool = option(True, flag="no_augment", inverted=True)
    seed: int = option(0, at_least=0, at_most=SEED_MAX)
    device: str = "auto"
    channels_last: bool | None = None  # None: on CUDA always; on CPU where it is faster and safe (cpu_channels_last)
    amp: bool | None = None  # bf16 autocast; None: on CUDA only
    compile: bool = False
    # the training step captured as one CUDA graph and replayed (captured.py): for small networks at small
    # batches, which launches bound; CUDA only, not with compile; a step with callbacks stays eager
    cuda_graphs: bool = False
    dtype: str = option("float32", choices=("float32", "float64"))  # float64 for exactness tests
    eval_batch_size: int = option(1000, at_least=1)
    val_fraction: float = 0.1  # of the training set, stratified; the test set is never used to select
    split_seed: int = option(0, at_least=0, at_most=SEED_MAX)  # the same validation split for every training seed
    # evaluate val and test every N epochs (and always at the last); 0: only at the last
    eval_every: int = option(1, at_least=0)
    # network slimming's sparsity training: an L1 penalty of this weight on every batch
    bn_sparsity: float = option(0.0, at_least=0)
    # norm's scale (`BNSparsity`; the original trains the network that slimming prunes with 1e-4)

    # settings added after runs were recorded: left out of `to_dict` at these values, so those runs keep their ids
    ADDED_LATER = {"bn_sparsity": 0.0, "cuda_graphs": False}

    def __post_init__(self):
        if isinstance(self.milestones, list):  # as TOML and JSON give it
            self.milestones = tuple(self.milestones)
        self.check()  # types and the declared ranges
        if self.nesterov and self.momentum == 0:
            raise NeuralscaleError("nesterov needs a positive momentum")
        for m in self.milestones:
            fraction("a milestone (a fraction of the epochs)", m, low_open=True, high_open=False)
        fraction("validation fraction", self.val_fraction)
        self.milestones = tuple(float(m) for m in self.milestones)

    def to_dict(self) -> dict:
        d = asdict(self)
        for name, default in self.ADDED_LATER.items():
            if d[name] == default:
                del d[name]
        return d

    def lr_at(self, epoch: float) -> float:
        """Learning rate at a (fractional) epoch."""
        if self.schedule == "constant":
            return self.lr
        if self.schedule == "cosine":
            return 0.5 * self.lr * (1 + math.cos(math.pi * min(epoch / self.epochs, 1.0)))
        if self.schedule.startswith("prune"):
            return self._prune_lr(int(epoch) + 1)
        # a milestone takes effect from its (rounded) epoch, never the first: a 1-epoch run's 1/3 rounds to epoch
        # 0 and trained wholly at lr x gamma
        passed = sum(1 for m in self.milestones if int(epoch) >= max(1, round(m * self.epochs)))
        return self.lr * self.gamma ** passed


    def _prune_lr(self, e: int) -> float:
        """The original's descent schedule at epoch `e`, counted from 1 as it counts them.

        Epochs 1 to W-1 train at `lr`; epoch W (the warm-up length) sets 0.01;
        then every 10 epochs past W divide it by 1.5, so epoch e >= W has
        0.01 / 1.5 ** ((e - W) // 10).  `prune-tinyimagenet` (the original's
        TinyImageNet descent) divides only at epochs that are multiples of 10.
        With W = 0 no epoch sets 0.01, and the divisions apply to `lr`.
        """
        w = self.warmup_epochs
        if e < w:
            return self.lr
        base = PRUNE_LR if w > 0 else self.lr
        anchor = e if self.schedule == "prune" else e - e % 10  # the last epoch at which the lr changed
        return base / 1.5 ** ((anchor - w) // 10) if anchor > w else base


def autocasts(amp: bool | None, cuda: bool, dtype: str) -> bool:
    """Whether training autocasts to bf16: as `amp` asks, by default on CUDA only, and only from float32 (the
    trainer's rule, which reports read back from a record's config and device)."""
    return bool(cuda if amp is None else amp) and dtype == "float32"


def paper_config(dataset: str, **overrides) -> TrainConfig:
    """The paper's training protocol for a dataset (300 or 150 epochs).

    The original counts epochs from 1 and lowers the learning rate at the start of its epochs 100, 200 and 250
    (TinyImageNet: 50, 100 and 150, the last epoch); the trainer counts from 0, so its milestones are the epochs
    before those: 99, 199 and 249 (49, 99 and 149).
    """
    if not (isinstance(dataset, str) and dataset.startswith("imagefolder:")):
        dataset_info(dataset)  # a name it knows (the protocol of any other is CIFAR's, as the original's)
    p = protocol(dataset)
    base = dict(epochs=p.epochs, milestones=p.milestones(), batch_size=p.batch_size)
    base.update(overrides)
    return TrainConfig(**base)


def cpu_channels_last(widths: Sequence[int]) -> bool:
    """The layout rule on the CPU: channels-last where it is faster, and far from the layers of 1-2 channels on
    which oneDNN was once seen to hang (benchmarks/onednn_hang.py; RESULTS.md).

    Measured on this project's CPU (benchmarks/prune_step_cost.py): channels-last makes a VGG11 step 20-30%
    faster at mean gated widths of 40 and more, and slower below about 25 (its batch norms at widths that are
    not multiples of 8).  So: channels-last when the mean width is at least 32 and no layer is under 4.
    A model without gates keeps NCHW, and so does one with grouped convolutions (ResNeXt, RegNet): training
    torchvision's RegNetX-400MF at 1/8 width in channels-last on batches of 3 crashes oneDNN's backward pass on
    this CPU (a segmentation fault; the support-matrix test's configuration), though not on batches of 128.
    """
    return bool(widths) and sum(widths) / len(widths) >= 32 and min(widths) >= 4


def check_splits(splits, val_fraction: float) -> None:
    """Refuse a training split with no image (a validation fraction that takes them all): a run would record
    finished having trained on nothing."""
    n = splits.sizes()
    if n["train"] == 0:
        raise NeuralscaleError(f"no training images are left: the validation split takes {n['val']} of "
                               f"{n['train'] + n['val']} (val_fraction {val_fraction:g})")


def checkpoint_seconds() -> float:
    text = os.environ.get("NEURALSCALE_CHECKPOINT_SECONDS", "5")
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (value >= 0 and value != float("inf")):
        raise NeuralscaleError(f"NEURALSCALE_CHECKPOINT_SECONDS must be a number of seconds, 0 or more, got {text!r}")
    return value


def refuse_untrainable(params: int, device: torch.device) -> None:
    """Past memory the kernel kills the process without a word: training `params` parameters on the CPU (their
    weights, gradients and momentum, and copies) beyond this machine's memory is refused first, in one line."""
    if device.type != "cuda":
        refuse_beyond(16 * params, 1 / 2, f"training {params:,} parameters on the CPU: weights, gradients and "
                      "momentum", "ask for a smaller model")


def resolve_device(name: str) -> torch.device:
    """The device `name` (cpu, cuda, cuda:N, auto) on this machine; one that is not here is an EnvironmentFailure."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError):
        raise NeuralscaleError(f"unknown device {name!r}; use cpu, cuda, cuda:N or auto") from None
    if dev.type not in ("cpu", "cuda"):
        raise NeuralscaleError(f"device {name!r} is not supported; use cpu, cuda, cuda:N or auto")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise EnvironmentFailure(f"CUDA was asked for ({name}) but no CUDA device is available; use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise EnvironmentFailure(f"there is no {name}: this machine has {torch.cuda.device_count()} CUDA "
                                     "device(s)")
    return dev


class Callback:
    """Hooks into the trainer; override what you need."""

    def on_train_start(self, trainer: "Trainer") -> None: ...
    def on_epoch_start(self, trainer: "Trainer", epoch: int) -> None: ...
    def after_backward(self, trainer: "Trainer") -> None: ...
    def on_step_end(self, trainer: "Trainer") -> None: ...
    def on_epoch_end(self, trainer: "Trainer", epoch: int, metrics: dict) -> None: ...
    def status(self, trainer: "Trainer") -> str | None: return None  # progress in words, e.g. a pruner's
    def state_dict(self) -> dict: return {}
    def load_state_dict(self, state: dict, trainer: "Trainer") -> None: ...


class BNSparsity(Callback):
    """Network slimming's sparsity training (Liu et al., 2017), as the original's `updateBN`: after every
    backward pass, `s * sign(gamma)` is added to the gradient of every batch norm's scale (the subgradient of an L1
    penalty on the scales), so that the scales the slimming baseline ranks are comparable across layers."""

    def __init__(self, s: float):
        self.s = s
        # the optimizer of the model whose scales `_scales` lists: a pruning step gives the trainer a new one
        # whether it resizes the model in place (its scales then new tensors) or installs another
        self._optimizer: SGD | torch.optim.Optimizer | None = None
        self._scales: list[torch.Tensor] = []

    def after_backward(self, trainer: "Trainer") -> None:
        if trainer.optimizer is not self._optimizer:
            self._optimizer = trainer.optimizer
            self._scales = [m.weight for m in trainer.model.modules()
                            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.weight is not None]
        for w in self._scales:
            if w.grad is not None:
                w.grad.add_(torch.sign(w.detach()), alpha=self.s)


@dataclass
class TrainResult:
    history: list[dict]
    summary: dict
    wall_s: float
    stopped_early: bool = False
    extra: dict = field(default_factory=dict)


def _relaid(model: nn.Module, channels_last: bool) -> nn.Module:
    """A pruning step's model (the trainer's own, resized in place or rebuilt from its tensors, so already on the
    trainer's device and dtype) with every 4-D parameter and buffer given the strides a fresh model has in this
    layout (contiguous, then channels_last where chosen; `resizing.fresh_strides`), whichever layout a tensor kept
    from before the step had: what a run resumed from its checkpoint computes with. Only the tensors whose
    strides differ are copied (a step's few); a model with a 5-D tensor goes through `Module.to`."""
    found = [(store, key, t) for m in model.modules() for store in (m._parameters, m._buffers)
             for key, t in store.items() if t is not None]
    if any(t.dim() == 5 for _, _, t in found):
        return model.to(memory_format=torch.channels_last) if channels_last else model
    for store, key, t in found:
        new = as_fresh(t, channels_last)
        if new is t:
            continue
        if isinstance(t, nn.Parameter):
            t.data = new
        else:
            store[key] = new
    return model


def _check_finite(metrics: dict, evaluated: bool, lr_setting: str) -> None:
    """A network whose loss is not finite diverged: in training, or (`evaluated`) where it is evaluated (its outputs
    there are not finite, and an accuracy read from them is no accuracy: a run recorded as finished with it was)."""
    checked = (("train_loss", ""),) + ((("val_loss", " on the validation images"),
                                        ("test_loss", " on the test images")) if evaluated else ())
    for key, where in checked:
        if metrics[key] is not None and not math.isfinite(metrics[key]):
            raise RunFailed(f"training diverged at epoch {metrics['epoch']} (loss{where} is {metrics[key]}); a lower "
                            f"learning rate ({lr_setting}) may train")


class Trainer:
    """Trains `model` on `splits` with `config`; `fit()` returns a TrainResult (its `history`: one dict per epoch).

    The model and optimizer are attributes that callbacks may replace (the
    pruner installs a physically smaller network: its own, resized in place, or a rebuilt one, with a new
    optimizer either way).  With `checkpoint`, state is
    saved atomically after every epoch (at most every `checkpoint_every_s` seconds, and after the last) and
    `fit()` resumes from it.  `owner` names what the checkpoint belongs to (a run's id, a descent iteration):
    it is written into the checkpoint, and a checkpoint of another owner, or with other training settings, is
    refused on resume rather than continued as if it were this one's.
    """

    # where the learning rate is set, said where training diverges (a descent's trainer names its own)
    lr_setting = "--lr; lr in an experiment's [sweep.train]"
    # an evaluation loss that is not finite fails the run; a descent's trainer keeps its old rule (the training
    # loss alone: its law comes from the training's scores, and it selects nothing by accuracy)
    eval_diverges = True
    # the training settings a checkpoint may have been written with otherwise and still be continued (a descent's
    # cap on its epochs, and how often it evaluates)
    resume_may_differ: tuple[str, ...] = ()

    def __init__(self, model: nn.Module, splits: Splits, config: TrainConfig,
                 callbacks: Sequence[Callback] = (), checkpoint: str | Path | None = None,
                 progress: bool = True, desc: str = "train", owner: str | None = None, follow_load: bool = True):
        _check_trainer_arguments(model, splits, config, callbacks, checkpoint)
        self.config = config
        # on a CPU, fewer threads while other processes keep cores busy (threads.Governor); False: one thread count
        # throughout (a descent: its arithmetic, and so its law, is then the same on the same machine)
        self.follow_load = follow_load
        self.owner = owner
        self.device = resolve_device(config.device)
        cuda = self.device.type == "cuda"
        refuse_untrainable(sum(p.numel() for p in model.parameters()), self.device)
        self.channels_last = False  # decided per model, in set_model
        self._said_nchw = False  # whether it said that channels_last, asked for, is not used (_layout)
        self.dtype = getattr(torch, config.dtype)
        self.amp = autocasts(config.amp, cuda, config.dtype)
        self.splits = splits
        check_splits(splits, config.val_fraction)
        mean, std = channel_stats(splits.train[0])
        self.input_stats = {"mean": [float(v) for v in mean], "std": [float(v) for v in std]}  # 0-255 units
        self.train_data, self.val_data, self.test_data = (
            DeviceBatches(*part, mean, std, self.device, self.channels_last, self.dtype)
            for part in (splits.train, splits.val, splits.test))
        self.callbacks = list(callbacks) + ([BNSparsity(config.bn_sparsity)] if config.bn_sparsity else [])
        self.checkpoint = Path(checkpoint) if checkpoint else None
        self.progress = progress
        self.desc = desc
        self.history: list[dict] = []
        self.epoch = 0
        self.step = 0
        self.stop = False  # a callback sets this to end training after the current step
        self.governor: Governor | None = None  # on a CPU while fitting: threads that follow the load (threads.py)
        # Epochs of a few milliseconds (tiny data) are checkpointed at most every few seconds
        # ($NEURALSCALE_CHECKPOINT_SECONDS, default 5; 0: every epoch), and the last always: a kill loses at
        # most that much work, and resumes exactly from the epoch saved.
        self.checkpoint_every_s = checkpoint_seconds()
        self._saved_at: float | None = None
        self._line_at: float | None = None  # when the last epoch's line was logged
        self._saved_epoch = -1
        # seconds the sessions before this one trained for, to its checkpoint (a resumed run's time is theirs and
        # this session's: TrainResult.wall_s, a run record's wall_s)
        self.elapsed_before = 0.0
        self._fit_start = time.perf_counter()
        self.captured: CapturedStep | None = None
        if config.cuda_graphs:
            why = refused(config, self.device)
            if why is not None:
                raise NeuralscaleError(f"cuda_graphs: {why}")
            why = capturable(self)
            if why is not None:
                log.info(f"{desc}: the training step is not captured as a CUDA graph: {why}")
            else:
                self.captured = CapturedStep(self)
        self.set_model(model)
        self._check_outputs()

    # -- model and optimizer -------------------------------------------------
    def set_model(self, model: nn.Module, optimizer_state: dict | None = None, pruned: bool = False) -> None:
        """Install a (new) model and a fresh optimizer over its parameters. `pruned`: the model is this trainer's
        own after a pruning step, on its device, most of its tensors kept as they were (`_relaid`); any other
        model is moved and laid out with `Module.to`, as given."""
        if not pruned:
            model = model.to(self.device, self.dtype)
        self.channels_last = self._layout(model)
        for data in (self.train_data, self.val_data, self.test_data):
            data.channels_last = self.channels_last  # batches in the model's layout
        if pruned:
            model = _relaid(model, self.channels_last)
        elif self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.model = model
        self.forward = torch.compile(model) if self.config.compile else model
        c = self.config
        self.optimizer = SGD(model.parameters(), lr=c.lr, momentum=c.momentum, weight_decay=c.weight_decay,
                             nesterov=c.nesterov)  # torch.optim.SGD(foreach=True), without importing dynamo
        if optimizer_state is not None:
            self.optimizer.load_state_dict(optimizer_state)
        if getattr(self, "captured", None) is not None:
            self.captured.reset()  # a graph holds the old model's and optimizer's tensors

    def _check_outputs(self) -> None:
        """A model of other classes than the data's, refused in one line: with fewer outputs than classes it failed
        with torch's IndexError at the first batch, with more it trained outputs that no label names.  One forward
        of two training images in eval mode (the batch-norm statistics stay as they are); a model whose output is
        not one row of logits per image is left to fail as it would."""
        classes = self.splits.info.num_classes
        if len(self.train_data) == 0:
            return
        x = next(self.train_data.eval_batches(2))[0]
        was = self.model.training
        self.model.eval()
        try:
            with torch.no_grad(), torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
                out = self.model(x)
        finally:
            self.model.train(was)
        if isinstance(out, torch.Tensor) and out.dim() == 2 and out.shape[0] == len(x) and out.shape[1] != classes:
            raise NeuralscaleError(f"Trainer: the model gives {out.shape[1]} outputs an image, but "
                                   f"{self.splits.info.name} has {classes} classes; build it for {classes}")

    def _layout(self, model: nn.Module) -> bool:
        if getattr(model, "ns_nchw_only", False):  # its forward views a map as a vector (generic.py): NCHW only
            if self.config.channels_last and not self._said_nchw:
                self._said_nchw = True  # (once: a pruning rebuild asks again)
                warn(f"{self.desc}: channels_last not used: the model's forward views a feature map as a vector, "
                     "which only NCHW computes as written; it trains in NCHW")
            return False
        if self.config.channels_last is not None:
            return self.config.channels_last
        if self.device.type == "cuda":
            return True
        grouped = any(isinstance(m, nn.Conv2d) and 1 < m.groups < m.in_channels for m in model.modules())
        return not grouped and cpu_channels_last([g.width for g in gates(model)])

    def set_lr(self, lr: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    # -- evaluation ----------------------------------------------------------
    @torch.inference_mode()
    def evaluate(self, data: DeviceBatches) -> tuple[float | None, float | None]:
        """(loss, accuracy in %) over a split, without augmentation; None for an empty split."""
        if len(data) == 0:
            return None, None
        was = self.model.training
        self.model.eval()
        loss = torch.zeros((), device=self.device)
        correct = torch.zeros((), device=self.device, dtype=torch.long)
        for x, y in data.eval_batches(self.config.eval_batch_size):
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
                out = self.forward(x)
            loss += F.cross_entropy(out.float(), y, reduction="sum")
            correct += (out.argmax(1) == y).sum()
        self.model.train(was)
        return loss.item() / len(data), 100.0 * correct.item() / len(data)

    # -- training ------------------------------------------------------------
    def _generator(self, epoch: int) -> torch.Generator:
        # Derived from (seed, epoch) so that a resumed run sees the same batches.
        gen = torch.Generator(device=self.device if self.device.type == "cuda" else "cpu")
        return gen.manual_seed(self.config.seed * 1_000_003 + epoch)

    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimizer step on a batch; (the batch's mean loss, its count of correct predictions), on the
        device. Replayed from a CUDA graph where the config asks for one (captured.py)."""
        if self.captured is not None:
            return self.captured.step(x, y)
        return self._eager_step(x, y)

    def _eager_step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            out = self.forward(x)
            loss = F.cross_entropy(out.float(), y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        for cb in self.callbacks:
            cb.after_backward(self)
        self.optimizer.step()
        self.step += 1
        for cb in self.callbacks:
            cb.on_step_end(self)
        return loss.detach(), (out.detach().argmax(1) == y).sum()

    def fit(self) -> TrainResult:
        c = self.config
        start = self._fit_start = time.perf_counter()
        self._resume()
        self.governor = Governor(follow=self.follow_load) if self.device.type == "cpu" else None
        if self.governor is not None:
            log.info(f"{self.desc}: {self.governor.describe()}")
        try:
            return self._fit(c, start)
        finally:
            if self.governor is not None:
                self.governor.restore()  # what follows (latency) measures at a fixed thread count

    def _fit(self, c: "TrainConfig", start: float) -> "TrainResult":
        for cb in self.callbacks:
            cb.on_train_start(self)
        while self.epoch < c.epochs and not self.stop:
            epoch = self.epoch
            self.set_lr(c.lr_at(epoch))
            for cb in self.callbacks:
                cb.on_epoch_start(self, epoch)
            metrics = self._train_epoch(epoch)
            _check_finite(metrics, self.eval_diverges, self.lr_setting)
            self.history.append(metrics)
            for cb in self.callbacks:
                cb.on_epoch_end(self, epoch, metrics)
            status = "".join(f"; {x}" for x in self._statuses())  # as the epoch ends, before the count moves
            self.epoch += 1
            evaluated = "".join(f"{name} {metrics[key]:.2f}% " for name, key in (("val", "val_acc"), ("test", "test_acc"))
                                if metrics[key] is not None)
            if self._epoch_line_due():
                log.info(f"{self.desc} {self._epoch_text(epoch)}: loss {metrics['train_loss']:.4f} train "
                         f"{metrics['train_acc']:.2f}% {evaluated}({metrics['images_per_s'] or 0:.0f} img/s){status}")
            if self._saved_at is None or time.monotonic() - self._saved_at >= self.checkpoint_every_s:
                self._save()
        if self._saved_epoch != self.epoch:
            self._save()
        return TrainResult(self.history, summarize(self.history), self.elapsed_before + time.perf_counter() - start,
                           self.stop)

    def _train_epoch(self, epoch: int) -> dict:
        """One epoch of training (until a callback stops it), then val/test where due; the epoch's metrics."""
        c = self.config
        self.model.train()
        t0 = time.perf_counter()
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), device=self.device, dtype=torch.long)
        seen = 0
        bar = progress_bar(math.ceil(len(self.train_data) / c.batch_size), f"{self.desc} {self._epoch_text(epoch)}",
                           enabled=self.progress)
        gen = self._generator(epoch)
        for x, y in self.train_data.train_batches(c.batch_size, gen, self.splits.info.crop_padding,
                                                  self.splits.info.rotate, c.augment):
            loss, corr = self.train_step(x, y)
            if self.governor is not None:
                self.governor.tick()
            loss_sum += loss * len(y)
            correct += corr
            seen += len(y)
            bar.update(1)
            if bar.n % 25 == 0:
                bar.set_postfix_str(" ".join([f"loss {loss.item():.3f}", *self._statuses()]))
            if self.stop:
                break
        bar.close()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        train_time = time.perf_counter() - t0
        if self.stop or epoch + 1 >= c.epochs or (c.eval_every and (epoch + 1) % c.eval_every == 0):
            val_loss, val_acc = self.evaluate(self.val_data)
            test_loss, test_acc = self.evaluate(self.test_data)
        else:
            val_loss = val_acc = test_loss = test_acc = None  # not evaluated at this epoch (eval_every)
        return {
            "epoch": epoch + 1, "lr": self.optimizer.param_groups[0]["lr"],
            "train_loss": loss_sum.item() / max(seen, 1), "train_acc": 100.0 * correct.item() / max(seen, 1),
            "val_loss": val_loss, "val_acc": val_acc, "test_loss": test_loss, "test_acc": test_acc,
            "train_time_s": train_time, "images_per_s": seen / train_time if train_time > 0 else None,
        }

    def _epoch_line_due(self) -> bool:
        """An epoch's log line: the first, the last, and otherwise at most one every EPOCH_LINE_S seconds (a
        descent on a few dozen images runs hundreds of one-batch epochs; each epoch is in the history anyway)."""
        now = time.monotonic()
        if (self._line_at is not None and now - self._line_at < EPOCH_LINE_S and self.epoch < self.config.epochs
                and not self.stop):
            return False
        self._line_at = now
        return True

    def _statuses(self) -> list[str]:
        return [x for x in (cb.status(self) for cb in self.callbacks) if x]

    def _epoch_text(self, epoch: int) -> str:
        """'epoch 3/30'; a run that a callback ends (pruning) has a cap, not a length: 'epoch 3'."""
        if any(cb.status(self) is not None for cb in self.callbacks):
            return f"epoch {epoch + 1}"
        return f"epoch {epoch + 1}/{self.config.epochs}"

    # -- checkpoints ---------------------------------------------------------
    def _save(self) -> None:
        if self.checkpoint is None:
            return
        self._saved_at, self._saved_epoch = time.monotonic(), self.epoch
        atomic_torch_save({
            "epoch": self.epoch, "step": self.step, "stop": self.stop, "history": self.history,
            "owner": self.owner, "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "callbacks": [cb.state_dict() for cb in self.callbacks], "config": self.config.to_dict(),
            "data": self.splits.identity(),  # (a folder of images changed since is refused on resume)
            "rng": torch.get_rng_state(),  # dropout and anything else drawing from the global generator
            "cuda_rng": torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None,
            "elapsed_s": self.elapsed_before + time.perf_counter() - self._fit_start,
        }, self.checkpoint)

    def _restore(self, state: dict) -> None:
        epoch, step, stop, history = state["epoch"], state["step"], state.get("stop", False), state["history"]
        if type(epoch) is not int or epoch < 0 or type(step) is not int or step < 0:
            raise ValueError(f"after epoch {epoch!r}, step {step!r}")
        if not isinstance(history, list) or len(history) != epoch:  # (one entry a finished epoch)
            raise ValueError(f"a history of {len(history) if isinstance(history, list) else 'no'} epochs after "
                             f"epoch {epoch}")
        if not isinstance(stop, bool):
            raise ValueError(f"stop is {stop!r}, not true or false")
        for cb, cb_state in zip(self.callbacks, state.get("callbacks", [])):
            cb.load_state_dict(cb_state, self)  # may rebuild self.model at other widths first
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.epoch, self.step, self.stop = epoch, step, stop
        if state.get("rng") is not None:
            torch.set_rng_state(state["rng"].cpu())
        if state.get("cuda_rng") is not None and self.device.type == "cuda":
            torch.cuda.set_rng_state(state["cuda_rng"].cpu(), self.device)
        self.history = list(history)
        elapsed = state.get("elapsed_s")  # (checkpoints written before it was kept have none)
        self.elapsed_before = float(elapsed) if isinstance(elapsed, (int, float)) and math.isfinite(elapsed) \
            and elapsed >= 0 else 0.0

    def _resume(self) -> None:
        if self.checkpoint is None or not self.checkpoint.exists() or self.epoch > 0:
            return
        state = read_checkpoint(self.checkpoint, self.owner, self.config, self.device, self.resume_may_differ)
        check_same_data(self.checkpoint, state.get("data"), self.splits.identity())
        try:
            self._restore(state)
        except NeuralscaleError:
            raise
        except Exception as e:  # a file that loads but is not this run's checkpoint
            message = first_line(e, None, type(e).__name__)
            raise NeuralscaleError(f"checkpoint {self.checkpoint} does not fit this run ({message}); delete it to "
                                   "start over") from None
        # the file holds this very state: written again only once training moves on, under the owner it names
        self._saved_epoch = self.epoch
        self.owner = self.owner if self.owner is not None else state.get("owner")
        log.info("%s: resumed from %s after epoch %d", self.desc, self.checkpoint, self.epoch)


def little_learned_at(classes: int) -> float:
    """The accuracy (%) at or below which a network of `classes` classes has learned little: twice chance, or a
    quarter of the way from chance to 100% where that is less (20% of ten classes, 62.5% of two). A descent warns
    of a network pruned so, and a report of rows that scored so."""
    chance = 100.0 / classes
    return chance + min(chance, (100 - chance) / 4)


def check_same_data(path: Path, then, now: dict) -> None:
    """A checkpoint's epochs trained on these splits (`Splits.identity`: their sizes, and the files' digest;
    checkpoints from before 0.2 say neither, and the first ones of 0.2 no digest): continued on others (an image folder
    added to, or an image replaced, since), a run would mix them silently, and select on two validation splits."""
    if isinstance(then, dict) and not same_data(then, now):
        raise NeuralscaleError(f"checkpoint {path} trained on other data ({said_data(then)} then; "
                               f"{said_data(now)} now: the dataset's files changed since); put them back as they "
                               "were, or delete it to start over")


def said_data(identity: dict) -> str:
    """A `Splits.identity()` in words: "train 90, val 10, test 50 images (digest 1f2e...)"."""
    counts = ", ".join(f"{k} {identity.get(k)}" for k in ("train", "val", "test"))
    return counts + " images" + (f" (digest {identity['digest']})" if "digest" in identity else "")


def _check_trainer_arguments(model, splits, config, callbacks, checkpoint) -> None:
    """The Trainer's arguments of the wrong kind as one NeuralscaleError, not an AttributeError deep inside."""
    for name, value, kind, words in (("model", model, nn.Module, "an nn.Module"),
                                     ("splits", splits, Splits, "a Splits (ImageData.split(), ns.load_splits)"),
                                     ("config", config, TrainConfig,
                                      "a TrainConfig (TrainConfig.from_dict for a dict)")):
        if not isinstance(value, kind):
            raise NeuralscaleError(f"Trainer: {name} must be {words}, not {type(value).__name__}")
    if isinstance(callbacks, (str, bytes)) or not all(isinstance(cb, Callback) for cb in callbacks):
        raise NeuralscaleError("Trainer: callbacks must be a list of Callback objects")
    if checkpoint is not None and not isinstance(checkpoint, (str, Path)):
        raise NeuralscaleError(f"Trainer: checkpoint must be a path, not {type(checkpoint).__name__}")


def unloadable(e: Exception) -> str:
    """Why torch.load could not read a file, in a few words: an empty or cut file's EOFError has no message, and
    the weights-only refusal of a pickled object is a coloured paragraph whose point is the object's name."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(e)).strip()
    found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
    if found:
        return f"it refers to {found.group(1)}, which a weights-only load refuses"
    if isinstance(e, EOFError) or not text:
        return "empty or cut short" if isinstance(e, EOFError) else type(e).__name__
    return text.splitlines()[0][:120]


def read_checkpoint(path: Path, owner: str | None, config: TrainConfig | None, device="cpu",
                    may_differ: Sequence[str] = ()) -> dict:
    """A checkpoint's state, if it is `owner`'s: one written for another owner (a run's id, a descent
    iteration), or with other training settings (unless `config` is None; but for `may_differ`, and settings
    that change nothing computed), is refused rather than continued as if it were this one's."""
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as e:
        raise NeuralscaleError(f"checkpoint {path} is unreadable ({unloadable(e)}); delete it to start over") \
            from None
    if not isinstance(state, dict):
        raise NeuralscaleError(f"checkpoint {path} is not a neuralscale checkpoint; delete it to start over")
    theirs = state.get("owner")
    if owner is not None and theirs is not None and theirs != owner:
        raise NeuralscaleError(f"checkpoint {path} belongs to {theirs}, not to {owner}; move it away or delete it "
                               "to train this one from the start")
    recorded, mine = state.get("config"), config.to_dict() if config is not None else None
    if isinstance(recorded, dict) and mine is not None:  # settings that do not change what is computed may differ
        differ = [f"{k}: {recorded[k]!r} there, {mine[k]!r} here" for k in sorted(set(recorded) & set(mine))
                  if k not in ("device", "eval_batch_size", *may_differ) and _listed(recorded[k]) != _listed(mine[k])]
        if differ:
            raise NeuralscaleError(f"checkpoint {path} was written with other training settings "
                                   f"({'; '.join(differ[:3])}); delete it to start over")
    return state


def read_run_weights(path: Path, run_id: str, record: dict | None = None) -> dict:
    """A finished run's trained weights (a state dict) from its checkpoint, if the checkpoint is that run's: one
    copied or linked from another run is refused, as a resume refuses it (export, warm starts, the pruning
    baselines); and, given its `record`, one saved before the run's last epoch (an earlier copy put back, an rsync
    of a live run), whose weights are not those its numbers describe."""
    if not Path(path).is_file():
        raise NeuralscaleError(f"{path} is missing; the run's weights were not kept")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise NeuralscaleError(f"{path} is damaged ({unloadable(e)}); the run's weights cannot be read") from None
    if not isinstance(state, dict) or not isinstance(state.get("model"), dict):
        raise NeuralscaleError(f"{path} is damaged (no network weights); the run's weights cannot be read")
    if state.get("owner") not in (None, f"run {run_id}"):
        raise NeuralscaleError(f"checkpoint {path} belongs to {state['owner']}, not to run {run_id} whose "
                               "directory it is in; put back the run's own checkpoint")
    history = (record or {}).get("history")
    if isinstance(history, list) and isinstance(state.get("epoch"), int) and state["epoch"] != len(history):
        raise NeuralscaleError(f"checkpoint {path} holds run {run_id}'s weights after epoch {state['epoch']}, but "
                               f"its record finished after {len(history)}: an earlier copy of its checkpoint, not "
                               "the weights its numbers describe; put back the last one, or train the run again")
    return state["model"]


def _listed(v):
    """A setting as it compares across a checkpoint (tuples are saved as lists)."""
    return list(v) if isinstance(v, tuple) else v


def summarize(history: list[dict]) -> dict:
    """The numbers a run is judged by.

    Honest protocol: test accuracy at the final epoch, and at the epoch with the
    best validation accuracy.  `best_test_acc_original_protocol` is the highest
    test accuracy over all epochs, which selects on the test set: reported only
    for comparison with the paper.  A number that was not measured (no
    validation split, an epoch not evaluated) is None.
    """
    if not history:
        return {}
    validated = [m for m in history if m.get("val_acc") is not None]
    best = max(validated, key=lambda m: (m["val_acc"], -m["epoch"])) if validated else None
    last = history[-1]
    tests = [m["test_acc"] for m in history if m.get("test_acc") is not None]
    speeds = [m["images_per_s"] for m in history if m.get("images_per_s") is not None]
    return {
        "epochs": last["epoch"],
        "final_test_acc": last["test_acc"], "final_val_acc": last["val_acc"],
        "best_val_epoch": best["epoch"] if best else None, "best_val_acc": best["val_acc"] if best else None,
        "test_acc_at_best_val": best["test_acc"] if best else None,
        "best_test_acc_original_protocol": max(tests) if tests else None,
        "images_per_s": sum(speeds) / len(speeds) if speeds else None,
    }


def _torchvision_version() -> str | None:
    """torchvision's `__version__` (its build's tag included) without importing it, which costs a second and
    more: read from its version.py."""
    import importlib.util
    import re
    try:
        spec = importlib.util.find_spec("torchvision")
    except (ImportError, ValueError):
        spec = None
    for folder in (spec.submodule_search_locations or []) if spec else []:
        try:
            m = re.search(r"^__version__\s*=\s*['\"]([^'\"]+)['\"]", (Path(folder) / "version.py").read_text(), re.M)
        except OSError:
            continue
        if m:
            return m.group(1)
    from importlib import metadata  # another layout: the installed distribution's version (no build tag)
    try:
        return metadata.version("torchvision")
    except metadata.PackageNotFoundError:
        return None


def environment(device: torch.device, governor: Governor | None = None) -> dict[str, Any]:
    """Where a run ran; with the trainer's `governor`, how its CPU threads were chosen and how often they
    changed with the load."""
    import numpy

    env = {"neuralscale": __version__, "torch": torch.__version__, "torchvision": _torchvision_version(),
           "numpy": numpy.__version__, "python": platform.python_version(), "platform": platform.platform(),
           "device": str(device), "threads": torch.get_num_threads()}
    if governor is not None:
        env.update(thread_policy=governor.describe(), thread_changes=governor.changes)
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
    return env
