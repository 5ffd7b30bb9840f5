"""Scaling laws: fit `width_l = alpha_l * tau ** beta_l`, and solve one for a budget.

This is the one place in the code that fits and solves.  Every method reduces
to a law: NeuralScale fits one to a pruning trajectory.  Uniform scaling of a
configuration `w` is the law with `beta_l = 1/2` and `alpha_l = w_l / sqrt(P(w))`:
every layer times the same ratio.  That covers the `uniform` method (from the
base widths), `morphnet` (from the pruned widths) and the fit's fallback when a
trajectory is too short.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .accounting import measure_latency
from .errors import NeuralscaleError
from .budget import METRICS, UNITS
from .data import spelled_folder
from .records import atomic_write_json, atomic_write_text, clear_temps, exclusive_name, read_text, strict
from .space import WidthSpace
from .zoo import model_identity
from .validate import MAX_WIDTH, check_flags, check_paths, expand, is_whole, matches, parse_whole

MIN_ROWS = 6  # fewer trajectory rows than this: fall back to uniform scaling


WIDTH_CAP = 2.0**31  # the widest layer a law may give (no network has one as wide; 2**31 keeps every count exact)


@dataclass
class ScalingLaw:
    """Per-layer power laws of one width space; `raw_widths(tau)` gives real-valued widths."""

    model: str
    dataset: str
    layers: list[str]
    alpha: list[float]
    beta: list[float]
    r2: list[float] = field(default_factory=list)
    rows: int = 0
    fallback: bool = False  # True: uniform scaling of `origin`, not a fit
    origin: list[int] = field(default_factory=list)  # the configuration a uniform law scales
    iteration: int | None = None
    note: str = ""
    tau_range: list[float] = field(default_factory=list)  # [smallest, largest] tau of the rows it was fitted on
    # out of sample: each layer's law fitted on the earlier rows only, then asked for the widths of the last
    # `holdout_rows` rows (the narrowest networks): the mean of |predicted - recorded| / recorded per layer
    holdout_error: list[float] = field(default_factory=list)
    holdout_rows: int = 0
    objective: str = "params"  # what tau counts: params (the paper's), macs or latency (objective.py)
    # a model of one's own (a `file:` model, a module): the network's architecture digest as fitted (its layers'
    # names alone would pass an edited network); "" for a named model, whose laws are as before, byte for byte
    architecture: str = ""

    def worst_r2(self) -> tuple[float, str] | None:
        """The lowest R^2 of any layer and that layer's name (None: not a fit, or no R^2 recorded)."""
        if self.fallback or not self.r2:
            return None
        i = min(range(len(self.r2)), key=self.r2.__getitem__)
        return self.r2[i], self.layers[i]

    def out_of_sample(self) -> tuple[float, float, str] | None:
        """The out-of-sample error's mean over layers, its worst layer's error and that layer's name (None: no
        rows were held back)."""
        held = self.holdout_error
        if self.fallback or not held:
            return None
        i = max(range(len(held)), key=held.__getitem__)
        return sum(held) / len(held), held[i], self.layers[i]

    def quality(self) -> str:
        """The fit's quality in one line: rows, the worst layer's R^2 and the out-of-sample error."""
        if self.fallback:
            return f"not a fit ({self.note or 'uniform scaling'})"
        r2, held = self.worst_r2(), self.out_of_sample()
        text = f"{self.rows} rows, R^2 {r2[0]:.3f} (worst layer)" if r2 else f"{self.rows} rows"
        if held:
            text += (f", out-of-sample error {held[0]:.1%} mean, {held[1]:.1%} worst layer "
                     f"(last {self.holdout_rows} rows predicted from the rest)")
        return text

    def raw_widths(self, tau: float) -> np.ndarray:
        """alpha * tau ** beta, capped at WIDTH_CAP (a law that overflows reaches no budget beyond the cap's,
        rather than infinity)."""
        with np.errstate(over="ignore", invalid="ignore"):
            w = np.asarray(self.alpha) * float(tau) ** np.asarray(self.beta)
        return np.where(np.isfinite(w) & (w < WIDTH_CAP), w, WIDTH_CAP)

    @classmethod
    def from_dict(cls, d: dict) -> "ScalingLaw":
        try:
            law = cls(**{k: d[k] for k in ("model", "dataset", "layers", "alpha", "beta")},
                      **{k: d[k] for k in ("r2", "rows", "fallback", "origin", "iteration", "note", "tau_range",
                                           "holdout_error", "holdout_rows", "objective", "architecture")
                         if k in d})
        except (KeyError, TypeError) as e:
            raise NeuralscaleError(f"not a scaling-law file: missing or bad field {e}") from None

        def numbers(xs) -> bool:
            return isinstance(xs, list) and all(isinstance(x, (int, float)) and not isinstance(x, bool)
                                                and math.isfinite(x) for x in xs)
        if not (isinstance(law.model, str) and isinstance(law.dataset, str) and isinstance(law.layers, list)
                and numbers(law.alpha) and numbers(law.beta)):
            raise NeuralscaleError("not a scaling-law file: model and dataset must be names, layers a list, "
                                   "alpha and beta lists of finite numbers")
        if not (len(law.alpha) == len(law.beta) == len(law.layers)):
            raise NeuralscaleError("scaling-law file: alpha, beta and layers differ in length")
        if any(a <= 0 for a in law.alpha):
            raise NeuralscaleError("scaling-law file: every alpha must be positive")
        if law.objective not in METRICS:
            raise NeuralscaleError(f"scaling-law file: objective must be one of {', '.join(METRICS)}, "
                                   f"got {law.objective!r}")
        law._check_the_rest(numbers)
        return law

    def _check_the_rest(self, numbers) -> None:
        """Every other field's type and range, so that nothing read back fails later with a traceback."""
        def count(x) -> bool:
            return isinstance(x, int) and not isinstance(x, bool) and x >= 0
        problems = [what for what, ok in (
            ("layers must be names", all(isinstance(x, str) for x in self.layers)),
            ("r2 must be finite numbers, one per layer or none", numbers(self.r2)
             and len(self.r2) in (0, len(self.layers))),
            ("rows must be a count", count(self.rows)),
            ("fallback must be true or false", isinstance(self.fallback, bool)),
            ("origin must be widths (positive integers)", isinstance(self.origin, list)
             and all(count(w) and w >= 1 for w in self.origin) and len(self.origin) in (0, len(self.layers))),
            ("iteration must be a count or null", self.iteration is None or count(self.iteration)),
            ("note must be text", isinstance(self.note, str)),
            ("tau_range must be two positive numbers, smallest first, or none", numbers(self.tau_range)
             and (not self.tau_range or (len(self.tau_range) == 2 and 0 < self.tau_range[0] <= self.tau_range[1]))),
            ("holdout_error must be finite numbers, one per layer or none", numbers(self.holdout_error)
             and len(self.holdout_error) in (0, len(self.layers))),
            ("holdout_rows must be a count", count(self.holdout_rows)),
            ("architecture must be text", isinstance(self.architecture, str)),
        ) if not ok]
        if problems:
            raise NeuralscaleError("scaling-law file: " + "; ".join(problems))

    def to_dict(self) -> dict:
        d = asdict(self)
        if d["objective"] == "params":  # the laws of the release before, byte for byte: params is implied
            del d["objective"]
        if not d["architecture"]:  # a named model's
            del d["architecture"]
        return d

    def save(self, path: str | Path, force: bool = False) -> None:
        """Write the law to `path` (JSON): a new file, or with `force` an existing one, never one of neuralscale's
        records (a descent's fits.json, a run's record: `save` replaced them, and the descent's every law was lost)
        nor beside them, and never a law that would not load (a NaN exponent, a negative coefficient)."""
        check_paths("ScalingLaw.save", {"path": path}, optional=False)
        check_flags("ScalingLaw.save", {"force": force})
        path = Path(expand(path))
        try:
            ScalingLaw.from_dict(json.loads(json.dumps(strict(self.to_dict()))))  # (as it is written: NaN is null)
        except NeuralscaleError as e:
            raise NeuralscaleError(f"this law cannot be saved: it would not load ({str(e).removeprefix('not a ')})"
                                   ) from None
        if path.is_dir():
            raise NeuralscaleError(f"{path} is a directory; give a file name")
        with exclusive_name(path, lambda pid: f"{path} is being written by another neuralscale command (pid {pid}); "
                            "wait for it to finish, or give another name"):
            clear_temps(path)  # what a save killed while writing left
            self._save(path, force)

    def _save(self, path: Path, force: bool) -> None:
        if path.exists() and not force:
            raise NeuralscaleError(f"{path} exists; give another name, or force=True to overwrite it")
        if path.exists() and _a_record(path):
            raise NeuralscaleError(f"{path} is one of neuralscale's records (a descent's laws, a run's record or a "
                                   "sweep's plan): a law is not saved over it, even with force; give another name")
        if any(_a_record(p) for p in path.parent.glob("*.json") if p != path):  # (a --force rerun clears them)
            raise NeuralscaleError(f"{path.parent} holds neuralscale's records (a run's, a descent's or a sweep's): a "
                                   "law is not saved among them, even with force; give another folder")
        atomic_write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> "ScalingLaw":
        check_paths("ScalingLaw.load", {"path": path}, optional=False)
        path = expand(path)
        try:
            d = json.loads(read_text(Path(path)))
        except FileNotFoundError:
            raise NeuralscaleError(f"{path} does not exist") from None
        except (ValueError, UnicodeDecodeError, RecursionError, IsADirectoryError) as e:
            raise NeuralscaleError(f"{path} is not valid JSON ({str(e)[:200] or 'nested too deeply'})") from None
        if isinstance(d, dict) and "laws" in d:  # a descent's fits.json: take the last iteration
            if not d["laws"]:
                raise NeuralscaleError(f"{path} holds no fitted iteration yet")
            d = d["laws"][-1]
        if not isinstance(d, dict):
            raise NeuralscaleError(f"{path} is not a scaling-law file")
        return cls.from_dict(d)

    def other_space(self, space: WidthSpace) -> str:
        """'' where this law is of `space`'s model and data (by name, and as many layers), else "fitted for X on
        Y, not Z on W", with the way on for a space made from an example tensor."""
        # (a file's network by the file's name: the law of a study moved with its file is the file's there)
        if model_identity(self.model) == model_identity(space.name) and self.dataset == space.info.name \
                and len(self.layers) == len(space):
            return ""
        custom = "custom" in (self.dataset, space.info.name) and self.dataset != space.info.name
        return (f"fitted for {self.model} on {self.dataset}, not {space.name} on {space.info.name}"
                + ("; a space made from an example tensor is 'custom': make the space as the law's was made (from the "
                   "same example input, or from the dataset's name)" if custom else "")
                + spelled_folder(self.dataset, space.info.name))

    def check_space(self, space: WidthSpace) -> None:
        other = self.other_space(space)
        if other:
            raise NeuralscaleError(f"this law was {other}")
        if list(self.layers) != list(space.layer_names):  # a law is applied layer by layer, by name
            wrong = next(i for i, (a, b) in enumerate(zip(self.layers, space.layer_names)) if a != b)
            raise NeuralscaleError(f"this law's layer {wrong + 1} is {self.layers[wrong]!r}, {space.name}'s is "
                                   f"{space.layer_names[wrong]!r}: the law is of another network or damaged")
        if self.architecture and space.architecture and self.architecture != space.architecture:
            if self.model != space.name:  # another file of the same name and class (elsewhere), or it moved
                raise NeuralscaleError(f"this law was fitted for {self.model}, and {space.name} is another network "
                                       f"(architecture {space.architecture}, {self.architecture} recorded): its code "
                                       "or modules differ, or its data's classes or image size; fit this one, or "
                                       "give the file the law was fitted for")
            raise NeuralscaleError(f"this law was fitted for {space.name} as it was then: its code or modules changed "
                                   f"since, or its data's classes or image size (architecture {space.architecture} "
                                   f"now, {self.architecture} recorded); fit the network as it is now, or put them "
                                   "back")


