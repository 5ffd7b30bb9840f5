"""The real `neuralscale` command, in subprocesses."""

from __future__ import annotations

import json

import pytest

from helpers import run_cli, write_cifar, write_fashion


def test_help_reads_well():
    r = run_cli("--help")
    assert r.returncode == 0 and "info" in r.stdout and "train" in r.stdout and "examples:" in r.stdout
    r = run_cli("train", "--help")
    assert r.returncode == 0 and "--epochs" in r.stdout and "validation" in r.stdout


def test_every_argument_of_every_command_says_what_it_is():
    """A new user found sweep's recipe flags (--epochs, --lr, --schedule...), descend's --seed and --device, and
    export's RUN_DIR listed with no word on what they do or their defaults."""
    import argparse
    from neuralscale.cli import build_parser
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    silent = [f"{name} {a.option_strings[0] if a.option_strings else a.metavar or a.dest}"
              for name, p in sub.choices.items() for a in p._actions if not a.help]
    assert not silent, silent


def test_info_json_gives_reference_counts():
    r = run_cli("info", "--model", "vgg11", "--dataset", "cifar100", "--ratio", "0.25", "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["params"] == 591_396 and info["widths"] == [16, 32, 64, 64, 128, 128, 128, 128]
    assert info["macs"] == 9_892_352
    r = run_cli("info", "--model", "mobilenetv2", "--dataset", "tinyimagenet", "--convcut", "--json",
                "--widths", "32,16,24,24,32,32,32,64,64,64,64,96,96,96,160,160,160,320,1280")
    assert json.loads(r.stdout)["params"] == 2_663_720


def test_info_text_and_latency():
    r = run_cli("info", "--model", "resnet18", "--dataset", "cifar10", "--ratio", "0.125", "--latency", "--batch", "4")
    assert r.returncode == 0, r.stderr
    assert "params" in r.stdout and "latency batch 1" in r.stdout and "latency batch 4" in r.stdout


@pytest.mark.parametrize("args,needle", [
    (["info", "--model", "alexnet", "--dataset", "cifar10"], "unknown model"),
    (["info", "--model", "vgg11", "--dataset", "mnist"], "unknown dataset"),
    (["info", "--model", "vgg11", "--dataset", "cifar10", "--ratio", "-1"], "width ratio must be a number in (0, 64]"),
    (["info", "--model", "vgg11", "--dataset", "cifar10", "--widths", "8,8,8"], "8 gated layers, got 3"),
    (["info", "--model", "vgg11", "--dataset", "cifar10", "--widths", "8,x"], "integers"),
    # int() reads 6_4 as 64: not widths as anyone writes them
    (["info", "--model", "vgg11", "--dataset", "cifar10", "--widths", "6_4,128,256,256,512,512,512,512"], "integers"),
    (["info", "--model", "vgg11"], "required"),
    (["train", "--model", "vgg11", "--dataset", "cifar10", "--data-dir", "/definitely/not/here"], "does not exist"),
    (["train", "--model", "vgg11", "--dataset", "synthetic", "--epochs", "0"], "epochs"),
    (["frobnicate"], "invalid choice"),
    # a negative amount with a unit: the budget's own line, not argparse's "expected one argument"
    (["train", "--model", "vgg11", "--dataset", "synthetic", "--params", "-5%"], "got '-5%'"),
    (["scale", "--model", "vgg11", "--dataset", "synthetic", "--method", "uniform", "--macs", "-2M"], "got '-2M'"),
])
def test_bad_input_is_one_clear_line(args, needle):
    r = run_cli(*args)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], r.stderr


def test_corrupt_archive_is_one_clear_line(tmp_path):
    path = write_cifar(tmp_path, "cifar10", per_batch=4, n_test=4)
    path.write_bytes(b"\x1f\x8b" + b"garbage" * 20)
    r = run_cli("train", "--model", "vgg11", "--dataset", "cifar10", "--data-dir", str(tmp_path), "--epochs", "1")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "cifar-10-python.tar.gz" in r.stderr


