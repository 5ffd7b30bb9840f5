"""Width spaces build the original's networks: exact parameter counts and MACs."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
import numpy as np
import torch

import neuralscale as ns
from neuralscale import accounting
from neuralscale.errors import NeuralscaleError
from neuralscale.models.gate import gates
from neuralscale.reference import rows
from neuralscale.space import WidthSpace

CONFIGS = rows("paper_configs.csv")
RESULTS = {(r["model"], r["dataset"], r["ratio"], r["method"]): r for r in rows("paper_results.csv")}


@functools.cache
def _space_of(model: str, dataset: str, convcut: bool):
    """One space per model, dataset and shortcut kind for the 168 configurations, which only read it: each then
    costs one meta build of its widths (the space's output positions, which do not depend on widths, are found
    once per space), not a new space's builds and forward passes on top (a tenth of the time)."""
    return ns.space(model, dataset, convcut=convcut)


def _space(row):
    return _space_of(row["model"], row["dataset"], row["method"].endswith("convcut"))


SHARED = Path(__file__).resolve().parents[2] / "shared" / "reference"


@pytest.mark.skipif(not SHARED.exists(), reason="shared/reference not present")
@pytest.mark.parametrize("name", ["paper_configs.csv", "paper_results.csv"])
def test_the_packaged_paper_tables_are_the_references(name):
    """The package ships the reference's paper tables (neuralscale.reference) for the tests and reports to read
    where shared/ is absent: the copies are the reference's bytes."""
    from importlib import resources
    assert resources.files("neuralscale.reference").joinpath(name).read_bytes() == (SHARED / name).read_bytes()


@pytest.mark.parametrize("row", CONFIGS, ids=lambda r: f"{r['model']}-{r['dataset']}-{r['ratio']}-{r['method']}")
def test_every_paper_configuration_has_the_reference_params_and_macs(row):
    sp = _space(row)
    widths = [int(w) for w in row["widths"].split()]
    assert sp.params(widths) == int(row["params"])
    ref = RESULTS[(row["model"], row["dataset"], row["ratio"], row["method"])]
    assert abs(sp.macs(widths) / 1e6 - float(ref["macs_per_image_millions"])) <= 0.005 + 1e-9


@pytest.mark.parametrize("model,dataset,ratio,params", [
    ("vgg11", "cifar100", 1.0, 9_277_284), ("vgg11", "cifar100", 0.25, 591_396), ("vgg11", "cifar10", 1.0, 9_231_114),
    ("resnet18", "cifar100", 1.0, 11_218_340), ("resnet18", "cifar100", 0.25, 712_628),
    ("resnet18", "tinyimagenet", 1.0, 11_273_736),
    ("mobilenetv2", "cifar100", 1.0, 2_448_700), ("mobilenetv2", "cifar100", 0.25, 199_354),
])
def test_uniform_ratio_gives_the_readme_counts(model, dataset, ratio, params):
    sp = ns.space(model, dataset)
    assert sp.params(sp.uniform(ratio)) == params


def test_vgg_macs_by_hand():
    # conv MACs = H*W*cout*cin*9 at each resolution, plus the classifier
    sp = ns.space("vgg11", "cifar10")
    w = [16, 32, 64, 64, 128, 128, 128, 128]
    sizes = [32, 16, 8, 8, 4, 4, 2, 2]
    cin = [3] + w[:-1]
    expected = sum(s * s * co * ci * 9 for s, co, ci in zip(sizes, w, cin)) + 128 * 10
    assert sp.macs(w) == expected == 9_880_832


def test_vgg_costs_by_formula_are_what_a_built_model_counts():
    """The zoo's VGG11 counts parameters and MACs by formula (models/vgg.costs): the same as counting a built
    model, at uneven widths, odd image sides (pools round down) and other input channels and classes."""
    from neuralscale.models import vgg
    rng = torch.Generator().manual_seed(0)
    for side, in_channels, classes in ((32, 3, 10), (33, 1, 10), (47, 3, 200), (64, 3, 200), (96, 1, 7)):
        for _ in range(3):
            widths = [int(w) for w in torch.randint(1, 90, (8,), generator=rng)]
            net = vgg.VGG11(widths, classes, in_channels)
            counted = accounting.count_params(net), accounting.count_macs(net, (in_channels, side, side))
            assert vgg.costs(widths, classes, in_channels, side) == counted, (side, widths)