def _a_record(path: Path) -> bool:
    """Whether `path` is one of neuralscale's records as they are written (a descent's fits.json or config.json, a
    run's record, a sweep's plan): JSON tables that no law is saved over."""
    try:
        d = json.loads(read_text(path))
    except (OSError, ValueError, UnicodeDecodeError, RecursionError):
        return False
    return isinstance(d, dict) and (any(k in d for k in ("laws", "descent", "recipe")) or d.get("kind") == "run")


def check_objective(law: ScalingLaw, metric: str, convert: bool = False) -> None:
    """Refuse to solve a fitted law for a budget of another metric than it was fitted against, unless asked to
    convert (a law fitted against MACs says how widths shrink with MACs; solved at a parameter count, it still
    gives a configuration, but not one the descent optimised for).  Uniform scaling is any metric's."""
    if law.fallback or law.objective == metric or convert:
        return
    flag = {"params": "--params", "macs": "--macs",
            "latency": "`scale --latency-ms`; train and sweeps take parameter and MACs budgets only"}[law.objective]
    raise NeuralscaleError(f"this law (iteration {law.iteration}) was fitted against {law.objective}, and the budget "
                           f"counts {metric}: give a {law.objective} budget ({flag}), or --convert (convert = true in "
                           f"a sweep or experiment file) to solve it for a {metric} budget anyway")


