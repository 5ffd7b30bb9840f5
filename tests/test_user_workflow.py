"""What a user reaches for: budgets as shares, a budget to a model in one step, their own model and training
loop, standalone exports, one --json interface, readable files."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F
import torchvision

import neuralscale as ns
from neuralscale.api import describe, fit_trajectory, load_splits, resolve_widths, train_config
from neuralscale.data.augment import DeviceBatches, channel_stats
from neuralscale.descent import DescentConfig
from helpers import TINY_DESCENT_ARGS, run_cli, run_python, write_fashion, write_imagefolder

SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")

SYNTH = ["--model", "vgg11", "--dataset", "synthetic"]
SMALL_DESCENT = dict(iterations=1, warmup_epochs=1, k=3, interval=2, prune_fraction=0.6, batch_size=32,
                     base_ratio=0.0625, prune_past_one=True, trajectory_start="per-layer", device="cpu")


@pytest.fixture
def descent(tiny_descent):
    """(directory, laws) of the session's tiny descent (conftest.tiny_descent)."""
    return tiny_descent


def test_budgets_as_shares_of_the_base_model():
    sp = ns.space("vgg11", "cifar10")
    base_p, base_m = sp.params(sp.base_widths), sp.macs(sp.base_widths)
    r = run_cli("scale", "--model", "vgg11", "--dataset", "cifar10", "--method", "uniform", "--params", "25%", "--json")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert abs(res["params"] - 0.25 * base_p) <= 0.005 * 0.25 * base_p
    assert res["params_share"] == res["params"] / base_p and res["macs_share"] == res["macs"] / base_m
    assert "warning" not in r.stderr  # uniform is uniform by design, not a failed fit
    human = run_cli("scale", "--model", "vgg11", "--dataset", "cifar10", "--method", "uniform", "--macs", "50%")
    assert "of the base model's parameters" in human.stdout and ("50.0% of its MACs" in human.stdout or "50.1% of its MACs" in human.stdout)
    widths = human.stdout.split("widths ")[1].split()[0].split(",")  # and by layer, as info lists them (a walkthrough)
    assert f"  conv1 {widths[0]}, conv2 {widths[1]}," in human.stdout and human.stdout.count(f", conv8 {widths[7]}\n") == 1
    info = run_cli("info", "--model", "vgg11", "--dataset", "cifar10", "--ratio", "0.5")
    assert "(25.0% of the base model)" in info.stdout
    assert ns.scale(sp, "uniform", "2.3M")["budget"] == 2.3e6  # suffixes read as people write them
    for bad in ("0%", "-5%", "25x", "abc"):
        r = run_cli("scale", "--model", "vgg11", "--dataset", "cifar10", "--method", "uniform", f"--params={bad}")
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "share of the base" in r.stderr


def test_train_from_a_descent_at_a_share(tmp_path, descent):
    out, laws = descent
    run = tmp_path / "run"
    r = run_cli("train", *SYNTH, "--from", str(out), "--method", "neuralscale", "--params", "50%", "--epochs", "1",
                "--train-subset", "64", "--test-subset", "32", "--batch-size", "32", "--device", "cpu",
                "--out", str(run), "--json")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    sp = ns.space("vgg11", "synthetic")
    assert res["label"] == f"neuralscale@{len(laws)}" and res["budget"]["share"] == 0.5
    assert res["widths"] == ns.scale(sp, "neuralscale", ns.Budget.parse("50%"), source=out)["widths"]
    assert abs(res["params_share"] - 0.5) < 0.01
    assert run.joinpath("record.json").exists() and "params50pct" not in str(run)  # --out names the run
    human = run_cli("train", *SYNTH, "--from", str(out), "--method", "neuralscale", "--params", "50%", "--epochs",
                    "1", "--train-subset", "64", "--test-subset", "32", "--batch-size", "32", "--device", "cpu",
                    "--out", str(run))
    assert human.returncode == 0 and "of the base model's parameters" in human.stdout
    assert "already finished" in human.stderr
    r = run_cli("train", *SYNTH, "--method", "slimming", "--params", "50%", "--epochs", "1")
    assert r.returncode == 2 and "sweep" in r.stderr


def test_descent_result_builds_a_model_for_a_budget(descent):
    out, laws = descent
    assert isinstance(laws, ns.DescentResult) and len(laws) == 2
    sp = ns.space("vgg11", "synthetic")
    model = laws.build(params="25%")
    got = sum(p.numel() for p in model.parameters())
    assert abs(got - 0.25 * sp.params(sp.base_widths)) <= 0.01 * 0.25 * sp.params(sp.base_widths)
    if not laws[-1].fallback:  # a law fitted against parameters takes a MACs budget only when asked to convert
        with pytest.raises(ns.NeuralscaleError, match="--convert"):
            laws.configuration(macs="10%")
    conf = laws.configuration(macs="10%", convert=True)
    assert abs(conf["macs_share"] - 0.10) < 0.01 and conf["iteration"] == 2
    # with no budget: the descent's own (rebased) parameter count
    assert abs(laws.configuration()["params"] - sp.params(sp.uniform(0.0625))) <= 0.01 * sp.params(sp.uniform(0.0625))


def test_your_own_module_end_to_end(tmp_path):
    """ns.space(model, example_input) -> descend -> build at 25% -> train -> export -> load with its space."""
    net = torchvision.models.resnet18(num_classes=10)
    sp = ns.space(net, torch.randn(2, 3, 32, 32))
    assert sp.info.num_classes == 10 and sp.info.input_shape == (3, 32, 32) and sp.name == "module:ResNet"
    cfg = DescentConfig(**{**SMALL_DESCENT, "base_ratio": 0.125, "k": 8})
    laws = ns.descend(sp, "synthetic", tmp_path / "d", cfg, subset={"train": 96}, progress=False)
    small = laws.build(params="25%")
    assert isinstance(small, torch.nn.Module) and small.eval()(torch.randn(1, 3, 32, 32)).shape == (1, 10)
    rec = ns.train(sp, "synthetic", widths=laws.widths(params="25%"), config=ns.TrainConfig(epochs=1, batch_size=32,
                   device="cpu"), subset={"train": 64, "test": 16}, out_dir=tmp_path / "run", progress=False)
    from neuralscale.export import export_run
    with pytest.raises(ns.NeuralscaleError):  # a space of your own cannot be rebuilt from its name
        export_run(tmp_path / "run", tmp_path / "m")
    export_run(tmp_path / "run", tmp_path / "m", space=sp)
    model, meta = ns.load_model(tmp_path / "m.json", space=sp)
    assert meta["widths"] == rec["widths"] and model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    bad = ns.space(torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
                                       torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 4)),
                   torch.randn(1, 1, 32, 32))
    with pytest.raises(ns.NeuralscaleError, match="4 classes, but synthetic"):
        ns.train(bad, "synthetic", ratio=1.0, subset={"train": 16, "test": 8}, progress=False)


