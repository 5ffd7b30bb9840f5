"""report.py: the report rebuilt from run records alone, its figures, its page in a browser, and how it names budgets."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import neuralscale as ns
from neuralscale.report import fmt_gap, summarize_records
from neuralscale.store import load_records

from helpers import SYNTH
from helpers import TINY_RUN_ARGS as TINY
from helpers import run_cli


def test_report_is_rebuilt_from_the_records_alone(tmp_path, tiny_descent):
    descent_dir = tiny_descent[0]
    out = tmp_path / "sweep"
    # 64 training images, not TINY's 160 (the last --train-subset counts): the report reads whatever the runs
    # recorded, and two epochs still let the best-validation epoch fall at either
    r = run_cli("sweep", *TINY, "--train-subset", "64", "--methods", "uniform,morphnet,neuralscale,pruned,shape",
                "--ratios", "0.0625,0.125", "--seeds", "0,1", "--epochs", "2", "--from", str(descent_dir),
                "--out", str(out), "--quiet")
    assert r.returncode == 0, r.stderr
    plan = json.loads((out / "sweep.json").read_text())["config"]  # the descent, found from wherever the store is
    assert (out / plan["descent_from_store"]).resolve() == descent_dir.resolve()
    for ckpt in out.glob("runs/*/checkpoint.pt"):  # no weights, no training: the records are enough
        ckpt.unlink()
    r = run_cli("report", str(out), "--json")
    assert r.returncode == 0, r.stderr
    runs = json.loads(r.stdout)["runs"]
    assert len(runs) == 20 and all(x["status"] == "finished" for x in runs)
    records = load_records(out)
    rows = summarize_records(records)
    assert len(rows) == 10
    for row in rows:  # the table is exactly the records' numbers
        mine = [x["summary"]["test_acc_at_best_val"] for x in records
                if x["label"] == row["label"] and x["budget"]["ratio"] == row["budget_key"][1]]
        assert sorted(row["values"]) == sorted(mine) and row["n"] == 2
        assert abs(row["mean"] - sum(mine) / 2) < 1e-9
        if row["label"] != "uniform":
            assert row["gap_to_uniform"] is not None
            mine_final = [x["summary"]["final_test_acc"] for x in records
                          if x["label"] == row["label"] and x["budget"]["ratio"] == row["budget_key"][1]]
            theirs = [x["summary"]["final_test_acc"] for x in records
                      if x["label"] == "uniform" and x["budget"]["ratio"] == row["budget_key"][1]]
            assert abs(row["final_gap"] - (sum(mine_final) - sum(theirs)) / 2) < 1e-9  # the final epoch's gap
            md = (out / "report" / "report.md").read_text()
            if row["gap_ci95"] is None:  # both sides' two seeds scored alike (on 32 test images): nothing to test
                assert f"{row['gap_to_uniform']:+.2f} (no CI: one seed, or no spread)" in md
                continue
            lo, hi = row["gap_to_uniform"] - row["gap_ci95"], row["gap_to_uniform"] + row["gap_ci95"]
            cell = fmt_gap(row["gap_to_uniform"], row["gap_ci95"], bold=False)
            assert cell.startswith(f"{row['gap_to_uniform']:+.2f} [") or (lo > 0 or hi < 0)  # more digits: near 0
            assert (f"**{cell}**" in md) == (lo > 0 or hi < 0) and cell in md  # bold: the interval excludes 0
    rep = out / "report"
    for name in ("report.md", "report.html", "summary.json", "acc_vs_params.png", "acc_vs_macs.png",
                 "acc_vs_latency.png", "widths.png", "heatmap.png", "growth_iteration_02.png"):
        assert (rep / name).stat().st_size > 0, name
    html = (rep / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 6 and "<table>" in html
    md = (rep / "report.md").read_text()
    assert "test accuracy at the best-validation epoch" in md and "neuralscale@2" in md
    descent = md[md.index("## Descent"):].split("\n\n")[2].splitlines()  # every iteration: its rows and fit
    assert descent[0].startswith("| iteration | started from |") and len(descent) == 2 + len(tiny_descent[1])
    for line, law in zip(descent[2:], tiny_descent[1]):
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[0] == str(law.iteration) and cells[4] == str(law.rows)
        worst = law.r2.index(min(law.r2))
        assert cells[6] == ("not a fit" if law.fallback else f"{law.r2[worst]:.3f} ({law.layers[worst]})")
    # the last column: how far each law moved the configuration at the descent's base budget (iteration 1: from
    # its start), as the convergence rule measures it
    from neuralscale.descent import DescentDir, at_base, configuration_moves
    its = DescentDir(tiny_descent[0]).iterations()
    base = ns.space("vgg11", "synthetic").rebased(its[0].start_widths)
    moved = [[c.strip() for c in line.strip("|").split("|")][-1] for line in descent[2:]]
    first = at_base(its[0].law, base)
    change = [abs(b - a) / a for a, b in zip(its[0].start_widths, first)]
    assert descent[0].endswith("| next start moved |")
    assert moved[0] == f"{max(change):.1%} ({base.layer_names[change.index(max(change))]})"
    assert moved[1:] == [f"{c:.1%} ({base.layer_names[i]})" for c, i in configuration_moves([it.law for it in its], base)]
    assert its[1].start_widths == first  # iteration 2 starts where iteration 1's law put it
    from neuralscale.stats import holm, paired_p, welch_p
    uniform_macs = {r["budget"]: r["macs"] for r in rows if r["label"] == "uniform"}

    def test_of(r):  # paired by seed; Welch's where the paired differences do not vary
        u = next(u for u in rows if u["label"] == "uniform" and u["budget_key"] == r["budget_key"])
        return paired_p(r["by_seed"], u["by_seed"]) if r["paired_ci95"] is not None else welch_p(r["values"], u["values"])
    ps = [test_of(r) if r["label"] != "uniform" else None for r in rows]
    assert [r["p"] for r in rows] == ps and [r["holm"] for r in rows] == holm(ps)
    held, made = sum(bool(h) for h in holm(ps)), sum(p is not None for p in ps)  # 8 rows; seeds that vary: tested
    assert not made or (f"The table makes {made} comparison(s) with uniform" in md
                        and f"5% family-wise level, {held} hold" in md)
    # the law against its ablations, paired by seed at each budget (none where the law is a fallback)
    from neuralscale.descent import DescentDir
    from neuralscale.stats import paired_gap
    by = {(x["label"], x["budget"]["ratio"], x["seed"]): x["summary"]["test_acc_at_best_val"] for x in records}
    fitted = not DescentDir(descent_dir).iteration(2).law.fallback
    ablations = md.split("## The law against its ablations")[1].split("\n## ")[0] if fitted else ""
    assert ("## The law against its ablations" in md) == fitted
    for ratio in (0.0625, 0.125) if fitted else ():
        for against in ("pruned", "shape@2"):
            gap, half, n = paired_gap({s: by["neuralscale@2", ratio, s] for s in (0, 1)},
                                      {s: by[against, ratio, s] for s in (0, 1)})
            assert n == 2 and f"| neuralscale@2 | {against} | 2 |" in ablations
            assert fmt_gap(gap, half) in ablations and (half is None or f"{gap:+.2f} [" in fmt_gap(gap, half)
                                                        or f"{gap:+.3f} [" in fmt_gap(gap, half))
    holds = ablations.count("**holds**")
    # the verdicts come first: one line per comparison, the word decided by the interval and Holm's correction
    assert md.split("\n## ")[1].startswith("Verdicts")
    from neuralscale.methods import scale
    from neuralscale.budget import Budget
    sp = ns.space("vgg11", "synthetic")
    for row in rows:
        if row["label"] == "uniform":
            continue
        shown = row["label"]
        if row["label"] == "neuralscale@2" and fitted:  # marked where its law is read outside its rows
            found = scale(sp, "neuralscale", Budget.of_ratio(row["budget_key"][1]), source=descent_dir)
            shown += " (extrapolated)" if found["extrapolated"] else ""
        line = next(x for x in md.splitlines() if x.startswith(f"- `{shown}` at {row['budget']}: "))
        gap, half = (row["paired_gap"], row["paired_ci95"]) if row["paired_ci95"] is not None else \
            (row["gap_to_uniform"], row["gap_ci95"])  # Welch's where the paired differences do not vary
        if half is None:  # neither varies: no interval, no test
            assert ": cannot tell (the seeds do not vary: no interval)" in line, line
            continue
        lo, hi = gap - half, gap + half
        word = ("**better**" if lo > 0 else "**worse**") if row["holm"] else "better" if lo > 0 else "worse" \
            if hi < 0 else "cannot tell"
        assert f": {word}" in line and f"{row['macs'] / uniform_macs[row['budget']]:.2f}x its MACs" in line, line
    assert "| p (holds: Holm) |" in md and md.count("**holds**") == held + 1 + holds  # each row that holds, and the note
    assert "## Methods" in md and "paper: 'weight magnitude'" not in md  # only the methods of this sweep
    assert "- `morphnet`: MorphNet-style" in md and "(paper: NeuralScale, iteration 1 / 15)" in md
    assert "| latency (ms) |" in md and "Latency: batch 1, median over the runs of each run's median on cpu" in md
    last = sum(x["summary"]["best_val_epoch"] == len(x["history"]) for x in records)  # where selection fell
    (val,) = {x["data"]["val"] for x in records}  # the split it was chosen on, said with it
    assert (f"Selection on a validation split of {val:,} images: the best-validation epoch was the last epoch in "
            f"{last} of 20 runs") in md
    # every latency carries its spread, and a measurement whose spread is large is flagged
    row = next(x for x in md.splitlines() if x.startswith("| uniform | ratio 0.125 |"))
    assert " (IQR " in row  # the spread beside the median (flagged or not: the runs measured beside each other)
    shaky = next(x for x in records if x["label"] == "uniform" and x["budget"]["ratio"] == 0.125)
    path = out / "runs" / shaky["id"] / "record.json"
    saved = path.read_text()
    rec = json.loads(saved)
    rec["latency"]["batches"]["1"]["iqr_ms"] = rec["latency"]["batches"]["1"]["median_ms"]  # a busy machine's
    path.write_text(json.dumps(rec))
    # one report (with its figures) for two things: the flag, and the original protocol's label and last line
    orig = run_cli("report", str(out), "--accuracy", "original", "--out", str(tmp_path / "shaky"))
    assert orig.returncode == 0, orig.stderr
    shaky_md = (tmp_path / "shaky" / "report.md").read_text()
    row = next(x for x in shaky_md.splitlines() if x.startswith("| uniform | ratio 0.125 |"))
    assert "**unstable**" in row and "**Unstable** (an interquartile range over 20% of the median" in shaky_md
    assert "ORIGINAL PROTOCOL" in shaky_md and orig.stdout.strip().splitlines()[-1].endswith("report.html")
    path.write_text(saved)
    # a run that measured its latency on another machine: no latency column or figure, and a note says why
    moved = out / "runs" / runs[0]["id"] / "record.json"
    rec = json.loads(moved.read_text())
    rec["latency"]["device"] = "NVIDIA H100 80GB HBM3"
    moved.write_text(json.dumps(rec))
    r = run_cli("report", str(out), "--out", str(tmp_path / "mixed"))
    assert r.returncode == 0, r.stderr
    mixed = (tmp_path / "mixed" / "report.md").read_text()
    assert "latency (ms)" not in mixed and not (tmp_path / "mixed" / "acc_vs_latency.png").exists()
    assert "Latency is left out: the runs measured it on different devices (NVIDIA H100 80GB HBM3; cpu" in mixed
    quick = run_cli("report", str(out), "--no-figures", "--out", str(tmp_path / "quick"))  # text and tables only
    assert quick.returncode == 0, quick.stderr
    assert not list((tmp_path / "quick").glob("*.png"))
    table = [x for x in mixed.splitlines() if x.startswith("| uniform |")]  # the report of the same records
    assert table and table == [x for x in (tmp_path / "quick" / "report.md").read_text().splitlines()
                               if x.startswith("| uniform |")]
    for x in records:  # one seed left: no spread to show, and the table says so instead of "± 0.00"
        if x["seed"] == 1:
            shutil.rmtree(out / "runs" / x["id"])
    one = run_cli("report", str(out), "--no-figures", "--out", str(tmp_path / "one"))  # its table is the point
    assert one.returncode == 0, one.stderr
    md = (tmp_path / "one" / "report.md").read_text()
    row = next(line for line in md.splitlines() if line.startswith("| uniform |"))
    assert "(1 seed)" in row and "±" not in row and "(no CI: one seed, or no spread)" in md



def test_a_descent_tables_cells_for_laws_without_an_r2_or_an_out_of_sample_error():
    """A law may record no R^2 and no out-of-sample error (too few rows, or written before neuralscale kept
    them); a latency law's range is in milliseconds, not rounded to whole ones; a fallback is not a fit."""
    from neuralscale.report import _fit_cells
    from neuralscale.scaling import ScalingLaw
    layers = ["a", "b"]
    law = ScalingLaw("m", "d", layers, [1.0, 2.0], [0.5, 0.5], rows=9, tau_range=[0.0512, 0.5123], objective="latency")
    assert _fit_cells(law) == ["", "none", "0.0512-0.5123 ms"]
    law = ScalingLaw("m", "d", layers, [1.0, 2.0], [0.5, 0.5], [0.99, 0.9], rows=30, tau_range=[1186.0, 576003.0],
                     holdout_error=[0.5, 0.1], holdout_rows=6)
    assert _fit_cells(law) == ["0.900 (b)", "30.0%, 50.0% (a); last 6 rows", "1,186-576,003 parameters"]
    assert law.quality() == ("30 rows, R^2 0.900 (worst layer), out-of-sample error 30.0% mean, 50.0% worst layer "
                             "(last 6 rows predicted from the rest)")
    assert _fit_cells(ScalingLaw("m", "d", layers, [4, 4], [0, 0], fallback=True)) == ["not a fit", "", ""]


