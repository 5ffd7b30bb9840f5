"""Every figure neuralscale draws (PNG, via matplotlib's non-interactive backend, imported only when drawing).

- a descent's figures: per-layer widths against parameters with the fitted laws
  (`growth_figure`), and the widths each iteration's law gives (`heatmap_figure`);
- a report's figures: accuracy against parameters, MACs or latency, one line per
  method (`accuracy_figure`), and the per-layer widths of every method
  (`widths_figure`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .descent import DescentDir
from .errors import NeuralscaleError
from .scaling import solve
from .space import WidthSpace
from .store import budget_text

PAPER_METHODS = {"uniform": "uniform", "morphnet": "morphnet", "neuralscale_iter1": "neuralscale@1",
                 "neuralscale_iter15": "neuralscale@15"}


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def growth_figure(out_dir: str | Path, space: WidthSpace, iteration: int | None = None,
                  dest: str | Path | None = None) -> Path:
    """Per-layer widths against total parameters: the trajectory's points and the fitted curves."""
    d = DescentDir(out_dir)
    entry = d.iteration(iteration)
    it, law = entry.number, entry.law
    rows = d.trajectory(it, space)
    tau = np.array([space.params(r) for r in rows], dtype=float)
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 5.5))
    colors = plt.cm.viridis(np.linspace(0, 0.95, len(space)))
    # An iteration whose trajectory has no rows (some layer never lost a channel) has a uniform law: its
    # curves are drawn from the widths pruning ended at, with no points.
    low = tau.min() if len(tau) else space.params(entry.final_widths)
    grid = np.geomspace(low, space.params(space.base_widths) * 2, 200)
    for i, name in enumerate(space.layer_names):
        ax.scatter(tau, [r[i] for r in rows], s=6, color=colors[i], alpha=0.5)
        ax.plot(grid, law.alpha[i] * grid ** law.beta[i], color=colors[i], lw=1.5,
                label=f"{name} (β={law.beta[i]:.2f})")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("total parameters τ")
    ax.set_ylabel("channels")
    ax.set_title(f"{space.name} on {space.info.name}: widths during pruning (iteration {it}) and fitted laws"
                 + ("" if rows else "\n(no trajectory rows: uniform scaling)"), fontsize=10)
    ax.legend(fontsize=7, ncol=2 if len(space) > 10 else 1, loc="upper left")
    ax.grid(True, which="both", alpha=0.2)
    fig.tight_layout()
    path = Path(dest or d.path) / f"growth_iteration_{it:02d}.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def heatmap_figure(out_dir: str | Path, space: WidthSpace, ratios=(0.25, 0.5, 1.0, 2.0),
                   dest: str | Path | None = None) -> Path:
    """Per-layer widths across descent iterations, one panel per budget (uniform ratio)."""
    d = DescentDir(out_dir)
    laws = d.laws()
    if not laws:
        raise NeuralscaleError(f"{d.path} holds no finished descent iteration to plot")
    plt = _plt()
    fig, axes = plt.subplots(1, len(ratios), figsize=(3.2 * len(ratios), 0.35 * len(space) + 2), squeeze=False)
    for ax, ratio in zip(axes[0], ratios):
        budget = space.params(space.uniform(ratio))
        grid = np.array([solve(law, space, budget).widths for law in laws], dtype=float).T
        im = ax.imshow(grid, aspect="auto", cmap="magma", origin="upper")
        ax.set_title(f"ratio {ratio} ({budget / 1e6:.2f}M params)", fontsize=9)
        ax.set_xlabel("iteration")
        ax.set_xticks(range(len(laws)), [str(l.iteration) for l in laws], fontsize=7)
        ax.set_yticks(range(len(space)), space.layer_names if ax is axes[0][0] else [""] * len(space), fontsize=7)
        for (y, x), v in np.ndenumerate(grid):
            if len(laws) <= 8 and len(space) <= 20:
                ax.text(x, y, f"{int(v)}", ha="center", va="center", fontsize=6,
                        color="white" if v < grid.max() * 0.6 else "black")
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    fig.suptitle(f"{space.name} on {space.info.name}: widths the law gives after each descent iteration")
    fig.tight_layout()
    path = Path(dest or d.path) / "heatmap.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def descent_figures(out_dir: str | Path, space: WidthSpace, dest: str | Path | None = None) -> list[Path]:
    """Both figures of a descent; `space` is the model's space (the descent's --base-ratio start is applied)."""
    space = DescentDir(out_dir).start_space(space)
    return [growth_figure(out_dir, space, dest=dest), heatmap_figure(out_dir, space, dest=dest)]


