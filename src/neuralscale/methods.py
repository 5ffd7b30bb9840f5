"""The scaling methods compared, and how each turns a budget into widths.

    uniform            every base width times one ratio
    morphnet           iteration 1 of a descent at 50% pruned, scaled uniformly
    neuralscale        a descent's law (one iteration's: neuralscale@K)
    pruned             an ablation: iteration 1's widths where its pruning ended, scaled uniformly (no law)
    shape              an ablation: the widths iteration K started from, scaled uniformly (shape@K: the
                       descent's shape without the law's exponents)
    l1-prune           a trained full-width network pruned to the budget by L1 filter norm with one ratio
                       for every layer (the original's weight-magnitude code path), then fine-tuned
    l1-global          the same with L1 norms per weight ranked across layers (not in the original)
    slimming           the same with network slimming's BN-scale criterion, globally: the original's
                       default criterion, behind the paper's "weight magnitude" curve

The first three are laws solved by the one budget solver (scaling.solve); the
pruning baselines decide their widths from trained weights (baselines.py).
"""

from __future__ import annotations

import logging
from pathlib import Path

from .budget import Budget, amount
from .descent import DescentDir, law_from, morphnet_widths, pruned_widths, shape_widths
from .errors import NeuralscaleError, warn
from .accounting import measure_latency
from .latency import tolerance
from .scaling import ScalingLaw, check_objective, cost_function, law_label, solve, uniform_law
from .space import WidthSpace
from .zoo import model_identity
from .train import resolve_device
from .validate import check_flags, expand, plain, scalar_hint

log = logging.getLogger(__name__)

SCALED = ("uniform", "morphnet", "neuralscale", "pruned", "shape")  # methods that are a law solved for a budget
ITERATED = ("neuralscale", "shape")  # methods of one descent iteration (METHOD@K)
SPARSE_LABEL = "uniform-sparse"  # the network slimming prunes: uniform widths trained with the sparsity penalty
BASELINES = {"l1-prune": "l1-uniform", "l1-global": "l1", "slimming": "slimming"}  # method -> pruning criterion
BASE_METHODS = (*SCALED, *BASELINES)
METHOD_TITLES = {  # how reports name each method, and its line in the paper
    "uniform": "uniform scaling of every layer (paper: uniform)",
    "morphnet": "MorphNet-style: Taylor-FO pruning to 50%, rescaled uniformly (paper: MorphNet)",
    "neuralscale": "NeuralScale: the descent's power law at iteration K (paper: NeuralScale, iteration 1 / 15)",
    "pruned": "ablation: iteration 1's widths where its pruning ended (at the descent's prune fraction of the "
              "channels, 95% by default, or earlier), rescaled uniformly: prune once, then scale, no law (not in the "
              "paper)",
    "shape": "ablation: the widths descent iteration K started from, rescaled uniformly: the descent's shape "
             "without the law's exponents (not in the paper)",
    "l1-prune": "L1 filter pruning, one ratio for every layer, then fine-tuning (Li et al.; the original's "
                "weight-magnitude code path, not the one behind its curve)",
    "l1-global": "L1 filter pruning ranked across layers, then fine-tuning (not in the paper)",
    "slimming": "BN-scale pruning across layers, then fine-tuning (network slimming; paper: 'weight magnitude', "
                "the original's default criterion)",
}

OBJECTIVE_TITLES = {  # the runs of a descent of another objective than the paper's (descend --objective)
    "macs": "the same from a descent whose objective is MACs (beyond the paper): each channel's Taylor-FO score "
            "divided by the MACs its removal saves, the law fitted against MACs per image",
    "latency": "the same from a descent whose objective is latency (beyond the paper): each channel's Taylor-FO "
               "score divided by the latency its removal saves (a measured per-operation table), the law fitted "
               "against the estimated latency",
}


def source_objective(source: str | Path | None, law: ScalingLaw) -> str:
    """What a method's law belongs to: its descent's objective (a fallback law of a MACs descent is uniform
    scaling, but its runs are the MACs descent's), else what the law was fitted against."""
    if source is not None and Path(source).is_dir() and DescentDir(source).exists():
        return DescentDir(source).objective()
    return law.objective


def _check_measured_where(source, device: str, batch_size: int) -> None:
    """A latency law is solved against measurements where its descent measured: the same device and batch."""
    cfg = DescentDir(source).config() if source is not None and Path(source).is_dir() else None
    if not cfg:
        return
    d = cfg["descent"]
    want = (str(resolve_device(d.get("latency_device", "cpu"))), int(d.get("latency_batch", 1)))
    if (str(resolve_device(device)), int(batch_size)) != want:
        raise NeuralscaleError(f"this law's latencies were measured on {want[0]} at batch {want[1]}; solve it there "
                               f"(--device {want[0]} --batch {want[1]}), not on {device} at batch {batch_size}")


