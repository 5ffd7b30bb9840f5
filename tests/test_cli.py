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
    (["info", "--model", "vgg11"], "required"),
    (["train", "--model", "vgg11", "--dataset", "cifar10", "--data-dir", "/definitely/not/here"], "does not exist"),
    (["train", "--model", "vgg11", "--dataset", "synthetic", "--epochs", "0"], "epochs"),
    (["frobnicate"], "invalid choice"),
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
    assert len(rec["history"]) == 2 and rec["data"] == {"train": 180, "val": 20, "test": 40}
    again = run_cli(*args)  # finished: resumes from the checkpoint, trains nothing more
    assert again.returncode == 0
    assert "already finished" in again.stderr and "epoch 1/2" not in again.stderr
    assert json.loads((out / "record.json").read_text())["history"] == rec["history"]
