"""Trust what is on disk (issue 32): what neuralscale reads back is checked against what the command expects, and a
folder it did not create is never taken for its own.

Each case builds the state a user's disk really gets into (a file copied from another run, a marker deleted, an
image replaced in place, a folder of the user's own given as --out) with real commands on tiny data, and checks
that the command ends in one clear line and exit status 2, or (a cache) rebuilds, and that nothing was lost.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import neuralscale as ns
from helpers import TINY_DESCENT_ARGS, write_imagefolder
from neuralscale import cli
from neuralscale.data import load as load_dataset
from neuralscale.errors import NeuralscaleError
from neuralscale.descent import DescentDir
from neuralscale.layout import RunDir, StoreDir

VGG = ["--model", "vgg11", "--dataset", "synthetic"]
TINY = [*VGG, "--ratio", "0.0625", "--epochs", "2", "--train-subset", "32", "--test-subset", "8", "--device", "cpu",
        "--quiet"]
SWEEP = ["sweep", *VGG, "--methods", "uniform", "--ratios", "0.0625", "--seeds", "0,1", "--epochs", "1",
         "--train-subset", "32", "--test-subset", "8", "--device", "cpu", "--quiet"]


def _error(capsys, args) -> str:
    capsys.readouterr()
    code = cli.main([str(a) for a in args])
    err = capsys.readouterr().err
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("neuralscale: error: "), err
    return lines[0]


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
            and p.name != ".lock"}


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """Two finished runs of the same network that differ only in their seed."""
    root = tmp_path_factory.mktemp("runs")
    for seed in (0, 1):
        assert cli.main(["train", *TINY, "--seed", str(seed), "--out", str(root / f"s{seed}")]) == 0
    return root


# --- 1. provenance -------------------------------------------------------------------------------------------

def test_a_checkpoint_of_another_run_is_not_resumed(two_runs, tmp_path, capsys):
    """Seed 1's run, interrupted (its record says running), with seed 0's checkpoint copied in: resuming would
    finish seed 0's training under seed 1's name."""
    run = tmp_path / "s1"
    shutil.copytree(two_runs / "s1", run)
    record = json.loads(RunDir(run).record.read_text())
    record["status"] = "running"
    RunDir(run).record.write_text(json.dumps(record))
    shutil.copy(RunDir(two_runs / "s0").checkpoint, RunDir(run).checkpoint)
    before = _files(run)
    other = json.loads(RunDir(two_runs / "s0").record.read_text())["id"]
    line = _error(capsys, ["train", *TINY, "--seed", "1", "--out", run])
    assert f"belongs to run {other}, not to run {record['id']}" in line and "checkpoint.pt" in line
    assert _files(run) == before
    # its own checkpoint resumes (nothing left to train: the same record, finished)
    shutil.copy(RunDir(two_runs / "s1").checkpoint, RunDir(run).checkpoint)
    assert cli.main(["train", *TINY, "--seed", "1", "--out", str(run)]) == 0
    assert json.loads(RunDir(run).record.read_text())["status"] == "finished"


def test_a_checkpoint_of_another_run_is_not_exported_or_warm_started_from(two_runs, tmp_path, capsys):
    """Seed 1's weights copied (or linked) over seed 0's: `export` and `train --init-from` refuse them in one line
    naming both owners, instead of exporting or starting from seed 1's network under seed 0's name."""
    s0 = tmp_path / "s0"
    shutil.copytree(two_runs / "s0", s0)
    (s0 / "checkpoint.pt").unlink()
    (s0 / "checkpoint.pt").symlink_to(two_runs / "s1" / "checkpoint.pt")
    theirs = json.loads((two_runs / "s1" / "record.json").read_text())["id"]
    line = _error(capsys, ["export", s0, "--out", tmp_path / "m"])
    assert f"belongs to run {theirs}" in line and not list(tmp_path.glob("m.*"))
    line = _error(capsys, ["train", *VGG, "--ratio", "0.03125", "--epochs", "1", "--train-subset", "32",
                           "--test-subset", "8", "--device", "cpu", "--quiet", "--init-from", s0,
                           "--out", tmp_path / "w"])
    assert f"belongs to run {theirs}" in line
    # its own checkpoint, but from before its last epoch (an earlier copy put back, an rsync of a live run): the
    # export wrote those weights under the finished run's numbers (a walkthrough: 16.6% exported as 79.4%)
    (s0 / "checkpoint.pt").unlink()
    state = torch.load(two_runs / "s0" / "checkpoint.pt", weights_only=True)
    mine = json.loads((s0 / "record.json").read_text())
    torch.save({**state, "epoch": len(mine["history"]) - 1}, s0 / "checkpoint.pt")
    said = f"holds run {mine['id']}'s weights after epoch {len(mine['history']) - 1}, but its record finished after"
    line = _error(capsys, ["export", s0, "--out", tmp_path / "m"])
    assert said in line and not list(tmp_path.glob("m.*"))
    line = _error(capsys, ["train", *VGG, "--ratio", "0.03125", "--epochs", "1", "--train-subset", "32",
                           "--test-subset", "8", "--device", "cpu", "--quiet", "--init-from", s0,
                           "--out", tmp_path / "w2"])
    assert said in line
    assert not (tmp_path / "w").exists() and not (tmp_path / "w2").exists()  # refused before any record (a failed
    # one was written: an adversarial pass)


def test_a_checkpoint_with_other_training_settings_is_not_resumed(tmp_path):
    """A checkpoint written before owners were recorded still carries its training settings."""
    from neuralscale.data import load
    from neuralscale.train import TrainConfig, Trainer
    sp = ns.space("vgg11", "synthetic")
    splits = load("synthetic").split(0.0, 0).subset(train=32, test=8)
    ckpt = tmp_path / "checkpoint.pt"
    config = TrainConfig(epochs=1, batch_size=16, device="cpu")
    Trainer(sp.build(sp.uniform(0.0625)), splits, config, checkpoint=ckpt, progress=False).fit()
    state = torch.load(ckpt, weights_only=True)
    state.pop("owner")
    torch.save(state, ckpt)
    other = TrainConfig(epochs=1, batch_size=16, device="cpu", seed=3)
    with pytest.raises(NeuralscaleError, match=r"other training settings \(seed: 0 there, 3 here\)"):
        Trainer(sp.build(sp.uniform(0.0625)), splits, other, checkpoint=ckpt, progress=False).fit()
    # the device and the evaluation batch do not change what is computed
    same = TrainConfig(epochs=1, batch_size=16, device="auto", eval_batch_size=7)
    Trainer(sp.build(sp.uniform(0.0625)), splits, same, checkpoint=ckpt, progress=False).fit()


def test_a_record_of_another_run_in_a_run_directory_is_not_taken_for_it(tmp_path, capsys):
    store = tmp_path / "store"
    assert cli.main([*SWEEP, "--out", str(store)]) == 0
    a, b = sorted(p for p in StoreDir(store).runs.iterdir())
    shutil.rmtree(b)
    b.mkdir()
    shutil.copy(RunDir(a).record, RunDir(b).record)  # a's record where b's belongs: b never trained
    line = _error(capsys, [*SWEEP, "--out", store])
    assert f"is the record of run {a.name}, not of {b.name}" in line
    line = _error(capsys, ["report", store])  # a report would count one run twice
    assert a.name in line and b.name in line


def test_a_store_without_its_plan_is_not_a_fresh_start(tmp_path, capsys):
    """A store whose sweep.json is gone would accept another recipe and pool both in one report row."""
    store = tmp_path / "store"
    assert cli.main([*SWEEP, "--out", str(store)]) == 0
    StoreDir(store).plan.unlink()
    before = _files(store)
    line = _error(capsys, [*SWEEP, "--lr", "0.5", "--out", store])
    assert "is not a run store (no sweep.json)" in line and "runs" in line and "--force" in line
    assert _files(store) == before


def test_a_descent_folder_without_its_configuration_is_not_continued(tiny_descent, tmp_path, capsys):
    d = tmp_path / "d"
    shutil.copytree(tiny_descent[0], d)
    (d / "config.json").unlink()
    before = _files(d)
    line = _error(capsys, ["descend", *TINY_DESCENT_ARGS, "--out", d, "--quiet"])
    assert "is not a descent directory (no config.json)" in line and "fits.json" in line
    assert _files(d) == before


def test_laws_of_another_descent_are_not_taken_for_this_ones(tiny_descent, tmp_path, capsys):
    """fits.json carries its descent's fingerprint: the laws of a descent with another configuration (here: its
    prune fraction), copied over this folder's, are refused by every command that reads them, and by a rerun."""
    d = tmp_path / "d"
    shutil.copytree(tiny_descent[0], d)
    other = tmp_path / "other"
    shutil.copytree(tiny_descent[0], other)
    config = json.loads((other / "config.json").read_text())
    config["descent"]["prune_fraction"] = 0.7
    (other / "config.json").write_text(json.dumps(config))
    (d / "fits.json").write_text(json.dumps({**json.loads((d / "fits.json").read_text()),
                                             "descent": DescentDir(other).fingerprint()}))
    for args in (["scale", *VGG, "--method", "neuralscale", "--from", d, "--params", "20000"],
                 ["info", *VGG, "--from", d], ["descend", *TINY_DESCENT_ARGS, "--iterations", "3", "--out", d]):
        line = _error(capsys, args)
        assert "holds the laws of another descent" in line and str(d / "fits.json") in line, line