def method_law(space: WidthSpace, method: str, source: str | Path | None = None,
               iteration: int | None = None) -> ScalingLaw:
    """The law a scaled method solves: uniform from the base widths or MorphNet's, or a descent's fit."""
    if method not in SCALED:
        raise NeuralscaleError(f"unknown method {method!r}; choose one of: {', '.join(SCALED)}")
    if method == "uniform":
        return uniform_law(space, space.base_widths)
    if source is None:
        raise NeuralscaleError(f"method {method} needs --from DESCENT_DIR" + (" or FIT.json" if method == "neuralscale"
                                                                            else ""))
    _check_architecture(space, source)
    if method == "morphnet":
        return uniform_law(space, morphnet_widths(source, space), note="morphnet")
    if method == "pruned":
        return uniform_law(space, pruned_widths(source, space), note="pruned")
    if method == "shape":
        return uniform_law(space, shape_widths(source, space, iteration), note="shape")
    return law_from(source, space, iteration)


def _check_architecture(space: WidthSpace, source: str | Path) -> None:
    """A descent of another model or dataset (morphnet, pruned and shape read the descent's widths, which no law's
    own check sees: they were taken for any network of as many layers), or of a model of one's own (a `file:`
    model, a module) whose code has changed since: its laws and widths are of the network as it was, refused for the
    one there is now (laws written before laws carried the digest have none)."""
    if not Path(source).is_dir():
        return
    d = DescentDir(source)
    config = d.config() or {}
    laws = d.laws() if config else []  # (none yet: each method says so)
    other = laws[0].other_space(space) if laws else ""  # the space its laws record (config.json: the data's name)
    if other:
        raise NeuralscaleError(f"{source} holds the descent of a network {other}; descend this one, or give its "
                               "descent")
    if not space.architecture:
        return
    recorded = config.get("architecture")
    if recorded and recorded != space.architecture and config.get("model") != space.name:
        raise NeuralscaleError(f"{source} descended {config.get('model')}, and {space.name} is another network "
                               f"(architecture {space.architecture}, {recorded} recorded): its code or modules "
                               "differ, or its data's classes or image size; descend this one into a new folder, or "
                               "give the file that was descended")
    if recorded and recorded != space.architecture:
        raise NeuralscaleError(f"{source} descended {space.name} as it was then: its code or modules changed since, "
                               f"or its data's classes or image size (architecture {space.architecture} now, "
                               f"{recorded} recorded); descend the network as it is now into a new folder, or put "
                               "them back")