def test_figures_for_a_paper(tmp_path, tiny_descent):
    from neuralscale.figures import band, descent_figures, display_name
    assert display_name("imagefolder:/home/me/data/flowers/") == "flowers (imagefolder)"
    assert display_name("torchvision:resnet18") == "torchvision:resnet18"
    row = {"mean": 90.0, "std": 1.0, "n": 5, "min": 88.0, "max": 91.5}
    lo, hi = band(row)  # the mean's 95% CI: t(4) = 2.776
    assert abs((hi - lo) / 2 - 2.7764451051977934 / 5 ** 0.5) < 1e-9 and band(row, "minmax") == (88.0, 91.5)
    out, laws = tiny_descent
    paths = descent_figures(out, ns.space("vgg11", "synthetic"), dest=tmp_path, formats=("svg", "pdf"))
    assert [p.suffix for p in paths] == [".svg", ".svg"]
    assert all(p.with_suffix(".pdf").stat().st_size > 1000 for p in paths)
    assert "fitted range" in paths[0].read_text()  # the shaded range of the law's rows, in the legend
    store = tmp_path / "s"
    r = run_cli("sweep", *SYNTH, "--methods", "uniform", "--ratios", "0.0625", "--seeds", "0,1", "--epochs", "1",
                "--train-subset", "64", "--test-subset", "32", "--batch-size", "32", "--device", "cpu",
                "--out", str(store), "--quiet")
    assert r.returncode == 0, r.stderr
    r = run_cli("report", str(store), "--format", "png,svg,pdf", "--band", "minmax")
    assert r.returncode == 0, r.stderr
    for ext in ("png", "svg", "pdf"):
        assert (store / "report" / f"acc_vs_params.{ext}").stat().st_size > 1000
    assert "data:image/png;base64" in (store / "report" / "report.html").read_text()
    r = run_cli("report", str(store), "--format", "svg", "--force")
    assert r.returncode == 0 and "data:image/svg+xml;base64" in (store / "report" / "report.html").read_text()
    r = run_cli("report", str(store), "--format", "gif")
    assert r.returncode == 2 and "unknown figure format 'gif'" in r.stderr


