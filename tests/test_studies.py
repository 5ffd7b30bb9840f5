"""A committed study's report is rebuilt from its committed records alone: its numbers are the records', and
the tables of studies/README.md are its reports' tables."""

from __future__ import annotations

import csv
import importlib.util
import json
import re
import statistics
from pathlib import Path

import pytest

from helpers import run_cli
from neuralscale.experiment import load, prepare
from neuralscale.store import budget_key, load_records

STUDIES = Path(__file__).resolve().parents[1] / "studies"
_spec = importlib.util.spec_from_file_location("study_tables", STUDIES / "tables.py")
tables = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tables)
STORES = tables.committed_stores()


@pytest.mark.parametrize("store", STORES, ids=[f"{s.parent.name}/{s.name}" for s in STORES])
def test_a_study_report_comes_from_its_records_alone(store, tmp_path):
    # what is committed (a study may be running in this checkout), finished runs only
    copy = tables.committed_copy(store.parent, tmp_path / store.parent.name) / store.name
    r = run_cli("report", str(copy), "--format", "png")
    if not load_records(copy):  # a store planned, none of its runs committed yet: one clear line
        assert r.returncode == 2 and r.stderr.strip().endswith("holds no run records"), r.stderr
        return
    assert r.returncode == 0, r.stderr
    summary = json.loads((copy / "report" / "summary.json").read_text())
    records = [x for x in load_records(copy) if x["status"] == "finished"]
    assert summary["rows"] and sum(row["n"] for row in summary["rows"]) == len(records)
    for row in summary["rows"]:
        mine = [x["summary"]["test_acc_at_best_val"] for x in records
                if x["label"] == row["label"] and list(budget_key(x)) == row["budget_key"]]
        assert sorted(mine) == sorted(row["values"]) and row["n"] == len(mine)
        assert abs(row["mean"] - statistics.fmean(mine)) < 0.01
    if json.loads((store / "sweep.json").read_text())["config"].get("descent"):  # its descent, found in the copy
        assert (copy / "report" / "heatmap.png").exists(), (copy / "report" / "report.md").read_text()


def test_the_readme_tables_are_the_reports_tables(tmp_path, capsys):
    """`python studies/tables.py --check`, run here as its main() (its reports made once per process)."""
    text = (STUDIES / "README.md").read_text()
    stores = [name.split(":")[0] for m in tables.BLOCK.finditer(text)  # a paired table names STORE:LABEL - ...
              for name in re.split(r"[\s;]+", m["store"].split("|")[0]) if name and name != "-"]
    assert stores and all((STUDIES / s / "sweep.json").exists() for s in stores), stores
    assert tables.main(["--check"]) == 0, capsys.readouterr().err
    # the check can fail: one number changed in a copy of the README's first table
    m = next(tables.BLOCK.finditer(text))
    row = m["table"].splitlines()[2]
    acc = next(cell for cell in row.split(" | ") if "±" in cell)  # the first row's accuracy, made up
    changed = m.group(0).replace(row, row.replace(acc, "99.99 ± 0.00", 1))
    assert changed != m.group(0)
    (tmp_path / "README.md").write_text("# a copy\n\n" + changed)
    assert tables.main(["--check", "--readme", str(tmp_path / "README.md")]) == 1
    assert f"the table of {m['store']}" in capsys.readouterr().err
    # a store of a rows table without the row named: said, not dropped (a row that gained a mark, "neuralscale@1
    # (extrapolated)", was left out of the warm-up table without a word; an audit found it)
    with pytest.raises(SystemExit, match=r"the report of fmnist-vgg11/params has no row neuralscale@1 at ratio "
                                         r"0\.0625; its rows there: .*neuralscale@1 \(extrapolated\)"):
        tables.rows_table(["fmnist-vgg11/params"], "neuralscale@1", "ratio 0.0625")