def law_label(iteration: int, objective: str = "params") -> str:
    """How runs of a descent's law are labelled: neuralscale@K for the paper's (fitted against parameters),
    neuralscale-macs@K or neuralscale-latency@K for a law fitted against another objective, so that one run
    store holds them side by side."""
    return f"neuralscale@{iteration}" if objective == "params" else f"neuralscale-{objective}@{iteration}"


def uniform_law(space: WidthSpace, widths: Sequence[int], note: str = "uniform scaling") -> ScalingLaw:
    """Every layer scaled by the same ratio from `widths`."""
    widths = space.validate(widths)
    p = space.params(widths)
    return ScalingLaw(space.name, space.info.name, list(space.layer_names),
                      [w / math.sqrt(p) for w in widths], [0.5] * len(widths), [1.0] * len(widths),
                      rows=1, fallback=True, origin=widths, note=note, architecture=space.architecture or "")


# --- trajectories ------------------------------------------------------------

@dataclass
class Trajectory:
    rows: list[list[int]]
    format: str  # "neuralscale" (with a header) or "original" (header-less)

    @property
    def count(self) -> str:
        """The parameter count its producer fitted with."""
        return "original" if self.format == "original" else "exact"


def read_trajectory(path: str | Path, space: WidthSpace) -> Trajectory:
    """Rows of per-layer widths, in the space's layer order.

    Reads neuralscale's CSV (a header with the layer names, plus `step` and
    `params` columns that are ignored and recounted) and the original
    implementation's header-less CSV (one column per gated layer).
    """
    try:
        if Path(path).exists() and not Path(path).is_file():  # a device (/dev/zero) or a pipe never ends
            raise NeuralscaleError(f"trajectory {path} is not a regular file")
        text = Path(path).read_text()
    except FileNotFoundError:
        raise NeuralscaleError(f"trajectory {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as e:
        raise NeuralscaleError(f"trajectory {path} cannot be read ({e})") from None
    table = [r for r in csv.reader(io.StringIO(text)) if r and any(c.strip() for c in r)]
    if not table:
        raise NeuralscaleError(f"trajectory {path} is empty")

    columns = list(range(len(space)))
    fmt = "original"
    if not all(is_whole(c) for c in table[0]):
        fmt = "neuralscale"
        header = [c.strip() for c in table.pop(0)]
        missing = [n for n in space.layer_names if n not in header]
        if missing:
            raise NeuralscaleError(f"trajectory {path} is not for {space.name}: no column for layer(s) "
                                   f"{', '.join(missing[:3])}")
        columns = [header.index(n) for n in space.layer_names]
    elif len(table[0]) != len(space):
        raise NeuralscaleError(f"trajectory {path} has {len(table[0])} columns but {space.name} has "
                               f"{len(space)} gated layers; it is for another model")
    rows = []
    for i, r in enumerate(table, start=1):
        try:
            row = [parse_whole(r[c]) for c in columns]
        except (ValueError, IndexError):
            raise NeuralscaleError(f"trajectory {path}: row {i} is malformed: {','.join(r)[:80]}") from None
        if min(row) < 1:
            raise NeuralscaleError(f"trajectory {path}: row {i} has a width below 1")
        rows.append(row)
    return Trajectory(rows, fmt)


def write_trajectory(path: str | Path, space: WidthSpace, rows: Sequence[Sequence[int]],
                     steps: Sequence[int] | None = None) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["step", "params", *space.layer_names])
    for i, r in enumerate(rows):
        w.writerow([steps[i] if steps is not None else i + 1, space.params(r), *r])
    atomic_write_text(Path(path), buf.getvalue())