def test_an_experiment_with_its_own_descent_and_another_to_scale_is_refused(tmp_path, capsys):
    path = tmp_path / "exp.toml"
    path.write_text('[experiment]\nmodel = "vgg11"\ndataset = "synthetic"\nout = "o"\n'
                    '[descent]\nbase_ratio = 0.0625\niterations = 1\n'
                    '[sweep]\nfrom = "elsewhere"\nmethods = ["neuralscale"]\nratios = [0.0625]\n')
    line = _error(capsys, ["experiment", path])
    assert "[sweep] from names a descent" in line and "keep one of the two" in line
    assert not (tmp_path / "o").exists() and not (tmp_path / "elsewhere").exists()


@pytest.mark.parametrize("field, value, says", [
    ("tau_range", ["x", 1], "tau_range must be two positive numbers"),
    ("tau_range", [5.0, 1.0], "smallest first"),
    ("r2", "bad", "r2 must be finite numbers"),
    ("rows", -3, "rows must be a count"),
    ("origin", [0], "origin must be widths"),
    ("iteration", "one", "iteration must be a count or null"),
    ("architecture", 5, "architecture must be text"),
    ("start_widths", [-5] * 8, "start_widths must be 8 widths"),
    ("final_widths", ["a"] * 8, "final_widths must be 8 widths"),
    ("half_widths", [4] * 3, "half_widths must be 8 widths"),
    ("final_val_acc", "x", "final_val_acc must be a number or null"),
])
def test_every_field_of_a_law_read_back_is_checked(tiny_descent, tmp_path, capsys, field, value, says):
    """A fits.json damaged in any field is refused in one line naming the field, whichever method reads it."""
    d = tmp_path / "d"
    shutil.copytree(tiny_descent[0], d)
    fits = json.loads((d / "fits.json").read_text())
    fits["laws"][0][field] = value
    (d / "fits.json").write_text(json.dumps(fits))
    for method in ("neuralscale", "morphnet", "pruned"):
        line = _error(capsys, ["scale", *VGG, "--method", method, "--from", d, "--iteration", "1", "--params", "20000"]
                      if method != "morphnet" else ["scale", *VGG, "--method", method, "--from", d, "--params", "20000"])
        assert "fits.json is damaged" in line and says in line, line