def test_latency_of_every_configuration_of_a_store(tmp_path):
    """studies/latency.py measures each configuration a store trained, one row each, with its widths."""
    store = STORES[0]
    copy = tables.committed_copy(store.parent, tmp_path / store.parent.name) / store.name
    out = tmp_path / "latency.csv"
    spec = importlib.util.spec_from_file_location("study_latency", STUDIES / "latency.py")
    latency = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(latency)
    import torch
    threads = torch.get_num_threads()
    try:  # its main(), here: the script sets the thread count it measures at, given back after
        assert latency.main([str(copy), "--out", str(out), "--rounds", "2", "--calls", "1"]) == 0
    finally:
        torch.set_num_threads(threads)
    rows = list(csv.DictReader(out.open()))
    records = [x for x in load_records(copy) if x["status"] == "finished"]
    want = {(x["label"], ",".join(map(str, x["widths"]))) for x in records}
    assert {(row["label"], row["widths"]) for row in rows} == want and len(rows) == len(want)
    assert all(float(row["median_ms"]) > 0 and row["rounds"] == "2" and row["threads"] == "1" for row in rows)


def test_a_row_table_takes_one_method_at_one_budget_from_each_store():
    store = STORES[0]
    name = f"{store.parent.name}/{store.name}"
    whole = tables._tables(tables.report_table(store))[0]
    head, first = whole[0], whole[1]
    rows = tables._tables(tables.table_for(f"{name} {name} | {first[0]} | {first[1]}"))[0]
    assert rows[0][:2] == ["store", "method"] and len(rows) == 3  # the header and the row, once per store named
    for row in rows[1:]:
        assert row[0] == name and row[1:3] == first[:2]
        for col in tables.ROW_COLUMNS:
            assert row[1 + tables.ROW_COLUMNS.index(col)] == first[head.index(col)]
        assert row[-1] and all(w.isdigit() for w in row[-1].split(","))  # its widths


def test_a_row_table_takes_the_method_under_any_of_its_names():
    store = STORES[0]
    name = f"{store.parent.name}/{store.name}"
    whole = tables._tables(tables.report_table(store))[0]
    first, other = whole[1], next(r for r in whole[2:] if r[0] != whole[1][0] and r[1] == whole[1][1])
    one = tables._tables(tables.table_for(f"{name} | no-such-method, {first[0]} | {first[1]}"))[0]
    assert [r[1] for r in one[1:]] == [first[0]]
    both = tables._tables(tables.table_for(f"{name} | {first[0]}, {other[0]} | {first[1]}"))[0]
    assert [r[1] for r in both[1:]] == [first[0], other[0]]  # in the report's order
    with pytest.raises(SystemExit, match=f"has no row no-such-method at {re.escape(first[1])}; its rows there: "):
        tables.table_for(f"{name} | no-such-method | {first[1]}")  # (it was the header alone, without a word)


def _mean_ci(values: list[float]) -> str:
    """A mean and its 95% interval (Student's t), as the tables print it, by hand."""
    import math
    mean = statistics.fmean(values)
    t = {2: 12.706, 3: 4.303, 4: 3.182, 5: 2.776, 6: 2.571}[len(values)]  # Student's t, 97.5%, n - 1 degrees
    half = t * statistics.stdev(values) / math.sqrt(len(values))
    return f"{mean:+.2f} [{round(mean - half, 2):+.2f}, {round(mean + half, 2):+.2f}]"