def test_a_pruner_in_your_own_loop_gives_descends_trajectory(tmp_path):
    """The same data, seed and recipe: a plain PyTorch loop with ns.Pruner writes what `descend --masking` does."""
    cfg = DescentConfig(**{**SMALL_DESCENT, "physical": False})
    ref = ns.descend("vgg11", "synthetic", tmp_path / "ref", cfg, subset={"train": 160}, progress=False)

    # the user's loop: their model, optimizer, lr per epoch and batches (here the same as descend's, to compare)
    base = ns.space("vgg11", "synthetic")
    resolved = cfg.resolve(base)
    sp = resolved.start_space(base)
    splits = load_splits("synthetic", ns.TrainConfig(val_fraction=0.0), subset={"train": 160})
    tc = replace(resolved.train_config(), seed=resolved.seed * 1000 + 1)
    torch.manual_seed(resolved.seed * 1000 + 1)
    model = sp.build(sp.base_widths)
    opt = torch.optim.SGD(model.parameters(), lr=tc.lr, momentum=tc.momentum, weight_decay=tc.weight_decay,
                          foreach=True)
    mean, std = channel_stats(splits.train[0])
    batches = DeviceBatches(*splits.train, mean, std, torch.device("cpu"), False, torch.float32)
    pruner = None
    for epoch in range(50):
        for g in opt.param_groups:
            g["lr"] = tc.lr_at(epoch)
        if epoch == resolved.warmup_epochs:
            pruner = ns.Pruner(sp, model, tmp_path / "mine", k=resolved.k, interval=resolved.interval,
                               prune_fraction=resolved.prune_fraction, prune_past_one=True, trajectory_start="per-layer")
        model.train()
        gen = torch.Generator().manual_seed(tc.seed * 1_000_003 + epoch)
        for x, y in batches.train_batches(tc.batch_size, gen, splits.info.crop_padding, splits.info.rotate, True):
            loss = F.cross_entropy(model(x).float(), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if pruner is not None:
                pruner.step()
                if pruner.done:
                    break
        if pruner is not None and pruner.done:
            break
    laws = pruner.finish()
    assert len(pruner.rows) >= 10 and not laws[0].fallback
    assert (tmp_path / "mine" / "iteration_01.csv").read_text() == (tmp_path / "ref" / "iteration_01.csv").read_text()
    assert laws[0].alpha == ref[0].alpha and laws[0].beta == ref[0].beta
    assert pruner.widths == json.loads((tmp_path / "ref" / "fits.json").read_text())["laws"][0]["final_widths"]
    # so is MorphNet's configuration (where half the channels were gone), not where pruning ended (a mutation audit)
    mine, theirs = (json.loads((tmp_path / d / "fits.json").read_text())["laws"][0] for d in ("mine", "ref"))
    assert mine["half_widths"] == theirs["half_widths"] != theirs["final_widths"]
    # the directory is a descent directory like any other
    r = run_cli("scale", *SYNTH, "--method", "neuralscale", "--from", str(tmp_path / "mine"), "--params", "25%")
    assert r.returncode == 0, r.stderr
    # a second Pruner on it makes iteration 2: from laws.build() as descend's would, said; from elsewhere (the
    # base widths again: a rerun of the same loop), warned of (it was added in silence)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error", ns.NeuralscaleWarning)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the law's own notes on the configuration it gives
            nxt = laws.build()
        ns.Pruner(sp, nxt, tmp_path / "mine", k=resolved.k, interval=resolved.interval,
                  prune_fraction=resolved.prune_fraction, prune_past_one=True, trajectory_start="per-layer")
    with pytest.warns(ns.NeuralscaleWarning, match=r"iteration 2 of .* starts from widths .*, not from iteration "
                                                     r"1's law at the base model's size .*laws\.build\(\)"):
        ns.Pruner(sp, sp.build(sp.base_widths), tmp_path / "mine", k=resolved.k, interval=resolved.interval,
                  prune_fraction=resolved.prune_fraction, prune_past_one=True, trajectory_start="per-layer")


def test_an_export_loads_with_no_dataset_and_its_onnx_matches(tmp_path):
    pytest.importorskip("onnxruntime")
    data = write_fashion(tmp_path / "data", n_train=80, n_test=20)
    run = tmp_path / "run"
    r = run_cli("train", "--model", "vgg11", "--dataset", "fashionmnist", "--data-dir", str(data), "--ratio", "0.0625",
                "--epochs", "1", "--batch-size", "32", "--out", str(run), "--quiet")
    assert r.returncode == 0, r.stderr
    r = run_cli("export", str(run), "--out", str(tmp_path / "model"), "--onnx", "--json")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["checked"] and res["max_abs_diff"] < 1e-3 and res["model"] == "vgg11"
    meta = json.loads((tmp_path / "model.json").read_text())
    assert meta["input_shape"] == [1, 32, 32] and meta["num_classes"] == 10
    shutil.rmtree(data)  # elsewhere: no dataset, no data folder, a process of its own
    code = ("import neuralscale as ns, torch, onnxruntime as ort, sys\n"
            "m, meta = ns.load_model(sys.argv[1])\n"
            "x = torch.randn(2, *meta['input_shape'])\n"
            "s = ort.InferenceSession(sys.argv[2], providers=['CPUExecutionProvider'])\n"
            "d = abs(s.run(['logits'], {'images': x.numpy()})[0] - m(x).detach().numpy()).max()\n"
            "print(float(d))\n")
    p = run_python(code, str(tmp_path / "model.json"), str(tmp_path / "model.onnx"),
                   env={"NEURALSCALE_DATA": str(tmp_path / "none")})
    assert p.returncode == 0, p.stderr
    assert float(p.stdout) < 1e-3


def test_every_command_speaks_json_with_the_same_keys(tmp_path, descent):
    out, laws = descent
    shared = ("model", "dataset", "layers", "widths", "params", "macs", "params_share", "macs_share")
    tiny = ["--train-subset", "64", "--test-subset", "32", "--batch-size", "32", "--device", "cpu"]
    outputs = {
        "info": run_cli("info", *SYNTH, "--ratio", "0.0625", "--json"),
        "scale": run_cli("scale", *SYNTH, "--method", "uniform", "--ratio", "0.0625", "--json"),
        "train": run_cli("train", *SYNTH, "--ratio", "0.0625", "--epochs", "1", *tiny, "--out", str(tmp_path / "r"),
                         "--json"),
        "descend": run_cli("descend", *TINY_DESCENT_ARGS, "--out", str(out), "--json"),  # finished: answers from
        # its directory
        "fit": run_cli("fit", str(out / "iteration_01.csv"), *SYNTH, "--json"),
        "export": run_cli("export", str(tmp_path / "r"), "--out", str(tmp_path / "m"), "--json"),
        "sweep": run_cli("sweep", *SYNTH, "--methods", "uniform", "--ratios", "0.0625", "--seeds", "0", "--epochs", "1",
                         "--train-subset", "64", "--test-subset", "32", "--batch-size", "32", "--device", "cpu",
                         "--out", str(tmp_path / "s"), "--json", "--quiet"),
        # its --json document is the same with or without figures (test_report.py draws them)
        "report": run_cli("report", str(tmp_path / "s"), "--no-figures", "--json"),
    }
    (tmp_path / "e.toml").write_text(
        '[experiment]\nmodel = "vgg11"\ndataset = "synthetic"\nout = "x"\ndevice = "cpu"\n'
        '[data]\ntrain = 64\ntest = 32\n[sweep]\nmethods = ["uniform"]\nratios = [0.0625]\nseeds = [0]\n'
        '[sweep.train]\nepochs = 1\nbatch_size = 32\n')
    outputs["experiment"] = run_cli("experiment", str(tmp_path / "e.toml"), "--json", "--quiet")
    docs = {}
    for name, r in outputs.items():
        assert r.returncode == 0, (name, r.stderr)
        docs[name] = json.loads(r.stdout)
    from neuralscale.cli import build_parser
    commands = build_parser()._subparsers._group_actions[0].choices
    assert set(commands) == set(docs)  # every command
    for name in commands:
        assert "--json" in commands[name].format_help(), name
    one = {k: docs["info"][k] for k in shared}
    for name in ("scale", "train", "export", "descend"):
        layers = docs[name]
        assert all(k in layers for k in shared), (name, [k for k in shared if k not in layers])
        assert layers["model"] == one["model"] and layers["dataset"] == one["dataset"]
        assert layers["layers"] == one["layers"]
    for name in ("scale", "train", "export"):  # the same configuration: the same numbers under the same keys
        assert {k: docs[name][k] for k in shared} == one, name
    assert docs["fit"]["model"] == "vgg11" and docs["fit"]["layers"] == one["layers"]
    assert {k: docs["sweep"][k] for k in ("finished", "failed", "total")} == {"finished": 1, "failed": 0, "total": 1}
    assert docs["descend"]["iterations"] == len(docs["descend"]["laws"]) == len(laws)
    assert docs["train"]["out"] == str(tmp_path / "r") and docs["descend"]["out"] == str(out)
    for name in ("sweep", "report", "experiment"):
        run = docs[name]["runs"][0]
        assert docs[name]["model"] == "vgg11" and run["widths"] == one["widths"] and run["params"] == one["params"]
        assert run["macs"] == one["macs"] and run["model"] == "vgg11" and run["dataset"] == "synthetic"


def test_files_are_readable_by_collaborators(tmp_path):
    old = os.umask(0o022)
    try:
        r = run_cli("sweep", *SYNTH, "--methods", "uniform", "--ratios", "0.0625", "--seeds", "0", "--epochs", "1",
                    "--train-subset", "64", "--test-subset", "32", "--batch-size", "32", "--device", "cpu",
                    "--out", str(tmp_path / "s"), "--report", "--quiet")
        assert r.returncode == 0, r.stderr
        files = [p for p in (tmp_path / "s").rglob("*") if p.is_file() and p.name != ".lock"]
        assert len(files) >= 6 and any(p.name == "report.html" for p in files)
        assert any(p.name == "checkpoint.pt" for p in files) and any(p.name == "record.json" for p in files)
        for p in files:
            assert stat.S_IMODE(p.stat().st_mode) == 0o644, p
        for d in [tmp_path / "s", *[p for p in (tmp_path / "s").rglob("*") if p.is_dir()]]:
            assert stat.S_IMODE(d.stat().st_mode) == 0o755, d
    finally:
        os.umask(old)


def test_review_findings_stay_fixed(tmp_path, descent):
    """What an adversarial review found, each one line: a user's space records its real dataset, dotted export
    names, a PDF-only report still shows its figures, the Pruner refuses early, bad settings are one line."""
    from helpers import write_imagefolder
    from neuralscale.experiment import prepare
    out, laws = descent
    # 1. a space of your own records the data it was trained on: another folder is another run
    for name in ("a", "b"):
        write_imagefolder(tmp_path / name, classes=3, per_class=4, size=32)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
                              torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 3))
    sp = ns.space(net, torch.randn(1, 3, 32, 32))
    cfg = ns.TrainConfig(epochs=1, batch_size=8, device="cpu")
    ra = ns.train(sp, f"imagefolder:{tmp_path / 'a'}", ratio=1.0, config=cfg, out_dir=tmp_path / "ra", progress=False)
    assert ra["dataset"] == f"imagefolder:{tmp_path / 'a'}"
    with pytest.raises(ns.NeuralscaleError, match="another run"):
        ns.train(sp, f"imagefolder:{tmp_path / 'b'}", ratio=1.0, config=cfg, out_dir=tmp_path / "ra", progress=False)
    # 2. NAME with a dot: checked, written and loaded under that name, never overwritten without --force
    r = run_cli("train", *SYNTH, "--ratio", "0.0625", "--epochs", "1", "--train-subset", "64", "--test-subset", "32",
                "--batch-size", "32", "--device", "cpu", "--out", str(tmp_path / "r"), "--quiet")
    assert r.returncode == 0, r.stderr
    assert run_cli("export", str(tmp_path / "r"), "--out", str(tmp_path / "m-0.25")).returncode == 0
    assert (tmp_path / "m-0.25.json").exists() and not (tmp_path / "m-0.json").exists()
    again = run_cli("export", str(tmp_path / "r"), "--out", str(tmp_path / "m-0.25"))
    assert again.returncode == 2 and "m-0.25.json" in again.stderr
    assert ns.load_model(tmp_path / "m-0.25")[1]["widths"] == ns.space("vgg11", "synthetic").uniform(0.0625)
    # 3. a PDF-only report: the page still shows its figures (as PNG)
    store = tmp_path / "s"
    assert run_cli("sweep", *SYNTH, "--methods", "uniform", "--ratios", "0.0625", "--seeds", "0", "--epochs", "1",
                   "--train-subset", "64", "--test-subset", "32", "--batch-size", "32", "--device", "cpu",
                   "--out", str(store), "--quiet").returncode == 0
    assert run_cli("report", str(store), "--format", "pdf").returncode == 0
    page = (store / "report" / "report.html").read_text()
    assert "data:image/png;base64" in page and "application/pdf" not in page
    assert (store / "report" / "acc_vs_params.pdf").exists()
    # 4. the Pruner: another configuration is refused before any training, step() needs gradients
    model = ns.space("vgg11", "synthetic").build(ns.space("vgg11", "synthetic").uniform(0.0625))
    spv = ns.space("vgg11", "synthetic")
    ns.Pruner(spv, model, tmp_path / "p", k=3)
    with pytest.raises(ns.NeuralscaleError, match="another configuration"):
        ns.Pruner(spv, model, tmp_path / "p", k=4)
    with pytest.raises(ns.NeuralscaleError, match="after loss.backward"):
        ns.Pruner(spv, model, tmp_path / "p", k=3).step()
    # 5. bad settings: one line each
    r = run_cli("train", *SYNTH, "--ratio", "0.0625", "--epochs", "1", "--train-subset", "32",
                env={"NEURALSCALE_CHECKPOINT_SECONDS": "abc"})
    assert r.returncode == 2 and "NEURALSCALE_CHECKPOINT_SECONDS" in r.stderr and len(r.stderr.splitlines()) == 1
    f = tmp_path / "e.toml"
    for table, hint in (('from = "d"\nepochs = 1\n', "epochs belongs in [sweep.train]"),
                        ("train_subset = 5\n", "train_subset belongs in [data]"),
                        # each run's seed is the sweep's: a recipe's seed would be replaced without a word
                        ("[sweep.train]\nseed = 3\n", "give seeds = [...] in [sweep]"),
                        ("[sweep.train]\nseeds = [0]\n", "seeds belongs in [sweep], not [sweep.train]")):
        f.write_text('[experiment]\nmodel = "vgg11"\ndataset = "synthetic"\n[sweep]\nratios = [0.0625]\n' + table)
        r = run_cli("experiment", str(f))
        assert r.returncode == 2 and hint in r.stderr, r.stderr
    f.write_text(f'[experiment]\nmodel = "vgg11"\ndataset = "synthetic"\n[sweep]\nratios = [0.0625]\nfrom = "{out}"\n')
    assert prepare(f).sweep.descent == str(out)
    with pytest.raises(ns.NeuralscaleError):
        laws.configuration(params=0)


