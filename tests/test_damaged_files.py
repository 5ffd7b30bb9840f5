"""Every file neuralscale reads back, damaged field by field, for every command that reads it (issue 32).

The cases are generated: each field of a run record (RunRecord), a descent's fits.json (its laws and iterations)
and config.json, and a store's sweep.json, removed, set to a value of another type, set to null, made negative
or NaN where it is a number. Each damaged file is read by one of the commands that read it (in turn, so that every
command meets many fields), through the real entry point. A damage is either refused in one line naming the file
and the field (exit 2, no traceback, the file left as it was), or, where the format allows it (a field added in a
later release and so absent from older files, a null that means "not measured"), accepted (exit 0): ACCEPTED
below lists those, each with its reason, so that a field newly tolerated is a decision, not an accident.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import typing
from pathlib import Path

import pytest

from helpers import TINY_DESCENT_ARGS
from neuralscale import cli
from neuralscale.descent import ITERATION_TYPES
from neuralscale.scaling import ScalingLaw
from neuralscale.store import PLAN_FIELDS, RunRecord

VGG = ["--model", "vgg11", "--dataset", "synthetic"]
TINY = [*VGG, "--ratio", "0.0625", "--epochs", "1", "--train-subset", "32", "--test-subset", "8", "--device", "cpu",
        "--quiet"]
SWEEP = ["sweep", *VGG, "--methods", "uniform", "--ratios", "0.0625", "--seeds", "0", "--epochs", "1",
         "--train-subset", "32", "--test-subset", "8", "--device", "cpu", "--quiet"]

# what reads each file: {kind: (file relative to the world, [reader argv with {w} for the world's root])}
SCALE = ["scale", *VGG, "--from", "{w}/d", "--params", "20000"]
# the report reads every record and sweep.json whole before it draws anything; its figures (about 0.6 s each time
# a damage is accepted) are drawn from the summary rows, not from the files, and are tested in test_report.py
REPORT = ["report", "{w}/store", "--no-figures", "--out", "{w}/out/report"]
FILES = {
    "run record": ("run/record.json", [["export", "{w}/run", "--out", "{w}/out/model"],
                                       ["train", *TINY, "--out", "{w}/run"]]),
    "store record": ("store/runs/*/record.json", [REPORT,
                                                  [*SWEEP, "--out", "{w}/store"]]),
    "fits.json": ("d/fits.json", [[*SCALE, "--method", "neuralscale", "--iteration", "1"],
                                  ["info", *VGG, "--from", "{w}/d"],
                                  [*SCALE, "--method", "morphnet"],
                                  [*SCALE, "--method", "pruned", "--iteration", "1"]]),
    "law": ("d/fits.json", [[*SCALE, "--method", "neuralscale", "--iteration", "1"],
                            ["info", *VGG, "--from", "{w}/d"],
                            [*SCALE, "--method", "morphnet"],
                            [*SCALE, "--method", "pruned", "--iteration", "1"]]),
    "config.json": ("d/config.json", [[*SCALE, "--method", "neuralscale"],
                                      ["descend", *TINY_DESCENT_ARGS, "--out", "{w}/d", "--quiet"]]),
    "sweep.json": ("store/sweep.json", [REPORT,
                                        [*SWEEP, "--out", "{w}/store"]]),
}
RECORD_TYPES = typing.get_type_hints(RunRecord)
FIELDS = {
    "run record": RECORD_TYPES,
    "store record": RECORD_TYPES,
    "fits.json": {"model": str, "dataset": str, "objective": str, "descent": str, "laws": list},
    "law": {**{f.name: f.type for f in dataclasses.fields(ScalingLaw)}, **ITERATION_TYPES, "fallback_reason": str},
    "config.json": {"model": str, "dataset": str, "descent": dict, "data": dict},
    "sweep.json": PLAN_FIELDS,
}
DAMAGES = ("missing", "another type", "null", "negative", "NaN")
NUMERIC = ("int", "float")

# accepted by design: (kind, field, damage) -> why
_LATER = "a field added after the first release: files written before lack it, and it has a default"
_UNMEASURED = "null: not measured"
ACCEPTED = {
    **{(k, f, "missing"): _LATER for k in ("run record", "store record")
       for f in ("input", "normalization", "classes", "resumed", "data", "environment", "latency", "pruning",
                 "init", "error", "traceback")},
    **{("law", f, "missing"): _LATER for f in (
        "r2", "rows", "fallback", "origin", "note", "tau_range", "holdout_error", "holdout_rows", "objective",
        "final_widths", "half_widths", "half_reached", "epochs", "pruning_steps", "physical", "stop_reason", "notes",
        "final_val_acc")},
    ("law", "final_widths", "null"): "null: as absent (the start widths)",
    ("law", "half_widths", "null"): "null: as absent (the start widths)",
    ("law", "final_val_acc", "null"): _UNMEASURED,
    ("fits.json", "objective", "missing"): _LATER,
    ("fits.json", "descent", "missing"): _LATER,
    **{("law", "fallback_reason", d): "written for readers, never read back (the law's note is the reason)"
       for d in DAMAGES},
    ("sweep.json", "recipe", "missing"): "a store of neuralscale 0.1.0 (no recipe): a report reads it",
}
ACCEPTED_ONLY_BY = {("sweep.json", "recipe", "missing"): {0}}  # ... and a sweep refuses to add to it


def _type_name(tp) -> str:
    base = typing.get_origin(tp) or tp
    if base in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        base = next(a for a in typing.get_args(tp) if a is not type(None))
        base = typing.get_origin(base) or base
    return getattr(base, "__name__", str(base))


def _cases() -> list[tuple[str, str, str, int]]:
    out, turn = [], 0
    for kind, fields in FIELDS.items():
        readers = FILES[kind][1]
        for field, tp in fields.items():
            for damage in DAMAGES:
                if damage in ("negative", "NaN") and _type_name(tp) not in NUMERIC:
                    continue
                out += [(kind, field, damage, r) for r in ACCEPTED_ONLY_BY.get((kind, field, damage),
                                                                                {turn % len(readers)})]
                if (kind, field, damage) in ACCEPTED_ONLY_BY:  # and by every other reader refused
                    out += [(kind, field, damage, r) for r in range(len(readers)) if r not in
                            ACCEPTED_ONLY_BY[(kind, field, damage)]]
                turn += 1
    return out


CASES = _cases()


def _damaged(value, tp, damage: str):
    if damage == "null":
        return None
    if damage == "negative":
        return -1
    if damage == "NaN":
        return float("nan")
    return 5 if _type_name(tp) == "str" else "x"  # another type


@pytest.fixture(scope="module")
def world(tmp_path_factory, tiny_descent):
    root = tmp_path_factory.mktemp("damaged")
    assert cli.main(["train", *TINY, "--out", str(root / "run")]) == 0
    assert cli.main([*SWEEP, "--out", str(root / "store")]) == 0
    shutil.copytree(tiny_descent[0], root / "d")
    return root


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != ".lock" and "out" not in p.relative_to(root).parts}


@pytest.mark.parametrize("kind, field, damage, reader", CASES,
                         ids=[f"{k}-{f}-{d}-{FILES[k][1][r][0]}" for k, f, d, r in CASES])
def test_a_damaged_field_is_one_line_naming_it_or_accepted_by_design(world, kind, field, damage, reader, capsys):
    path = next(world.glob(FILES[kind][0]))
    pristine = path.read_text()
    data = json.loads(pristine)
    target = data["laws"][0] if kind == "law" else data
    if damage == "missing":
        if field not in target:
            pytest.skip(f"{field} is absent from this {kind} already")
        del target[field]
    else:
        target[field] = _damaged(target.get(field), FIELDS[kind][field], damage)
    damaged = json.dumps(data)
    path.write_text(damaged)
    try:
        before = _snapshot(world)
        args = [a.replace("{w}", str(world)) for a in FILES[kind][1][reader]]
        capsys.readouterr()
        code = cli.main(args)
        err = capsys.readouterr().err
        if (kind, field, damage) in ACCEPTED and reader in ACCEPTED_ONLY_BY.get((kind, field, damage), {reader}):
            assert code == 0, err
        else:
            lines = [x for x in err.splitlines() if x.strip()]
            assert code == 2 and len(lines) == 1 and lines[0].startswith("neuralscale: error: "), err
            assert str(path) in lines[0] and field in lines[0], lines[0]
            assert _snapshot(world) == before  # nothing written, nothing lost
        assert path.read_text() == damaged  # never repaired or replaced behind the user's back
    finally:
        path.write_text(pristine)
        shutil.rmtree(world / "out", ignore_errors=True)


@pytest.mark.parametrize("kind", ["run record", "store record"])
def test_a_damaged_count_inside_a_records_data_is_written_as_it_is(world, kind, capsys):
    """RunRecord checks that `data` is a table, not the counts in it: `train`'s line about a finished run and the
    report's selection note wrote them as numbers (a ValueError, or a KeyError where `data` was absent, which is
    accepted by design, reached the user as a traceback)."""
    path = next(world.glob(FILES[kind][0]))
    pristine = path.read_text()
    for data in ({"train": "many", "val": "some", "test": 8}, None):
        record = json.loads(pristine)
        record.update(data=data) if data else record.pop("data")
        path.write_text(json.dumps(record))
        try:
            capsys.readouterr()
            code = cli.main([a.replace("{w}", str(world)) for a in FILES[kind][1][0 if kind == "store record" else 1]])
            out, err = capsys.readouterr()
            assert code == 0 and "None" not in out, err
            if kind == "run record":  # the count as the record holds it, or none
                assert ("(on 'some' validation images)" in out) == bool(data) and "(on 4 " not in out, out
        finally:
            path.write_text(pristine)
            shutil.rmtree(world / "out", ignore_errors=True)


def test_the_generated_corpus_is_large():
    assert len(CASES) >= 200  # with test_bad_input.py's hand-written cases and test_provenance.py's


def _refused_by_every_reader(world: Path, kind: str, capsys) -> list[str]:
    """Each command that reads a `kind` file, run on the world: each must end in one error line (returned)."""
    out = []
    for args in FILES[kind][1]:
        capsys.readouterr()
        code = cli.main([a.replace("{w}", str(world)) for a in args])
        err = capsys.readouterr().err
        lines = [x for x in err.splitlines() if x.strip()]
        assert code == 2 and len(lines) == 1 and lines[0].startswith("neuralscale: error: "), err
        out.append(lines[0])
    return out


WHOLE = {  # a file damaged as a whole, as disks, editors and other tools damage files
    "empty": b"",
    "nested too deeply": b"[" * 100_000 + b"]" * 100_000,
    "an integer of 5000 digits": b'{"id": ' + b"9" * 5000 + b"}",
    "binary junk": bytes(range(256)) * 4,
    "UTF-16": '{"a": 1}'.encode("utf-16"),
    "a list": b"[1, 2, 3]",
    "a directory": None,
    "a link to /dev/zero": "/dev/zero",  # read to its end, it would take every byte of memory there is
    "a pipe": "fifo",  # read, it would wait for a writer for ever
}
WHOLE_CASES = [(kind, damage) for kind in ("run record", "store record", "fits.json", "config.json", "sweep.json")
               for damage in WHOLE]


@pytest.mark.parametrize("kind, damage", WHOLE_CASES, ids=[f"{k}-{d}" for k, d in WHOLE_CASES])
def test_a_file_damaged_as_a_whole_is_one_line_naming_it(world, kind, damage, capsys):
    path = next(world.glob(FILES[kind][0]))
    pristine = path.read_bytes()
    path.unlink()
    if WHOLE[damage] is None:
        path.mkdir()
    elif WHOLE[damage] == "/dev/zero":
        path.symlink_to("/dev/zero")
    elif WHOLE[damage] == "fifo":
        os.mkfifo(path)
    else:
        path.write_bytes(WHOLE[damage])
    try:
        for line in _refused_by_every_reader(world, kind, capsys):
            assert str(path) in line or str(path.parent) in line, line
    finally:
        shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
        path.write_bytes(pristine)
        shutil.rmtree(world / "out", ignore_errors=True)


NESTED = [("config", "epochs", "one"), ("config", "lr", -1), ("config", "batch_size", 0),
          ("config", "momentum", "x"), ("summary", "test_acc_at_best_val", 250), ("summary", "final_test_acc", -5),
          # a record's spec: checked field by field, and it must be this run's (it hashes to the record's id)
          ("spec", "model", 3), ("spec", "widths", ["8"]), ("spec", "latency_batches", "one"),
          ("spec", "unheard_of", 1), ("spec", "label", "another run"), ("spec", "init", {"run": 1})]


@pytest.mark.parametrize("kind", ["run record", "store record"])
@pytest.mark.parametrize("table, field, value", NESTED, ids=[f"{t}.{f}={v!r}" for t, f, v in NESTED])
def test_a_damaged_nested_field_is_one_line_naming_it(world, kind, table, field, value, capsys):
    """A record's training settings are read through TrainConfig's own checks, its accuracies are percentages
    and its spec is a run spec of this run, whichever command reads it."""
    _damaged_nested(world, kind, table, field, value, capsys)


NESTED_DESCENT = [("descent", "iterations", "two"), ("descent", "k", 0), ("descent", "prune_fraction", 2.0),
                  ("descent", "seed", -1), ("descent", "schedule", "fast")]


@pytest.mark.parametrize("table, field, value", NESTED_DESCENT, ids=[f"{t}.{f}={v!r}" for t, f, v in NESTED_DESCENT])
def test_a_damaged_descent_setting_is_one_line_naming_it(world, table, field, value, capsys):
    """A descent's recorded settings (config.json) are read through DescentConfig's own checks by every command
    that reads the descent."""
    _damaged_nested(world, "config.json", table, field, value, capsys)


NESTED_PLAN = [("config", "methods", ["nonsense"]), ("config", "seeds", "one"), ("config", "ratios", [-0.5]),
               ("config", "descent_from_store", 5), ("config", "finetune_epochs", -1)]


@pytest.mark.parametrize("table, field, value", NESTED_PLAN, ids=[f"{t}.{f}={v!r}" for t, f, v in NESTED_PLAN])
def test_a_damaged_sweep_setting_is_one_line_naming_it(world, table, field, value, capsys):
    """A store's recorded sweep settings (sweep.json's config) are read through SweepConfig's own checks by the
    sweep and the report."""
    _damaged_nested(world, "sweep.json", table, field, value, capsys)


def _damaged_nested(world, kind, table, field, value, capsys) -> None:
    path = next(world.glob(FILES[kind][0]))
    pristine = path.read_text()
    data = json.loads(pristine)
    data[table][field] = value
    path.write_text(json.dumps(data))
    try:
        for line in _refused_by_every_reader(world, kind, capsys):
            assert str(path) in line and table in line, line
    finally:
        path.write_text(pristine)
        shutil.rmtree(world / "out", ignore_errors=True)


@pytest.mark.parametrize("kind, field, value", [
    ("store record", "budget", {"metric": "params", "value": 999999, "ratio": 0.5}),  # a phantom row
    ("store record", "seed", 5),  # counted as another seed
    ("store record", "label", "morphnet"),
    ("run record", "dataset", "cifar10"),  # exported as another dataset's network
    ("run record", "widths", "+1"),
    ("run record", "model", "resnet18")])
def test_a_records_field_that_its_spec_or_widths_contradict_is_refused(world, kind, field, value, capsys):
    """A record's fields that its spec says too (checked against its id) are what the spec says: one edited by hand
    is refused in one line, not believed (an adversarial pass: a phantom row, a run counted as another seed, an
    export labelled with another dataset). (Counts against widths: test_report.py, a store of several runs.)"""
    path = next(world.glob(FILES[kind][0]))
    pristine = path.read_text()
    record = json.loads(pristine)
    record[field] = [w + 1 for w in record["widths"]] if value == "+1" else value
    path.write_text(json.dumps(record))
    try:
        before = _snapshot(world)
        capsys.readouterr()
        code = cli.main([a.replace("{w}", str(world)) for a in FILES[kind][1][0]])
        lines = [x for x in capsys.readouterr().err.splitlines() if x.strip()]
        assert code == 2 and len(lines) == 1 and lines[0].startswith("neuralscale: error: "), lines
        assert f"{field} " in lines[0] and (str(path) in lines[0] or record["id"] in lines[0]), lines[0]
        assert _snapshot(world) == before
    finally:
        path.write_text(pristine)
        shutil.rmtree(world / "out", ignore_errors=True)


@pytest.mark.parametrize("field", ["start_widths", "final_widths", "half_widths"])
def test_a_law_whose_width_no_network_can_have_is_said_of_its_file(world, field, capsys):
    """A descent's recorded widths past what any layer can have (70,000 channels) are fits.json's damage, said
    naming the file by every command that reads it, not as if the user had asked for those widths (an adversarial
    pass: 'width 1 (conv1) must be between 1 and 65536')."""
    path = next(world.glob(FILES["fits.json"][0]))
    pristine = path.read_text()
    data = json.loads(pristine)
    for law in data["laws"]:
        law[field] = [70_000, *law["start_widths"][1:]]
    path.write_text(json.dumps(data))
    try:
        for line in _refused_by_every_reader(world, "fits.json", capsys):
            assert str(path) in line and f"{field} must be" in line, line
    finally:
        path.write_text(pristine)
        shutil.rmtree(world / "out", ignore_errors=True)
