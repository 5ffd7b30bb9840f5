"""The registry: family metadata instead of name matching, and the one way back from a record to its space."""

from __future__ import annotations

from dataclasses import asdict

import pytest
import torch

import neuralscale as ns
from neuralscale.data.info import DatasetInfo
from neuralscale.descent import DescentConfig
from neuralscale.errors import NeuralscaleError
from neuralscale.models import vgg
from neuralscale.space import Family, WidthSpace
from neuralscale.zoo import FAMILIES, FAMILY_INFO, parse_name, record_space, register_family


@pytest.mark.parametrize("model, paper, add10, variant", [
    ("vgg11", True, False, None), ("resnet18", True, True, None), ("resnet18-convcut", True, True, "convcut"),
    ("mobilenetv2", True, True, None), ("torchvision:resnet18", False, False, None)])
def test_every_space_carries_its_familys_metadata(model, paper, add10, variant):
    sp = ns.space(model, "synthetic")
    assert (sp.family.paper, sp.family.add10, sp.family.variant) == (paper, add10, variant)
    assert sp.family.name == parse_name(model.split(":")[0])[0]  # a generic space's: its scheme
    assert sp.rebased(sp.uniform(0.5)).family == sp.family  # a narrower start is the same family
    cfg = DescentConfig().resolve(sp)
    assert cfg.add10 == add10 and cfg.prune_past_one == (not paper)
    assert cfg.trajectory_start == ("all-lost" if paper else "per-layer")


def test_the_convcut_flag_and_suffix_are_one_thing():
    assert parse_name("ResNet18-convcut") == ("resnet18", True)
    assert parse_name("resnet18", convcut=True) == ("resnet18", True)
    assert parse_name("vgg11") == ("vgg11", False)
    a, b = ns.space("resnet18-convcut", "synthetic"), ns.space("resnet18", "synthetic", convcut=True)
    assert a.name == b.name == "resnet18-convcut" and a.family == b.family


def test_a_users_family_declares_its_rules(monkeypatch):
    monkeypatch.setitem(FAMILIES, "tinyvgg", None)  # removed again after the test
    monkeypatch.setitem(FAMILY_INFO, "tinyvgg", None)

    @register_family("tinyvgg", paper=True, add10=True)
    def _tiny(info, convcut):
        return WidthSpace("tinyvgg", vgg.LAYER_NAMES, [8] * 8, info, lambda w: vgg.VGG11(w, info.num_classes,
                                                                                          info.in_channels))
    sp = ns.space("tinyvgg", "synthetic")
    assert sp.family == Family("tinyvgg", paper=True, add10=True)
    assert DescentConfig().resolve(sp).add10 is True  # no name is matched: the registry said so


def test_a_record_rebuilds_its_space_without_its_data(tmp_path):
    info = DatasetInfo("imagefolder:flowers", 5, 3, 32)  # a folder that is not on this machine
    record = {"model": "vgg11", "dataset": "imagefolder:flowers", "input": asdict(info),
              "spec": {"convcut": False, "data": {"data_dir": str(tmp_path / "gone")}}, "data": {"train": 10}}
    sp = record_space(record)
    assert sp.info.num_classes == 5 and sp.name == "vgg11"
    meta = {"model": "resnet18", "dataset": "synthetic", "convcut": True, "data": asdict(ns.dataset_info("synthetic"))}
    assert record_space(meta).name == "resnet18-convcut"  # a model file's metadata
    old = {"model": "vgg11", "dataset": "synthetic"}  # 0.1 named only its dataset
    assert record_space(old).info == ns.dataset_info("synthetic")
    with pytest.raises(NeuralscaleError, match="a space of your own"):
        record_space({"model": "module:Net", "dataset": "custom"})
    with pytest.raises(NeuralscaleError, match="data description is damaged"):
        record_space({"model": "vgg11", "input": {"nope": 1}, "spec": {}})
    with pytest.raises(NeuralscaleError, match="its layers differ"):
        record_space({**old, "layers": ["a"]}, given=ns.space("vgg11", "synthetic"))