def test_train_end_to_end_and_rerun_resumes(tmp_path):
    write_fashion(tmp_path / "data", n_train=200, n_test=40)
    out = tmp_path / "run"
    args = ["train", "--model", "vgg11", "--dataset", "fashionmnist", "--data-dir", str(tmp_path / "data"),
            "--ratio", "0.125", "--epochs", "2", "--batch-size", "32", "--out", str(out), "--json"]
    r = run_cli(*args)
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["params"] > 0 and 0 <= summary["summary"]["final_test_acc"] <= 100
    rec = json.loads((out / "record.json").read_text())
    assert len(rec["history"]) == 2 and len(rec["data"].pop("digest")) == 16  # (data.base.content_digest)
    assert rec["data"] == {"train": 180, "val": 20, "test": 40}
    again = run_cli(*args)  # finished: resumes from the checkpoint, trains nothing more
    assert again.returncode == 0
    assert "already finished" in again.stderr and "epoch 1/2" not in again.stderr
    assert json.loads((out / "record.json").read_text())["history"] == rec["history"]


def test_list_flags_take_commas_or_spaces():
    """Every list flag of a sweep reads each item of `A,B` or `"A B"` (a mutation audit: --params 25%,50% read as
    one budget, the second dropped, passed the tests)."""
    from neuralscale.cli import build_parser
    args = build_parser().parse_args(
        ["sweep", "--model", "vgg11", "--dataset", "synthetic", "--out", "s", "--ratios", "0.25,0.5",
         "--params", "25%,50%", "--macs", "1M 2M", "--latency-ms", "40%,60%", "--seeds", "0,1,2",
         "--methods", "uniform,neuralscale@1", "--iterations", "first,last"])
    assert args.ratios == [0.25, 0.5] and args.seeds == [0, 1, 2]
    assert [b.spelling for b in args.params] == ["25%", "50%"]
    assert [b.spelling for b in args.macs] == [1e6, 2e6]
    assert [b.spelling for b in args.latency] == ["40%", "60%"]
    assert args.methods == ["uniform", "neuralscale@1"] and args.iterations == ["first", "last"]


def test_no_command_prints_the_help_and_exits_2(capsys):
    from neuralscale import cli
    assert cli.main([]) == 2
    assert "usage: neuralscale" in capsys.readouterr().out


def test_an_error_of_several_lines_is_said_in_one(monkeypatch, capsys):
    """A NeuralscaleError whose text spans lines is one line on stderr, every line of it kept (a mutation audit:
    only its first line kept passed the tests)."""
    from neuralscale import cli
    from neuralscale.errors import NeuralscaleError

    def fails(args):
        raise NeuralscaleError("the first part\n  the second part\n\n")
    monkeypatch.setitem(cli.COMMANDS, "info", fails)
    assert cli.main(["info", "--model", "vgg11", "--dataset", "synthetic"]) == 2
    assert capsys.readouterr().err == "neuralscale: error: the first part; the second part\n"


def test_output_into_a_closed_pipe_ends_quietly_with_status_0():
    """`neuralscale ... | head`: the reader is gone before the command has written all it prints (here more than a
    pipe's buffer): exit status 0 and no traceback, as commands piped into head end (a mutation audit: status 1
    passed the tests). In a process of its own, its standard output a pipe whose reading end is closed."""
    from helpers import run_python
    code = ("import os, sys\n"
            "r, w = os.pipe()\n"
            "os.close(r)\n"
            "os.dup2(w, 1)\n"
            "from neuralscale import cli\n"
            "cli.COMMANDS['info'] = lambda args: print('x' * 100_000) or 0\n"
            "code = cli.main(['info', '--model', 'vgg11', '--dataset', 'synthetic'])\n"
            "print('exit', code, file=sys.stderr)\n")
    r = run_python(code)
    assert r.stderr.strip() == "exit 0", r.stderr