def test_a_gap_change_table_is_the_mean_change_of_each_seeds_gap():
    """`STORE | gap change OTHER`: per seed, (method - uniform) in STORE minus (method - uniform) in OTHER, at the
    same budget; computed here again from the committed records, by hand."""
    longer, regime = STUDIES / "fmnist-vgg11-regime" / "longer", STUDIES / "fmnist-vgg11-regime" / "regime"
    rows = tables._tables(tables.table_for("fmnist-vgg11-regime/longer | gap change fmnist-vgg11-regime/regime"))[0]
    assert rows[0][3:6] == ["gap to uniform, paired (sel.), 20 epochs", "gap to uniform, paired (sel.), 60 epochs",
                            "change, 60 minus 20 epochs (sel.) [95% CI]"]

    def accs(store: Path, key: str) -> dict:
        return {(r["label"], r["budget"]["ratio"], r["seed"]): r["summary"][key]
                for r in tables._committed_records(store)}
    from neuralscale.stats import t_pvalue
    pvalues = []
    assert {row[0] for row in rows[1:]} == {"morphnet", "neuralscale@15"}
    for row in rows[1:]:
        label, ratio = row[0], float(row[1].split()[1])
        for key, cells in (("test_acc_at_best_val", (row[3], row[4], row[5])),
                           ("final_test_acc", (None, None, row[6]))):
            new, old = accs(longer, key), accs(regime, key)
            seeds = sorted(s for (m, q, s) in new if m == label and q == ratio
                           and all((x, ratio, s) in d for x in (label, "uniform") for d in (new, old)))
            assert len(seeds) == int(row[2]) >= 2
            new_gap = [new[label, ratio, s] - new["uniform", ratio, s] for s in seeds]
            old_gap = [old[label, ratio, s] - old["uniform", ratio, s] for s in seeds]
            want = (_mean_ci(old_gap), _mean_ci(new_gap), _mean_ci([a - b for a, b in zip(new_gap, old_gap)]))
            assert [c.strip("*") for c in cells if c is not None] == [w for c, w in zip(cells, want) if c is not None]
            if key == "test_acc_at_best_val":  # the paired t-test of the change
                d = [a - b for a, b in zip(new_gap, old_gap)]
                pvalues.append(t_pvalue(statistics.fmean(d) / (statistics.stdev(d) / len(d) ** 0.5), len(d) - 1))
        p = pvalues[-1]
        assert row[7].split()[0] == ("<0.001" if p < 0.001 else f"{p:.3f}")
    first, second = sorted(pvalues)  # Holm over the two rows, by hand
    holds = {first: first <= 0.025, second: first <= 0.025 and second <= 0.05}
    assert [row[7].endswith("**holds**") for row in rows[1:]] == [holds[p] for p in pvalues]
    with pytest.raises(SystemExit, match="gap change OTHER_STORE"):
        tables.table_for("fmnist-vgg11-regime/longer | gap change")


def test_a_gap_change_pairs_each_seeds_final_accuracy_by_seed(monkeypatch):
    """Seeds past 9 (whose run folders sort before seed 2's) and seed sets that differ between the stores: the
    final-epoch column pairs seed with seed, as the selected one does (records whose two accuracies are equal
    give equal columns)."""
    import random
    template = next(r for r in tables._committed_records(STUDIES / "fmnist-vgg11-regime" / "longer")
                    if r["label"] == "uniform")
    rng, stores = random.Random(0), {}
    for store, seeds in (("short", range(11)), ("long", range(12))):
        stores[store] = []
        for label in ("uniform", "morphnet"):
            for seed in sorted(seeds, key=str):  # in run-folder order: s0, s1, s10, s11, s2, ...
                acc = round(rng.uniform(85, 95), 2)
                stores[store].append({**template, "id": f"{label}-s{seed}", "label": label, "method": label,
                                      "seed": seed, "summary": {**template["summary"], "test_acc_at_best_val": acc,
                                                                "final_test_acc": acc}})
    monkeypatch.setattr(tables, "_committed_records", lambda store: stores[store.name])
    header, row = tables._tables(tables.gap_change_markdown(Path("long"), Path("short")))[0]
    assert row[:3] == ["morphnet", "ratio 0.0625", "11"] and row[5] == row[6] and "[" in row[5]