def test_resnet_costs_by_formula_are_what_a_built_model_counts():
    """The zoo's ResNet18 counts parameters and MACs by formula (models/resnet.costs): the same as counting a built
    model, at uneven widths (equal and unequal block widths: shortcuts or none), odd image sides, both first
    strides and the all-convolution shortcuts."""
    from neuralscale.models import resnet
    rng = torch.Generator().manual_seed(0)
    for side, in_channels, classes, first_stride, convcut in ((32, 3, 10, 1, False), (33, 1, 10, 1, True),
                                                              (64, 3, 200, 2, False), (65, 3, 7, 2, True),
                                                              (20, 1, 10, 1, False)):
        for trial in range(3):
            widths = [int(w) for w in torch.randint(1, 40, (17,), generator=rng)]
            if trial == 0:  # blocks that keep their width: no projection unless strided or convcut
                widths = [widths[0] if i % 2 == 0 else w for i, w in enumerate(widths)]
            net = resnet.PreActResNet18(widths, classes, in_channels, first_stride, convcut)
            counted = accounting.count_params(net), accounting.count_macs(net, (in_channels, side, side))
            assert resnet.costs(widths, classes, in_channels, side, first_stride, convcut) == counted, (side, widths)


def test_mobilenetv2_costs_by_formula_are_what_a_built_model_counts():
    """The zoo's MobileNetV2 counts parameters and MACs by formula (models/mobilenetv2.costs): the same as counting
    a built model, at uneven widths (blocks that keep their width and ones that do not), odd image sides, small
    and large inputs and the all-convolution shortcuts."""
    from neuralscale.models import mobilenetv2
    rng = torch.Generator().manual_seed(0)
    for side, in_channels, classes, large, convcut in ((32, 3, 10, False, False), (33, 1, 10, False, True),
                                                       (64, 3, 200, True, False), (65, 3, 7, True, True),
                                                       (20, 1, 10, False, False)):
        for trial in range(3):
            widths = [int(w) for w in torch.randint(1, 30, (19,), generator=rng)]
            if trial == 0:  # every block keeps its width: a shortcut only where it strides (or convcut)
                widths = [widths[0]] * 18 + [widths[18]]
            net = mobilenetv2.MobileNetV2(widths, classes, in_channels, large, convcut)
            counted = accounting.count_params(net), accounting.count_macs(net, (in_channels, side, side))
            assert mobilenetv2.costs(widths, classes, in_channels, side, large, convcut) == counted, (side, widths)