def test_experiment_flags_reach_the_experiment(monkeypatch, capsys):
    """The command line's overrides of an experiment file, each passed on as given (a mutation audit: --devices
    cuda:0,cuda:1 passed as one device, and --retry-failed, --force and --quiet dropped, all passed the tests)."""
    from neuralscale import cli
    seen = {}

    def experiment(path, **kwargs):
        seen.update(kwargs, path=path)
        return {"markdown": "report.md", "html": "report.html", "records": [{"status": "finished"}], "document": {}}
    monkeypatch.setattr(cli, "run_experiment", experiment)
    assert cli.main(["experiment", "e.toml", "--out", "o", "--workers", "3", "--threads", "2", "--devices",
                     "cuda:0,cuda:1", "--retry-failed", "--force", "--quiet"]) == 0
    assert seen == {"path": "e.toml", "out": "o", "progress": False, "retry_failed": True, "force": True,
                    "executor": {"workers": 3, "threads": 2, "devices": ["cuda:0", "cuda:1"]}}
    seen.clear()
    assert cli.main(["experiment", "e.toml"]) == 0
    assert seen == {"path": "e.toml", "out": None, "progress": True, "retry_failed": False, "force": False,
                    "executor": {"workers": None, "threads": None, "devices": None}}
    assert capsys.readouterr().out.splitlines()[-1] == "report.html"  # the last line: the report's path


def test_fit_flags_reach_the_fit(tiny_descent, capsys, tmp_path):
    """`fit` of a descent's trajectory gives the descent's law; --trajectory-start all-lost and --tau original each
    fit otherwise (a mutation audit: both flags dropped on the way to the fit passed the tests). The original's
    parameter formula differs from the built model's for MobileNetV2 (for VGG11 it is exact)."""
    import neuralscale as ns
    from neuralscale import cli
    from neuralscale.scaling import write_trajectory
    out, laws = tiny_descent
    csv, model = str(out / "iteration_01.csv"), "vgg11"

    def fitted(*extra):
        assert cli.main(["fit", csv, "--model", model, "--dataset", "synthetic", "--json", *extra]) == 0
        law = json.loads(capsys.readouterr().out)
        return law["alpha"], law["beta"]
    default = fitted()
    assert default[0] == pytest.approx(laws[0].alpha, rel=1e-9)  # per-layer, as the descent's
    assert default[1] == pytest.approx(laws[0].beta, rel=1e-9)
    assert fitted("--trajectory-start", "per-layer") == default
    assert fitted("--trajectory-start", "all-lost") != default
    # a descent's trajectory: its model and dataset read from the descent (a walkthrough: fit asked for them)
    assert cli.main(["fit", csv, "--json"]) == 0
    law = json.loads(capsys.readouterr().out)
    assert (law["model"], law["dataset"], law["alpha"]) == ("vgg11", "synthetic", default[0])
    assert cli.main(["fit", str(tmp_path / "nowhere.csv")]) == 2
    assert "nowhere.csv is not in a descent directory: give --model and --dataset" in capsys.readouterr().err
    sp = ns.space("mobilenetv2", "synthetic")
    csv, model = str(tmp_path / "mobilenetv2.csv"), "mobilenetv2"
    write_trajectory(csv, sp, [sp.uniform(0.5 - 0.03 * i) for i in range(8)])
    exact = fitted()
    assert fitted("--tau", "exact") == exact and fitted("--tau", "original") != exact