def test_a_browser_that_does_not_run_is_no_browser(tmp_path, monkeypatch):
    """A `chromium-browser` on PATH may be Ubuntu's stub that asks for the snap: the screenshot test skips there
    (report_screenshot.browser probes `--version`) rather than failing on a browser that is not one."""
    import importlib.util
    from pathlib import Path
    bench = Path(__file__).resolve().parents[1] / "benchmarks" / "report_screenshot.py"
    spec = importlib.util.spec_from_file_location("report_screenshot_probe", bench)
    shot = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(shot)
    import shutil as sh
    # links to `false` (fails, --version too) and `true`, not scripts: a /tmp mounted noexec runs neither script
    fails, runs = sh.which("false"), sh.which("true")
    (tmp_path / "chromium-browser").symlink_to(fails)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert shot.browser() is None
    (tmp_path / "chromium").symlink_to(runs)
    assert shot.browser() == str(tmp_path / "chromium")


def test_the_report_renders_in_headless_chromium(tmp_path):
    import importlib.util
    from pathlib import Path
    import sys
    bench = Path(__file__).resolve().parents[1] / "benchmarks" / "report_screenshot.py"
    spec = importlib.util.spec_from_file_location("report_screenshot", bench)
    shot = importlib.util.module_from_spec(spec)
    sys.modules["report_screenshot"] = shot
    spec.loader.exec_module(shot)
    if shot.browser() is None:
        pytest.skip("no headless Chromium here (apt-get install chromium-headless-shell)")
    store = tmp_path / "s"
    r = run_cli("sweep", *SYNTH, "--methods", "uniform", "--ratios", "0.0625,0.125", "--seeds", "0", "--epochs", "1",
                "--train-subset", "64", "--test-subset", "32", "--batch-size", "32", "--device", "cpu",
                "--out", str(store), "--quiet")
    assert r.returncode == 0, r.stderr
    for fmt in ("png", "svg"):
        r = run_cli("report", str(store), "--format", fmt, "--out", str(tmp_path / fmt))
        assert r.returncode == 0, r.stderr
        png = shot.screenshot(tmp_path / fmt / "report.html", tmp_path / f"{fmt}.png", height=1600)
        assert not shot.is_blank(png)
        from PIL import Image
        colours = Image.open(png).convert("RGB").getcolors(maxcolors=1 << 20)
        assert colours is not None and len(colours) > 50, fmt  # figures, not just text on white


