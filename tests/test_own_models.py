"""Models as researchers write them by hand (generic.py): a masked channel computes what a removed one does on
every path (shortcuts without a batch norm, pre-activation residual streams, biased depthwise convolutions,
batch norms of concatenations); the common idioms are followed (x.view(x.size(0), -1), x.mean(dim=...), [:, :,
0, 0], squeeze-excitation written with linear layers); what cannot be followed is refused in one line, before a
wrong model is built or trained; and an edited model is never taken for the run of the one before."""

from __future__ import annotations

import collections

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import neuralscale as ns
from neuralscale.errors import NeuralscaleError
from neuralscale.graph import ChannelGraph
from neuralscale.models.gate import gates
from neuralscale.pruning import apply

X = torch.randn(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))


class ShortcutWithoutNorm(nn.Module):
    """A post-activation residual block whose 1x1 shortcut has no batch norm (many hand-written ResNets)."""

    def __init__(self):
        super().__init__()
        self.c, self.b = nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8)
        self.c1, self.b1 = nn.Conv2d(8, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16)
        self.c2, self.b2 = nn.Conv2d(16, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16)
        self.sc = nn.Conv2d(8, 16, 1, 2, bias=False)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = F.relu(self.b(self.c(x)))
        out = F.relu(self.b2(self.c2(F.relu(self.b1(self.c1(x))))) + self.sc(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(out, 1), 1))


class PreActivation(nn.Module):
    """A pre-activation residual stream without a final batch norm (kuangliu's PreActResNet): the stem's and the
    second convolution's outputs reach the classifier through identities, past no norm."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, padding=1, bias=False)
        self.bn1, self.c1 = nn.BatchNorm2d(16), nn.Conv2d(16, 16, 3, padding=1, bias=False)
        self.bn2, self.c2 = nn.BatchNorm2d(16), nn.Conv2d(16, 16, 3, padding=1, bias=False)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = self.stem(x)
        x = x + self.c2(F.relu(self.bn2(self.c1(F.relu(self.bn1(x))))))
        return self.fc(F.avg_pool2d(x, 16).view(x.size(0), -1))


class BiasedDepthwise(nn.Module):
    """A depthwise convolution with its default bias and no batch norm after it."""

    def __init__(self):
        super().__init__()
        self.c0 = nn.Conv2d(3, 16, 3, padding=1)
        self.dw = nn.Conv2d(16, 16, 3, padding=1, groups=16)
        self.pw, self.bn = nn.Conv2d(16, 32, 1, bias=False), nn.BatchNorm2d(32)
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        x = F.relu(self.dw(F.relu(self.c0(x))))
        return self.fc(F.relu(self.bn(self.pw(x))).mean(3).mean(2))


class PreActivationSE(nn.Module):
    """kuangliu's SENet block: a pre-activation stream scaled by a squeeze-excitation, its shortcut without a
    batch norm (the product was refused: its sigmoid looked read by the classifier)."""

    def __init__(self):
        super().__init__()
        self.stem, self.bn0 = nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16)
        self.bn1, self.c1 = nn.BatchNorm2d(16), nn.Conv2d(16, 32, 3, 2, 1, bias=False)
        self.bn2, self.c2 = nn.BatchNorm2d(32), nn.Conv2d(32, 32, 3, padding=1, bias=False)
        self.shortcut = nn.Conv2d(16, 32, 1, 2, bias=False)
        self.fc1, self.fc2 = nn.Conv2d(32, 4, 1), nn.Conv2d(4, 32, 1)
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        x = F.relu(self.bn0(self.stem(x)))
        out = F.relu(self.bn1(x))
        shortcut = self.shortcut(out)
        out = self.c2(F.relu(self.bn2(self.c1(out))))
        w = F.sigmoid(self.fc2(F.relu(self.fc1(F.avg_pool2d(out, out.size(2))))))
        out = out * w
        out += shortcut
        return self.fc(F.avg_pool2d(out, 8).view(out.size(0), -1))


class SigmoidNet(nn.Module):
    """LeNet's way: sigmoid activations (sigmoid(0) = 0.5: a masked channel gated only at its convolution would
    reach the next one as 0.5); the gate goes after the sigmoid."""

    def __init__(self):
        super().__init__()
        self.c1, self.s1 = nn.Conv2d(3, 6, 5), nn.Sigmoid()
        self.c2, self.s2 = nn.Conv2d(6, 16, 5), nn.Sigmoid()
        self.fc1, self.s3 = nn.Linear(16 * 2 * 2, 32), nn.Sigmoid()
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        x = F.avg_pool2d(self.s1(self.c1(x)), 2)
        x = self.s2(self.c2(x))
        return self.fc(self.s3(self.fc1(torch.flatten(x, 1))))


class SEExpandAs(nn.Module):
    """Squeeze-excitation as senet.pytorch writes it: linear layers on the pooled vector, viewed back to a map and
    spread over it with `expand_as` (refused before as "an operation that may move or reshape channels")."""

    def __init__(self):
        super().__init__()
        self.c, self.b = nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8)
        self.se = nn.Sequential(nn.Linear(8, 4), nn.ReLU(inplace=True), nn.Linear(4, 8), nn.Sigmoid())
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        x = F.relu(self.b(self.c(x)))
        b, c, _, _ = x.size()
        y = self.se(F.adaptive_avg_pool2d(x, 1).view(b, c)).view(b, c, 1, 1)
        return self.fc((x * y.expand_as(x)).mean((2, 3)))


class Difference(nn.Module):
    """A residual written as a difference, negated (refused before as "an operation that may move or reshape
    channels", as nn.SELU and nn.LogSoftmax were refused as modules though their functions were followed)."""

    def __init__(self):
        super().__init__()
        self.c, self.b, self.c2 = nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.Conv2d(8, 8, 1)
        self.act, self.fc, self.scores = nn.SELU(), nn.Linear(8, 10), nn.LogSoftmax(dim=1)

    def forward(self, x):
        x = F.relu(self.b(self.c(x)))
        return self.scores(self.fc(self.act(-(x - self.c2(x))).mean((2, 3))))


class DenseConcat(nn.Module):
    """A DenseNet-like block: batch norms read concatenations of several layers' channels."""

    def __init__(self):
        super().__init__()
        self.stem, self.b0 = nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8)
        self.c1 = nn.Conv2d(8, 4, 3, padding=1, bias=False)
        self.n2, self.c2 = nn.BatchNorm2d(12), nn.Conv2d(12, 4, 3, padding=1, bias=False)
        self.n3 = nn.BatchNorm2d(16)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = F.relu(self.b0(self.stem(x)))
        x = torch.cat([x, self.c1(x)], 1)
        x = torch.cat([x, self.c2(F.relu(self.n2(x)))], 1)
        return self.fc(F.relu(self.n3(x)).mean((2, 3)))


