"""docs/CLI.md is every command's every option as the parser has them now (tools/cli_reference.py writes it): an
option added, renamed or re-described without the page rewritten fails here."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from helpers import run_python

ROOT = Path(__file__).resolve().parents[1]
TOOL = ROOT / "tools" / "cli_reference.py"


def test_the_page_is_what_the_parser_says_now():
    # in a process of its own: no family a test registered in this one is in --model's help
    code = f"import runpy, sys; sys.argv = ['cli_reference', '--check']; runpy.run_path({str(TOOL)!r}, run_name='__main__')"
    r = run_python(code)
    assert r.returncode == 0, r.stderr + "\n(run: python tools/cli_reference.py)"
    assert "is current" in r.stdout


def test_every_option_of_every_command_is_on_the_page():
    sys.path.insert(0, str(TOOL.parent))
    try:
        import cli_reference
    finally:
        sys.path.remove(str(TOOL.parent))
    from neuralscale.cli import build_parser

    page = cli_reference.render()
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert list(sub.choices) == ["info", "train", "descend", "fit", "scale", "sweep", "report", "export",
                                 "experiment"]
    for name, command in sub.choices.items():
        section = page.split(f"## `neuralscale {name}`", 1)[1].split("\n## ", 1)[0]
        for action in command._actions:
            for option in action.option_strings:
                if option not in ("-h", "--help"):
                    assert f"`{option}" in section, (name, option)
    # options once found in --help alone (a walkthrough of the docs): here with what they do
    assert "| `--momentum MOMENTUM` | SGD momentum (default 0.5, the paper's) |" in page
    assert "`--compile` | torch.compile the model |" in page
