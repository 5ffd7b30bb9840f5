"""Reports of a run store, rebuilt from the run records alone (no training).

`build_report(DIR)` writes into DIR/report/:

    report.md, report.html   the table and every figure (the HTML embeds its PNGs)
    summary.json             per method and budget: mean, std, min, max over seeds, gap to uniform with a 95% CI
    acc_vs_params.png, acc_vs_macs.png, acc_vs_latency.png, widths.png
    growth_iteration_NN.png, heatmap.png   the descent's figures, when its directory is known and present

Accuracy is test accuracy at the best-validation epoch (`best-val`), or at the
final epoch (`final`).  `original` is the original code's protocol, the best
test epoch, which selects on the test set: offered only to compare with the
paper's numbers, and labelled so wherever it appears.
"""

from __future__ import annotations

import base64
import html
import json
import math
import statistics
import time
from collections import defaultdict
from pathlib import Path

from .errors import NeuralscaleError
from .records import atomic_write_json, atomic_write_text
from .descent import fallback_message, load_laws
from .guard import check_report_dir
from .store import RunStore, finite, load_records
from .sweep import BASE_METHODS, METHOD_TITLES

ACCURACY = {
    "best-val": ("test_acc_at_best_val", "test accuracy at the best-validation epoch"),
    "final": ("final_test_acc", "test accuracy at the final epoch"),
    "original": ("best_test_acc_original_protocol",
                 "best test accuracy over epochs (ORIGINAL PROTOCOL: selects on the test set; for comparison with the paper only)"),
}
# Two-sided 95% quantiles of Student's t for 1..30 degrees of freedom; 1.96 beyond.
_T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
         2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042]
PAPER_METHODS = {"uniform": "uniform", "morphnet": "morphnet", "neuralscale_iter1": "neuralscale@1",
                 "neuralscale_iter15": "neuralscale@15"}


def t975(df: float) -> float:
    if df < 1:
        return float("nan")
    return _T975[min(int(df), 30) - 1] if df < 31 else 1.96


def budget_key(record: dict) -> tuple:
    b = record.get("budget") or {}
    if "ratio" in b:
        return ("ratio", float(b["ratio"]))
    if b:
        return (b["metric"], float(b["value"]))
    return ("params", float(record.get("params", 0)))


def budget_text(key: tuple) -> str:
    kind, v = key
    return f"ratio {v:g}" if kind == "ratio" else f"{v:,.0f} {kind}"


def _latency_ms(record: dict) -> float | None:
    lat = record.get("latency") or {}
    batches = lat.get("batches") or {}
    if "1" in batches:
        return batches["1"]["median_ms"]
    return None


def welch_gap(a: list[float], b: list[float]) -> tuple[float, float | None]:
    """mean(a) - mean(b) and the half-width of its 95% confidence interval (Welch), None with under 2 of either."""
    gap = statistics.fmean(a) - statistics.fmean(b)
    if len(a) < 2 or len(b) < 2:
        return gap, None
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    se = math.sqrt(va + vb)
    if se == 0:
        return gap, 0.0
    df = (va + vb) ** 2 / ((va ** 2 / (len(a) - 1) if va else 0) + (vb ** 2 / (len(b) - 1) if vb else 0))
    return gap, t975(df) * se


