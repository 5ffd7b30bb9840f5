"""Every figure neuralscale draws (PNG, and SVG or PDF on request, via matplotlib's non-interactive backend,
imported only when drawing).

Titles name the model and dataset, never a filesystem path, and wrap rather than run off the figure.

- a descent's figures: per-layer widths against parameters with the fitted laws
  (`growth_figure`), and the widths each iteration's law gives (`heatmap_figure`);
- a report's figures: accuracy against parameters, MACs or latency, one line per
  method (`accuracy_figure`), and the per-layer widths of every method
  (`widths_figure`).
"""

from __future__ import annotations

import functools
import math
import re
import textwrap
from pathlib import Path

import numpy as np

from .collector import paused
from .descent import DescentDir
from .errors import NeuralscaleError, first_line, warn
from .scaling import solve
from .space import WidthSpace
from .stats import t975
from .budget import UNITS, Budget, key_order
from .records import atomic_write
from .layout import HEATMAP_FIGURE, WIDTHS_FIGURE, accuracy_figure_name, growth_figure_name

PAPER_METHODS = {"uniform": "uniform", "morphnet": "morphnet", "neuralscale_iter1": "neuralscale@1",
                 "neuralscale_iter15": "neuralscale@15"}


FORMATS = ("png", "svg", "pdf")
BANDS = ("ci", "minmax", "none")


def check_formats(formats) -> tuple[str, ...]:
    formats = tuple(dict.fromkeys(f.strip().lower().lstrip(".") for f in formats if f.strip()))
    bad = [f for f in formats if f not in FORMATS]
    if not formats:
        raise NeuralscaleError(f"no figure format given; choose from: {', '.join(FORMATS)}")
    if bad:
        raise NeuralscaleError(f"unknown figure format {bad[0]!r}; choose from: {', '.join(FORMATS)}")
    return formats


def display_name(name: str) -> str:
    """A model or dataset name as a title shows it: an image folder by its folder's name, not its path."""
    scheme, _, rest = name.partition(":")
    if rest and ("/" in rest or "\\" in rest):
        return f"{Path(rest.rstrip('/')).name} ({scheme})"
    return name


def _title(space_or_model, dataset: str | None = None, what: str = "") -> str:
    model = space_or_model.name if isinstance(space_or_model, WidthSpace) else space_or_model
    dataset = space_or_model.info.name if isinstance(space_or_model, WidthSpace) else dataset
    return textwrap.fill(f"{display_name(model)} on {display_name(dataset)}: {what}", 72)


def _save(fig, path: Path, formats=("png",), dpi: int = 120) -> Path:
    """Save `path` (a .png name) in each format; returns the PNG's path (the one reports embed)."""
    plt = _plt()
    formats = check_formats(formats)
    from matplotlib.layout_engine import PlaceHolderLayoutEngine
    if isinstance(fig.get_layout_engine(), PlaceHolderLayoutEngine):
        # tight_layout() has placed the axes; the placeholder engine it leaves would make every savefig draw the
        # figure once more before drawing it (about a third of the time it takes), for the same pixels
        fig.set_layout_engine(None)
    import matplotlib
    try:
        for f in formats:  # atomically: a figure cut short (a full disk, a Ctrl-C) is not left as the figure
            with matplotlib.rc_context({"svg.hashsalt": "neuralscale"}):
                atomic_write(path.with_suffix(f".{f}"), lambda tmp, f=f: fig.savefig(tmp, dpi=dpi, format=f,
                                                                                     metadata=STILL.get(f)))
    finally:
        plt.close(fig)
    shown = next((f for f in ("png", "svg") if f in formats), formats[0])
    return path.with_suffix(f".{shown}")


# the same figure, the same bytes: no date in an SVG or PDF (a report rebuilt is then the report it was), and
# SVG's ids drawn from a fixed salt (below)
STILL = {"svg": {"Date": None}, "pdf": {"CreationDate": None, "ModDate": None}}


def _plt():
    with paused():
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    return plt