# --- fitting -----------------------------------------------------------------

def fit(space: WidthSpace, rows: Sequence[Sequence[int]], iteration: int | None = None,
        count: str = "exact", start: Sequence[int] | None = None, objective=None) -> ScalingLaw:
    """Least squares of ln(width_l) on [ln tau, 1] per layer.

    tau is each row's parameter count: `exact` (the built model) or `original`
    (the original implementation's formula, to reproduce its fits); with an
    `objective` (objective.Objective) other than params, each row's MACs or
    estimated latency.  With
    `start` (the widths pruning started from; the per-layer trajectory start),
    each layer is fitted on the rows from the first in which it has lost a
    channel, or on all rows where that leaves fewer than MIN_ROWS.
    """
    rows = [space.validate(r) for r in rows]
    if not rows:
        raise NeuralscaleError("cannot fit a scaling law to an empty trajectory")
    if len(rows) < MIN_ROWS:
        law = uniform_law(space, rows[0], note=f"only {len(rows)} trajectory rows (< {MIN_ROWS}): "
                                               "uniform scaling of the first row instead of a fit")
        law.rows, law.iteration = len(rows), iteration
        return law
    against = objective.name if objective is not None else "params"
    tau = np.log(np.array([space.tau(r, count) if against == "params" else objective.cost(r) for r in rows],
                          dtype=np.float64))
    if np.ptp(tau) == 0:  # a line through one point: any exponent fits it "perfectly"
        raise NeuralscaleError(f"all {len(rows)} trajectory rows are networks of the same size ({np.exp(tau[0]):,.4g} "
                               f"{UNITS[against]}); no law can be fitted to them")
    widths = np.log(np.array(rows, dtype=np.float64))
    alpha, beta, r2, holdout = [], [], [], []
    uses = [_rows_of_layer(widths[:, layer], start, layer) for layer in range(len(space))]
    # the last rows (the narrowest networks) predicted from the rest: a fifth of them, or a fifth of the fewest a
    # layer is fitted on where that would leave a layer under MIN_ROWS of its own (one whose rows start late)
    held = holdout_rows(len(rows))
    fewest = min(int(u.sum()) for u in uses)
    if held and fewest - held < MIN_ROWS:
        held = fewest // 5 if fewest - fewest // 5 >= MIN_ROWS else 0
    for layer, use in enumerate(uses):
        a, b, r = _least_squares(tau[use], widths[use, layer])
        alpha.append(a), beta.append(b), r2.append(r)
        if held:
            early = use.copy()
            early[-held:] = False
            if early.sum() >= MIN_ROWS:
                a, b, _ = _least_squares(tau[early], widths[early, layer])
                actual = np.exp(widths[-held:, layer])
                holdout.append(float(np.mean(np.abs(a * np.exp(tau[-held:]) ** b - actual) / actual)))
    if len(holdout) != len(space):
        holdout, held = [], 0
    return ScalingLaw(space.name, space.info.name, list(space.layer_names), alpha, beta, r2, rows=len(rows),
                      iteration=iteration, note="" if count == "exact" else f"tau counted with the {count} formula",
                      tau_range=[float(np.exp(tau.min())), float(np.exp(tau.max()))], holdout_error=holdout,
                      holdout_rows=held, objective=against, architecture=space.architecture or "")