def summarize_records(records: list[dict], accuracy: str = "best-val") -> list[dict]:
    """One row per (method label, budget) over the finished runs: statistics over seeds and the gap to uniform."""
    if accuracy not in ACCURACY:
        raise NeuralscaleError(f"unknown accuracy {accuracy!r}; choose one of: {', '.join(ACCURACY)}")
    key = ACCURACY[accuracy][0]
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in records:
        if r.get("status") == "finished" and finite(r.get("summary", {}).get(key)):
            groups[(r["label"], budget_key(r))].append(r)
    rows = []
    for (label, bkey), rs in groups.items():
        accs = [r["summary"][key] for r in rs]
        finals = [r["summary"]["final_test_acc"] for r in rs]
        lat = [x for x in (_latency_ms(r) for r in rs) if x is not None]
        rows.append({
            "label": label, "shown": label, "fallback": False, "method": rs[0]["method"], "budget": budget_text(bkey), "budget_key": list(bkey),
            "seeds": sorted(r["seed"] for r in rs), "n": len(rs),
            "params": rs[0]["params"], "macs": rs[0]["macs"], "widths": rs[0]["widths"],
            "latency_ms": statistics.median(lat) if lat else None,
            "accuracy": accuracy, "mean": statistics.fmean(accs), "std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
            "min": min(accs), "max": max(accs), "values": accs,
            "final_mean": statistics.fmean(finals), "final_std": statistics.stdev(finals) if len(finals) > 1 else 0.0,
            "wall_s": sum(r.get("wall_s", 0) for r in rs),
        })
    uniform = {tuple(r["budget_key"]): r for r in rows if r["label"] == "uniform"}
    for r in rows:
        u = uniform.get(tuple(r["budget_key"]))
        if u is not None and r is not u:
            r["gap_to_uniform"], r["gap_ci95"] = welch_gap(r["values"], u["values"])
        else:
            r["gap_to_uniform"], r["gap_ci95"] = None, None
    order = {m: i for i, m in enumerate(BASE_METHODS)}
    rows.sort(key=lambda r: (r["budget_key"][0], r["budget_key"][1], order.get(r["method"], 9), r["label"]))
    return rows


def _mark_fallbacks(rows: list[dict], descent_dir: Path | None) -> list[str]:
    """Label rows whose NeuralScale law was a fallback (uniform scaling, not a fit) as such; returns the notes."""
    if descent_dir is None or not (descent_dir / "fits.json").exists():
        return []
    laws = {f"neuralscale@{d.get('iteration')}": d for d in load_laws(descent_dir) if d.get("fallback")}
    for r in rows:
        if r["label"] in laws:
            r["fallback"], r["shown"] = True, r["label"] + " (fallback)"
    return [fallback_message(d) for label, d in laws.items() if any(r["label"] == label for r in rows)]


def _paper_rows(model: str, dataset: str) -> list[dict]:
    from .reference import rows as reference_rows
    return [r for r in reference_rows("paper_results.csv") if r["model"] == model and r["dataset"] == dataset]


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _colors(labels: list[str]) -> dict[str, object]:
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
    colors = colors or _colors(labels)
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


def _fmt_ci(r: dict) -> str:
    if r["gap_to_uniform"] is None:
        return ""
    ci = f" ± {r['gap_ci95']:.2f}" if r["gap_ci95"] is not None else " (CI needs 2+ seeds)"
    return f"{r['gap_to_uniform']:+.2f}{ci}"


def _table(rows: list[dict]) -> list[list[str]]:
    head = ["method", "budget", "seeds", "params", "MACs (M)", "latency (ms)", "test acc (sel.)", "final-epoch test acc",
            "gap to uniform [95% CI]"]
    body = [[r["shown"], r["budget"], str(r["n"]), f"{r['params']:,}", f"{r['macs'] / 1e6:.2f}",
             f"{r['latency_ms']:.2f}" if r["latency_ms"] is not None else "",
             f"{r['mean']:.2f} ± {r['std']:.2f}", f"{r['final_mean']:.2f} ± {r['final_std']:.2f}", _fmt_ci(r)]
            for r in rows]
    return [head, *body]


