"""loop.py: ns.Pruner driven from a plain PyTorch loop, on every kind of space that `descend` prunes."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
import torchvision

import neuralscale as ns
from neuralscale.models.gate import gates
from neuralscale.pruning import paced_k


def _prune_in_a_plain_loop(space, widths, out, seed, **kw):
    torch.manual_seed(seed)
    model = space.build(widths)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    pruner = ns.Pruner(space, model, out, **kw)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(2000):  # a bound: pruning ends long before it
        x = torch.randn(4, 3, 32, 32, generator=gen)
        y = torch.randint(0, 10, (4,), generator=gen)
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        pruner.step()
        if pruner.done:
            break
    return pruner, pruner.finish()


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2", "timm:resnet18"])
def test_a_pruner_prunes_a_library_model_with_tied_layers_to_the_end(name, tmp_path):
    """torchvision's and timm's residual models tie layers across sums (one gate per producer): the Pruner counts
    layers, not gates, prunes to the end and writes a fitted law (it refused them: "the model has 20 gated
    layers"); MobileNetV2 adds depthwise groups."""
    if name.startswith("timm:"):
        timm = pytest.importorskip("timm")
        net = timm.create_model(name.removeprefix("timm:"), num_classes=10, pretrained=False)
    else:
        net = getattr(torchvision.models, name)(num_classes=10)
    space = ns.space(net, torch.randn(1, 3, 32, 32))
    model = space.build(space.base_widths)
    assert len(list(gates(model))) > len(space)  # the point: more gates than layers
    widths = space.uniform(0.03)
    pruner, laws = _prune_in_a_plain_loop(space, widths, tmp_path / "d", 0, interval=1, prune_fraction=0.5)
    assert pruner.done and pruner.config.k == paced_k(widths, space.base_widths)
    assert not laws[-1].fallback and laws[-1].rows == len(pruner.rows) >= 6
    fits = json.loads((tmp_path / "d" / "fits.json").read_text())["laws"]
    assert len(fits) == 1 and fits[0]["start_widths"] == widths and len(fits[0]["alpha"]) == len(space)
    assert sum(pruner.widths) < sum(widths)


def test_a_pruner_refuses_a_model_of_another_space(tmp_path):
    vgg = ns.space("vgg11", "synthetic")
    res = ns.space(torchvision.models.resnet18(num_classes=10), torch.randn(1, 3, 32, 32))
    with pytest.raises(ns.NeuralscaleError, match="gated layers"):
        ns.Pruner(vgg, res.build(res.uniform(0.05)), tmp_path / "d")
