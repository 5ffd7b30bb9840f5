"""The shape of the code: one-way imports, one owner per concept, short functions, and records of the last release."""

from __future__ import annotations

import ast
import json
import re
import shutil
from pathlib import Path

import torch

import neuralscale as ns

SRC = Path(__file__).resolve().parents[1] / "src" / "neuralscale"
RELEASE = Path(__file__).resolve().parent / "data" / "release-0.1.0"  # files written by neuralscale 0.1.0 (6d94904)


def _module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    """Every module of the package and the package modules it imports, at the top or inside functions."""
    modules = {_module_name(p): p for p in SRC.rglob("*.py")}
    edges: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        out: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = package.split(".")
                base = base[:len(base) - node.level + 1] if node.level else []
                target = ".".join(base + ([node.module] if node.module else [])) if node.level else node.module
                if not target or not target.startswith("neuralscale"):
                    continue
                submodules = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in modules]
                out |= set(submodules) if submodules else {target}
            elif isinstance(node, ast.Import):
                out |= {a.name for a in node.names if a.name.startswith("neuralscale")}
        edges[name] = out - {name}
    return edges


def test_imports_point_one_way():
    edges = _imports()
    assert "neuralscale.zoo" in edges and len(edges) > 30
    # no module imports the package's own __init__ (neuralscale), which imports almost everything
    importers = sorted(m for m, e in edges.items() if "neuralscale" in e and m != "neuralscale")
    assert not importers, importers
    # no cycle, through imports at the top or inside functions
    state: dict[str, int] = {}

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for n in sorted(edges.get(m, ())):
            if state.get(n) == 1:
                raise AssertionError("import cycle: " + " -> ".join(path[path.index(n):] + [n]))
            if n not in state:
                visit(n, path + [n])
        state[m] = 2
    for m in sorted(edges):
        if m not in state:
            visit(m, [m])


# docs/ARCHITECTURE.md's layers, top to bottom: a module imports from its own row or the rows above it
LAYERS = {"foundations": ["errors", "_version", "validate", "settings", "budget", "records", "layout", "logs",
                          "progress", "threads", "collector", "memory", "command"],
          "data": ["data/", "reference/"],
          "models": ["models/", "accounting"],
          "spaces": ["space", "initialise", "generic", "modelfile", "zoo", "latency", "objective"],
          "training": ["sgd", "captured", "train", "estimate"],
          "pruning": ["graph", "importance", "pruning/"],
          "laws": ["scaling", "descent", "loop", "methods"],
          "runs": ["spec", "store", "baselines", "runs"],
          "orchestration": ["executors", "sweep", "stats", "figures", "guard", "report", "export"],
          "entry points": ["api", "experiment", "cli", "__main__", "__init__"]}


def test_imports_point_down_the_layers_and_the_docs_list_them():
    """Each module imports only from its own layer or the layers above it (docs/ARCHITECTURE.md); every module has
    a layer, and the documented table names the same modules in the same layers."""
    rows = {m.rstrip("/"): i for i, ms in enumerate(LAYERS.values()) for m in ms}

    def row(module: str) -> int:
        part = module.split(".")[1] if module != "neuralscale" else "__init__"
        assert part in rows, f"{module} is in no layer of docs/ARCHITECTURE.md"
        return rows[part]
    upward = [f"{m} -> {t}" for m, ts in _imports().items() for t in ts if row(t) > row(m)]
    assert not upward, upward
    doc = (Path(__file__).resolve().parents[1] / "docs" / "ARCHITECTURE.md").read_text()
    table = {}
    for line in doc.splitlines():
        cells = [c.strip() for c in line.split("|")[1:-1]]
        if len(cells) == 3 and cells[0] in LAYERS:
            table[cells[0]] = sorted({m for m in re.findall(r"`([\w/]+)`", cells[1]) if m.rstrip("/") in rows})
    assert list(table) == list(LAYERS)
    for layer, modules in LAYERS.items():
        assert table[layer] == sorted(modules), (layer, table[layer])
        assert all((SRC / (m if m.endswith("/") else m + ".py")).exists() for m in modules), modules
    # every name in the modules column is a module: one of the layers', or one inside a package named before it
    inside = {p.stem for p in SRC.glob("*/*.py")}
    for line in doc.splitlines():
        cells = [c.strip() for c in line.split("|")[1:-1]]
        if len(cells) == 3 and cells[0] in LAYERS:
            stray = [m for m in re.findall(r"`([^`]+)`", cells[1]) if m.rstrip("/") not in rows and m not in inside]
            assert not stray, (cells[0], stray)


