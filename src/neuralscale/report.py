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
import logging
import os
import re
import statistics
import time
import warnings
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from .descent import DescentDir, at_base, largest_move
from .errors import NeuralscaleError, first_line, warn
from .figures import (BANDS, accuracy_figure, check_formats, descent_figures, display_name, method_colors,
                      widths_figure)
from .guard import check_report_dir
from .methods import BASE_METHODS, METHOD_TITLES, OBJECTIVE_TITLES, SPARSE_LABEL, law_label, scale
from .records import atomic_write_json, atomic_write_text, exclusive, read_text
from .reference import rows as reference_rows
from .scaling import EXTRAPOLATION
from .space import WidthSpace
from .stats import holm, paired_gap, paired_p, welch_gap, welch_p
from .sweep import law_fingerprints, law_prefix, read_plan
from .train import TrainConfig, autocasts, little_learned_at
from .validate import one_of
from .accounting import UNSTABLE, unstable
from .budget import UNITS, Budget, amount_range, key_order
from .data import dataset_name, same_data
from .data.info import protocol
from .layout import ReportDir, RunDir, StoreDir
from .store import RunStore, budget_key, data_counts, finite, load_records, said_counts
from .zoo import located, model_beside, model_identity, model_name, model_spelling, record_model, record_space

log = logging.getLogger(__name__)

BAND_TEXT = {"ci": ", band = 95% confidence interval of the mean", "minmax": ", band = min-max over seeds",
             "none": ""}
ACCURACY = {
    "best-val": ("test_acc_at_best_val", "test accuracy at the best-validation epoch"),
    "final": ("final_test_acc", "test accuracy at the final epoch"),
    "original": ("best_test_acc_original_protocol",
                 "best test accuracy over epochs (ORIGINAL PROTOCOL: selects on the test set; for comparison with the paper only)"),
}
# each accuracy in a table's column heads, a figure's axis and the command's summary lines
ACCURACY_SHORT = {"best-val": "sel.", "final": "final epoch", "original": "ORIGINAL PROTOCOL: best test epoch"}
ACCURACY_AXIS = {"best-val": "test accuracy at the best-validation epoch (%)",
                 "final": "test accuracy at the final epoch (%)",
                 "original": "best test epoch (%), ORIGINAL PROTOCOL"}
SELECTION_TEXT = {
    "best-val": "Models are selected on a validation split carved from the training set; the final-epoch column needs "
                "no selection at all.",
    "final": "No selection: each run's last epoch; the final-epoch column repeats it.",
    "original": "**Each run's best test epoch is taken: this selects on the test set**, as the original code did, and "
                "overstates what a network would score on new data; for comparison with the paper's numbers only "
                "(`--accuracy best-val` selects on a validation split carved from the training set)."}
def _latency_ms(record: dict) -> float | None:
    m = _latency_at_1(record)
    return None if m is None else m["median_ms"]


def _latency_at_1(record: dict) -> dict | None:
    """A run's latency measurement at batch 1 (median, iqr_ms, ...), or None."""
    lat = record.get("latency") or {}
    batches = lat.get("batches") or {}
    m = batches.get("1")
    return m if isinstance(m, dict) and finite(m.get("median_ms")) else None


def _latency_spread(rs: list[dict]) -> tuple[float | None, bool]:
    """The interquartile range of a row's latency (the median of its runs' own) and whether any of its runs'
    measurements was unstable (accounting.unstable)."""
    ms = [m for m in (_latency_at_1(r) for r in rs) if m is not None and finite(m.get("iqr_ms"))]
    if not ms:
        return None, False
    return statistics.median(m["iqr_ms"] for m in ms), any(unstable(m["median_ms"], m["iqr_ms"]) for m in ms)


def _latency_device(record: dict) -> str | None:
    """Where a run measured its latency (e.g. 'cpu (x86_64, 1 threads)', 'NVIDIA H100 80GB HBM3')."""
    return (record.get("latency") or {}).get("device") if _latency_ms(record) is not None else None


def latency_device(rows: list[dict]) -> str | None:
    """The one device every row's latency was measured on, or None (none measured, or several devices:
    latencies of different machines cannot be compared, so the report leaves them out)."""
    devices = {d for r in rows for d in r["latency_devices"]}
    return devices.pop() if len(devices) == 1 else None


WARM = "from weights"  # the mark of rows of runs started from another run's weights (train --init-from)


def _start(r: dict) -> str:
    """How a run started: 'pruned' (a pruning baseline: pruned from a trained run, then fine-tuned), 'weights'
    (from another run's weights: train --init-from) or 'scratch'."""
    spec = r.get("spec") or {}
    return "pruned" if spec.get("pretrained") else "weights" if spec.get("init") else "scratch"


def _peer(row: dict) -> tuple:
    """Which uniform row a row compares with: uniform at its budget, started as it was (runs from another's weights
    with uniform from weights; the rest, pruning baselines included, with uniform trained from scratch)."""
    return tuple(row["budget_key"]), row["start"] == "weights"


def _uniforms(rows: list[dict]) -> dict[tuple, dict]:
    return {_peer(r): r for r in rows if r["label"] == "uniform"}


def summarize_records(records: list[dict], accuracy: str = "best-val") -> list[dict]:
    """One row per (method label, budget) over the finished runs: statistics over seeds and the gap to uniform."""
    if accuracy not in ACCURACY:
        raise NeuralscaleError(f"unknown accuracy {accuracy!r}; choose one of: {', '.join(ACCURACY)}")
    key = ACCURACY[accuracy][0]
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in records:
        if r.get("status") == "finished" and finite(r.get("summary", {}).get(key)):
            groups[(r["label"], budget_key(r), _start(r))].append(r)
    rows = []
    for (label, bkey, start), rs in groups.items():  # a warm start is not its method trained from scratch
        accs = [r["summary"][key] for r in rs]
        finals = [r["summary"]["final_test_acc"] for r in rs]
        lat = [x for x in (_latency_ms(r) for r in rs) if x is not None]
        lat_devices = {_latency_device(r) for r in rs} - {None}  # more than one: not comparable (latency_device)
        unpruned = all((r.get("pruning") or {}).get("from_widths") == r["widths"] for r in rs)
        rows.append({
            "label": label, "start": start, "series": label + (f" ({WARM})" if start == "weights" else ""),
            "marks": [WARM] * (start == "weights") + ["pruned nothing"] * unpruned, "pruned_nothing": unpruned,
            "fallback": False, "extrapolated": any(r.get("extrapolated") is True for r in rs),  # (as `train` records)
            "method": rs[0]["method"], "budget": Budget.from_key(bkey).text, "budget_key": list(bkey),
            "budget_amount": _amount(rs[0]),
            "seeds": sorted(r["seed"] for r in rs), "n": len(rs),
            **_network(rs),
            "latency_ms": statistics.median(lat) if lat else None,
            **dict(zip(("latency_iqr_ms", "latency_unstable"), _latency_spread(rs))),
            "latency_devices": sorted(lat_devices),
            "accuracy": accuracy, "mean": statistics.fmean(accs), "std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
            "min": min(accs), "max": max(accs), "values": accs, "by_seed": {r["seed"]: r["summary"][key] for r in rs},
            "finals": finals, "finals_by_seed": {r["seed"]: r["summary"]["final_test_acc"] for r in rs},
            "final_mean": statistics.fmean(finals), "final_std": statistics.stdev(finals) if len(finals) > 1 else 0.0,
            "wall_s": sum(r.get("wall_s", 0) for r in rs),
            # where and in what its runs computed (device_note's words): alike, or not, as another row's
            "trained_on": sorted({f"{_training_device(r)} ({arithmetic(r)})" for r in rs}),
        })
    uniform = _uniforms(rows)
    for r in rows:
        u = uniform.get(_peer(r))
        if u is not None and r is not u:
            r["gap_to_uniform"], r["gap_ci95"] = welch_gap(r["values"], u["values"])
            r["final_gap"], r["final_gap_ci95"] = welch_gap(r["finals"], u["finals"])
            r["paired_gap"], r["paired_ci95"], r["paired_n"] = paired_gap(r["by_seed"], u["by_seed"])
        else:
            r["gap_to_uniform"], r["gap_ci95"], r["final_gap"], r["final_gap_ci95"] = None, None, None, None
            r["paired_gap"], r["paired_ci95"], r["paired_n"] = None, None, 0
        r["same_network"] = _same_network(r, u)
        r["p"], r["p_test"] = _pvalue(r, u) if not r["same_network"] else (None, None)
    for r, holds in zip(rows, _holm_once(rows)):  # the family: the comparisons the verdicts make
        r["holm"] = holds
        _show(r)
    order = {m: i for i, m in enumerate(BASE_METHODS)}
    rows.sort(key=lambda r: (*_budget_order(r), order.get(r["method"], 9), r["label"]))
    return rows


def _repeats(r: dict) -> tuple | None:
    """What a row's comparison is, to know one that repeats another's: its uniform, its network (every seed's
    widths, where they are one network) and every seed's two accuracies. Two rows alike in all of it compare the
    same runs' outcomes (two pruning baselines that pruned nothing fine-tune the same weights the same way)."""
    if r["p"] is None or r.get("params_range"):
        return None
    return (_peer(r), r["start"], tuple(r["widths"]), tuple(r["trained_on"]), tuple(sorted(r["by_seed"].items())),
            tuple(sorted(r["finals_by_seed"].items())))


