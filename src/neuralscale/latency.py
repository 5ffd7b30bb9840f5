"""A latency model measured on one device: per-operation tables, interpolated, and the rest of the network.

A network's inference latency is estimated as the sum of its convolutions' and linear layers' latencies, each
read from a table of measurements of that operation alone (its kernel, stride, input size and channel counts,
at the table's batch size, on the table's device), plus `rest`: what the whole network measured at its base
widths takes beyond the sum of its operations (batch norms, activations, pooling, the framework's overhead).

The tables hold measurements at grid channel counts (1, 2, 3, 4, 6, 8, 11, 16, ...: powers of sqrt 2) and are
interpolated linearly in between (a convolution's time is close to bilinear in its input and output channels),
so that the latency one channel saves is a smooth, repeatable number rather than the difference of two noisy
measurements.  Grid points are measured when first needed (each one the median of several timed blocks, with
its interquartile range) and kept: a table saved beside a descent (`DescentDir.latency_table`) is reused by
every later iteration and rerun, and names the device, batch size and thread count it was measured with.

    table = LatencyTable.measured("cpu")      # or LatencyTable.load(path), or LatencyTable(measure=fn) in tests
    table.estimate(space, widths)             # ms
    table.check(space, widths)                # the estimate against a fresh measurement of the whole network
"""

from __future__ import annotations

import json
import logging
import statistics
import time
from contextlib import contextmanager
from itertools import product
from pathlib import Path
from typing import Callable, Iterator, Sequence

import torch
from torch import nn

from .accounting import device_name, measure_latency
from .errors import NeuralscaleError
from .records import atomic_write_json, read_text
from .zoo import model_identity

log = logging.getLogger(__name__)

GRID = sorted({int(round(2 ** (i / 2))) for i in range(0, 40)})  # 1, 2, 3, 4, 6, 8, 11, 16, 23, 32, 45, 64, ...
Signature = tuple  # ("conv", kernel, stride, padding, dilation, groups | "dw", H, W) or ("linear",)
Measure = Callable[[Signature, tuple[int, ...]], tuple[float, float]]  # -> (median ms, interquartile range ms)


def _neighbours(v: int) -> tuple[int, int]:
    """The grid values around v (equal where v is on the grid)."""
    for lo, hi in zip(GRID, GRID[1:]):
        if lo <= v <= hi:
            return (v, v) if v in (lo, hi) else (lo, hi)
    raise NeuralscaleError(f"a channel count of {v} is beyond the latency table's grid (up to {GRID[-1]})")