def _code_strings(path: Path) -> list[str]:
    """The string constants of a module's code (f-strings' literal parts too), its docstrings left out."""
    tree = ast.parse(path.read_text())
    docs = {id(n.body[0].value) for n in ast.walk(tree)
            if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and n.body
            and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    return [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
            and id(n) not in docs]


def test_each_file_name_has_one_owner():
    """Every file or folder name of a run, a store, a report, an experiment and a descent is spelled in one module
    (layout.py names the first four, descent.DescentDir its own); every other module asks them for paths."""
    layout = {"layout.py"}
    owners = {'"record.json"': layout, '"sweep.json"': layout, '/ "runs"': layout, '"checkpoint.pt"': layout,
              '"metrics.csv"': layout, '/ "weights"': layout, '/ "report"': layout, '"report.md"': layout,
              '"report.html"': layout, '"summary.json"': layout, '"widths.png"': layout, '"heatmap.png"': layout,
              'acc_vs_': layout, 'growth_iteration_': layout, '/ "descent"': layout,
              '".lock"': {"records.py"}, '"log.txt"': layout | {"descent.py"},
              '"fits.json"': {"descent.py"}, '"config.json"': {"descent.py"}, '"iteration_': {"descent.py"},
              '.ckpt"': {"descent.py"}}
    code = {p.name: _code_strings(p) for p in SRC.rglob("*.py")}
    for literal, allowed in owners.items():
        if literal.startswith("/ "):  # a folder: joined onto a path
            found = {p.name for p in SRC.rglob("*.py") if literal in p.read_text()}
        else:  # a file name as a path part (help texts and docstrings may name files)
            n = literal.strip('"')
            found = {name for name, strings in code.items()
                     if any(x == n or x.endswith("/" + n) or (n.endswith("_") and x.startswith(n)) for x in strings)}
        assert found == allowed, (literal, found)
    # no path is made by joining a file name by hand: `/ "x.ext"` only in the two layout owners (and the data
    # readers, which own the datasets' upstream formats)
    joined = re.compile(r'/ f?"[\w.{}:]+\.(json|csv|pt|txt|md|html|png)"')
    joins = {p.name for p in SRC.rglob("*.py")
             if "data" not in p.relative_to(SRC).parts[:-1] and joined.search(p.read_text())}
    assert joins <= {"layout.py", "descent.py"}, joins


def test_functions_are_short():
    long = []
    for path in SRC.rglob("*.py"):
        lines = path.read_text().splitlines()
        for node in ast.walk(ast.parse("\n".join(lines))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 60:
                if "long on purpose:" not in lines[node.lineno - 1] + (lines[node.lineno] if node.lineno < len(lines)
                                                                       else ""):
                    long.append(f"{path.name}:{node.lineno} {node.name}")
    assert not long, long


def test_records_of_the_last_release_still_load(tmp_path):
    from neuralscale.descent import DescentDir, law_from, morphnet_widths
    from neuralscale.methods import scale
    from neuralscale.report import build_report
    from neuralscale.store import load_records, read_record
    release = tmp_path / "release"
    shutil.copytree(RELEASE, release)
    run = read_record(release / "run")
    assert run["status"] == "finished" and run["summary"]["final_test_acc"] is not None
    records = load_records(release / "sweep")
    assert [r["label"] for r in records] == ["neuralscale@2", "uniform"]
    # the old descent: its laws, MorphNet's widths, and scaling from it
    sp = ns.space("vgg11", "synthetic")
    its = DescentDir(release / "descent").iterations()
    assert [it.number for it in its] == [1, 2] and all(len(it.law.alpha) == 8 for it in its)
    assert law_from(release / "descent", sp).beta == its[-1].law.beta
    assert sum(morphnet_widths(release / "descent", sp)) > 0
    widths = scale(sp, "neuralscale", 20_000, source=release / "descent")["widths"]
    assert abs(sp.params(widths) - 20_000) <= 0.005 * 20_000
    # the report of the old store, from its records alone
    plan = json.loads((release / "sweep" / "sweep.json").read_text())
    plan["config"]["descent"] = str(release / "descent")
    (release / "sweep" / "sweep.json").write_text(json.dumps(plan))
    result = build_report(release / "sweep")
    assert len(result["rows"]) == 2 and "neuralscale@2" in result["markdown"].read_text()


class Inverted(ns.Importance):
    """A user's own criterion: prune the channels Taylor-FO would keep (a test that the interface is used)."""

    name = "inverted-taylor"

    def __init__(self):
        self.taylor = ns.importance.TaylorFO()
        self.calls = 0

    def observe(self, layers):
        self.taylor.observe(layers)

    def score(self, layer):
        self.calls += 1
        return -self.taylor.score(layer)

    def reset(self):
        self.taylor.reset()


def test_a_users_importance_runs_a_descent_iteration(tmp_path):
    from neuralscale.descent import DescentConfig
    imp = Inverted()
    cfg = DescentConfig(iterations=1, warmup_epochs=0, k=4, interval=2, batch_size=64, base_ratio=0.0625,
                        prune_fraction=0.5, device="cpu", prune_past_one=True, allow_fallback=True)
    laws = ns.descend("vgg11", "synthetic", tmp_path / "d", cfg, subset={"train": 256}, progress=False, importance=imp)
    assert len(laws) == 1 and imp.calls > 0
    # it decided: the same descent with Taylor-FO prunes other channels
    torch.manual_seed(0)
    taylor = ns.descend("vgg11", "synthetic", tmp_path / "t", cfg, subset={"train": 256}, progress=False)
    first = ns.descent.DescentDir(tmp_path / "d").iteration(1)
    other = ns.descent.DescentDir(tmp_path / "t").iteration(1)
    assert first.final_widths != other.final_widths and len(taylor) == 1


def test_budget_parsing_and_split_loading_have_one_definition_each():
    """A budget's spellings are read in budget.py alone, and a dataset is split into train / validation / test in
    DataConfig.splits alone: every door goes through them (grep would show a second one; this test does)."""
    percent, splitting = set(), set()
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and any(
                    isinstance(a, ast.Constant) and a.value == "%" for a in node.args):  # endswith("%"), rstrip...
                percent.add(path.name)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "split" \
                    and node.args and not isinstance(node.args[0], ast.Constant):  # ImageData.split(fraction, seed)
                splitting.add(str(path.relative_to(SRC)))
    assert percent == {"budget.py"}, percent
    assert splitting == {"data/__init__.py"}, splitting