def test_share_budgets_read_as_shares_in_reports_and_old_formats_go(tmp_path):
    store = tmp_path / "s"
    r = run_cli("sweep", *SYNTH, "--methods", "uniform", "--params", "5%", "--seeds", "0", "--epochs", "1",
                "--train-subset", "64", "--test-subset", "32", "--batch-size", "32", "--device", "cpu",
                "--out", str(store), "--quiet")
    assert r.returncode == 0, r.stderr
    assert run_cli("report", str(store), "--format", "png,svg").returncode == 0
    assert "| 5% of the base params |" in (store / "report" / "report.md").read_text()
    (store / "report" / "mine.svg").write_text("<svg/>")  # not a figure of the report: kept
    assert run_cli("report", str(store), "--format", "png", "--force").returncode == 0
    assert not (store / "report" / "acc_vs_params.svg").exists() and (store / "report" / "mine.svg").exists()


def test_figures_name_budgets_as_the_tables_do_and_frame_one_budget(tmp_path, tiny_descent, monkeypatch):
    """The heatmap's panels are ratios of the model (the tiny descent starts at 1/16 width: its start is ratio
    0.0625, not 1.0); an accuracy figure at one budget frames its points instead of stretching past 100%."""
    from neuralscale import figures
    drawn = []
    real_save = figures._save
    monkeypatch.setattr(figures, "_save", lambda fig, path, *a, **k: (drawn.append(fig), real_save(fig, path, *a, **k))[1])
    sp = ns.space("vgg11", "synthetic")
    figures.heatmap_figure(tiny_descent[0], figures.DescentDir(tiny_descent[0]).start_space(sp), dest=tmp_path)
    titles = [ax.get_title() for ax in drawn[-1].axes if ax.get_title()]
    assert [t.split(" (")[0] for t in titles] == ["ratio 0.015625", "ratio 0.03125", "ratio 0.0625", "ratio 0.125"]
    row = dict(label="uniform", shown="uniform", params=36882, macs=627008, latency_ms=None, mean=88.7, std=0.3, n=5,
               min=88.3, max=89.1)
    other = {**row, "label": "neuralscale@1", "shown": "neuralscale@1", "params": 36881, "mean": 90.6}
    figures.accuracy_figure([row, other], "params", tmp_path, "one budget", "accuracy (%)",
                            paper=[{"method": "uniform", "params": "9000000", "acc_best_epoch_mean": "93.5",
                                    "macs_per_image_millions": "150"}])
    ax = drawn[-1].axes[0]
    lo, hi = ax.get_ylim()
    assert 85 < lo < 88.5 and 90.6 < hi <= 100 and ax.get_xlim()[1] < 36882 * 2  # the paper's curve is not framed