@pytest.mark.parametrize("change, says", [
    (lambda r: r["summary"].update(test_acc_at_best_val="x"), "summary.test_acc_at_best_val is 'x'"),
    (lambda r: r["budget"].update(value="x"), "budget is"),
    (lambda r: r.update(history=5), "history is 5, not a list of epochs"),
    (lambda r: r.update(latency={"batches": {"1": {"median_ms": "x"}}}), "latency is not a measurement"),
])
def test_every_field_a_report_reads_of_a_record_is_checked(two_runs, tmp_path, capsys, change, says):
    """A finished record damaged in a field the report reads is one line naming it (not a traceback, and not a
    run silently left out of the table)."""
    store = tmp_path / "s"
    shutil.copytree(two_runs / "s0", store / "runs" / json.loads((two_runs / "s0" / "record.json").read_text())["id"])
    path = next(store.glob("runs/*/record.json"))
    record = json.loads(path.read_text())
    change(record)
    path.write_text(json.dumps(record))
    line = _error(capsys, ["report", store, "--out", tmp_path / "rep"])
    assert "is not a finished run record" in line and says in line, line


def test_a_sweep_holds_the_lock_of_the_run_it_trains(tmp_path, monkeypatch):
    """`train --out` into a run that a sweep is training meets the run directory's lock (as two `train --out` do)."""
    from neuralscale import runs
    from neuralscale.records import exclusive
    seen = []

    def execute(spec, run_dir, **kw):
        with pytest.raises(NeuralscaleError, match="in use by another neuralscale command"):
            with exclusive(run_dir, "run directory"):
                pass
        seen.append(spec.id)
        return {"id": spec.id, "status": "finished"}
    monkeypatch.setattr(runs, "execute", execute)
    from neuralscale.store import RunStore
    from neuralscale.sweep import plan, sweep_config
    s = plan(sweep_config("vgg11", "synthetic", methods=["uniform"], ratios=[0.0625], seeds=[0]))[0]
    runs.execute_in_store(s, RunStore(tmp_path / "store"))
    assert seen == [s.id]