_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")
_MATHTEXT_POWER = re.compile(r"\$\\mathdefault\{(?:(-?[0-9.]+)\\times)?([0-9]+)\^\{(-?[0-9]+)\}\}\$")


def plain_power(label: str) -> str:
    r"""A log axis's tick label as matplotlib writes it for mathtext (`$\mathdefault{10^{4}}$`,
    `$\mathdefault{2\times10^{4}}$`) in plain text with the same glyphs (10⁴, 2×10⁴); any other label as it is."""
    m = _MATHTEXT_POWER.fullmatch(label)
    if not m:
        return label
    coeff, base, exponent = m.groups()
    return (f"{coeff}×" if coeff else "") + base + exponent.translate(_SUPERSCRIPT)


@functools.cache
def _plain_log_formatter() -> type:
    """matplotlib's log-axis formatter, its labels in plain text (`plain_power`); made on first use, as matplotlib
    is imported only when drawing."""
    from matplotlib.ticker import LogFormatterSciNotation

    class PlainLogFormatter(LogFormatterSciNotation):
        def __call__(self, x, pos=None):
            return plain_power(super().__call__(x, pos))

    return PlainLogFormatter


def _log_scale(ax, which: str) -> None:
    """`ax`'s x or y axis on a log scale, its ticks and the labels matplotlib gives them (minor ones labelled
    where it labels them), in plain text: through mathtext, their parsing took about a quarter of a descent's
    two figures in a new process (0.16 of 0.66 CPU-s), for the same glyphs."""
    formatter = _plain_log_formatter()
    getattr(ax, f"set_{which}scale")("log")
    axis = getattr(ax, f"{which}axis")
    axis.set_major_formatter(formatter(10))
    axis.set_minor_formatter(formatter(10, labelOnlyBase=False))


def growth_figure(out_dir: str | Path, space: WidthSpace, iteration: int | None = None,
                  dest: str | Path | None = None, formats=("png",)) -> Path:
    """Per-layer widths against the network's total of the descent's objective (parameters, MACs or estimated
    latency): the trajectory's points and the fitted curves, solid over the range the law was fitted on (shaded)
    and dotted where it extrapolates."""
    d = DescentDir(out_dir)
    entry = d.iteration(iteration)
    it, law = entry.number, entry.law
    rows = d.trajectory(it, space)
    # a fallback law is uniform scaling in parameters, whatever the descent's objective
    cost = d.objective_over(space).cost if law.objective != "params" else space.params
    tau = np.array([cost(r) for r in rows], dtype=float)
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 5.5))
    colors = plt.cm.viridis(np.linspace(0, 0.95, len(space)))
    # An iteration whose trajectory has no rows (some layer never lost a channel) has a uniform law: its
    # curves are drawn from the widths pruning ended at, with no points.
    low = tau.min() if len(tau) else cost(entry.final_widths)
    grid = np.geomspace(low, cost(space.base_widths) * 2, 200)
    lo, hi = law.tau_range if len(law.tau_range) == 2 else (grid[0], grid[-1])
    if len(law.tau_range) == 2:
        ax.axvspan(lo, hi, color="grey", alpha=0.08, lw=0, label="fitted range")
    inside = (grid >= lo) & (grid <= hi)
    for i, name in enumerate(space.layer_names):
        ax.scatter(tau, [r[i] for r in rows], s=6, color=colors[i], alpha=0.5)
        curve = law.alpha[i] * grid ** law.beta[i]
        ax.plot(grid[inside], curve[inside], color=colors[i], lw=1.5, label=f"{name} (β={law.beta[i]:.2f})")
        ax.plot(grid, np.where(inside, np.nan, curve), ":", color=colors[i], lw=1)
    _log_scale(ax, "x")
    _log_scale(ax, "y")
    ax.set_xlabel(f"total {UNITS[law.objective]} τ" + (" (estimated, batch as measured)" if law.objective == "latency"
                                                        else ""))
    ax.set_ylabel("channels")
    ax.set_title(_title(space, what=f"widths during pruning (iteration {it}) and fitted laws, dotted outside the "
                                    "fitted range") + ("" if rows else "\n(no trajectory rows: uniform scaling)"),
                 fontsize=10)
    ax.legend(fontsize=7, ncol=2 if len(space) > 10 else 1, loc="upper left")
    ax.grid(True, which="both", alpha=0.2)
    fig.tight_layout()
    return _save(fig, Path(dest or d.path) / growth_figure_name(it), formats)