def _check_scale_arguments(space, source, iteration, min_width, multiple, batch_size, convert) -> None:
    """`scale`'s arguments of the wrong type or range as one NeuralscaleError, not a TypeError deep inside."""
    if not isinstance(space, WidthSpace):
        raise NeuralscaleError(f"scale: space must be a WidthSpace (ns.space(model, dataset)), not "
                               f"{type(space).__name__}")
    check_flags("scale", {"convert": convert})
    if source is not None and not isinstance(source, (str, Path)):
        raise NeuralscaleError(f"scale: source must be a descent directory or a fit file (a path), not "
                               f"{type(source).__name__}")
    if iteration is not None and (isinstance(iteration, bool) or not isinstance(iteration, int) or iteration < 1):
        raise NeuralscaleError(f"scale: iteration must be a number from 1 (None: the last), got {iteration!r}"
                               f"{scalar_hint(iteration)}")
    for name, value in (("min_width", min_width), ("multiple", multiple), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise NeuralscaleError(f"{name} must be a whole number, at least 1, got {value!r}{scalar_hint(value)}")


def scale(space: WidthSpace, method: str, budget: Budget | float | str | None = None, *,
          params: float | str | None = None, macs: float | str | None = None, source: str | Path | None = None,
          iteration: int | None = None, min_width: int = 1, multiple: int = 1, device: str = "cpu",
          batch_size: int = 1, convert: bool = False) -> dict:
    """Widths of `method` for a budget, described as `WidthSpace.describe` does, with the solver's findings.

    budget: a `Budget` (a ratio, an amount or a share of the base model's params, MACs or latency); a number
    or a string is a parameter budget ("2.8M", "25%"); or `params=` or `macs=` as `train` and
    `DescentResult.build` take them (one of the three).  A neuralscale law is solved for a budget of the metric it
    was fitted against (`law.objective`), or of another with `convert`.  A latency budget's configuration is
    measured afresh after solving (`measured`: median, interquartile range, and whether it is within
    `latency.tolerance` of the budget).
    """
    iteration, min_width, multiple, batch_size = (plain(v) for v in (iteration, min_width, multiple, batch_size))
    _check_scale_arguments(space, source, iteration, min_width, multiple, batch_size, convert)
    source = expand(source)
    given = [(b, m) for b, m in ((budget, budget.metric if isinstance(budget, Budget) else "params"),
                                 (params, "params"), (macs, "macs")) if b is not None]
    if len(given) != 1:
        raise NeuralscaleError("scale: give one budget: budget (a Budget, or a parameter count or share), params= or "
                               "macs=" + (f", not {len(given)}" if given else ""))
    budget = Budget.parse(*given[0])
    if budget.metric == "latency":
        resolve_device(device)  # where the latency is measured: here, or one clear line
    law = method_law(space, method, source, iteration)
    objective = source_objective(source, law)
    if method == "neuralscale":
        check_objective(law, budget.metric, convert)
        if law.objective == "latency" and budget.metric == "latency":
            _check_measured_where(source, device, batch_size)
    if budget.ratio is not None and method == "uniform" and min_width == 1 and multiple == 1:
        widths = space.uniform(budget.ratio)
        p = space.params(widths)
        return {**space.describe(widths), "method": method, "metric": "params", "budget": p, "achieved": p,
                "rel_error": 0.0, "iteration": None, "fallback": False, "extrapolated": False,
                "macs_above_base": space.macs(widths) > space.macs(space.base_widths), "warnings": []}
    cost = cost_function(space, budget.metric, device, batch_size) if budget.metric == "latency" else None
    sol = solve(law, space, budget.amount(space, cost), budget.metric, min_width=min_width, multiple=multiple,
                device=device, batch_size=batch_size, cost=cost, stated=budget.share is None and budget.ratio is None)
    if method != "neuralscale":  # uniform and MorphNet scale one configuration uniformly by design
        sol.warnings = [w for w in sol.warnings if not w.startswith("the law is not a fit")]
    for w in sol.warnings:
        warn(f"{method if law.iteration is None else law_label(law.iteration, law.objective)} at "
             f"{amount(sol.budget, budget.metric)}: {w}")  # '0.52 ms', not '1 latency'
    out = {**space.describe(sol.widths), "method": method, "metric": budget.metric, "budget": sol.budget,
           "achieved": sol.achieved, "rel_error": sol.rel_error,
           "iteration": _iteration_of(method, law, source, iteration),
           "objective": objective, "fallback": law.fallback,
           "extrapolated": any(w.startswith("extrapolated") for w in sol.warnings),
           "macs_above_base": space.macs(sol.widths) > space.macs(space.base_widths), "warnings": sol.warnings}
    if budget.metric == "latency":
        out["measured"] = fresh_latency(space, sol.widths, sol.budget, device, batch_size)
        if not out["measured"]["within"]:
            m = out["measured"]
            warn(f"a fresh measurement gives {m['median_ms']:.4g} ms, {100 * m['rel_error']:+.1f}% from the budget "
                 f"(tolerance {100 * m['tolerance']:.1f}%)")
    return out


def method_label(method: str, iteration: int | None, objective: str = "params") -> str:
    """How a scaled method's runs are labelled: uniform; morphnet, pruned (morphnet-macs from a MACs descent);
    neuralscale@K and shape@K (neuralscale-macs@K, shape-macs@K)."""
    if method == "neuralscale" and iteration:
        return law_label(iteration, objective)
    name = method if objective == "params" or method == "uniform" else f"{method}-{objective}"
    return f"{name}@{iteration}" if method == "shape" else name


def _iteration_of(method: str, law: ScalingLaw, source, iteration: int | None) -> int | None:
    """The descent iteration a configuration comes from: its law's, or the one shape@K started from."""
    if method == "shape":
        return DescentDir(source).iteration(iteration).number
    return law.iteration


def fresh_latency(space: WidthSpace, widths: list[int], budget: float, device: str, batch_size: int) -> dict:
    """The configuration measured again (30 timed calls): its median and spread, and whether the budget is met
    within the tolerance (the spread, at least 2%: latency.tolerance)."""
    whole = measure_latency(space.build(widths), space.info.input_shape, device, (batch_size,), warmup=5, repeats=30)
    m = whole["batches"][str(batch_size)]
    check = {"measured_ms": m["median_ms"], "iqr_ms": m["iqr_ms"]}
    tol = tolerance(check)
    rel = (m["median_ms"] - budget) / budget
    return {"median_ms": m["median_ms"], "iqr_ms": m["iqr_ms"], "rel_error": rel, "tolerance": tol,
            "within": abs(rel) <= tol, "device": whole["device"]}