# --- images --------------------------------------------------------------------------------------------------

def test_an_image_replaced_in_place_is_read_again(tmp_path):
    root = write_imagefolder(tmp_path / "imgs", classes=2, per_class=3, size=16)
    name = f"imagefolder:{root}"
    first = load_dataset(name)
    target = root / "train" / "class_0" / "img0.png"
    stat = target.stat()
    white = np.full((16, 16, 3), 255, dtype=np.uint8)
    Image.fromarray(white).save(target)  # in place: the folders' times do not change
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1000))  # a microsecond later
    second = load_dataset(name)
    i = [j for j, y in enumerate(first.train_y.tolist()) if y == 0][0]
    assert not torch.equal(first.train_x[i], second.train_x[i])
    assert torch.equal(second.train_x[i], torch.full((3, 16, 16), 255, dtype=torch.uint8))


def test_a_cache_that_cannot_be_written_only_costs_speed(tmp_path, monkeypatch, caplog):
    root = write_imagefolder(tmp_path / "imgs", classes=2, per_class=3, size=32)
    blocked = tmp_path / "file"
    blocked.write_text("a file where the cache's folder would be\n")
    monkeypatch.setenv("NEURALSCALE_CACHE", str(blocked / "cache"))
    with caplog.at_level("WARNING", logger="neuralscale"):
        data = load_dataset(f"imagefolder:{root}")
    assert len(data.train_y) == 6 and "tensor cache is not written" in caplog.text
    assert cli.main(["train", "--model", "vgg11", "--dataset", f"imagefolder:{root}", "--ratio", "0.0625",
                     "--epochs", "1", "--device", "cpu", "--quiet", "--val-fraction", "0"]) == 0


def test_sixteen_bit_images_keep_their_contrast(tmp_path):
    from neuralscale.data.images import decode
    ramp = (np.arange(16 * 16, dtype=np.uint16).reshape(16, 16) * 257).astype(np.uint16)  # 0 .. 65535
    img = Image.fromarray(ramp)
    assert img.mode.startswith("I;16")
    path = tmp_path / "ramp.png"
    img.save(path)
    x = decode(path.read_bytes(), 16, str(path))
    expected = torch.from_numpy(np.rint(ramp / 257.0).astype(np.uint8))
    assert torch.equal(x[0], expected) and torch.equal(x[1], expected)  # not all white
    Image.fromarray(ramp.astype(np.float32)).save(tmp_path / "f.tiff")
    with pytest.raises(NeuralscaleError, match="floating-point pixels"):
        decode((tmp_path / "f.tiff").read_bytes(), 16, "f.tiff")