def test_verdicts_say_what_their_intervals_rest_on():
    """Seeds that do not vary give no interval ("cannot tell"), not a certain gap; a verdict paired over fewer seeds
    than a side has says how many paired; a bound that rounds to 0.00 in a bold interval gets a third decimal
    (bold and verdict both decide on the unrounded bounds); runs without a validation split are named, not
    silently dropped."""
    from neuralscale.budget import Budget
    from neuralscale.report import unmeasured, verdicts

    def rec(label, seed, acc):
        return {"status": "finished", "label": label, "method": label, "seed": seed, "params": 1000, "macs": 10_000,
                "budget": Budget.of_ratio(0.25).to_dict(), "widths": [4],
                "summary": {"test_acc_at_best_val": acc, "final_test_acc": 80.0 if acc is None else acc}}
    flat = summarize_records([rec("uniform", s, 88.0) for s in range(2)] + [rec("morphnet", s, 88.01) for s in range(2)])
    (line,) = verdicts(flat)
    assert "cannot tell (the seeds do not vary: no interval)" in line and "p " not in line
    uneven = [rec("uniform", s, 80.0 + s * 0.5) for s in range(4)] + [rec("morphnet", s, 80.5 + s * 0.6) for s in range(5)]
    (line,) = verdicts(summarize_records(uneven))
    assert "**better**" in line and "4 seed(s) paired, of its 5 and uniform's 4" in line
    assert fmt_gap(0.02, 0.0175) == "**+0.020 [+0.002, +0.038]**" and fmt_gap(0.02, 0.025) == "+0.02 [-0.01, +0.04]"
    assert fmt_gap(0.338, 0.3377) == "**+0.3380 [+0.0003, +0.6757]**"  # as many decimals as the bound needs
    line = verdicts(summarize_records([rec("uniform", s, 88.0 + s / 10) for s in range(5)] +
                                      [rec("morphnet", s, 88.0 + s / 10 + d / 100) for s, d in enumerate((4, 2, 2, 3, 0))]))[0]
    assert "points [+0.00," not in line and "+0.022 points [+0.004, +0.040] paired by seed" in line, line
    # the same gap in every seed: the paired differences do not vary; Welch's test between the seeds stands in
    base = (88.0, 89.0, 90.0, 88.5, 89.5)
    rows = summarize_records([rec("uniform", s, a) for s, a in enumerate(base)] +
                             [rec("morphnet", s, a + 0.5) for s, a in enumerate(base)])
    (line,) = verdicts(rows)
    assert "cannot tell (+0.50 points [-0.65, +1.65] (Welch)" in line and rows[-1]["p"] is not None, line
    assert fmt_gap(1.0, None) == "+1.00 (no CI: one seed, or no spread)"
    no_val = uneven + [rec("l1-prune", 0, None)]
    assert [r["label"] for r in unmeasured(no_val, "best-val")] == ["l1-prune"] and not unmeasured(no_val, "final")
    assert {r["label"] for r in summarize_records(no_val)} == {"uniform", "morphnet"}


def test_methods_that_meet_at_a_budget_are_told_apart_by_their_markers(tmp_path, monkeypatch):
    """Three methods at the same budgets and means (MorphNet and uniform at the same widths): each line of the
    accuracy figure has a marker of its own, open, so that each point shows through the others; a method's marker
    is the same in the widths figure."""
    from neuralscale import figures
    drawn, real_save = [], figures._save
    monkeypatch.setattr(figures, "_save",
                        lambda fig, path, *a, **k: (drawn.append(fig), real_save(fig, path, *a, **k))[1])
    rows = [dict(label=m, shown=m, params=p, macs=p * 20, latency_ms=None, mean=80.0 + i, std=0.5, n=3, min=79.0,
                 max=81.0 + i, budget_key=["ratio", r], widths=[int(8 * r)] * 8)
            for m in ("uniform", "morphnet", "neuralscale@1")
            for i, (p, r) in enumerate([(3_000, 0.25), (40_000, 1.0)])]
    colors = figures.method_colors(["uniform", "morphnet", "neuralscale@1"])
    figures.accuracy_figure(rows, "params", tmp_path, "three methods at one place", "accuracy (%)", colors=colors)
    figures.widths_figure(rows, None, tmp_path, colors)
    acc, widths = drawn
    marked = {line.get_label().split(" (n=")[0]: line for line in acc.axes[0].get_lines()
              if line.get_marker() != "None"}
    assert sorted(marked) == ["morphnet", "neuralscale@1", "uniform"]
    assert len({line.get_marker() for line in marked.values()}) == 3
    assert all(line.get_markerfacecolor() == "none" for line in marked.values())
    for ax in widths.axes:
        for line in ax.get_lines():
            assert line.get_marker() == marked[line.get_label()].get_marker(), line.get_label()


def test_log_axes_are_labelled_as_matplotlib_labels_them_in_plain_text(tmp_path, tiny_descent, monkeypatch):
    """Every log axis of the figures has matplotlib's own ticks and labels (minor ones where it labels them), in
    plain text: no label goes through mathtext, whose parsing was a quarter of a descent's figures' time."""
    import matplotlib.mathtext
    from matplotlib.ticker import LogFormatterSciNotation
    from neuralscale import figures
    assert figures.plain_power(r"$\mathdefault{10^{4}}$") == "10⁴"
    assert figures.plain_power(r"$\mathdefault{2\times10^{4}}$") == "2×10⁴"
    assert figures.plain_power(r"$\mathdefault{10^{-2}}$") == "10⁻²"
    assert [figures.plain_power(x) for x in ("", r"$\mathdefault{0}$", "37")] == ["", r"$\mathdefault{0}$", "37"]
    parsed, drawn = [], []
    real_parse, real_save = matplotlib.mathtext.MathTextParser.parse, figures._save
    monkeypatch.setattr(matplotlib.mathtext.MathTextParser, "parse",
                        lambda self, s, *a, **k: (parsed.append(s), real_parse(self, s, *a, **k))[1])
    monkeypatch.setattr(figures, "_save", lambda fig, path, *a, **k: (drawn.append(fig), real_save(fig, path, *a, **k))[1])
    figures.descent_figures(tiny_descent[0], ns.space("vgg11", "synthetic"), dest=tmp_path)
    rows = [dict(label="uniform", shown="uniform", params=p, macs=p * 20, latency_ms=None, mean=80.0 + i, std=0.5,
                 n=3, min=79.0 + i, max=81.0 + i, budget_key=["ratio", r], widths=[int(8 * r)] * 8)
            for i, (p, r) in enumerate([(3_000, 0.25), (40_000, 1.0), (600_000, 4.0)])]
    figures.accuracy_figure(rows, "params", tmp_path, "three decades", "accuracy (%)")
    figures.widths_figure(rows, None, tmp_path, figures.method_colors(["uniform"]))
    assert not parsed, parsed
    axes = [(ax, which) for fig in drawn for ax in fig.axes for which in "xy" if getattr(ax, f"get_{which}scale")() == "log"]
    assert len(axes) >= 4  # the growth figure's two, the accuracy figure's x, each widths panel's y
    for ax, which in axes:
        axis = getattr(ax, f"{which}axis")
        for locs, formatter, own in ((axis.get_majorticklocs(), axis.get_major_formatter(), LogFormatterSciNotation(10)),
                                     (axis.get_minorticklocs(), axis.get_minor_formatter(),
                                      LogFormatterSciNotation(10, labelOnlyBase=False))):
            own.set_axis(axis)
            own.set_locs(locs)
            labels = [formatter(x) for x in locs]
            assert labels == [figures.plain_power(own(x)) for x in locs] and not any("$" in t for t in labels)
        assert any(axis.get_major_formatter()(x) for x in axis.get_majorticklocs())