def test_from_and_iteration_are_not_ignored_silently(descent):
    out, _ = descent
    r = run_cli("train", *SYNTH, "--ratio", "0.5", "--iteration", "1", "--epochs", "1")
    assert r.returncode == 2 and "apply to the methods of a descent" in r.stderr, r.stderr
    # scale accepts them with uniform, so that one command line serves a loop over methods, and says so
    r = run_cli("scale", *SYNTH, "--method", "uniform", "--params", "25%", "--from", str(out))
    assert r.returncode == 0 and "note: --method uniform scales the base model" in r.stderr, r.stderr
    plain = run_cli("scale", *SYNTH, "--method", "uniform", "--params", "25%")
    assert plain.stdout == r.stdout
    # info's latency settings without --latency: measured nothing, without a word (a reviewer's --device bogus)
    from neuralscale import cli
    import contextlib
    import io
    for flags, said in ((["--device", "bogus"], "note: --device is used only with --latency; nothing is measured"),
                        (["--device", "cuda", "--batch", "-5"], "note: --device and --batch are used only with")):
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            assert cli.main(["info", *SYNTH, "--ratio", "0.5", *flags]) == 0
        assert said in err.getvalue(), err.getvalue()


def test_scale_and_train_name_a_descents_iterations_as_a_sweep_does(descent, capsys):
    """--iteration first or last, as `sweep --iterations` takes them, was an invalid int for scale and train."""
    from neuralscale import cli
    out, _ = descent
    base = ["scale", *SYNTH, "--method", "neuralscale", "--from", str(out), "--params", "25%", "--json"]
    widths = {}
    for it in ("first", "1", "last", "2", None):
        assert cli.main(base + (["--iteration", it] if it else [])) == 0
        widths[it] = json.loads(capsys.readouterr().out)["widths"]
    assert widths["first"] == widths["1"] and widths["2"] == widths["last"] == widths[None]
    for bad in ("0", "x", "-1"):
        assert cli.main([*base, "--iteration", bad]) == 2
        assert "a descent iteration is first, last or a number from 1" in capsys.readouterr().err
    # beside the widths, how far to trust the law that gave them (a new user found poor laws used without a word)
    assert cli.main([a for a in base if a != "--json"] + ["--iteration", "first"]) == 0
    from neuralscale.descent import DescentDir
    assert f"law: {DescentDir(out).iteration(1).law.quality()}" in capsys.readouterr().out