def _rows_of_layer(ln_widths: np.ndarray, start: Sequence[int] | None, layer: int) -> np.ndarray:
    """Which rows a layer is fitted on: all, or with `start` those from the first in which it has lost a channel
    (all where that leaves fewer than MIN_ROWS). Widths only shrink while pruning, so either is the rows' tail."""
    if start is not None:
        lost = ln_widths < np.log(start[layer])
        if lost.sum() >= MIN_ROWS:
            return lost
    return np.ones(len(ln_widths), dtype=bool)


def holdout_rows(rows: int) -> int:
    """How many of the last rows the out-of-sample check predicts: a fifth, once the rest has 2 * MIN_ROWS."""
    held = rows // 5
    return held if held >= 1 and rows - held >= 2 * MIN_ROWS else 0


def _least_squares(ln_tau: np.ndarray, ln_width: np.ndarray) -> tuple[float, float, float]:
    """alpha, beta and R^2 of ln_width = ln alpha + beta * ln_tau."""
    design = np.stack([ln_tau, np.ones_like(ln_tau)], axis=1)
    (beta, log_alpha), *_ = np.linalg.lstsq(design, ln_width, rcond=None)
    ss_res = float(((ln_width - design @ np.array([beta, log_alpha])) ** 2).sum())
    ss_tot = float(((ln_width - ln_width.mean()) ** 2).sum())
    if np.ptp(ln_width) == 0:  # a width that never changed: the constant fits exactly (rounding would say otherwise)
        return float(np.exp(ln_width[0])), 0.0, 1.0
    return float(np.exp(log_alpha)), float(beta), 1 - ss_res / ss_tot if ss_tot > 0 else 1.0


# --- solving for a budget ----------------------------------------------------

@dataclass
class Solution:
    widths: list[int]
    metric: str
    budget: float
    achieved: float
    tau: float
    warnings: list[str] = field(default_factory=list)  # why the configuration deserves a second look

    @property
    def rel_error(self) -> float:
        return (self.achieved - self.budget) / self.budget

    def to_dict(self) -> dict:
        return {"widths": self.widths, "metric": self.metric, "budget": self.budget,
                "achieved": self.achieved, "rel_error": self.rel_error, "tau": self.tau, "warnings": self.warnings}

EXTRAPOLATION = 2.0  # a law solved beyond this factor of the range it was fitted on is extrapolated