def test_a_row_solved_with_the_sweeps_rounding_is_marked_extrapolated(tiny_descent):
    """A sweep that rounds widths (min_width, multiple) solved its rows with them: the report solves again with
    the same rounding, so a law read outside its rows is marked whatever the rounding was."""
    import sys
    from neuralscale.budget import Budget
    from neuralscale.methods import scale
    report = sys.modules["neuralscale.report"]
    descent_dir = tiny_descent[0]
    sp = ns.space("vgg11", "synthetic")
    budget = Budget.of_ratio(0.125)  # far above the sizes the tiny descent recorded rows at
    found = scale(sp, "neuralscale", budget, source=descent_dir, multiple=8, min_width=8)
    plain = scale(sp, "neuralscale", budget, source=descent_dir)
    assert found["extrapolated"] and found["widths"] != plain["widths"]
    label = report.law_label(max(it.number for it in report.DescentDir(descent_dir).iterations()), "params")
    for cfg, marked in (({"multiple": 8, "min_width": 8}, True), ({}, False)):
        row = {"method": "neuralscale", "fallback": False, "label": label, "shown": label, "marks": [],
               "budget_key": list(budget.key), "widths": found["widths"]}
        report._mark_extrapolated([row], [descent_dir], sp, cfg)
        assert row["extrapolated"] is marked and row["shown"].endswith(" (extrapolated)") == marked


STUDY = Path(__file__).resolve().parents[1] / "studies" / "fmnist-vgg11" / "params" / "runs"


