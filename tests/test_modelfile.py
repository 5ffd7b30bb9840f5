"""A network of one's own from a Python file, by name (modelfile.py): `--model file:PATH.py:NAME` through every
command that takes a model, and the one-line refusals of files and names that do not make a network."""

from __future__ import annotations

import json
import runpy
import shutil
import sys

import pytest
import torch

import neuralscale as ns
from neuralscale import cli
from helpers import write_imagefolder

BLOCKS = '''
from torch import nn


def block(cin, cout):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())
'''

NETS = '''
import torch
from torch import nn

from blocks import block  # beside this file, as a script imports it


class Net(nn.Module):
    def __init__(self, num_classes=10, in_channels=3, width=16):
        super().__init__()
        self.features = nn.Sequential(block(in_channels, width), nn.MaxPool2d(2), block(width, 2 * width))
        self.fc = nn.Linear(2 * width, num_classes)

    def forward(self, x):
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(self.features(x), 1), 1))


def small(num_classes, in_chans):
    return Net(num_classes, in_chans, width=8)
'''


@pytest.fixture
def nets(tmp_path, monkeypatch):
    """nets.py and the blocks.py it imports, in the folder the commands run in."""
    (tmp_path / "blocks.py").write_text(BLOCKS)
    (tmp_path / "nets.py").write_text(NETS)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _their_own(nets, name: str, **kwargs) -> int:
    """The network's parameters as the file makes it, imported here without neuralscale."""
    import sys
    sys.path.insert(0, str(nets))
    try:
        made = runpy.run_path(str(nets / "nets.py"))[name](**kwargs)
    finally:
        sys.path.remove(str(nets))
        sys.modules.pop("blocks", None)
    return sum(p.numel() for p in made.parameters())


def test_a_network_in_a_file_is_analysed_trained_exported_and_loaded_by_its_name(nets, capsys):
    for name, kwargs, dataset in (("Net", dict(num_classes=10, in_channels=3), "synthetic"),
                                  ("small", dict(num_classes=10, in_chans=1), "fashionmnist")):
        assert cli.main(["info", "--model", f"file:nets.py:{name}", "--dataset", dataset, "--json"]) == 0
        info = json.loads(capsys.readouterr().out)
        assert info["params"] == _their_own(nets, name, **kwargs) and info["layers"] == ["features.0.0", "features.2.0"]
    tiny = ["--dataset", "synthetic", "--train-subset", "48", "--test-subset", "16", "--epochs", "1",
            "--batch-size", "16", "--device", "cpu", "--quiet"]
    assert cli.main(["train", "--model", "file:nets.py:Net", "--ratio", "0.5", *tiny, "--out", "run", "--json"]) == 0
    record = json.loads((nets / "run" / "record.json").read_text())
    assert record["model"] == f"file:{nets / 'nets.py'}:Net"  # recorded by the file's absolute path
    assert record["status"] == "finished" and record["spec"]["architecture"]
    assert record["widths"] == [8, 16]
    assert cli.main(["export", "run", "--out", "net"]) == 0
    model, meta = ns.load_model("net.json")  # its space rebuilt from the file, by the name the run recorded
    assert sum(p.numel() for p in model.parameters()) == record["params"] and meta["widths"] == [8, 16]
    capsys.readouterr()
    # edited: another network by the same name, not the one trained
    (nets / "nets.py").write_text(NETS.replace("nn.MaxPool2d(2)", "nn.AvgPool2d(2)"))
    assert cli.main(["train", "--model", "file:nets.py:Net", "--ratio", "0.5", *tiny, "--out", "run"]) == 2
    assert "the model's code or modules changed since" in capsys.readouterr().err
    with pytest.raises(ns.NeuralscaleError, match=r"^file:/.*/nets.py:Net is not the network this was trained as: its "
                                                  r"code or modules changed since \(architecture \w+ now, \w+ "
                                                  r"recorded\); put its code back as it was$"):
        ns.load_model("net.json")
    (nets / "nets.py").write_text(NETS.replace("features", "body"))  # other layers: not 'the space given'
    with pytest.raises(ns.NeuralscaleError, match=r"^file:/.*/nets.py:Net is not the network this was trained as: its "
                                                  r"layers differ now; put its code back as it was"):
        ns.load_model("net.json")
    (nets / "nets.py").write_text(NETS)  # as it was: the same run again, finished, not redone
    assert cli.main(["train", "--model", "file:nets.py:Net", "--ratio", "0.5", *tiny, "--out", "run"]) == 0
    assert json.loads((nets / "run" / "record.json").read_text()) == record


def test_a_sweeps_local_workers_make_the_network_from_the_file(nets, capsys):
    """Workers are other processes: each imports the file again, from the folder the command runs in."""
    args = ["sweep", "--model", "file:nets.py:small", "--dataset", "synthetic", "--train-subset", "32",
            "--test-subset", "16", "--epochs", "1", "--batch-size", "16", "--device", "cpu", "--methods", "uniform",
            "--ratios", "0.5,1", "--seeds", "0", "--workers", "2", "--quiet", "--out", "sweep"]
    assert cli.main(args) == 0, capsys.readouterr().err
    records = [json.loads(p.read_text()) for p in (nets / "sweep" / "runs").glob("*/record.json")]
    assert sorted(r["params"] for r in records) == sorted(ns.space("file:nets.py:small", "synthetic").params(w)
                                                          for w in ([4, 8], [8, 16]))
    assert all(r["status"] == "finished" and r["model"] == f"file:{nets / 'nets.py'}:small" for r in records)