class ImageConcat(nn.Module):
    """A layer's channels concatenated after the image's own (at offset 3, not a multiple of their width)."""

    def __init__(self):
        super().__init__()
        self.c1, self.b1 = nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8)
        self.n2, self.c2 = nn.BatchNorm2d(11), nn.Conv2d(11, 8, 3, padding=1, bias=False)
        self.b3, self.fc = nn.BatchNorm2d(8), nn.Linear(8, 10)

    def forward(self, x):
        y = torch.cat([x, F.relu(self.b1(self.c1(x)))], 1)
        return self.fc(F.relu(self.b3(self.c2(F.relu(self.n2(y))))).mean((2, 3)))


class GlobalContext(nn.Module):
    """GCNet's block, with linear layers: a transform of the pooled map added at every position (a masked channel
    gets the transform's output there, which is not 0 unless the transform is gated too)."""

    def __init__(self):
        super().__init__()
        self.c, self.b = nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16)
        self.fc1, self.fc2 = nn.Linear(16, 4), nn.Linear(4, 16)
        self.c2, self.b2 = nn.Conv2d(16, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = F.relu(self.b(self.c(x)))
        x = x + self.fc2(F.relu(self.fc1(x.mean((2, 3))))).view(x.size(0), -1, 1, 1)
        return self.fc(F.relu(self.b2(self.c2(x))).mean((2, 3)))


class JoinGrouped(nn.Module):
    """A plain layer's output added to a grouped convolution's (4 groups), the plain one traced first: the joined
    channels keep the grouped convolution's multiple, whichever group the join keeps as its root."""

    def __init__(self):
        super().__init__()
        self.a, self.ba = nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8)
        self.b, self.bb = nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8)
        self.g, self.bg = nn.Conv2d(8, 8, 3, padding=1, groups=4, bias=False), nn.BatchNorm2d(8)
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        plain = self.ba(self.a(x))
        grouped = F.relu(self.bg(self.g(F.relu(self.bb(self.b(x))))))
        return self.fc(F.relu(plain + grouped).mean((2, 3)))


def test_a_join_keeps_the_multiple_of_either_side():
    """A mutation audit: the join kept only its root's multiple (a valid model was then refused, or widths built
    that the grouped convolution cannot take)."""
    sp = ns.space(JoinGrouped(), X)
    assert sp.layer_names == ("a",) and sp.multiples == (4,)
    assert sp.build([12])(X).shape == (1, 10)
    with pytest.raises(NeuralscaleError, match="multiple of 4"):
        sp.validate([6])


class TwoGroupCounts(nn.Module):
    """One layer's channels read by a grouped convolution of 4 groups, then one of 6 (out follows in for both)."""

    def __init__(self):
        super().__init__()
        self.c, self.b = nn.Conv2d(3, 24, 3, padding=1, bias=False), nn.BatchNorm2d(24)
        self.g4, self.b4 = nn.Conv2d(24, 24, 3, padding=1, groups=4, bias=False), nn.BatchNorm2d(24)
        self.g6, self.b6 = nn.Conv2d(24, 24, 3, padding=1, groups=6, bias=False), nn.BatchNorm2d(24)
        self.fc = nn.Linear(24, 10)

    def forward(self, x):
        x = F.relu(self.b(self.c(x)))
        x = F.relu(self.b6(self.g6(F.relu(self.b4(self.g4(x))))))
        return self.fc(x.mean((2, 3)))


def test_a_layer_read_by_grouped_convolutions_of_two_counts_keeps_a_multiple_of_both():
    """The larger group count was kept (6): width 6 passed validation and the build failed in torch (4 groups of
    6 channels). Its widths are multiples of 12, whichever count is traced first."""
    sp = ns.space(TwoGroupCounts(), X)
    assert sp.multiples == (12,) and sp.uniform(0.5) == [12]
    with pytest.raises(NeuralscaleError, match="multiple of 12"):
        sp.validate([6])
    assert sp.build([12])(X).shape == (1, 10)
    sp = ns.space(JoinGrouped6(), X)  # the two counts met at a sum
    assert sp.multiples == (12,) and sp.build([36])(X).shape == (1, 10)