def _holm_once(rows: list[dict]) -> list[bool | None]:
    """Holm's correction over the table's comparisons, one that repeats another's counted once (it holds as the
    other does): a repeat is no further chance of a false finding."""
    keys = [_repeats(r) for r in rows]
    first: dict[tuple, int] = {}
    for i, key in enumerate(keys):
        if key is not None:
            first.setdefault(key, i)
    held = holm([r["p"] if key is None or first[key] == i else None for i, (r, key) in enumerate(zip(rows, keys))])
    return [held[i] if key is None else held[first[key]] for i, key in enumerate(keys)]


def _amount(record: dict) -> float | None:
    """A record's budget amount (a share's, as it was resolved when the run was planned), or None."""
    value = (record.get("budget") or {}).get("value")
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _budget_order(row: dict) -> tuple:
    return key_order(row["budget_key"], row.get("budget_amount"))


def _paired(row: dict) -> bool:
    """Whether a row's gap to uniform is read paired by seed (2+ seeds pair and their differences vary), as its
    verdict and p-value both read it; else Welch's."""
    return row["paired_n"] >= 2 and row["paired_ci95"] is not None


def unmeasured(records: list[dict], accuracy: str) -> list[dict]:
    """The finished runs that lack the accuracy a report selects by (trained without a validation split, for the
    best-validation epoch): summarize_records leaves them out, and the report says so."""
    key = ACCURACY[accuracy][0]
    return [r for r in records if r.get("status") == "finished" and not finite((r.get("summary") or {}).get(key))]


def _pvalue(row: dict, uniform: dict | None) -> tuple[float | None, str | None]:
    """The p-value of a row's gap to uniform: paired by seed where 2+ seeds pair, else Welch's; None without
    a comparison."""
    if uniform is None or row is uniform or row["label"] == SPARSE_LABEL:  # no method compared (verdicts)
        return None, None
    if _paired(row):
        return paired_p(row["by_seed"], uniform["by_seed"]), "paired"
    p = welch_p(row["values"], uniform["values"])
    return (p, "welch") if p is not None else (None, None)


def fmt_p(row: dict) -> str:
    """'0.004 (holds)' where the gap survives Holm's correction over the table's comparisons."""
    if row.get("p") is None:
        return ""
    text = "<0.001" if row["p"] < 0.001 else f"{row['p']:.3f}"
    text += "" if row["p_test"] == "paired" else " (Welch)"
    return f"{text} **holds**" if row.get("holm") else text


def comparisons_text(rows: list[dict]) -> str:
    """How many comparisons with uniform the table makes and how many survive Holm's correction."""
    made = [r for r in rows if r.get("p") is not None]
    if not made:
        return ""
    distinct = {_repeats(r) or id(r): r for r in made}.values()  # a row that repeats another's comparison: once
    held = [r for r in distinct if r.get("holm")]
    repeats = len(made) - len(distinct)
    return (f"The table makes {len(distinct)} comparison(s) with uniform (one per row with 2+ seeds that vary, except "
            "a row of uniform's own network: the paired t-test where seeds pair, else Welch's"
            + (f"; {repeats} row(s) repeat another row's comparison, the same network trained the same way to the "
               "same accuracies, and count once" if repeats else "")
            + "); with Holm's correction for all of them at a 5% family-wise level, "
            f"{len(held)} hold (marked **holds** in the p column). A bold interval alone is one comparison read "
            "on its own.")


def ablation_rows(rows: list[dict]) -> list[dict]:
    """Each NeuralScale law against its ablations at the same budget, paired by seed: against `pruned` (iteration
    1's pruned widths scaled uniformly: what the law adds over 'prune once, then scale') and against `shape@K`
    where K > 1 (the widths iteration K started from, scaled uniformly: what the law's exponents add over the
    descent's shape).  Holm's correction runs over this table's comparisons."""
    def split(label: str) -> tuple[str, str, str]:  # (method, objective suffix, iteration) of a label
        m = re.match(r"(neuralscale|shape|pruned)(-\w+)?(?:@(\d+))?$", label)
        return (m.group(1), m.group(2) or "", m.group(3) or "") if m else ("", "", "")
    by_key = {(_peer(r), r["label"]): r for r in rows}
    out = []
    for r in rows:
        method, suffix, it = split(r["label"])
        if method != "neuralscale" or r["fallback"]:
            continue
        for against in (f"pruned{suffix}", *([f"shape{suffix}@{it}"] if it and int(it) > 1 else [])):
            a = by_key.get((_peer(r), against))
            if a is None:
                continue
            gap, half, n = paired_gap(r["by_seed"], a["by_seed"])
            if gap is None:
                continue
            seeds = sorted(set(r["by_seed"]) & set(a["by_seed"]))  # the means of the seeds paired: they subtract
            law_mean, against_mean = (statistics.fmean(x["by_seed"][s] for s in seeds) for x in (r, a))  # to the gap
            before = by_key.get((_peer(r), f"neuralscale{suffix}@{int(it) - 1}")) if against.startswith("shape") \
                else None  # shape@K at the base budget is law K-1's network there (iteration K started from it)
            if before is not None and before["widths"] == a["widths"] and not (before["params_range"]
                                                                               or a["params_range"]):
                against = f"{against} ({before['label']}'s network)"
            out.append({"budget": r["budget"], "law": r["label"], "against": against, "law_mean": law_mean,
                        "against_mean": against_mean, "gap": gap, "ci95": half, "n": n,
                        "p": paired_p(r["by_seed"], a["by_seed"])})
    for row, holds in zip(out, holm([x["p"] for x in out])):
        row["holm"] = holds
    return out


def _ablation_table(rows: list[dict]) -> tuple[list[str], list[list[str]]]:
    head = ["budget", "law", "against", "seeds paired", "law acc", "ablation acc", "gap, paired by seed [95% CI]",
            "p (holds: Holm)"]
    body = [[x["budget"], x["law"], x["against"], str(x["n"]), f"{x['law_mean']:.2f}", f"{x['against_mean']:.2f}",
             fmt_gap(x["gap"], x["ci95"]), fmt_p({**x, "p_test": "paired"})] for x in rows]
    return head, body


def _method_title(method: str, descents: list[Path]) -> str:
    """A method's line in the report's Methods section: `pruned` says where its descent's pruning ended."""
    fractions = set()
    for path in descents if method == "pruned" else ():
        try:
            fractions.add(((DescentDir(path).config() or {}).get("descent") or {}).get("prune_fraction"))
        except NeuralscaleError:  # (its configuration damaged: said where the report reads the descent)
            fractions.add(None)
    if len(fractions) == 1 and isinstance(f := fractions.pop(), float) and 0 < f < 1:
        return METHOD_TITLES[method].replace("the descent's prune fraction of the channels, 95% by default",
                                             f"{100 * f:g}% of the channels")
    return METHOD_TITLES[method]


def _mark_fallbacks(rows: list[dict], descents: list[Path]) -> list[str]:
    """Label rows whose NeuralScale law was a fallback (uniform scaling, not a fit) as such; returns the notes."""
    fallbacks = {}
    for path in descents:
        d = DescentDir(path)
        if d.fits_path.exists():
            fallbacks.update({law_label(it.number, d.objective()): it for it in d.iterations() if it.law.fallback})
    for r in rows:
        if r["label"] in fallbacks:  # planned before its law was known to be a fallback
            _show(r, "fallback")
        r["fallback"] = "fallback" in r["marks"] or r["label"].endswith(" (fallback)")  # marked here, or so
    return [it.fallback_message() for label, it in fallbacks.items()  # labelled by the sweep's plan
            if any(r["fallback"] and r["label"] in (label, f"{label} (fallback)") for r in rows)]


def _show(row: dict, mark: str | None = None) -> None:
    """A row's name in the tables and verdicts: its label and its marks, `mark` added to them."""
    if mark is not None:
        row["marks"].append(mark)
    row["shown"] = row["label"] + "".join(f" ({m})" for m in row["marks"])


def _mark_extrapolated(rows: list[dict], descents: list[Path], space: WidthSpace | None,
                       sweep_cfg: dict) -> None:
    """Label rows whose NeuralScale law was solved outside the range it was fitted on (methods.scale's
    `extrapolated`, solved again here for the row's budget, with the sweep's min_width and multiple)
    `(extrapolated)`; so are rows whose runs recorded so (`train`'s, whose descent a report need not know)."""
    for r in rows:
        if r.get("extrapolated"):
            _show(r, "extrapolated")
    rounding = {k: sweep_cfg[k] for k in ("min_width", "multiple")
                if isinstance(sweep_cfg.get(k), int) and not isinstance(sweep_cfg.get(k), bool) and sweep_cfg[k] >= 1}
    if space is None:
        return
    by_label = {}
    for path in descents:
        d = DescentDir(path)
        if d.fits_path.exists():
            by_label.update({law_label(it.number, d.objective()): (path, it.number) for it in d.iterations()})
    for r in rows:
        if r["method"] != "neuralscale" or r["fallback"] or r.get("extrapolated") or r["label"] not in by_label:
            continue
        path, number = by_label[r["label"]]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the sweep said them when it planned the runs
                found = scale(space, "neuralscale", Budget.from_key(r["budget_key"]), source=path,
                              iteration=number, convert=True, **rounding)
        except NeuralscaleError:
            continue
        r["extrapolated"] = found["widths"] == r["widths"] and found["extrapolated"]
        if r["extrapolated"]:
            _show(r, "extrapolated")