def heatmap_figure(out_dir: str | Path, space: WidthSpace, ratios=(0.25, 0.5, 1.0, 2.0),
                   dest: str | Path | None = None, formats=("png",)) -> Path:
    """Per-layer widths across descent iterations, one panel per budget: the cost of uniform scaling by a ratio,
    in the descent's objective (parameters, MACs or estimated latency). A latency descent's table holds the widths
    its descent timed: a budget whose widths it lacks has no panel (said in a warning), and with none, one line
    naming the table."""
    d = DescentDir(out_dir)
    laws = d.laws()
    objective = d.objective_over(space)
    if not laws:
        raise NeuralscaleError(f"{d.path} holds no finished descent iteration to plot")
    panels = _panels(laws, space, objective, ratios)
    plt = _plt()
    # the panels' ratios are of the descent's start (its --base-ratio of the model): named as the model's, as the
    # tables name budgets (VGG11 at 1/8 width is ratio 0.125, not 1.0)
    base_ratio = float(((d.config() or {}).get("descent") or {}).get("base_ratio", 1.0))
    fig, axes = plt.subplots(1, len(panels), figsize=(3.8 * len(panels), 0.45 * len(space) + 2.2), squeeze=False)
    for ax, (ratio, budget, grid, beyond) in zip(axes[0], panels):
        im = ax.imshow(grid, aspect="auto", cmap="magma", origin="upper")
        amount = (f"{budget:.3g} ms" if objective.name == "latency" else f"{budget / 1e6:.2f}M {objective.name}"
                  if budget >= 1e5 else f"{budget:,.0f} {objective.name}")  # (not "0.00M" for a small network)
        ax.set_title(f"ratio {ratio * base_ratio:g} ({amount})", fontsize=10)
        # a law read beyond the sizes it was fitted on (the solver's `extrapolated`, as a report marks a row)
        ax.set_xlabel("iteration" + ("\n* its law read beyond the sizes it was fitted on" if any(beyond) else ""))
        ax.set_xticks(range(len(laws)), [f"{law.iteration}{'*' * b}" for law, b in zip(laws, beyond)], fontsize=7)
        ax.set_yticks(range(len(space)), space.layer_names if ax is axes[0][0] else [""] * len(space), fontsize=7)
        for (y, x), v in np.ndenumerate(grid):
            if len(laws) <= 8 and len(space) <= 20:
                ax.text(x, y, f"{int(v)}", ha="center", va="center", fontsize=8,
                        color="white" if v < grid.max() * 0.6 else "black")
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    fig.suptitle(_title(space, what="widths the law gives after each descent iteration"), fontsize=10)
    fig.tight_layout()
    return _save(fig, Path(dest or d.path) / HEATMAP_FIGURE, formats)


def _panels(laws, space: WidthSpace, objective, ratios) -> list[tuple[float, float, np.ndarray, list[bool]]]:
    """The heatmap's panels: (ratio, its budget, the widths each law gives there, whether each law is read there
    beyond the sizes it was fitted on), those a latency table cannot estimate left out with a warning (none: its
    error)."""
    panels, missing = [], []
    for ratio in ratios:
        try:
            budget = objective.cost(space.uniform(ratio))
            sols = [solve(law, space, budget, objective.name, cost=objective.cost) for law in laws]
        except NeuralscaleError as e:  # (a latency table read as recorded lacks widths it never timed)
            missing.append((ratio, first_line(e)))
            continue
        panels.append((ratio, budget, np.array([sol.widths for sol in sols], dtype=float).T,
                       [any(w.startswith("extrapolated") for w in sol.warnings) for sol in sols]))
    if not panels:
        raise NeuralscaleError(missing[0][1])
    if missing:
        warn(f"the descent's heatmap leaves out ratio(s) {', '.join(f'{r:g}' for r, _ in missing)} of its start: "
             f"{missing[0][1]}")
    return panels