def test_fit_says_when_its_law_is_not_a_fit(tmp_path, capsys):
    """Too few rows for a fit: the law is uniform scaling, and fit's first line says so (a mutation audit: the
    note left out passed the tests)."""
    import neuralscale as ns
    from neuralscale import cli
    from neuralscale.scaling import write_trajectory
    sp = ns.space("vgg11", "synthetic")
    write_trajectory(tmp_path / "one.csv", sp, [sp.uniform(0.5)])
    assert cli.main(["fit", str(tmp_path / "one.csv"), "--model", "vgg11", "--dataset", "synthetic"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first == "note: only 1 trajectory rows (< 6): uniform scaling of the first row instead of a fit"


def test_descend_says_where_its_configuration_is(tiny_descent, tmp_path):
    """A descent from a narrower base (--base-ratio) names that base for its configuration, not the full model;
    --json counts its iterations (a mutation audit: both wrong passed the tests)."""
    import shutil
    from helpers import TINY_DESCENT_ARGS
    out = tmp_path / "d"
    shutil.copytree(tiny_descent[0], out)
    r = run_cli("descend", *TINY_DESCENT_ARGS, "--out", str(out), "--quiet")  # finished: answers from its folder
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"2 iteration(s) in {out}, fitted against parameters; last law: beta = ")
    assert "at the descent's base (the 0.0625-width network it started from): " in r.stdout
    assert "the full model's" not in r.stdout
    r = run_cli("descend", *TINY_DESCENT_ARGS, "--out", str(out), "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["iterations"] == 2 == len(json.loads(r.stdout)["laws"])


SYNTH_TINY = ["--model", "vgg11", "--dataset", "synthetic", "--train-subset", "32", "--test-subset", "8",
              "--batch-size", "32", "--device", "cpu", "--epochs", "1"]


def test_a_sweep_into_a_folder_of_other_files_needs_force(tmp_path):
    """--force reaches the sweep, and --report says where the report is (a mutation audit: either dropped passed
    the tests)."""
    out = tmp_path / "s"
    out.mkdir()
    (out / "notes.txt").write_text("mine\n")
    args = ["sweep", *SYNTH_TINY, "--methods", "uniform", "--ratios", "0.0625", "--seeds", "0", "--out", str(out),
            "--quiet"]
    r = run_cli(*args)
    assert r.returncode == 2 and "notes.txt" in r.stderr and not (out / "runs").exists(), r.stderr
    r = run_cli(*args, "--force", "--report")
    assert r.returncode == 0, r.stderr
    assert (out / "notes.txt").read_text() == "mine\n" and len(list((out / "runs").iterdir())) == 1
    said = r.stdout.strip().splitlines()  # --report: the report's page, last
    assert said[0] == f"1 of 1 runs finished, 0 failed: {out}" and said[-1] == str(out / "report" / "report.html")
    assert (out / "report" / "report.html").is_file()


def test_train_records_its_flags_says_warnings_in_one_line_and_quiet_is_quiet(tmp_path):
    """train --channels-last is in the run's recipe; --quiet prints nothing on stderr, and a NeuralscaleWarning is
    the one line `warning: ...` (a mutation audit: each broken passed the tests)."""
    run = tmp_path / "run"
    r = run_cli("train", *SYNTH_TINY, "--ratio", "0.0625", "--channels-last", "--out", str(run), "--quiet")
    # (only neuralscale's own lines: a library's note on stderr, as torch's NNPACK warning on some CPUs, is not ours)
    ours = [line for line in r.stderr.splitlines() if "seed 0" in line or line.startswith(("warning", "neuralscale"))]
    assert r.returncode == 0 and ours == [], r.stderr
    assert json.loads((run / "record.json").read_text())["config"]["channels_last"] is True
    r = run_cli("scale", "--model", "vgg11", "--dataset", "synthetic", "--method", "uniform", "--ratio", "0.0625",
                "--multiple", "8")
    assert r.returncode == 0, r.stderr
    said = [line for line in r.stderr.splitlines() if "uniform at " in line]
    assert len(said) == 1 and said[0].startswith("warning: uniform at "), r.stderr


def test_export_says_which_epochs_weights_it_wrote(tmp_path):
    """The weights are the final epoch's; the best-validation epoch is said apart only where it is another one
    (a mutation audit: said also where they are one epoch passed the tests)."""
    run = tmp_path / "run"
    r = run_cli("train", *SYNTH_TINY, "--ratio", "0.0625", "--out", str(run), "--quiet")
    assert r.returncode == 0, r.stderr
    r = run_cli("export", str(run), "--out", str(tmp_path / "m"))
    assert r.returncode == 0, r.stderr
    line = next(x for x in r.stdout.splitlines() if x.startswith("weights: "))
    assert "(the final epoch's, 1: test accuracy " in line and line.endswith("%)") and "best-validation" not in line


@pytest.mark.parametrize("within", [True, False])
def test_scale_says_whether_a_fresh_latency_measurement_is_within_its_tolerance(monkeypatch, capsys, within):
    """The line on a latency budget's fresh measurement says what the measurement found (the measurement made up
    here: the words, not this machine's timings)."""
    from neuralscale import cli, methods

    def measured(space, widths, budget, device, batch_size):
        rel = 0.01 if within else 0.3
        return {"median_ms": budget * (1 + rel), "iqr_ms": 0.01, "rel_error": rel, "tolerance": 0.05,
                "within": within, "device": "cpu"}
    monkeypatch.setattr(methods, "fresh_latency", measured)
    monkeypatch.setattr(methods, "cost_function",  # a latency of the test's own, in proportion to the MACs
                        lambda space, metric, device="cpu", batch_size=1: lambda w: space.macs(w) / 1e6)
    assert cli.main(["scale", "--model", "vgg11", "--dataset", "synthetic", "--method", "uniform",
                     "--latency-ms", "50%"]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("measured again on cpu: ")
    assert line.endswith(("within" if within else "NOT within") + " the tolerance of 5.0%"), line


def test_the_command_lines_defaults_are_what_its_help_and_the_api_say():
    """A flag left out means what its help says and what the Python API does by default (a mutation audit:
    descend's --base-ratio, train's --seed, info's and scale's --batch could default to anything and pass)."""
    import argparse
    import inspect
    import re

    from neuralscale import cli
    from neuralscale.descent import DescentConfig
    from neuralscale.methods import scale
    from neuralscale.train import TrainConfig
    sub = next(a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    stated = 0
    for name, p in sub.choices.items():
        for a in p._actions:
            said = re.search(r"\(default ([\w.]+)\)", a.help or "")
            if said and a.default is not None:
                assert str(a.default) == said.group(1), (name, a.option_strings, a.default, a.help)
                stated += 1
    assert stated >= 10
    given = cli.build_parser().parse_args(["descend", "--model", "vgg11", "--dataset", "synthetic", "--out", "d"])
    assert DescentConfig.from_dict(cli._given(given, DescentConfig)) == DescentConfig()
    given = cli.build_parser().parse_args(["train", "--model", "vgg11", "--dataset", "synthetic"])
    assert cli._train_config(given) == TrainConfig()
    given = cli.build_parser().parse_args(["scale", "--model", "vgg11", "--dataset", "synthetic", "--method",
                                           "uniform", "--ratio", "0.5"])
    api = inspect.signature(scale).parameters
    assert (given.batch, given.min_width, given.multiple, given.device) == \
        (api["batch_size"].default, api["min_width"].default, api["multiple"].default, api["device"].default)


def test_descend_tests_on_a_subset_as_an_experiments_descent_does(tmp_path):
    """`descend` had no --test-subset (an experiment's descent takes its [data] test_subset; a docs walkthrough):
    the images it tests on when pruning ends are a seeded subset where asked, and its configuration says so."""
    from helpers import TINY_DESCENT_ARGS
    from neuralscale import cli
    out = tmp_path / "d"
    assert cli.main(["descend", *TINY_DESCENT_ARGS, "--iterations", "1", "--test-subset", "16", "--out", str(out),
                     "--quiet"]) == 0
    assert json.loads((out / "config.json").read_text())["data"]["test"] == 16