def verdicts(rows: list[dict]) -> list[str]:
    """One line per comparison with uniform, for a reader with ten seconds: better, worse or cannot tell (with
    the interval and whether it survives Holm's correction), and what the configuration costs against uniform's."""
    uniform = _uniforms(rows)
    return [_verdict(r, uniform[_peer(r)]) for r in rows  # (the network slimming prunes is no method compared)
            if _peer(r) in uniform and r is not uniform[_peer(r)] and r["label"] != SPARSE_LABEL]


def _same_network(r: dict, u: dict | None) -> bool:
    """A row that trained its uniform's very network as uniform did (from scratch, every seed at uniform's widths:
    `shape@1`, whose iteration started from uniform widths, or a method whose law gives uniform's widths there): its
    gap compares a network with itself, which Holm's correction would count as a comparison."""
    return (u is not None and r is not u and r["label"] != SPARSE_LABEL and r["start"] == u["start"] == "scratch"
            and r["widths"] == u["widths"] and not r.get("params_range") and not u.get("params_range")
            and len(set(r["trained_on"]) | set(u["trained_on"])) == 1)  # (one device and arithmetic: alike)


def _verdict(r: dict, u: dict) -> str:
    if r.get("same_network"):
        return (f"`{r['shown']}` at {r['budget']}: the same network as {u['series']} (its widths, trained from "
                f"scratch as it was): no comparison")
    paired = _paired(r)
    gap, half = (r["paired_gap"], r["paired_ci95"]) if paired else (r["gap_to_uniform"], r["gap_ci95"])
    better = gap > 0
    them = u["series"]  # uniform, or uniform from weights
    if half is None:
        word = "cannot tell (one seed: no interval)" if min(r["n"], u["n"]) < 2 \
            else "cannot tell (the seeds do not vary: no interval)"
    elif r.get("holm"):
        word = f"**{'better' if better else 'worse'}** than {them}"
    elif gap - half > 0 or gap + half < 0:
        word = f"{'better' if better else 'worse'} than {them} on this comparison alone, not after Holm's correction"
    else:
        word = "cannot tell"
    facts = [(f"{gap:+.2f} points" if half is None else fmt_gap(gap, half, bold=False).replace(" [", " points [", 1))
             + (" paired by seed" if paired else " (Welch)")]
    if r.get("p") is not None:
        facts.append(f"p {'<0.001' if r['p'] < 0.001 else format(r['p'], '.3f')}")
    seeds = f"{r['n']} seed(s)" if not paired or r["paired_n"] == r["n"] == u["n"] else \
        f"{r['paired_n']} seed(s) paired, of its {r['n']} and uniform's {u['n']}"
    facts += [seeds, f"{r['params'] / u['params']:.2f}x uniform's parameters",
              f"{r['macs'] / u['macs']:.2f}x its MACs"]
    if r["latency_ms"] is not None and u["latency_ms"] and latency_device([r, u]) is not None \
            and not (r["latency_unstable"] or u["latency_unstable"]):  # an unstable timing gives no ratio
        facts.append(f"{r['latency_ms'] / u['latency_ms']:.2f}x its latency")
    return f"`{r['shown']}` at {r['budget']}: {word} ({'; '.join(facts)})"


def _paper_rows(model: str, dataset: str) -> list[dict]:
    return [r for r in reference_rows("paper_results.csv") if r["model"] == model and r["dataset"] == dataset]


def fmt_gap(gap: float | None, half: float | None, bold: bool = True) -> str:
    """A gap to uniform and its 95% interval, in bold (unless `bold` is False) where the interval excludes zero, as
    the verdicts decide, on the unrounded bounds: a bound that would show as 0.00 gets the decimals it needs."""
    if gap is None:
        return ""
    if half is None:
        return f"{gap:+.2f} (no CI: one seed, or no spread)"
    lo, hi = gap - half, gap + half
    excludes = lo > 0 or hi < 0
    digits = 2
    while excludes and round(min(abs(lo), abs(hi)), digits) == 0 and digits < 8:
        digits += 1
    text = f"{gap:+.{digits}f} [{lo:+.{digits}f}, {hi:+.{digits}f}]"
    return f"**{text}**" if excludes and bold else text


def mean_std(mean: float, std: float, n: int) -> str:
    """`mean ± std`; with one seed there is no spread to show, and the text says so instead of ± 0.00."""
    return f"{mean:.2f} ± {std:.2f}" if n > 1 else f"{mean:.2f} (1 seed)"


def _network(rs: list[dict]) -> dict:
    """A row's network: its cost as the mean of its runs' (a pruning baseline prunes each seed's network to the
    budget its own way, so the seeds' networks can differ), the widths of its lowest seed, and the range of its runs'
    parameters where their widths differ (None where every seed trained the same network)."""
    first = min(rs, key=lambda r: r["seed"])
    params = [r["params"] for r in rs]
    differ = len({tuple(r["widths"]) for r in rs}) > 1
    return {"params": round(statistics.fmean(params)), "macs": round(statistics.fmean(r["macs"] for r in rs)),
            "widths": first["widths"], "widths_seed": first["seed"],
            "params_range": [min(params), max(params)] if differ else None}


def _widths_cell(r: dict) -> str:
    """A row's widths; where its seeds trained different networks, whose they are and how far the others were."""
    text = ",".join(map(str, r["widths"]))
    if r.get("params_range"):
        lo, hi = r["params_range"]
        text += f" (seed {r['widths_seed']}'s; the seeds' networks differ: {lo:,} to {hi:,} params)"
    return text


def _table(rows: list[dict]) -> tuple[list[str], list[list[str]]]:
    """The results table; the latency column only where every row measured it on one device."""
    latency = latency_device(rows) is not None
    sel = ACCURACY_SHORT[rows[0]["accuracy"]] if rows else ACCURACY_SHORT["best-val"]
    head = ["method", "budget", "seeds", "params", "MACs (M)", *(["latency (ms)"] if latency else []),
            f"test acc ({sel})", "final-epoch test acc", f"gap to uniform ({sel}) [95% CI]",
            "gap to uniform (final epoch) [95% CI]", f"gap, paired by seed ({sel}) [95% CI]", "p (holds: Holm)"]
    body = [[r["shown"], r["budget"], str(r["n"]), f"{r['params']:,}" + (" (mean)" if r.get("params_range") else ""),
             f"{r['macs'] / 1e6:.2f}" + (" (mean)" if r.get("params_range") else ""),
             *([_fmt_latency(r)] if latency else []),
             mean_std(r["mean"], r["std"], r["n"]), mean_std(r["final_mean"], r["final_std"], r["n"]),
             *(fmt_gap(gap, half, bold=_compared(r)) for gap, half in ((r["gap_to_uniform"], r["gap_ci95"]),
                                                                       (r["final_gap"], r["final_gap_ci95"]),
                                                                       (r["paired_gap"], r["paired_ci95"]))),
             fmt_p(r)]
            for r in rows]
    return head, body


def _compared(r: dict) -> bool:
    """Whether a row's gaps to uniform are a comparison the report makes (a bold interval reads as one): not the
    network slimming prunes, nor uniform's own network trained again."""
    return r["label"] != SPARSE_LABEL and not r.get("same_network")


def _fmt_latency(r: dict) -> str:
    """'1.23 (IQR 0.04)', flagged where a run's measurement was unstable."""
    if r["latency_ms"] is None:
        return ""
    text = f"{r['latency_ms']:.2f}" + ("" if r["latency_iqr_ms"] is None else f" (IQR {r['latency_iqr_ms']:.2f})")
    return text + (" **unstable**" if r["latency_unstable"] else "")


def _latency_note(rows: list[dict], drawn: bool = True) -> str:
    """Where the table's latencies come from, or why they are left out (`drawn`: with the report's figures)."""
    device = latency_device(rows)
    if device is not None:
        flagged = [r["shown"] + " at " + r["budget"] for r in rows if r["latency_unstable"]]
        return (f"Latency: batch 1, median over the runs of each run's median on {device}, taken after training; "
                "in brackets the interquartile range of the measurement (the median of the runs')"
                + ("; the figure's horizontal bars span it." if drawn else ".")
                + (f" **Unstable** (an interquartile range over {100 * UNSTABLE:.0f}% of the median, as when "
                   "another process is busy; do not read the median as the configuration's latency): "
                   + "; ".join(flagged) + "." if flagged else ""))
    devices = sorted({d for r in rows for d in r["latency_devices"]})
    if len(devices) < 2:
        return ""
    return ("Latency is left out: the runs measured it on different devices (" + "; ".join(devices) + "), whose "
            "times cannot be compared. Measure the configurations on one machine: `neuralscale info --latency`.")


