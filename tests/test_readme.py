"""The README's walkthrough runs as written: its shell lines in subprocesses (the first through bash and the
installed script, the other `neuralscale` lines as the same argv forked by tests/cli_zygote.py), its Python twin
in-process, on a small image folder written here as `flowers/`."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import run_cli, write_imagefolder

README = Path(__file__).resolve().parents[1] / "README.md"


def _block(marker: str, language: str) -> str:
    text = README.read_text()
    start = text.index(f"<!-- walkthrough: {marker}")
    m = re.compile(rf"```{language}\n(.*?)```", re.S).search(text, start)
    assert m, f"no {language} block after the {marker} marker"
    return m.group(1)


def _commands(block: str) -> list[str]:
    joined = block.replace("\\\n", " ")
    return [line.strip() for line in joined.splitlines() if line.strip() and not line.strip().startswith("#")]


@pytest.fixture
def flowers(tmp_path, monkeypatch):
    write_imagefolder(tmp_path / "flowers", classes=3, per_class=8, size=32)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_cli_walkthrough_runs_as_written(flowers):
    commands = _commands(_block("cli", "sh"))
    assert [c.split()[1] if c.startswith("neuralscale") else c.split()[0] for c in commands] == \
        ["info", "descend", "scale", "train", "export", "python"]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    outputs = []
    for i, command in enumerate(commands):
        argv = shlex.split(command)
        if i and argv[0] == "neuralscale":  # the same command line, forked without re-importing torch
            r = run_cli(*argv[1:], timeout=600)
        else:  # through the shell and the installed `neuralscale` script, as a user types it
            r = subprocess.run(["bash", "-c", command], cwd=flowers, env=env, capture_output=True, text=True,
                               timeout=600)
        assert r.returncode == 0, (command, r.stderr[-2000:])
        outputs.append(r.stdout)
    assert "25.0% of the base model's parameters" in outputs[2] or "% of the base model's parameters" in outputs[2]
    record = json.loads((flowers / "runs" / "flowers-25" / "record.json").read_text())
    assert record["status"] == "finished" and record["label"].startswith("neuralscale@2")
    assert json.loads(outputs[-1].replace("'", '"').replace("(", "[").replace(")", "]")) == record["widths"]
    assert (flowers / "flowers-25.onnx").stat().st_size > 10_000


def test_the_python_walkthrough_runs_as_written(flowers):
    code = _block("python", "python")
    scope: dict = {}
    exec(compile(code, str(README), "exec"), scope)
    record, meta = scope["record"], scope["meta"]
    assert record["status"] == "finished" and meta["widths"] == record["widths"]
    space = scope["space"]
    share = space.params(record["widths"]) / space.params(space.base_widths)
    assert abs(share - 0.25) < 0.01


def test_the_api_reference_builds_without_warnings(tmp_path):
    """`make docs` (docs/api.py): every public module rendered from its docstrings, a pdoc warning failing it;
    the README links it."""
    pytest.importorskip("pdoc")
    sys.path.insert(0, str(README.parent / "docs"))
    try:
        import api
    finally:
        sys.path.pop(0)
    index = api.build(tmp_path / "api", source=False)
    assert index.is_file()
    top = (tmp_path / "api" / "neuralscale.html").read_text()
    for name in ("descend", "scale", "train", "Pruner", "DescentConfig", "load_model"):
        assert f'id="{name}"' in top, name  # what `import neuralscale as ns` offers
    for module in ("sweep", "methods", "threads", "estimate", "report", "budget"):
        assert (tmp_path / "api" / "neuralscale" / f"{module}.html").is_file(), module
    assert not (tmp_path / "api" / "neuralscale" / "cli.html").exists()
    assert "make docs" in README.read_text() and "docs/api/index.html" in README.read_text()