@pytest.mark.parametrize("field,value", [("resolution", 0), ("resolution", -64), ("resolution", 32.0),
                                         ("in_channels", 0), ("num_classes", -1), ("num_classes", True)])
def test_a_dataset_description_with_a_nonsense_size_is_one_clear_error(field, value):
    """The paper's families count costs by formula, which would return numbers for any size; the description
    itself is checked (a damaged record's `input` reaches it too)."""
    good = dict(name="mine", num_classes=10, in_channels=3, resolution=32)
    with pytest.raises(NeuralscaleError, match=f"{field} must be a whole number of at least 1"):
        ns.space("resnet18", DatasetInfo(**{**good, field: value}))
    assert ns.space("resnet18", DatasetInfo(**good)).params([1] * 17) > 0


class _Net(torch.nn.Module):
    def __init__(self, out_dims: int = 2):
        super().__init__()
        self.c, self.b = torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8)
        self.fc = torch.nn.Linear(8, 10)
        self.out_dims = out_dims

    def forward(self, x):
        x = self.fc(torch.relu(self.b(self.c(x))).mean((2, 3)))
        return x if self.out_dims == 2 else x.unsqueeze(1)


def test_what_space_is_given_is_checked_in_one_line():
    """A mutation audit: every one of these checks could be dropped with every test passing."""
    x = torch.zeros(1, 3, 8, 8)
    for call, says in ((lambda: ns.space(42, "cifar10"), "model must be a name .* not int"),
                       (lambda: ns.space("vgg11", 42), "dataset must be a name .* not int"),
                       (lambda: ns.space("vgg11", x), "a model name needs a dataset"),
                       (lambda: ns.space("torchvision:resnet18", "cifar10", convcut=True), "--convcut applies"),
                       (lambda: ns.space("torchvision:", "cifar10"), "unknown model source 'torchvision'"),
                       (lambda: ns.space(_Net(), torch.zeros(1, 3, 8, 6)), r"example input.*got shape \(1, 3, 8, 6\)"),
                       (lambda: ns.space(_Net(3), x), r"class scores of shape \(batch, classes\), got \(1, 1, 10\)"),
                       (lambda: ns.space("vgg11", DatasetInfo("small", 10, 3, 16)), "16x16 images are too small for "
                                                                                   "vgg11")):
        with pytest.raises(NeuralscaleError, match=says):
            call()
    assert parse_name("ResNet18-ConvCut") == ("resnet18", True)  # the suffix in any case, as the name


def test_a_users_module_is_left_as_it_was_and_named_as_asked():
    """Its example is run in evaluation mode; the model is given back in the mode it was in (a mutation audit: it
    was left in evaluation mode, its name= ignored, and a dataset's name not read for a module, untested)."""
    net = _Net().train()
    sp = ns.space(net, torch.zeros(2, 3, 8, 8), name="mine")
    assert net.training and sp.name == "mine" and sp.info.name == "custom"
    assert ns.space(net, "synthetic").info == ns.dataset_info("synthetic") and net.training
    assert ns.space(net, ns.dataset_info("synthetic")).name == "module:_Net" and net.training


def test_a_run_record_rebuilds_the_space_it_names():
    """A run record's convcut is in its spec, its data the counts it read (not a description), and a model file's
    architecture at its top level (a mutation audit: each was ignored with every test passing)."""
    info = asdict(ns.dataset_info("synthetic"))
    run = {"model": "resnet18", "dataset": "synthetic", "input": info, "spec": {"convcut": True}}
    assert record_space(run).name == "resnet18-convcut"
    counts = {"model": "vgg11", "dataset": "synthetic", "spec": {}, "data": {"train": 10}}
    assert record_space(counts).info == ns.dataset_info("synthetic")
    mine = ns.space(_Net(), torch.zeros(1, 3, 8, 8))
    meta = {"model": mine.name, "data": asdict(mine.info), "architecture": "0123456789"}
    with pytest.raises(NeuralscaleError, match="recorded 0123456789"):
        record_space(meta, given=mine)
    assert record_space({**meta, "architecture": mine.architecture}, given=mine) is mine