def _training_device(record: dict) -> str | None:
    """The device a run trained on, as its record names it: the GPU's name, or `cpu`; None where it does not."""
    env = record.get("environment") or {}
    device = env.get("gpu") or env.get("device")
    return str(device) if device else None


def arithmetic(record: dict) -> str | None:
    """What a run computed in: `bf16 autocast` (asked for, or by default on CUDA), else its dtype (float32, as
    the original); None where the record does not say where it ran and the default decided."""
    config = record.get("config") or {}
    dtype, amp = str(config.get("dtype") or "float32"), config.get("amp")
    device = str((record.get("environment") or {}).get("device") or "")
    if amp is None and not device:
        return None
    return "bf16 autocast" if autocasts(amp, device.startswith("cuda"), dtype) else dtype


def device_note(records: list[dict]) -> str:
    """Where the finished runs trained on more than one kind of device, or in more than one arithmetic (bf16
    autocast, float32), which trained where and how: their accuracies mix devices and arithmetics, which round
    differently (and recent NVIDIA GPUs run float32 convolutions in TF32 by default)."""
    where: dict[tuple[str, str | None], list[dict]] = defaultdict(list)
    for r in records:
        if r.get("status") == "finished" and (device := _training_device(r)) is not None:
            where[(device, arithmetic(r))].append(r)
    if len(where) < 2:
        return ""
    parts = [f"{device}{f' ({how})' if how else ''}: {len(rs)} run(s) ({', '.join(sorted({r['label'] for r in rs}))})"
             for (device, how), rs in sorted(where.items(), key=lambda kv: (kv[0][0], str(kv[0][1])))]
    several = "on several devices" if len({d for d, _ in where}) > 1 else "in several arithmetics"
    return (f"**The runs trained {several}**: " + "; ".join(parts) + ". A device or an arithmetic can move a "
            "run's accuracy by as much as a gap (kernels round differently; bf16 keeps 8 bits of mantissa; recent "
            "NVIDIA GPUs run float32 convolutions in TF32 by default): read gaps between rows trained alike, or "
            "train the others again so, in a store of their own (a run's id does not include its device; "
            "docs/GUIDE.md, Honest numbers).")


# as a sweep's recipe: where a run ran and in what arithmetic (noted by device_note, as devices are), not how it
# trained: default runs on CUDA (bf16) and on the CPU (float32) compare, and so do a CPU's `amp` None and False
RECIPE_AGNOSTIC = ("seed", "device", "eval_batch_size", "amp")


def _recipe(record: dict) -> dict:
    """How a run trained, for comparing runs: its training settings but where it ran, with defaults for the
    settings a later release added, and the data it trained on."""
    try:
        config = TrainConfig.from_dict(record.get("config") or {}).to_dict()
    except (NeuralscaleError, TypeError, ValueError):
        config = dict(record.get("config") or {})
    train = {k: v for k, v in config.items() if k not in RECIPE_AGNOSTIC}
    spec = record.get("spec") or {}
    data = {k: v for k, v in (spec.get("data") or {}).items() if k != "data_dir"}  # where it lives: not which
    return {**train, "data": data, "convcut": record_model(record)[1]}  # (as the network's name implies it)