def solution_warnings(law: ScalingLaw, space: WidthSpace, widths: list[int], tau: float) -> list[str]:
    """What a reader should know about a configuration a law gives: extrapolation, more MACs than the base."""
    out = []
    if law.fallback:
        out.append(f"the law is not a fit ({law.note or 'uniform scaling'})")
    if len(law.tau_range) == 2:
        low, high = law.tau_range
        f = ",.4g" if law.objective == "latency" else ",.0f"
        if tau < low / EXTRAPOLATION or tau > high * EXTRAPOLATION:
            out.append(f"extrapolated: solved at tau = {tau:{f}}, but the law was fitted on rows of {low:{f}} to "
                       f"{high:{f}} {UNITS[law.objective]}")
        elif law.objective == "latency":  # a latency is not measured here: the network's layers are read instead
            out.extend(_widths_outside(law, widths, tau))
        else:
            # the network it gives, in the law's own measure: the law's per-layer exponents need not add up to
            # tau, and a network of 4x the largest row is read where nothing was fitted even where tau is inside
            size = {"params": space.params, "macs": space.macs}[law.objective](widths)
            if size < low / EXTRAPOLATION or size > high * EXTRAPOLATION:
                out.append(f"extrapolated: the law gives a network of {size:{f}} {UNITS[law.objective]}, "
                           f"{size / (high if size > high else low):.1f}x the "
                           f"{'largest' if size > high else 'smallest'} of the rows it was fitted on ({low:{f}} to "
                           f"{high:{f}}; solved at tau = {tau:{f}})")
    base = space.macs(space.base_widths)
    macs = space.macs(widths)
    if macs > base:
        share = f"{macs / base:.0%}" if macs / base >= 1.01 else f"{macs / base:.2%}"  # not "100%" for more
        out.append(f"{share} of the base model's MACs ({macs:,} against {base:,})")
    return out


def _widths_outside(law: ScalingLaw, widths: list[int], tau: float) -> list[str]:
    """A latency law's network, layer by layer, against the widths the law gives that layer at the ends of the
    range it was fitted on: with exponents of 3-6, a tau within 2x of the range gives layers 10x wider than any
    fitted.  A layer is outside where both its width and the law's own (unrounded) width at `tau` lie more than
    EXTRAPOLATION times beyond them (rounding to a multiple or a minimum width alone does not count).  The worst
    layer is named, by how far outside it is."""
    low, high = law.tau_range
    ends = np.stack([law.raw_widths(low), law.raw_widths(high)])
    fewest, most = ends.min(axis=0), ends.max(axis=0)
    raw = law.raw_widths(tau)
    outside = []  # (how far outside, layer)
    for i, w in enumerate(widths):
        if min(w, raw[i]) > EXTRAPOLATION * most[i]:
            outside.append((w / most[i], i))
        elif max(w, raw[i]) < fewest[i] / EXTRAPOLATION:
            outside.append((fewest[i] / w, i))
    if not outside:
        return []
    _, i = max(outside)
    above = widths[i] > most[i]
    edge = most[i] if above else fewest[i]
    edge_tau = high if (ends[1, i] == edge) else low
    f, unit = ",.4g", UNITS[law.objective]
    how = f"{widths[i] / edge:.3g}x the most" if above else f"1/{edge / widths[i]:.3g} of the fewest"
    return [f"extrapolated: the law gives {law.layers[i]} {widths[i]:,} channel{'s' * (widths[i] != 1)}, {how} it "
            f"gives that layer on the rows it was fitted on ({edge:,.1f} at {edge_tau:{f}} {unit}; rows of {low:{f}} to {high:{f}} {unit}; {len(outside)} of {len(widths)} "
            f"layers more than {EXTRAPOLATION:g}x outside; solved at tau = {tau:{f}})"]