def test_a_run_exports_with_its_data_gone(tmp_path):
    from helpers import write_imagefolder
    write_imagefolder(tmp_path / "flowers", classes=3, per_class=6, size=32)
    r = run_cli("train", "--model", "vgg11", "--dataset", f"imagefolder:{tmp_path / 'flowers'}", "--ratio", "0.0625",
                "--epochs", "1", "--batch-size", "8", "--device", "cpu", "--out", str(tmp_path / "run"), "--quiet")
    assert r.returncode == 0, r.stderr
    shutil.rmtree(tmp_path / "flowers")
    r = run_cli("export", str(tmp_path / "run"), "--out", str(tmp_path / "m"), "--json")
    assert r.returncode == 0, r.stderr
    model, meta = ns.load_model(tmp_path / "m.json")
    assert meta["num_classes"] == 3 and model(torch.randn(2, 3, 32, 32)).shape == (2, 3)


# --- a warm start: a scaled network that begins from a trained one --------------------------------------------
def test_a_warm_start_keeps_the_trained_networks_strongest_channels(tmp_path):
    from neuralscale.baselines import trained_network, warm_start
    from neuralscale.runs import RunSpec
    common = ["--model", "vgg11", "--dataset", "synthetic", "--epochs", "1", "--train-subset", "256",
              "--test-subset", "64", "--device", "cpu", "--quiet"]
    assert run_cli("train", *common, "--ratio", "0.125", "--out", str(tmp_path / "base")).returncode == 0
    sp = ns.space("vgg11", "synthetic")
    trained, record = trained_network(sp, tmp_path / "base")
    trained.eval()
    x = torch.randn(4, *sp.info.input_shape)
    # at the trained widths a warm start is the trained network itself
    same = warm_start(sp, trained, record["widths"]).eval()
    assert torch.equal(same(x), trained(x))
    # narrower: each layer keeps its channels with the largest L1 filter norms, in their order
    widths = [max(1, w // 2) for w in record["widths"]]
    small = warm_start(sp, trained, widths)
    conv = lambda m: [mod for mod in m.modules() if isinstance(mod, torch.nn.Conv2d)]  # noqa: E731
    w0 = conv(trained)[0].weight
    kept = torch.sort(torch.topk(w0.abs().sum(dim=(1, 2, 3)), widths[0]).indices).values
    assert torch.equal(conv(small)[0].weight, w0[kept])
    assert torch.equal(conv(small)[1].weight, conv(trained)[1].weight[
        torch.sort(torch.topk(conv(trained)[1].weight.abs().sum(dim=(1, 2, 3)), widths[1]).indices).values][:, kept])
    # the two share no tensor: training the warm start leaves the trained network as it was (the classifier's
    # bias and the batch norms' counters, which no pruned channel slices, were once the trained network's own)
    before = {k: v.clone() for k, v in trained.state_dict().items()}
    mine = {v.untyped_storage().data_ptr() for v in trained.state_dict().values()}
    for net in (same, small):
        assert not [k for k, v in net.state_dict().items() if v.untyped_storage().data_ptr() in mine]
        with torch.no_grad():
            for v in net.state_dict().values():
                v.add_(1)
    assert all(torch.equal(v, before[k]) for k, v in trained.state_dict().items())
    # through the CLI: the record says where it started, and its id differs from the same run from scratch
    args = ["train", *common, "--widths", ",".join(map(str, widths))]
    warm = run_cli(*args, "--init-from", str(tmp_path / "base"), "--out", str(tmp_path / "warm"), "--json")
    cold = run_cli(*args, "--out", str(tmp_path / "cold"), "--json")
    assert warm.returncode == 0 and cold.returncode == 0, warm.stderr + cold.stderr
    w, c = (json.loads((tmp_path / d / "record.json").read_text()) for d in ("warm", "cold"))
    assert w["init"]["from_id"] == record["id"] and w["init"]["from_widths"] == record["widths"]
    assert "init" not in c and w["id"] != c["id"]
    # the command says where it started, as the record does (a walkthrough: only record.json said it)
    assert json.loads(warm.stdout)["init"] == w["init"] and "init" not in json.loads(cold.stdout)
    said = run_cli(*args, "--init-from", str(tmp_path / "base"), "--out", str(tmp_path / "warm"))
    assert f", started from run {record['id']} ({w['init']['from']}): final test accuracy" in said.stdout, said.stdout
    # a run without a warm start keeps the id it had before warm starts existed (init is left out of it)
    assert "init" not in RunSpec(**{k: v for k, v in c["spec"].items() if k != "init"}).identity()
    # growing a layer, or a source that is not a finished run: one clear line
    for extra, needle in ((["--ratio", "0.25", "--init-from", str(tmp_path / "base")], "would grow from"),
                          (["--ratio", "0.0625", "--init-from", str(tmp_path / "none")], "not a finished run")):
        r = run_cli("train", *common, *extra, "--out", str(tmp_path / "x"))
        assert r.returncode == 2 and needle in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not (tmp_path / "x").exists()  # found before anything was written: --out stays free
    # data of another shape: one clear line, not a size mismatch deep in torch
    write_fashion(tmp_path / "fm", n_train=64, n_test=16)
    r = run_cli("train", "--model", "vgg11", "--dataset", "fashionmnist", "--data-dir", str(tmp_path / "fm"),
                "--ratio", "0.0625", "--epochs", "1", "--init-from", str(tmp_path / "base"), "--quiet")
    assert r.returncode == 2 and "does not fit this data" in r.stderr, r.stderr
    # a finished warm run is returned as it is, and an unfinished one resumes, with its source moved away
    shutil.move(tmp_path / "base", tmp_path / "moved")
    again = run_cli(*args, "--init-from", str(tmp_path / "base"), "--out", str(tmp_path / "warm"), "--json")
    assert again.returncode == 0 and json.loads(again.stdout)["widths"] == w["widths"], again.stderr


def test_info_on_a_descent_shows_each_laws_fit_quality(descent):
    out, laws = descent
    r = run_cli("info", *SYNTH, "--from", str(out))
    assert r.returncode == 0, r.stderr
    assert f"iteration 1: {laws[0].rows} rows, R^2" in r.stdout
    r = run_cli("info", *SYNTH, "--from", str(out), "--json")
    got = json.loads(r.stdout)["laws"]
    assert len(got) == len(laws) and got[0]["quality"] == laws[0].quality() and "holdout_error" in got[0]
    r = run_cli("info", "--model", "resnet18", "--dataset", "synthetic", "--from", str(out))
    assert r.returncode == 2 and "not resnet18" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("setup, progress, shown", [
    ("", True, True),                                           # a script that set nothing up: the CLI's lines
    ("", False, False),                                         # asked for none
    ("import logging; logging.basicConfig(level=logging.WARNING)", True, False),  # the program's own logging
])
def test_the_python_api_prints_progress_as_the_cli_does_unless_told_otherwise(setup, progress, shown):
    """In a real interpreter, as a user's script runs: the default logging of a process is the point."""
    code = (f"{setup}\nimport neuralscale as ns\n"
            "ns.train('vgg11', 'synthetic', ratio=0.0625, config=ns.TrainConfig(epochs=2, batch_size=32, "
            f"device='cpu'), subset={{'train': 160, 'test': 40}}, progress={progress})\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "PYTHONPATH": SRC})
    assert r.returncode == 0, r.stderr
    lines = [x for x in r.stderr.splitlines() if " epoch 2/2: loss " in x]
    assert bool(lines) == shown, r.stderr


def test_your_own_module_takes_its_input_shape_from_the_dataset(tmp_path):
    """`ns.space(model, "imagefolder:...")`: the folder's image size and class count, not a guessed 32x32."""
    write_imagefolder(tmp_path / "pets", classes=3, per_class=2, size=40)
    sp = ns.space(torchvision.models.resnet18(num_classes=3), f"imagefolder:{tmp_path / 'pets'}")
    assert (sp.info.resolution, sp.info.in_channels, sp.info.num_classes) == (40, 3, 3)
    assert sp.macs(sp.base_widths) > ns.space(torchvision.models.resnet18(num_classes=3),
                                              torch.randn(1, 3, 32, 32)).macs(sp.base_widths)  # 40x40 costs more
    with pytest.raises(ns.NeuralscaleError, match=r"your model gives 5 class scores, but imagefolder:.*pets has 3 "
                                                  r"classes; build it for 3 classes \(ResNet\(...\)\)$"):
        ns.space(torchvision.models.resnet18(num_classes=5), f"imagefolder:{tmp_path / 'pets'}")


def test_a_call_without_progress_after_one_with_it_prints_no_progress():
    """progress=False was ignored once an earlier call had printed progress (its handler stayed); each call now
    prints as it asks: nothing of the second, the third's again (a third adversarial pass)."""
    code = ("import neuralscale as ns\n"
            "cfg = ns.TrainConfig(epochs=2, batch_size=32, device='cpu')\n"
            "for ratio, progress in ((0.0625, True), (0.125, False), (0.25, True)):\n"
            "    ns.train('vgg11', 'synthetic', ratio=ratio, config=cfg, subset={'train': 160, 'test': 40},\n"
            "             progress=progress)\n")
    r = run_python(code)
    assert r.returncode == 0, r.stderr
    shown = [ratio for ratio in ("0.0625", "0.125", "0.25")
             if any(f"ratio {ratio}" in x and " epoch 2/2: loss " in x for x in r.stderr.splitlines())]
    assert shown == ["0.0625", "0.25"], r.stderr


def test_logging_set_up_after_a_first_api_call_prints_each_line_once():
    """A script that calls the API, then sets up logging (basicConfig), then calls it again: the second call's
    lines come once, through the program's handler, not also through the API's own. (Where a process's logging
    starts out is test_the_python_api_prints_progress_as_the_cli_does_unless_told_otherwise's point, in new
    interpreters.)"""
    code = ("import logging, neuralscale as ns\n"
            "cfg = ns.TrainConfig(epochs=2, batch_size=32, device='cpu')\n"
            "ns.train('vgg11', 'synthetic', ratio=0.0625, config=cfg, subset={'train': 160, 'test': 40})\n"
            "logging.basicConfig(level=logging.INFO, format='program: %(message)s')\n"
            "ns.train('vgg11', 'synthetic', ratio=0.125, config=cfg, subset={'train': 160, 'test': 40})\n")
    r = run_python(code)  # a process of its own whose logging nothing has set up (a fork of the tests' zygote)
    assert r.returncode == 0, r.stderr
    first = [x for x in r.stderr.splitlines() if "ratio 0.0625" in x and " epoch 2/2: loss " in x]
    second = [x for x in r.stderr.splitlines() if "ratio 0.125" in x and " epoch 2/2: loss " in x]
    assert len(first) == 1 and not first[0].startswith("program: "), r.stderr  # the API's own line
    assert len(second) == 1 and second[0].startswith("program: "), r.stderr  # once, the program's way


class _SmallNet(torch.nn.Module):
    """A convolution, its batch norm and a classifier: a network of one's own that a space takes."""

    def __init__(self):
        super().__init__()
        self.c, self.b, self.fc = torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.Linear(8, 10)

    def forward(self, x):
        return self.fc(torch.relu(self.b(self.c(x))).mean((2, 3)))


class _Gray(torch.nn.Module):
    """A network for grey images with a stem of three channels (the image spread over them), and a constant made on
    the CPU in its forward."""

    def __init__(self):
        super().__init__()
        self.c, self.b, self.fc = torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.Linear(8, 10)

    def forward(self, x):
        x = self.b(self.c(x.expand(-1, 3, -1, -1))) * torch.ones(1)
        return self.fc(x.mean((2, 3)))


@pytest.mark.parametrize("call, says", [
    (lambda: ns.space(1, 2), "model must be a name"),
    (lambda: ns.space("vgg11", 5), "dataset must be a name"),
    (lambda: ns.train(3, "synthetic"), "train: model must be"),
    (lambda: ns.train("vgg11", 7), "train: dataset must be"),
    (lambda: ns.train("vgg11", "synthetic", ratio=0.0625, config={"epochs": 1}), "TrainConfig.from_dict"),
    (lambda: ns.train("vgg11", "synthetic", ratio=0.0625, subset=[32, 8]), "subset must be a dict"),
    (lambda: ns.train("vgg11", "synthetic", ratio=0.0625, out_dir=123), "out_dir must be a path"),
    # a fourth pass (2026-12-07): pathlib's ValueError "embedded null byte"
    (lambda: ns.train("vgg11", "synthetic", ratio=0.0625, out_dir="/tmp/a\0b"), "out_dir '/tmp/a\\x00b' holds a NUL"),
    (lambda: ns.descend("vgg11", "synthetic", "/tmp/x\0y"), "descend: out_dir '/tmp/x\\x00y' holds a NUL character"),
    (lambda: ns.Pruner(ns.space("vgg11", "synthetic"), ns.space("vgg11", "synthetic").build([4] * 8), "/tmp/p\0"), "Pruner: out_dir '/tmp/p\\x00' holds a NUL"),
    (lambda: ns.descend("vgg11", "synthetic", "d", {"iterations": 1}), "DescentConfig.from_dict"),
    (lambda: ns.load_model(42), "load_model: path must be a path"),
    (lambda: ns.load_model(["m.json"]), "load_model: path must be a path"),
    (lambda: ns.load_model("m.json", space="vgg11"), "load_model: space must be a WidthSpace"),
    (lambda: ns.export_run(None, "m"), "export_run: run_dir must be a path"),
    (lambda: ns.export_run("run", 3.5), "export_run: path must be a path"),
    # found by an adversarial pass (2026-12-04): each was a TypeError, AttributeError or RuntimeError
    (lambda: ns.scale("vgg11", "uniform", "25%"), "scale: space must be a WidthSpace"),
    (lambda: ns.descend(ns.space("vgg11", "synthetic"), "synthetic", None), "descend: out_dir must be a path"),
    (lambda: ns.space(torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
                                          torch.nn.Conv2d(8, 8, 3)),
                      torch.zeros(1, 1, 8, 8)), "does not run on the example input of shape (1, 1, 8, 8)"),
    # a walkthrough (2026-12-07): your own module with a dataset of other classes or channels was refused in the
    # graph's words ("an output of 10 channels for 100 classes at node 'output' ... cannot be followed") or torch's
    (lambda: ns.space(torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.AdaptiveAvgPool2d(1),
                                          torch.nn.Flatten(), torch.nn.Linear(8, 10)), "cifar100"),
     "your model gives 10 class scores, but cifar100 has 100 classes; build it for 100 classes (Sequential(...))"),
    (lambda: ns.space(torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.AdaptiveAvgPool2d(1),
                                          torch.nn.Flatten(), torch.nn.Linear(8, 10)), "fashionmnist"),
     "your model's first convolution reads 3 channels, but fashionmnist's images have 1; build it for 1 input "
     "channel (Sequential(...))"),
    # ... but not where the forward stops on the meta device after it, for another reason (a review)
    (lambda: ns.space(_Gray(), "fashionmnist"), "_Gray makes a tensor on a fixed device in its forward"),
    (lambda: ns.space("vgg11", "synthetic").validate(5), "widths must be a list of 8 integers, not int"),
    (lambda: ns.space("vgg11", "synthetic").validate(None), "widths must be a list of 8 integers, not NoneType"),
    (lambda: ns.space("vgg11", "synthetic").validate("8,8,8,8,8,8,8,8"), "widths must be a list of 8 integers"),
    (lambda: ns.space("vgg11", "synthetic").validate([True] * 8), "width 1 (conv1) is not an integer: True"),
    # a third pass (2026-12-06): TypeErrors, an AttributeError after a warm-up's training, and a failed record
    # left after the whole training for a batch size the latency could not be measured at
    (lambda: ns.train("vgg11", "synthetic", method="neuralscale", params="25%", source="d", iteration="x"),
     "iteration must be a whole number, at least 1, got 'x'"),
    (lambda: ns.train("vgg11", "synthetic", method="neuralscale", params="25%", source="d", iteration=1.5),
     "iteration must be a whole number, at least 1, got 1.5"),
    (lambda: ns.train("vgg11", "synthetic", ratio=0.0625, latency_batches=None),
     "train: latency_batches must be a list of batch sizes (such as [1]), not None"),
    (lambda: ns.train("vgg11", "synthetic", ratio=0.0625, latency_batches="12"),
     "train: latency_batches must be a list of batch sizes (such as [1]), not '12'"),
    (lambda: ns.train("vgg11", "synthetic", ratio=0.0625, latency_batches=[0]),
     "latency_batches' batch size must be a whole number, at least 1, got 0"),
    (lambda: ns.train("vgg11", "synthetic", ratio=0.0625, latency_batches=["4"]), "got '4'"),
    (lambda: ns.descend("vgg11", "synthetic", "/proc/neuralscale-test/d", importance="taylor"),  # (never written)
     "importance must be an Importance (such as ns.TaylorFO()), not 'taylor'"),
    # left by that pass, fixed the next session: AttributeErrors from inside
    (lambda: ns.train("vgg11", "synthetic", ratio=0.0625, splits="x"), "train: splits must be a Splits"),
    (lambda: ns.descend("vgg11", "synthetic", "/proc/neuralscale-test/d", splits=5),
     "descend: splits must be a Splits (ImageData.split(), ns.load_splits), not int"),
    # an adversarial pass of the fifty-second session: TypeErrors and an AttributeError from `describe`
    (lambda: describe(ns.space("vgg11", "synthetic"), [8] * 8, latency_batch="2"),
     "latency_batch (--batch) must be a whole number, at least 1, got '2'"),
    (lambda: describe(ns.space("vgg11", "synthetic"), [8] * 8, latency_batch=2.5), "at least 1, got 2.5"),
    (lambda: describe("vgg11", [8] * 8), "describe: space must be a WidthSpace (ns.space(model, dataset)), not str"),
    # left by that pass, fixed the forty-ninth session: an AttributeError, a name silently ignored, and a descent's
    # config written (and its data read) before a latency objective's measure failed
    (lambda: ns.space(torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
                                          torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 2)),
                      torch.zeros(1, 3, 8, 8), name=5), "name must be a non-empty str, not 5"),
    (lambda: ns.space("vgg11", "synthetic", name="mine"), "name names a space of your own nn.Module"),
    # a space of one's own named as a model neuralscale makes: its runs said vgg11, their export blamed the widths
    # (the fifty-second session's adversarial pass); a convcut flag it cannot have was ignored
    (lambda: ns.space(_SmallNet(), "synthetic", name="vgg11"), "name 'vgg11' is how neuralscale names a model it "
     "makes itself (a family, or scheme:name): records would take your network for that one; give another name"),
    (lambda: ns.space(_SmallNet(), "synthetic", name="ResNet18-convcut"), "name 'ResNet18-convcut' is how"),
    (lambda: ns.space(_SmallNet(), "synthetic", name="file:x.py:Net"), "name 'file:x.py:Net' is how"),
    (lambda: ns.space(_SmallNet(), "synthetic", name="torchvision:resnet18"), "name 'torchvision:resnet18' is how"),
    (lambda: ns.space(_SmallNet(), "synthetic", convcut=True), "convcut applies to the paper's resnet18 and "
     "mobilenetv2 only, not a network of your own"),
    (lambda: ns.train("vgg11", "synthetic", ratio=0.0625, force="no"), "train: force must be True or False, not 'no'"),
    (lambda: ns.descend("vgg11", "synthetic", "/proc/neuralscale-test/d", progress="no"),
     "descend: progress must be True or False, not 'no'"),
    (lambda: ns.export_run("/proc/neuralscale-test/r", "/proc/neuralscale-test/x", onnx=1),
     "export_run: onnx must be True or False, not 1"),
    (lambda: ns.scale(ns.space("vgg11", "synthetic"), "uniform", macs="50%", convert="no"),
     "scale: convert must be True or False, not 'no'"),
    (lambda: ns.space("resnet18", "cifar10", convcut="no"), "space: convcut must be True or False, not 'no'"),
    (lambda: ns.load_model("/proc/neuralscale-test/x.json", pixels="no"), "load_model: pixels must be True or False"),
    (lambda: load_splits("synthetic", ns.TrainConfig(), subset={"train": 64}).subset("5", 10),
     "a train subset must be a whole number, at least 1, got '5'"),
    (lambda: load_splits("synthetic", ns.TrainConfig(), subset={"train": 64}).subset(0), "got 0"),
    (lambda: load_splits("synthetic", ns.TrainConfig(), subset={"train": 64}).subset(8, 5.5), "a test subset"),
    (lambda: ns.descend("vgg11", "synthetic", "/proc/neuralscale-test/d", measure="x"),
     "measure must be a function timing a layer"),
])
def test_the_python_api_misused_says_so_as_the_cli_would(call, says):
    """Arguments of the wrong type are one NeuralscaleError saying which and what it takes (issue 32), not a
    TypeError or AttributeError from deep inside."""
    with pytest.raises(ns.NeuralscaleError, match=re.escape(says)):
        call()


