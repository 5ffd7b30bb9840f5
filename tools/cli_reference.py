"""Write docs/CLI.md: every command of `neuralscale` and every option, with its help, from the parser itself.

`neuralscale COMMAND --help` says the same; the page is where a reader finds an option without running the tool
(some are in no other document). Made from the parser's actions, not argparse's formatted help, so that it reads
alike on every Python; tests/test_cli_reference.py fails when the page is not what this script writes now.

    python tools/cli_reference.py            # rewrite docs/CLI.md
    python tools/cli_reference.py --check    # exit 1 if docs/CLI.md is out of date
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

PAGE = Path(__file__).resolve().parents[1] / "docs" / "CLI.md"
HEAD = """# Command-line reference

Every command of `neuralscale` and every option, as `neuralscale COMMAND --help` gives them, written by
`tools/cli_reference.py` from the parser (a test fails when this page is not current; `neuralscale --version` says
which version is installed). The README's walkthrough and [`GUIDE.md`](GUIDE.md) say how the commands fit together.
"""


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|").replace("<", "&lt;")


def _help(action: argparse.Action, prog: str) -> str:
    if not action.help:
        return ""
    params = {**vars(action), "prog": prog}
    if params.get("choices") is not None:
        params["choices"] = ", ".join(map(str, params["choices"]))
    return action.help % params


def _option(action: argparse.Action) -> str:
    if not action.option_strings:  # a positional argument
        return f"`{action.metavar or action.dest}`".replace("|", "\\|")
    takes = action.nargs != 0
    metavar = action.metavar or (("{" + ",".join(map(str, action.choices)) + "}") if action.choices
                                 else action.dest.upper())
    return ", ".join(f"`{o} {metavar}`" if takes else f"`{o}`" for o in action.option_strings).replace("|", "\\|")


def _section(name: str, parser: argparse.ArgumentParser, summary: str) -> list[str]:
    lines = [f"## `neuralscale {name}`", "", _cell(summary) + ".", ""]
    if parser.description:
        lines += [_cell(parser.description), ""]
    exclusive = {id(a): g for g in parser._mutually_exclusive_groups for a in g._group_actions}
    lines += ["| option | what it does |", "| --- | --- |"]
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction) or action.help == argparse.SUPPRESS:
            continue
        group = exclusive.get(id(action))
        note = ""
        if group is not None:
            others = [a.option_strings[0] for a in group._group_actions if a is not action and a.option_strings]
            note = f" (not with {', '.join(f'`{o}`' for o in others)})" if others else ""
            if group.required:
                note += " (one of these is required)"
        elif action.required and action.option_strings:
            note = " (required)"
        lines.append(f"| {_option(action)} | {_cell(_help(action, parser.prog))}{note} |")
    lines.append("")
    if parser.epilog:
        lines += ["```", parser.epilog.strip("\n"), "```", ""]
    return lines


def render() -> str:
    from neuralscale.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    summaries = {c.dest: c.help for c in sub._choices_actions}
    lines = HEAD.splitlines() + [""]
    lines += [f"- [`{name}`](#neuralscale-{name}): {_cell(summaries[name])}" for name in sub.choices] + [""]
    for name, command in sub.choices.items():
        lines += _section(name, command, summaries[name])
    return "\n".join(lines).rstrip("\n") + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only say whether docs/CLI.md is current (exit 1 if not)")
    args = ap.parse_args(argv)
    text = render()
    if args.check:
        current = PAGE.read_text(encoding="utf-8") if PAGE.exists() else ""
        if current != text:
            print(f"{PAGE} is out of date: run python tools/cli_reference.py", file=sys.stderr)
            return 1
        print(f"{PAGE} is current")
        return 0
    PAGE.write_text(text, encoding="utf-8")
    print(f"wrote {PAGE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