def build_report(store: str | Path, accuracy: str = "best-val", out: str | Path | None = None,
                 descent: str | Path | None = None, force: bool = False) -> dict:
    """Write the report of a run store; returns {"markdown", "html", "summary", "rows", "records"}."""
    store = Path(store)
    if not store.is_dir():
        raise NeuralscaleError(f"{store} is not a folder" if store.exists() else f"{store} does not exist")
    records = load_records(store)
    if not records:
        raise NeuralscaleError(f"{store} holds no run records")
    rows = summarize_records(records, accuracy)
    if not rows:
        raise NeuralscaleError(f"{store} holds no finished runs yet ({len(records)} record(s): "
                               + ", ".join(sorted({r['status'] for r in records})) + ")")
    dest = check_report_dir(Path(out) if out else store / "report", force)
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise NeuralscaleError(f"cannot write the report into {dest}: {e.strerror or e}") from None
    models = sorted({(r["model"], r["dataset"]) for r in records})
    model, dataset = models[0]
    plan = RunStore(store).load_plan() or {}
    sweep_cfg = plan.get("config") if isinstance(plan.get("config"), dict) else {}
    recorded = sweep_cfg.get("descent")
    descent_dir = Path(descent) if descent else (Path(recorded) if isinstance(recorded, str) and recorded else None)
    fallbacks = _mark_fallbacks(rows, descent_dir)
    ylabel = ACCURACY[accuracy][1]
    labels = sorted({r["label"] for r in rows}, key=lambda s: (s != "uniform", s))
    colors = _colors(labels)
    paper = _paper_rows(model, dataset) if len(models) == 1 else []
    figures: list[tuple[str, Path]] = []
    title = f"{model} on {dataset}: mean over seeds, band = min-max"
    for axis in ("params", "macs", "latency"):
        p = accuracy_figure(rows, axis, dest, title, ylabel + " (%)", paper, colors)
        if p:
            figures.append((f"accuracy against {axis}", p))
    layer_names = None
    space = None
    try:
        from .space import space as make_space
        space = make_space(model, dataset, convcut=sweep_cfg.get("convcut") is True)
        layer_names = list(space.layer_names)
    except NeuralscaleError:
        pass
    p = widths_figure(rows, layer_names, dest, colors)
    if p:
        figures.append(("per-layer widths", p))
    descent_note = ""
    if descent_dir is not None and space is not None:
        if (descent_dir / "fits.json").exists():
            from .plots import growth_figure, heatmap_figure
            figures.append(("descent: widths during pruning and fitted laws", growth_figure(descent_dir, space, dest=dest)))
            figures.append(("descent: widths the law gives per iteration", heatmap_figure(descent_dir, space, dest=dest)))
        else:
            descent_note = f"The descent directory {descent_dir} is not available; its figures are left out."
    table = _table(rows)
    failed = [r for r in records if r["status"] == "failed"]
    running = [r for r in records if r["status"] == "running"]
    lines = [f"# neuralscale report: {model} on {dataset}", "",
             f"Built {time.strftime('%Y-%m-%d %H:%M:%S')} from {len(records)} run record(s) in `{store}`: "
             f"{sum(r['status'] == 'finished' for r in records)} finished, {len(failed)} failed, {len(running)} unfinished.",
             "", f"Accuracy: **{ylabel}**, mean ± std over seeds. Models are selected on a validation split "
             "carved from the training set; the final-epoch column needs no selection at all. "
             "The gap to uniform is the difference of means at the same budget, with a Welch 95% confidence interval.",
             ""]
    if paper:
        lines += ["Dashed lines: the paper's published curves for this model and dataset (best test epoch over "
                  "300/150 epochs, the original protocol); a reduced schedule will sit below them.", ""]
    lines += ["| " + " | ".join(table[0]) + " |", "|" + "---|" * len(table[0])]
    lines += ["| " + " | ".join(row) + " |" for row in table[1:]]
    lines.append("")
    finished = [r for r in records if r["status"] == "finished"]
    recipe = finished[0].get("config", {}) if finished else {}
    if recipe:
        lines += [f"Recipe: {recipe.get('epochs')} epochs, batch {recipe.get('batch_size')}, lr {recipe.get('lr')} "
                  f"({recipe.get('schedule')}), momentum {recipe.get('momentum')}, weight decay {recipe.get('weight_decay')}, "
                  f"augmentation {'on' if recipe.get('augment') else 'off'}.", ""]
    if fallbacks:
        lines += ["**Fallback laws:** " + "; ".join(fallbacks) + ". A row marked `(fallback)` is uniform scaling "
                  "of one configuration, not a fitted law.", ""]
    lines += ["## Methods", ""] + [f"- `{m}`: {METHOD_TITLES[m]}" for m in
                                   dict.fromkeys(r["method"] for r in rows) if m in METHOD_TITLES] + [""]
    for caption, p in figures:
        lines += [f"## {caption[0].upper() + caption[1:]}", "", f"![{caption}]({p.name})", ""]
    if descent_note:
        lines += [descent_note, ""]
    if failed:
        lines += ["## Failed runs", ""] + [f"- `{r['id']}`: {r.get('error', '')}" for r in failed] + [""]
    lines += ["## Widths", "", "| method | budget | widths |", "|---|---|---|"]
    lines += [f"| {r['shown']} | {r['budget']} | {','.join(map(str, r['widths']))} |" for r in rows]
    markdown = "\n".join(lines) + "\n"
    md_path = dest / "report.md"
    atomic_write_text(md_path, markdown)
    html_path = dest / "report.html"
    atomic_write_text(html_path, _html(markdown, figures, model, dataset))
    summary = {"model": model, "dataset": dataset, "accuracy": accuracy, "store": str(store),
               "rows": rows,
               "runs": [run_summary(r) for r in records]}
    atomic_write_json(dest / "summary.json", summary)
    return {"markdown": md_path, "html": html_path, "summary": dest / "summary.json", "rows": rows,
            "records": records, "figures": [p for _, p in figures]}