@pytest.mark.parametrize("call, says", [
    (lambda: resolve_widths(ns.space("vgg11", "synthetic"), [8] * 8, 0.5), "give either widths or a ratio, not both"),
    (lambda: train_config("cifar10", preset="fast"), "unknown training preset 'fast'; the one preset is paper"),
    (lambda: fit_trajectory("t.csv", ns.space("vgg11", "synthetic"), trajectory_start="first"),
     "trajectory_start is all-lost or per-layer, got 'first'"),
    (lambda: fit_trajectory("t.csv", ns.space("vgg11", "synthetic"), out="./t.csv"), "is the trajectory being fitted"),
    (lambda: fit_trajectory("t.csv", ns.space("vgg11", "synthetic"), tau="exct"), "tau is auto, exact or original"),
    (lambda: fit_trajectory("t.csv", "vgg11"), "fit_trajectory: space must be a WidthSpace"),
    (lambda: fit_trajectory(None, ns.space("vgg11", "synthetic")), "fit_trajectory: trajectory must be a path"),
    (lambda: fit_trajectory("t.csv", ns.space("vgg11", "synthetic"), out=5), "fit_trajectory: out must be a path"),
    (lambda: ns.train("vgg11", "synthetic", widths=[8] * 8, params=1000), "give one of widths, ratio, params or macs"),
    (lambda: ns.train("vgg11", "synthetic", ratio=0.5, macs="50%"), "give one of widths, ratio, params or macs"),
    (lambda: ns.train("vgg11", "synthetic", ratio=0.5, method="uniform", iteration=1), "--from and --iteration apply"),
    (lambda: ns.train("vgg11", "synthetic", widths=[8] * 8, method="uniform"), "--widths are explicit"),
    (lambda: ns.train(ns.space("vgg11", "cifar100"), "synthetic", ratio=0.0625, subset={"train": 16, "test": 8}),
     "vgg11 takes 3x32x32 inputs and 100 classes, but synthetic has 3x32x32 images and 10 classes"),
])
def test_the_apis_own_checks_refuse_before_any_work(call, says):
    """A mutation audit: each of these checks of the Python API (which the CLI's own parser mostly makes before
    it) could be dropped with every test passing."""
    with pytest.raises(ns.NeuralscaleError, match=re.escape(says)):
        call()