class JoinGrouped6(JoinGrouped):
    """JoinGrouped, the plain side read by a grouped convolution of 6 groups too."""

    def __init__(self):
        super().__init__()
        self.a, self.ba = nn.Conv2d(3, 24, 3, padding=1, bias=False), nn.BatchNorm2d(24)
        self.b, self.bb = nn.Conv2d(3, 24, 3, padding=1, bias=False), nn.BatchNorm2d(24)
        self.g, self.bg = nn.Conv2d(24, 24, 3, padding=1, groups=4, bias=False), nn.BatchNorm2d(24)
        self.g6, self.fc = nn.Conv2d(24, 24, 3, padding=1, groups=6, bias=False), nn.Linear(24, 10)

    def forward(self, x):
        plain = self.g6(self.ba(self.a(x)))
        grouped = F.relu(self.bg(self.g(F.relu(self.bb(self.b(x))))))
        return self.fc(F.relu(plain + grouped).mean((2, 3)))


def _randomised(model: nn.Module, seed: int) -> nn.Module:
    """Batch norms with statistics and affine terms far from their initial values, biases that are not 0: what
    leaks through a path without a gate shows."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.rand(m.num_features, generator=g) - 0.5)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.rand(m.num_features, generator=g) - 0.5)
            elif isinstance(m, (nn.Conv2d, nn.Linear)) and m.bias is not None:
                m.bias.copy_(torch.rand(m.bias.shape, generator=g) - 0.5)
    return model.double().eval()


def _masked(model: nn.Module, layer: int, drop: list[int]) -> list:
    found = [g for g in gates(model) if g.index == layer]
    for g in found:
        mask = torch.ones(g.width, dtype=torch.float64)
        mask[drop] = 0
        g.ones = mask
    return found


@pytest.mark.parametrize("make", [ShortcutWithoutNorm, PreActivation, BiasedDepthwise, PreActivationSE, SigmoidNet,
                                  GlobalContext, SEExpandAs, Difference])
def test_a_masked_channel_computes_what_a_removed_one_does(make):
    """Each layer in turn, two channels masked through its gates, then removed (apply.shrink): the same outputs,
    in float64 and far beyond its rounding. Before, the shortcut, the residual stream and the depthwise bias carried
    'pruned' channels past every gate (differences of 0.2-1.6 in the audit)."""
    sp = ns.space(make(), X)
    assert sp.params(sp.base_widths) == sum(p.numel() for p in make().parameters())
    x = torch.randn(3, 3, 16, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    widths = list(sp.base_widths)
    for seed in range(3):
        for layer in range(len(sp)):
            torch.manual_seed(seed)
            model = _randomised(sp.build(widths), seed)
            drop = [seed, widths[layer] - 1 - seed]
            found = _masked(model, layer, drop)
            assert found, sp.layer_names[layer]
            with torch.no_grad():
                masked = model(x)
            for g in found:
                g.ones = None
            graph = ChannelGraph(sp, widths)
            assert graph.exact, graph.why_not_exact
            keep = [torch.arange(w) for w in widths]
            keep[layer] = torch.tensor([c for c in range(widths[layer]) if c not in drop])
            smaller = [w - (len(drop) if i == layer else 0) for i, w in enumerate(widths)]
            shrunk = apply.shrink(sp, graph, model, None, keep, widths, smaller)
            with torch.no_grad():
                removed = shrunk.model.eval()(x)
            scale = float(masked.abs().max())
            assert float((masked - removed).abs().max()) <= 1e-9 * scale, (sp.layer_names[layer], seed)


def test_a_channel_has_no_two_gates_in_a_row():
    """A biased depthwise convolution without a batch norm is gated after it, not also before it: with only a ReLU
    between them, Taylor-FO summed the two gates' gradients and scored the layer about twice (4x squared), so it
    was pruned last."""
    sp = ns.space(BiasedDepthwise(), X)
    model = sp.build(list(sp.base_widths))
    where = sorted(name.rsplit(".", 1)[0] for name, g in model.named_modules() if g in gates(model))
    assert where == ["bn", "dw"]


def test_channels_behind_another_tensors_are_masked_not_sliced():
    """A convolution reading the image's 3 channels, then a layer's 8: slicing its input as though it held only
    the layer's channels would cut the image's (a mutation audit: the offset's check was untested); its layer is
    pruned by masking, and a masked channel reaches nothing."""
    sp = ns.space(ImageConcat(), X)
    graph = ChannelGraph(sp, list(sp.base_widths))
    assert not graph.exact and graph.why_not_exact.endswith(" holds c1's channels in a way slicing cannot follow")
    x = torch.randn(3, 3, 16, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    for seed in range(3):
        model = _randomised(sp.build(list(sp.base_widths)), seed)
        _masked(model, 0, [seed])
        with torch.no_grad():
            before = model(x)
            model.n2.bias[3 + seed] += 5.0  # the masked channel's place in the concatenation, after the image's
            model.n2.weight[3 + seed] += 5.0
            after = model(x)
            model.n2.bias[seed] += 5.0  # an image channel: it does reach the output
            moved = model(x)
        assert torch.equal(before, after) and not torch.equal(after, moved), seed


def test_a_masked_channel_of_a_concatenation_reaches_nothing():
    """DenseNet's concatenations are pruned by masking: a batch norm reading one gave a masked channel its
    offset (beta - gamma * mean / std), which the next convolution read. Now each of its segments is gated: what
    is left of a masked channel (its batch norms' parameters) moves no output."""
    sp = ns.space(DenseConcat(), X)
    assert not ChannelGraph(sp, list(sp.base_widths)).exact
    x = torch.randn(3, 3, 16, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    for seed in range(3):
        for layer in range(len(sp)):
            model = _randomised(sp.build(list(sp.base_widths)), seed)
            _masked(model, layer, [seed])
            with torch.no_grad():
                before = model(x)
                for name in ("n2", "n3"):  # every channel of this layer in the norms reading it
                    norm = getattr(model, name)
                    at = _offsets(sp, name)[layer]
                    if at is not None:
                        norm.bias[at + seed] += 5.0
                        norm.weight[at + seed] += 5.0
                after = model(x)
            assert torch.equal(before, after), (sp.layer_names[layer], seed)


def _offsets(sp, norm: str) -> dict[int, int | None]:
    """Where each layer's channels begin in batch norm `norm`'s input (None: not there)."""
    segs = sp.generic.an.norms[norm]
    out, at = {i: None for i in range(len(sp))}, 0
    for g in segs:
        r = sp.generic.an.find(g)
        if r >= 0:
            out[sp.generic.index[r]] = at
        at += sp.generic.an.width(g)
    return out


class GroupedFromStem(nn.Module):
    """A grouped convolution reading a convolution's output past no batch norm (it mixes channels within each of its
    groups), the same channels normalised on another path."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, padding=1, bias=False)
        self.g = nn.Conv2d(16, 16, 3, padding=1, groups=4, bias=False)
        self.b0, self.b1 = nn.BatchNorm2d(16), nn.BatchNorm2d(16)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = self.stem(x)
        return self.fc((F.relu(self.b0(x)) + F.relu(self.b1(self.g(x)))).mean((2, 3)))


class ConcatIntoConv(nn.Module):
    """A convolution reading a concatenation with no batch norm between (c1's channels, normalised only further
    on)."""

    def __init__(self):
        super().__init__()
        self.stem, self.b0 = nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8)
        self.c1 = nn.Conv2d(8, 4, 3, padding=1)
        self.c2 = nn.Conv2d(12, 4, 3, padding=1, bias=False)
        self.n3, self.fc = nn.BatchNorm2d(16), nn.Linear(16, 10)

    def forward(self, x):
        x = F.relu(self.b0(self.stem(x)))
        y = torch.cat([x, self.c1(x)], 1)
        return self.fc(F.relu(self.n3(torch.cat([y, self.c2(y)], 1))).mean((2, 3)))


class TrainingOnlyPath(nn.Module):
    """A block computed another way in training mode: there c2's output is added past the batch norm that reads it
    in evaluation mode (the same layers in the same groups, so both graphs are followed)."""

    def __init__(self):
        super().__init__()
        self.c, self.b = nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16)
        self.c2, self.b2 = nn.Conv2d(16, 16, 3, padding=1), nn.BatchNorm2d(16)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = F.relu(self.b(self.c(x)))
        x = self.b2(x) + self.c2(x) if self.training else self.b2(x + self.c2(x))
        return self.fc(F.relu(x).mean((2, 3)))


@pytest.mark.parametrize("make, layer, producer, training", [
    (GroupedFromStem, 0, "stem", False), (ConcatIntoConv, 1, "c1", False), (TrainingOnlyPath, 0, "c2", True)])
def test_a_masked_channel_read_by_a_layer_past_no_norm_reaches_nothing(make, layer, producer, training):
    """A mutation audit: the gates after a convolution read ungated by a grouped convolution, by a convolution
    through a concatenation, or only in training mode, were each dropped with every test passing. The masked
    channel's weights moved far: the outputs stay exactly as they were."""
    sp = ns.space(make(), X)
    x = torch.randn(3, 3, 16, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    for seed in range(3):
        model = _randomised(sp.build(list(sp.base_widths)), seed).train(training)
        assert _masked(model, layer, [seed])
        conv = getattr(model, producer)
        with torch.no_grad():
            before = model(x)
            conv.weight[seed] += 5.0
            if conv.bias is not None:
                conv.bias[seed] += 5.0
            after = model(x)
            conv.weight[seed + 1] += 5.0  # an unmasked channel does reach the output
            moved = model(x)
        assert torch.equal(before, after) and not torch.equal(after, moved), seed


class DeadEnd(nn.Module):
    """A layer computed and never read (a probe left in forward)."""

    def __init__(self):
        super().__init__()
        self.c, self.b = nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16)
        self.probe, self.fc = nn.Conv2d(16, 8, 1), nn.Linear(16, 10)

    def forward(self, x):
        x = F.relu(self.b(self.c(x)))
        self.probe(x)
        return self.fc(x.mean((2, 3)))


def test_every_layer_has_a_gate_even_one_nothing_reads():
    """A layer is pruned through its gates: one whose output no layer reads still gets one (a mutation audit: the
    rule that gates such a layer was dropped with every test passing)."""
    sp = ns.space(DeadEnd(), X)
    model = sp.build(list(sp.base_widths))
    assert sp.layer_names == ("c", "probe") and sorted({g.index for g in gates(model)}) == [0, 1]


class Idioms(nn.Module):
    """The spellings hand-written models use for pooling, flattening, activations and squeeze-excitation."""

    def __init__(self, how: str):
        super().__init__()
        self.how = how
        self.c, self.b = nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16, affine=how != "no affine")
        self.fc1, self.fc2 = nn.Linear(16, 4), nn.Linear(4, 16)  # squeeze-excitation with linear layers
        self.fc = nn.Linear(16 * (16 if how == "view" else 1), 10)
        if how == "image skip":
            self.refine = nn.Conv2d(3, 3, 3, padding=1)
        self.flatten = nn.Flatten()
        if how in ("plus zero", "difference"):
            self.c2 = nn.Conv2d(16, 16, 1)
        self.act, self.scores = nn.SELU(), nn.LogSoftmax(dim=1)  # (modules without tensors: the counts stay)

    def forward(self, x):
        how = self.how
        if how == "image skip":  # the image refined, and added back past the refinement: its 3 channels stay
            x = x + (x + self.refine(x))
        x = F.relu(self.b(self.c(x)))
        if how == "se":
            s = torch.sigmoid(self.fc2(F.relu(self.fc1(x.mean((2, 3))))))
            x = (x * s.view(x.size(0), -1, 1, 1)).mean((2, 3))
        elif how == "view":
            x = F.avg_pool2d(x, 4).view(x.size(0), -1)  # 16 positions per channel
        elif how == "reshape":
            x = F.adaptive_avg_pool2d(x, 1).reshape(x.size(0), -1)
        elif how == "squeeze":
            x = F.adaptive_avg_pool2d(x, 1).squeeze(-1).squeeze(-1)
        elif how == "index":
            x = F.adaptive_avg_pool2d(x, 1)[:, :, 0, 0]
        elif how == "mean-keyword":
            x = x.mean(dim=(2, 3))
        elif how == "torch.mean":
            x = torch.mean(F.leaky_relu(x, 0.1), (2, 3))
        elif how == "functions":
            x = F.elu(F.dropout2d(x, 0.1, self.training)).mean(3).mean(2)
        elif how == "ellipsis":
            x = F.adaptive_avg_pool2d(x, 1)[..., 0, 0]
        elif how == "view of a vector":
            x = x.mean((2, 3)).view(x.size(0), -1)
        elif how == "flatten of a vector":  # a flatten that changes nothing, by function and by module
            x = self.flatten(torch.flatten(x.mean((2, 3)), 1))
        elif how == "scaled":  # a residual branch scaled by a constant, as EDSR's: a masked channel stays 0
            x = (x + x * 0.2).mean((2, 3))
        elif how == "plus zero":  # a sum with 0 keeps a masked channel 0 (a sum with 3 would not)
            x = self.c2(x + 0).mean((2, 3))
        elif how == "difference":  # a difference and a negation keep a masked channel 0, as a sum does
            x = F.relu(-(x - self.c2(x))).mean((2, 3))
        elif how == "modules":  # activation and output modules as their functions
            x = self.act(x).mean((2, 3))
        else:
            x = x.mean((2, 3))
        out = self.fc(x)
        if how == "modules":
            return self.scores(out)
        return F.log_softmax(out, 1) if how == "functions" else out


@pytest.mark.parametrize("how", ["se", "view", "reshape", "squeeze", "index", "mean-keyword", "torch.mean",
                                 "functions", "ellipsis", "view of a vector", "scaled", "image skip", "no affine",
                                 "flatten of a vector", "plus zero", "difference", "modules"])
def test_common_idioms_are_followed(how):
    """Each was refused as 'an operation that may move or reshape channels' (x.view(x.size(0), -1) alone kept out
    the common CIFAR model collections as written), or ended in a TypeError (x.mean(3).mean(2)). (A mutation audit
    added the last five: an index past an ellipsis, a view of what is already a vector, a product with a constant,
    the image added to itself, and batch norms without affine terms, whose parameters a formula counted; and
    a flatten of a vector, refused as 'a flatten of a tensor without channels'.)"""
    model = Idioms(how)
    sp = ns.space(model, X)
    assert sp.params(sp.base_widths) == sum(p.numel() for p in model.parameters())
    assert list(sp.base_widths)[0] == 16
    half = ns.scale(sp, "uniform", "50%")["widths"]
    built = sp.build(half)
    assert sum(p.numel() for p in built.parameters()) == sp.params(half)
    out = built(torch.randn(2, 3, 16, 16))
    assert out.shape == (2, 10)
    out.sum().backward()
    if how == "se":  # the excitation is tied to the channels it scales; its bottleneck is a layer of its own
        assert len(sp) == 2 and sp.layer_names[1] == "fc1"
    if how == "image skip":  # the refinement keeps the image's channels: not a layer (a mutation audit: the second
        assert sp.layer_names == ("c",) and built.refine.out_channels == 3  # sum was refused as input to output)


class ScaledConv(nn.Conv2d):
    """A convolution with a tensor of its own (a gain per output channel, as weight-standardised ones have)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.gain = nn.Parameter(torch.ones(self.out_channels, 1, 1, 1))

    def forward(self, x):
        return self._conv_forward(x, self.weight * self.gain, self.bias)


class Refused(nn.Module):
    def __init__(self, how: str):
        super().__init__()
        self.how = how
        self.c, self.b = nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16)
        self.c2 = nn.Conv2d(16, 16, 3, padding=1)
        self.aux = nn.Linear(16, 10)
        self.fc = nn.Linear(16, 10)
        self.gn, self.prelu = nn.GroupNorm(4, 16), nn.PReLU(16)
        self.act, self.c2b = nn.Sigmoid(), nn.Conv2d(16, 16, 3, padding=1)
        self.widen = nn.Conv2d(16, 32, 3, padding=1, groups=2)  # twice the channels out as in per group
        self.fc32 = nn.Linear(32, 10)
        self.gamma = nn.Parameter(torch.ones(1, 16, 1, 1))  # a layer scale, as ConvNeXt's
        self.att = nn.Conv2d(16, 1, 7, padding=3)  # a spatial attention map, as CBAM's
        self.scaled = ScaledConv(16, 16, 3, padding=1)
        self.mix = nn.Linear(16, 16)
        self.c32 = nn.Conv2d(32, 16, 3, padding=1)
        self.dw32 = nn.Conv2d(32, 32, 3, padding=1, groups=32)  # depthwise, with its bias
        self.head = nn.Conv2d(64, 10, 1)
        self.half1, self.half2 = nn.Conv2d(16, 5, 1), nn.Conv2d(16, 5, 1)
        self.flat0 = nn.Flatten(0)
        self.se32 = nn.Conv2d(16, 32, 1)  # a squeeze-excitation's scale for 32 channels

    def forward(self, x):
        how = self.how
        x = self.b(self.c(x))
        if how == "softmax":
            x = F.softmax(x, 1)
        elif how == "sigmoid":  # an activation that is not 0 at 0, read by a convolution
            x = self.c2(torch.sigmoid(x))
        elif how == "shared sigmoid":  # one activation module for two layers' channels
            x = self.c2(self.act(self.c2b(self.act(x))))
        elif how == "twice":
            x = self.c2(F.relu(self.c2(F.relu(x))))
        elif how == "shuffle":
            n, c, h, w = x.shape
            x = x.view(n, 2, c // 2, h, w).transpose(1, 2).reshape(n, c, h, w)
        elif how == "split":
            x = x[:, :8].repeat(1, 2, 1, 1)
        elif how == "option-A":  # a shortcut to twice the channels, padded with zeros
            x = self.c2(x) + F.pad(x[:, :, ::1, ::1], (0, 0, 0, 0, 0, 0))
        elif how in ("gn", "prelu"):
            x = getattr(self, how)(x)
        elif how == "in-place":  # on a line of its own: fx's later nodes still name x
            x.add_(1.0)
            x = self.c2(x)
        elif how == "training-only" and self.training:
            x = self.c2(x + 0.5)
        elif how == "squeeze":
            x = F.adaptive_avg_pool2d(x, 1).squeeze()  # at a width of 1 the channels would go too
            return self.fc(x)
        elif how == "widening groups":
            return self.fc32(self.widen(x).mean((2, 3)))
        elif how == "layer scale":
            x = x * self.gamma
        elif how == "spatial attention":  # one map for every channel: its width cannot follow theirs
            x = x * torch.sigmoid(self.att(x))
        elif how == "own tensors":
            x = self.scaled(x)
        elif how == "linear on a map":  # mixes the map's columns, not its channels
            x = self.mix(x)
        elif how == "sigmoid of a concatenation":
            x = self.c32(self.act(torch.cat([x, F.relu(x)], 1)))
        elif how == "depthwise of a concatenation":
            return self.fc32(self.dw32(torch.cat([x, F.relu(x)], 1)).mean((2, 3)))
        elif how == "scale of a concatenation":  # a squeeze-excitation of two layers' channels, joined
            y = torch.cat([x, F.relu(self.c2(x))], 1)
            return self.fc32((y * torch.sigmoid(self.se32(x.mean((2, 3), keepdim=True)))).mean((2, 3)))
        elif how == "flatten from 0":
            return self.fc(torch.flatten(x.mean((2, 3))).view(x.size(0), -1))
        elif how == "module flatten from 0":  # of a vector: batch and features run together
            return self.fc(self.flat0(x.mean((2, 3))).view(x.size(0), -1))
        elif how == "mean over channels":
            return self.fc(x.mean(1).mean(2))
        elif how == "squeeze(1)":
            return self.fc(F.adaptive_avg_pool2d(x, 1).squeeze(1).flatten(1))
        elif how == "flat to a map":  # 16 channels of 4 positions viewed as 64 channels
            flat = F.adaptive_avg_pool2d(x, 2).view(x.size(0), -1)
            return self.head(flat.view(x.size(0), -1, 1, 1)).flatten(1)
        elif how == "cat along the batch":
            return self.fc(torch.cat([x, x]).mean((2, 3)))
        elif how == "concatenated scores":  # two heads' maps of 5 classes each
            return torch.cat([self.half1(x), self.half2(x)], 1).mean((2, 3))
        elif how == "training-mode view" and self.training:  # 16 channels written as a number
            return self.fc(x.view(x.size(0), 16, -1).mean(2))
        out = self.fc(x.mean((2, 3)))
        if how == "aux" and self.training:
            out = out + self.aux(x.amax((2, 3)))
        if how == "tuple" and self.training:
            return out, self.aux(x.mean((2, 3)))
        if how == "namedtuple" and self.training:  # torchvision's GoogLeNet (aux_logits=True) in training mode
            return Outputs(out, self.aux(x.mean((2, 3))))
        return out


Outputs = collections.namedtuple("Outputs", ["logits", "aux_logits"])


@pytest.mark.parametrize("how, says", [
    ("softmax", "a softmax of a gated layer's channels"),
    ("sigmoid", "sigmoid of a gated layer's channels (not 0 where a channel is masked) read by a layer"),
    ("twice", "a Conv2d called a second time"),
    ("widening groups", "a grouped convolution (2 groups, 16 in, 32 out)"),  # (a mutation audit: once built wrong)
    ("shared sigmoid", "a Sigmoid used in several places (not 0 where a channel is masked) read by a layer"),
    ("shuffle", "a view from shape (2, 16, 16, 16) to (2, 2, 8, 16, 16)"),
    ("split", "an indexing that selects channels"),
    ("option-A", "an operation that may move or reshape channels at node 'pad'"),
    ("gn", "a GroupNorm module at node 'gn' (call_module gn); its channels cannot be followed, so widths cannot be "
           "changed safely (a layer's channels are gated after a BatchNorm2d: use one in its place)"),  # (a way on)
    ("in-place", "a sum with a constant of a gated layer's channels (not 0 where a channel is masked) read by a layer"),
    ("training-only", "a sum with a constant of a gated layer's channels"),
    ("squeeze", "a squeeze that may drop the channels"),
    ("prelu", "a PReLU module"),
    ("aux", "computes with other layers in training mode than in evaluation mode (as an auxiliary head does: aux"),
    ("tuple", "an output of tuple, not one tensor of class scores in training mode"),
    ("tuple", "(return the class scores alone)"),  # (a walkthrough: the way on)
    # was: "an operation that may move or reshape channels ... (call_function Outputs)"
    ("namedtuple", "an output of Outputs (several tensors, as with an auxiliary head: build the model without them), "
                   "not one tensor of class scores in training mode"),
    # (a mutation audit: each of these was refused by no test)
    ("layer scale", "a parameter used directly in forward at node 'gamma'"),
    ("spatial attention", "node 'mul' adds tensors of 16 and 1 channels"),
    ("own tensors", "a ScaledConv with its own tensors (gain)"),
    ("linear on a map", "a linear layer on channels that are not flattened"),
    ("sigmoid of a concatenation", "a Sigmoid of a gated layer's channels (not 0 where a channel is masked) read by"),
    # (a walkthrough: neither message said the concatenation was why, and the guide listed neither as refused)
    ("depthwise of a concatenation", "a grouped convolution (32 groups, 32 in, 32 out) of a concatenation (2 layers' "
                                     "channels: a grouped or depthwise convolution is followed on one layer's)"),
    ("scale of a concatenation", "an elementwise operation on differently laid out channels (a concatenation of 2 "
                                 "layers' channels with 1 layer's: only operands laid out alike are followed)"),
    ("flatten from 0", "a flatten from dimension 0"),
    ("module flatten from 0", "a flatten of a tensor without channels"),  # (not the vector's unchanged flatten)
    ("mean over channels", "a reduction over the channels"),
    ("squeeze(1)", "a squeeze that may drop the channels"),
    ("flat to a map", "a view from shape (2, 64) to (2, 64, 1, 1)"),
    ("cat along the batch", "a concatenation along dimension 0"),
    ("training-mode view", "a model rebuilt at other widths does not run in training mode"),
    ("concatenated scores", "an output concatenated from 2 tensors' channels"),  # was: "of 10 channels for 10 classes"
])
def test_what_cannot_be_followed_is_refused_in_one_line(how, says):
    """Before, a module called twice passed and built models that failed (its two uses were given other widths),
    and an auxiliary head used only in training passed and failed in the trainer with a traceback."""
    with pytest.raises(NeuralscaleError) as e:
        ns.space(Refused(how), torch.randn(2, 3, 16, 16))
    assert says in str(e.value) and "\n" not in str(e.value), str(e.value)


def test_a_model_in_float64_is_analysed_and_built_in_float32():
    model = ShortcutWithoutNorm().double()
    sp = ns.space(model, X.double())
    built = sp.build(list(sp.base_widths))
    assert all(p.dtype == torch.float32 for p in built.parameters())
    assert built(torch.randn(2, 3, 16, 16)).shape == (2, 10)


class Strided(nn.Module):
    def __init__(self, stride: int, act=F.relu):
        super().__init__()
        self.c, self.b, self.fc = nn.Conv2d(3, 8, 3, stride, 1), nn.BatchNorm2d(8), nn.Linear(8, 10)
        self.act = act

    def forward(self, x):
        return self.fc(self.act(self.b(self.c(x))).mean((2, 3)))


def test_an_edited_model_is_not_taken_for_the_run_of_the_one_before(tmp_path):
    """A model edited so that its parameters stay (a stride changed) has the same name and widths: its run had the
    same id, so `train` into the same folder returned the old record (with the old MACs) without training. Its
    space's architecture (a digest of its traced code and modules) is now part of the run's identity."""
    one, two = ns.space(Strided(1), X), ns.space(Strided(2), X)
    assert one.name == two.name and one.params(one.base_widths) == two.params(two.base_widths)
    assert one.architecture != two.architecture and one.architecture == ns.space(Strided(1), X).architecture
    # an edit to forward alone (the same modules) is another architecture too (a mutation audit: the digest of the
    # modules alone passed)
    assert ns.space(Strided(1, F.gelu), X).architecture not in (one.architecture, None)
    assert ns.space("vgg11", "cifar10").architecture is None  # a named model: its name says what it computes
    splits = ns.data.load("synthetic", synthetic=dict(num_train=16, num_test=8, size=16)).split(0.25, 0)
    cfg = ns.TrainConfig(epochs=1, batch_size=8, device="cpu", augment=False)
    first = ns.train(one, "synthetic", ratio=1.0, config=cfg, splits=splits, out_dir=tmp_path / "run", progress=False)
    assert first["spec"]["architecture"] == one.architecture
    with pytest.raises(NeuralscaleError, match="holds another run .*; the model's code or modules changed since.*force"):
        ns.train(two, "synthetic", ratio=1.0, config=cfg, splits=splits, out_dir=tmp_path / "run", progress=False)
    from neuralscale.zoo import record_space
    with pytest.raises(NeuralscaleError, match="its code or modules differ"):
        record_space(first, given=two)
    assert record_space(first, given=one) is one


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.c, self.b = nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16)
        self.c2, self.b2 = nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32)
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        x = F.relu(self.b2(self.c2(F.relu(self.b(self.c(x))))))
        return self.fc(x.mean((2, 3)))


def test_a_budget_whole_channels_cannot_meet_closely_is_said_to_be_missed():
    """A small model's widths move the parameters in steps coarser than the solver's 0.5%: half of this one is
    1.7% away at the nearest configuration, which was returned without a word. A model whose steps are fine
    (VGG11) meets its budget and says nothing."""
    sp = ns.space(Tiny(), X)
    missed = r"the nearest configuration is \+1\.7% from the budget \(2,804 parameters\)"
    with pytest.warns(ns.NeuralscaleWarning, match=missed):
        res = ns.scale(sp, "uniform", "50%")
    assert abs(res["rel_error"]) > 0.005 and res["warnings"]
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not ns.scale(ns.space("vgg11", "cifar10"), "uniform", "25%")["warnings"]


def test_a_named_models_records_are_as_before():
    """The architecture digest is for models of your own only: a named model's spec has no such field, so records
    written before it keep their ids (and new ones read in older versions)."""
    import json
    from pathlib import Path

    from neuralscale.spec import RunSpec
    runs = Path(__file__).resolve().parents[1] / "studies" / "fmnist-vgg11" / "params" / "runs"
    record = json.loads(next(iter(sorted(runs.glob("*/record.json")))).read_text())
    spec = RunSpec.from_dict(record["spec"])
    assert spec.id == record["id"] and "architecture" not in spec.to_dict()


def test_a_model_too_large_for_the_images_is_one_line_and_nothing_printed(capfd):
    """The shapes are found by a meta run of the traced graph; torch.fx's ShapeProp printed a whole traceback to
    stderr before the error it raised."""
    with pytest.raises(NeuralscaleError, match="32x32 images are too small for torchvision:alexnet"):
        ns.space("torchvision:alexnet", "fashionmnist")
    out, err = capfd.readouterr()
    assert not out and not err


class DropPath(nn.Module):
    """Stochastic depth as timm writes it: whole samples of a residual branch zeroed in training."""

    def __init__(self, p: float = 0.2):
        super().__init__()
        self.p = p

    def forward(self, x):
        if not self.training:
            return x
        keep = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(1 - self.p)
        return x * keep / (1 - self.p)


class WithDropPath(ShortcutWithoutNorm):
    def __init__(self):
        super().__init__()
        self.drop = DropPath()

    def forward(self, x):
        x = F.relu(self.b(self.c(x)))
        out = F.relu(self.drop(self.b2(self.c2(F.relu(self.b1(self.c1(x)))))) + self.sc(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(out, 1), 1))


def test_stochastic_depth_is_followed_in_training_mode():
    """Once the training-mode graph was analysed too, timm's drop_path (new_empty, bernoulli_) was refused as an
    operation that may move channels, and with it every timm model made with drop_path_rate > 0."""
    sp = ns.space(WithDropPath(), X)
    assert sp.layer_names == ns.space(ShortcutWithoutNorm(), X).layer_names
    sp.build(list(sp.base_widths)).train()(torch.randn(2, 3, 16, 16)).sum().backward()


def test_a_law_of_a_space_made_from_a_tensor_says_how_to_use_it():
    """A law fitted on a space made from an example input is recorded for dataset 'custom'; the same model's space
    made from the dataset's name was refused without a word on why."""
    from neuralscale.scaling import ScalingLaw
    one = ns.space(Tiny(), X)
    law = ScalingLaw(one.name, one.info.name, list(one.layer_names), [1.0] * len(one), [0.5] * len(one))
    law.check_space(one)
    other = ns.space(Tiny(), ns.data.dataset_info("synthetic"))
    with pytest.raises(NeuralscaleError, match="a space made from an example tensor is 'custom'"):
        law.check_space(other)


class ViewedMap(nn.Module):
    """`x.view(x.size(0), -1)` of a 4x4 map, wide enough for the CPU trainer's channels-last rule: a view cannot
    flatten a channels-last map, and training it ended in torch's RuntimeError (a traceback) at the first batch."""

    def __init__(self):
        super().__init__()
        self.c1, self.b1 = nn.Conv2d(3, 32, 3, padding=1), nn.BatchNorm2d(32)
        self.c2, self.b2 = nn.Conv2d(32, 48, 3, padding=1), nn.BatchNorm2d(48)
        self.fc = nn.Linear(48 * 4 * 4, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.b1(self.c1(x))), 2)
        x = F.max_pool2d(F.relu(self.b2(self.c2(x))), 2)
        return self.fc(x.view(x.size(0), -1))


def test_a_model_that_views_a_map_trains_in_nchw(tmp_path):
    from neuralscale.train import cpu_channels_last
    sp = ns.space(ViewedMap(), torch.randn(2, 3, 16, 16))
    assert cpu_channels_last(list(sp.base_widths))  # the layout the trainer would pick for it
    splits = ns.data.load("synthetic", synthetic=dict(num_train=16, num_test=8, size=16)).split(0.25, 0)
    cfg = ns.TrainConfig(epochs=1, batch_size=8, device="cpu", augment=False)
    record = ns.train(sp, "synthetic", ratio=1.0, config=cfg, splits=splits, out_dir=tmp_path / "run", progress=False)
    assert record["status"] == "finished"
    tiny = ns.space(Tiny(), X)
    assert not getattr(tiny.build(list(tiny.base_widths)), "ns_nchw_only", False)  # a mean((2, 3)): channels-last is fine