def run_summary(r: dict) -> dict:
    s = r.get("summary") or {}
    return {"id": r["id"], "status": r["status"], "label": r.get("label"), "budget": r.get("budget"),
            "seed": r.get("seed"), "widths": r.get("widths"), "params": r.get("params"), "macs": r.get("macs"),
            "latency_ms": _latency_ms(r), "final_test_acc": s.get("final_test_acc"),
            "test_acc_at_best_val": s.get("test_acc_at_best_val"), "best_val_epoch": s.get("best_val_epoch"),
            "best_test_acc_original_protocol": s.get("best_test_acc_original_protocol"),
            "wall_s": r.get("wall_s"), "error": r.get("error")}


def _html(markdown: str, figures: list[tuple[str, Path]], model: str, dataset: str) -> str:
    """A self-contained page: the markdown's table and text as HTML, figures embedded as data URIs."""
    images = {p.name: base64.b64encode(p.read_bytes()).decode() for _, p in figures}
    out = [f"<!doctype html><html><head><meta charset='utf-8'><title>neuralscale: {html.escape(model)} on "
           f"{html.escape(dataset)}</title><style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;}}"
           "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}"
           "td:first-child,th:first-child{text-align:left}img{max-width:100%}</style></head><body>"]
    in_table = False
    for line in markdown.splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if all(set(c) <= {"-"} for c in cells):
                continue
            if not in_table:
                out.append("<table>")
                in_table = True
                out.append("<tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in cells) + "</tr>")
            else:
                out.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
            continue
        if in_table:
            out.append("</table>")
            in_table = False
        if line.startswith("# "):
            out.append(f"<h1>{html.escape(line[2:])}</h1>")
        elif line.startswith("## "):
            out.append(f"<h2>{html.escape(line[3:])}</h2>")
        elif line.startswith("![") and "](" in line:
            name = line[line.index("](") + 2:-1]
            alt = line[2:line.index("]")]
            if name in images:
                out.append(f"<img alt='{html.escape(alt)}' src='data:image/png;base64,{images[name]}'>")
        elif line.startswith("- "):
            out.append(f"<li>{html.escape(line[2:])}</li>")
        elif line.strip():
            text = html.escape(line).replace("**", "")
            out.append(f"<p>{text}</p>")
    if in_table:
        out.append("</table>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"