def test_the_api_resolves_widths_a_preset_and_the_split_seed_it_is_given():
    sp = ns.space("vgg11", "synthetic")
    assert resolve_widths(sp) == list(sp.base_widths) and resolve_widths(sp, ratio=0.5) == sp.uniform(0.5)
    assert train_config("cifar10", epochs=3) == ns.TrainConfig(epochs=3)
    assert train_config("cifar10", preset="paper", epochs=3) == ns.paper_config("cifar10", epochs=3)
    vals = [load_splits("synthetic", ns.TrainConfig(val_fraction=0.25, split_seed=s), subset={"train": 64}).val[0]
            for s in (0, 1, 2)]
    assert len(vals[0]) >= 1 and not all(torch.equal(vals[0], v) for v in vals[1:])  # the seed decides the split
    info = describe(sp, sp.uniform(0.0625), latency_batch=3)  # timed at batch 1 and the batch asked for
    assert sorted(info["latency"]["batches"]) == ["1", "3"] and info["widths"] == sp.uniform(0.0625)


def test_what_train_trains_explicit_widths_or_a_ratio_has_its_budget():
    """What `train` would train, before training (a mutation audit: an explicit configuration's budget, its
    parameters, could be dropped from the record with every test passing)."""
    from neuralscale.api import _configuration
    from neuralscale.budget import Budget
    sp = ns.space("vgg11", "synthetic")
    explicit = _configuration(sp, [8] * 8, None, None, None, None, None, None, False)
    assert explicit == {"widths": [8] * 8, "method": "explicit", "label": "explicit",
                        "budget": Budget("params", sp.params([8] * 8))}
    uniform = _configuration(sp, None, 0.25, None, None, None, None, None, False)
    assert uniform == {"widths": sp.uniform(0.25), "method": "uniform", "label": "uniform",
                       "budget": Budget("params", sp.params(sp.uniform(0.25)), ratio=0.25)}
    from neuralscale.api import describe_run
    record = {"id": "x", "status": "finished", "model": "vgg11", "dataset": "synthetic", "widths": [4] * 8, "seed": 3,
              "method": "uniform", "label": "uniform", "budget": {}, "summary": {}}
    assert describe_run(record) == {**sp.describe([4] * 8), **{k: record[k] for k in
                                    ("id", "status", "method", "label", "budget", "seed", "summary")},
                                    "extrapolated": False}  # (a record says it where true)