@pytest.mark.parametrize("model", ["vgg11", "resnet18", "mobilenetv2"])
@pytest.mark.parametrize("dataset", ["cifar10", "tinyimagenet", "fashionmnist"])
def test_real_build_matches_meta_counts_and_runs(model, dataset):
    sp = ns.space(model, dataset)
    widths = [max(1, w // 8) + i % 3 for i, w in enumerate(sp.base_widths)]  # uneven, small
    torch.manual_seed(0)
    net = sp.build(widths)
    assert accounting.count_params(net) == sp.params(widths)
    assert accounting.count_macs(net, sp.info.input_shape) == sp.macs(widths)
    assert next(net.parameters()).device.type == "cpu"  # counting did not move the model
    x = torch.randn(2, *sp.info.input_shape)
    out = net(x)
    assert out.shape == (2, sp.info.num_classes)
    out.sum().backward()
    g = gates(net)
    assert [gate.index for gate in g] == list(range(len(sp)))
    assert [gate.width for gate in g] == widths


@pytest.mark.parametrize("model", ["vgg11", "resnet18", "mobilenetv2"])
def test_a_meta_build_skips_initialisers_and_leaves_them_as_they_were(model):
    """The solver's meta builds skip torch.nn.init (nothing to fill) and put every initialiser back, even when
    the build fails: a model built afterwards is initialised as before."""
    sp = ns.space(model, "cifar10")
    widths = sp.uniform(0.25)
    before = {name: getattr(torch.nn.init, name) for name in dir(torch.nn.init)}
    calls = []  # a spy on the initialisers of convolutions (the originals' own, and torch's default)
    real = {n: getattr(torch.nn.init, n) for n in ("kaiming_normal_", "kaiming_uniform_")}
    for n, f in real.items():
        setattr(torch.nn.init, n, lambda t, *a, f=f, **k: calls.append(1) or f(t, *a, **k))
    try:
        spied = {name: getattr(torch.nn.init, name) for name in dir(torch.nn.init)}
        meta = sp.build(widths, device="meta")
        assert calls == [] and {n: getattr(torch.nn.init, n) for n in dir(torch.nn.init)} == spied
        torch.manual_seed(0)
        cpu = sp.build(widths)
        assert calls, "a real build initialises its convolutions again"
    finally:
        for n, f in real.items():
            setattr(torch.nn.init, n, f)
    assert {n: getattr(torch.nn.init, n) for n in dir(torch.nn.init)} == before
    assert [(n, p.shape) for n, p in meta.named_parameters()] == [(n, p.shape) for n, p in cpu.named_parameters()]
    assert all(p.device.type == "meta" for p in meta.parameters())

    def fails(widths):
        torch.nn.init.zeros_(torch.empty(1))
        raise RuntimeError("this model cannot be built")
    with pytest.raises(RuntimeError, match="cannot be built"):
        WidthSpace("fails", sp.layer_names, sp.base_widths, sp.info, fails).build(widths, device="meta")
    assert {n: getattr(torch.nn.init, n) for n in dir(torch.nn.init)} == before


def test_gates_hold_no_parameters_and_are_identity():
    sp = ns.space("vgg11", "cifar10")
    net = sp.build(sp.uniform(0.125))
    g = gates(net)[0]
    assert list(g.parameters()) == []
    x = torch.randn(2, g.width, 4, 4)
    assert torch.equal(g(x), x)
    g.ones = torch.full((g.width,), 2.0)
    assert torch.allclose(g(x), 2 * x)




def test_a_models_gates_are_listed_in_width_space_order_whatever_their_module_order():
    """A model's gates come in the order of its layers in the width space, not of its modules: a generic model
    registers a gate inside the module it follows, so module order need not be layer order (a mutation audit:
    unsorted passed, the zoo's models building their gates in order)."""
    from neuralscale.models.gate import Gate, gate_widths
    model = torch.nn.Sequential(Gate(2, 5), Gate(0, 3), torch.nn.Sequential(Gate(1, 4)))
    assert [g.index for g in gates(model)] == [0, 1, 2]
    assert list(gate_widths(model).items()) == [(0, 3), (1, 4), (2, 5)]


def test_segment_gates_mask_each_layers_segment_and_leave_the_images_channels():
    """A batch norm reading a concatenation of the image (3 fixed channels) and two gated layers: each layer's
    segment is multiplied by its own gate, the image's by 1 (a mutation audit: zeros there passed every test)."""
    from neuralscale.models.gate import Gate, SegmentGates
    a, b = Gate(0, 2), Gate(1, 4)
    seg = SegmentGates([a, 3, b])
    x = torch.randn(2, 9, 4, 4)
    assert torch.equal(seg(x), x)  # no gate scoring: the identity
    b.ones = torch.tensor([1.0, 0.0, 1.0, 0.0])  # only b is scoring; a's segment and the image's stay
    want = torch.tensor([1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 1.0, 0.0]).view(1, 9, 1, 1)
    assert torch.equal(seg(x), x * want)
    a.ones = torch.tensor([0.0, 3.0])
    want = torch.tensor([0.0, 3.0, 1.0, 1.0, 1.0, 1.0, 0.0, 1.0, 0.0]).view(1, 9, 1, 1)
    assert torch.equal(seg(x), x * want)


def test_resizing_a_module_keeps_what_its_tensors_were_apart_from_their_shape():
    """A pruning step resizes layers in place: a frozen parameter stays frozen, a float64 one float64, a tensor of
    the right shape keeps its values, and one left on meta by an earlier resize is made again (a mutation audit:
    a frozen parameter made trainable, the dtype dropped, and a meta tensor kept all passed)."""
    from neuralscale.models.resizing import resize_tensors
    conv = torch.nn.Conv2d(4, 6, 3).double()
    conv.bias.requires_grad_(False)
    bn = torch.nn.BatchNorm2d(6)
    kept = bn.running_var
    resize_tensors(conv, weight=(5, 4, 3, 3), bias=(5,))
    assert conv.weight.is_meta and conv.weight.shape == (5, 4, 3, 3) and conv.weight.dtype == torch.float64
    assert conv.weight.requires_grad and not conv.bias.requires_grad and conv.bias.dtype == torch.float64
    resize_tensors(bn, running_mean=(4,), running_var=(6,))
    assert bn.running_mean.is_meta and bn.running_mean.shape == (4,) and bn.running_var is kept
    meta_weight, meta_mean = conv.weight, bn.running_mean
    resize_tensors(conv, weight=(5, 4, 3, 3))  # the right shape but on meta: a new tensor for the caller to fill
    assert conv.weight is not meta_weight and conv.weight.is_meta and conv.weight.shape == (5, 4, 3, 3)
    resize_tensors(bn, running_mean=(4,))
    assert bn.running_mean is not meta_mean and bn.running_mean.is_meta and bn.running_mean.shape == (4,)



@pytest.mark.parametrize("model", ["vgg11", "resnet18", "mobilenetv2", "resnet18-convcut", "torchvision:resnet18",
                                   "torchvision:mobilenet_v2"])
def test_a_gate_knows_the_batch_norm_whose_output_it_multiplies_and_no_other(model):
    """A gate's `source` is the affine batch norm whose output it multiplies, read by the pruner's fast path
    (dLoss/dgate from that norm's own gradients): a wrong one scores a layer with another's gradients, a missing
    one only costs time. Checked on a forward pass, gate by gate (a mutation audit: ResNet18's and MobileNetV2's
    wiring could change unnoticed)."""
    sp = ns.space(model, "cifar10")
    net = sp.build(sp.uniform(0.125))
    outputs, fed = {}, {}
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            # (the output kept alive with its norm, so that no later tensor takes its id; before a generic model's
            # gate, called from a hook of the norm's own)
            m.register_forward_hook(lambda mod, args, out: outputs.__setitem__(id(out), (mod, out)), prepend=True)
    for g in gates(net):
        g.register_forward_pre_hook(lambda mod, args: fed.__setitem__(mod, outputs.get(id(args[0]), (None,))[0]))
    net.eval()(torch.randn(2, 3, 32, 32))
    assert len(fed) == len(gates(net)) and all(g.source is fed[g] for g in gates(net))
    paper = {"vgg11": 8, "mobilenetv2": 2, "resnet18": 17, "resnet18-convcut": 17}
    assert sum(g.source is not None for g in gates(net)) == paper.get(model, len(gates(net)))


def test_stride_and_shortcut_rules():
    cifar = ns.space("resnet18", "cifar100").build(ns.space("resnet18", "cifar100").uniform(0.25))
    tiny = ns.space("resnet18", "tinyimagenet").build(ns.space("resnet18", "tinyimagenet").uniform(0.25))
    assert cifar.blocks[0].shortcut is None and tiny.blocks[0].shortcut is not None  # first stage strides at 64x64
    sp = ns.space("resnet18", "cifar100")
    w = sp.uniform(0.25)
    w[2] = 20  # block 1's output differs from its input: a projection appears
    assert sp.build(w).blocks[0].shortcut is not None
    conv = ns.space("resnet18", "cifar100", convcut=True).build(sp.uniform(0.25))
    assert all(b.shortcut is not None for b in conv.blocks)
    mb = ns.space("mobilenetv2", "cifar100")
    net = mb.build(mb.uniform(0.25))
    assert net.blocks[0].residual[0].out_channels == 8 * 1  # block 1: expansion 1
    assert net.blocks[1].residual[0].out_channels == 4 * 6  # later blocks: 6x the input


def test_fashion_mnist_has_one_input_channel():
    sp = ns.space("vgg11", "fashionmnist")
    assert sp.info.input_shape == (1, 32, 32)
    assert sp.build(sp.uniform(0.25)).features[0].in_channels == 1


def test_ratio_truncates_like_the_original():
    sp = ns.space("mobilenetv2", "cifar100")
    assert sp.uniform(0.25)[:4] == [8, 4, 6, 6]
    assert sp.uniform(0.001) == [1] * len(sp)  # never below one channel


@pytest.mark.parametrize("bad", [
    lambda: ns.space("vgg13", "cifar10"),
    lambda: ns.space("vgg11", "imagenet"),
    lambda: ns.space("vgg11", "cifar10").uniform(-0.5),
    lambda: ns.space("vgg11", "cifar10").uniform(0),
    lambda: ns.space("vgg11", "cifar10").params([8] * 7),
    lambda: ns.space("vgg11", "cifar10").params([8] * 7 + [0]),
    lambda: ns.space("vgg11", "cifar10").params([8] * 7 + [2.5]),
    lambda: ns.space("vgg11", "cifar10", convcut=True),
])
def test_bad_spaces_and_widths_are_clear_errors(bad):
    with pytest.raises(NeuralscaleError):
        bad()


def test_latency_measurement_reports_median_and_spread():
    sp = ns.space("vgg11", "cifar10")
    lat = accounting.measure_latency(sp.build(sp.uniform(0.125)), sp.info.input_shape, "cpu",
                                     batch_sizes=(1, 8), warmup=1, repeats=5)
    assert set(lat["batches"]) == {"1", "8"}
    for m in lat["batches"].values():
        assert 0 < m["p10_ms"] <= m["median_ms"] <= m["p90_ms"]
        assert m["iqr_ms"] >= 0 and m["repeats"] == 5
    assert lat["batches"]["8"]["per_image_ms"] == pytest.approx(lat["batches"]["8"]["median_ms"] / 8)


def _timed(monkeypatch, seconds) -> torch.nn.Module:
    """An identity module whose calls take `seconds` (one per call, in order) on a clock the test keeps, which the
    latency measurement reads."""
    clock, took = [0.0], iter(seconds)

    class Timed(torch.nn.Module):
        def forward(self, x):
            clock[0] += next(took)
            return x
    monkeypatch.setattr(accounting.time, "perf_counter", lambda: clock[0])
    return Timed()


def test_latency_quantiles_are_those_of_the_timed_calls(monkeypatch):
    """Timed calls of 1, 2, ..., 20 ms on a clock the test keeps (warm-up calls take 100 ms, and are not counted):
    the median, p10, p90 and interquartile range of 1..20 by the inclusive method (a mutation audit: p90 read off
    the wrong quantile and the IQR off the wrong quartiles both passed)."""
    import statistics
    timed = _timed(monkeypatch, [0.1] * 3 + [k / 1000 for k in range(1, 21)])
    m = accounting.measure_latency(timed, (1, 4, 4), "cpu", batch_sizes=(1,), warmup=3, repeats=20)["batches"]["1"]
    ms = list(range(1, 21))
    assert m["median_ms"] == pytest.approx(statistics.median(ms)) == pytest.approx(10.5)
    assert m["p10_ms"] == pytest.approx(2.9) and m["p90_ms"] == pytest.approx(18.1)
    assert m["iqr_ms"] == pytest.approx(15.25 - 5.75) and m["unstable"] is True  # 9.5 against 10.5


def test_a_latency_with_a_large_spread_is_flagged_unstable():
    """A measurement disturbed as a busy machine disturbs it (calls alternately fast and slow, by sleeping, whose
    overshoot only slows a call): its interquartile range dwarfs its median, and it says so."""
    import time
    from torch import nn

    class Jittery(nn.Module):
        calls = 0

        def forward(self, x):
            Jittery.calls += 1
            time.sleep(0.001 if Jittery.calls % 2 else 0.04)
            return x
    m = accounting.measure_latency(Jittery(), (1, 4, 4), "cpu", batch_sizes=(1,), warmup=2, repeats=20)["batches"]["1"]
    assert m["unstable"] and m["iqr_ms"] > accounting.UNSTABLE * m["median_ms"]
    assert not accounting.unstable(10.0, 1.0) and accounting.unstable(10.0, 2.5)
    assert not accounting.unstable(10.0, 2.0) and accounting.unstable(10.0, 2.001)  # above a fifth, not at it


def test_the_counts_of_layers_the_paper_families_do_not_have():
    """A mutation audit of accounting.py: a frozen parameter, a kernel that is not square, a Linear layer applied at
    several positions, the positions kept for the next count, and a meta model's mode and hooks left as they were
    all passed the tests when changed (the paper's families have square kernels and one classifier position)."""
    import copy
    from torch import nn
    net = nn.Sequential(nn.Conv2d(2, 4, (1, 3), padding=(0, 1)), nn.Flatten(2), nn.Linear(36, 5))
    net[0].weight.requires_grad_(False)  # frozen: still a parameter of the model
    assert accounting.count_params(net) == 4 * 2 * 1 * 3 + 4 + 36 * 5 + 5
    positions: dict = {}
    # the conv: 6x6 positions, 4 channels, 1x3 kernel on 2 inputs; the Linear: one position per conv channel
    assert accounting.count_macs(net, (2, 6, 6), positions) == 36 * 4 * 3 * 2 + 4 * 5 * 36
    assert positions == {"0": 36, "2": 4}  # kept for the next count
    meta = copy.deepcopy(net).to("meta").eval()
    assert accounting.count_macs(meta, (2, 6, 6)) == 36 * 4 * 3 * 2 + 4 * 5 * 36
    assert not meta.training and not any(m._forward_hooks for m in meta.modules())


def test_a_latency_on_the_cpu_names_the_cpu_and_an_allocation_that_fails_is_one_error(monkeypatch):
    """The CPU's measurement is not in channels_last unless asked, names the CPU's model (the `model name` line of
    /proc/cpuinfo, not the `model` number above it) and its threads; a failed allocation is one clear error, any
    other error stays what it is; two timed calls give the quantiles of the two (a mutation audit)."""
    import io
    import platform
    from torch import nn
    lat = accounting.measure_latency(nn.Identity(), (1, 2, 2), "cpu", batch_sizes=(1,), warmup=0, repeats=3)
    assert lat["channels_last"] is False and lat["device"].endswith(f", {torch.get_num_threads()} threads)")
    cpuinfo = "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel\t\t: 85\nmodel name\t: Intel(R) Xeon(R) Gold\n"
    monkeypatch.setattr(accounting, "open", lambda *a, **k: io.StringIO(cpuinfo), raising=False)
    assert accounting._cpu_model() == "Intel(R) Xeon(R) Gold"

    def unreadable(*a, **k):
        raise OSError("no /proc here")
    monkeypatch.setattr(accounting, "open", unreadable, raising=False)
    assert accounting._cpu_model() == (platform.processor() or platform.machine())

    class Fails(nn.Module):
        def __init__(self, error):
            super().__init__()
            self.error = error

        def forward(self, x):
            raise self.error
    for error in (MemoryError(), RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate")):
        with pytest.raises(NeuralscaleError, match=r"latency at batch 4 of 1x2x2 inputs does not fit in cpu's memory"):
            accounting.measure_latency(Fails(error), (1, 2, 2), "cpu", batch_sizes=(1, 4), warmup=0, repeats=2)
    with pytest.raises(RuntimeError, match="a bug of ours"):
        accounting.measure_latency(Fails(RuntimeError("a bug of ours")), (1, 2, 2), "cpu", batch_sizes=(1,))
    m = accounting.measure_latency(_timed(monkeypatch, [0.001, 0.003]), (1, 2, 2), "cpu", batch_sizes=(1,), warmup=0, repeats=2)["batches"]["1"]
    assert m["median_ms"] == pytest.approx(2.0) and m["p10_ms"] == pytest.approx(1.2)
    assert m["p90_ms"] == pytest.approx(2.8) and m["iqr_ms"] == pytest.approx(1.0)


def test_widths_are_checked_wherever_a_space_takes_them():
    """A mutation audit: a string of digits (one width a character), True, an uneven start for a descent and
    widths for an in-place resize all passed where a space takes widths, as did lists of unequal length."""
    sp = ns.space("vgg11", "synthetic")
    for bad, says in (("12345678", "not str"), ([True] + [8] * 7, "is not an integer: True"),
                      ([8] * 7 + [70000], "between 1 and"),
                      # a NumPy or torch number of a fraction was truncated (3.5 to 3), a string of digits read as one
                      # (an adversarial pass)
                      ([np.float32(3.5)] + [8] * 7, "is not an integer: 3.5"),
                      ([torch.tensor(3.75)] + [8] * 7, "is not an integer: 3.75"),
                      (["8"] * 8, "is not an integer: '8'"), ([np.bool_(True)] + [8] * 7, "is not an integer: True"),
                      ([torch.tensor([8])] + [8] * 7, "is not an integer: tensor")):
        with pytest.raises(NeuralscaleError, match=says):
            sp.validate(bad)
        with pytest.raises(NeuralscaleError, match=says):
            sp.rebased(bad)
        with pytest.raises(NeuralscaleError, match=says):
            sp.resize(sp.build([8] * 8, device="meta"), bad)
    with pytest.raises(ValueError, match="differ in length"):
        WidthSpace("short", sp.layer_names, sp.base_widths[:-1], sp.info, sp._make)
    assert sp.validate([np.int64(8), np.float64(16.0), torch.tensor(8), 8.0] + [8] * 4) == [8, 16, 8, 8] + [8] * 4


def test_a_rebased_space_is_the_same_model_and_truncates_as_the_original():
    """A narrower start keeps what the space is (a model of your own: its architecture digest, so that its runs
    keep their identity); uniform ratios truncate (int(64 * 0.4) is 25, not 26)."""
    from torch import nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.c, self.b, self.fc = nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.Linear(8, 10)

        def forward(self, x):
            return self.fc(torch.relu(self.b(self.c(x))).mean((2, 3)))
    mine = ns.space(Net(), torch.zeros(1, 3, 8, 8))
    assert mine.own_architecture() == {"architecture": mine.architecture} and len(mine.architecture) == 10
    assert mine.rebased([4]).own_architecture() == mine.own_architecture()
    assert ns.space("vgg11", "synthetic").own_architecture() == {}
    vgg = ns.space("vgg11", "synthetic")
    assert vgg.uniform(0.4) == [25, 51, 102, 102, 204, 204, 204, 204]


def test_the_parameter_count_a_law_is_fitted_against_is_named():
    """`original` needs the original's formula (the all-convolution shortcuts have none); any other name is an
    error, not the exact count."""
    sp = ns.space("resnet18", "cifar10")
    w = sp.uniform(0.25)
    assert sp.tau(w) == sp.params(w) and sp.tau(w, "original") > 0
    with pytest.raises(NeuralscaleError, match="unknown parameter count 'exat'"):
        sp.tau(w, "exat")
    with pytest.raises(NeuralscaleError, match="no original parameter formula"):
        ns.space("resnet18-convcut", "cifar10").tau(w, "original")


def test_describe_gives_the_shares_of_the_base_model():
    sp = ns.space("vgg11", "synthetic")
    w = sp.uniform(0.5)
    d = sp.describe(w)
    assert d["params_share"] == sp.params(w) / sp.params(sp.base_widths) < 0.3
    assert d["macs_share"] == sp.macs(w) / sp.macs(sp.base_widths) < 0.3


def test_counting_by_a_build_leaves_the_callers_random_stream_alone():
    """A space without a formula counts MACs from a CPU pass of a model it builds: a builder that draws random
    numbers itself (outside torch.nn.init) does not move the caller's stream."""
    from neuralscale.models import vgg
    info = ns.dataset_info("synthetic")

    def make(w):
        net = vgg.VGG11(w, info.num_classes, info.in_channels)
        torch.randn(3)  # a builder's own draw
        return net
    sp = WidthSpace("drawing", vgg.LAYER_NAMES, [8] * 8, info, make)
    torch.manual_seed(0)
    sp.macs([8] * 8)
    after = torch.rand(2)
    torch.manual_seed(0)
    assert torch.equal(after, torch.rand(2))


@pytest.mark.cuda
def test_a_build_on_cuda_is_there():
    """Every tensor of a model built for CUDA is on it, a paper family's and a generic one's (a mutation audit:
    building outside the device's context, which gives a CPU model, passed every test run without CUDA)."""
    for name in ("vgg11", "torchvision:resnet18"):
        sp = ns.space(name, "synthetic")
        model = sp.build(sp.uniform(0.125), device="cuda")
        assert all(t.is_cuda for t in [*model.parameters(), *model.buffers()]), name


@pytest.mark.skipif(torch.cuda.is_available(), reason="a machine with CUDA builds there")
def test_a_build_on_cuda_without_it_is_one_clear_error():
    from neuralscale.errors import EnvironmentFailure
    sp = ns.space("vgg11", "synthetic")
    with pytest.raises(EnvironmentFailure, match="no CUDA device is available"):
        sp.build([8] * 8, device="cuda")
    with pytest.raises(NeuralscaleError, match="unknown device 'tpu'"):
        sp.build([8] * 8, device="tpu")


def _init_std(weights) -> float:
    return torch.cat([w.flatten() for w in weights]).std().item()


def test_vgg11_is_the_originals_layer_by_layer_and_initialised_as_it():
    """Counts cannot tell a max-pool from an average one, or a pool before the classifier's average from none, nor
    the initialisation: the original's VGG11 is conv-BN-ReLU with a 2x2 max-pool after convolutions 1, 2, 4, 6 and
    8; Kaiming-normal (fan out) convolutions with zero bias, BN scales of 0.5 and zero shifts, and a classifier of
    std 0.01 with zero bias (a mutation audit)."""
    from torch import nn
    from neuralscale.models import vgg
    from neuralscale.models.gate import Gate
    torch.manual_seed(0)
    net = vgg.VGG11([64] * 8, 10)
    kinds = [type(m).__name__ for m in net.features]
    assert kinds == sum((["Conv2d", "BatchNorm2d", "Gate", "ReLU"] + (["MaxPool2d"] if i in (0, 1, 3, 5, 7) else [])
                         for i in range(8)), [])
    assert all((m.kernel_size, m.stride) == (2, 2) for m in net.features if isinstance(m, nn.MaxPool2d))
    assert all(g.source is net.features[i - 1] for i, g in enumerate(net.features) if isinstance(g, Gate))
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    norms = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    assert all(not c.bias.any() for c in convs) and all((n.weight == 0.5).all() and not n.bias.any() for n in norms)
    # fan out: the first convolution's std is sqrt(2 / (64 * 9)) = 0.059 (by its fan in, 27: 0.27)
    assert abs(_init_std([convs[0].weight]) - (2 / (64 * 9)) ** 0.5) < 0.01
    assert abs(_init_std([net.classifier.weight]) - 0.01) < 0.002 and not net.classifier.bias.any()


def test_resnet18_is_the_originals_pre_activation_network():
    """The original's PreActResNet18 forward, written out from its modules: a block's shortcut projects the
    pre-activated input (relu(bn1(x))) or passes x itself, a ReLU between the block's convolutions, the final BN
    straight into the pool (no ReLU); strides 2 at the first block of stages 2-4; Kaiming-normal (fan out) weights."""
    import torch.nn.functional as F
    from torch import nn
    from neuralscale.models import resnet
    torch.manual_seed(0)
    widths = [4, 4, 4, 5, 5, 6, 6, 6, 6, 7, 7, 7, 7, 8, 8, 8, 8]
    net = resnet.PreActResNet18(widths, 10).eval()
    for m in net.modules():  # statistics and shifts not at their defaults: every term counts
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            nn.init.uniform_(m.bias, -0.5, 0.5)
    assert [b.conv1.stride[0] for b in net.blocks] == [1, 1, 2, 1, 2, 1, 2, 1]
    assert [b.shortcut is not None for b in net.blocks] == [False, True, True, False, True, False, True, False]
    x = torch.randn(2, 3, 32, 32)
    out = net.conv1(x)
    for b in net.blocks:
        pre = F.relu(b.bn1(out))
        shortcut = b.shortcut(pre) if b.shortcut is not None else out
        out = b.conv2(F.relu(b.bn2(b.conv1(pre)))) + shortcut
    expected = net.linear(F.adaptive_avg_pool2d(net.bn_out(out), 1).flatten(1))
    with torch.no_grad():
        assert torch.allclose(net(x), expected, atol=1e-5)
    stem = resnet.PreActResNet18([64] * 17, 10).conv1.weight  # fan out 64 * 9: std 0.059 (by its fan in: 0.27)
    assert abs(_init_std([stem]) - (2 / (64 * 9)) ** 0.5) < 0.01


def test_mobilenetv2_is_the_originals_network():
    """The original's MobileNetV2 forward, written out from its modules: ReLU6 after the stem and the last 1x1
    convolution, each block's expansion (x1 for the first, x6 after), depthwise 3x3 and projection, the shortcut
    added before the block's gate; strides 2 at the first block of stages 2, 3, 4 and 6 (and 5 at 64x64 and up)."""
    import torch.nn.functional as F
    from torch import nn
    from neuralscale.models import mobilenetv2
    from neuralscale.models.gate import gates
    torch.manual_seed(0)
    widths = [4, 3, 4, 4, 5, 5, 5, 6, 6, 6, 6, 7, 7, 7, 8, 8, 8, 9, 12]
    net = mobilenetv2.MobileNetV2(widths, 10)
    assert [b.residual[3].stride[0] for b in net.blocks] == [1, 2, 1, 2, 1, 1, 2, 1, 1, 1, 1, 1, 1, 2, 1, 1, 1]
    large = mobilenetv2.MobileNetV2(widths, 10, large_input=True)
    assert [b.residual[3].stride[0] for b in large.blocks][10:14] == [2, 1, 1, 2]
    assert [b.residual[0].out_channels // b.residual[0].in_channels for b in net.blocks] == [1] + [6] * 16
    assert all(b.residual[3].groups == b.residual[3].in_channels for b in net.blocks)  # depthwise
    for g in gates(net):  # every gate scores (multiplies) from now on
        g.ones = torch.linspace(0.5, 1.5, g.width).requires_grad_(True)
    net.eval()
    x = torch.randn(2, 3, 32, 32) * 50  # large enough for ReLU6 to cut
    out = F.relu6(net.pre(x) * net.gate_pre.ones.view(1, -1, 1, 1))
    for b in net.blocks:
        out = (b.residual(out) + (b.shortcut(out) if b.shortcut is not None else out)) * b.gate.ones.view(1, -1, 1, 1)
    out = F.relu6(net.conv1(out) * net.gate_conv1.ones.view(1, -1, 1, 1))
    expected = net.conv2(F.adaptive_avg_pool2d(out, 1)).flatten(1)
    with torch.no_grad():
        assert torch.allclose(net(x), expected, atol=1e-5)
    assert isinstance(net.blocks[0].residual[2], nn.ReLU6)