def descent_figures(out_dir: str | Path, space: WidthSpace, dest: str | Path | None = None,
                    formats=("png",)) -> list[Path]:
    """Both figures of a descent; `space` is the model's space (the descent's --base-ratio start is applied). A
    latency descent's heatmap needs estimates at widths its descent may never have timed, which its table (read as
    recorded: nothing measured, nothing written) may not give: then it is left out with a warning, and the growth
    figure alone is returned."""
    space = DescentDir(out_dir).start_space(space)
    out = [growth_figure(out_dir, space, dest=dest, formats=formats)]
    try:
        out.append(heatmap_figure(out_dir, space, dest=dest, formats=formats))
    except NeuralscaleError as e:
        if DescentDir(out_dir).objective() != "latency":
            raise
        warn(f"the descent's heatmap is left out: {first_line(e)}")
    return out


def series(row: dict) -> str:
    """The line a report row belongs to: its label, or its label from weights (report.summarize_records)."""
    return row.get("series", row["label"])


def shown(rows: list[dict]) -> str:
    """A line's name in a legend: its rows' label with the marks (report._show) every one of them has (a mark that
    only some of its budgets have, such as `(pruned nothing)`, belongs to the table's row, not to the line)."""
    common = [m for m in rows[0].get("marks", ()) if all(m in r.get("marks", ()) for r in rows)]
    return rows[0]["label"] + "".join(f" ({m})" for m in common)


def method_colors(labels: list[str]) -> dict[str, object]:
    plt = _plt()
    cmap = plt.get_cmap("tab10")
    return {label: cmap(i % 10) for i, label in enumerate(labels)}


# one marker shape per method, in the order of its colour: where methods meet at a budget (MorphNet and uniform
# at the same widths, two seeds' means a hair apart) the open shapes show each one's point through the other's
# (nine shapes against tab10's ten colours: no two of the first 90 methods alike in both)
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">")


def method_markers(colors: dict[str, object]) -> dict[str, str]:
    """The marker of each method of `colors` (method_colors'), by its place there: the same in every figure."""
    return {label: MARKERS[i % len(MARKERS)] for i, label in enumerate(colors)}


def band(row: dict, kind: str = "ci") -> tuple[float, float]:
    """The band drawn around a row's mean: its 95% confidence interval (t, over seeds), or min-max; drawn within
    0-100%, where an accuracy lies (two seeds' interval around 97% reaches past 100)."""
    if kind == "minmax":
        return row["min"], row["max"]
    if kind == "none" or row["n"] < 2:
        return row["mean"], row["mean"]
    half = t975(row["n"] - 1) * row["std"] / math.sqrt(row["n"])
    return max(row["mean"] - half, 0.0), min(row["mean"] + half, 100.0)


