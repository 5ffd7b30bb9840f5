"""importance.py: each criterion's score, computed by hand on a real network."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import neuralscale as ns
from neuralscale.graph import ChannelGraph, gate_layers
from neuralscale.importance import TaylorFO


def _net(seed=0):
    sp = ns.space("vgg11", "synthetic")
    torch.manual_seed(seed)
    widths = sp.uniform(0.0625)
    return sp, widths, sp.build(widths)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_taylor_fo_averages_the_squared_gate_gradients_over_batches(seed):
    sp, widths, model = _net(seed)
    layers = gate_layers(sp, model)
    for layer in layers:
        for g in layer.gates:
            g.ones = torch.ones(g.width, requires_grad=True)
    taylor, by_hand = TaylorFO(), [torch.zeros(w) for w in widths]
    for b in range(3):
        x = torch.randn(4, *sp.info.input_shape)
        y = torch.randint(0, sp.info.num_classes, (4,))
        F.cross_entropy(model(x), y).backward()
        for layer in layers:
            by_hand[layer.index] += sum(g.ones.grad for g in layer.gates) ** 2
        taylor.observe(layers)  # takes the gradients, so that they do not add up
        assert all(g.ones.grad is None for layer in layers for g in layer.gates)
    for layer in layers:
        torch.testing.assert_close(taylor.score(layer), by_hand[layer.index] / 3)
    state = taylor.state_dict()
    again = TaylorFO()
    again.load_state_dict(state)
    torch.testing.assert_close(again.score(layers[0]), taylor.score(layers[0]))
    taylor.reset()
    assert taylor.batches == 0 and taylor.sums is None


def test_taylor_fo_from_a_batch_norm_equals_the_gates_gradient():
    """A gate that multiplies nothing is scored from its norm's gradients: gamma * dgamma + beta * dbeta."""
    sp, widths, model = _net()
    layers = gate_layers(sp, model)
    with torch.no_grad():  # betas away from their initial 0 (a mutation audit: beta * dbeta dropped, unnoticed)
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.bias.copy_(torch.rand(m.num_features, generator=torch.Generator().manual_seed(3)) - 0.5)
    for layer in layers:
        for g in layer.gates:
            g.ones = torch.ones(g.width, requires_grad=True)
    x, y = torch.randn(4, *sp.info.input_shape), torch.randint(0, sp.info.num_classes, (4,))
    F.cross_entropy(model(x), y).backward()
    for layer in layers:
        g = layer.gates[0]
        gate_grad = g.ones.grad.clone()
        g.ones = None
        assert float(g.source.bias.grad.abs().max()) > 0
        torch.testing.assert_close(TaylorFO.gate_grad(g), gate_grad, rtol=1e-4, atol=1e-7)


def test_bn_scale_and_l1_filter_norm():
    sp, widths, model = _net()
    layers = ChannelGraph(sp, widths).layers(model)
    bn = ns.BNScale().score(layers[1])
    assert torch.equal(bn, sum(n.weight.detach().abs() for n in layers[1].norms))
    with torch.no_grad():  # a negative scale is as large as a positive one (network slimming's |gamma|)
        layers[1].norms[0].weight[:3] = torch.tensor([-2.0, 0.1, -0.05])
    bn = ns.BNScale().score(layers[1])
    assert torch.equal(bn, sum(n.weight.detach().abs() for n in layers[1].norms)) and bool((bn >= 0).all())
    assert bn[0] > bn[1] > bn[2]
    l1 = ns.L1FilterNorm().score(layers[1])
    conv = layers[1].producers[0].weight.detach()
    torch.testing.assert_close(l1, conv.abs().flatten(1).sum(1))
    torch.testing.assert_close(ns.L1FilterNorm(per_weight=True).score(layers[1]), conv.abs().flatten(1).mean(1))


def test_a_tied_layer_is_scored_over_all_its_producers_and_norms():
    """A layer tied across residual sums has several producers and batch norms (MobileNetV2's stem has three of
    each): BN scale sums their |gamma| and L1 their filter norms (a mutation audit: reading the first alone passed,
    as VGG has one of each)."""
    sp = ns.space("mobilenetv2", "synthetic")
    torch.manual_seed(0)
    widths = sp.uniform(0.125)
    model = sp.build(widths)
    layers = ChannelGraph(sp, widths).layers(model)
    tied = next(layer for layer in layers if len(layer.norms) >= 2 and len(layer.producers) >= 2)
    with torch.no_grad():
        for i, n in enumerate(tied.norms):
            n.weight.copy_(torch.linspace(-1.0, 1.0, n.num_features) * (i + 1))
    torch.testing.assert_close(ns.BNScale().score(tied), sum(n.weight.detach().abs() for n in tied.norms))
    torch.testing.assert_close(ns.L1FilterNorm().score(tied),
                               sum(p.weight.detach().abs().flatten(1).sum(1) for p in tied.producers))
    torch.testing.assert_close(ns.L1FilterNorm(per_weight=True).score(tied),
                               sum(p.weight.detach().abs().flatten(1).mean(1) for p in tied.producers))


def test_what_each_criterion_needs_and_says_when_it_lacks_it():
    """A criterion of the user's own reads the channel graph unless it says it needs none; Taylor-FO needs none;
    a layer without batch norms or producers is refused by name; the two L1 variants record different names; a
    layer whose gates got no gradient scores 0; no score from a state without batches; the sums move to the device
    asked for (a mutation audit: each of these passed when changed)."""
    from neuralscale.graph import Layer
    assert ns.Importance.needs_graph is True and TaylorFO.needs_graph is False
    assert (ns.L1FilterNorm().name, ns.L1FilterNorm(per_weight=True).name) == ("l1", "l1-per-weight")
    bare = Layer(0, "features.3", 4, [])
    with pytest.raises(ns.NeuralscaleError, match="layer features.3 has no batch norm"):
        ns.BNScale().score(bare)
    with pytest.raises(ns.NeuralscaleError, match="layer features.3 has no convolution or linear layer"):
        ns.L1FilterNorm().score(bare)
    sp, widths, model = _net()
    layers = gate_layers(sp, model)
    for layer in layers:
        for g in layer.gates:
            g.ones = torch.ones(g.width, requires_grad=True)  # no backward pass: no gradient anywhere
    taylor = TaylorFO()
    taylor.observe(layers)
    assert all(torch.equal(taylor.score(layer), torch.zeros(layer.width)) for layer in layers)
    taylor.to("meta")
    assert all(s.device.type == "meta" for s in taylor.sums)
    emptied = TaylorFO()
    emptied.load_state_dict({"sums": [torch.ones(w) for w in widths], "batches": 0})
    with pytest.raises(ns.NeuralscaleError, match="Taylor-FO has observed no batch"):
        emptied.score(layers[0])