def test_a_paired_table_is_each_pairs_mean_difference_by_seed():
    """`STORE:LABEL - STORE:LABEL; ... | paired | BUDGET`: computed here again from the committed records."""
    spec = ("fmnist-vgg11-regime/longer:uniform - fmnist-vgg11-regime/longer-cpu:uniform; "
            "fmnist-vgg11-regime/longer:neuralscale@15 - fmnist-vgg11-regime/longer:morphnet | paired | ratio 0.0625")
    head, *rows = tables._tables(tables.table_for(spec))[0]
    study = "fmnist-vgg11-regime"
    assert [r[:2] for r in rows] == [[f"{study}/longer:uniform", f"{study}/longer-cpu:uniform"],
                                     [f"{study}/longer:neuralscale@15", f"{study}/longer:morphnet"]]
    for row in rows:
        (a_store, a_label), (b_store, b_label) = (ref.split(":") for ref in row[:2])
        for key, cell in (("test_acc_at_best_val", row[6]), ("final_test_acc", row[7])):
            a, b = ({r["seed"]: r["summary"][key] for r in tables._committed_records(STUDIES / store)
                     if r["label"] == label and r["budget"]["ratio"] == 0.0625}
                    for store, label in ((a_store, a_label), (b_store, b_label)))
            assert len(a) == len(b) == int(row[3]) == 5
            assert cell.strip("*") == _mean_ci([a[s] - b[s] for s in sorted(a)])
    with pytest.raises(SystemExit, match="STORE:LABEL - STORE:LABEL"):
        tables.table_for("fmnist-vgg11-regime/longer:uniform | paired | ratio 0.0625")
    with pytest.raises(SystemExit, match="no finished nothing"):
        tables.table_for("fmnist-vgg11-regime/longer:uniform - fmnist-vgg11-regime/longer:nothing | paired | "
                         "ratio 0.0625")


def test_a_report_says_which_runs_trained_on_which_device_where_a_store_mixes_them():
    """`longer/` trained uniform and MorphNet on an H200 and NeuralScale@15 on a CPU; `longer-cpu/` all on a CPU."""
    from neuralscale.report import device_note
    mixed = tables.report_markdown(STUDIES / "fmnist-vgg11-regime" / "longer")
    assert ("**The runs trained on several devices**: NVIDIA H200 (bf16 autocast): 10 run(s) (morphnet, uniform); "
            "cpu (float32): 5 run(s) (neuralscale@15).") in mixed
    assert "several devices" not in tables.report_markdown(STUDIES / "fmnist-vgg11-regime" / "longer-cpu")
    records = tables._committed_records(STUDIES / "fmnist-vgg11-regime" / "longer")
    assert device_note([{**r, "environment": {}} if r["label"] == "uniform" else r for r in records]) \
        .startswith("**The runs trained on several devices**: NVIDIA H200 (bf16 autocast): 5 run(s) (morphnet); cpu "
                    "(float32): 5 run(s)")
    assert device_note([r for r in records if r["label"] != "neuralscale@15"]) == ""  # one device: nothing to say


EXPERIMENT_FILES = sorted(STUDIES.glob("*/*.toml"))


@pytest.mark.parametrize("path", EXPERIMENT_FILES, ids=[f"{p.parent.name}/{p.name}" for p in EXPERIMENT_FILES])
def test_every_study_file_is_ready_to_run(path, tmp_path, fashion_data):
    """Each experiment file of studies/ passes the whole check that `neuralscale experiment` makes before any
    work (model, dataset, every section), and its store is the folder beside it that holds its records."""
    exp = prepare(path, out=tmp_path / "out")
    assert exp.sweep.methods and exp.sweep.seeds
    store = path.parent / load(path)["experiment"]["out"]
    assert store.parent == path.parent and store.name != path.parent.name


# files that train part of another file's sweep into its store ahead of it (while its descent runs): each run they
# plan must be one the whole file plans, with the same id, or the whole's sweep would train it again
PARTS = {"fmnist-vgg11-regime/early.toml": "fmnist-vgg11-regime/regime.toml",
         "fmnist-vgg11-regime/first.toml": "fmnist-vgg11-regime/regime.toml",
         "fmnist-vgg11-regime/longer-first.toml": "fmnist-vgg11-regime/longer.toml"}


@pytest.mark.parametrize("part", sorted(PARTS))
def test_a_part_of_a_studys_sweep_plans_the_runs_its_whole_plans(part, tmp_path, fashion_data):
    import shutil
    from neuralscale.sweep import plan
    study = tmp_path / "study"  # the files and the committed descents they plan from, away from running work
    shutil.copytree(STUDIES / Path(part).parent, study, ignore=lambda d, names: [
        n for n in names if n in ("runs", "report") or n.endswith((".ckpt", ".lock", ".pt"))])
    ids = {}
    for name in (part, PARTS[part]):
        exp = prepare(study / Path(name).name)
        assert load(STUDIES / name)["experiment"]["out"] == load(STUDIES / part)["experiment"]["out"]  # one store
        ids[name] = {spec.id for spec in plan(exp.sweep)}
    assert ids[part] and ids[part] <= ids[PARTS[part]], sorted(ids[part] - ids[PARTS[part]])