def test_a_folder_of_runs_that_do_not_compare_is_refused_in_one_line(tmp_path, capsys):
    """A folder of run directories gathered by hand (a new user's `runs/`) pooled runs of other models, datasets
    and recipes into one table under the first run's name, and counted one configuration twice as two seeds.
    Each is refused in one line that names the runs; runs that compare (committed records) still report."""
    from neuralscale import cli
    from neuralscale.spec import RunSpec

    def folder(name: str, edits: dict[str, dict]) -> Path:
        root = tmp_path / name
        for run, change in edits.items():
            src = STUDY / run.split("+")[0]
            shutil.copytree(src, root / run)
            record = json.loads((src / "record.json").read_text())
            for key, value in change.items():
                if key in ("epochs", "amp"):  # another recipe: a run of another id
                    record["config"][key] = record["spec"]["config"][key] = value
                    record["id"] = RunSpec.from_dict(record["spec"]).id
                elif key == "data_dir":  # where its data lived (not part of what it is): no other run
                    record["spec"]["data"]["data_dir"] = value
                elif key == "widths":  # the same label at the same budget, other widths (a law of another descent)
                    record["widths"] = record["spec"]["widths"] = value
                    record["id"] = RunSpec.from_dict(record["spec"]).id
                else:
                    record[key] = value
            (root / run / "record.json").write_text(json.dumps(record))
        return root

    a, b = "uniform-r0.0625-s0-d8fa75007e", "uniform-r0.0625-s1-63892bdd26"
    assert (STUDY / a).is_dir() and (STUDY / b).is_dir()
    fine = folder("fine", {a: {}, b: {"data_dir": "/elsewhere/data"}})  # a store resumed with another --data-dir
    from neuralscale.report import build_report
    assert build_report(fine, figures=False)["rows"][0]["n"] == 2
    # the arithmetic is noted, as the device is, not refused: float32 on the H100 (--no-amp) beside its default
    # bf16, and on a CPU float32 asked for or by default, which is one arithmetic (no note)
    arith = folder("arith", {a: {}, b: {"amp": False}})
    assert build_report(arith, figures=False)["rows"][0]["n"] == 2
    md = (arith / "report" / "report.md").read_text()
    assert ("**The runs trained in several arithmetics**: NVIDIA H100 80GB HBM3 (bf16 autocast): 1 run(s) (uniform); "
            "NVIDIA H100 80GB HBM3 (float32): 1 run(s) (uniform).") in md and ", in bf16 autocast and float32." in md
    cpu = {"environment": {"device": "cpu"}}
    on_cpu = folder("cpu", {a: cpu, b: {**cpu, "amp": False}})
    assert build_report(on_cpu, figures=False)["rows"][0]["n"] == 2
    md = (on_cpu / "report" / "report.md").read_text()
    assert "several" not in md and ", in float32." in md
    cases = {"model": ({a: {}, b: {"model": "resnet18"}}, "holds runs of 2 models or datasets (resnet18 on "),
             "recipe": ({a: {}, b: {"epochs": 30}}, "2 different recipes (runs uniform-r0.0625-s0-d8fa75007e and "
                        f"{b.rpartition('-')[0]}-"),
             # neuralscale@15 from two descents, say: one seed twice, not a second seed
             "twice": ({a: {}, f"{a}+copy": {"widths": [4, 8, 16, 16, 32, 32, 32, 31]}},
                       "uniform at ratio 0.0625 with seed 0 twice (runs ")}
    for name, (edits, said) in cases.items():
        assert cli.main(["report", str(folder(name, edits)), "--no-figures"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and said in err[0], (name, err)
        assert name != "recipe" or ": epochs 20 against 30); their accuracies do not compare" in err[0], err
    assert cli.main(["report", str(fine / a)]) == 2
    assert "is one run's directory; report the folder" in capsys.readouterr().err


def test_the_original_protocol_is_labelled_wherever_its_numbers_are(tmp_path, capsys):
    """`--accuracy original` (best test epoch: selects on the test set) was named in the Accuracy paragraph only,
    which went on to say the models were selected on a validation split; its verdicts, column heads and the
    command's summary lines said nothing. Each says so now; the default says what it selects on."""
    from neuralscale import cli
    runs = [d for d in sorted(STUDY.iterdir()) if d.name.startswith(("uniform-r0.0625-s", "neuralscale-15-r0.0625-s"))
            and d.name.split("-s")[-1][0] in "01"]
    assert len(runs) == 4
    for d in runs:
        shutil.copytree(d, tmp_path / "runs" / d.name)
    assert cli.main(["report", str(tmp_path / "runs"), "--no-figures", "--accuracy", "original"]) == 0
    out = capsys.readouterr().out.splitlines()
    rows = [line for line in out if line.startswith(("uniform", "neuralscale@15"))]
    assert len(rows) == 2 and all(line.endswith("(ORIGINAL PROTOCOL: best test epoch)") for line in rows), out
    md = (tmp_path / "runs" / "report" / "report.md").read_text()
    verdicts = md.split("## Verdicts", 1)[1].split("\n## ", 1)[0]
    assert "**ORIGINAL PROTOCOL**: by each run's best test epoch, which selects on the test set" in verdicts
    assert "| test acc (ORIGINAL PROTOCOL: best test epoch) |" in md and "(sel.)" not in md
    assert "this selects on the test set" in md and "Models are selected on a validation split" not in md
    assert cli.main(["report", str(tmp_path / "runs"), "--no-figures"]) == 0
    md = (tmp_path / "runs" / "report" / "report.md").read_text()
    assert "ORIGINAL PROTOCOL" not in md and "| test acc (sel.) |" in md
    assert "Models are selected on a validation split" in md
    assert not [line for line in capsys.readouterr().out.splitlines() if "ORIGINAL" in line]


def test_a_confidence_band_is_drawn_within_what_an_accuracy_can_be():
    from neuralscale.figures import band
    two_seeds = {"mean": 97.0, "std": 3.0, "n": 2, "min": 94.0, "max": 100.0}  # t(1) = 12.7: +-27 points
    assert band(two_seeds) == (pytest.approx(97.0 - 12.706 * 3 / 2 ** 0.5, abs=0.01), 100.0)
    assert band({**two_seeds, "mean": 3.0}, "ci")[0] == 0.0 and band(two_seeds, "minmax") == (94.0, 100.0)


def test_a_descent_named_for_a_report_must_be_one(tmp_path, capsys):
    """`report --descent nope` exited 0, a sentence in the report the only trace of the mistake."""
    from neuralscale import cli
    runs = tmp_path / "runs"
    shutil.copytree(STUDY / "uniform-r0.0625-s0-d8fa75007e", runs / "uniform-r0.0625-s0-d8fa75007e")
    assert cli.main(["report", str(runs), "--no-figures", "--descent", str(tmp_path / "nope")]) == 2
    assert f"--descent {tmp_path / 'nope'} does not exist" in capsys.readouterr().err
    assert cli.main(["report", str(runs), "--no-figures", "--descent", str(runs)]) == 2
    assert "is not a descent directory" in capsys.readouterr().err


def test_a_pruning_baseline_that_pruned_nothing_is_marked_as_fine_tuning(tmp_path):
    """In the committed study, l1-prune and slimming at ratio 0.125 start from uniform's trained network of that very
    size (the base is 1/8 width): they remove no channel, and their 'better than uniform' is 20 epochs more of
    training. Their rows say so (table, verdict, a note); at ratio 0.0625, where they pruned, and in the accuracy
    figure's legend, whose line spans both budgets, they do not."""
    from neuralscale import figures
    from neuralscale.report import build_report
    store = tmp_path / "params"
    shutil.copytree(STUDY.parent, store, ignore=shutil.ignore_patterns("report"))
    rows = build_report(store, figures=False)["rows"]
    marked = {(r["label"], r["budget"]) for r in rows if r["shown"].endswith(" (pruned nothing)")}
    assert marked == {("l1-prune", "ratio 0.125"), ("slimming", "ratio 0.125")}
    md = (store / "report" / "report.md").read_text()
    assert "- `l1-prune (pruned nothing)` at ratio 0.125: **better** than uniform" in md
    assert "- `l1-prune` at ratio 0.0625:" in md
    assert "what its 20 more epochs of fine-tuning add, not what pruning does" in md
    l1 = [r for r in rows if r["label"] == "l1-prune"]
    assert figures.shown(l1) == "l1-prune"
    ns_rows = [r for r in rows if r["label"] == "neuralscale@1"]  # extrapolated at both budgets: the line is too
    assert figures.shown(ns_rows) == "neuralscale@1 (extrapolated)"
    # a run whose widths are those it started from, in records made by hand: marked; one that pruned: not
    from neuralscale.budget import Budget
    rec = {"status": "finished", "label": "l1-prune", "method": "l1-prune", "seed": 0, "params": 10, "macs": 10,
           "budget": Budget.of_ratio(0.5).to_dict(), "widths": [4, 8], "summary": {"test_acc_at_best_val": 80.0,
                                                                                 "final_test_acc": 80.0},
           "pruning": {"from_widths": [4, 8]}}
    assert summarize_records([rec])[0]["shown"] == "l1-prune (pruned nothing)"
    assert summarize_records([{**rec, "pruning": {"from_widths": [4, 9]}}])[0]["shown"] == "l1-prune"
    assert summarize_records([{**rec, "label": "uniform", "method": "uniform", "pruning": None}])[0]["shown"] == "uniform"


def test_a_legend_names_a_line_by_its_label_and_the_marks_all_its_points_share():
    """Marks are a row's list (report._show), not parsed back out of its name: a sweep's label that itself says
    '(fallback)' is not marked twice, and a mark of one budget only stays out of the line's name."""
    from neuralscale.figures import shown
    fallback = [{"label": "neuralscale@1 (fallback)", "marks": []}, {"label": "neuralscale@1 (fallback)", "marks": []}]
    assert shown(fallback) == "neuralscale@1 (fallback)"
    l1 = [{"label": "l1-prune", "marks": []}, {"label": "l1-prune", "marks": ["pruned nothing"]}]
    assert shown(l1) == "l1-prune"
    both = [{"label": "neuralscale@1", "marks": ["extrapolated"]}, {"label": "neuralscale@1", "marks": ["extrapolated"]}]
    assert shown(both) == "neuralscale@1 (extrapolated)"


def test_runs_started_from_weights_have_their_own_row_and_recipe(tmp_path):
    """A run of `train --init-from` (another run's weights, then its own recipe) joined the row of the same label
    trained from scratch, and the report stated the scratch recipe for both (a documentation audit). Now its row is
    set apart, marked `(from weights)`, compared with uniform started so, and the report says how it trained; a
    folder of such runs only still has its comparisons and its whole recipe; two such recipes are refused."""
    from neuralscale.report import build_report
    from neuralscale.spec import RunSpec
    uni = [d.name for d in sorted(STUDY.glob("uniform-r0.0625-s*"))]
    law = [d.name for d in sorted(STUDY.glob("neuralscale-1-r0.0625-s*"))]
    assert len(uni) == len(law) == 5

    def copy(folder: str, run: str, name: str, warm: dict | None = None) -> None:
        shutil.copytree(STUDY / run, tmp_path / folder / name)
        record = json.loads((STUDY / run / "record.json").read_text())
        if warm is not None:
            record["spec"]["init"] = {"run": str(STUDY / uni[0]), "id": uni[0]}
            record["init"] = {"from": str(STUDY / uni[0]), "from_id": uni[0], "from_widths": record["widths"]}
            for key, value in warm.items():
                record["config"][key] = record["spec"]["config"][key] = value
            record["id"] = RunSpec.from_dict(record["spec"]).id
            for seed in record["history"]:  # another outcome than the run it copies
                seed["test_acc"] = seed["test_acc"] - (0.5 if record["method"] == "uniform" else 3.0)
            for k in ("final_test_acc", "test_acc_at_best_val", "best_test_acc_original_protocol"):
                record["summary"][k] -= 0.5 if record["method"] == "uniform" else 3.0
        (tmp_path / folder / name / "record.json").write_text(json.dumps(record))

    recipe = {"epochs": 3, "lr": 0.001, "schedule": "constant"}
    for run in uni + law:
        copy("mixed", run, run)
        copy("mixed", run, "warm-" + run, recipe)
        copy("warm", run, run, recipe)
    mixed = build_report(tmp_path / "mixed", figures=False)
    rows = {r["shown"]: r for r in mixed["rows"]}
    assert sorted(rows) == ["neuralscale@1", "neuralscale@1 (from weights)", "uniform", "uniform (from weights)"]
    assert all(r["n"] == 5 for r in rows.values())
    for shown, peer in (("neuralscale@1", "uniform"), ("neuralscale@1 (from weights)", "uniform (from weights)")):
        assert rows[shown]["gap_to_uniform"] == pytest.approx(rows[shown]["mean"] - rows[peer]["mean"])
    assert rows["uniform (from weights)"]["gap_to_uniform"] is None  # uniform itself, started so
    md = (tmp_path / "mixed" / "report" / "report.md").read_text()
    epochs = json.loads((STUDY / uni[0] / "record.json").read_text())["config"]["epochs"]
    assert f"Recipe: {epochs} epochs" in md
    assert ("The rows marked `(from weights)`: started from another run's trained weights (`train --init-from`: "
            "its channels with the largest L1 norms), then trained 3 epochs at lr 0.001 (constant), each compared "
            "with uniform started so.") in md
    assert md.count("neuralscale@1 (from weights)") >= 2  # its table row and its verdict
    assert "- `neuralscale@1 (from weights)` at ratio 0.0625: **worse** than uniform (from weights) (" in md
    only = build_report(tmp_path / "warm", figures=False)  # no run from scratch: compared all the same
    (row,) = [r for r in only["rows"] if r["label"] == "neuralscale@1"]
    assert row["shown"] == "neuralscale@1 (from weights)" and row["p"] is not None
    md = (tmp_path / "warm" / "report" / "report.md").read_text()
    assert "Recipe: 3 epochs, batch" in md and "neuralscale@1 (from weights)" in md
    assert json.loads((tmp_path / "warm" / "report" / "summary.json").read_text())["runs"][0]["start"] == "weights"
    copy("mixed", law[0], "warm2", {"epochs": 2, "lr": 0.001, "schedule": "constant"})
    r = run_cli("report", str(tmp_path / "mixed"), "--no-figures", "--force")
    assert r.returncode == 2 and "started from weights and trained with 2 different recipes" in r.stderr, r.stderr