def test_a_folder_of_one_class_is_refused(tmp_path, capsys):
    root = write_imagefolder(tmp_path / "one", classes=1, per_class=3, size=16)
    line = _error(capsys, ["info", "--model", "vgg11", "--dataset", f"imagefolder:{root}"])
    assert "one class folder (class_0)" in line


# --- 2. never overwrite what it does not own ------------------------------------------------------------------

@pytest.mark.parametrize("command", ["train", "sweep", "descend", "experiment"])
def test_a_folder_of_the_users_own_is_refused_as_out_unless_forced(command, tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "metrics.csv").write_text("my own numbers\n")
    (out / "sweep.json" if command != "sweep" else out / "notes.txt").write_text('{"mine": true}\n')
    before = _files(out)
    args = {"train": ["train", *TINY, "--epochs", "1", "--out", out],
            "sweep": [*SWEEP, "--seeds", "0", "--out", out],
            "descend": ["descend", *TINY_DESCENT_ARGS, "--iterations", "1", "--out", out, "--quiet"],  # (the later
            # --iterations wins: one iteration writes as much into the folder as two)
            "experiment": None}[command]
    if command == "experiment":
        exp = tmp_path / "exp.toml"
        exp.write_text(f'[experiment]\nmodel = "vgg11"\ndataset = "synthetic"\nout = "{out}"\ndevice = "cpu"\n'
                       '[data]\ntrain = 32\ntest = 8\n[sweep]\nmethods = ["uniform"]\nratios = [0.0625]\n'
                       'seeds = [0]\n[sweep.train]\nepochs = 1\n')
        args = ["experiment", exp, "--quiet"]
        (out / "sweep.json").unlink()  # a sweep.json of its own would be a store's: a file of the user's instead
        (out / "results.txt").write_text("mine\n")
        before = _files(out)
    line = _error(capsys, args)
    assert f"{out} is not empty" in line and "--force" in line
    assert _files(out) == before and not (out / ".lock").exists()  # refused before it is locked: left as it was
    if command in ("train", "descend"):  # forced: it writes there (a run's own metrics.csv replaces the user's)
        assert cli.main([str(a) for a in args] + ["--force"]) == 0
        after = _files(out)
        assert after["sweep.json"] == before["sweep.json"] and len(after) > len(before)


def test_a_users_files_named_as_a_reports_are_not_overwritten(two_runs, tmp_path, capsys):
    """`report --out` into a folder whose files merely have a report's names (a summary.json of the user's own) is
    refused; a folder holding a report neuralscale wrote is rebuilt in place."""
    store = tmp_path / "s"
    shutil.copytree(two_runs / "s0", store / "runs" / json.loads((two_runs / "s0" / "record.json").read_text())["id"])
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "summary.json").write_text('{"my": "numbers"}\n')
    line = _error(capsys, ["report", store, "--out", mine])
    assert f"{mine} holds files that are not a report (summary.json)" in line
    assert (mine / "summary.json").read_text() == '{"my": "numbers"}\n'
    assert cli.main(["report", str(store), "--out", str(tmp_path / "rep")]) == 0
    assert cli.main(["report", str(store), "--out", str(tmp_path / "rep")]) == 0  # its own report: rebuilt


def test_a_lock_file_that_links_elsewhere_is_not_followed(tmp_path, capsys):
    """A .lock that is a link (to a file of the user's) is refused, never truncated through; a trajectory that is
    a device (/dev/zero) is refused, never read without end."""
    precious = tmp_path / "precious.txt"
    precious.write_text("keep me\n")
    out = tmp_path / "run"
    out.mkdir()
    (out / ".lock").symlink_to(precious)
    line = _error(capsys, ["train", *TINY, "--out", out])
    assert ".lock is a link" in line and precious.read_text() == "keep me\n"
    (tmp_path / "t.csv").symlink_to("/dev/zero")
    line = _error(capsys, ["fit", tmp_path / "t.csv", *VGG])
    assert "is not a regular file" in line