def _differences(a: dict, b: dict) -> str:
    keys = [k for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
    return ", ".join(f"{k} {a.get(k)!r} against {b.get(k)!r}" for k in keys[:4]) + (" ..." if len(keys) > 4 else "")


def check_comparable(store: Path, records: list[dict]) -> None:
    """Refuse a folder whose runs do not compare: runs of several models or datasets, runs trained from scratch
    with different recipes (or fine-tuned with different ones), or one configuration twice with one seed (a
    folder of `train --out` directories gathered by hand can hold any of them; a sweep's store holds none)."""
    models = sorted({_named(r) for r in records})
    if len(models) > 1:
        names = "; ".join(f"{m} on {d}" for m, d in models[:3]) + (" ..." if len(models) > 3 else "")
        raise NeuralscaleError(f"{store} holds runs of {len(models)} models or datasets ({names}); a report "
                               "compares the runs of one model on one dataset: give a folder of one of them")
    builds = sorted({a for r in records if isinstance(a := (r.get("spec") or {}).get("architecture"), str)})
    if len(builds) > 1:  # a file's network by its name: two files of that name, or one edited between its runs
        raise NeuralscaleError(f"{store} holds runs of {len(builds)} networks named {models[0][0]} (architectures "
                               f"{', '.join(builds[:3])}{' ...' if len(builds) > 3 else ''}): their code or modules "
                               "differ; a report compares the runs of one network: give a folder of one of them")
    groups: dict[tuple, dict[str, tuple[dict, dict]]] = defaultdict(dict)
    for r in records:  # from scratch, fine-tuned, from weights, and slimming's sparsity training (each its own
        group = (_start(r), r.get("label") == SPARSE_LABEL)  # recipe, said in the report)
        rec = _recipe(r)
        groups[group].setdefault(json.dumps(rec, sort_keys=True, default=str), (rec, r))
    for (start, _), recipes in groups.items():
        if len(recipes) > 1:
            (a, ra), (b, rb) = list(recipes.values())[:2]
            what = {"pruned": "fine-tuned", "weights": "started from weights and trained"}.get(start, "trained")
            raise NeuralscaleError(f"{store} holds runs {what} with {len(recipes)} different recipes (runs "
                                   f"{ra['id']} and {rb['id']}: {_differences(a, b)}); their accuracies do not "
                                   "compare: give a folder of runs with one recipe")
    _check_same_data(store, records)
    seen: dict[tuple, str] = {}
    for r in records:
        if r.get("status") != "finished":
            continue
        key = (r.get("label"), budget_key(r), r.get("seed"), _start(r))
        if key in seen:
            warm = " started from weights" * (key[3] == "weights")
            raise NeuralscaleError(f"{store} holds {key[0]}{warm} at {Budget.from_key(key[1]).text} with seed "
                                   f"{r.get('seed')} twice (runs {seen[key]} and {r['id']}); remove one, or it would "
                                   "be counted as two seeds")
        seen[key] = r["id"]


def _check_same_data(store: Path, records: list[dict]) -> None:
    """Finished runs of one dataset and data settings read the same data (`store.data_counts`): an image folder
    added to, or an image in it replaced, between a store's runs gave seeds on other data, pooled as one row."""
    seen: dict[str, tuple[dict, str]] = {}
    for r in records:
        if r.get("status") != "finished":
            continue
        settings = _recipe(r)["data"]
        counts = data_counts(settings, r.get("data"))
        if counts is None:
            continue
        same = json.dumps(settings, sort_keys=True, default=str)  # (subsets: other counts by design)
        if same in seen and not same_data(seen[same][0], counts):
            (then, first) = seen[same]
            raise NeuralscaleError(f"{store} holds runs of one dataset trained on different data (runs {first} and "
                                   f"{r['id']}: {said_counts(then)} against {said_counts(counts)}): its files "
                                   "changed between them, and their accuracies do not compare; give a folder of "
                                   "runs on one version of the data (train the others again in a store of their "
                                   "own)")
        if "digest" in counts or same not in seen:  # (one with a digest: compared with the rest that have one)
            seen[same] = (counts, r["id"])


@dataclass
class _Store:
    """What a report is made of: the store's records, their summary rows, and where the descent is."""

    path: Path
    records: list[dict]
    rows: list[dict]
    accuracy: str
    model: str
    dataset: str
    space: WidthSpace | None
    descent: Path | None
    fallbacks: list[str]
    descents: list[Path] = field(default_factory=list)  # every descent the runs came from (one per objective)
    left_out: list[str] = field(default_factory=list)  # a note for each recorded descent not the runs' (_descents)
    not_started: int = 0  # runs sweep.json planned that have no record yet (a sweep stopped before them)
    no_space: str = ""  # why the runs' network could not be made here (space None): said where figures need it


def _read(store: Path, accuracy: str, descent: str | Path | None, model: str | None = None) -> _Store:
    if not store.is_dir():
        raise NeuralscaleError(f"{store} is not a folder" if store.exists() else f"{store} does not exist")
    records = load_records(store)
    if not records:
        if (store / RunDir.RECORD).is_file():
            raise NeuralscaleError(f"{store} is one run's directory; report the folder that holds run directories "
                                   f"(such as {store.parent})")
        raise NeuralscaleError(f"{store} holds no run records")
    check_comparable(store, records)
    rows = summarize_records(records, accuracy)
    if not rows:
        if unselected := unmeasured(records, accuracy):
            raise NeuralscaleError(f"{store} holds {len(unselected)} finished run(s), none with a "
                                   f"{ACCURACY[accuracy][1]} (trained without validation images: none asked for, "
                                   "or a split too small to hold any): report them with --accuracy final")
        raise NeuralscaleError(f"{store} holds no finished runs yet ({len(records)} record(s): "
                               + ", ".join(sorted({r['status'] for r in records})) + ")")
    models = sorted({_named(r) for r in records})
    plan = read_plan(RunStore(store))
    sweep_cfg = plan.get("config") if isinstance(plan.get("config"), dict) else {}
    descent_dir, descents, left_out = _descents(store, plan, descent)
    if model is not None and model_identity(model_spelling(model)[0]) != models[0][0]:
        raise NeuralscaleError(f"{model!r} is not the network of {store}'s runs ({models[0][0]})")
    space, no_space = _space(records, model, _model_from_store(store, sweep_cfg))
    _check_costs(store, records, space)
    fallbacks = _mark_fallbacks(rows, descents)
    _mark_extrapolated(rows, descents, space, sweep_cfg)
    have = {r["id"] for r in records}
    planned = plan.get("runs") if isinstance(plan.get("runs"), list) else []
    return _Store(store, records, rows, accuracy, models[0][0], models[0][1], space, descent_dir,
                  fallbacks, descents, left_out, sum(i not in have for i in planned), no_space)


def _check_costs(store: Path, records: list[dict], space: WidthSpace | None) -> None:
    """Each finished run's parameters and MACs are its widths' (where the network can be made here): a count edited
    in a record is refused, not averaged into its row. Where no run's counts are what the network here counts (a
    library that builds it otherwise than where the runs trained), the records' are shown, and that said."""
    if space is None:
        return
    wrong, right = [], 0
    for r in (r for r in records if r["status"] == "finished"):
        try:
            counts = {"params": space.params(r["widths"]), "macs": space.macs(r["widths"])}
        except NeuralscaleError as e:
            raise NeuralscaleError(f"the record of run {r['id']} in {store}: its widths are not {space.name}'s "
                                   f"({first_line(e, None, '').rstrip('.')}); restore it") from None
        off = [(k, r[k], n) for k, n in counts.items() if r[k] != n]
        wrong += [(r["id"], *off[0])] if off else []
        right += not off
    if not wrong:
        return
    run, key, said, n = wrong[0]
    if right:
        raise NeuralscaleError(f"the record of run {run} in {store} says {key} {said:,}, where its widths have "
                               f"{n:,} (as every other run's count is its widths'): restore it")
    warn(f"no run's parameter or MAC count in {store} is what {space.name} counts here for its widths (run "
         f"{run}: {key} {said:,}, here {n:,}): the network is built otherwise here than where they trained "
         "(another version of a library?); the records' counts are shown")


def _space(records: list[dict], model: str | None, beside: str | None) -> tuple[WidthSpace | None, str]:
    """The runs' network (one model, checked), and '': made from a file's network as `model` names it now (the
    command's --model: refused in one line where it cannot be made), or `beside` (where sweep.json says the file
    lies beside the store: a store moved with its file, whose runs name it where it was), else from the latest
    record that names it where it can be made here; else None and why not (an image folder or a model file that
    is not here: no layer names, no descent figures)."""
    latest: dict = {}  # one record per spelling of the model, the latest first
    for r in sorted(records, key=lambda r: r.get("started") if isinstance(r.get("started"), (int, float)) else 0,
                    reverse=True):
        latest.setdefault(r.get("model"), r)
    newest = next(iter(latest.values()))
    if model is not None and located(model_name(model)):
        return record_space(newest, named=model), ""
    why = ""
    for r, name in [*([(newest, beside)] if beside else []), *((r, None) for r in latest.values())]:
        try:
            return record_space(r, named=name), ""
        except (NeuralscaleError, OSError, ValueError) as e:
            why = why or first_line(e, None, type(e).__name__)
    return None, why


def _model_from_store(store: Path, sweep_cfg: dict) -> str | None:
    """The model file's network where sweep.json says it lies relative to the store (a store moved with its file
    is found there), None where it says nothing (a named model's store, or one written before)."""
    beside = sweep_cfg.get("model_from_store")
    return model_beside(beside, store) if isinstance(beside, str) else None


def _named(record: dict) -> tuple[str, str]:
    """A run's model and dataset, one spelling of each (a store written before sweeps spelled them one way keeps
    its own: `resnet18` with convcut is `resnet18-convcut`, whose paper curves there are none of; a file's network
    by the file's name, wherever the store and its file were when it ran)."""
    model, dataset = record.get("model"), record.get("dataset")
    if not (isinstance(model, str) and isinstance(dataset, str)):  # (a damaged record: named as it is)
        return str(model), str(dataset)
    return model_identity(record_model(record)[0]), dataset_name(dataset)


def _descents(store: Path, plan: dict, descent: str | Path | None) -> tuple[Path | None, list[Path], list[str]]:
    """(the descent whose figures the report draws, every descent whose laws and table it gives, a note for each
    descent left out): `descent` (--descent) where given, refused unless its laws are the ones the store's runs were
    planned with; else the descents sweep.json records, those holding other laws left out (not_the_stores)."""
    sweep_cfg = plan.get("config") if isinstance(plan.get("config"), dict) else {}
    laws = plan["recipe"].get("laws") if isinstance(plan.get("recipe"), dict) else None
    recorded = sweep_cfg.get("descent")
    beside = sweep_cfg.get("descent_from_store")  # relative to the store: right wherever the store was copied
    if isinstance(beside, str) and beside and (store / beside).is_dir():
        recorded = str(store / beside)
    if descent:  # asked for by name: refused in one line, not a sentence in the report instead
        if not DescentDir(descent).exists():
            raise NeuralscaleError(f"--descent {descent} " + ("is not a descent directory (no config.json and "
                                                              "fits.json)" if Path(descent).exists() else
                                                              "does not exist"))
        why = not_the_stores(Path(descent), laws)
        if why:
            raise NeuralscaleError(f"--descent {descent} is not the descent {store}'s runs were planned from "
                                   f"({_recorded_descents(store, sweep_cfg)}): {why}; give that one, or leave "
                                   "--descent out")
        return Path(descent), [Path(descent)], []
    descent_dir = Path(recorded) if isinstance(recorded, str) and recorded else None
    by_objective = sweep_cfg.get("descents_from_store")
    descents = [store / p for p in (by_objective.values() if isinstance(by_objective, dict) else ())
                if isinstance(p, str) and (store / p).is_dir()]
    if not descents:
        descents = [descent_dir] if descent_dir is not None else []
    elif isinstance(by_objective.get("params"), str) and (store / by_objective["params"]).is_dir():
        descent_dir = store / by_objective["params"]  # the figures are the paper's descent's
    notes = []
    for path in dict.fromkeys([*descents, *([descent_dir] if descent_dir is not None else [])]):
        why = not_the_stores(path, laws) if DescentDir(path).fits_path.exists() else ""
        if why:  # e.g. another descent since written into the recorded folder, or found at a cwd-relative path
            notes.append(f"The descent directory {os.path.normpath(path)} is not the one the runs were planned "
                         f"from ({why}); its figures, laws and table are left out.")
            warn(notes[-1])
            descents = [d for d in descents if d != path]
            descent_dir = None if descent_dir == path else descent_dir
    return descent_dir, descents, notes


def not_the_stores(path: Path, laws: dict | None) -> str:
    """'' where the descent at `path` holds the laws the store's recipe records (`laws`: sweep.law_fingerprints of
    each descent a sweep into it was given, kept over its sweeps): the same descent, wherever it was copied,
    iterations added since included; else how it differs. A store that records no laws (planned without --from:
    its runs use no law; a folder of run directories without sweep.json) gives nothing to check against: ''."""
    if not isinstance(laws, dict) or not laws:
        return ""
    d = DescentDir(path)
    prefix = law_prefix(d.objective())
    theirs = {k: v for k, v in laws.items() if (k.startswith(prefix) if prefix else "@" not in k)}
    if not theirs:
        return f"its objective is {d.objective()}, and the runs were planned from no descent of that objective"
    mine = law_fingerprints(d)
    differ = sorted(k for k in theirs.keys() & mine.keys() if theirs[k] != mine[k])
    if differ:
        keys = [k[len(prefix):] for k in differ]
        laws_differ = [k for k in keys if k != "pruned"]
        parts = ([f"its laws of iteration(s) {', '.join(laws_differ)}"] if laws_differ else []) \
            + (["where its iteration 1's pruning ended"] if "pruned" in keys else [])
        return f"{' and '.join(parts)} differ from what sweep.json records"
    return "" if theirs.keys() & mine.keys() else "it holds none of the laws sweep.json records"


def _recorded_descents(store: Path, sweep_cfg: dict) -> str:
    """The descent(s) sweep.json records the store's runs were planned from, in words."""
    by_objective = sweep_cfg.get("descents_from_store")
    if isinstance(by_objective, dict) and by_objective:
        named = {o: os.path.normpath(store / p) for o, p in by_objective.items() if isinstance(p, str)}
        if len(named) == 1:
            return next(iter(named.values()))
        return ", ".join(f"{p} ({o})" for o, p in named.items())
    for key, base in (("descent_from_store", store), ("descent", Path("."))):
        if isinstance(sweep_cfg.get(key), str) and sweep_cfg[key]:
            return os.path.normpath(base / sweep_cfg[key])
    return "sweep.json names no descent"


def _figures(st: _Store, dest: Path, formats=("png",), bands: str = "ci") -> tuple[list[tuple[str, Path]], str]:
    """Every figure of the report, drawn once; and a note when the descent's are missing."""
    labels = sorted({r["series"] for r in st.rows}, key=lambda s: (s != "uniform", s))
    colors = method_colors(labels)
    paper = _paper_rows(st.model, st.dataset)
    ylabel = ACCURACY_AXIS[st.accuracy]
    out = []
    compared = [r for r in st.rows if r["label"] != SPARSE_LABEL]  # (slimming's network: no method, no line)
    for axis in ("params", "macs", "latency") if latency_device(st.rows) is not None else ("params", "macs"):
        p = accuracy_figure(compared, axis, dest, f"{display_name(st.model)} on {display_name(st.dataset)}: mean over "
                            f"seeds{BAND_TEXT[bands]}", ylabel, paper, colors, bands=bands, formats=formats)
        if p:
            out.append((f"accuracy against {axis}", p))
    p = widths_figure(st.rows, list(st.space.layer_names) if st.space else None, dest, colors, formats=formats,
                      subject=f"{display_name(st.model)} on {display_name(st.dataset)}")
    if p:
        out.append(("per-layer widths", p))
    if st.descent is not None and st.space is None:  # (said: a report from another folder than a file model's)
        return out, (f"The runs' network cannot be made here ({st.no_space.rstrip('.')}); the descent's figures "
                     "are left out.")
    if st.descent is None:
        return out, ""
    if not DescentDir(st.descent).fits_path.exists():
        return out, f"The descent directory {st.descent} is not available; its figures are left out."
    try:
        drawn = descent_figures(st.descent, st.space, dest=dest, formats=formats)
    except NeuralscaleError as e:  # a latency descent's table lacks a width the figures need (never timed)
        return out, f"The descent's figures are left out: {first_line(e, None, '').rstrip('.')}."
    names = ("descent: widths during pruning and fitted laws", "descent: widths the law gives per iteration")
    return out + list(zip(names, drawn)), ("" if len(drawn) == 2 else "The descent's heatmap is left out: its "
                                           "latency table holds no estimate at the widths it would show.")


def _selection_text(records: list[dict]) -> str:
    """Where the best-validation epoch fell: if always the last, selecting on validation chose nothing."""
    picks = [(r["summary"]["best_val_epoch"], len(r.get("history") or []) or r["config"].get("epochs"))
             for r in records if r["status"] == "finished" and isinstance(r.get("summary", {}).get("best_val_epoch"), int)]
    if not picks:
        return ""
    epochs = sorted(e for e, _ in picks)
    last = sum(e == n for e, n in picks)
    sizes = sorted({v for r in records if r["status"] == "finished" and isinstance(r.get("data"), dict)
                    for v in [r["data"].get("val")] if isinstance(v, int) and not isinstance(v, bool)})
    held = (f" on a validation split of {sizes[0]:,} images" if len(sizes) == 1 else
            f" on validation splits of {sizes[0]:,}-{sizes[-1]:,} images" if sizes else "")
    return (f"Selection{held}: the best-validation epoch{_evaluated(records)} was the last epoch in {last} of "
            f"{len(picks)} runs; over all runs it fell at epochs {epochs[0]}-{epochs[-1]} (median "
            f"{statistics.median(epochs):g}).")


def _evaluated(records: list[dict]) -> str:
    """Which epochs the runs were evaluated at, where not every one (`eval_every`: N, or 0 for the last only): the
    epochs selection chose among."""
    runs = [r for r in records if r["status"] == "finished"]
    every = Counter(n if isinstance(n := (r.get("config") or {}).get("eval_every", 1), int) else 1 for r in runs)
    if set(every) <= {1}:
        return ""
    said = {0: "the last only", 1: "every epoch"}
    parts = [said.get(n, f"every {n} epochs and the last") + (f" in {c} of {len(runs)} runs" * (len(every) > 1))
             for n, c in sorted(every.items())]
    return f" (among the epochs evaluated: {'; '.join(parts)})"


def _left_out_text(st: "_Store") -> str:
    """The finished runs the table leaves out for want of its accuracy (trained without a validation split)."""
    left = unmeasured(st.records, st.accuracy)
    if not left:
        return ""
    return (f" **Left out**: {len(left)} finished run(s) without a {ACCURACY[st.accuracy][1]} "
            f"({', '.join(sorted({r['label'] for r in left}))}: trained without validation images); "
            "`--accuracy final` reports them.")


FEW_ROWS = 20  # a law fitted on fewer trajectory rows than this is marked as such in the report


def _law_notes(st: "_Store") -> list[str]:
    """One line per NeuralScale law the rows use: what it was fitted against, its fit quality, marked where it
    rests on few rows."""
    used = {m.group(0) for r in st.rows if (m := re.match(r"neuralscale(-\w+)?@\d+", r["label"]))}
    out = []
    for path in st.descents:
        d = DescentDir(path)
        if not d.fits_path.exists():
            continue
        for it in d.iterations():
            label = law_label(it.number, d.objective())
            if label in used:
                few = " **(few rows: a law fitted on so few points is a weak guide)**" \
                    if not it.law.fallback and it.law.rows < FEW_ROWS else ""
                against = "" if it.law.fallback else f"fitted against {UNITS[it.law.objective]}, "
                out.append(f"`{label}`: {against}{it.law.quality()}{few}")
    return out


DESCENT_HEAD = ["iteration", "started from", "params", "MACs (M)", "rows", "pruning steps", "R^2 (worst layer)",
                "out-of-sample error (mean, worst layer)", "fitted on", "pruning stopped", "next start moved"]


def descent_table(path: Path, space: WidthSpace | None) -> tuple[list[str], list[list[str]]]:
    """Every finished iteration of a descent, one row each: where it started, how many trajectory rows its law
    was fitted on, how well it fits them (R^2) and predicts the rows it was not fitted on, over which range, and
    how far its law moves the next iteration's start (the convergence rule's measure).
    `space`: the model's, to count the starts' parameters and MACs (left blank where it is another model's)."""
    d = DescentDir(path)
    its = d.iterations()
    same = [space is not None and (model_identity(space.name), space.info.name) == (model_identity(it.law.model),
                                                                                      it.law.dataset)
            and len(it.start_widths) == len(space) for it in its]
    moves = [""] * len(its)
    if its and all(same):
        try:
            moves = _moves(d, its, space)
        except (NeuralscaleError, OSError) as e:  # a latency descent's table unreadable here: the cells left blank
            log.warning("report: the descent table's last column is left blank (%s)", first_line(e))
    out = []
    for it, ours, moved in zip(its, same, moves):
        law = it.law
        cost = (f"{space.params(it.start_widths):,}", f"{space.macs(it.start_widths) / 1e6:.2f}") if ours else ("", "")
        out.append([str(it.number), ",".join(map(str, it.start_widths)), *cost, str(law.rows), str(it.pruning_steps),
                    *_fit_cells(law), it.stop_reason, moved])
    return DESCENT_HEAD, out


def _moves(d: DescentDir, its: list, space: WidthSpace) -> list[str]:
    """For each iteration: the largest relative change of a layer's width at the descent's base budget from the
    configuration before its law (iteration 1: its start) to its law's (the next iteration's start, before the
    original's add-10 rule), and that layer: what a descent's convergence rule reads from iteration 2 on. Blank
    where a law cannot be solved there."""
    base = space.rebased(its[0].start_widths)  # iteration 1 starts from the descent's base widths
    objective = d.objective_over(base)
    cells, before = [], list(its[0].start_widths)
    for it in its:
        try:
            after = at_base(it.law, base, objective)
        except NeuralscaleError:
            after = None
        if before is None or after is None:
            cells.append("")
        else:
            change, layer = largest_move(before, after)
            cells.append(f"{change:.1%} ({base.layer_names[layer]})")
        before = after
    return cells


def _fit_cells(law) -> list[str]:
    """A law's worst R^2, its out-of-sample error (mean, worst layer) and the range its rows cover."""
    if law.fallback:
        return ["not a fit", "", ""]

    r2, held = law.worst_r2(), law.out_of_sample()
    r2_cell = f"{r2[0]:.3f} ({r2[1]})" if r2 else ""
    error = f"{held[0]:.1%}, {held[1]:.1%} ({held[2]}); last {law.holdout_rows} rows" if held else "none"
    fitted = amount_range(*law.tau_range, law.objective) if len(law.tau_range) == 2 else ""
    return [r2_cell, error, fitted]


def _descent_blocks(st: "_Store") -> list[tuple]:
    blocks = []
    for path in st.descents:
        if not DescentDir(path).fits_path.exists():
            continue
        objective = DescentDir(path).objective()
        head, rows = descent_table(path, st.space)
        blocks += [("h2", "Descent" + ("" if len(st.descents) == 1 else f" ({objective})")),
                   ("p", f"Each iteration of the descent the laws come from ({len(rows)} finished): the widths it "
                         "started from, the trajectory rows its law was fitted on, the R^2 of its worst layer, the "
                         "error of each layer's law refitted without the last rows when asked for them (none: too "
                         "few rows to hold any back, or a law fitted before neuralscale recorded it), and the range "
                         f"of network sizes ({UNITS[objective]}) the rows cover; last, how far its law moves the "
                         "next iteration's start from its own (the largest change of a layer's width at the "
                         "descent's base budget: what the convergence rule, from iteration 2 on, asks to stay "
                         "under its tolerance)."),
                   ("table", head, rows)]
    return blocks


def _recipe_text(records: list[dict]) -> str:
    """How the runs trained: the recipe of the runs trained from scratch, and the pruning baselines' fine-tuning."""
    finished = [r for r in records if r["status"] == "finished"]
    scratch, tuned, warm = (next((r.get("config", {}) for r in finished if _start(r) == start), None)
                            for start in ("scratch", "pruned", "weights"))
    text, base = "", scratch if scratch is not None else warm  # (runs from weights only: the recipe is theirs)
    if base is not None:
        how = sorted({a for r in finished if (a := arithmetic(r)) is not None})
        text = (f"Recipe: {base.get('epochs')} epochs, batch {base.get('batch_size')}, lr {base.get('lr')} "
                f"({base.get('schedule')}), momentum {base.get('momentum')}, weight decay "
                f"{base.get('weight_decay')}, augmentation {'on' if base.get('augment') else 'off'}"
                f"{', in ' + ' and '.join(how) if how else ''}.")
    if tuned is not None:
        text += (f" The pruning baselines: pruned from a trained run, then fine-tuned {tuned.get('epochs')} epochs "
                 f"at lr {tuned.get('lr')} ({tuned.get('schedule')}).")
    if warm is not None:
        text += (f" The rows marked `({WARM})`: started from another run's trained weights (`train --init-from`: "
                 f"its channels with the largest L1 norms), then trained {warm.get('epochs')} epochs at lr "
                 f"{warm.get('lr')} ({warm.get('schedule')}), each compared with uniform started so.")
    return text.strip()


def _verdict_blocks(rows: list[dict]) -> list[tuple]:
    lines = verdicts(rows)
    if not lines:
        return []
    original = [("p", "**ORIGINAL PROTOCOL**: by each run's best test epoch, which selects on the test set; for "
                      "comparison with the paper's numbers only.")] if rows[0]["accuracy"] == "original" else []
    return [("h2", "Verdicts"), *original, ("list", lines),
            ("p", "Each configuration against uniform scaling at the same budget, by the accuracy below: better or "
                  "worse where the 95% interval excludes zero and the gap survives Holm's correction over the "
                  "table's comparisons; otherwise cannot tell. What each costs is relative to uniform's.")]


def _ablation_blocks(rows: list[dict]) -> list[tuple]:
    ablations = ablation_rows(rows)
    if not ablations:
        return []
    return [("h2", "The law against its ablations"),
            ("p", "Each NeuralScale law against `pruned` (iteration 1's widths where its pruning ended, scaled "
                  "uniformly: what the law adds over pruning once and scaling) and `shape@K` (the widths "
                  "iteration K started from, scaled uniformly: what the law's exponents add over the shape the "
                  "descent found), at the same budget, paired by seed; in bold where the interval excludes "
                  f"zero. Holm's correction runs over this table's {len(ablations)} comparison(s)."),
            ("table", *_ablation_table(ablations))]


def _mark_notes(st: "_Store") -> list[str]:
    """What the marks after a row's label mean, for the marks the table has."""
    notes = []
    if any(r.get("extrapolated") for r in st.rows):
        notes.append(f"A row marked `(extrapolated)` is a law solved beyond {EXTRAPOLATION:g}x outside the range of "
                     "network sizes its trajectory rows covered (a latency law's: a layer more than that outside the "
                     "widths the law gives it over them): the law is read where nothing was fitted (the Laws section "
                     "gives each law's range).")
    if any(r["pruned_nothing"] for r in st.rows):
        tuned = next((r.get("config", {}).get("epochs") for r in st.records if r.get("pruning")), None)
        notes.append("A row marked `(pruned nothing)` is a pruning baseline whose budget the trained network it "
                     "started from already met: it removed no channel, so its gap to uniform is what its "
                     f"{tuned} more epochs of fine-tuning add, not what pruning does.")
    if st.fallbacks:
        notes.append("**Fallback laws:** " + "; ".join(st.fallbacks) + ". A row marked `(fallback)` is uniform "
                     "scaling of one configuration, not a fitted law.")
    return notes


def _little_learned(st: "_Store") -> list[str]:
    """A note on the rows whose networks learned little (`train.little_learned_at`: their mean accuracy at most twice
    chance, or a quarter of the way to 100%): their gaps compare networks that did not learn, whatever the
    intervals say (a walkthrough: every run at 8.6% on ten classes read as an ordinary 'cannot tell')."""
    classes = {(r.get("input") or {}).get("num_classes") for r in st.records if r.get("status") == "finished"}
    classes = {n for n in classes if isinstance(n, int) and not isinstance(n, bool)}  # (older records may not say)
    if len(classes) != 1 or next(iter(classes)) < 2:
        return []
    n = classes.pop()
    low = [r for r in st.rows if r["mean"] <= little_learned_at(n)]
    if not low:
        return []
    said = ", ".join(f"`{r['shown']}` at {r['budget']} ({r['mean']:.1f}%)" for r in low[:6])
    more = f" and {len(low) - 6} more" if len(low) > 6 else ""
    return [f"**{len(low)} row(s) learned little:** {said}{more} scored at most {little_learned_at(n):.3g}% "
            f"({n} classes: chance is {100 / n:.3g}%). Their networks did not learn on this recipe, and comparisons "
            "with or among them say little: train longer (--epochs; the pruning baselines' --finetune-epochs), on "
            "more images, or with another learning rate."]


def _document(st: _Store, figures: list[tuple[str, Path]], note: str) -> list[tuple]:
    """The report as blocks: ("h1" | "h2" | "p", text), ("table", head, rows), ("list", items), ("figure", caption, path)."""
    status = [r["status"] for r in st.records]
    doc: list[tuple] = [
        ("h1", f"neuralscale report: {display_name(st.model)} on {display_name(st.dataset)}"),
        *_verdict_blocks(st.rows),
        *(("p", text) for text in _little_learned(st)),  # (beside the verdicts it qualifies)
        ("p", f"Built {time.strftime('%Y-%m-%d %H:%M:%S')} from {len(st.records)} run record(s) in `{st.path}`: "
              f"{status.count('finished')} finished, {status.count('failed')} failed, "
              f"{status.count('running')} unfinished"
              + (f"; {st.not_started} more planned in sweep.json not started" if st.not_started else "") + "."),
        ("p", f"Accuracy: **{ACCURACY[st.accuracy][1]}**, mean ± std over seeds. {SELECTION_TEXT[st.accuracy]} The "
              "gap to uniform is the difference of means at the same budget, with its Welch 95% confidence "
              "interval, and the mean of the differences between runs of the same seed (which share their data "
              "order and split), with its paired t interval; in bold where the interval excludes zero.")]
    if _paper_rows(st.model, st.dataset) and figures:
        doc.append(("p", "Dashed lines: the paper's published curves for this model and dataset (best test epoch "
                         f"over {protocol(st.dataset).epochs} epochs, the original protocol); a reduced schedule will "
                         "sit below them."))
    doc.append(("table", *_table(st.rows)))
    if comparisons_text(st.rows):
        doc.append(("p", comparisons_text(st.rows)))
    doc += _ablation_blocks(st.rows)
    latency = _latency_note(st.rows, drawn=bool(figures))
    selection = (_selection_text(st.records) if st.accuracy == "best-val" else "") + _left_out_text(st)
    devices = device_note(st.records)
    doc += [("p", text) for text in (latency, devices, _recipe_text(st.records), selection) if text]
    doc += [("p", text) for text in _mark_notes(st) + st.left_out]
    laws = _law_notes(st)
    if laws:
        doc += [("h2", "Laws"), ("p", "How well each NeuralScale law fits the trajectory it was fitted on (R^2 of "
                                      "its worst layer) and predicts rows it was not fitted on (each layer fitted on "
                                      "the earlier rows, asked for the widths of the last ones)."), ("list", laws)]
    doc += _descent_blocks(st)
    methods = [f"`{m}`: {_method_title(m, st.descents)}" for m in dict.fromkeys(r["method"] for r in st.rows)
               if m in METHOD_TITLES]
    for objective in sorted({m.group(1) for r in st.rows
                             if (m := re.match(r"(?:neuralscale|morphnet|pruned|shape)-(\w+)@?", r["label"]))}):
        methods.append(f"`neuralscale-{objective}@K`, `morphnet-{objective}`: {OBJECTIVE_TITLES[objective]}")
    if any(r["label"] == SPARSE_LABEL for r in st.rows):
        methods.append(f"`{SPARSE_LABEL}`: not a method compared: the network `slimming` prunes, uniform widths "
                       "trained with network slimming's L1 penalty on the batch norms' scales")
    doc += [("h2", "Methods"), ("list", methods)]
    for caption, path in figures:
        doc += [("h2", caption[0].upper() + caption[1:]), ("figure", caption, path)]
    if note:
        doc.append(("p", note))
    failed = [r for r in st.records if r["status"] == "failed"]
    if failed:
        doc += [("h2", "Failed runs"), ("list", [f"`{r['id']}`: {r.get('error', '')}" for r in failed])]
    layers = [("p", "Layers, in the order of the widths: " + ", ".join(f"`{n}`" for n in st.space.layer_names)
               + ".")] if st.space is not None else []  # (a walkthrough: bare lists of numbers)
    doc += [("h2", "Widths"), *layers, ("table", ["method", "budget", "widths"],
                                        [[r["shown"], r["budget"], _widths_cell(r)] for r in st.rows])]
    return doc


def render_markdown(doc: list[tuple]) -> str:
    lines = []
    for block in doc:
        kind = block[0]
        if kind in ("h1", "h2"):
            lines += [("# " if kind == "h1" else "## ") + block[1], ""]
        elif kind == "p":
            lines += [block[1], ""]
        elif kind == "list":
            lines += [f"- {item}" for item in block[1]] + [""]
        elif kind == "figure":
            lines += [f"![{block[1]}]({block[2].name})", ""]
        elif kind == "table":
            head, rows = block[1], block[2]
            lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
            lines += ["| " + " | ".join(row) + " |" for row in rows] + [""]
    return "\n".join(lines)


def _inline(text: str) -> str:
    """Markdown's **bold** and `code` as HTML, everything else escaped."""
    out = html.escape(text)
    out = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", out)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", out)