def test_the_gpu_script_runs_study_files_that_exist():
    text = (STUDIES / "gpu.sh").read_text()
    default = re.search(r'STUDIES=\$\{STUDIES:-"([^"]+)"\}', text)
    assert default, "gpu.sh names its default experiment files in STUDIES"
    names = default[1].split()
    assert names and all((STUDIES.parent / n).is_file() for n in names), names
    assert set(names) <= {str(p.relative_to(STUDIES.parent)) for p in EXPERIMENT_FILES}


# every committed descent: a store's descent/, or a study's own folder of one (fmnist-vgg11-regime/all-lost)
DESCENTS = sorted({p.parent for p in STUDIES.glob("*/*/descent/fits.json")}
                  | {p.parent for p in STUDIES.glob("*/*/fits.json") if (p.parent / "config.json").is_file()})


@pytest.mark.parametrize("path", DESCENTS, ids=[p.relative_to(STUDIES).as_posix() for p in DESCENTS])
def test_a_studys_laws_are_what_fitting_its_trajectories_gives(path):
    """Every committed law is its committed trajectory, fitted again now with the descent's own settings: the
    same exponents and R^2 (to rounding), and, where the record has one, the same out-of-sample error (regime's
    iteration 1 had it added from its trajectory, after the fit learnt to check a layer whose rows start late)."""
    import neuralscale as ns
    from neuralscale.descent import DescentDir
    from neuralscale.scaling import fit
    d = DescentDir(path)
    recorded = json.loads(d.fits_path.read_text())["laws"]  # as written: an empty out-of-sample error is compared too
    config = d.config() or {}
    space = d.start_space(ns.space(config["model"], config["dataset"]))
    per_layer = (config.get("descent") or {}).get("trajectory_start") == "per-layer"
    objective = d.objective()
    for it in d.iterations():
        law = it.law
        if law.fallback or objective not in ("params", "macs"):
            continue
        again = fit(space, d.trajectory(it.number, space), iteration=it.number,
                    count="original" if "original formula" in law.note else "exact",
                    start=it.start_widths if per_layer else None,
                    objective=d.objective_over(space) if objective != "params" else None)
        where = f"{path.relative_to(STUDIES)} iteration {it.number}"
        assert again.rows == law.rows, where
        for got, want in ((again.alpha, law.alpha), (again.beta, law.beta), (again.r2, law.r2),
                          (again.tau_range, law.tau_range)):
            assert got == pytest.approx(want, rel=1e-7, abs=1e-9), where
        if "holdout_error" in recorded[it.number - 1]:  # laws written before neuralscale recorded it have none
            assert again.holdout_rows == law.holdout_rows, where
            assert again.holdout_error == pytest.approx(law.holdout_error, rel=1e-7, abs=1e-9), where


def test_a_descent_table_names_its_objective_where_a_report_has_several():
    """`STORE | descent` embeds the report's descent table; where the report has descents of several objectives
    (fmnist-resnet18/macs: its MACs descent and the parameters one it compares with), the marker must name one."""
    with pytest.raises(SystemExit, match="several objectives; name one: 'descent macs', 'descent params'"):
        tables.table_for("fmnist-resnet18/macs | descent")
    from neuralscale.descent import DescentDir
    for objective in ("macs", "params"):
        rows = tables.table_for(f"fmnist-resnet18/macs | descent {objective}").splitlines()[2:]
        d = DescentDir(STUDIES / "fmnist-resnet18" / objective / "descent")
        assert [r.split(" | ")[4] for r in rows] == [str(law.rows) for law in d.laws()]
    with pytest.raises(SystemExit, match="no descent of latency"):
        tables.table_for("fmnist-resnet18/macs | descent latency")