@pytest.mark.parametrize("text, model, says", [
    (None, "file:nope.py:Net", "model file <d>/nope.py does not exist"),
    (None, "file:nets.py", "file:nets.py: name the class or function too, as file:PATH.py:NAME"),
    (None, "file:nets.py:Nett", "model file <d>/nets.py has no Nett (did you mean Net?); it defines Net, small"),
    ("import torch\ndef Net(:\n", "file:nets.py:Net", "model file <d>/nets.py, line 2: invalid syntax"),
    ("import no_such_module\n", "file:nets.py:Net", "model file <d>/nets.py does not import: ModuleNotFoundError: No "
                                                    "module named 'no_such_module'"),
    ("Net = 3\n", "file:nets.py:Net", "nets.py:Net is an int, not a class or function that makes the network"),
    ("def Net(num_classes, depth):\n    pass\n", "file:nets.py:Net",
     "nets.py:Net needs depth; neuralscale passes only num_classes and in_channels (or in_chans): give the others"),
    ("def Net(num_classes):\n    raise ValueError('no such depth')\n", "file:nets.py:Net",
     "nets.py:Net(num_classes=10) failed: ValueError: no such depth"),
    ("def Net():\n    return 3\n", "file:nets.py:Net", "nets.py:Net() returned an int, not an nn.Module"),
    # a review: 'name the class or function too' of a name given with a space; an argparse or sys.exit at the top
    # of the file took the command over (its usage, 'unrecognized arguments: info --model ...', exit 2 or 1)
    (None, "file:nets.py:Net ", "file:nets.py:Net : 'Net ' is not a Python name (file:PATH.py:NAME)"),
    ("import argparse\np = argparse.ArgumentParser()\np.add_argument('--data', required=True)\np.parse_args()\n",
     "file:nets.py:Net", "model file <d>/nets.py exits as it is imported (nets.py: error: the following arguments are "
                         'required: --data): put the code that runs it under `if __name__ == "__main__":`'),
    ("import sys\nsys.exit('no GPU here')\n", "file:nets.py:Net", "model file <d>/nets.py exits as it is imported (no "
                                                                  "GPU here): put the code"),
    ("import argparse\nargparse.ArgumentParser().parse_args()\nNet = 3\n", "file:nets.py:Net",
     "nets.py:Net is an int"),  # its own arguments only: none, not the command's
    (NETS.replace("def small(num_classes, in_chans):\n    return Net(num_classes, in_chans, width=8)",
                  "def small():\n    return Net(7, 3, width=8)"), "file:nets.py:small",
     "nets.py:small gives 7 class scores, but synthetic has 10 classes; give it a num_classes argument, or build "
     "it for 10"),
    (NETS.replace("Net(num_classes, in_chans, width=8)", "Net(num_classes, 3, width=8)"), "file:nets.py:small",
     "nets.py:small's first convolution reads 3 channels, but fashionmnist's images have 1"),
])
def test_a_file_that_does_not_make_the_network_is_one_line(nets, capsys, text, model, says):
    if text is not None:
        (nets / "nets.py").write_text(text)
    says = says.replace("<d>", str(nets))  # a relative path is read from where the command runs, and said absolute
    dataset = "fashionmnist" if "first convolution" in says else "synthetic"
    assert cli.main(["info", "--model", model, "--dataset", dataset]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("neuralscale: error: ") and says in err[0], err


def test_an_edited_file_is_read_again_in_the_same_process(nets):
    """Spaces are cached by name; a file's is keyed by its text too, so an edit made in the same clock tick (the
    same modification time) is not missed."""
    before = ns.space("file:nets.py:Net", "synthetic")
    assert ns.space("file:nets.py:Net", "synthetic") is before  # read once while the file stays as it is
    (nets / "nets.py").write_text(NETS.replace("width=16", "width=24"))
    after = ns.space("file:nets.py:Net", "synthetic")
    assert list(after.base_widths) == [24, 48] and after.architecture != before.architecture
    assert list(before.base_widths) == [16, 32]


def test_an_experiment_files_model_file_is_beside_it_whatever_folder_the_command_runs_in(tmp_path, monkeypatch):
    """`model = "file:nets.py:Net"` in an experiment file is read from the file's folder, as its other paths are, and
    recorded absolute: a walkthrough and a review found it read from where the command ran (another nets.py there
    was used, and a store made from one folder refused the same file named absolute from another)."""
    from neuralscale.experiment import prepare
    (tmp_path / "exp").mkdir()
    (tmp_path / "exp" / "blocks.py").write_text(BLOCKS)
    (tmp_path / "exp" / "nets.py").write_text(NETS)
    (tmp_path / "nets.py").write_text(NETS.replace("width=16", "width=12"))  # another one where the command runs
    (tmp_path / "blocks.py").write_text(BLOCKS)
    f = tmp_path / "exp" / "e.toml"
    f.write_text('[experiment]\nmodel = "file:nets.py:Net"\ndataset = "synthetic"\ndevice = "cpu"\n[sweep]\n'
                 'methods = ["uniform"]\nratios = [0.5]\nseeds = [0]\n')
    for here in (tmp_path, tmp_path / "exp"):
        monkeypatch.chdir(here)
        e = prepare(f)
        assert e.sweep.model == f"file:{tmp_path / 'exp' / 'nets.py'}:Net" and list(e.space.base_widths) == [16, 32]
    monkeypatch.chdir(tmp_path)
    assert list(ns.space("file:nets.py:Net", "synthetic").base_widths) == [12, 24]  # the command line's: here
    assert ns.space("file:./exp/../exp/nets.py:Net", "synthetic").name == e.sweep.model  # one name, however spelled


def test_the_modules_beside_a_file_are_its_own_and_taken_away_after(tmp_path, monkeypatch, capsys):
    """A review: another folder's nets.py importing its own blocks.py was built with the first folder's blocks (left
    in sys.modules), an edit of blocks.py was not noticed, a Python user's own module of that name was shadowed or
    replaced, and Python wrote __pycache__ beside the user's files."""
    import sys
    import types
    for name, kernel in (("a", 3), ("b", 5)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "blocks.py").write_text(BLOCKS.replace("3, padding=1", f"{kernel}, padding={kernel // 2}"))
        (tmp_path / name / "nets.py").write_text(NETS)
    theirs = types.ModuleType("blocks")  # the user's program's own module of that name
    monkeypatch.setitem(sys.modules, "blocks", theirs)
    monkeypatch.chdir(tmp_path)
    a, b = (ns.space(f"file:{name}/nets.py:Net", "synthetic") for name in ("a", "b"))
    assert b.params(b.base_widths) - a.params(a.base_widths) == (25 - 9) * (3 * 16 + 16 * 32)  # b's own 5x5 blocks
    assert sys.modules["blocks"] is theirs and not any((tmp_path / n / "__pycache__").exists() for n in "ab")
    (tmp_path / "a" / "blocks.py").write_text(BLOCKS.replace("bias=False", "bias=True"))  # nets.py as it was
    assert ns.space("file:a/nets.py:Net", "synthetic").params(a.base_widths) == a.params(a.base_widths) + 16 + 32


def test_what_a_file_prints_as_it_imports_is_not_the_commands_json(nets, capsys):
    (nets / "nets.py").write_text("print('loading my nets')\n" + NETS)
    assert cli.main(["info", "--model", "file:nets.py:Net", "--dataset", "synthetic", "--json"]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out)["layers"] == ["features.0.0", "features.2.0"] and "loading my nets" in out.err


def test_a_builder_taking_keyword_arguments_gets_the_class_count(nets, capsys):
    """torchvision's and timm's builders take num_classes among **kwargs: one re-exported by a file was refused as
    giving 1000 class scores (a review)."""
    (nets / "tv.py").write_text("from torchvision.models import resnet18\n")
    assert cli.main(["info", "--model", "file:tv.py:resnet18", "--dataset", "synthetic", "--json"]) == 0
    import torchvision
    assert json.loads(capsys.readouterr().out)["params"] == sum(
        p.numel() for p in torchvision.models.resnet18(num_classes=10).parameters())


def test_a_sweep_records_the_files_network_and_a_descent_of_it_as_it_was_is_refused_after_an_edit(nets):
    """A review: a sweep's runs recorded no architecture, so a sweep rerun after an edit that keeps the widths
    reused the earlier network's runs beside new ones in one report; and a descent of the network as it was gave
    its laws to the edited one without a word."""
    from helpers import TINY_DESCENT
    from neuralscale.descent import DescentDir
    from neuralscale.sweep import SweepConfig, plan
    cfg = SweepConfig.from_dict(dict(model="file:nets.py:Net", dataset="synthetic", methods=["uniform"],
                                     ratios=[0.5], seeds=[0], train=dict(device="cpu", epochs=1)))
    before = plan(cfg)
    sp = ns.space("file:nets.py:Net", "synthetic")
    assert [s.architecture for s in before] == [sp.architecture]
    DescentDir(nets / "d").claim(sp, ns.DescentConfig(**TINY_DESCENT), {})  # the configuration a descent records
    (nets / "nets.py").write_text(NETS.replace("adaptive_avg_pool2d", "adaptive_max_pool2d"))  # the same widths
    after = plan(cfg)
    assert after[0].widths == before[0].widths and after[0].id != before[0].id
    from neuralscale.sweep import run_sweep
    (nets / "nets.py").write_text(NETS)  # a store of the network as it was: the edited one is another recipe
    run_sweep(cfg, nets / "s", progress=False)
    (nets / "nets.py").write_text(NETS.replace("adaptive_avg_pool2d", "adaptive_max_pool2d"))
    with pytest.raises(ns.NeuralscaleError, match=r"s holds a sweep with another recipe \(architecture"):
        run_sweep(cfg, nets / "s", progress=False)  # (ran: two networks' runs in one store, which no report reads)
    with pytest.raises(ns.NeuralscaleError, match=r"d descended file:/.*/nets.py:Net as it was then: its code or "
                                                  r"modules changed since, or its data's classes or image size "
                                                  r"\(architecture \w+ now, \w+ recorded\)"):
        ns.scale(ns.space("file:nets.py:Net", "synthetic"), "neuralscale", "50%", source=nets / "d")


def test_a_descent_of_the_network_on_other_data_is_named_so_by_every_method(nets):
    """The descent used for the network on another dataset (other classes: another architecture digest) was blamed
    on the code (a walkthrough); morphnet, pruned and shape took another model's or dataset's widths of as many
    layers without a word. Each names the model and dataset its laws record; a space of one's own made from an
    example tensor ('custom', its descent's data named otherwise) is its descent's (a review)."""
    from helpers import TINY_DESCENT
    cfg = ns.DescentConfig(**{**TINY_DESCENT, "iterations": 1})
    ns.descend("file:nets.py:small", "synthetic", "d", cfg, subset={"train": 64}, progress=False)
    for method in ("neuralscale", "morphnet", "pruned", "shape"):
        with pytest.raises(ns.NeuralscaleError, match=r"^d holds the descent of a network fitted for "
                                                      r"file:/.*/nets.py:small on synthetic, not file:/.*/nets.py:small "
                                                      "on cifar100; descend this one, or give its descent$"):
            ns.scale(ns.space("file:nets.py:small", "cifar100"), method, "50%", source="d")
        assert ns.scale(ns.space("file:nets.py:small", "synthetic"), method, "50%", source="d")["widths"]
    sys.path.insert(0, str(nets))  # (for its `import blocks`)
    try:
        small = runpy.run_path(str(nets / "nets.py"))["small"]
    finally:
        sys.path.remove(str(nets))
    own = ns.space(small(10, 3), torch.zeros(1, 3, 32, 32))
    ns.descend(own, "synthetic", "own", cfg, subset={"train": 64}, progress=False)
    for method in ("neuralscale", "morphnet", "pruned", "shape"):
        assert ns.scale(own, method, "50%", source="own")["widths"]
    with pytest.raises(ns.NeuralscaleError, match=r"^d holds the descent of a network fitted for .* on synthetic, not "
                                                  r"module:Net on custom; a space made from an example tensor is "
                                                  "'custom'"):
        ns.scale(ns.space(small(10, 3), torch.zeros(1, 3, 32, 32)), "morphnet", "50%", source="d")


def test_a_report_from_any_folder_draws_the_files_network_and_says_why_not_where_it_is_gone(nets, capsys,
                                                                                            monkeypatch):
    """A walkthrough and a review: from another folder the report dropped the descent's figures without a word (the
    network, recorded by a relative file name, could not be made there). Recorded absolute, it is made from any
    folder; where the file is gone, the report says why its descent figures are left out."""
    from helpers import TINY_DESCENT
    ns.descend("file:nets.py:small", "synthetic", "d", ns.DescentConfig(**{**TINY_DESCENT, "iterations": 1}),
               subset={"train": 64}, progress=False)
    assert cli.main(["sweep", "--model", "file:nets.py:small", "--dataset", "synthetic", "--from", "d", "--methods",
                     "uniform,neuralscale", "--ratios", "0.5", "--seeds", "0", "--epochs", "1", "--train-subset",
                     "32", "--test-subset", "16", "--device", "cpu", "--quiet", "--out", "s"]) == 0
    (nets / "elsewhere").mkdir()
    monkeypatch.chdir(nets / "elsewhere")
    assert cli.main(["report", "../s", "--out", "there"]) == 0
    assert any(nets.glob("elsewhere/there/*growth*"))
    assert "cannot be made here" not in (nets / "elsewhere" / "there" / "report.md").read_text()
    (nets / "nets.py").rename(nets / "moved.py")
    assert cli.main(["report", "../s", "--out", "gone"]) == 0
    text = " ".join((nets / "elsewhere" / "gone" / "report.md").read_text().split())
    assert not any(nets.glob("elsewhere/gone/*growth*"))
    assert f"The runs' network cannot be made here (model file {nets / 'nets.py'} does not exist; the record names " \
           "it where it lay when the run was made: name the file where it lies now (--model file:PATH.py:NAME; " \
           "model= in Python)); the descent's figures are left out." in text, text


def test_a_network_whose_first_registered_convolution_is_not_its_first_is_taken(nets, capsys):
    """A review: the image-channel check read the first convolution registered, not the first the forward runs: a
    head registered before the features was refused as reading 32 channels."""
    (nets / "order.py").write_text("""
from torch import nn


class Net(nn.Module):
    def __init__(self, num_classes=10, in_channels=3):
        super().__init__()
        self.head = nn.Conv2d(32, num_classes, 1)
        self.features = nn.Sequential(nn.Conv2d(in_channels, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32),
                                      nn.ReLU())

    def forward(self, x):
        return self.head(self.features(x)).mean((2, 3))
""")
    assert cli.main(["info", "--model", "file:order.py:Net", "--dataset", "synthetic", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["layers"] == ["features.0"]


def test_info_names_the_layers_each_width_also_sets(nets, capsys):
    """A walkthrough: a residual's branch and a shortcut's projection take their widths from the layer they are
    tied to, and nothing said so (`info` listed the stem's width alone)."""
    (nets / "res.py").write_text(NETS.replace("class Net(", "class Plain(") + '''

class Net(nn.Module):
    def __init__(self, num_classes=10, in_channels=3):
        super().__init__()
        self.stem = block(in_channels, 16)
        self.body = nn.Sequential(block(16, 16), nn.Conv2d(16, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16))
        self.down = nn.Sequential(nn.Conv2d(16, 32, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(32))
        self.short = nn.Sequential(nn.Conv2d(16, 32, 1, stride=2, bias=False), nn.BatchNorm2d(32))
        self.fc = nn.Linear(32, num_classes)

    def forward(self, x):
        x = self.stem(x)
        x = torch.relu(x + self.body(x))
        x = torch.relu(self.down(x) + self.short(x))
        return self.fc(x.mean((2, 3)))
''')
    assert cli.main(["info", "--model", "file:res.py:Net", "--dataset", "synthetic", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["layers"] == ["stem.0", "body.0.0", "down.0"]
    assert info["tied"] == {"stem.0": ["body.1"], "down.0": ["short.0"]}
    assert cli.main(["info", "--model", "file:res.py:Net", "--dataset", "synthetic"]) == 0
    out = capsys.readouterr().out
    assert "(base 16)  also sets body.1\n" in out and "(base 32)  also sets short.0\n" in out
    assert cli.main(["info", "--model", "vgg11", "--dataset", "synthetic", "--json"]) == 0
    assert "tied" not in json.loads(capsys.readouterr().out)  # (nothing tied: the key as before)


def test_a_files_own_folders_and_what_it_does_to_the_path_are_put_back(tmp_path, monkeypatch):
    """A review: a folder of helper modules without __init__.py beside the file (a namespace package) stayed in
    sys.modules, so another folder's file got the first one's helpers; the common sys.path.append(dirname) left the
    folder on the path; a file that replaced sys.path made the clean-up fail half way (sys.argv and the hidden
    modules not put back)."""
    import sys
    for name, widths in (("a", "8, 1"), ("b", "32, 1), nn.ReLU(), nn.Conv2d(32, 8, 1")):
        (tmp_path / name / "layers").mkdir(parents=True)
        (tmp_path / name / "layers" / "conv.py").write_text(
            "from torch import nn\n\ndef block(cin):\n    return nn.Sequential(nn.Conv2d(cin, " + widths + "))\n")
        (tmp_path / name / "nets.py").write_text(NETS.replace("from blocks import block", "import os, sys\n"
                                                 "sys.path.append(os.path.dirname(__file__))\n"
                                                 "from layers.conv import block as conv"))
        (tmp_path / name / "nets.py").write_text((tmp_path / name / "nets.py").read_text() + """

class Tiny(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.b = conv(3)
        self.fc = nn.Linear(8, num_classes)

    def forward(self, x):
        return self.fc(self.b(x).mean((2, 3)))
""")
    (tmp_path / "a" / "env" / "lib").mkdir(parents=True)  # a virtual environment beside the file: not its own
    (tmp_path / "a" / "env" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (tmp_path / "a" / "env" / "lib" / "big.py").write_text("x = 1\n")
    from neuralscale.modelfile import _own_modules, stamp
    assert _own_modules(tmp_path / "a") == {"nets": tmp_path / "a" / "nets.py", "layers": tmp_path / "a" / "layers"}
    before = stamp(f"{tmp_path / 'a' / 'nets.py'}:Tiny")  # the package's files read, the environment's not
    (tmp_path / "a" / "env" / "lib" / "big.py").write_text("x = 2\n")
    assert stamp(f"{tmp_path / 'a' / 'nets.py'}:Tiny") == before
    conv = (tmp_path / "a" / "layers" / "conv.py").read_text()
    (tmp_path / "a" / "layers" / "conv.py").write_text(conv + "\n# edited\n")
    assert stamp(f"{tmp_path / 'a' / 'nets.py'}:Tiny") != before
    (tmp_path / "a" / "layers" / "conv.py").write_text(conv)
    monkeypatch.setattr(sys, "argv", ["my-program"])
    path, argv, bytecode = list(sys.path), sys.argv, sys.dont_write_bytecode
    a, b = (ns.space(f"file:{tmp_path / n / 'nets.py'}:Tiny", "synthetic") for n in ("a", "b"))
    assert (list(a.layer_names), list(b.layer_names)) == (["b.0"], ["b.0", "b.2"])  # each its own layers/conv.py
    assert sys.path == path and sys.argv is argv and "layers" not in sys.modules and "layers.conv" not in sys.modules
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "nets.py").write_text("import sys\nsys.path = [p for p in sys.path]\n" + NETS.replace(
        "from blocks import block", "from torch.nn import Identity as block"))
    monkeypatch.setitem(sys.modules, "nets", object())  # a module of the user's own, by the file's name
    with pytest.raises(ns.NeuralscaleError):
        ns.space(f"file:{tmp_path / 'c' / 'nets.py'}:Net", "synthetic")
    assert sys.argv is argv and str(tmp_path / "c") not in sys.path and sys.dont_write_bytecode == bytecode
    assert isinstance(sys.modules["nets"], object) and not hasattr(sys.modules["nets"], "Net")


def test_a_space_made_before_an_edit_keeps_building_the_network_it_analysed(nets):
    """A review: the file's module was named by its path alone, so a re-import after an edit replaced it, and a
    space made before built the edited network (unpickled into the new class) while recording the old digest."""
    before = ns.space("file:nets.py:Net", "synthetic")
    (nets / "nets.py").write_text(NETS.replace("adaptive_avg_pool2d", "adaptive_max_pool2d"))
    after = ns.space("file:nets.py:Net", "synthetic")
    old, new = before.build(list(before.base_widths)), after.build(list(after.base_widths))
    assert type(old) is not type(new) and before.architecture != after.architecture
    x = torch.randn(2, 3, 32, 32)
    new.load_state_dict(old.state_dict())
    assert not torch.allclose(old.eval()(x), new.eval()(x))  # average against maximum pooling


def test_a_depthwise_convolution_is_listed_with_the_layer_whose_width_it_follows(nets, capsys):
    """A review: `also sets` left out depthwise convolutions, whose outputs are their inputs' channels."""
    (nets / "dw.py").write_text('''
from torch import nn


def Net(num_classes=10, in_channels=3):
    return nn.Sequential(nn.Conv2d(in_channels, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
                         nn.Conv2d(16, 16, 3, padding=1, groups=16, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
                         nn.Conv2d(16, 32, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, num_classes))
''')
    assert cli.main(["info", "--model", "file:dw.py:Net", "--dataset", "synthetic", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["layers"] == ["0", "6"] and info["tied"] == {"0": ["3"]}


def test_an_experiment_files_model_file_where_the_command_runs_but_not_beside_the_file_says_so(tmp_path,
                                                                                              monkeypatch):
    """Paths in an experiment file are read from its folder; a model file only where the command runs (as it was
    read before) is said, with both ways on."""
    from neuralscale.experiment import prepare
    (tmp_path / "exp").mkdir()
    (tmp_path / "blocks.py").write_text(BLOCKS)
    (tmp_path / "nets.py").write_text(NETS)
    f = tmp_path / "exp" / "e.toml"
    f.write_text('[experiment]\nmodel = "file:nets.py:Net"\ndataset = "synthetic"\ndevice = "cpu"\n[sweep]\n'
                 'methods = ["uniform"]\nratios = [0.5]\nseeds = [0]\n')
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ns.NeuralscaleError, match=f"model file nets.py is not beside the experiment file "
                                                  f"\\({tmp_path / 'exp'}\\): an experiment file's paths are read from "
                                                  f"its folder; give model = \"file:{tmp_path / 'nets.py'}:Net\", or "
                                                  "move the file beside it"):
        prepare(f)


def test_a_law_fitted_for_the_files_network_is_refused_for_it_after_an_edit(nets, capsys):
    """A fit file (FIT.json) of the network as it was was applied to the edited one without a word: a law named
    only the model and its layers, which an edit that keeps them (another pooling, kernel or block) does not
    change. It records the network's digest now; a named model's law is as before, byte for byte."""
    from neuralscale.scaling import ScalingLaw, uniform_law
    sp = ns.space("file:nets.py:Net", "synthetic")
    uniform_law(sp, [12, 20]).save(nets / "FIT.json")
    assert ScalingLaw.load(nets / "FIT.json").architecture == sp.architecture
    before = ns.scale(sp, "neuralscale", "50%", source=nets / "FIT.json")["widths"]
    (nets / "nets.py").write_text(NETS.replace("adaptive_avg_pool2d", "adaptive_max_pool2d"))  # the same layers
    edited = ns.space("file:nets.py:Net", "synthetic")
    assert edited.layer_names == sp.layer_names and edited.architecture != sp.architecture
    said = (r"^this law was fitted for file:/.*/nets.py:Net as it was then: its code or modules changed since, or "
            r"its data's classes or image size \(architecture \w+ now, \w+ recorded\); fit the network as it is "
            r"now, or put them back$")
    with pytest.raises(ns.NeuralscaleError, match=said):
        ns.scale(edited, "neuralscale", "50%", source=nets / "FIT.json")
    assert cli.main(["scale", "--model", "file:nets.py:Net", "--dataset", "synthetic", "--method", "neuralscale",
                     "--from", "FIT.json", "--params", "50%"]) == 2
    assert capsys.readouterr().err.strip().startswith("neuralscale: error: this law was fitted for file:/")
    # the code as it was, an image folder given a class since: the law's network is not this one either, and the
    # message says the data may be why (a walkthrough: it blamed the code alone)
    (nets / "nets.py").write_text(NETS)
    folder = write_imagefolder(nets / "imgs", classes=2, per_class=2, size=32)
    uniform_law(ns.space("file:nets.py:Net", f"imagefolder:{folder}"), [12, 20]).save(nets / "FOLDER.json")
    write_imagefolder(nets / "imgs", classes=3, per_class=2, size=32)
    with pytest.raises(ns.NeuralscaleError, match=said):
        ns.scale(ns.space("file:nets.py:Net", f"imagefolder:{folder}"), "neuralscale", "50%",
                 source=nets / "FOLDER.json")
    (nets / "nets.py").write_text(NETS)  # put back: the law applies again
    assert ns.scale(ns.space("file:nets.py:Net", "synthetic"), "neuralscale", "50%",
                    source=nets / "FIT.json")["widths"] == before
    named = uniform_law(ns.space("vgg11", "synthetic"), [8] * 8).to_dict()
    assert "architecture" not in named and ScalingLaw.from_dict(named).architecture == ""


def _study(where, monkeypatch, seeds: str = "0", iterations: int = 1) -> dict:
    """A descent of nets.py's network, a sweep from it and a `train` run, made (or gone on with) in the folder
    `where`: the record of every run and the descent's laws, by path relative to `where`."""
    from helpers import TINY_DESCENT
    monkeypatch.chdir(where)
    ns.descend("file:nets.py:small", "synthetic", "d", ns.DescentConfig(**{**TINY_DESCENT, "iterations": iterations}),
               subset={"train": 64}, progress=False)
    tiny = ["--dataset", "synthetic", "--train-subset", "32", "--test-subset", "16", "--epochs", "1", "--batch-size",
            "16", "--device", "cpu", "--quiet"]
    assert cli.main(["sweep", "--model", "file:nets.py:small", "--from", "d", "--methods", "uniform,neuralscale",
                     "--ratios", "0.5,1", "--seeds", seeds, *tiny, "--out", "s"]) == 0
    assert cli.main(["train", "--model", "file:nets.py:small", "--ratio", "0.5", *tiny, "--out", "run"]) == 0
    return {str(p.relative_to(where)): json.loads(p.read_text())
            for p in [*where.glob("*/record.json"), *where.glob("s/runs/*/record.json"), where / "d" / "fits.json"]}


def test_a_study_moved_or_cloned_with_its_file_goes_on_there_and_redoes_nothing(nets, monkeypatch, capsys):
    """A study of a file's network (a descent, a sweep from it, a `train` run) recorded the file's absolute path in
    every id: moved or cloned elsewhere, each of them was refused as another one ("another recipe", "another
    configuration", "holds another run"). Runs know the network by the file's name and its architecture now."""
    study = nets / "study"
    study.mkdir()
    for name in ("nets.py", "blocks.py"):
        (nets / name).rename(study / name)
    before = _study(study, monkeypatch)
    specs = [r["spec"] for k, r in before.items() if k != "d/fits.json"]
    assert len(specs) == 5 and all(s["portable"] is True and s["model"] == f"file:{study / 'nets.py'}:small"
                                   for s in specs)
    assert json.loads((study / "s" / "sweep.json").read_text())["recipe"]["model"] == "file:nets.py:small"
    assert json.loads((study / "d" / "config.json").read_text())["portable"] is True
    moved = nets / "elsewhere" / "study"
    moved.parent.mkdir()
    monkeypatch.chdir(nets)
    study.rename(moved)
    assert _study(moved, monkeypatch) == before  # nothing redone: every record and law as it was
    # reported there before any run is recorded there: sweep.json says where the file lies beside the store
    assert cli.main(["report", "s", "--out", "rep0"]) == 0
    assert any(moved.glob("rep0/*growth*")) and "cannot be made here" not in (moved / "rep0" / "report.md").read_text()
    shutil.copytree(moved / "s" / "runs", moved / "plain")  # a folder of its runs alone: named by the command
    for model, made in ((None, False), ("file:nets.py:small", True)):
        assert cli.main(["report", "plain", "--descent", "d", "--out", f"rep-{made}",
                         *(["--model", model] if model else [])]) == 0
        text = (moved / f"rep-{made}" / "report.md").read_text()
        assert ("cannot be made here" not in text) == made, (model, text[text.find("cannot be made"):][:300])
    assert cli.main(["report", "s", "--model", "vgg11", "--out", "rep1"]) == 2
    assert "'vgg11' is not the network of s's runs (file:nets.py:small)" in capsys.readouterr().err
    for model, says in (("file:gone/nets.py:small", f"model file {moved / 'gone' / 'nets.py'} does not exist\n"),
                        ("file:nets.py:small\0", "a file's path holds no NUL character")):
        assert cli.main(["report", "s", "--model", model, "--out", "rep1"]) == 2  # asked for: refused, not skipped
        assert says in capsys.readouterr().err
    plan = json.loads((moved / "s" / "sweep.json").read_text())
    for beside in ("file:../nets\0.py:small", "file:" + "x" * 300 + ".py:small", "file:../blocks.py:small", "oops"):
        plan["config"]["model_from_store"] = beside  # damaged: the report goes on without it, and says why
        (moved / "s" / "sweep.json").write_text(json.dumps(plan))
        assert cli.main(["report", "s", "--out", "rep1", "--force"]) == 0
        assert "cannot be made here" in (moved / "rep1" / "report.md").read_text()
    plan["config"]["model_from_store"] = "file:../nets.py:small"
    (moved / "s" / "sweep.json").write_text(json.dumps(plan))
    # it grows there: a seed more, its runs made from the file where it lies now; one report of them all
    grown = _study(moved, monkeypatch, seeds="0,1")
    new = {k: r for k, r in grown.items() if k not in before}
    assert len(new) == 4 and all(r["status"] == "finished" and r["model"] == f"file:{moved / 'nets.py'}:small"
                                 for r in new.values())
    # a pruning baseline there prunes the network trained before the move (its weights in the store)
    uniform = next(r for k, r in before.items() if r.get("method") == "uniform" and r["budget"]["ratio"] == 1)
    assert cli.main(["sweep", "--model", "file:nets.py:small", "--dataset", "synthetic", "--methods", "l1-prune",
                     "--ratios", "0.25", "--seeds", "0", "--train-subset", "32",
                     "--test-subset", "16", "--epochs", "1", "--batch-size", "16", "--device", "cpu", "--quiet",
                     "--out", "s"]) == 0
    pruned = [json.loads(p.read_text()) for p in moved.glob("s/runs/l1-prune*/record.json")]
    assert len(pruned) == 1 and pruned[0]["status"] == "finished"
    assert pruned[0]["pruning"]["from"] == uniform["id"] and "retrained" not in pruned[0]["pruning"]
    # (a sweep from no descent kept the one its runs came from: the report below draws it)
    assert json.loads((moved / "s" / "sweep.json").read_text())["config"]["descents_from_store"] == {"params": "../d"}
    capsys.readouterr()
    assert cli.main(["report", "s", "--out", "rep", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["model"] == "file:nets.py:small" and any(moved.glob("rep/*growth*"))
    # a run exported there: its record names the file where it was, the command names it where it is
    assert cli.main(["export", "run", "--out", "net"]) == 2
    assert f"model file {study / 'nets.py'} does not exist" in capsys.readouterr().err
    assert cli.main(["export", "run", "--model", "vgg11", "--out", "net"]) == 2
    assert "'vgg11' is not the network of run run (file:" in capsys.readouterr().err
    other = moved / "other"
    other.mkdir()
    (other / "blocks.py").write_text(BLOCKS.replace("nn.ReLU()", "nn.GELU()"))
    (other / "nets.py").write_text(NETS)
    assert cli.main(["export", "run", "--model", "file:other/nets.py:small", "--out", "net"]) == 2
    assert f"file:{other / 'nets.py'}:small is another network than the one file:{study / 'nets.py'}:small made " \
           "(architecture" in capsys.readouterr().err
    assert cli.main(["export", "run", "--model", "file:nets.py:small", "--out", "net"]) == 0
    model, meta = ns.load_model("net.json")
    assert meta["model"] == f"file:{moved / 'nets.py'}:small" and meta["widths"] == before["run/record.json"]["widths"]
    (moved / "nets.py").rename(moved / "away.py")  # (load_model says how a Python caller names it where it is now)
    with pytest.raises(ns.NeuralscaleError, match=r"name the file where it lies now \(space=ns.space\("):
        ns.load_model("net.json")
    (moved / "away.py").rename(moved / "nets.py")
    # and its descent goes on there: iteration 1 kept, iteration 2 added
    laws = _study(moved, monkeypatch, iterations=2)["d/fits.json"]["laws"]
    assert len(laws) == 2 and laws[0] == before["d/fits.json"]["laws"][0]


def test_a_study_recorded_before_runs_knew_a_file_by_its_name_keeps_its_ids(nets, monkeypatch, capsys):
    """A study whose ids hash the file's absolute path (recorded before RunSpec.portable) goes on where it was
    made with its own ids: nothing redone, and its new runs are planned alike. Moved, it is refused as before."""
    from neuralscale import zoo
    with monkeypatch.context() as m:
        m.setitem(zoo.SCHEME_INFO["file"], "identity", None)  # as the code before recorded it
        before = _study(nets, m)
    assert not any("portable" in r.get("spec", {}) for r in before.values())
    recipe = json.loads((nets / "s" / "sweep.json").read_text())["recipe"]
    assert recipe["model"] == f"file:{nets / 'nets.py'}:small"
    assert "portable" not in json.loads((nets / "d" / "config.json").read_text())
    assert _study(nets, monkeypatch) == before
    grown = _study(nets, monkeypatch, seeds="0,1")
    new = [r for k, r in grown.items() if k not in before]
    assert len(new) == 4 and not any("portable" in r["spec"] for r in new)
    assert json.loads((nets / "s" / "sweep.json").read_text())["recipe"] == recipe
    laws = _study(nets, monkeypatch, iterations=2)["d/fits.json"]["laws"]
    assert len(laws) == 2 and laws[0] == before["d/fits.json"]["laws"][0]
    assert cli.main(["report", "s", "--out", "rep"]) == 0
    # its sweep.json lost (removed, as a damaged one's message says): its records say how its ids were made
    everything = _study(nets, monkeypatch, seeds="0,1")
    (nets / "s" / "sweep.json").unlink()
    (nets / "s" / "runs" / "junk").mkdir()  # (a damaged record beside them is passed over, not a stop)
    (nets / "s" / "runs" / "junk" / "record.json").write_text("{")
    tiny = ["--dataset", "synthetic", "--train-subset", "32", "--test-subset", "16", "--epochs", "1", "--batch-size",
            "16", "--device", "cpu", "--quiet"]
    assert cli.main(["sweep", "--model", "file:nets.py:small", "--from", "d", "--methods", "uniform,neuralscale",
                     "--ratios", "0.5,1", "--seeds", "0,1", *tiny, "--out", "s", "--force"]) == 0
    shutil.rmtree(nets / "s" / "runs" / "junk")
    assert _study(nets, monkeypatch, seeds="0,1") == everything
    capsys.readouterr()
    (nets / "moved").mkdir()
    for p in list(nets.iterdir()):
        if p.name != "moved":
            p.rename(nets / "moved" / p.name)
    monkeypatch.chdir(nets / "moved")
    assert cli.main(["sweep", "--model", "file:nets.py:small", "--from", "d", "--methods", "uniform,neuralscale",
                     "--ratios", "0.5", "--seeds", "0", "--dataset", "synthetic", "--epochs", "1", "--device", "cpu",
                     "--train-subset", "32", "--test-subset", "16", "--batch-size", "16", "--quiet",
                     "--out", "s"]) == 2
    assert f"s's runs were made from file:{nets / 'nets.py'}:small, and their ids hash where that file lay (a " \
           "store recorded before runs knew a file by its name): go on with it where the file is at that path, or " \
           "sweep into a new --out" in capsys.readouterr().err
    (nets / "moved" / "s" / "sweep.json").unlink()  # its sweep.json lost there too: refused alike, nothing trained
    runs = sorted((nets / "moved" / "s" / "runs").iterdir())
    assert cli.main(["sweep", "--model", "file:nets.py:small", "--from", "d", "--methods", "uniform,neuralscale",
                     "--ratios", "0.5", "--seeds", "0", *tiny, "--out", "s", "--force"]) == 2
    assert f"s's runs were made from file:{nets / 'nets.py'}:small, and their ids hash" in capsys.readouterr().err
    assert sorted((nets / "moved" / "s" / "runs").iterdir()) == runs
    assert cli.main(["train", "--model", "file:nets.py:small", "--ratio", "0.5", *tiny, "--out", "run"]) == 2
    assert f"run holds a run made from file:{nets / 'nets.py'}:small, and its id hashes where that file lay" \
        in capsys.readouterr().err
    assert cli.main(["train", "--model", "file:nets.py:small", "--ratio", "0.5", *tiny, "--out", "run",
                     "--force"]) == 0  # (replaced, as asked)
    assert json.loads((nets / "moved" / "run" / "record.json").read_text())["spec"]["portable"] is True
    from helpers import TINY_DESCENT
    with pytest.raises(ns.NeuralscaleError, match=r"a descent recorded before runs knew a file by its name hashes "
                                                  r"where it lay: continue it where the file is at that path"):
        ns.descend("file:nets.py:small", "synthetic", "d", ns.DescentConfig(**{**TINY_DESCENT, "iterations": 3}),
                   subset={"train": 64}, progress=False)
    assert cli.main(["fit", "d/iteration_01.csv"]) == 2
    assert f"the descent records file:{nets / 'nets.py'}:small, and that file is not there now" \
        in capsys.readouterr().err
    # its laws still serve where it lies now
    assert ns.scale(ns.space("file:nets.py:small", "synthetic"), "neuralscale", "50%", source="d")["widths"]


def test_an_experiment_of_a_file_moved_with_it_goes_on_there(tmp_path, monkeypatch, capsys):
    """The experiment file names the model file beside it: its folder moved elsewhere (a clone of a study's
    repository), the experiment run again there redoes nothing and reports from where it lies now."""
    study = tmp_path / "study"
    study.mkdir()
    (study / "blocks.py").write_text(BLOCKS)
    (study / "nets.py").write_text(NETS)
    (study / "e.toml").write_text(
        '[experiment]\nmodel = "file:nets.py:small"\ndataset = "synthetic"\nout = "out"\ndevice = "cpu"\n'
        '[data]\ntrain_subset = 64\ntest = 16\n'
        '[descent]\niterations = 1\nwarmup_epochs = 1\nprune_interval = 2\nprune_k = 3\nprune_fraction = 0.8\n'
        'batch_size = 64\nprune_past_one = true\nallow_fallback = true\ntrajectory_start = "per-layer"\n'
        '[sweep]\nmethods = ["uniform", "neuralscale"]\nratios = [0.5]\nseeds = [0]\n'
        '[sweep.train]\nepochs = 1\nbatch_size = 16\n[report]\nformat = ["svg"]\n')

    def records(root):
        return {str(p.relative_to(root)): p.read_text() for p in [*root.glob("out/**/record.json"),
                                                                  root / "out" / "descent" / "fits.json"]}
    monkeypatch.chdir(tmp_path)
    assert cli.main(["experiment", "study/e.toml", "--quiet"]) == 0
    before = records(study)
    assert len(before) == 3
    clone = tmp_path / "clone"
    study.rename(clone)
    shutil.rmtree(clone / "out" / "report")  # (the report is made again there, its figures too)
    assert cli.main(["experiment", "clone/e.toml", "--quiet"]) == 0, capsys.readouterr().err
    assert records(clone) == before
    assert any(clone.glob("out/report/*growth*"))


def test_two_files_of_one_name_are_two_networks(tmp_path, monkeypatch, capsys):
    """A review: runs know a file's network by the file's name and its architecture digest. Two files of one name
    and class (two folders) whose networks differ are not pooled in one report, and a run of one does not start
    another's network; a latency table names a file's network by its name, so a descent moved with its file reads
    its table there."""
    from neuralscale.latency import LatencyTable
    tiny = ["--dataset", "synthetic", "--train-subset", "32", "--test-subset", "16", "--epochs", "1", "--batch-size",
            "16", "--device", "cpu", "--quiet"]
    for name, text in (("a", NETS), ("b", NETS.replace("nn.ReLU()", "nn.GELU()"))):
        (tmp_path / name).mkdir()
        (tmp_path / name / "blocks.py").write_text(BLOCKS if name == "a" else BLOCKS.replace("nn.ReLU()", "nn.GELU()"))
        (tmp_path / name / "nets.py").write_text(text)
    monkeypatch.chdir(tmp_path)
    for name in ("a", "b"):
        assert cli.main(["train", "--model", f"file:{name}/nets.py:small", "--ratio", "1", *tiny, "--out",
                         f"runs/{name}"]) == 0
    a, b = (json.loads((tmp_path / "runs" / n / "record.json").read_text()) for n in ("a", "b"))
    assert a["spec"]["architecture"] != b["spec"]["architecture"] and a["widths"] == b["widths"]
    capsys.readouterr()
    assert cli.main(["report", "runs", "--out", "rep"]) == 2
    assert "runs holds runs of 2 networks named file:nets.py:small (architectures " in capsys.readouterr().err
    assert cli.main(["train", "--model", "file:b/nets.py:small", "--ratio", "0.5", "--init-from", "runs/a", *tiny,
                     "--out", "warm"]) == 2
    assert f"the trained run {tmp_path / 'runs' / 'a'} is not this file:{tmp_path / 'b' / 'nets.py'}:small: its " \
           "network's code or modules differ (architecture" in capsys.readouterr().err
    # a descent of each: laws copied from one into the other are not taken for its own (their fingerprints)
    from helpers import TINY_DESCENT
    from neuralscale.descent import DescentDir
    for name in ("a", "b"):
        DescentDir(tmp_path / f"d{name}").claim(ns.space(f"file:{name}/nets.py:small", "synthetic"),
                                                ns.DescentConfig(**TINY_DESCENT), {})
    assert DescentDir(tmp_path / "da").fingerprint() != DescentDir(tmp_path / "db").fingerprint()
    # and the one's descent or law is refused for the other, naming both (not "its code changed")
    from neuralscale.scaling import uniform_law
    sp_a, sp_b = (ns.space(f"file:{n}/nets.py:small", "synthetic") for n in ("a", "b"))
    with pytest.raises(ns.NeuralscaleError, match=rf"^{tmp_path / 'da'} descended {sp_a.name}, and {sp_b.name} is "
                                                  r"another network \(architecture \w+, \w+ recorded\)"):
        ns.scale(sp_b, "morphnet", "50%", source=tmp_path / "da")
    uniform_law(sp_a, [6, 12]).save(tmp_path / "FIT.json")
    with pytest.raises(ns.NeuralscaleError, match=rf"^this law was fitted for {sp_a.name}, and {sp_b.name} is "
                                                  r"another network \(architecture"):
        ns.scale(sp_b, "neuralscale", "50%", source=tmp_path / "FIT.json")
    # the latency table's rest of the base network, by the file's name: found for the file moved elsewhere, and
    # a table written before (by the absolute path) is read the same
    def model(sig, dims):
        return 0.01 * (1 + sum(dims)), 0.0
    sp = ns.space("file:a/nets.py:small", "synthetic")
    table = LatencyTable.open(tmp_path / "t.json", measure=model)
    ms = table.estimate(sp, sp.base_widths)
    assert list(table.rest) == ["file:nets.py:small"]
    data = json.loads((tmp_path / "t.json").read_text())
    shutil.copytree(tmp_path / "a", tmp_path / "c")
    moved = ns.space("file:c/nets.py:small", "synthetic")
    assert LatencyTable.read(tmp_path / "t.json").estimate(moved, moved.base_widths) == ms
    data["rest"] = {sp.name: data["rest"]["file:nets.py:small"]}
    (tmp_path / "t.json").write_text(json.dumps(data))
    assert LatencyTable.read(tmp_path / "t.json").estimate(sp, sp.base_widths) == ms