def render_html(doc: list[tuple], title: str) -> str:
    """A self-contained page: the same blocks, figures embedded as data URIs."""
    out = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>"
           "body{font-family:sans-serif;max-width:1100px;margin:2em auto;}table{border-collapse:collapse;font-size:13px}"
           "td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}td:first-child,th:first-child{text-align:left}"
           "img{max-width:100%}</style></head><body>"]
    for block in doc:
        kind = block[0]
        if kind in ("h1", "h2", "p"):
            out.append(f"<{kind}>{_inline(block[1])}</{kind}>")
        elif kind == "list":
            out.append("<ul>" + "".join(f"<li>{_inline(item)}</li>" for item in block[1]) + "</ul>")
        elif kind == "figure":
            data = base64.b64encode(block[2].read_bytes()).decode()
            mime = {".svg": "image/svg+xml", ".pdf": "application/pdf"}.get(block[2].suffix, "image/png")
            out.append(f"<img alt='{html.escape(block[1])}' src='data:{mime};base64,{data}'>")
        elif kind == "table":
            out.append("<table><tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in block[1]) + "</tr>")
            out += ["<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in row) + "</tr>" for row in block[2]]
            out.append("</table>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def build_report(store: str | Path, accuracy: str = "best-val", out: str | Path | None = None,
                 descent: str | Path | None = None, force: bool = False, formats=("png",),
                 bands: str = "ci", figures: bool = True, model: str | None = None) -> dict:
    """Write the report of a run store; returns {"markdown", "html", "summary", "rows", "records", "figures"}.

    `model`: the runs' network as named now, where their records name a model file where it lay (a store moved
    with its file): its layers and descent figures are drawn from there.

    `formats`: the figures' files (png, svg, pdf; the page embeds the first of png, svg); `bands`: what
    the band around each accuracy curve shows (ci: the mean's 95% confidence interval, minmax, none);
    `figures` False: the text and tables only (a few seconds instead of a minute for a large store).
    """
    if accuracy not in ACCURACY:
        raise NeuralscaleError(f"unknown accuracy {accuracy!r}; choose one of: {', '.join(ACCURACY)}")
    formats = check_formats(formats)
    if not {"png", "svg"} & set(formats):  # the page shows PNG or SVG: draw a PNG too
        formats = (*formats, "png")
    one_of("band", bands, BANDS)
    if model is not None and not isinstance(model, str):
        raise NeuralscaleError(f"build_report: model must be a name (such as 'file:nets.py:Net'), not "
                               f"{type(model).__name__}")
    st = _read(Path(store), accuracy, descent, model)
    dest = check_report_dir(Path(out) if out else StoreDir(st.path).report, force)
    pages = ReportDir(dest)
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise NeuralscaleError(f"cannot write the report into {dest}: {e.strerror or e}") from None
    # one report at a time in a folder (a second waits: never two writers of one figure), and its lock's holder
    # clears what a killed report's atomic write left there
    with exclusive(dest, "report folder", wait=True):
        return _write_report(st, accuracy, pages, formats, bands, figures)


def _write_report(st, accuracy: str, pages: ReportDir, formats, bands: str, figures: bool) -> dict:
    dest = pages.path
    # the folder is a report's from now on: one stopped before its pages (Ctrl-C while drawing) is rebuilt on the
    # next run, and a folder of files that only look like a report's figures is never taken for one
    earlier = _earlier_figures(pages)
    # while it draws, the page names the figure files in the folder that are not a report's (a folder forced into):
    # a build stopped while drawing leaves its new figures, which the next build takes for its own
    others = {p.name: _stamp(p) for p in dest.iterdir()
              if ReportDir.is_figure(p) and p.name not in earlier and p.is_file()}  # (not a link to nowhere)
    _being_built(pages, others)
    drawn, note = _figures(st, dest, formats, bands) if figures else ([], "Figures left out (--no-figures).")
    files = sorted({p.with_suffix(f".{f}").name for _, p in drawn for f in formats if p.with_suffix(f".{f}").is_file()})
    if set(others) & set(files):  # drawn over (--force): the report's now
        _being_built(pages, {k: v for k, v in others.items() if k not in files})
    for name in set(earlier) - set(files):  # the earlier build's figures this one does not draw (--no-figures, a
        (dest / name).unlink(missing_ok=True)  # format not asked for now, a descent not here): taken for its own
    doc = _document(st, drawn, note)
    atomic_write_text(pages.html, render_html(doc, f"neuralscale: {st.model} on {st.dataset}"))
    summary = {"model": st.model, "dataset": st.dataset, "accuracy": accuracy, "store": str(st.path),
               "report": str(pages.markdown), "html": str(pages.html), "rows": st.rows,
               "runs": [run_summary(r) for r in st.records], "figure_files": files}
    atomic_write_json(pages.summary, summary)
    atomic_write_text(pages.markdown, render_markdown(doc))  # last: until then the page says a build is under way
    return {"markdown": pages.markdown, "html": pages.html, "summary": pages.summary,
            "rows": st.rows, "records": st.records, "figures": [p for _, p in drawn], "document": summary}


def _earlier_figures(pages: ReportDir) -> list[str]:
    """The figure files an earlier build of the report in `pages` drew (its summary's `figure_files`: no other file,
    whatever its name, in a folder a report was forced into); for one built before summaries listed them, every
    file of a figure's name (as that build's own were named). [] where the folder holds no report."""
    if not pages.is_report():
        return []
    others = _others_while_built(pages)
    if others is not None:  # a build stopped while drawing: every figure but those that were there before it
        return [p.name for p in pages.path.iterdir() if ReportDir.is_figure(p) and p.name not in others]
    try:
        listed = json.loads(read_text(pages.summary)).get("figure_files")
    except (OSError, ValueError, UnicodeDecodeError, RecursionError, AttributeError):
        listed = None
    if isinstance(listed, list) and all(isinstance(n, str) and ReportDir.is_figure(Path(n)) and Path(n).name == n
                                        for n in listed):
        return listed
    return [p.name for p in pages.path.glob("*.*") if ReportDir.is_figure(p) and p.is_file()]


BEING_BUILT = "(being built)"
_OTHERS = "<!-- figure files not the report's: "


def _stamp(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_mtime_ns, st.st_size]


def _being_built(pages: ReportDir, others: dict[str, list[int]]) -> None:
    """The page while a build runs: it says so, and names the figure files in the folder that are not the report's
    (`others`: a folder a report was forced into may hold one's own), each with its time and size then (one the
    build drew over before it was stopped is the report's)."""
    text = json.dumps(dict(sorted(others.items())))
    atomic_write_text(pages.markdown, f"{ReportDir.HEADER} {BEING_BUILT}\n{_OTHERS}{text} -->\n")


def _others_while_built(pages: ReportDir) -> set[str] | None:
    """The figure files that were not the report's when a build that was stopped while drawing began (its page says
    so), as they were then (one written since is the build's); None where the page is not such a build's (or one
    from before pages said which files were there)."""
    try:
        with open(pages.markdown, encoding="utf-8") as f:
            if f.readline(256).rstrip("\n") != f"{ReportDir.HEADER} {BEING_BUILT}":
                return None
            second = f.readline()
        if not second.startswith(_OTHERS):
            return None
        said = json.loads(second[len(_OTHERS):].rstrip().removesuffix("-->"))
    except (OSError, ValueError, UnicodeDecodeError, RecursionError):
        return None
    if not isinstance(said, dict):
        return None

    def unchanged(name: str) -> bool:
        try:
            return _stamp(pages.path / name) == said[name]
        except OSError:
            return False
    return {name for name in said if unchanged(name)}


def run_summary(r: dict) -> dict:
    s = r.get("summary") or {}
    return {"id": r["id"], "status": r["status"], "model": r.get("model"), "dataset": r.get("dataset"),
            "method": r.get("method"), "label": r.get("label"), "start": _start(r), "budget": r.get("budget"),
            "seed": r.get("seed"), "widths": r.get("widths"), "params": r.get("params"), "macs": r.get("macs"),
            "latency_ms": _latency_ms(r), "final_test_acc": s.get("final_test_acc"),
            "test_acc_at_best_val": s.get("test_acc_at_best_val"), "best_val_epoch": s.get("best_val_epoch"),
            "best_test_acc_original_protocol": s.get("best_test_acc_original_protocol"),
            "wall_s": r.get("wall_s"), "error": r.get("error")}