def accuracy_figure(rows: list[dict], axis: str, dest: Path, title: str, ylabel: str,
                    paper: list[dict] | None = None, colors: dict | None = None, bands: str = "ci",
                    formats=("png",)) -> Path | None:
    """Mean accuracy against params, MACs or latency: one line per method, a band over seeds (95% CI of the
    mean by default, min-max on request)."""
    field = {"params": "params", "macs": "macs", "latency": "latency_ms"}[axis]
    usable = [r for r in rows if r[field] is not None]
    if not usable:
        return None
    plt = _plt()
    labels = sorted({series(r) for r in usable}, key=lambda s: (s != "uniform", s))  # a label, or one from weights
    colors = colors or method_colors(labels)
    markers = method_markers(colors)
    fig, ax = plt.subplots(figsize=(7.5, 5))
    marks: list[tuple] = []  # (x, y, text, colour) of a mark beside one point, placed once the axes are final
    for label in labels:
        pts = sorted((r for r in usable if series(r) == label), key=lambda r: r[field])
        x = [r[field] for r in pts]
        ax.plot(x, [r["mean"] for r in pts], "-", marker=markers[label], ms=7, mfc="none", mew=1.5,
                color=colors[label], label=f"{shown(pts)} (n={max(r['n'] for r in pts)})")
        for r, at in zip(pts, x):  # a mark only some of its points have (a baseline that pruned nothing there,
            # trained longer than the rest), beside its point: the legend names the line's common marks only
            own = [m for m in r.get("marks", ()) if not all(m in p.get("marks", ()) for p in pts)]
            own += ["unstable latency"] * bool(axis == "latency" and r.get("latency_unstable"))  # (as the table)
            if own:
                marks.append((at, r["mean"], ", ".join(own), colors[label]))
        if axis == "latency":  # each latency's measured spread: its interquartile range, centred on the median
            spread = [r.get("latency_iqr_ms") or 0.0 for r in pts]
            ax.errorbar(x, [r["mean"] for r in pts], xerr=[[s / 2 for s in spread]] * 2, fmt="none",
                        ecolor=colors[label], elinewidth=1, capsize=3)
        if bands != "none":
            lo_hi = [band(r, bands) for r in pts]
            ax.fill_between(x, [b[0] for b in lo_hi], [b[1] for b in lo_hi], color=colors[label], alpha=0.18, lw=0)
    if paper and axis in ("params", "macs"):
        for method, label in PAPER_METHODS.items():
            pr = sorted((r for r in paper if r["method"] == method), key=lambda r: float(r["params"]))
            if not pr:
                continue
            x = [float(r["params"]) if axis == "params" else float(r["macs_per_image_millions"]) * 1e6 for r in pr]
            ax.plot(x, [float(r["acc_best_epoch_mean"]) for r in pr], "--", lw=1, alpha=0.7,
                    color=colors.get(label, "grey"), label=f"paper (best test epoch): {label}")
    _log_scale(ax, "x")
    _fit_one_budget(ax, usable, field, bands)
    ax.set_xlabel({"params": "parameters", "macs": "MACs per image", "latency": "latency, batch 1 (ms, median)"}[axis])
    ax.set_ylabel(ylabel)
    ax.set_title(textwrap.fill(title, 72), fontsize=10)
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=8)
    fig.tight_layout()
    _place_marks(fig, ax, marks)
    return _save(fig, dest / accuracy_figure_name(axis), formats, dpi=110)


def _rises(lines: int = 24):
    """A mark's baseline over its point, in points: just above it, then a line further above and below in turn."""
    yield 4
    for i in range(1, lines):
        yield 4 + 10 * i
        yield -3 - 10 * i


def _place_marks(fig, ax, marks: list[tuple]) -> None:
    """Each mark beside its point (right of it, or left where it would run past the axes), moved a line up or down
    at a time until it overlaps no mark placed before it and stays inside the axes: two methods' marks at one
    budget (two baselines that both pruned nothing there) were written over each other, one at the last budget ran
    off the figure, and a stack of them over the title. Placed in points, so a figure saved at another resolution
    or as a vector keeps them apart. Where no place is free, the first inside the axes."""
    renderer = fig.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    placed: list = []
    for x, y, text, color in marks:
        inside = None  # (rise, side) of the first place inside the axes
        for rise in _rises():
            box, side = _mark_box(ax, renderer, (x, y), text, rise, frame.x1)
            if frame.y0 <= box.y0 and box.y1 <= frame.y1:
                inside = inside or (rise, side)
                if not any(box.overlaps(other) for other in placed):
                    break
        else:
            rise, side = inside or (4, 1)
        note = ax.annotate(text, (x, y), xytext=(5 * side, rise), textcoords="offset points", fontsize=7,
                           color=color, ha="left" if side > 0 else "right")
        placed.append(note.get_window_extent(renderer))