def round_widths(raw: np.ndarray, min_width: int = 1, multiple: int | Sequence[int] = 1) -> list[int]:
    """Truncate as the original does (or round to a multiple, per layer if a list), never below `min_width`."""
    multiples = [multiple] * len(raw) if isinstance(multiple, int) else list(multiple)
    out = [m * max(1, int(round(w / m))) if m > 1 else int(w) for w, m in zip(raw, multiples)]
    return [max(-(-min_width // m) * m, w) for w, m in zip(out, multiples)]


def cost_function(space: WidthSpace, metric: str, device: str = "cpu", batch_size: int = 1) -> Callable[[list[int]], float]:
    if metric == "params":
        return space.params
    if metric == "macs":
        return space.macs
    if metric == "latency":

        def latency(widths):
            try:
                model = space.build(widths)
            except (MemoryError, RuntimeError) as e:  # too wide for this machine's memory to measure
                if isinstance(e, RuntimeError) and "allocate" not in str(e):
                    raise
                raise NeuralscaleError(f"the latency of widths up to {max(widths)} cannot be measured here (the "
                                       "network does not fit in memory): the latency budget is out of reach") from None
            m = measure_latency(model, space.info.input_shape, device, (batch_size,), warmup=3, repeats=10)
            return m["batches"][str(batch_size)]["median_ms"]
        return latency
    raise NeuralscaleError(f"unknown budget metric {metric!r}; choose one of: {', '.join(METRICS)}")


class _Search:
    """Configurations along a law, by log tau: each costed once, the nearest to the budget kept."""

    def __init__(self, law: ScalingLaw, budget: float, cost, min_width: int, multiples: list[int], cap: int):
        self.law, self.budget, self.cost = law, budget, cost
        self.min_width, self.multiples, self.cap = min_width, multiples, cap
        self.seen: dict[tuple, float] = {}
        self.best: tuple | None = None  # (widths, cost, log tau)

    def __call__(self, log_tau: float) -> float:
        raw = self.law.raw_widths(math.exp(log_tau))
        widths = tuple(min(self.cap // m * m, w)
                       for w, m in zip(round_widths(raw, self.min_width, self.multiples), self.multiples))
        if widths not in self.seen:
            c = self.seen[widths] = float(self.cost(list(widths)))
            if self.best is None or abs(c - self.budget) < abs(self.best[1] - self.budget):
                self.best = (widths, c, log_tau)
        return self.seen[widths]

    def bracket(self, start: float) -> tuple[float, float]:
        """log tau values around the budget, by doubling from `start` (as far as the widths' limits allow)."""
        lo = hi = math.log(max(start, 1.0))
        if self(lo) > self.budget:
            while self(lo) > self.budget and not self._floored(lo):
                hi, lo = lo, lo - math.log(2)
        else:
            while self(hi) < self.budget and not self._capped(hi):
                lo, hi = hi, hi + math.log(2)
        return lo, hi

    def bisect(self, lo: float, hi: float) -> None:
        for _ in range(60):
            if hi - lo < 1e-9:
                break
            mid = 0.5 * (lo + hi)
            if self(mid) <= self.budget:
                lo = mid
            else:
                hi = mid

    def _capped(self, log_tau: float) -> bool:
        return bool(np.all(self.law.raw_widths(math.exp(log_tau)) >= self.cap)) or log_tau > 80

    def _floored(self, log_tau: float) -> bool:
        return bool(np.all(self.law.raw_widths(math.exp(log_tau)) <= self.min_width)) or log_tau < -20


def solve(law: ScalingLaw, space: WidthSpace, budget: float, metric: str = "params", *,
          min_width: int = 1, multiple: int = 1, max_width: int | None = None,
          device: str = "cpu", batch_size: int = 1, tolerance: float = 0.005,
          cost: Callable[[list[int]], float] | None = None, stated: bool = True) -> Solution:
    """The configuration on `law` whose cost is nearest `budget` (an amount of `metric`: resolve a share or a
    ratio first, with `budget.Budget`).

    Brackets the budget on log tau by doubling, then bisects; at most ~120 cost
    evaluations, so it always terminates.  If the nearest configuration on the
    law still misses the budget by more than `tolerance` (integer widths move in
    steps), single layers are moved by one channel towards it while that helps.
    Widths are capped at `max_width` (default 64x the largest base width); a
    budget outside what the law can reach within [min_width, max_width] is an
    error naming the feasible range.  `cost`: what a configuration costs in `metric`, where not the
    space's count or a fresh measurement (a descent's latency table).
    """
    law.check_space(space)
    if min_width < 1 or multiple < 1:
        raise NeuralscaleError("minimum width and multiple must be at least 1")
    # a latency is measured on a built network: no wider than 4x the base (16x its cost), which memory holds
    cap = min(max_width or (4 if metric == "latency" else 64) * max(space.base_widths), MAX_WIDTH)
    cost = cost or cost_function(space, metric, device, batch_size)
    if not (matches(budget, float) and math.isfinite(budget) and budget > 0):
        raise NeuralscaleError(f"a {metric} budget must be a positive finite amount, got {budget!r}")
    multiples = layer_multiples(space, multiple)
    if max(multiples) > cap:  # no width could be a multiple of it within the cap (it rounded every width to 0)
        raise NeuralscaleError(f"a multiple of {max(multiples):,} is more than the widest layer this law may have "
                               f"({cap:,}); give a smaller --multiple")
    search = _Search(law, budget, cost, min_width, multiples, cap)
    start = _start(law, space, budget, metric, cost)
    lo, hi = search.bracket(start)
    if not search(lo) <= budget <= search(hi) and abs(search.best[1] - budget) > tolerance * budget:
        _out_of_reach(search, metric, min_width, cap, stated)
    search.bisect(lo, hi)
    widths, achieved, log_tau = search.best
    if abs(achieved - budget) > tolerance * budget and metric != "latency":
        widths, achieved = _nudge(list(widths), achieved, budget, cost, tolerance, min_width, multiples, cap)
    tau = math.exp(log_tau)
    found = solution_warnings(law, space, list(widths), tau)
    if abs(achieved - budget) > tolerance * budget and metric != "latency":  # (a latency is measured afresh)
        found.append(f"the nearest configuration is {achieved / budget - 1:+.1%} from the budget ({achieved:,.0f} "
                     f"{UNITS[metric]}): widths move in whole channels{' and multiples' if max(multiples) > 1 else ''}")
    return Solution(list(widths), metric, float(budget), achieved, tau, found)


def _start(law: ScalingLaw, space: WidthSpace, budget: float, metric: str, cost) -> float:
    """Where the search starts: tau equal to the budget when both count the same; else the base model's tau
    times the budget's share of the base model's cost (or the middle of the rows' tau for a latency law)."""
    if metric == law.objective:
        return budget
    base = list(space.base_widths)
    if law.objective in ("params", "macs"):
        return getattr(space, law.objective)(base) * budget / cost(base)
    return math.sqrt(law.tau_range[0] * law.tau_range[1]) if len(law.tau_range) == 2 else 1.0


def layer_multiples(space: WidthSpace, multiple: int) -> list[int]:
    """What each layer's width must be a multiple of: `multiple` (--multiple) and its grouped layers' counts."""
    return [math.lcm(multiple, m) for m in getattr(space, "multiples", (1,) * len(space))]


def narrowest(multiples: list[int], min_width: int) -> list[int]:
    """Every layer at its narrowest: at least `min_width` and one multiple."""
    return [max(-(-min_width // m) * m, m) for m in multiples]


def _out_of_reach(search: _Search, metric: str, min_width: int, cap: int, stated: bool = True) -> None:
    """The budget error, naming what the law can really reach: from every layer at its floor to every layer at
    the cap (a law whose layers do not all grow together may reach less in between). `stated`: the budget is an
    amount as the user gave it (not a share or ratio already applied), which may have been meant as a share."""
    floor = narrowest(search.multiples, min_width)
    top = [cap // m * m for m in search.multiples]
    low = min(float(search.cost(floor)), *search.seen.values())
    unit = UNITS[metric]
    f = ",.4g" if metric == "latency" else ",.0f"
    if metric == "latency" and search.budget < low:  # the widest network is not built and measured to say so
        raise NeuralscaleError(f"a budget of {search.budget:{f}} {unit} is out of reach: it is below what this law "
                               f"reaches, {low:{f}} {unit} at its narrowest (widths of at least {min_width})")
    high = max(float(search.cost(top)), *search.seen.values())
    where = "below" if search.budget < low else "above" if search.budget > high else "between the steps of"
    meant = "" if not stated else (f"{search.budget:.0%}" if 0.01 <= search.budget < 1 else  # --params 0.25
             # meant 25%, and 25 too (not of a share given with %: 0.1% of 47,914 is 47.914)
             f"{search.budget:g}%" if 1 < search.budget <= 100 and search.budget < low else "")
    share = f" (a share of the base model is written with %: {meant})" if meant and metric != "latency" else ""
    said = f"{search.budget:{f}}" if search.budget >= 1 else f"{search.budget:.3g}"  # not "0" for 0.25 or 1e-9%
    raise NeuralscaleError(f"a budget of {said} {unit} is out of reach: it is {where} what this law "
                           f"reaches, {low:{f}} to {high:{f}} {unit} with widths in [{min_width}, {cap}]{share}")


def _nudge(widths: list[int], achieved: float, budget: float, cost, tolerance: float,
           min_width: int, multiples: list[int], cap: int) -> tuple[list[int], float]:
    """Integer steps along the law can be coarser than the tolerance; move single layers
    by one step (of `multiple`) towards the budget while that brings the cost nearer."""
    for _ in range(4 * len(widths)):
        if abs(achieved - budget) <= tolerance * budget:
            break
        sign = 1 if achieved < budget else -1
        best = None
        for i in range(len(widths)):
            w = widths[i] + sign * multiples[i]
            if not min_width <= w <= cap:
                continue
            trial = widths[:i] + [w] + widths[i + 1:]
            c = float(cost(trial))
            if best is None or abs(c - budget) < abs(best[1] - budget):
                best = (trial, c)
        if best is None or abs(best[1] - budget) >= abs(achieved - budget):
            break
        widths, achieved = best
    return widths, achieved