def test_any_path_like_is_a_path_to_the_python_api(tmp_path):
    """os.PathLike objects (pytest's py.path, a library's own path types) are paths, as Path is: the type check
    refuses what is not a path, and lets these through to the file's own checks."""
    class Where:  # a path type of someone else's
        def __init__(self, p):
            self.p = str(p)

        def __fspath__(self):
            return self.p
    for call in (lambda: ns.load_model(Where(tmp_path / "none.json")),
                 lambda: ns.export_run(Where(tmp_path / "no-run"), Where(tmp_path / "m"))):
        with pytest.raises(ns.NeuralscaleError) as e:
            call()
        said = str(e.value)
        assert "must be a path" not in said and ("none.json" in said or "no-run" in said), said


def test_fit_gives_the_law_its_descent_fitted_on_the_same_trajectory(tmp_path, descent, capsys):
    """`fit iteration_02.csv` fitted every row from the first (all-lost), where the descent (per-layer start)
    fitted each layer from its own first loss: another law from the same file, without a word. It now follows
    the descent that wrote the file; --trajectory-start overrides; per-layer needs the descent's start widths."""
    from neuralscale import cli
    from neuralscale.descent import DescentDir
    out, _ = descent
    d = DescentDir(out)
    assert d.config()["descent"]["trajectory_start"] == "per-layer"
    args = ["fit", "--model", "vgg11", "--dataset", "synthetic", "--json"]
    for number in (1, 2):
        capsys.readouterr()
        assert cli.main([*args, str(d.trajectory_path(number))]) == 0
        law = json.loads(capsys.readouterr().out)
        recorded = d.iteration(number).law
        assert law["alpha"] == pytest.approx(recorded.alpha, rel=1e-9) and law["beta"] == pytest.approx(
            recorded.beta, rel=1e-9), number
    assert cli.main([*args, str(d.trajectory_path(2)), "--trajectory-start", "all-lost"]) == 0
    assert json.loads(capsys.readouterr().out)["beta"] != pytest.approx(recorded.beta, rel=1e-6)
    copied = tmp_path / "iteration_02.csv"  # outside its descent: its start widths are not known
    shutil.copy(d.trajectory_path(2), copied)
    assert cli.main([*args, str(copied)]) == 0  # all-lost, as before
    assert cli.main([*args, str(copied), "--trajectory-start", "per-layer"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "a per-layer trajectory start needs the widths pruning started from" in err[0]


def test_a_validation_split_says_its_size_or_why_there_is_none(tmp_path, capsys):
    """`train` on a few images said "no validation split (--val-fraction 0)" where the default 0.1 was asked
    for and rounded to no image per class, and chose its best epoch on 3 images without saying so."""
    from neuralscale import cli
    from helpers import write_imagefolder
    write_imagefolder(tmp_path / "few", classes=3, per_class=2, size=32)  # 10% of 2 a class: none
    assert cli.main(["train", "--model", "vgg11", "--dataset", f"imagefolder:{tmp_path / 'few'}", "--ratio",
                     "0.0625", "--epochs", "1", "--quiet", "--out", str(tmp_path / "a")]) == 0
    assert "no validation split (0.1 of 6 training images is none per class)" in capsys.readouterr().out
    args = ["train", *SYNTH, "--ratio", "0.0625", "--epochs", "1", "--device", "cpu", "--quiet"]
    assert cli.main([*args, "--train-subset", "40", "--out", str(tmp_path / "b")]) == 0
    val = json.loads((tmp_path / "b" / "record.json").read_text())["data"]["val"]
    assert 0 < val < 40 and f"(on {val} validation images)" in capsys.readouterr().out
    assert cli.main([*args, "--train-subset", "40", "--val-fraction", "0", "--out", str(tmp_path / "c")]) == 0
    assert "no validation split (--val-fraction 0)" in capsys.readouterr().out


def test_an_export_says_its_weights_are_the_final_epochs(tmp_path, capsys):
    """A new user took the exported model for the one selected on validation: its weights are the last epoch's
    (the run keeps no other). The export's line and its JSON say which epoch they are, and its test accuracy."""
    from neuralscale import cli
    run = tmp_path / "run"
    assert cli.main(["train", *SYNTH, "--ratio", "0.0625", "--epochs", "3", "--train-subset", "64", "--device", "cpu",
                     "--quiet", "--out", str(run)]) == 0
    s = json.loads((run / "record.json").read_text())["summary"]
    capsys.readouterr()
    assert cli.main(["export", str(run), "--out", str(tmp_path / "m")]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("weights:"))
    assert f"(the final epoch's, 3: test accuracy {s['final_test_acc']:.2f}%" in line
    assert (f"the best-validation epoch, {s['best_val_epoch']}, is in the record" in line) == (s["best_val_epoch"] != 3)
    meta = json.loads((tmp_path / "m.json").read_text())
    assert meta["weights_epoch"] == 3 and meta["final_test_acc"] == s["final_test_acc"]


def test_train_force_replaces_another_run_in_its_folder(tmp_path, capsys):
    """The README says nothing finished is overwritten without --force; with it, train refused all the same."""
    from neuralscale import cli
    args = ["train", *SYNTH, "--epochs", "1", "--train-subset", "40", "--device", "cpu", "--quiet", "--out",
            str(tmp_path / "r")]
    assert cli.main([*args, "--ratio", "0.0625"]) == 0
    first = json.loads((tmp_path / "r" / "record.json").read_text())["id"]
    assert cli.main([*args, "--ratio", "0.125"]) == 2
    assert f"holds another run ({first}); use another directory, or --force" in capsys.readouterr().err
    assert json.loads((tmp_path / "r" / "record.json").read_text())["id"] == first  # refused: kept
    # a run started from the one it would replace: refused, the run kept (a review: --force wiped it first)
    assert cli.main([*args, "--ratio", "0.03125", "--init-from", str(tmp_path / "r"), "--force"]) == 2
    assert "--init-from and --out are both" in capsys.readouterr().err
    assert json.loads((tmp_path / "r" / "record.json").read_text())["status"] == "finished"
    assert (tmp_path / "r" / "checkpoint.pt").exists()
    assert cli.main([*args, "--ratio", "0.125", "--force"]) == 0
    record = json.loads((tmp_path / "r" / "record.json").read_text())
    assert record["id"] != first and record["status"] == "finished" and record["budget"]["ratio"] == 0.125
    # a rerun of the same run with --force finds it finished: nothing is cleared or trained again (a mutation
    # audit: --force clearing the folder whatever run it held passed the tests)
    kept = (tmp_path / "r" / "record.json").read_bytes()
    assert cli.main([*args, "--ratio", "0.125", "--force"]) == 0
    assert (tmp_path / "r" / "record.json").read_bytes() == kept


def test_train_measures_the_latency_at_the_batches_it_is_asked_for():
    """api.train(latency_batches=...) times the trained network at those batches and no other (a mutation audit:
    the batches dropped on their way to the run passed the tests)."""
    config = ns.TrainConfig(epochs=1, batch_size=16, device="cpu")
    timed = ns.train("vgg11", "synthetic", ratio=0.0625, config=config, subset={"train": 32, "test": 16},
                     latency_batches=[2, 3], progress=False)
    assert sorted(timed["latency"]["batches"]) == ["2", "3"]
    plain = ns.train("vgg11", "synthetic", ratio=0.0625, config=config, subset={"train": 32, "test": 16},
                     progress=False)
    assert "latency" not in plain


def test_load_splits_reads_the_tinyimagenet_split_it_is_given(tmp_path):
    """load_splits(tinyimagenet_split="original") splits the official validation images in half, as the original
    did; the default keeps them all for the test set (a mutation audit: the argument dropped passed the tests)."""
    from helpers import write_tinyimagenet
    write_tinyimagenet(tmp_path, classes=3, train_per_class=4, val_per_class=4)
    config = ns.TrainConfig(val_fraction=0.1)
    original = load_splits("tinyimagenet", config, data_dir=str(tmp_path), tinyimagenet_split="original")
    official = load_splits("tinyimagenet", config, data_dir=str(tmp_path))
    assert len(original.test[1]) == 6 and len(original.val[1]) == 6  # half of each class's 4 each
    assert len(official.test[1]) == 12


def test_fit_counts_tau_as_it_is_told_on_the_originals_files(tmp_path):
    """A header-less trajectory (the original's format) is fitted with the original's parameter formula unless
    tau says exact; ResNet18's formula forgets a strided block's projection where its input is as wide as its
    output, so the two laws differ on such rows (a mutation audit: tau ignored for such files passed the tests,
    which fitted VGG11 or files with a header)."""
    sp = ns.space("resnet18", "cifar100")
    rows = [sp.uniform(1.0 - 0.05 * i) for i in range(10)]
    for r in rows:
        r[4] = r[6]  # block2's output as wide as block3's
    assert all(sp.tau(r, "original") < sp.params(r) for r in rows)
    path = tmp_path / "iteration_01.csv"
    path.write_text("".join(",".join(map(str, r)) + "\n" for r in rows))
    auto, exact, original = (fit_trajectory(path, sp, tau=t) for t in ("auto", "exact", "original"))
    assert auto.alpha == original.alpha and auto.beta == original.beta and "original formula" in auto.note
    assert exact.note == "" and min(a / b for a, b in zip(original.alpha, exact.alpha)) > 1.0001