def method_colors(labels: list[str]) -> dict[str, object]:
    plt = _plt()
    cmap = plt.get_cmap("tab10")
    return {label: cmap(i % 10) for i, label in enumerate(labels)}


def accuracy_figure(rows: list[dict], axis: str, dest: Path, title: str, ylabel: str,
                    paper: list[dict] | None = None, colors: dict | None = None) -> Path | None:
    """Mean accuracy against params, MACs or latency: one line per method, min-max band over seeds."""
    field = {"params": "params", "macs": "macs", "latency": "latency_ms"}[axis]
    usable = [r for r in rows if r[field] is not None]
    if not usable:
        return None
    plt = _plt()
    labels = sorted({r["label"] for r in usable}, key=lambda s: (s != "uniform", s))
    colors = colors or method_colors(labels)
    fig, ax = plt.subplots(figsize=(7.5, 5))
    for label in labels:
        pts = sorted((r for r in usable if r["label"] == label), key=lambda r: r[field])
        x = [r[field] for r in pts]
        ax.plot(x, [r["mean"] for r in pts], "o-", color=colors[label],
                label=f"{pts[0]['shown']} (n={max(r['n'] for r in pts)})")
        ax.fill_between(x, [r["min"] for r in pts], [r["max"] for r in pts], color=colors[label], alpha=0.18, lw=0)
    if paper and axis in ("params", "macs"):
        for method, label in PAPER_METHODS.items():
            pr = sorted((r for r in paper if r["method"] == method), key=lambda r: float(r["params"]))
            if not pr:
                continue
            x = [float(r["params"]) if axis == "params" else float(r["macs_per_image_millions"]) * 1e6 for r in pr]
            ax.plot(x, [float(r["acc_best_epoch_mean"]) for r in pr], "--", lw=1, alpha=0.7,
                    color=colors.get(label, "grey"), label=f"paper: {label}")
    ax.set_xscale("log")
    ax.set_xlabel({"params": "parameters", "macs": "MACs per image", "latency": "latency, batch 1 (ms, median)"}[axis])
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = dest / f"acc_vs_{axis}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def widths_figure(rows: list[dict], layer_names: list[str] | None, dest: Path, colors: dict) -> Path | None:
    """Per-layer widths of every method, one panel per budget."""
    budgets = sorted({tuple(r["budget_key"]) for r in rows})
    if not budgets:
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, len(budgets), figsize=(4.2 * len(budgets), 3.8), squeeze=False, sharey=True)
    for ax, b in zip(axes[0], budgets):
        for r in (r for r in rows if tuple(r["budget_key"]) == b):
            ax.plot(range(1, len(r["widths"]) + 1), r["widths"], "o-", ms=3, color=colors[r["label"]], label=r["shown"])
        ax.set_title(budget_text(b), fontsize=9)
        if layer_names and len(layer_names) <= 24:
            ax.set_xticks(range(1, len(layer_names) + 1), layer_names, rotation=90, fontsize=6)
        else:
            ax.set_xlabel("gated layer")
        ax.set_yscale("log")
        ax.grid(True, alpha=0.25)
    axes[0][0].set_ylabel("channels")
    axes[0][-1].legend(fontsize=7)
    fig.suptitle("per-layer widths of each method at each budget", fontsize=10)
    fig.tight_layout()
    path = dest / "widths.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
