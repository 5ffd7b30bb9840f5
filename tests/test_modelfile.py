"""A network of one's own from a Python file, by name (modelfile.py): `--model file:PATH.py:NAME` through every
command that takes a model, and the one-line refusals of files and names that do not make a network."""

from __future__ import annotations

import json
import runpy

import pytest
import torch

import neuralscale as ns
from neuralscale import cli

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
    assert record["model"] == "file:nets.py:Net" and record["status"] == "finished" and record["spec"]["architecture"]
    assert record["widths"] == [8, 16]
    assert cli.main(["export", "run", "--out", "net"]) == 0
    model, meta = ns.load_model("net.json")  # its space rebuilt from the file, by the name the run recorded
    assert sum(p.numel() for p in model.parameters()) == record["params"] and meta["widths"] == [8, 16]
    capsys.readouterr()
    # edited: another network by the same name, not the one trained
    (nets / "nets.py").write_text(NETS.replace("nn.MaxPool2d(2)", "nn.AvgPool2d(2)"))
    assert cli.main(["train", "--model", "file:nets.py:Net", "--ratio", "0.5", *tiny, "--out", "run"]) == 2
    assert "the model's code or modules changed since" in capsys.readouterr().err
    with pytest.raises(ns.NeuralscaleError, match=r"^file:nets.py:Net is not the network this was trained as: its "
                                                  r"code or modules changed since \(architecture \w+ now, \w+ "
                                                  r"recorded\)$"):
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
    assert all(r["status"] == "finished" and r["model"] == "file:nets.py:small" for r in records)


@pytest.mark.parametrize("text, model, says", [
    (None, "file:nope.py:Net", "model file nope.py does not exist"),
    (None, "file:nets.py", "file:nets.py: name the class or function too, as file:PATH.py:NAME"),
    (None, "file:nets.py:Nett", "model file nets.py has no Nett (did you mean Net?); it defines Net, small"),
    ("import torch\ndef Net(:\n", "file:nets.py:Net", "model file nets.py, line 2: invalid syntax"),
    ("import no_such_module\n", "file:nets.py:Net", "model file nets.py does not import: ModuleNotFoundError: No "
                                                    "module named 'no_such_module'"),
    ("Net = 3\n", "file:nets.py:Net", "nets.py:Net is a int, not a class or function that makes the network"),
    ("def Net(num_classes, depth):\n    pass\n", "file:nets.py:Net",
     "nets.py:Net needs depth; neuralscale passes only num_classes and in_channels (or in_chans): give the others"),
    ("def Net(num_classes):\n    raise ValueError('no such depth')\n", "file:nets.py:Net",
     "nets.py:Net(num_classes=10) failed: ValueError: no such depth"),
    ("def Net():\n    return 3\n", "file:nets.py:Net", "nets.py:Net() returned a int, not an nn.Module"),
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


def test_an_experiment_file_names_a_model_file_beside_it_as_the_command_line_would(tmp_path, monkeypatch):
    """A model file's path is read from where the command runs, as an image folder's: one beside the experiment
    file but not there says so, with both ways on."""
    from neuralscale.experiment import prepare
    (tmp_path / "exp").mkdir()
    (tmp_path / "exp" / "blocks.py").write_text(BLOCKS)
    (tmp_path / "exp" / "nets.py").write_text(NETS)
    f = tmp_path / "exp" / "e.toml"
    f.write_text('[experiment]\nmodel = "file:nets.py:Net"\ndataset = "synthetic"\ndevice = "cpu"\n[sweep]\n'
                 'methods = ["uniform"]\nratios = [0.5]\nseeds = [0]\n')
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ns.NeuralscaleError, match=f"model file nets.py does not exist here \\({tmp_path}\\); it is "
                                                  f"beside the file.*: run from {tmp_path / 'exp'}, or give model = "
                                                  f"\"file:{tmp_path / 'exp' / 'nets.py'}:Net\""):
        prepare(f)
    monkeypatch.chdir(tmp_path / "exp")
    assert prepare(f).sweep.model == "file:nets.py:Net"
    assert torch.equal(torch.tensor(ns.space("file:nets.py:Net", "synthetic").base_widths), torch.tensor([16, 32]))