def _mark_box(ax, renderer, xy, text: str, rise: float, right: float):
    """Where a mark at `rise` would be drawn (right of its point, or left where that runs past `right`)."""
    for side in (1, -1):
        probe = ax.annotate(text, xy, xytext=(5 * side, rise), textcoords="offset points", fontsize=7,
                            ha="left" if side > 0 else "right")
        box = probe.get_window_extent(renderer)
        probe.remove()
        if side < 0 or box.x1 <= right:
            return box, side


def _fit_one_budget(ax, rows: list[dict], field: str, bands: str) -> None:
    """Where the rows sit at about one budget (within 1.5x on the axis), the axes frame them: x from a third
    below to a half above, y around their bands, so that the paper's curves and matplotlib's autoscale on a
    near-empty range neither stretch the accuracy axis past 100% nor zoom the x axis onto noise."""
    xs = [r[field] for r in rows]
    if max(xs) > 1.5 * min(xs):
        return
    ax.set_xlim(min(xs) / 1.5, max(xs) * 1.5)
    lows, highs = zip(*(band(r, bands) for r in rows))
    pad = max(0.5, 0.15 * (max(highs) - min(lows)))
    ax.set_ylim(max(0.0, min(lows) - pad), min(100.0, max(highs) + pad))


def widths_figure(rows: list[dict], layer_names: list[str] | None, dest: Path, colors: dict,
                  formats=("png",), subject: str = "") -> Path | None:
    """Per-layer widths of every method, one panel per budget, in the report's order of budgets (`subject`: the
    model and data, as the other figures' titles name them)."""
    amounts = {tuple(r["budget_key"]): r.get("budget_amount") for r in rows}
    budgets = sorted(amounts, key=lambda b: key_order(b, amounts[b]))
    if not budgets:
        return None
    plt = _plt()
    markers = method_markers(colors)
    lines = list(dict.fromkeys(series(r) for r in rows if tuple(r["budget_key"]) in amounts))
    width = max(4.2 * len(budgets), 6.5)  # (one panel: room for the title)
    per_row = max(1, min(len(lines), int(width // 2.4)))  # legend entries side by side, 2.4 in each
    legend_h = 0.17 * -(-len(lines) // per_row) + 0.15  # inches below the panels, for the legend's rows
    fig, axes = plt.subplots(1, len(budgets), figsize=(width, 3.8 + legend_h), squeeze=False, sharey=True)
    handles = {}
    for ax, b in zip(axes[0], budgets):
        for r in (r for r in rows if tuple(r["budget_key"]) == b):
            handles[series(r)], = ax.plot(range(1, len(r["widths"]) + 1), r["widths"], "-", marker=markers[series(r)],
                                          ms=4, mfc="none", color=colors[series(r)], label=r["shown"])
        ax.set_title(Budget.from_key(b).text, fontsize=9)
        if layer_names and len(layer_names) <= 24:
            ax.set_xticks(range(1, len(layer_names) + 1), layer_names, rotation=90, fontsize=6)
        else:
            ax.set_xlabel("gated layer")
        _log_scale(ax, "y")
        ax.grid(True, alpha=0.25)
    axes[0][0].set_ylabel("channels")
    fig.suptitle(f"{subject + ': ' if subject else ''}per-layer widths of each method at each budget", fontsize=10)
    # one legend under the panels, each method's line once, named as the accuracy figure names it (the last
    # panel's legend alone left out the methods of the others: a walkthrough's last panel held only the full-width
    # network the pruning baselines start from)
    fig.tight_layout(rect=(0, legend_h / fig.get_figheight(), 1, 1))
    fig.legend([handles[s] for s in lines], [shown([r for r in rows if series(r) == s]) for s in lines], fontsize=7,
               loc="lower center", ncol=per_row, frameon=False)
    return _save(fig, dest / WIDTHS_FIGURE, formats, dpi=110)
