"""A corpus of bad inputs, every command: each ends in one clear line on stderr and exit status 2, never a traceback.

The corpus runs the command's real entry point (`cli.main`) in this process, so that 140 cases take seconds; an
exception that escaped it would fail the test with its traceback.  A sample also runs as real subprocesses.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers import TINY_DESCENT_ARGS, run_real_cli
from neuralscale import cli

VGG = ["--model", "vgg11", "--dataset", "synthetic"]
TINY_TRAIN = [*VGG, "--ratio", "0.0625", "--epochs", "1", "--train-subset", "32", "--test-subset", "8",
              "--device", "cpu", "--quiet"]
SWEEP = ["sweep", *VGG, "--methods", "uniform", "--ratios", "0.0625", "--seeds", "0", "--epochs", "1",
         "--train-subset", "32", "--test-subset", "8", "--device", "cpu", "--quiet"]
DESCEND = ["descend", *TINY_DESCENT_ARGS, "--quiet"]  # the session's tiny descent (conftest.tiny_descent)


@pytest.fixture(scope="module")
def world(tmp_path_factory, tiny_descent):
    """Real files to break: a finished run, a descent, a sweep store, image folders, laws, trajectories."""
    root = tmp_path_factory.mktemp("world")
    w = {"root": root}
    assert cli.main(["train", *TINY_TRAIN, "--out", str(root / "run")]) == 0
    shutil.copytree(tiny_descent[0], root / "descent")
    shutil.copytree(tiny_descent[0], root / "descent_huge")  # a law's alpha of 400 digits: no float holds it
    fits = root / "descent_huge" / "fits.json"
    doc = json.loads(fits.read_text())
    doc["laws"][0]["alpha"][0] = 0
    fits.write_text(json.dumps(doc).replace('"alpha": [0', '"alpha": [1' + "0" * 400, 1))
    assert cli.main([*SWEEP, "--out", str(root / "store")]) == 0
    (root / "file.txt").write_text("not a directory\n")
    import neuralscale as ns
    from neuralscale.scaling import write_trajectory
    sp = ns.space("vgg11", "synthetic")
    write_trajectory(root / "traj.csv", sp, [sp.uniform(0.5 - 0.03 * i) for i in range(8)])
    small = root / "small"  # images too small for VGG11's five poolings
    for c in range(2):
        (small / "train" / f"c{c}").mkdir(parents=True)
        (small / "test" / f"c{c}").mkdir(parents=True)
        for i in range(2):
            img = Image.fromarray(np.full((8, 8, 3), 40 * c + i, dtype=np.uint8))
            img.save(small / "train" / f"c{c}" / f"{i}.png")
            img.save(small / "test" / f"c{c}" / f"{i}.png")
    # a second run to break: unfinished, without weights, with a damaged checkpoint
    for name, change in (("unfinished", "status"), ("noweights", "ckpt"), ("badckpt", "damage"),
                         ("badfields", "fields")):
        d = root / name
        d.mkdir()
        rec = json.loads((root / "run" / "record.json").read_text())
        if change == "status":
            rec["status"] = "running"
        if change == "fields":
            rec["widths"] = "abc"
        (d / "record.json").write_text(json.dumps(rec))
        if change == "damage":
            (d / "checkpoint.pt").write_bytes(b"PK\x03\x04 not a checkpoint")
        elif change != "ckpt":
            (d / "checkpoint.pt").write_bytes((root / "run" / "checkpoint.pt").read_bytes())
    bad_store = root / "badstore" / "runs" / "x"
    bad_store.mkdir(parents=True)
    (bad_store / "record.json").write_text(json.dumps({**json.loads((root / "run" / "record.json").read_text()),
                                                       "widths": "abc"}))
    (root / "damagedplan").mkdir()
    (root / "damagedplan" / "sweep.json").write_text("{not json")
    (root / "wrongplan").mkdir()
    (root / "wrongplan" / "sweep.json").write_text(json.dumps({"recipe": [], "runs": "all of them"}))
    for name, text in (("empty.csv", ""), ("junk.csv", "1,2,x\n"), ("law_strings.json", json.dumps(
            {"model": "vgg11", "dataset": "synthetic", "layers": ["a"] * 8, "alpha": ["x"] * 8, "beta": [1] * 8})),
            ("law_other.json", json.dumps({"model": "resnet18", "dataset": "synthetic", "layers": ["a"] * 17,
                                           "alpha": [1.0] * 17, "beta": [0.5] * 17}))):
        (root / name).write_text(text)
    d = root / "damaged_descent"
    d.mkdir()
    (d / "config.json").write_text("[1, 2")
    (d / "log.txt").write_text("")
    d = root / "damaged_fits"
    d.mkdir()
    (d / "config.json").write_text((root / "descent" / "config.json").read_text())
    (d / "fits.json").write_text(json.dumps({"laws": {"a": 1}}))
    (root / "report_here").mkdir()
    (root / "report_here" / "notes.txt").write_text("mine\n")
    (root / "taken.json").write_text("{}")
    return w


def _experiment(root: Path, body: str) -> str:
    import hashlib
    path = root / f"exp_{hashlib.sha256(body.encode()).hexdigest()[:12]}.toml"
    path.write_text(body)
    return str(path)


EXP_OK = """
[experiment]
model = "vgg11"
dataset = "synthetic"
out = "exp-out"
device = "cpu"
[data]
train = 32
test = 8
[descent]
base_ratio = 0.0625
iterations = 1
[sweep]
methods = ["uniform"]
ratios = [0.0625]
seeds = [0]
[sweep.train]
epochs = 1
"""


def _cases(r: Path) -> list[tuple[list[str], str]]:
    run, descent, store = str(r / "run"), str(r / "descent"), str(r / "store")
    f = str(r / "file.txt")
    small = f"imagefolder:{r / 'small'}"
    exp = lambda body: ["experiment", ("TOML", body)]  # noqa: E731  (written into the world at test time)
    swap = lambda text, old, new: text.replace(old, new, 1)  # noqa: E731
    return [
        # --- info -------------------------------------------------------------------------------------------
        (["info", "--model", "bogus", "--dataset", "cifar10"], "unknown model"),
        (["info", "--model", "vggg11", "--dataset", "cifar10"], "did you mean vgg11"),
        (["info", "--model", "vgg11", "--dataset", "bogus"], "unknown dataset"),
        (["info", *VGG, "--ratio", "inf"], "width ratio"),
        (["info", *VGG, "--ratio", "nan"], "width ratio"),
        (["info", *VGG, "--ratio", "-1"], "width ratio"),
        (["info", *VGG, "--ratio", "0"], "width ratio"),
        (["info", *VGG, "--ratio", "1e9"], "width ratio"),
        (["info", *VGG, "--ratio", "abc"], "invalid float"),
        (["info", *VGG, "--widths", "1,2"], "8 gated layers, got 2"),
        (["info", *VGG, "--widths", "99999999,1,1,1,1,1,1,1"], "between 1 and 65536"),
        (["info", *VGG, "--widths", "0,1,1,1,1,1,1,1"], "between 1 and 65536"),
        (["info", *VGG, "--widths", "a,b"], "integers"),
        (["info", *VGG, "--latency", "--batch", "0"], "latency_batch (--batch) must be a whole number, at least 1, got 0"),
        (["info", *VGG, "--latency", "--device", "bogus"], "unknown device"),
        (["info", "--dataset", "cifar10"], "required"),
        (["info", "--model", "torchvision:nonexistent_net", "--dataset", "cifar10"], "nonexistent_net"),
        (["info", "--model", "vgg11", "--dataset", "imagefolder:/no/such/folder"], "does not exist"),
        (["info", "--model", "vgg11", "--dataset", f"imagefolder:{f}"], f"image folder {f} is a file, not a folder"),
        (["info", "--model", "vgg11", "--dataset", small], "too small"),
        (["info", *VGG, "--convcut"], "no shortcuts"),
        (["info", *VGG, "--from", str(r / "report_here")], "holds no finished descent iteration"),
        # --- train ------------------------------------------------------------------------------------------
        (["train", *VGG, "--epochs", "0"], "epochs must be at least 1"),
        (["train", *VGG, "--epochs", "-3"], "epochs must be at least 1"),
        (["train", *VGG, "--batch-size", "0"], "batch_size must be at least 1"),
        (["train", *VGG, "--lr", "0"], "learning rate (lr) must be positive"),
        (["train", *VGG, "--lr", "nan"], "lr must be a finite number"),
        (["train", *VGG, "--lr", "inf"], "lr must be a finite number"),
        (["train", *VGG, "--momentum", "-1"], "momentum must be at least 0"),
        # beyond float32, as torch's optimiser takes them: a traceback after the record said running, once
        (["train", *VGG, "--lr", "1e39"], "learning rate (lr) must be at most 3.403e+38 (float32's largest)"),
        (["train", *VGG, "--weight-decay", "1e300"], "weight_decay must be at most 3.403e+38"),
        (["sweep", *VGG, "--methods", "l1-prune", "--ratios", "0.5", "--finetune-lr", "1e39", "--out", str(r / "s_ft")],
         "finetune_lr must be at most"),
        (["train", *VGG, "--weight-decay", "-1"], "weight_decay must be at least 0"),
        (["train", *VGG, "--val-fraction", "1"], "validation fraction"),
        (["train", *VGG, "--val-fraction", "-0.1"], "validation fraction"),
        (["train", *VGG, "--train-subset", "0"], "train subset must be a number of images"),
        (["train", *VGG, "--test-subset", "0"], "test subset must be a number of images"),
        (["train", *VGG, "--seed", "-1"], "seed must be at least 0"),
        (["train", *VGG, "--schedule", "bogus"], "invalid choice"),
        (["train", *TINY_TRAIN, "--out", "/proc/neuralscale-test/run"], "/proc/neuralscale-test"),
        (["train", *TINY_TRAIN, "--out", f], "is a file"),
        (["train", *TINY_TRAIN, "--out", descent], "descent directory"),
        (["train", *[a if a != "0.0625" else "0.125" for a in TINY_TRAIN], "--out", run], "holds another run"),
        (["train", *TINY_TRAIN[:-3], "--device", "cuda:5", "--out", str(r / "new_run")], "CUDA"),
        (["train", *VGG, "--ratio", "inf"], "width ratio"),
        (["train", "--model", "vgg11", "--dataset", small, "--epochs", "1"], "too small"),
        (["train", *TINY_TRAIN, "--convcut"], "no shortcuts"),
        (["train", *TINY_TRAIN, "--data-dir", f], f"data directory {f} is a file, not a folder"),  # (not "does not
        (["train", *TINY_TRAIN, "--data-dir", str(r / "nope")], "nope does not exist"),  # exist": it does)
        # --- descend ----------------------------------------------------------------------------------------
        (["descend", *VGG, "--out", str(r / "d1"), "--iterations", "0"], "iterations must be at least 1"),
        (["descend", *VGG, "--out", str(r / "d1"), "--prune-fraction", "1"], "prune fraction"),
        (["descend", *VGG, "--out", str(r / "d1"), "--prune-fraction", "0"], "prune fraction"),
        (["descend", *VGG, "--out", str(r / "d1"), "--prune-k", "0"], "prune_k (--prune-k) must be at least 1"),
        (["descend", *VGG, "--out", str(r / "d1"), "--prune-interval", "0"], "prune_interval (--prune-interval) must be at least 1"),
        (["descend", *VGG, "--out", str(r / "d1"), "--batch-size", "0"], "batch_size must be at least 1"),
        (["descend", *VGG, "--out", str(r / "d1"), "--warmup-epochs", "-1"], "warmup_epochs must be at least 0"),
        (["descend", *VGG, "--out", str(r / "d1"), "--base-ratio", "0"], "width ratio"),
        (["descend", *VGG, "--out", str(r / "d1"), "--base-ratio", "inf"], "base_ratio must be a finite number"),
        (["descend", *VGG, "--out", str(r / "d1"), "--val-fraction", "1"], "validation fraction"),
        (["descend", *VGG, "--out", str(r / "d1"), "--lr", "-1"], "must be positive"),
        (["descend", *VGG, "--out", str(r / "d1"), "--max-epochs", "0"], "max_epochs must be at least 1"),
        (["descend", *VGG, "--out", str(r / "d1"), "--train-subset", "0"], "train subset must be a number of images"),
        (["descend", *VGG, "--out", str(r / "d1"), "--seed", "-2"], "seed must be at least 0"),
        (["descend", *VGG, "--out", str(r / "d2"), "--prune-interval", "100000"], "training batches an iteration"),
        ([*DESCEND, "--out", "/proc/neuralscale-test/d"], "/proc/neuralscale-test"),
        ([*DESCEND, "--out", f], "is a file"),
        ([*DESCEND, "--out", str(r / "damaged_descent")], "config.json is damaged"),
        ([*DESCEND, "--out", str(r / "damaged_fits")], "fits.json is damaged"),
        ([*[a if a != "0.8" else "0.7" for a in DESCEND], "--out", descent], "another configuration"),
        # --- fit --------------------------------------------------------------------------------------------
        (["fit", str(r / "absent.csv"), *VGG], "does not exist"),
        (["fit", str(r / "empty.csv"), *VGG], "is empty"),
        (["fit", str(r / "junk.csv"), *VGG], "is not for vgg11"),
        (["fit", str(r / "traj.csv"), "--model", "torchvision:resnet18", "--dataset",
          "synthetic", "--tau", "original"], "layer"),
        (["fit", str(r / "traj.csv"), *VGG, "--out", str(r / "taken.json")], "exists"),
        (["fit", str(r / "traj.csv"), *VGG, "--out", str(r / "descent" / "law.json")],
         "descent directory"),
        (["fit", str(r / "traj.csv"), *VGG, "--out", str(r / "descent" / "fits.json")],
         "fits.json would be written into the descent directory"),  # (not "exists; ... or --force": that lost it)
        (["fit", str(r / "traj.csv"), *VGG, "--out", "/proc/neuralscale-test/law.json"],
         "/proc/neuralscale-test"),
        (["fit", str(r / "traj.csv"), *VGG, "--out", str(r)], "is a directory"),
        # --- scale ------------------------------------------------------------------------------------------
        (["scale", *VGG, "--method", "bogus", "--ratio", "0.5"], "unknown method"),
        (["scale", *VGG, "--method", "neuralscale", "--ratio", "0.5"], "needs --from"),
        (["scale", *VGG, "--method", "neuralscale", "--ratio", "0.5", "--from", str(r / "nope")], "does not exist"),
        (["scale", *VGG, "--method", "neuralscale", "--ratio", "0.5", "--from", str(r / "damaged_fits")], "damaged"),
        (["scale", *VGG, "--method", "neuralscale", "--ratio", "0.5", "--from", str(r / "law_other.json")],
         "fitted for resnet18"),
        (["scale", *VGG, "--method", "neuralscale", "--ratio", "0.5", "--from", str(r / "law_strings.json")],
         "finite numbers"),
        (["scale", *VGG, "--method", "neuralscale", "--ratio", "0.5", "--from", descent, "--iteration", "99"],
         "no iteration 99"),
        (["scale", *VGG, "--method", "uniform", "--params", "inf"], "positive finite"),
        (["scale", *VGG, "--method", "uniform", "--params", "-5"], "positive finite"),
        (["scale", *VGG, "--method", "uniform", "--params", "1e300"], "out of reach"),
        (["scale", *VGG, "--method", "uniform", "--params", "0.25"], "a budget of 0.25 parameters is out of reach"),
        (["scale", *VGG, "--method", "uniform", "--params", "0.25"], "(a share of the base model is written with %: "
                                                                     "25%)"),
        (["scale", *VGG, "--method", "uniform", "--params", "1e-9%"], "a budget of 9.23e-05 parameters is out of"),
        (["scale", *VGG, "--method", "uniform", "--params", "25"], "a budget of 25 parameters is out of reach: it is "
                                                                   "below"),  # (a walkthrough: 25 meant 25%)
        (["scale", *VGG, "--method", "uniform", "--params", "25"], "(a share of the base model is written with %: "
                                                                   "25%)"),
        (["scale", *VGG, "--method", "uniform", "--macs", "0"], "positive finite"),
        (["scale", *VGG, "--method", "uniform", "--ratio", "inf"], "width ratio"),
        (["scale", *VGG, "--method", "uniform", "--latency-ms", "nan"], "positive finite"),
        # below any network's latency: the range it reaches is measured no wider than memory holds (it once
        # built a network 64x as wide to say so, and ended in an allocation traceback)
        (["scale", *VGG, "--method", "uniform", "--latency-ms", "0.0001"], "out of reach"),
        (["scale", *VGG, "--method", "uniform", "--latency-ms", "50%", "--batch", "0"], "batch_size must be a whole"),
        (["scale", *VGG, "--method", "uniform", "--latency-ms", "50%", "--device", "tpu"], "unknown device 'tpu'"),
        (["sweep", *VGG, "--methods", "uniform,slimming", "--latency-ms", "50%", "--out", str(r / "lat")],
         "give them params or macs budgets"),
        (["scale", *VGG, "--method", "uniform", "--params", "1e5", "--min-width", "0"], "at least 1"),
        (["scale", *VGG, "--method", "uniform", "--params", "1e5", "--multiple", "0"], "at least 1"),
        (["scale", *VGG, "--method", "uniform", "--params", "25%", "--multiple", "100000"],
         "a multiple of 100,000 is more than the widest layer this law may have"),
        (["scale", *VGG, "--method", "uniform"], "one of the arguments"),
        # --- sweep ------------------------------------------------------------------------------------------
        ([*SWEEP, "--methods", "bogus", "--out", str(r / "s1")], "unknown method"),
        ([*SWEEP, "--methods", "unifrom", "--out", str(r / "s1")], "did you mean uniform"),
        ([*SWEEP, "--ratios", "inf", "--out", str(r / "s1")], "ratios must be a list of finite numbers"),
        ([*SWEEP, "--ratios", "-1", "--out", str(r / "s1")], "width ratio"),
        ([*SWEEP, "--params", "nan", "--out", str(r / "s1")], "a budget must be a positive finite number"),
        ([*SWEEP, "--params", "-3", "--out", str(r / "s1")], "a budget must be a positive finite number"),
        ([*SWEEP, "--seeds", "-1", "--out", str(r / "s1")], "seed must be at least 0"),
        ([*SWEEP, "--epochs", "0", "--out", str(r / "s1")], "epochs must be at least 1"),
        ([*SWEEP, "--batch-size", "0", "--out", str(r / "s1")], "batch_size must be at least 1"),
        ([*SWEEP, "--momentum", "-1", "--out", str(r / "s1")], "momentum must be at least 0"),
        ([*SWEEP, "--lr", "inf", "--out", str(r / "s1")], "lr must be a finite number"),
        ([*SWEEP, "--train-subset", "0", "--out", str(r / "s1")], "train subset must be a number of images"),
        ([*SWEEP, "--test-subset", "0", "--out", str(r / "s1")], "test subset must be a number of images"),
        ([*SWEEP, "--executor", "local", "--workers", "0", "--out", str(r / "s1")], "workers must be"),
        ([*SWEEP, "--threads", "0", "--out", str(r / "s1")], "threads must be"),
        ([*SWEEP, "--methods", "slimming", "--finetune-epochs", "0", "--out", str(r / "s1")], "finetune_epochs"),
        ([*SWEEP, "--methods", "slimming", "--finetune-lr", "0", "--out", str(r / "s1")], "finetune_lr"),
        ([*SWEEP, "--out", "/proc/neuralscale-test/s"], "/proc/neuralscale-test"),
        ([*SWEEP, "--out", f], "is a file"),
        ([*SWEEP[:-3], "--device", "cuda:5", "--quiet", "--out", str(r / "s1")], "CUDA"),
        ([*SWEEP, "--executor", "local", "--devices", "cuda:3", "--out", str(r / "s1")], "CUDA"),
        ([*SWEEP, "--methods", "neuralscale", "--from", str(r / "nope"), "--out", str(r / "s1")], "does not exist"),
        ([*SWEEP, "--methods", "morphnet", "--from", f, "--out", str(r / "s1")], "is a file; a sweep's --from is a "
                                                                                  "descent directory"),
        (["info", *VGG, "--from", str(r / "nope")], "--from " + str(r / "nope") + " does not exist"),
        ([*SWEEP, "--methods", "neuralscale", "--from", descent, "--iterations", "bogus", "--out", str(r / "s1")],
         "first, last or a number"),
        ([*SWEEP, "--out", str(r / "damagedplan")], "sweep.json is damaged"),
        ([*SWEEP, "--out", str(r / "wrongplan")], "sweep.json is damaged: recipe is []"),
        ([*[a if a != "1" else "2" for a in SWEEP], "--out", store], "another recipe"),
        ([*SWEEP, "--schedule", "nope", "--out", str(r / "s1")], "invalid choice"),
        ([*SWEEP, "--executor", "local", "--gpus-per-run", "0.5", "--out", str(r / "s1")],
         "--gpus-per-run place runs on a Ray cluster (--executor ray); the local executor"),
        ([*SWEEP, "--cpus-per-run", "2", "--address", "h:1", "--out", str(r / "s1")],
         "--address, --cpus-per-run place runs on a Ray cluster"),
        # --- report -----------------------------------------------------------------------------------------
        (["experiment", str(r)], "is a folder; give the experiment's TOML file"),
        (["report", str(r / "nope")], "does not exist"),
        (["report", f], "is not a folder"),
        (["report", str(r / "report_here")], "no run records"),
        (["report", str(r / "badstore")], "not a finished run record"),
        (["report", store, "--accuracy", "bogus"], "invalid choice"),
        (["report", store, "--out", descent], "descent directory"),
        (["report", store, "--out", str(r / "report_here")], "not a report"),
        (["report", store, "--out", "/proc/neuralscale-test/report"], "/proc/neuralscale-test"),
        (["report", store, "--out", f], "is a file"),
        # --- export -----------------------------------------------------------------------------------------
        (["export", str(r / "nope"), "--out", str(r / "e1")], "nope does not exist"),
        (["export", str(r / "report_here"), "--out", str(r / "e1")], "report_here holds no run record"),
        (["export", store, "--out", str(r / "e1")], "it is a sweep's store: export one of its runs, "),
        (["export", str(r / "unfinished"), "--out", str(r / "e1")], "has not finished"),
        (["export", str(r / "noweights"), "--out", str(r / "e1")], "is missing"),
        (["export", str(r / "badckpt"), "--out", str(r / "e1")], "is damaged"),
        (["export", run, "--out", str(Path(run) / "record")], "record.json would be written into the run directory"),
        (["export", run, "--out", str(Path(run) / "weights")], "run directory"),
        # deeper inside a run (a --force rerun clears it) or a store's runs/ (an adversarial pass, 2026-12-07)
        (["export", run, "--out", str(Path(run) / "sub" / "m")], f"would be written into the run directory {run}"),
        (["export", run, "--out", str(Path(store) / "runs" / "exported" / "m")], f"into the sweep store {store}"),
        (["export", run, "--out", str(r / "taken")], "exists"),
        (["export", run, "--out", "/proc/neuralscale-test/model"], "/proc/neuralscale-test"),
        (["export", run, "--out", str(r / "exdir") + "/"], "not a folder"),  # would write exdir.json beside it
        (["export", run, "--out", str(r / "small")], "not a folder"),  # an existing folder
        # under a file: not "cannot write .../m.json: File exists" (an adversarial pass, 2026-12-07)
        (["export", run, "--out", str(Path(f) / "sub" / "m")], f"{f} is a file, not a folder to write the export in"),
        # --- experiment -------------------------------------------------------------------------------------
        (["experiment", str(r / "absent.toml")], "does not exist"),
        (["experiment", ("TOML", EXP_OK), "--out", "/proc/neuralscale-test/exp"], "/proc/neuralscale-test"),
        (exp("[experiment\nmodel = 1"), "not valid TOML"),
        (exp(EXP_OK + "\n[bogus]\nx = 1\n"), "unknown section"),
        (exp(swap(EXP_OK, 'device = "cpu"', 'device = "cpu"\nconvcut = "no"')), "convcut must be true or false"),
        (exp(swap(EXP_OK, 'out = "exp-out"', 'out = "a\\u0000b"')), "holds a NUL character, which no path can"),
        (exp(swap(EXP_OK, 'out = "exp-out"', 'out = ""')), "[experiment] out is empty"),  # (the file's folder)
        # [sweep]'s own fields that the file's other tables give: they overrode them without a word
        (exp(swap(EXP_OK, "seeds = [0]", 'seeds = [0]\nmodel = "resnet18"')), "model belongs in [experiment], not [sweep]"),
        (exp(swap(EXP_OK, "seeds = [0]", 'seeds = [0]\ndataset = "cifar10"')), "dataset belongs in [experiment]"),
        (exp(swap(EXP_OK, "seeds = [0]", "seeds = [0]\nconvcut = true")), "convcut belongs in [experiment]"),
        (exp(swap(EXP_OK, "seeds = [0]", "seeds = [0]\ndata = {train = 16}")), "data belongs in [data], not [sweep]"),
        (exp(swap(EXP_OK, 'model = "vgg11"', "model = 1")), "model must be a string"),
        (exp(EXP_OK.split("[sweep]")[0]), "[sweep] is missing"),
        (exp(swap(EXP_OK, "seeds = [0]", "seeds = [0]\nbogus = 1")), "unknown sweep setting(s): bogus"),
        (exp(swap(EXP_OK, "iterations = 1", "iterations = 1\nintervall = 3")), "did you mean prune_interval"),
        (exp(swap(EXP_OK, "iterations = 1", 'iterations = 1\nk = "ten"')), "k must be an integer"),
        (exp(swap(EXP_OK, "iterations = 1", "iterations = 1\nprune_fraction = 1.5")), "prune fraction"),
        (exp(swap(EXP_OK, "train = 32", "train = 0")), "train subset"),
        (exp(swap(EXP_OK, "train = 32", "train = 32\nbogus = 1")), "unknown data setting"),
        (exp(EXP_OK + '\n[executor]\nname = "local"\nworkers = "two"\n'), "workers must be an integer"),
        (exp(EXP_OK + '\n[executor]\nname = "local"\nworkers = 0\n'), "workers must be"),
        (exp(EXP_OK + '\n[report]\naccuracy = "bogus"\n'), "unknown [report] accuracy"),
        (exp(EXP_OK + "\n[report]\nbogus = 1\n"), "unknown [report] setting"),
        (exp(swap(EXP_OK, "epochs = 1", "epochs = 0")), "epochs must be at least 1"),
        (exp(swap(EXP_OK, "ratios = [0.0625]", 'ratios = ["a"]')), "ratios must be"),
        (exp(swap(EXP_OK, 'methods = ["uniform"]', 'methods = "uniform"')), "methods must be"),
        (exp(swap(EXP_OK, "ratios = [0.0625]", 'params = "25%"')), "params must be a list of budgets"),
        (exp(swap(EXP_OK, "ratios = [0.0625]", "macs = 20000")), "macs must be a list of budgets"),
        (exp(swap(EXP_OK, "[sweep.train]", "[sweep.train]\nmomentum = -0.5")), "momentum must be at least 0"),
        # --- values and paths at the edges (issue 32) --------------------------------------------------------------
        (["info", *VGG, "--ratio", "0.125", "--latency", "--batch", "1000000000"], "does not fit in cpu's memory"),
        (["train", *TINY_TRAIN, "--seed", str(2**63)], "seed must be at most"),
        (["train", *TINY_TRAIN, "--seed", str(2**64 + 1)], "seed must be at most"),
        (exp(swap(EXP_OK, "epochs = 1", f"epochs = 1\nsplit_seed = {2**60}")), "split_seed must be at most"),
        ([*SWEEP, "--seeds", f"0,{2**63}", "--out", str(r / "bigseed")], "a seed must be at most"),
        (["descend", *TINY_DESCENT_ARGS, "--seed", str(2**62), "--out", str(r / "bigseed_d")], "seed must be at most"),
        (exp("a = " + "[" * 5000 + "]" * 5000 + "\n"), "nests its arrays or tables too deeply"),
        (["train", *TINY_TRAIN, "--out", str(r / ("x" * 5000))], "File name too long"),
        (["train", *TINY_TRAIN, "--out", str(r / ("y" * 300) / "run")], "File name too long"),
        (["scale", *VGG, "--method", "uniform", "--params", "1e308%"], "must be a positive finite"),
        (["scale", *VGG, "--method", "neuralscale", "--from", str(r / "descent_huge"), "--params", "20000"],
         "too large"),
        # a model whose weights, gradients and momentum alone exceed memory: refused, not killed without a word
        (["info", *VGG, "--widths", ",".join(["65536"] * 8), "--latency"], "too much for this machine's"),
        ([*SWEEP, "--workers", "2", "--threads", "100000", "--out", str(r / "many")], "threads must be at most"),
        ([*SWEEP, "--workers", "100000", "--out", str(r / "many")], "workers must be at most"),
        (["train", *TINY_TRAIN[:4], "--widths", ",".join(["32768"] * 8), *TINY_TRAIN[6:], "--out", str(r / "wide")], "too much for this machine's"),
        # --- anything -----------------------------------------------------------------------------------------
        (["frobnicate"], "invalid choice"),
    ]


CASES = _cases(Path("/ROOT"))  # the shape of the corpus, for ids; the real paths come from the fixture


@pytest.mark.parametrize("index", range(len(CASES)), ids=[" ".join(map(str, c[0][:3]))[:40] + f"#{i}"
                                                          for i, c in enumerate(CASES)])
def test_bad_input_ends_in_one_clear_line(world, index, capsys):
    args, needle = _cases(world["root"])[index]
    args = [_experiment(world["root"], a[1]) if isinstance(a, tuple) else a for a in args]
    before = sorted(p.relative_to(world["root"]) for p in world["root"].rglob("*") if ".lock" not in p.name)
    code = cli.main(args)
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("neuralscale: error: ") and needle in lines[0], err
    after = sorted(p.relative_to(world["root"]) for p in world["root"].rglob("*") if ".lock" not in p.name)
    assert not set(before) - set(after)  # nothing that was there is gone


def test_the_corpus_is_large():
    assert len(CASES) >= 100


@pytest.mark.parametrize("old,new,needle", [
    ("", '\n[report]\naccuracy = "bogus"\n', "unknown [report] accuracy"),
    # mistakes the sweep found only as it started, after the experiment's descent (hours later)
    ('methods = ["uniform"]', 'methods = ["neuralscale@x"]', "number from 1, got 'x'"),
    ('methods = ["uniform"]', 'methods = ["neuralscale@0"]', "number from 1, got '0'"),
    ("seeds = [0]", 'seeds = [0]\niterations = ["bogus"]', "number from 1, got 'bogus'"),
    ("seeds = [0]", "seeds = [0]\niterations = [0]", "number from 1, got 0"),
    ("[sweep.train]", '[sweep.train]\ndevice = "tpu"', "unknown device 'tpu'"),
    # an iteration the descent will not have; a best-validation report of runs without a validation split
    ('methods = ["uniform"]', 'methods = ["uniform", "neuralscale"]\niterations = [5]', "[sweep] asks for descent "
     "iteration 5, and [descent] runs 1 iteration(s): give [descent] iterations = 5, or ask for iterations up to 1"),
    ('methods = ["uniform"]', 'methods = ["uniform", "neuralscale@3"]', "asks for descent iteration 3"),
    ("epochs = 1", "epochs = 1\nval_fraction = 0.0", 'give [report] accuracy = "final", or a val_fraction above 0'),
    # a budget below every layer at its narrowest: out of reach for every method, known before the descent
    ("ratios = [0.0625]", "ratios = []\nparams = [10]", "a budget of 10 parameters is out of reach: vgg11 has 1"),
    ("ratios = [0.0625]", 'ratios = []\nmacs = ["0.001%"]', "a budget of 1,528 MACs (0.001% of the base model) is out of "
                                                           "reach: vgg11 has 31,474 MACs with every layer at its narrowest"),
    ("ratios = [0.0625]", "ratios = []\nparams = [200]\nmin_width = 2", "narrowest (2 channel(s)); give a larger "
                                                                        "budget, or a smaller min_width"),
    ("[sweep.train]", '[sweep.train]\ndevice = "mps"', "device 'mps' is not supported"),  # torch parses it; we train on
    ('methods = ["uniform"]', 'methods = ["neuralscale@²"]', "number from 1, got '²'"),  # cpu or cuda only
    ("epochs = 1", 'epochs = "two"', "training setting epochs must be an integer, got 'two'"),
])
def test_a_late_mistake_in_an_experiment_file_stops_it_before_the_descent(world, capsys, old, new, needle):
    body = EXP_OK.replace('out = "exp-out"', 'out = "late-out"')
    path = _experiment(world["root"], body.replace(old, new, 1) if old else body + new)
    assert cli.main(["experiment", path]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], lines
    assert lines[0].startswith(f"neuralscale: error: {path}: "), lines  # the file it is in, named
    assert not (world["root"] / "late-out").exists()  # nothing ran


@pytest.mark.parametrize("args,needle", [
    (["info", "--model", "vgg11", "--dataset", "synthetic", "--ratio", "inf"], "width ratio"),
    (["sweep", *SWEEP[1:], "--train-subset", "0", "--out", "/tmp/never"], "train subset"),
    (["descend", "--model", "vgg11", "--dataset", "synthetic", "--out", "/proc/x", "--iterations", "1"], "/proc/x"),
])
def test_bad_input_in_a_real_subprocess(args, needle):
    r = run_real_cli(*args)  # a new interpreter, as a user starts it
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and needle in r.stderr, r.stderr


def test_a_torch_logs_that_pytorch_refuses_is_one_line():
    """TORCH_LOGS is read by `import torch`, before any of the command runs: a value PyTorch cannot parse was a
    24-line traceback and its list of settings; one line now, exit status 2 (a program importing the library
    still gets PyTorch's ValueError). A value it knows changes nothing."""
    r = run_real_cli("info", "--model", "vgg11", "--dataset", "synthetic", env={"TORCH_LOGS": "garbage"})
    assert r.returncode == 2 and r.stderr.strip() == (
        "neuralscale: error: TORCH_LOGS='garbage' is not a setting PyTorch knows; fix it or unset it (PyTorch lists "
        "its settings where a Python program imports torch)"), r.stderr
    r = run_real_cli("--version", env={"TORCH_LOGS": "+dynamo"})
    assert r.returncode == 0, r.stderr


# --- found by an adversarial pass (2026-12-04) -------------------------------------------------------------------
def _folder(root: Path) -> Path:
    from helpers import write_imagefolder
    return write_imagefolder(root, classes=2, per_class=2, size=32)


def test_hidden_folders_and_files_in_an_image_folder_are_not_classes_or_images(tmp_path):
    """Jupyter's .ipynb_checkpoints/ and macOS's ._* stubs: skipped, as file browsers hide them (the folder
    was refused: "train has class folders not in train/: .ipynb_checkpoints")."""
    from neuralscale.data.imagefolder import read
    plain = read(str(_folder(tmp_path / "plain")))
    messy = _folder(tmp_path / "messy")
    for part in ("train", "test"):
        shutil.copytree(messy / part / "class_0", messy / part / ".ipynb_checkpoints")
        (messy / part / "class_1" / "._img0.png").write_bytes(b"\x00\x05\x16\x07 Mac OS X resource fork")
        shutil.copytree(messy / part / "class_1", messy / part / "class_1" / ".thumbs")
    got = read(str(messy))
    assert got["classes"] == plain["classes"] == ["class_0", "class_1"]
    for key in ("train_x", "train_y", "test_x", "test_y"):
        assert torch_equal(got[key], plain[key]), key


def test_an_empty_class_folder_in_train_is_refused(tmp_path):
    """A class with no training images was a class the network never saw (silently)."""
    import neuralscale as ns
    from neuralscale.data.imagefolder import read
    folder = _folder(tmp_path / "f")
    (folder / "train" / "class_9").mkdir()
    (folder / "train" / "class_9" / "notes.txt").write_text("not an image")
    with pytest.raises(ns.NeuralscaleError, match="class_9 holds no images"):
        read(str(folder))


def torch_equal(a, b) -> bool:
    import torch
    return a.shape == b.shape and bool(torch.equal(a, b))


def test_an_image_too_large_to_decode_is_one_line_and_a_large_one_no_warning(tmp_path, monkeypatch, recwarn):
    """PIL's decompression-bomb limits, moved down to this test's image sizes: over twice the limit an image is
    refused in one NeuralscaleError (it was PIL's traceback), between once and twice it loads without PIL's
    two-line warning on stderr."""
    import neuralscale as ns
    from neuralscale.data.images import decode, image_size
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    big, large = tmp_path / "big.png", tmp_path / "large.png"
    Image.fromarray(np.zeros((16, 16, 3), dtype=np.uint8)).save(big)  # 256 pixels: over twice 100
    Image.fromarray(np.zeros((12, 12, 3), dtype=np.uint8)).save(large)  # 144: over 100, under 200
    for call in (lambda: image_size(big.read_bytes(), str(big)), lambda: decode(big.read_bytes(), 16, str(big))):
        with pytest.raises(ns.NeuralscaleError, match="too large to decode") as e:
            call()
        assert "\n" not in str(e.value)
    assert image_size(large.read_bytes(), str(large)) == 12 and decode(large.read_bytes(), 12, str(large)).shape == (3, 12, 12)
    assert not [w for w in recwarn if issubclass(w.category, Image.DecompressionBombWarning)]


def test_an_image_folder_too_big_for_memory_is_refused_before_decoding(tmp_path, monkeypatch, capsys):
    """Phone photos: every image decoded at the first one's size could exhaust memory and be killed without a
    word; refused first, in one line (physical memory made small here: 64 KiB)."""
    import neuralscale.memory
    folder = _folder(tmp_path / "f")
    monkeypatch.setattr(neuralscale.memory, "physical_memory", lambda: 64 * 1024)  # 12 images of 32 px: 36 KiB
    code = cli.main(["info", "--model", "vgg11", "--dataset", f"imagefolder:{folder}"])
    assert code == 0  # info reads one image, not the folder
    capsys.readouterr()
    code = cli.main(["train", "--model", "vgg11", "--dataset", f"imagefolder:{folder}", "--ratio", "0.0625",
                     "--epochs", "1", "--out", str(tmp_path / "run"), "--quiet"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "resize them first" in lines[0], lines


def test_out_of_memory_from_pytorch_is_one_line_and_other_runtime_errors_are_not_hidden(monkeypatch, capsys):
    """PyTorch's allocators report a failed allocation as a RuntimeError, not a MemoryError: one line, exit 2
    (it was a traceback). Any other RuntimeError is a bug and keeps its traceback."""
    def oom(args):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't allocate memory: "
                           "you tried to allocate 30000000000 bytes. Error code 12 (Cannot allocate memory)")

    monkeypatch.setitem(cli.COMMANDS, "info", oom)
    assert cli.main(["info", *VGG]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("neuralscale: error: out of memory (") and "ask for less" in lines[0]

    def bug(args):
        raise RuntimeError("a bug of ours")

    monkeypatch.setitem(cli.COMMANDS, "info", bug)
    with pytest.raises(RuntimeError, match="a bug of ours"):
        cli.main(["info", *VGG])


def test_an_empty_export_name_writes_nothing(world, tmp_path, monkeypatch, capsys):
    """`export RUN --out ""` wrote hidden ./.json and ./.pt, then failed naming .json.json."""
    monkeypatch.chdir(tmp_path)
    assert cli.main(["export", str(world["root"] / "run"), "--out", ""]) == 2
    assert "not a folder" in capsys.readouterr().err and not list(tmp_path.iterdir())


def test_training_past_memory_is_refused_by_the_trainer_and_a_model_past_it_by_the_build(monkeypatch):
    """Weights alone past half of memory: refused by the build (loading or measuring a model needs them);
    weights, gradients and momentum: by the CPU trainer. Memory is made small here (the model's 4 bytes a
    parameter fit, its 16 do not)."""
    import neuralscale as ns
    import neuralscale.memory
    from neuralscale.api import load_splits
    from neuralscale.train import TrainConfig, Trainer
    sp = ns.space("vgg11", "synthetic")
    widths = sp.uniform(0.0625)
    n = sp.params(widths)
    splits = load_splits("synthetic", TrainConfig(device="cpu"), None, subset={"train": 32, "test": 8})
    monkeypatch.setattr(neuralscale.memory, "physical_memory", lambda: 12 * n)  # half: 6 bytes a parameter
    model = sp.build(widths)
    with pytest.raises(ns.NeuralscaleError, match=f"training {n:,} parameters on the CPU"):
        Trainer(model, splits, TrainConfig(device="cpu", epochs=1))
    monkeypatch.setattr(neuralscale.memory, "physical_memory", lambda: 6 * n)  # half: 3 bytes a parameter
    with pytest.raises(ns.NeuralscaleError, match="its weights take"):
        sp.build(widths)


def test_a_run_this_machine_cannot_train_writes_no_record_and_the_corrected_command_runs(tmp_path, capsys):
    """`train --cuda-graphs` on a CPU, `--device tpu` or a CUDA device that is not here left a failed (or running)
    record in --out, and the corrected command was then refused: the folder 'holds another run'; so did a network
    past the machine's memory. `descend` wrote its configuration and log."""
    import torch
    out = tmp_path / "run"
    cpu = TINY_TRAIN[:TINY_TRAIN.index("--device")] + ["--quiet"]
    bad = [["--device", "tpu"], ["--device", "cpu", "--cuda-graphs"]] + ([] if torch.cuda.device_count() > 5 else
                                                                         [["--device", "cuda:5"]])
    for flags in bad:
        assert cli.main(["train", *cpu, *flags, "--out", str(out)]) == 2, flags
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and not (out / "record.json").exists(), (flags, err)
    wide = [a if a != "--ratio" else "--widths" for a in TINY_TRAIN]  # a network past this machine's memory
    wide[wide.index("--widths") + 1] = ",".join(["32768"] * 8)
    assert cli.main(["train", *wide, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "too much for this machine's" in err[0] and not (out / "record.json").exists(), err
    assert cli.main(["train", *TINY_TRAIN, "--out", str(out)]) == 0
    assert json.loads((out / "record.json").read_text())["status"] == "finished"
    # that finished run is returned as it is whatever the device asked for: a record read needs no device, and
    # none is checked (the review of this change: it refused a finished run on a machine without CUDA)
    for flags in [f for f in bad if f[-1] == "cuda:5"]:
        assert cli.main(["train", *cpu, *flags, "--out", str(out)]) == 0, flags
    d = tmp_path / "descent"  # a descent wrote its configuration and the first line of its log
    for flags in bad[:2]:
        assert cli.main(["descend", *TINY_DESCENT_ARGS, "--quiet", *flags, "--out", str(d)]) == 2, flags
        assert len(capsys.readouterr().err.strip().splitlines()) == 1 and not d.exists(), flags
    one = [*TINY_DESCENT_ARGS[:TINY_DESCENT_ARGS.index("--iterations") + 1], "1",
           *TINY_DESCENT_ARGS[TINY_DESCENT_ARGS.index("--iterations") + 2:], "--quiet", "--out", str(d)]
    assert cli.main(["descend", *one]) == 0
    for flags in [f for f in bad if f[-1] == "cuda:5"]:  # finished: its laws read on any machine, no device asked
        assert cli.main(["descend", *one, *flags]) == 0
