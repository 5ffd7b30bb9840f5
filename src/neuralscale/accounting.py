"""What a network costs: parameters, MACs per image, measured latency."""

from __future__ import annotations

import copy
import platform
import statistics
import time
from contextlib import contextmanager
from typing import Iterator, Sequence

import torch
from torch import nn

from .errors import NeuralscaleError, first_line


def count_params(model: nn.Module) -> int:
    """Every parameter of the model (gates hold none, so they are excluded)."""
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, input_shape: Sequence[int], positions: dict[str, int] | None = None) -> int:
    """Multiply-accumulates of Conv2d and Linear layers for one image.

    A layer's MACs are (output positions) x (output channels) x (inputs per
    output).  Output positions come from one forward pass on a meta tensor (no
    memory, no arithmetic); pass a dict as `positions` to keep them, and later
    calls on models of the same space skip the forward pass: spatial sizes in a
    CNN depend on strides and kernels, never on channel widths.
    """
    layers = {name: m for name, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}
    if positions is None or any(name not in positions for name in layers):
        positions = {} if positions is None else positions
        positions.update(_output_positions(model, input_shape, layers))
    total = 0
    for name, m in layers.items():
        if isinstance(m, nn.Conv2d):
            total += positions[name] * m.out_channels * m.kernel_size[0] * m.kernel_size[1] * (m.in_channels // m.groups)
        else:
            total += positions[name] * m.out_features * m.in_features
    return int(total)


def _output_positions(model: nn.Module, input_shape: Sequence[int], layers: dict[str, nn.Module],
                      on_cpu: bool = False) -> dict[str, int]:
    """Per layer, output elements per channel (H*W for a conv), from a meta forward pass, or with `on_cpu` one
    on the CPU (for a model small enough: a meta pass costs a second or more the first time in a process)."""
    device = "cpu" if on_cpu else "meta"
    if any(p.device.type != device for p in model.parameters()):
        model = copy.deepcopy(model).to(device)
        layers = {name: m for name, m in model.named_modules() if name in layers}
    found: dict[str, int] = {}
    handles = []
    for name, m in layers.items():
        channels = m.out_channels if isinstance(m, nn.Conv2d) else m.out_features

        def hook(mod, inp, out, name=name, channels=channels):
            found[name] = out[0].numel() // channels
        handles.append(m.register_forward_hook(hook))
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, *input_shape, device=device))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return found


@contextmanager
def _memory(batch_sizes, input_shape, device) -> Iterator[None]:
    """An allocation that cannot succeed (a batch far beyond the device's memory) is one clear error."""
    try:
        yield
    except (MemoryError, torch.OutOfMemoryError):
        raise NeuralscaleError(f"latency at batch {max(batch_sizes)} of {'x'.join(map(str, input_shape))} inputs "
                               f"does not fit in {device}'s memory; measure a smaller --batch") from None
    except RuntimeError as e:
        if "allocate" not in str(e):
            raise
        raise NeuralscaleError(f"latency at batch {max(batch_sizes)} of {'x'.join(map(str, input_shape))} inputs "
                               f"does not fit in {device}'s memory ({first_line(e, 120)}); measure a "
                               "smaller --batch") from None


def measure_latency(model: nn.Module, input_shape: Sequence[int], device: str | torch.device = "cpu",
                    batch_sizes: Sequence[int] = (1, 128), warmup: int = 5, repeats: int = 20,
                    channels_last: bool | None = None) -> dict:
    """Inference latency, measured properly.

    For each batch size: `warmup` untimed calls, then `repeats` timed calls,
    each bracketed by device synchronisation.  Returns per batch size the
    median, the 10th/90th percentiles and the interquartile range in
    milliseconds, and the median per image.
    """
    device = torch.device(device)
    if channels_last is None:
        channels_last = device.type == "cuda" and not getattr(model, "ns_nchw_only", False)  # (generic.py)
    model = model.to(device).eval()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    result = {"device": device_name(device), "channels_last": channels_last, "batches": {}}
    with torch.inference_mode(), _memory(batch_sizes, input_shape, device):
        for bs in batch_sizes:
            x = torch.randn(bs, *input_shape, device=device)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            for _ in range(warmup):
                model(x)
            sync()
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                model(x)
                sync()
                times.append((time.perf_counter() - t0) * 1e3)
            # "inclusive": within the times measured (the default extrapolates past them: a p10 below zero at 5)
            q = statistics.quantiles(times, n=20, method="inclusive") if len(times) > 1 else [times[0]] * 19
            q4 = statistics.quantiles(times, n=4, method="inclusive") if len(times) > 1 else [times[0]] * 3
            med = statistics.median(times)
            result["batches"][str(bs)] = {
                "median_ms": med, "p10_ms": q[1], "p90_ms": q[17], "iqr_ms": q4[2] - q4[0],
                "per_image_ms": med / bs, "repeats": repeats,
                "unstable": unstable(med, q4[2] - q4[0]),
            }
    return result


UNSTABLE = 0.2  # a latency whose interquartile range exceeds this share of its median is flagged as unstable


def unstable(median_ms: float, iqr_ms: float) -> bool:
    """Whether a measurement's spread is too large to read its median as the configuration's latency (another
    process busy on the machine, frequency scaling, ...): its interquartile range above UNSTABLE of its median."""
    return median_ms <= 0 or iqr_ms / median_ms > UNSTABLE


def device_name(device: torch.device) -> str:
    """The device as latency figures name it: a GPU's model, or the CPU's model and thread count."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({_cpu_model()}, {torch.get_num_threads()} threads)"


def _cpu_model() -> str:
    """The CPU's model name (two machines' CPU latencies are comparable only on the same model)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