class _Ops:
    """The convolutions and linear layers of a space's networks: each one's signature and channel counts at given
    widths (input sizes are read once, on meta: they depend on strides and kernels, never on widths)."""

    def __init__(self, space):
        self.space = space
        self.inputs: dict[str, tuple[int, ...]] = {}

    def __call__(self, widths: Sequence[int]) -> list[tuple[Signature, tuple[int, ...]]]:
        model = self.space.build(widths, device="meta")
        layers = {n: m for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}
        if any(n not in self.inputs for n in layers):
            self._read_inputs(model, layers)
        out = []
        for name, m in layers.items():
            if isinstance(m, nn.Linear):
                out.append((("linear",), (m.in_features, m.out_features)))
                continue
            h, w = self.inputs[name][-2:]
            depthwise = m.groups == m.in_channels == m.out_channels and m.groups > 1
            sig = ("conv", m.kernel_size[0], m.stride[0], m.padding[0] if isinstance(m.padding, tuple) else m.padding,
                   m.dilation[0], "dw" if depthwise else m.groups, h, w)
            out.append((sig, (m.in_channels,) if depthwise else (m.in_channels // m.groups, m.out_channels // m.groups)))
        return out

    def _read_inputs(self, model: nn.Module, layers: dict[str, nn.Module]) -> None:
        handles = [m.register_forward_hook(lambda mod, inp, out, name=name: self.inputs.__setitem__(
            name, tuple(inp[0].shape))) for name, m in layers.items()]
        try:
            with torch.no_grad():
                model.eval()(torch.empty(1, *self.space.info.input_shape, device="meta"))
        finally:
            for h in handles:
                h.remove()


def _key(sig: Signature) -> str:
    return json.dumps(list(sig))


class LatencyTable:
    """Per-operation latency tables and each space's rest (see the module docstring)."""

    def __init__(self, device: str = "cpu", batch_size: int = 1, *, measure: Measure | None = None,
                 path: str | Path | None = None, repeats: int = 7):
        self.device, self.batch_size, self.repeats = device, batch_size, repeats
        self.timed = measure is None  # measured here by timing (else a given model of the device)
        self.measure = measure or self._time
        self.path = Path(path) if path is not None else None
        self.where = "given" if measure is not None else device_name(torch.device(device))
        self.threads = torch.get_num_threads()
        self.tables: dict[str, dict[str, list[float]]] = {}  # signature -> "c1,c2" -> [median ms, iqr ms]
        self.rest: dict[str, dict] = {}  # space name -> {"ms", "base_measured_ms", "base_iqr_ms", "widths"}
        self._ops: dict[str, _Ops] = {}
        self._dirty = False

    # --- estimates ------------------------------------------------------------

    def estimate(self, space, widths: Sequence[int]) -> float:
        """The network's latency at `widths` in ms: its operations from the tables, plus the space's rest."""
        return self._rest(space) + self.operations(space, widths)

    def operations(self, space, widths: Sequence[int]) -> float:
        """The sum of the operations' latencies alone (no rest), in ms."""
        total = sum(self._op(sig, dims) for sig, dims in self._ops_of(space)(widths))
        self.save()
        return total

    def _ops_of(self, space) -> _Ops:
        if space.name not in self._ops:
            self._ops[space.name] = _Ops(space)
        return self._ops[space.name]

    def _op(self, sig: Signature, dims: tuple[int, ...]) -> float:
        """Multilinear interpolation between the grid points around `dims`."""
        corners = [_neighbours(d) for d in dims]
        total = 0.0
        for choice in product((0, 1), repeat=len(dims)):
            weight = 1.0
            point = []
            for (lo, hi), c, d in zip(corners, choice, dims):
                g = hi if c else lo
                if lo != hi:
                    weight *= (d - lo) / (hi - lo) if c else (hi - d) / (hi - lo)
                elif c:
                    weight = 0.0
                point.append(g)
            if weight:
                total += weight * self._point(sig, tuple(point))
        return total

    def _point(self, sig: Signature, dims: tuple[int, ...]) -> float:
        table = self.tables.setdefault(_key(sig), {})
        key = ",".join(map(str, dims))
        if key not in table:
            median, iqr = self.measure(sig, dims)
            table[key] = [float(median), float(iqr)]
            self._dirty = True
        return table[key][0]

    def _rest(self, space) -> float:
        """What the base network measures beyond its operations (measured once per space and kept), by the name
        runs know the network by (zoo.model_identity: a file's network wherever the descent's folder lies now; a
        table written before names it by the file's absolute path, found the same)."""
        key = model_identity(space.name)
        key = next((k for k in self.rest if model_identity(k) == key), key)
        if key not in self.rest:
            widths = list(space.base_widths)
            ops = self.operations(space, widths)
            measured, iqr = self.whole(space, widths)
            # never negative: operations timed alone can take longer than inside the network (warm caches)
            self.rest[key] = {"ms": max(0.0, measured - ops), "base_measured_ms": measured,
                              "base_iqr_ms": iqr, "base_operations_ms": ops, "widths": widths}
            self._dirty = True
        return self.rest[key]["ms"]

    def whole(self, space, widths: Sequence[int], repeats: int = 30) -> tuple[float, float]:
        """A fresh measurement of the whole network at `widths`: median and interquartile range in ms (with a
        given `measure`, the sum of its operations: a test's table is a model all through)."""
        if not self.timed:
            return sum(self.measure(sig, dims)[0] for sig, dims in self._ops_of(space)(widths)), 0.0
        with self._at_its_threads():
            m = measure_latency(space.build(widths), space.info.input_shape, self.device, (self.batch_size,),
                                warmup=5, repeats=repeats)["batches"][str(self.batch_size)]
        return m["median_ms"], m["iqr_ms"]

    def check(self, space, widths: Sequence[int]) -> dict:
        """The estimate at `widths` beside a fresh measurement of the whole network, and their relative gap."""
        estimate = self.estimate(space, widths)
        measured, iqr = self.whole(space, widths)
        return {"widths": list(widths), "estimate_ms": estimate, "measured_ms": measured, "iqr_ms": iqr,
                "error": (estimate - measured) / measured if measured else 0.0}

    # --- measuring -------------------------------------------------------------

    def _time(self, sig: Signature, dims: tuple[int, ...]) -> tuple[float, float]:
        """One operation alone: the median and interquartile range of `repeats` timed blocks of calls."""
        device = torch.device(self.device)
        module, x = _operation(sig, dims, self.batch_size, device)
        sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
        with self._at_its_threads():
            return self._timed(module, x, sync)

    @contextmanager
    def _at_its_threads(self) -> Iterator[None]:
        """Torch's CPU threads at the count the table records while it times (a trainer's governor may have moved
        them since the table was opened), then as they were."""
        threads = torch.get_num_threads()
        if threads != self.threads:
            torch.set_num_threads(self.threads)
        try:
            yield
        finally:
            if torch.get_num_threads() != threads:
                torch.set_num_threads(threads)

    def _timed(self, module: nn.Module, x: torch.Tensor, sync) -> tuple[float, float]:
        """`module(x)` timed: the median and interquartile range of `repeats` blocks of calls, in ms."""
        with torch.inference_mode():
            for _ in range(3):
                module(x)
            sync()
            t0 = time.perf_counter()
            module(x)
            sync()
            once = time.perf_counter() - t0
            calls = max(1, min(50, int(2e-3 / max(once, 1e-7))))  # blocks of about 2 ms
            times = []
            for _ in range(self.repeats):
                t0 = time.perf_counter()
                for _ in range(calls):
                    module(x)
                sync()
                times.append((time.perf_counter() - t0) * 1e3 / calls)
        q = statistics.quantiles(times, n=4, method="inclusive") if len(times) > 1 else [times[0]] * 3
        return statistics.median(times), q[2] - q[0]

    # --- keeping it --------------------------------------------------------------

    def to_dict(self) -> dict:
        return {"device": self.device, "measured_on": self.where, "threads": self.threads,
                "batch_size": self.batch_size, "grid": "powers of sqrt 2, rounded", "rest": self.rest,
                "tables": self.tables}

    def save(self) -> None:
        if self.path is not None and self._dirty:
            atomic_write_json(self.path, self.to_dict())
            self._dirty = False

    @classmethod
    def read(cls, path: str | Path) -> "LatencyTable":
        """The table at `path` as recorded, to read estimates from (figures, reports): on any machine, measuring
        nothing (a configuration that needs a point the table lacks is an error)."""
        def missing(sig, dims):
            raise NeuralscaleError(f"{path} has no measurement of {sig[0]} {dims}; estimate where it was measured")
        table = cls(measure=missing)
        table.tables, table.rest = _parse(Path(path))[:2]
        return table

    @classmethod
    def open(cls, path: str | Path, device: str = "cpu", batch_size: int = 1,
             measure: Measure | None = None) -> "LatencyTable":
        """The table at `path` (to be measured there, if it is not yet), refusing one measured elsewhere."""
        table = cls(device, batch_size, measure=measure, path=path)
        path = Path(path)
        if not path.exists():
            return table
        tables, rest, old = _parse(path)
        if old != (table.where, batch_size, table.threads):
            raise NeuralscaleError(f"{path} was measured on {old[0]} at batch {old[1]} with {old[2]} thread(s), not "
                                   f"on {table.where} at batch {batch_size} with {table.threads}: a latency law "
                                   "holds where it was measured; continue there, or start a new descent here")
        table.tables, table.rest = tables, rest
        return table


def _parse(path: Path) -> tuple[dict, dict, tuple]:
    """A latency table file's tables, rests and (device, batch size, threads); one clear error if it is not one."""
    try:
        d = json.loads(read_text(path))
        tables, rest = d["tables"], d["rest"]
        if not (isinstance(tables, dict) and isinstance(rest, dict)):
            raise TypeError("tables and rest must be objects")
        return tables, rest, (d["measured_on"], d["batch_size"], d["threads"])
    except FileNotFoundError:
        raise NeuralscaleError(f"{path} does not exist") from None
    except (OSError, ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
        raise NeuralscaleError(f"{path} is not a latency table ({e}); remove it to measure it again") from None


def _operation(sig: Signature, dims: tuple[int, ...], batch: int, device) -> tuple[nn.Module, torch.Tensor]:
    """The module and input a signature describes, at channel counts `dims`."""
    if sig[0] == "linear":
        return nn.Linear(dims[0], dims[1]).to(device).eval(), torch.randn(batch, dims[0], device=device)
    _, kernel, stride, padding, dilation, groups, h, w = sig
    if groups == "dw":
        cin = cout = groups = dims[0]
    else:
        cin, cout = dims[0] * groups, dims[1] * groups
    conv = nn.Conv2d(cin, cout, kernel, stride, padding, dilation, groups=groups, bias=False).to(device).eval()
    return conv, torch.randn(batch, cin, h, w, device=device)


def tolerance(check: dict) -> float:
    """How far a latency may honestly be from its budget: the measurement's spread, relative (at least 2%)."""
    return max(0.02, check["iqr_ms"] / check["measured_ms"] if check.get("measured_ms") else 0.0)
