"""report.py: the report rebuilt from run records alone, its figures, its page in a browser, and how it names budgets."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import pytest

import neuralscale as ns
from neuralscale.budget import Budget
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
    methods = (out / "report" / "report.md").read_text()  # `pruned` says where its descent's pruning ended
    assert "- `pruned`: ablation: iteration 1's widths where its pruning ended (at 80% of the channels, or " \
        "earlier), rescaled uniformly" in methods, methods  # (--prune-fraction 0.8; it said 95%)
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
    assert "Figures left out (--no-figures)." in (tmp_path / "quick" / "report.md").read_text()  # and says so
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
    # the runs removed are still in sweep.json's plan: said, as a sweep stopped before them would leave it (a
    # reviewer: the report read as nearly complete)
    assert "0 unfinished; 10 more planned in sweep.json not started." in md



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
    # drawn again, the same bytes (a walkthrough: an SVG's date and random ids changed them each time)
    drawn = {p: p.read_bytes() for p in paths + [p.with_suffix(".pdf") for p in paths]}
    descent_figures(out, ns.space("vgg11", "synthetic"), dest=tmp_path, formats=("svg", "pdf"))
    assert all(p.read_bytes() == b for p, b in drawn.items())
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
    assert "band = min-max over seeds" in (store / "report" / "acc_vs_params.svg").read_text()  # --band's
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
    assert (store / "report" / "acc_vs_params.png").exists()
    # a rebuild without figures leaves none of the earlier build's (they were left, taken for this report's: a
    # walkthrough of the docs)
    assert run_cli("report", str(store), "--no-figures").returncode == 0
    assert sorted(p.name for p in (store / "report").iterdir() if not p.name.startswith(".")) == \
        ["mine.svg", "report.html", "report.md", "summary.json"]
    # only the files a build drew (its summary lists them) go: a figure-named file of one's own, in a folder a report
    # was forced into, stays however often it is rebuilt (a review: the second build removed it)
    paper = tmp_path / "paper"
    paper.mkdir()
    for name in ("notes.txt", "heatmap.svg", "growth_iteration_01.pdf", "acc_vs_macs.png"):
        (paper / name).write_text("mine")
    for _ in range(2):
        assert run_cli("report", str(store), "--out", str(paper), "--force").returncode == 0
    assert all((paper / name).read_text() == "mine" for name in ("notes.txt", "heatmap.svg",
                                                                  "growth_iteration_01.pdf"))
    assert (paper / "acc_vs_params.png").is_file()  # (drawn: acc_vs_macs.png, drawn too, is the report's now)
    assert run_cli("report", str(store), "--out", str(paper), "--no-figures", "--force").returncode == 0
    assert not (paper / "acc_vs_params.png").exists() and (paper / "heatmap.svg").read_text() == "mine"
    # a report built before summaries listed their figures: its figures, however named, go (a review: they stayed)
    assert run_cli("report", str(store)).returncode == 0 and (store / "report" / "acc_vs_params.png").exists()
    summary = json.loads((store / "report" / "summary.json").read_text())
    del summary["figure_files"]
    (store / "report" / "summary.json").write_text(json.dumps(summary))
    assert run_cli("report", str(store), "--no-figures").returncode == 0
    assert not list((store / "report").glob("acc_vs_*"))
    # a build stopped while drawing: the figures it drew are the report's and go with the next build that does not
    # draw them; one's own figure-named files stay (they were left, listed nowhere: a review)
    from neuralscale import report

    def stop(*a, **k):
        raise KeyboardInterrupt
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(report, "widths_figure", stop)  # drawn after the accuracy figures
        with pytest.raises(KeyboardInterrupt):
            report.build_report(store, out=paper, force=True, formats=("png", "svg"))
    assert (paper / "acc_vs_params.svg").is_file()
    assert report.build_report(store, out=paper, force=True, figures=False)["markdown"].is_file()
    assert sorted(p.name for p in paper.iterdir() if not p.name.startswith(".")) == \
        ["growth_iteration_01.pdf", "heatmap.svg", "notes.txt", "report.html", "report.md", "summary.json"]
    assert (paper / "heatmap.svg").read_text() == "mine"
    # stopped after drawing, while writing its pages (the HTML, the summary): the same; and a file of one's own that
    # the build drew over is the report's figure now (a review: the finished page was written first, and the next
    # build took the earlier summary's list, or every figure-named file, one's own too, for want of one)
    for where in ("widths_figure", "render_html", "atomic_write_json"):  # (acc_vs_params.png drawn before each)
        fresh = tmp_path / f"fresh-{where}"
        fresh.mkdir()
        (fresh / "heatmap.svg").write_text("mine")
        (fresh / "acc_vs_params.png").write_text("mine")
        (fresh / "acc_vs_macs.svg").symlink_to(tmp_path / "nowhere")  # a link to nowhere stopped the build (a review)
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(report, where, stop)
            with pytest.raises(KeyboardInterrupt):
                report.build_report(store, out=fresh, force=True, formats=("png", "svg"))
        report.build_report(store, out=fresh, force=True, figures=False)
        assert sorted(p.name for p in fresh.iterdir() if not p.name.startswith(".")) == \
            ["heatmap.svg", "report.html", "report.md", "summary.json"], where
        assert (fresh / "heatmap.svg").read_text() == "mine"


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
    assert "0.00M" not in "".join(titles) and titles[-1].endswith("M params)")  # a small budget in whole units
    # a law read beyond the sizes it was fitted on is starred where it is (a walkthrough: unmarked), as the solver
    # says for each law at each budget
    from neuralscale.scaling import solve
    start = figures.DescentDir(tiny_descent[0]).start_space(sp)
    laws = figures.DescentDir(tiny_descent[0]).laws()
    panels = [ax for ax in drawn[-1].axes if ax.get_title()]
    for ax, ratio in zip(panels, (0.25, 0.5, 1.0, 2.0)):
        budget = start.params(start.uniform(ratio))
        beyond = [any(w.startswith("extrapolated") for w in solve(law, start, budget).warnings) for law in laws]
        assert [t.get_text() for t in ax.get_xticklabels()] == [f"{law.iteration}{'*' * b}"
                                                                for law, b in zip(laws, beyond)]
        assert ("beyond the sizes it was fitted on" in ax.get_xlabel()) == any(beyond)
    assert any("*" in t.get_text() for ax in panels for t in ax.get_xticklabels())  # (the tiny descent's 2x)
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
                "budget": Budget.of_ratio(0.25).to_dict(), "widths": [4 if label == "uniform" else 5],
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
    # one legend for every panel's methods (a walkthrough: the last panel's alone, which held only the full-width
    # network the pruning baselines start from, left the methods of the others unlabelled)
    assert [t.get_text() for t in widths.legends[0].get_texts()] == ["uniform", "morphnet", "neuralscale@1"]
    figures.widths_figure(rows + [{**rows[0], "budget_key": ["ratio", 4.0], "widths": [32] * 8}], None, tmp_path,
                          colors)
    assert len(drawn[-1].axes) == 3 and [t.get_text() for t in drawn[-1].legends[0].get_texts()] == [
        "uniform", "morphnet", "neuralscale@1"]
    # a line with a mark at one budget is one entry, named as the accuracy figure names it (a review: twice), and
    # the legend is under the panels, clear of them, with one budget and long names too (a review: over the panel)
    marked = [{**r, "shown": r["label"] + " (pruned nothing)" * (r["budget_key"][1] == 1.0),
               "marks": ["pruned nothing"] * (r["budget_key"][1] == 1.0)} for r in rows]
    figures.widths_figure(marked, None, tmp_path, colors)
    assert [t.get_text() for t in drawn[-1].legends[0].get_texts()] == ["uniform", "morphnet", "neuralscale@1"]
    long = [{**r, "label": f"neuralscale-macs@{i} (extrapolated)", "shown": f"neuralscale-macs@{i} (extrapolated)"}
            for i, r in enumerate(rows[:1] * 12)]
    many = figures.method_colors([r["label"] for r in long])
    figures.widths_figure(long, None, tmp_path, many)
    fig = drawn[-1]
    fig.canvas.draw()
    legend = fig.legends[0].get_window_extent()
    assert len(fig.legends[0].get_texts()) == 12
    assert all(legend.y1 <= ax.get_window_extent().y0 for ax in fig.axes), "the legend overlaps a panel"
    assert legend.x0 >= 0 and legend.x1 <= fig.bbox.x1, "the legend is cut at the figure's edge"


def test_the_widths_figures_panels_follow_the_tables_budget_order(tmp_path, monkeypatch):
    """The report lists a share among the amounts of its metric (3% of the base latency, 0.2495 ms, before 0.3 ms);
    the widths figure sorted its panels by budget key, the share after every amount. Both sort by budget.key_order."""
    from neuralscale import figures
    drawn, real_save = [], figures._save
    monkeypatch.setattr(figures, "_save",
                        lambda fig, path, *a, **k: (drawn.append(fig), real_save(fig, path, *a, **k))[1])
    rows = [dict(label="uniform", shown="uniform", budget_key=key, budget_amount=amount, widths=[4] * 8)
            for key, amount in ((["latency", 0.3], 0.3), (["latency share", 0.03], 0.2495))]
    figures.widths_figure(rows, None, tmp_path, figures.method_colors(["uniform"]))
    assert [ax.get_title() for ax in drawn[0].axes] == ["3% of the base latency", "0.3 ms"]
    assert drawn[0]._suptitle.get_text() == "per-layer widths of each method at each budget"
    # named as the other figures are (a walkthrough: the one title without the model)
    figures.widths_figure(rows, None, tmp_path, figures.method_colors(["uniform"]), subject="VGG11 on CIFAR-10")
    assert drawn[1]._suptitle.get_text() == "VGG11 on CIFAR-10: per-layer widths of each method at each budget"


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


def test_a_train_run_of_a_law_read_outside_its_rows_records_so_and_a_report_of_train_runs_marks_it(
        tiny_descent, tmp_path, capsys):
    """The README: `train` says an extrapolated law in `--json` and the run's record, and a report marks such
    rows. It said it only in a warning: its record did not, and a report of a folder of `train` runs (which knows
    no descent unless given --descent) never marked the row."""
    from neuralscale import cli
    from neuralscale.report import build_report
    descent = str(tiny_descent[0])
    base = ["train", "--model", "vgg11", "--dataset", "synthetic", "--method", "neuralscale", "--from", descent,
            "--epochs", "1", "--train-subset", "64", "--test-subset", "16", "--batch-size", "32", "--device", "cpu",
            "--quiet", "--json"]
    said = {}
    for name, budget in (("far", "2%"), ("near", "20000")):  # far above the rows the tiny descent recorded
        capsys.readouterr()
        with warnings.catch_warnings(record=True):
            warnings.simplefilter("always")
            assert cli.main([*base, "--params", budget, "--seed", "0", "--out", str(tmp_path / "runs" / name)]) == 0
        said[name] = json.loads(capsys.readouterr().out)["extrapolated"]
    assert said == {"far": True, "near": False}
    records = {name: json.loads((tmp_path / "runs" / name / "record.json").read_text()) for name in said}
    assert records["far"]["extrapolated"] is True and "extrapolated" not in records["near"]  # (others as before)
    assert cli.main([*base, "--params", "2%", "--seed", "0", "--out", str(tmp_path / "runs" / "far")]) == 0
    assert json.loads(capsys.readouterr().out)["extrapolated"] is True  # the finished run, returned
    before = tmp_path / "before"  # one finished before records said it: --json says it, its record is not rewritten
    shutil.copytree(tmp_path / "runs" / "far", before)
    (before / "record.json").write_text(json.dumps({k: v for k, v in records["far"].items() if k != "extrapolated"}))
    written = (before / "record.json").read_bytes()
    assert cli.main([*base, "--params", "2%", "--seed", "0", "--out", str(before)]) == 0
    assert json.loads(capsys.readouterr().out)["extrapolated"] is True and (before / "record.json").read_bytes() == written
    md = Path(build_report(tmp_path / "runs", figures=False)["markdown"]).read_text()
    rows = {cells[2]: cells[1] for line in md.splitlines() if line.startswith("| neuralscale@")
            for cells in [[c.strip() for c in line.split("|")]]}  # budget: the row's name, in each table
    assert set(rows) == {"2% of the base params", "20,000 params"}, rows
    assert rows["2% of the base params"].endswith(" (extrapolated)") and "extrapolated" not in rows["20,000 params"]
    assert "A row marked `(extrapolated)`" in md


def test_a_latency_law_read_outside_the_widths_it_was_fitted_on_is_marked_extrapolated(tiny_descent, tmp_path):
    """A latency law's network is not measured where the report checks it: its layers are read against the widths
    the law gives at its range's ends, as `scale` (and so the sweep) read them: a law of exponent 4 whose largest row is
    1/8 width, solved for 1/2 width's parameters at tau 1.4x that row's (inside twice its range), gives layers of
    4x its widths there, and is marked; one solved at that row's parameters is not."""
    import sys
    from neuralscale.methods import scale
    from neuralscale.scaling import ScalingLaw
    report = sys.modules["neuralscale.report"]
    sp = ns.space("vgg11", "synthetic")
    d = report.DescentDir(shutil.copytree(tiny_descent[0], tmp_path / "d"))
    cfg = json.loads(d.config_path.read_text())
    cfg["descent"]["objective"] = "latency"
    d.config_path.write_text(json.dumps(cfg))
    fits = json.loads(d.fits_path.read_text())
    fitted, high = sp.uniform(0.125), 0.28
    fits["laws"][-1] = {**fits["laws"][-1], **ScalingLaw(
        "vgg11", "synthetic", list(sp.layer_names), [w / high ** 4 for w in fitted], [4.0] * len(sp),
        objective="latency", tau_range=[high / 1.5, high], iteration=fits["laws"][-1]["iteration"]).to_dict()}
    fits["descent"] = d.fingerprint()  # the latency descent's configuration's
    d.fits_path.write_text(json.dumps(fits))
    label = report.law_label(fits["laws"][-1]["iteration"], "latency")
    for ratio, marked in ((0.5, True), (0.125, False)):
        budget = Budget.of_ratio(ratio)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            found = scale(sp, "neuralscale", budget, source=d.path, convert=True)
        assert found["extrapolated"] is marked, found["warnings"]
        row = {"method": "neuralscale", "fallback": False, "label": label, "shown": label, "marks": [],
               "budget_key": list(budget.key), "widths": found["widths"]}
        report._mark_extrapolated([row], [d.path], sp, {})
        assert row["extrapolated"] is marked and row["shown"].endswith(" (extrapolated)") == marked, ratio


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
                elif key in ("widths", "model"):  # the same label at the same budget, other widths (a law of
                    record[key] = record["spec"][key] = value  # another descent); a run of another model
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
    # the same images split with another validation fraction (a run started from weights may have one: its recipe
    # is compared with its own kind's) are not other data (a review: "its files changed" was said of them)
    split = folder("split", {a: {}, b: {"data": {"train": 48000, "val": 12000, "test": 10000}}})
    assert build_report(split, figures=False)["rows"][0]["n"] == 2
    # with a training subset, N trains whatever the validation fraction, and validation is cut from the rest (a
    # review): only the test count says the files
    from neuralscale.report import _check_same_data
    rec = json.loads((STUDY / a / "record.json").read_text())
    sub = {**rec, "spec": {**rec["spec"], "data": {"train": 200}}}
    _check_same_data(tmp_path, [{**sub, "data": {"train": 200, "val": 22, "test": 10000}},
                                {**sub, "id": "b", "data": {"train": 200, "val": 50, "test": 10000}}])
    with pytest.raises(ns.NeuralscaleError, match=r"\(runs .* and b: test 10000 against test 9000\)"):
        _check_same_data(tmp_path, [{**sub, "data": {"train": 200, "val": 22, "test": 10000}},
                                    {**sub, "id": "b", "data": {"train": 200, "val": 22, "test": 9000}}])
    # an image replaced, the counts as they were: the digests differ (a run recorded before digests were, beside
    # either, has none to compare; one with a digest is compared with the next that has one)
    d = {"train": 200, "val": 22, "test": 10000}
    _check_same_data(tmp_path, [{**sub, "data": d}, {**sub, "id": "b", "data": {**d, "digest": "1" * 16}},
                                {**sub, "id": "c", "data": {**d, "digest": "1" * 16}}])
    with pytest.raises(ns.NeuralscaleError, match=r"different data \(runs b and c: test 10000, digest 1{16} against "
                                                  r"test 10000, digest 2{16}\)"):
        _check_same_data(tmp_path, [{**sub, "data": d}, {**sub, "id": "b", "data": {**d, "digest": "1" * 16}},
                                    {**sub, "id": "c", "data": {**d, "digest": "2" * 16}}])
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
             # Fashion-MNIST's files replaced by others between two seeds (an image folder added to, more likely):
             # pooled as one row, it gave a mean of two datasets (an adversarial pass)
             "data": ({a: {}, b: {"data": {"train": 27000, "val": 3000, "test": 10000}}},
                      f"holds runs of one dataset trained on different data (runs {a} and {b}: "
                      "training 60000, test 10000 against training 30000, test 10000): its files changed"),
             # a count edited in one record, the other's its widths' (an adversarial pass: averaged into its row)
             "count": ({a: {}, b: {"params": 5}}, f"the record of run {b} in "),
             # neuralscale@15 from two descents, say: one seed twice, not a second seed
             "twice": ({a: {}, f"{a}+copy": {"widths": [4, 8, 16, 16, 32, 32, 32, 31]}},
                       "uniform at ratio 0.0625 with seed 0 twice (runs ")}
    for name, (edits, said) in cases.items():
        assert cli.main(["report", str(folder(name, edits)), "--no-figures"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and said in err[0], (name, err)
        assert name != "recipe" or ": epochs 20 against 30); their accuracies do not compare" in err[0], err
        assert name != "count" or "says params 5, where its widths have 36,882 (as every other run's" in err[0]
    assert cli.main(["report", str(fine / a)]) == 2
    assert "is one run's directory; report the folder" in capsys.readouterr().err
    # every run's counts other than the network here counts them (a library that builds it otherwise): the records'
    # are shown, and that said (a review: a library's upgrade would have refused every store)
    drift = folder("drift", {a: {"macs": 7}, b: {"macs": 7}})
    with pytest.warns(ns.NeuralscaleWarning, match=r"no run's parameter or MAC count .* is what vgg11 counts here for "
                                                   r"its widths \(run .*: macs 7, here 627,008\)"):
        assert build_report(drift, figures=False)["rows"][0]["macs"] == 7


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
    out = capsys.readouterr().out.splitlines()
    assert not [line for line in out if "ORIGINAL" in line]
    # the default's summary lines are headed by what they show (an audit: they said nothing of it)
    first = next(i for i, line in enumerate(out) if line.startswith(("uniform", "neuralscale@15")))
    assert out[first - 1] == "test accuracy at the best-validation epoch, mean ± std over seeds:", out


def test_a_confidence_band_is_drawn_within_what_an_accuracy_can_be():
    from neuralscale.figures import band
    two_seeds = {"mean": 97.0, "std": 3.0, "n": 2, "min": 94.0, "max": 100.0}  # t(1) = 12.7: +-27 points
    assert band(two_seeds) == (pytest.approx(97.0 - 12.706 * 3 / 2 ** 0.5, abs=0.01), 100.0)
    assert band({**two_seeds, "mean": 3.0}, "ci")[0] == 0.0 and band(two_seeds, "minmax") == (94.0, 100.0)


def test_a_copied_store_finds_the_descent_it_holds_from_wherever_it_is_read(tmp_path, monkeypatch):
    """The committed study's sweep.json records its descent as the command gave it (relative to the repository) and
    relative to the store (`descent_from_store`, from before a plan recorded one descent per objective). A copy of
    the store read from another folder finds the descent beside its runs, not none (a mutation audit: reading only
    the recorded path passed)."""
    from neuralscale.report import build_report
    params = STUDY.parent
    store = tmp_path / "copy"
    shutil.copytree(params / "descent", store / "descent")
    shutil.copy(params / "sweep.json", store / "sweep.json")
    for d in sorted(STUDY.glob("uniform-r0.0625-s[01]-*")) + sorted(STUDY.glob("neuralscale-15-r0.0625-s[01]-*")):
        shutil.copytree(d, store / "runs" / d.name)
    plan = json.loads((store / "sweep.json").read_text())["config"]
    assert plan["descent_from_store"] == "descent" and "descents_from_store" not in plan
    monkeypatch.chdir(tmp_path)  # the recorded path, relative to the repository, names nothing from here
    assert not Path(plan["descent"]).exists()
    build_report(store, figures=False)
    md = (store / "report" / "report.md").read_text()
    assert "## Descent" in md and "Each iteration of the descent the laws come from (15 finished)" in md


def test_a_verdict_sets_latencies_side_by_side_only_when_measured_on_one_device():
    """A row and uniform that measured their latency on different machines: the verdict gives no latency ratio (a
    CPU's milliseconds against a GPU's mean nothing), though both were stable; on one device it does (a mutation
    audit: leaving the device out of the condition passed)."""
    from neuralscale.report import verdicts
    gpu = {"device": "NVIDIA H100 80GB HBM3", "batches": {"1": {"median_ms": 0.5, "iqr_ms": 0.01}}}
    acc = [80.0, 81.0, 82.0]

    def rows(elsewhere: bool) -> list[dict]:  # the law's runs timed on the CPU, as uniform's, or on a GPU
        law = [_rec("neuralscale@1", s, a + 1 + s / 10, latency=(3.0, 0.1)) for s, a in enumerate(acc)]
        return summarize_records([_rec("uniform", s, a, latency=(2.0, 0.1)) for s, a in enumerate(acc)]
                                 + [{**r, "latency": gpu} if elsewhere else r for r in law])
    (same,) = verdicts(rows(False))
    assert "1.50x its latency" in same, same
    (mixed,) = verdicts(rows(True))
    assert "latency" not in mixed and "1.00x its MACs)" in mixed, mixed


def test_a_descent_named_for_a_report_must_be_one(tmp_path, capsys):
    """`report --descent nope` exited 0, a sentence in the report the only trace of the mistake."""
    from neuralscale import cli
    runs = tmp_path / "runs"
    shutil.copytree(STUDY / "uniform-r0.0625-s0-d8fa75007e", runs / "uniform-r0.0625-s0-d8fa75007e")
    assert cli.main(["report", str(runs), "--no-figures", "--descent", str(tmp_path / "nope")]) == 2
    assert f"--descent {tmp_path / 'nope'} does not exist" in capsys.readouterr().err
    assert cli.main(["report", str(runs), "--no-figures", "--descent", str(runs)]) == 2
    assert "is not a descent directory" in capsys.readouterr().err


def test_a_report_refuses_a_descent_its_runs_were_not_planned_from(tmp_path, tiny_descent, capsys):
    """`report STORE --descent OTHER`, OTHER another descent of the model, succeeded: its Laws section and descent
    table then described OTHER's laws, not the ones the runs were trained with. Refused in one line naming both; the
    same descent copied elsewhere is taken (its laws are the ones sweep.json records); and a recorded descent's
    folder that has since come to hold another descent is left out of the report, with a warning and a note."""
    from neuralscale import cli
    from helpers import TINY_DESCENT, TINY_DESCENT_TRAIN
    mine, other, store = tmp_path / "fi", tmp_path / "fd", tmp_path / "sw"
    shutil.copytree(tiny_descent[0], mine)
    ns.descend("vgg11", "synthetic", other, ns.DescentConfig(**{**TINY_DESCENT, "k": 2}),  # other pruning: other laws
               subset={"train": TINY_DESCENT_TRAIN}, progress=False)
    r = run_cli("sweep", *TINY, "--methods", "uniform,neuralscale", "--ratios", "0.0625", "--seeds", "0",
                "--epochs", "1", "--from", str(mine), "--out", str(store), "--quiet")
    assert r.returncode == 0, r.stderr
    capsys.readouterr()
    assert cli.main(["report", str(store), "--no-figures", "--descent", str(other)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"--descent {other} is not the descent" in err, err
    assert f"planned from ({mine})" in err and ("its laws of iteration(s) 1, 2 and where its iteration 1's pruning ended "
                                                 "differ from what sweep.json records") in err, err
    assert not (store / "report").exists()

    copy = tmp_path / "elsewhere" / "fi"  # the store's descent, copied: the same laws
    shutil.copytree(mine, copy)
    assert cli.main(["report", str(store), "--no-figures", "--descent", str(copy)]) == 0
    md = (store / "report" / "report.md").read_text()
    assert "## Laws" in md and "`neuralscale@2`: fitted against" in md and "## Descent" in md
    assert "warning" not in capsys.readouterr().err

    shutil.rmtree(mine)  # the recorded folder (descents_from_store) now holds the other descent
    shutil.copytree(other, mine)
    assert cli.main(["report", str(store), "--no-figures", "--force"]) == 0
    err = capsys.readouterr().err
    note = f"The descent directory {mine} is not the one the runs were planned from (its laws of iteration(s) 1, 2"
    assert f"warning: {note}" in err, err
    md = (store / "report" / "report.md").read_text()
    assert note in md and "## Laws" not in md and "## Descent" not in md


def test_a_report_of_runs_planned_without_a_descent_takes_any_descent(tmp_path, tiny_descent):
    """A store planned without --from records no law (its runs, uniform, use none): nothing to check a --descent
    against, so the one named is shown (docs/GUIDE.md says so)."""
    from neuralscale.report import build_report
    store = tmp_path / "sw"
    r = run_cli("sweep", *TINY, "--methods", "uniform", "--ratios", "0.0625", "--seeds", "0", "--epochs", "1",
                "--out", str(store), "--quiet")
    assert r.returncode == 0, r.stderr
    assert json.loads((store / "sweep.json").read_text())["recipe"]["laws"] == {}
    build_report(store, descent=tiny_descent[0], figures=False)
    assert "## Descent" in (store / "report" / "report.md").read_text()


def test_a_descent_is_the_stores_when_it_holds_the_laws_its_recipe_records(tiny_descent):
    """report.not_the_stores, on the recipe's law hashes (sweep.law_fingerprints): the descent continued since (the
    store recorded fewer iterations) is the store's; a recorded iteration whose law differs, a descent of an
    objective the store has none of, or one holding none of the recorded laws is not; a store recording no laws
    takes any."""
    from neuralscale.report import not_the_stores
    from neuralscale.sweep import law_fingerprints
    from neuralscale.descent import DescentDir
    path = tiny_descent[0]
    laws = law_fingerprints(DescentDir(path))
    assert sorted(laws) == ["1", "2", "pruned"]
    assert not_the_stores(path, laws) == "" and not_the_stores(path, {}) == "" and not_the_stores(path, None) == ""
    assert not_the_stores(path, {k: v for k, v in laws.items() if k != "2"}) == ""
    assert not_the_stores(path, {**laws, "2": "0" * 12}) == \
        "its laws of iteration(s) 2 differ from what sweep.json records"
    assert not_the_stores(path, {"macs@1": laws["1"]}) == \
        "its objective is params, and the runs were planned from no descent of that objective"
    assert not_the_stores(path, {"3": laws["1"]}) == "it holds none of the laws sweep.json records"


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
    assert shown(l1) == "l1-prune" and shown(l1[::-1]) == "l1-prune"  # whichever budget comes first
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


# --- hand-made records: what a reader of the table and the verdicts sees, each number in its place ---------------

def _rec(label, seed, acc, final=None, ratio=0.25, params=1000, macs=10_000, latency=None, **extra):
    """A finished run's record as the report reads it (the fields summarize_records and the verdicts use)."""
    method = "uniform" if label == "uniform-sparse" else label.split("@")[0].split(" ")[0]  # as a sweep names it
    r = {"status": "finished", "label": label, "method": method, "seed": seed, "params": params,
         "macs": macs, "budget": Budget.of_ratio(ratio).to_dict(),
         "widths": [4, 8] if method == "uniform" else [4, 9],  # (uniform's widths: uniform's network, no comparison)
         "summary": {"test_acc_at_best_val": acc, "final_test_acc": acc if final is None else final}}
    if latency is not None:  # (median, iqr) at batch 1
        r["latency"] = {"device": "cpu (x86_64, 1 threads)",
                        "batches": {"1": {"median_ms": latency[0], "iqr_ms": latency[1]}}}
    return {**r, **extra}

def test_a_row_counts_each_finished_run_with_its_accuracy_once_in_seed_order():
    """Only finished runs with a finite accuracy join a row (a run that failed after training, while measuring its
    latency, keeps its summary; a NaN accuracy is no score); its seeds are listed in order whatever the records'
    order; the runs left out for want of the accuracy are the finished ones only."""
    from neuralscale.report import unmeasured
    late_failure = {**_rec("uniform", 2, 99.0), "status": "failed", "error": "RuntimeError: latency"}
    early_failure = {"status": "failed", "label": "uniform", "seed": 4, "error": "RuntimeError: data"}
    nan = _rec("uniform", 3, float("nan"), final=79.0)
    records = [_rec("uniform", 1, 84.0, final=70.0, wall_s=5.0), late_failure, _rec("uniform", 0, 80.0, wall_s=7.0),
               nan, early_failure]
    (row,) = summarize_records(records)
    assert row["n"] == 2 and row["seeds"] == [0, 1] and sorted(row["values"]) == [80.0, 84.0]
    assert row["mean"] == pytest.approx(82.0) and row["by_seed"] == {1: 84.0, 0: 80.0}
    assert row["final_mean"] == pytest.approx(75.0) and row["wall_s"] == pytest.approx(12.0)
    assert unmeasured(records, "best-val") == [nan]
    (final,) = summarize_records(records, "final")  # the NaN is best-val's only: the final epoch counts that run
    assert final["seeds"] == [0, 1, 3] and final["n"] == 3


def test_budgets_are_listed_by_their_amounts_a_share_among_them():
    """A latency share (3% of the base latency, resolved to 0.2495 ms when planned) was listed after every amount
    of its metric (0.3 ms), as its key's kind sorts after the amounts'."""
    from neuralscale.budget import Budget

    def rec(budget: Budget, seed=0):
        return {**_rec("uniform", seed, 80.0), "budget": budget.to_dict()}
    rows = summarize_records([rec(Budget("latency", 0.3)), rec(Budget("latency", 0.2495, share=0.03)),
                              rec(Budget("latency", 0.1)), rec(Budget.of_ratio(0.5)), rec(Budget.of_ratio(0.25))])
    assert [r["budget"] for r in rows] == ["0.1 ms", "3% of the base latency", "0.3 ms", "ratio 0.25", "ratio 0.5"]


def test_a_rows_means_are_means_and_one_seed_has_a_spread_of_0():
    """Three seeds whose mean and median differ: the row's means are the means, of the selected accuracy and of
    the final epoch's; one seed's standard deviations are 0.0, a number summary.json can hold, not None (a mutation
    audit: a median for the final mean, and None for one seed's spread, passed)."""
    (row,) = summarize_records([_rec("uniform", s, a, final=f) for s, (a, f) in
                                enumerate([(80.0, 70.0), (81.0, 71.0), (89.0, 80.0)])])
    assert row["mean"] == pytest.approx(250 / 3) and row["final_mean"] == pytest.approx(221 / 3)
    (one,) = summarize_records([_rec("uniform", 0, 80.0, final=70.0)])
    assert (one["std"], one["final_std"]) == (0.0, 0.0)


def test_a_row_whose_seeds_pruned_different_networks_shows_their_mean_cost_and_says_so():
    """A pruning baseline prunes each seed's network its own way: the row's params and MACs were the first
    record's (whichever the folder listed first; 5% off the mean in MACs in a study's slimming row). They are now
    the mean of its runs', marked as such, and the widths table names the seed whose widths it shows and the
    range of the others'; a row whose seeds share a network is shown as before."""
    from neuralscale.report import _table, _widths_cell
    records = [_rec("slimming", 2, 80.0, params=1030, macs=9_000, widths=[4, 9]),
               _rec("slimming", 0, 81.0, params=1000, macs=12_000, widths=[5, 8]),
               _rec("slimming", 1, 82.0, params=1000, macs=12_000, widths=[5, 8])]
    (row,) = summarize_records(records)
    assert (row["params"], row["macs"], row["params_range"]) == (1010, 11_000, [1000, 1030])
    assert (row["widths"], row["widths_seed"]) == ([5, 8], 0)  # the lowest seed's, whatever the records' order
    assert _table([row])[1][0][3] == "1,010 (mean)"
    assert _widths_cell(row) == "5,8 (seed 0's; the seeds' networks differ: 1,000 to 1,030 params)"
    (same,) = summarize_records([_rec("uniform", s, 80.0 + s) for s in (1, 0)])
    assert same["params_range"] is None and _table([same])[1][0][3] == "1,000" and _widths_cell(same) == "4,8"


def test_a_rows_latency_is_the_median_of_its_runs_medians_with_the_median_spread():
    """Three runs' batch-1 latencies: the row's latency is their median (not the mean an outlier pulls), its IQR
    the median of theirs, and the table shows both; a run of a row that measured no latency leaves the column in."""
    from neuralscale.report import _table, latency_device
    rows = summarize_records([_rec("uniform", s, 80.0 + s, latency=lat)
                              for s, lat in enumerate([(1.0, 0.1), (2.0, 0.3), (6.0, 0.2)])]
                             + [_rec("morphnet", 0, 81.0, latency=(3.0, 0.1)), _rec("morphnet", 1, 82.0)])
    uni = next(r for r in rows if r["label"] == "uniform")
    assert (uni["latency_ms"], uni["latency_iqr_ms"]) == (pytest.approx(2.0), pytest.approx(0.2))
    assert latency_device(rows) == "cpu (x86_64, 1 threads)"
    head, body = _table(rows)
    assert "latency (ms)" in head
    cells = dict(zip(head, next(b for b in body if b[0] == "uniform")))
    assert cells["latency (ms)"] == "2.00 (IQR 0.20)"


def test_a_table_row_shows_each_number_in_its_column_rounded_as_its_head_says():
    """Every cell of a row of two seeds against uniform: label, budget, seeds, parameters with thousands'
    separators, MACs in millions, the selected and the final epoch's mean ± std, the Welch gaps of each (the final
    epoch's on the final accuracies) and the paired gap, and the p-value; the selected accuracy named in the heads."""
    from neuralscale.report import _table, fmt_gap, fmt_p
    from neuralscale.stats import paired_gap, welch_gap
    uni = [_rec("uniform", s, a, final=f, params=12_345, macs=6_780_000) for s, (a, f) in enumerate([(80.0, 79.0), (84.0, 81.0)])]
    law = [_rec("morphnet", s, a, final=f, params=12_000, macs=5_500_000)
           for s, (a, f) in enumerate([(81.0, 75.0), (85.5, 76.0)])]
    rows = summarize_records(uni + law, "final")
    head, body = _table(rows)
    assert head == ["method", "budget", "seeds", "params", "MACs (M)", "test acc (final epoch)", "final-epoch test acc",
                    "gap to uniform (final epoch) [95% CI]", "gap to uniform (final epoch) [95% CI]",
                    "gap, paired by seed (final epoch) [95% CI]", "p (holds: Holm)"]
    rows = summarize_records(uni + law)
    head, body = _table(rows)
    assert head[5:] == ["test acc (sel.)", "final-epoch test acc", "gap to uniform (sel.) [95% CI]",
                        "gap to uniform (final epoch) [95% CI]", "gap, paired by seed (sel.) [95% CI]",
                        "p (holds: Holm)"]
    row = next(r for r in rows if r["label"] == "morphnet")
    assert row["final_gap"] == pytest.approx(75.5 - 80.0)
    assert body == [
        ["uniform", "ratio 0.25", "2", "12,345", "6.78", "82.00 ± 2.83", "80.00 ± 1.41", "", "", "", ""],
        ["morphnet", "ratio 0.25", "2", "12,000", "5.50", "83.25 ± 3.18", "75.50 ± 0.71",
         fmt_gap(*welch_gap([81.0, 85.5], [80.0, 84.0])), fmt_gap(*welch_gap([75.0, 76.0], [79.0, 81.0])),
         fmt_gap(*paired_gap({0: 81.0, 1: 85.5}, {0: 80.0, 1: 84.0})[:2]), fmt_p(row)]]
    assert body[1][8].startswith("-4.50 [") and body[1][9].startswith("+1.25 [") and body[1][10]
    # uniform's third seed has no morphnet run to pair with: the paired column pairs seeds 0 and 1 only
    rows = summarize_records(uni + [_rec("uniform", 2, 90.0, final=80.0, params=12_345, macs=6_780_000)] + law)
    cells = _table(rows)[1][1]
    assert cells[7] == fmt_gap(*welch_gap([81.0, 85.5], [80.0, 84.0, 90.0]))
    assert cells[9] == fmt_gap(*paired_gap({0: 81.0, 1: 85.5}, {0: 80.0, 1: 84.0, 2: 90.0})[:2])
    assert cells[9].startswith("+1.25 [")


def test_rows_are_grouped_by_kind_of_budget_then_amount_then_method():
    """A store of ratio and parameter budgets: the rows of each kind stay together (params before ratio), each kind
    in increasing amount, uniform first within a budget."""
    recs = [_rec(label, 0, 80.0, **budget) for label in ("morphnet", "uniform")
            for budget in ({"ratio": 0.5}, {"ratio": 0.25}, {"budget": Budget("params", value=300.0).to_dict()})]
    assert [(r["budget_key"], r["label"]) for r in summarize_records(recs)] == [
        (["params", 300.0], "uniform"), (["params", 300.0], "morphnet"), (["ratio", 0.25], "uniform"),
        (["ratio", 0.25], "morphnet"), (["ratio", 0.5], "uniform"), (["ratio", 0.5], "morphnet")]


def test_summary_json_holds_the_report_and_every_runs_own_fields_and_out_is_where_it_is_written(tmp_path):
    """summary.json: the model, dataset, accuracy and where the report is; each row's seeds (in order) and its runs'
    summed wall time; each run (a failed one too) with how it started, its widths, latency, best-validation epoch
    and error. The report goes to --out, not beside the store; a folder of other files takes it only with force."""
    from neuralscale.errors import NeuralscaleError
    from neuralscale.report import build_report
    runs = tmp_path / "runs"
    names = [d.name for d in sorted(STUDY.glob("uniform-r0.0625-s*"))][:3]
    for name in names:
        shutil.copytree(STUDY / name, runs / name)
    failed = runs / names[2] / "record.json"
    record = json.loads(failed.read_text())
    record.update(status="failed", error="RuntimeError: out of memory")
    failed.write_text(json.dumps(record))
    with pytest.raises(NeuralscaleError, match="unknown accuracy 'bogus'"):
        build_report(runs, accuracy="bogus", figures=False)
    with pytest.raises(NeuralscaleError, match="unknown accuracy 'bogus'"):
        summarize_records([], "bogus")
    out = tmp_path / "elsewhere"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(NeuralscaleError, match="not a report"):
        build_report(runs, out=out, accuracy="final", figures=False)
    built = build_report(runs, out=out, accuracy="final", figures=False, force=True)
    assert not (runs / "report").exists() and built["summary"] == out / "summary.json"
    summary = json.loads((out / "summary.json").read_text())
    records = [json.loads((runs / n / "record.json").read_text()) for n in names]
    assert (summary["model"], summary["dataset"], summary["accuracy"]) == ("vgg11", "fashionmnist", "final")
    assert summary["store"] == str(runs) and summary["report"] == str(out / "report.md")
    assert summary["html"] == str(out / "report.html")
    (row,) = summary["rows"]
    assert row["seeds"] == [0, 1] and row["n"] == 2 and row["accuracy"] == "final"
    assert row["wall_s"] == pytest.approx(records[0]["wall_s"] + records[1]["wall_s"])
    assert [r["id"] for r in summary["runs"]] == names
    for run, record in zip(summary["runs"], records):
        assert run["start"] == "scratch" and run["widths"] == record["widths"] and run["seed"] == record["seed"]
        assert run["latency_ms"] == record["latency"]["batches"]["1"]["median_ms"]
        assert run["best_val_epoch"] == record["summary"]["best_val_epoch"] and run["status"] == record["status"]
        assert run["error"] == record.get("error")
    assert summary["runs"][2]["error"] == "RuntimeError: out of memory"
    md = (out / "report.md").read_text()  # no selection to describe at the final epoch; the widths table
    assert "Selection on" not in md and f"| uniform | ratio 0.0625 | {','.join(map(str, records[0]['widths']))} |" in md


def test_a_store_without_a_row_to_report_is_refused_with_what_it_holds(tmp_path):
    """An empty folder, one whose runs are all failed or unfinished (their statuses said), one whose only finished
    run has no best-validation epoch (counted, with the way to report it), and a run's own directory."""
    from neuralscale.errors import NeuralscaleError
    from neuralscale.report import build_report
    names = [d.name for d in sorted(STUDY.glob("uniform-r0.0625-s*"))][:3]

    def store(name: str, edits: list[dict]) -> Path:
        for run, edit in zip(names, edits):
            shutil.copytree(STUDY / run, tmp_path / name / run)
            record = json.loads((STUDY / run / "record.json").read_text())
            record.update(edit.get("record", {}))
            record["summary"].update(edit.get("summary", {}))
            (tmp_path / name / run / "record.json").write_text(json.dumps(record))
        return tmp_path / name
    (tmp_path / "empty").mkdir()
    with pytest.raises(NeuralscaleError, match="empty holds no run records$"):
        build_report(tmp_path / "empty", figures=False)
    unfinished = store("unfinished", [{"record": {"status": "failed", "error": "x"}}, {"record": {"status": "running"}}])
    with pytest.raises(NeuralscaleError, match=r"holds no finished runs yet \(2 record\(s\): failed, running\)$"):
        build_report(unfinished, figures=False)
    no_val = store("noval", [{"summary": {"test_acc_at_best_val": None, "best_val_epoch": None}},
                             {"record": {"status": "failed", "error": "x"}}])
    with pytest.raises(NeuralscaleError, match=r"holds 1 finished run\(s\), none with a test accuracy at the "
                                               r"best-validation epoch \(trained without validation images: none asked for, or a split too "
                                               r"small to hold any\): "
                                               r"report them with --accuracy final$"):
        build_report(no_val, figures=False)
    assert build_report(no_val, accuracy="final", figures=False)["rows"][0]["n"] == 1
    partly = store("partly", [{"summary": {"test_acc_at_best_val": None, "best_val_epoch": None}}, {}])
    md = build_report(partly, figures=False)["markdown"].read_text()
    assert " **Left out**: 1 finished run(s) without a test accuracy at the best-validation epoch (uniform" in md
    with pytest.raises(NeuralscaleError, match="is one run's directory; report the folder"):
        build_report(no_val / names[0], figures=False)


def test_a_failed_run_beside_its_finished_retry_is_no_second_seed_and_says_nothing_of_the_recipe():
    """A failed run's record (another recipe, a best-validation epoch of its own) beside the finished run of the
    same label, budget and seed: not refused as one seed twice, and neither the recipe's sentence nor the
    selection's reads it; augmentation off is said so; the page escapes the text it renders."""
    from neuralscale.report import _recipe_text, _selection_text, check_comparable, render_html
    recipe = {"epochs": 20, "batch_size": 128, "lr": 0.1, "schedule": "step", "momentum": 0.9, "weight_decay": 0.0,
              "augment": False}
    done = {**_rec("uniform", 0, 80.0), "config": recipe, "history": [{}] * 20}
    done["summary"]["best_val_epoch"] = 5
    failed = {**_rec("uniform", 0, 80.0), "status": "failed", "id": "x", "config": {**recipe, "epochs": 99}}
    failed["summary"] = {"best_val_epoch": 99}
    check_comparable(Path("s"), [{**failed, "config": recipe}, {**done, "id": "y"}])  # (its recipe: the same)
    assert _recipe_text([failed, done]).startswith("Recipe: 20 epochs, batch 128, lr 0.1 (step), momentum 0.9, "
                                                   "weight decay 0.0, augmentation off.")
    assert _selection_text([failed, done]).endswith("in 0 of 1 runs; over all runs it fell at epochs 5-5 (median 5).")
    page = render_html([("p", "a < b & `c`")], "t")
    assert "<p>a &lt; b &amp; <code>c</code></p>" in page


def test_a_rows_spread_is_its_selected_accuracys_and_one_seeds_verdict_says_so():
    """min and max (the minmax band, summary.json) are of the accuracy the report selects by, not the final
    epoch's; a comparison with one seed says that one seed is why it cannot tell."""
    from neuralscale.report import _table, verdicts
    rows = summarize_records([_rec("uniform", s, a, final=f) for s, (a, f) in enumerate([(80.0, 70.0), (84.0, 95.0)])])
    (row,) = rows
    assert (row["min"], row["max"]) == (80.0, 84.0) and (row["final_mean"], row["mean"]) == (82.5, 82.0)
    assert _table(rows)[1][0][5:7] == ["82.00 ± 2.83", "82.50 ± 17.68"]  # two seeds: a spread to show
    one = summarize_records([_rec("uniform", 0, 80.0), _rec("uniform", 1, 81.0), _rec("morphnet", 0, 82.0)])
    (line,) = verdicts(one)
    assert line.startswith("`morphnet` at ratio 0.25: cannot tell (one seed: no interval) (+1.50 points (Welch); "
                           "1 seed(s);"), line


def test_two_seeds_pair_and_the_verdict_reads_the_paired_test():
    """Two seeds are enough to pair: the paired interval and p-value decide (not Welch's), as the text says."""
    from neuralscale.report import fmt_p, verdicts
    from neuralscale.stats import paired_gap, paired_p
    uni, law = {0: 80.0, 1: 84.0}, {0: 81.0, 1: 85.5}
    rows = summarize_records([_rec("uniform", s, a) for s, a in uni.items()] +
                             [_rec("morphnet", s, a) for s, a in law.items()])
    row = next(r for r in rows if r["label"] == "morphnet")
    gap, half, n = paired_gap(law, uni)
    assert n == 2 and half is not None and row["p_test"] == "paired" and row["p"] == paired_p(law, uni)
    (line,) = verdicts(rows)
    assert f"{fmt_gap(gap, half, bold=False).replace(' [', ' points [', 1)} paired by seed" in line, line
    assert "(Welch)" not in fmt_p(row) and fmt_p({"p": 0.0123, "p_test": "welch"}) == "0.012 (Welch)"
    assert fmt_p({"p": 0.0123, "p_test": "paired", "holm": True}) == "0.012 **holds**"
    assert fmt_p({"p": 0.0042, "p_test": "paired"}) == "0.004" and fmt_p({"p": 0.0009, "p_test": "paired"}) == "<0.001"


def test_each_verdict_states_its_word_its_test_and_what_it_costs_against_uniform():
    """Four comparisons (Holm's family): a gap whose interval excludes zero but that does not survive the correction
    says so; a row paired over fewer seeds than uniform has says how many; the costs are this row's over uniform's
    (parameters, MACs, latency), the latency's left out where uniform's own timing was unstable; the network
    slimming prunes gets no verdict."""
    from neuralscale.report import _latency_note, comparisons_text, verdicts
    acc = [80.0, 81.0, 82.0, 80.5, 81.5]

    def side(label, diffs, ratio, **kw):  # seed s scores uniform's accuracy of seed s plus diffs[s]
        return [_rec(label, s, acc[s] + d, ratio=ratio, **kw) for s, d in enumerate(diffs)]
    rows = summarize_records(side("uniform", [0] * 5, 0.25, latency=(2.0, 0.1))
                             + side("morphnet", [-1.0, -0.5, -1.5, -0.9, -0.1], 0.25, latency=(2.0, 0.1))
                             + side("neuralscale@1", [0.9, 0.5, 1.4, 1.0], 0.25, params=1500, macs=30_000,
                                    latency=(3.0, 0.1))
                             + side("uniform-sparse", [2, 3, 1, 2, 2], 0.25, latency=(2.0, 0.1))
                             + side("uniform", [0] * 5, 0.5, latency=(4.0, 2.0))  # an unstable timing
                             + side("morphnet", [1.0, 1.5, 0.5, 1.3, 0.7], 0.5, latency=(2.0, 0.1))
                             + side("neuralscale@1", [1, -1, 0.5, -0.5, 0.2], 0.5, latency=(2.0, 0.1)))
    # Holm over p = 0.0056, 0.014, 0.028, 0.92: the first two hold (x4, x3), 0.028 x 2 does not
    assert verdicts(rows) == [
        "`morphnet` at ratio 0.25: worse than uniform on this comparison alone, not after Holm's correction (-0.80 "
        "points [-1.46, -0.14] paired by seed; p 0.028; 5 seed(s); 1.00x uniform's parameters; 1.00x its MACs; "
        "1.00x its latency)",
        "`neuralscale@1` at ratio 0.25: **better** than uniform (+0.95 points [+0.36, +1.54] paired by seed; p 0.014; "
        "4 seed(s) paired, of its 4 and uniform's 5; 1.50x uniform's parameters; 3.00x its MACs; 1.50x its latency)",
        "`morphnet` at ratio 0.5: **better** than uniform (+1.00 points [+0.49, +1.51] paired by seed; p 0.006; "
        "5 seed(s); 1.00x uniform's parameters; 1.00x its MACs)",
        "`neuralscale@1` at ratio 0.5: cannot tell (+0.04 points [-0.95, +1.03] paired by seed; p 0.916; 5 seed(s); "
        "1.00x uniform's parameters; 1.00x its MACs)"]
    assert "The table makes 4 comparison(s) with uniform" in comparisons_text(rows)
    assert "5% family-wise level, 2 hold (marked **holds** in the p column)" in comparisons_text(rows)
    assert _latency_note(rows).endswith("do not read the median as the configuration's latency): uniform at ratio 0.5.")
    # a report without figures (--no-figures) speaks of none (a walkthrough: "the figure's horizontal bars")
    assert "; the figure's horizontal bars span it." in _latency_note(rows)
    assert "figure" not in _latency_note(rows, drawn=False)


def test_a_row_that_repeats_another_rows_comparison_counts_once_in_holms_family():
    """Two pruning baselines that pruned nothing fine-tune the same weights the same way: their rows are the same
    network with the same accuracies, one comparison, which Holm's correction counts once (twice, neither p 0.021
    nor morphnet's 0.030 would hold: 0.021 > 0.05/3). A row alike in all but one seed's accuracy is another
    comparison."""
    from neuralscale.report import comparisons_text, verdicts
    acc = [80.0, 81.0, 82.0, 80.5, 81.5]

    def side(label, diffs, **kw):
        return [_rec(label, s, acc[s] + d, **kw) for s, d in enumerate(diffs)]
    pruned = {"widths": [4, 8], "spec": {"pretrained": "uniform"}}  # uniform's widths, fine-tuned from its weights
    same = [0.34, 0.14, 0.74, 0.24, 0.44]
    records = (side("uniform", [0] * 5) + side("morphnet", [0.5, 0.1, 1.0, 0.3, 0.8])
               + side("l1-prune", same, **pruned) + side("slimming", same, **pruned))
    rows = {r["label"]: r for r in summarize_records(records)}
    assert rows["l1-prune"]["p"] == rows["slimming"]["p"] == pytest.approx(0.021, abs=5e-4)
    assert rows["morphnet"]["p"] == pytest.approx(0.030, abs=5e-4)
    assert rows["morphnet"]["holm"] and rows["l1-prune"]["holm"] and rows["slimming"]["holm"]
    text = comparisons_text(list(rows.values()))
    assert text.startswith("The table makes 2 comparison(s)") and "1 row(s) repeat another row's comparison" in text
    assert "family-wise level, 2 hold" in text
    assert sum(v.startswith("`slimming` at ratio 0.25: **better**") for v in verdicts(list(rows.values()))) == 1
    records[-1]["summary"] = {"test_acc_at_best_val": acc[4] + 0.45, "final_test_acc": acc[4] + 0.45}  # not alike
    rows = {r["label"]: r for r in summarize_records(records)}
    assert not any(rows[x]["holm"] for x in ("morphnet", "l1-prune"))  # three comparisons: 0.021 > 0.0167
    assert comparisons_text(list(rows.values())).startswith("The table makes 3 comparison(s)")


def test_a_law_that_is_a_fallback_is_marked_noted_and_not_set_against_its_ablations():
    """A committed descent whose iteration 1's law is a fallback (uniform scaling, no fit): a row planned as
    `neuralscale@1` before that was known is marked `(fallback)`, a row the sweep labelled so is not marked twice,
    both are noted and neither is compared with its ablations; a store that uses only fitted laws gets no note."""
    from neuralscale.report import _mark_fallbacks, ablation_rows
    descent = STUDY.parents[1] / "warmup2" / "descent"

    def rows_of(law: str) -> list[dict]:
        return summarize_records([_rec(label, s, 80.0 + s + i * (1 + s / 10)) for i, label in enumerate((law, "pruned"))
                                  for s in range(3)])
    for law in ("neuralscale@1", "neuralscale@1 (fallback)"):
        rows = rows_of(law)
        notes = _mark_fallbacks(rows, [descent])
        assert [(r["shown"], r["fallback"]) for r in rows] == [("neuralscale@1 (fallback)", True), ("pruned", False)]
        assert len(notes) == 1 and notes[0].startswith("iteration 1's law is not a fit (") and not ablation_rows(rows)
    rows = rows_of("neuralscale@15")
    assert _mark_fallbacks(rows, [descent]) == [] and not any(r["fallback"] for r in rows)
    assert [(x["law"], x["against"], x["n"]) for x in ablation_rows(rows)] == [("neuralscale@15", "pruned", 3)]


def test_the_ablation_tables_accuracies_are_the_paired_seeds_and_subtract_to_the_gap():
    """A law with a seed its ablation lacks: the table's law and ablation accuracies were the law's mean over all
    its seeds beside a gap over the paired ones (52.34 against 53.32 beside a gap of -4.88, in a reviewer's sweep);
    now both are over the seeds paired, and their difference is the gap."""
    from neuralscale.report import _ablation_table, ablation_rows
    rows = summarize_records([_rec("neuralscale@2", s, a) for s, a in enumerate([80.0, 82.0, 95.0])]
                             + [_rec("pruned", s, a) for s, a in enumerate([79.0, 80.0])])
    (x,) = ablation_rows(rows)
    assert x["n"] == 2 and (x["law_mean"], x["against_mean"]) == (81.0, 79.5)
    assert x["gap"] == pytest.approx(x["law_mean"] - x["against_mean"])
    (line,) = _ablation_table([x])[1]
    assert line[4:7] == ["81.00", "79.50", fmt_gap(1.5, x["ci95"])]
    # shape@2 at the descent's base budget is law 1's network (iteration 2 started from it): said in the table
    # (a walkthrough read its row as the law against the shape, not law 2 against law 1)
    laws = summarize_records([_rec("neuralscale@2", s, 80.0 + s, widths=[5, 9]) for s in range(2)]
                             + [_rec("neuralscale@1", s, 79.0 + s, widths=[4, 9]) for s in range(2)]
                             + [_rec("shape@2", s, 79.5 + s / 2, widths=[4, 9]) for s in range(2)])
    assert [x["against"] for x in ablation_rows(laws)] == ["shape@2 (neuralscale@1's network)"]
    other = summarize_records([_rec(r["label"], s, 80.0 + s, widths=[4, 10] if r["label"] == "shape@2" else
                                    r["widths"]) for r in laws for s in range(2)])
    assert [x["against"] for x in ablation_rows(other)] == ["shape@2"]


def test_a_row_is_marked_pruned_nothing_only_where_every_seed_pruned_nothing():
    """`(pruned nothing)` says the row's gap is fine-tuning alone: so only where no run of the row removed a
    channel (one seed that pruned makes the row a pruning's, in part)."""
    def l1(seed, start):
        return _rec("l1-prune", seed, 80.0 + seed, widths=[4, 8], pruning={"from_widths": start})
    assert summarize_records([l1(0, [4, 8]), l1(1, [4, 8])])[0]["shown"] == "l1-prune (pruned nothing)"
    row = summarize_records([l1(0, [4, 8]), l1(1, [4, 9])])[0]
    assert row["shown"] == "l1-prune" and not row["pruned_nothing"]


def test_the_notes_say_how_the_runs_trained_where_selection_fell_and_what_is_left_out():
    """The recipe's sentence gives the pruning baselines' own fine-tuning; the selection's sentence the median
    epoch; the left-out sentence names the labels it leaves out."""
    from types import SimpleNamespace
    from neuralscale.report import _left_out_text, _mark_notes, _recipe_text, _selection_text
    recipe = {"epochs": 20, "batch_size": 128, "lr": 0.1, "schedule": "step", "momentum": 0.9, "weight_decay": 0.0005,
              "augment": True}
    scratch = {"status": "finished", "label": "uniform", "spec": {}, "config": recipe}
    tuned = {"status": "finished", "label": "l1-prune", "spec": {"pretrained": {"run": "x"}},
             "config": {**recipe, "epochs": 10, "lr": 0.01, "schedule": "cosine"}}
    assert _recipe_text([tuned, scratch]) == (
        "Recipe: 20 epochs, batch 128, lr 0.1 (step), momentum 0.9, weight decay 0.0005, augmentation on. The pruning "
        "baselines: pruned from a trained run, then fine-tuned 10 epochs at lr 0.01 (cosine).")
    pruned = {**_rec("l1-prune", 0, 80.0, widths=[4, 8]), "config": tuned["config"], "pruning": {"from_widths": [4, 8]}}
    rows = summarize_records([pruned])
    (note,) = _mark_notes(SimpleNamespace(rows=rows, records=[{**scratch, "config": {"epochs": 30}}, pruned],
                                          fallbacks=[]))
    assert note.endswith("its gap to uniform is what its 10 more epochs of fine-tuning add, not what pruning does.")
    picked = [{"status": "finished", "summary": {"best_val_epoch": e}, "history": [{}] * 10, "config": recipe,
               "data": {"val": 6000}} for e in (2, 3, 10)]
    assert _selection_text(picked) == ("Selection on a validation split of 6,000 images: the best-validation epoch "
                                       "was the last epoch in 1 of 3 runs; over all runs it fell at epochs 2-10 "
                                       "(median 3).")
    left = [_rec(label, 0, None) for label in ("slimming", "l1-prune")] + [_rec("uniform", 0, 80.0)]
    assert _left_out_text(SimpleNamespace(records=left, accuracy="best-val")) == (
        " **Left out**: 2 finished run(s) without a test accuracy at the best-validation epoch (l1-prune, slimming: "
        "trained without validation images); `--accuracy final` reports them.")


def test_a_reports_page_counts_its_runs_names_its_failures_and_renders_its_marks(tmp_path):
    """The committed study with one run failed and two still running, and the network slimming prunes beside it:
    the counts and the failure are said, each mark and its note, the few-rows law flagged (and only it), every
    table a well-formed markdown table, the page's bold and code as HTML, and summary.json each run's own numbers."""
    from neuralscale.report import build_report
    store = tmp_path / "params"
    shutil.copytree(STUDY.parent, store, ignore=shutil.ignore_patterns("report"))
    sparse = next((STUDY.parents[1].parent / "fmnist-vgg11-regime" / "regime" / "runs").glob("uniform-sparse-*"))
    shutil.copytree(sparse, store / "runs" / sparse.name)
    failed, *running = sorted((store / "runs").glob("morphnet-r0.125-*"))[:3]
    for run, status in ((failed, "failed"), *((run, "running") for run in running)):
        record = json.loads((run / "record.json").read_text())
        record.update(status=status, **({"error": "RuntimeError: CUDA out of memory"} if status == "failed" else {}))
        (run / "record.json").write_text(json.dumps(record))
    built = build_report(store, figures=False)
    md = built["markdown"].read_text()
    assert md.startswith("# neuralscale report: vgg11 on fashionmnist\n")
    assert f"from 61 run record(s) in `{store}`: 58 finished, 1 failed, 2 unfinished." in md
    assert f"\n## Failed runs\n\n- `{failed.name}`: RuntimeError: CUDA out of memory\n" in md
    laws = md.split("\n## Laws\n")[1].split("\n## ")[0]
    (few,) = [line for line in laws.splitlines() if "few rows" in line]  # iteration 1: 7 rows; iteration 15: 28
    assert few.startswith("- `neuralscale@1`: fitted against parameters, 7 rows, ") and "- `neuralscale@15`: " in laws
    assert "A row marked `(extrapolated)` is a law solved beyond 2x outside the range" in md  # not every row is
    assert "- `uniform-sparse`: not a method compared: the network `slimming` prunes" in md
    lines = md.splitlines()
    tables = [(head, sep) for head, sep in zip(lines, lines[1:]) if sep.startswith("|---")]
    assert len(tables) == 3 and all(sep == "|" + "---|" * (head.count("|") - 1) for head, sep in tables)
    page = built["html"].read_text()
    assert "**" not in page and "<td>0.011 <b>holds</b></td>" in page and "<code>uniform-sparse</code>" in page
    summary = json.loads(built["summary"].read_text())
    records = {x["id"]: x for x in load_records(store)}
    assert len(summary["runs"]) == 61
    for run in summary["runs"]:
        for key in ("final_test_acc", "test_acc_at_best_val", "best_test_acc_original_protocol"):
            assert run[key] == (records[run["id"]].get("summary") or {}).get(key), (run["id"], key)


def _drawn_figures(monkeypatch) -> list:
    """Every figure figures._save saves from now on (still saved), to read what was drawn."""
    from neuralscale import figures
    drawn, real_save = [], figures._save
    monkeypatch.setattr(figures, "_save",
                        lambda fig, path, *a, **k: (drawn.append(fig), real_save(fig, path, *a, **k))[1])
    return drawn


def _bands(ax) -> list[set]:
    """The (x, y) corners of each band fill_between drew, in drawing order."""
    from matplotlib.collections import PolyCollection
    return [{(float(x), float(y)) for x, y in c.get_paths()[0].vertices} for c in ax.collections
            if isinstance(c, PolyCollection)]


def test_an_accuracy_figure_draws_each_lines_means_at_their_cost_with_the_band_asked_for(tmp_path, monkeypatch):
    """Each line is one series (a label, or a label from weights) over its budgets in the order of the axis: its
    means at its rows' parameters, MACs or latency (with each latency's interquartile range as a bar around it),
    its band min-max where asked, its seeds in the legend; the paper's curves at their parameters or MACs, never
    on a latency axis; the axis named for what it shows; rows of two budgets are not framed as one budget, and
    one budget near 100% is framed half a point around its bands, within 100%."""
    from neuralscale import figures
    drawn = _drawn_figures(monkeypatch)

    def row(label, ratio, params, macs, latency, mean, lo, hi, n, series=None):
        return dict(label=label, series=series or label, shown=label, marks=["from weights"] if series else [],
                    budget_key=["ratio", ratio], params=params, macs=macs, latency_ms=latency, latency_iqr_ms=0.4,
                    mean=mean, std=1.0, n=n, min=lo, max=hi, widths=[int(ratio * 64), int(ratio * 128)])
    rows = [row("uniform", 0.5, 40_000, 2_000_000, 3.0, 85.0, 84.0, 86.5, 5),  # not in the axis' order
            row("uniform", 0.25, 10_000, 600_000, 2.0, 80.0, 79.0, 81.0, 3),
            row("morphnet", 0.5, 41_000, 5_000_000, 4.0, 86.0, 85.5, 86.2, 5),
            row("morphnet", 0.25, 10_500, 1_500_000, 2.5, 81.0, 80.1, 81.9, 5),
            row("uniform", 0.25, 10_000, 600_000, 2.2, 79.0, 78.0, 80.0, 4, series="uniform (from weights)"),
            row("slimming", 0.25, 9_000, 500_000, None, 70.0, 69.0, 71.0, 2)]  # no latency measured
    paper = [{"method": "uniform", "params": p, "macs_per_image_millions": m, "acc_best_epoch_mean": a}
             for p, m, a in (("9000000", "150", "93.5"), ("2000000", "40", "92.0"))]
    field = {"params": "params", "macs": "macs", "latency": "latency_ms"}
    xlabel = {"params": "parameters", "macs": "MACs per image", "latency": "latency, batch 1 (ms, median)"}
    for axis in ("params", "macs", "latency"):
        figures.accuracy_figure(rows, axis, tmp_path, "t", "accuracy (%)", paper=paper, bands="minmax")
        ax = drawn[-1].axes[0]
        lines = {line.get_label(): (list(line.get_xdata()), list(line.get_ydata())) for line in ax.get_lines()
                 if not line.get_label().startswith("_")}  # (not the latency bars' caps)
        want, drawn_series = {}, ["uniform", "morphnet", *(["slimming"] if axis != "latency" else []),
                                  "uniform (from weights)"]  # uniform first, then in order
        for name in drawn_series:
            n = {"uniform": 5, "morphnet": 5, "slimming": 2, "uniform (from weights)": 4}[name]  # its most seeds
            pts = sorted((r for r in rows if r["series"] == name), key=lambda r: r[field[axis]])
            want[f"{name} (n={n})"] = ([r[field[axis]] for r in pts], [r["mean"] for r in pts])
        if axis != "latency":
            want["paper (best test epoch): uniform"] = ([2e6, 9e6] if axis == "params" else [40e6, 150e6],
                                                        [92.0, 93.5])  # (labelled: the paper selects on the test)
        assert lines == want, axis
        assert ax.get_xlabel() == xlabel[axis] and ax.get_ylabel() == "accuracy (%)"
        by_series = [[r for r in rows if r["series"] == s] for s in drawn_series]
        assert _bands(ax) == [{(r[field[axis]], y) for r in rs for y in (r["min"], r["max"])} for rs in by_series]
        if axis == "params":
            assert ax.get_xlim()[1] > 9e6  # the paper's curve is in the frame: the rows span two budgets
    from matplotlib.collections import LineCollection
    bars = next(c for c in ax.collections if isinstance(c, LineCollection))  # the latency figure's: uniform's spread
    ends = sorted([float(x) for x, _ in s] + [float(y) for _, y in s] for s in bars.get_segments())
    assert ends == [pytest.approx([1.8, 2.2, 80.0, 80.0]), pytest.approx([2.8, 3.2, 85.0, 85.0])]  # median +- IQR/2
    near = [dict(r, mean=99.6, std=0.3, n=5, min=99.2, max=99.9) for r in rows[2:4]]
    figures.accuracy_figure([{**near[0], "params": 10_400}, near[1]], "params", tmp_path, "t", "accuracy (%)")
    low = figures.band(near[0])[0]  # framed around the bands, half a point below, never past 100%
    assert drawn[-1].axes[0].get_ylim() == (pytest.approx(low - 0.5), 100.0)
    # the widths figure: a panel per budget, named as the tables name it, each with its own rows only
    colors = figures.method_colors(["uniform", "morphnet", "slimming", "uniform (from weights)"])
    figures.widths_figure(rows, None, tmp_path, colors)
    panels = [(ax.get_title(), sorted((line.get_label(), tuple(line.get_ydata())) for line in ax.get_lines()))
              for ax in drawn[-1].axes]
    assert panels == [(Budget.from_key(b).text, sorted((r["shown"], tuple(r["widths"])) for r in rows
                                                       if r["budget_key"] == list(b)))
                      for b in (("ratio", 0.25), ("ratio", 0.5))]


def test_a_reports_figures_show_the_accuracy_and_the_band_it_was_asked_for(tmp_path, monkeypatch):
    """`--accuracy final --band minmax`: every accuracy figure's axis names the final epoch, and its bands span the
    rows' final accuracies over seeds, as the title says."""
    from neuralscale.report import build_report
    drawn = _drawn_figures(monkeypatch)
    for d in sorted(STUDY.iterdir()):
        if d.name.startswith(("uniform-r0.0625-s", "neuralscale-15-r0.0625-s")) and d.name.split("-s")[-1][0] in "01":
            shutil.copytree(d, tmp_path / "runs" / d.name)
    built = build_report(tmp_path / "runs", accuracy="final", bands="minmax")
    rows = built["rows"]
    assert "Dashed lines" not in built["markdown"].read_text()  # the paper has no VGG11 on Fashion-MNIST
    assert [r["n"] for r in rows] == [2, 2] and all(r["min"] < r["max"] for r in rows)
    accuracy = [fig.axes[0] for fig in drawn if fig.axes[0].get_ylabel().endswith("(%)")]
    assert len(accuracy) >= 2  # parameters, MACs (and latency where the runs measured it on one device)
    for ax in accuracy:
        assert ax.get_ylabel() == "test accuracy at the final epoch (%)"
        assert "band = min-max over seeds" in ax.get_title()
        assert not [line for line in ax.get_lines() if line.get_label().startswith("paper")]
        assert [{y for _, y in band} for band in _bands(ax)] == [{r["min"], r["max"]} for r in rows]  # uniform first


def test_a_growth_figure_draws_each_law_solid_over_its_fitted_range_and_dotted_beyond(tmp_path, tiny_descent,
                                                                                      monkeypatch):
    """Each layer's curve is its law's alpha * tau ^ beta: solid where the law was fitted (its rows' range), dotted
    outside it, named with its exponent."""
    import numpy as np
    from neuralscale import figures
    drawn = _drawn_figures(monkeypatch)
    d = figures.DescentDir(tiny_descent[0])
    space = d.start_space(ns.space("vgg11", "synthetic"))
    it = next(it for it in d.iterations() if len(it.law.tau_range) == 2)
    figures.growth_figure(d.path, space, iteration=it.number, dest=tmp_path)
    law, ax = it.law, drawn[-1].axes[0]
    lo, hi = law.tau_range
    solid = [line for line in ax.get_lines() if line.get_linestyle() == "-"]
    dotted = [line for line in ax.get_lines() if line.get_linestyle() == ":"]
    assert len(solid) == len(dotted) == len(space)
    for i, (name, line, beyond) in enumerate(zip(space.layer_names, solid, dotted)):
        x, y = np.asarray(line.get_xdata()), np.asarray(line.get_ydata())
        assert line.get_label() == f"{name} (β={law.beta[i]:.2f})" and len(x) > 0
        assert lo <= x.min() and x.max() <= hi and np.allclose(y, law.alpha[i] * x ** law.beta[i])
        shown = ~np.isnan(np.asarray(beyond.get_ydata(), dtype=float))
        outside = np.asarray(beyond.get_xdata())[shown]
        assert ((outside < lo) | (outside > hi)).all() and outside.max() > hi


def test_runs_of_another_dataset_or_data_or_convcut_do_not_compare_and_pages_name_and_escape_their_parts(tmp_path):
    """A folder of runs on two datasets (one model), or trained on other data settings or with another shortcut,
    is refused; a difference of recipes names four settings and then '...'; the Markdown page links a figure by
    its file name beside it, and the HTML page escapes a table's head (a mutation audit: each passed when
    changed)."""
    from neuralscale.report import _differences, check_comparable, render_html, render_markdown

    def run(i, dataset="synthetic", **spec):
        return {**_rec("uniform", i, 80.0), "id": f"r{i}", "model": "vgg11", "dataset": dataset,
                "config": {"epochs": 3}, "spec": {"data": {"train": 100}, **spec}}
    with pytest.raises(ns.NeuralscaleError, match=r"holds runs of 2 models or datasets \(vgg11 on cifar10; vgg11 on "
                                                  r"synthetic\)"):
        check_comparable(tmp_path, [run(0), run(1, dataset="cifar10")])
    with pytest.raises(ns.NeuralscaleError, match="with 2 different recipes"):
        check_comparable(tmp_path, [run(0), run(1, data={"train": 200})])
    with pytest.raises(ns.NeuralscaleError, match=r"2 models or datasets \(vgg11 on synthetic; vgg11-convcut on "):
        check_comparable(tmp_path, [run(0), run(1, convcut=True)])  # (the network the flag makes of its name)
    check_comparable(tmp_path, [run(0), run(1, data={"train": 100, "data_dir": "/elsewhere"})])  # where, not which
    a, b = {k: 1 for k in "abcde"}, {k: 2 for k in "abcde"}
    assert _differences(a, b) == "a 1 against 2, b 1 against 2, c 1 against 2, d 1 against 2 ..."
    assert _differences({**a, "e": 2}, {**b, "e": 2}) == "a 1 against 2, b 1 against 2, c 1 against 2, d 1 against 2"
    doc = [("figure", "accuracy against params", tmp_path / "figures" / "acc_params.png"),
           ("table", ["a<b", "c"], [["1", "2"]])]
    assert "![accuracy against params](acc_params.png)" in render_markdown(doc)
    page = render_html(doc[1:], "t")
    assert "<th>a&lt;b</th>" in page and "<th>a<b</th>" not in page


def test_the_selection_names_the_range_of_validation_sizes_and_devices_count_finished_runs_only():
    """Runs selected on validation splits of two sizes are said as a range of them; a failed run's device is not a
    second device to warn of (a mutation audit: the range's upper end, and the failed run's device, passed)."""
    from neuralscale.report import _selection_text, device_note

    def run(seed, val, status="finished", device="cpu"):
        return {**_rec("uniform", seed, 80.0), "status": status, "config": {"epochs": 2}, "data": {"val": val},
                "summary": {"test_acc_at_best_val": 80.0, "final_test_acc": 80.0, "best_val_epoch": 1},
                "environment": {"device": device}}
    assert _selection_text([run(0, 10), run(1, 12)]).startswith("Selection on validation splits of 10-12 images:")
    assert _selection_text([run(0, 10), run(1, 10)]).startswith("Selection on a validation split of 10 images:")
    sparse = [{**r, "config": {"epochs": 9, "eval_every": 3}} for r in (run(0, 10), run(1, 10))]  # (an audit)
    assert _selection_text(sparse).startswith("Selection on a validation split of 10 images: the best-validation "
                                              "epoch (among the epochs evaluated: every 3 epochs and the last) was")
    mixed = [sparse[0], {**sparse[1], "config": {"epochs": 9, "eval_every": 0}}, run(2, 10)]  # (a review)
    assert "(among the epochs evaluated: the last only in 1 of 3 runs; every epoch in 1 of 3 runs; every 3 epochs " \
        "and the last in 1 of 3 runs) was" in _selection_text(mixed)
    assert device_note([run(0, 10), run(1, 10, status="failed", device="cuda:0")]) == ""
    assert device_note([run(0, 10), run(1, 10, device="cuda:0")]).startswith("**The runs trained on several devices**")


def test_a_latency_measured_nowhere_is_no_note_and_runs_differing_in_evaluation_batch_compare(tmp_path):
    """No run measured a latency: the latency note says nothing; runs that differ only in their evaluation batch
    size trained alike and compare (a mutation audit: the evaluation batch taken for a recipe passed)."""
    from neuralscale.report import _latency_note, check_comparable
    rows = summarize_records([_rec("uniform", 0, 80.0), _rec("morphnet", 0, 81.0)])
    assert _latency_note(rows) == ""

    def run(i, eval_batch_size):
        return {**_rec("uniform", i, 80.0), "id": f"r{i}", "model": "vgg11", "dataset": "synthetic",
                "config": {"epochs": 3, "eval_batch_size": eval_batch_size}}
    check_comparable(tmp_path, [run(0, 500), run(1, 1000)])


def test_a_report_holds_its_folder_and_clears_what_a_killed_report_left(tmp_path, monkeypatch):
    """A report killed between an atomic write's temporary file and its rename left `.report.md.xxxxxxxx.ns.tmp`
    in its folder for good (no rebuild cleared it: the folder had no lock holder), and two reports into one folder
    wrote the same figures at once (interruption audit). A report holds its folder's lock while it writes (another
    waits), and clears such files first."""
    from neuralscale import report
    from neuralscale.errors import NeuralscaleError
    from neuralscale.records import exclusive
    store = tmp_path / "params"
    shutil.copytree(STUDY.parent, store, ignore=shutil.ignore_patterns("report"))
    dest = report.build_report(store, figures=False)["markdown"].parent
    killed = dest / ".report.md.a1b2c3d_.ns.tmp"
    killed.write_text("# neuralscale report (being")
    held = []

    def figures(st, where, *args):
        with pytest.raises(NeuralscaleError, match="in use by another neuralscale command"):
            with exclusive(where, "report folder"):
                pass
        held.append(where)
        return [], "no figures"
    monkeypatch.setattr(report, "_figures", figures)
    report.build_report(store)
    assert held == [dest] and not killed.exists()
    assert not [p.name for p in dest.iterdir() if "tmp" in p.name]
    # killed after taking the lock, before its first page: the folder holds the lock (and a temporary file) alone,
    # which is no one's content (a review: 'holds files that are not a report (.lock)')
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    (fresh / ".lock").write_text("123\n")
    (fresh / ".report.md.a1b2c3d_.ns.tmp").write_text("# neuralscale report (being")
    assert report.build_report(store, out=fresh, figures=False)["markdown"].parent == fresh


def test_the_widths_section_names_the_layers_and_its_figure_the_model(tmp_path, monkeypatch):
    """A walkthrough: the report's widths were bare lists of numbers, and the widths figure the one title without
    the model and data."""
    from neuralscale import figures, report
    store = tmp_path / "params"
    shutil.copytree(STUDY.parent, store, ignore=shutil.ignore_patterns("report"))
    drawn, real_save = [], figures._save
    monkeypatch.setattr(figures, "_save",
                        lambda fig, path, *a, **k: (drawn.append(fig), real_save(fig, path, *a, **k))[1])
    md = report.build_report(store)["markdown"].read_text()
    assert "## Widths\n\nLayers, in the order of the widths: `conv1`, `conv2`, `conv3`, `conv4`, `conv5`, `conv6`, " \
           "`conv7`, `conv8`.\n" in md
    titles = [f._suptitle.get_text() for f in drawn if f._suptitle is not None]
    assert "vgg11 on fashionmnist: per-layer widths of each method at each budget" in titles, titles


def test_a_figure_is_written_atomically_and_a_refused_write_names_it(tmp_path, monkeypatch):
    """A file-size limit cut a report's figure short and left it so, saying only "File too large" (an adversarial
    pass). A figure is either the one before or the whole new one now, and the refusal names the file."""
    import errno
    import os
    import re

    import matplotlib.figure

    from neuralscale import figures
    from neuralscale.errors import EnvironmentFailure
    plt = figures._plt()
    fig, _ = plt.subplots()
    path = figures._save(fig, tmp_path / "acc_vs_params.png", formats=("png", "svg"))
    before = path.read_bytes()
    assert before.startswith(b"\x89PNG") and (tmp_path / "acc_vs_params.svg").exists()
    real = matplotlib.figure.Figure.savefig

    def cut_short(self, fname, **kw):  # a few bytes written, then the disk says no
        real(self, fname, **kw)
        with open(fname, "r+b") as f:
            f.truncate(100)
        raise OSError(errno.EFBIG, os.strerror(errno.EFBIG))
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", cut_short)
    fig, _ = plt.subplots()
    with pytest.raises(EnvironmentFailure, match=re.escape(f"cannot write {path}: {os.strerror(errno.EFBIG)}")):
        figures._save(fig, tmp_path / "acc_vs_params.png")
    assert path.read_bytes() == before  # the figure before, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["acc_vs_params.png", "acc_vs_params.svg"]
    assert not plt.get_fignums()  # closed, refused or not


def test_uniforms_own_network_trained_again_is_no_comparison_and_the_sparse_network_is_not_bold():
    """`shape@1` (iteration 1 started from uniform widths) trains uniform's very network: its gap compared a network
    with itself, a verdict said "cannot tell" of it and Holm's correction counted it (a walkthrough); and the
    network slimming prunes, "not a method compared", had a bold gap. Said as the same network, out of Holm's
    family, no bold interval; a row of other widths is compared as before."""
    from neuralscale.report import _table, comparisons_text, verdicts
    accs = [80.0, 81.0, 82.5]
    records = ([_rec("uniform", s, a) for s, a in enumerate(accs)]
               + [_rec("shape@1", s, a + 3, widths=[4, 8]) for s, a in enumerate(accs)]
               + [_rec("uniform-sparse", s, a + 3, widths=[4, 8]) for s, a in enumerate(accs)]
               + [_rec("neuralscale@1", s, a + 3 + s / 10) for s, a in enumerate(accs)])
    rows = summarize_records(records)
    by = {r["label"]: r for r in rows}
    assert by["shape@1"]["same_network"] and by["shape@1"]["p"] is None and not by["neuralscale@1"]["same_network"]
    lines = verdicts(rows)
    assert "`shape@1` at ratio 0.25: the same network as uniform (its widths, trained from scratch as it was): no " \
           "comparison" in lines and len(lines) == 2
    assert comparisons_text(rows).startswith("The table makes 1 comparison(s)")
    head, body = _table(rows)
    cells = {row[0]: row for row in body}
    gaps = [head.index(h) for h in head if h.startswith(("gap", "gap,"))]
    assert len(gaps) == 3
    for label in ("shape@1", "uniform-sparse"):
        assert all("**" not in cells[label][i] and cells[label][i].startswith("+3.00") for i in gaps), cells[label]
    assert all(cells["neuralscale@1"][i].startswith("**+3.") for i in gaps), cells["neuralscale@1"]
    # not the same network: started otherwise (pruned, from weights), seeds at other widths, or trained on another
    # device or arithmetic (a review: bf16 on a GPU beside float32 on a CPU)
    gpu = {"environment": {"device": "cuda:0", "gpu": "NVIDIA H100"}, "config": {"amp": True}}
    for change in ({"spec": {"pretrained": {"run": "x"}}}, {"spec": {"init": {"run": "x"}}}, gpu):
        other = [_rec("uniform", s, a) for s, a in enumerate(accs)] + \
            [_rec("shape@1", s, a + 3, widths=[4, 8], **change) for s, a in enumerate(accs)]
        row = next(r for r in summarize_records(other) if r["label"] == "shape@1")
        assert not row["same_network"], change
    uneven = [_rec("uniform", s, a) for s, a in enumerate(accs)] + \
        [_rec("shape@1", s, a + 3, widths=[4, 8] if s == 0 else [4, 9], params=1000 + s) for s, a in enumerate(accs)]
    assert not next(r for r in summarize_records(uneven) if r["label"] == "shape@1")["same_network"]


def test_rows_that_learned_little_are_said_beside_the_verdicts(tmp_path):
    """Every run of a store at 8.6% on ten classes read as an ordinary "cannot tell (the seeds do not vary)"
    (a walkthrough): rows at most twice chance (a quarter of the way to 100% where less; as a descent warns of the
    network it prunes) are named beside the verdicts, each with its accuracy; none where every row learned."""
    from types import SimpleNamespace
    from neuralscale.report import _little_learned
    records = [{**_rec("uniform", s, 8.6), "input": {"num_classes": 10}} for s in range(2)] + \
        [{**_rec("morphnet", s, 35.0 + s), "input": {"num_classes": 10}} for s in range(2)]
    rows = summarize_records(records)
    (note,) = _little_learned(SimpleNamespace(records=records, rows=rows))
    assert note == ("**1 row(s) learned little:** `uniform` at ratio 0.25 (8.6%) scored at most 20% (10 classes: "
                    "chance is 10%). Their networks did not learn on this recipe, and comparisons with or among them "
                    "say little: train longer (--epochs; the pruning baselines' --finetune-epochs), on more images, "
                    "or with another learning rate.")
    # a record that does not say its classes (older ones) leaves the others to say them (a review: none said)
    older = [{k: v for k, v in records[0].items() if k != "input"}] + records[1:]
    assert _little_learned(SimpleNamespace(records=older, rows=summarize_records(older))) == [note]
    two = [{**r, "input": {"num_classes": 2}} for r in records]  # 62.5% for two classes: both rows
    assert _little_learned(SimpleNamespace(records=two, rows=summarize_records(two)))[0].startswith(
        "**2 row(s) learned little:**")
    learned = [{**r, "summary": {"test_acc_at_best_val": 90.0, "final_test_acc": 90.0}} for r in records]
    assert _little_learned(SimpleNamespace(records=learned, rows=summarize_records(learned))) == []


def test_a_mark_of_one_point_is_written_beside_it_in_the_accuracy_figure(tmp_path, monkeypatch):
    """`(pruned nothing)` at one budget of a line was dropped from the legend (it names the line's common marks),
    and nothing on the figure said why that point stood 12 points above the rest (a walkthrough): written beside
    the point."""
    from neuralscale import figures
    drawn, real_save = [], figures._save
    monkeypatch.setattr(figures, "_save",
                        lambda fig, path, *a, **k: (drawn.append(fig), real_save(fig, path, *a, **k))[1])
    rows = [dict(label="l1-prune", shown="l1-prune" + (" (pruned nothing)" if r == 1.0 else ""), params=p,
                 macs=p * 20, latency_ms=None, mean=80.0 + i, std=0.5, n=2, min=79.0, max=81.0 + i,
                 budget_key=["ratio", r], marks=["pruned nothing"] if r == 1.0 else [])
            for i, (p, r) in enumerate([(3_000, 0.25), (40_000, 1.0)])]
    figures.accuracy_figure(rows, "params", tmp_path, "a mark at one point", "accuracy (%)")
    ax = drawn[0].axes[0]
    assert [t.get_text() for t in ax.texts] == ["pruned nothing"] and ax.texts[0].xy == (40_000, 81.0)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["l1-prune (n=2)"]
    # an unstable latency, as the table flags it, beside its point in the latency figure
    timed = [{**r, "latency_ms": 1.0 + i, "latency_iqr_ms": 0.1, "latency_unstable": i == 0, "marks": []}
             for i, r in enumerate(rows)]
    figures.accuracy_figure(timed, "latency", tmp_path, "timed", "accuracy (%)")
    assert [(t.get_text(), t.xy) for t in drawn[-1].axes[0].texts] == [("unstable latency", (1.0, 80.0))]
    # two lines' marks at one point (two baselines that both pruned nothing there, at one accuracy): each written
    # clear of the other (they were written over each other), beside its own point
    both = rows + [{**r, "label": "l1-global", "shown": r["shown"].replace("l1-prune", "l1-global")} for r in rows]
    for fmt in ("png", "svg"):
        figures.accuracy_figure(both, "params", tmp_path, "two marks at one point", "accuracy (%)", formats=(fmt,))
        fig = drawn[-1]
        fig.canvas.draw()
        texts = fig.axes[0].texts
        assert [(t.get_text(), t.xy) for t in texts] == [("pruned nothing", (40_000, 81.0))] * 2
        a, b = (t.get_window_extent() for t in texts)
        assert not a.overlaps(b), (a, b)
        # at the last budget, left of the point: it ran off the figure
        assert all(t.get_window_extent().x1 <= fig.axes[0].get_window_extent().x1 for t in texts)
        assert all(abs(t.get_window_extent().y0 - fig.axes[0].transData.transform((40_000, 81.0))[1])
                   < 30 * fig.dpi / 72 for t in texts), "a mark is far from its point"
    # ten lines' marks at one point, the highest of the figure: every one inside the axes, none over another (a
    # review: a stack of six ran over the title, and the tenth was written over the ninth)
    many = [{**r, "label": f"l1-{i}", "shown": f"l1-{i}"} for i in range(10) for r in rows]
    figures.accuracy_figure(many, "params", tmp_path, "ten marks at one point", "accuracy (%)", bands="none")
    fig = drawn[-1]
    fig.canvas.draw()
    frame, boxes = fig.axes[0].get_window_extent(), [t.get_window_extent() for t in fig.axes[0].texts]
    assert len(boxes) == 10 and all(frame.y0 <= b.y0 and b.y1 <= frame.y1 and b.x1 <= frame.x1 for b in boxes)
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
