"""Figures of a descent directory (PNG, via matplotlib's non-interactive backend)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .descent import load_laws
from .errors import NeuralscaleError
from .scaling import ScalingLaw, read_trajectory, solve
from .space import WidthSpace


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def growth_figure(out_dir: str | Path, space: WidthSpace, iteration: int | None = None,
                  dest: str | Path | None = None) -> Path:
    """Per-layer widths against total parameters: the trajectory's points and the fitted curves."""
    out = Path(out_dir)
    laws = load_laws(out)
    if not laws:
        raise NeuralscaleError(f"{out} holds no finished descent iteration to plot")
    entry = laws[-1] if iteration is None else next((d for d in laws if d["iteration"] == iteration), None)
    if entry is None:
        raise NeuralscaleError(f"{out} has no iteration {iteration}")
    it = entry["iteration"]
    rows = read_trajectory(out / f"iteration_{it:02d}.csv", space).rows
    law = ScalingLaw.from_dict(entry)
    tau = np.array([space.params(r) for r in rows], dtype=float)
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 5.5))
    colors = plt.cm.viridis(np.linspace(0, 0.95, len(space)))
    # An iteration whose trajectory has no rows (some layer never lost a channel) has a uniform law: its
    # curves are drawn from the widths pruning ended at, with no points.
    low = tau.min() if len(tau) else space.params(entry.get("final_widths") or space.uniform(0.05))
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
    path = Path(dest or out) / f"growth_iteration_{it:02d}.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def heatmap_figure(out_dir: str | Path, space: WidthSpace, ratios=(0.25, 0.5, 1.0, 2.0),
                   dest: str | Path | None = None) -> Path:
    """Per-layer widths across descent iterations, one panel per budget (uniform ratio)."""
    out = Path(out_dir)
    laws = [ScalingLaw.from_dict(d) for d in load_laws(out)]
    if not laws:
        raise NeuralscaleError(f"{out} holds no finished descent iteration to plot")
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
    path = Path(dest or out) / "heatmap.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def descent_figures(out_dir: str | Path, space: WidthSpace, dest: str | Path | None = None) -> list[Path]:
    return [growth_figure(out_dir, space, dest=dest), heatmap_figure(out_dir, space, dest=dest)]
