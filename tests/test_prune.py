"""Taylor-FO pruning: scores, physical shrinking equivalent to masking, floors, fallbacks."""

from __future__ import annotations

import pytest
import torch

import neuralscale as ns
from neuralscale.data import load
from neuralscale.models.gate import gates
from neuralscale.graph import ChannelGraph
from neuralscale.pruning import TaylorPruner
from neuralscale.train import Trainer, TrainConfig

from helpers import lockstep_pruning


def _splits(n=640, num_test=64):
    return load("synthetic", synthetic=dict(num_train=n, num_test=num_test)).split(0.1, 0)


def _run(space, widths, physical, dtype="float64", epochs=200, batch_size=8, **kw):
    """Prune while training on batches of 8 of 160 images (144 to train on): 18 batches an epoch, the epochs and
    steps that batches of 32 of 640 images gave, each batch a third of the work (what these tests check depends
    on the count of batches, epochs and steps, not on the size of a batch)."""
    torch.manual_seed(0)
    pr = TaylorPruner(space, widths, physical=physical, **kw)
    cfg = TrainConfig(epochs=epochs, batch_size=batch_size, lr=0.05, schedule="prune", warmup_epochs=1, dtype=dtype)
    tr = Trainer(space.build(widths), _splits(160, 16), cfg, callbacks=[pr], progress=False)
    tr.fit()
    return pr, tr


def test_physical_pruning_makes_the_same_decisions_as_masking():
    # Compared step by step from one state (see helpers.lockstep_pruning), so that the outcome does not depend
    # on how this host rounds: the scores agree to rounding, and so does every decided choice.
    sp = ns.space("vgg11", "synthetic")
    # batches of 8 (of 144 training images): the same 25 steps of 4 batches as batches of 32, at a third of the work
    results = lockstep_pruning(sp, sp.uniform(0.125), _splits(160, 16), steps=25, k=3, interval=4, lr=0.05,
                               batch_size=8)
    assert len(results) >= 20
    assert max(r["rel"] for r in results) < 1e-6
    assert all(r["same"] for r in results if r["decided"])
    assert sum(r["decided"] for r in results) >= 0.8 * len(results)


def test_physical_pruning_shrinks_the_network_and_its_optimizer_state():
    sp = ns.space("vgg11", "synthetic")
    w = sp.uniform(0.125)
    phys, tr_p = _run(sp, w, True, epochs=3, k=3, interval=4, warmup_epochs=1)
    assert phys.session.physical and not phys.session.notes and phys.session.pruning_steps >= 5
    assert [g.width for g in gates(tr_p.model)] == phys.session.all_rows[-1]  # physically smaller
    assert sum(p.numel() for p in tr_p.model.parameters()) == sp.params(phys.session.current)
    for p in tr_p.model.parameters():  # the shrunk optimizer state fits the shrunk parameters
        buf = tr_p.optimizer.state[p].get("momentum_buffer")
        assert buf is None or buf.shape == p.shape


def test_gate_gradient_is_the_taylor_quantity():
    sp = ns.space("vgg11", "synthetic")
    torch.manual_seed(0)
    net = sp.build(sp.uniform(0.125)).double()
    g = gates(net)[2]
    g.ones = torch.ones(g.width, dtype=torch.float64, requires_grad=True)
    acts = {}
    g.register_forward_hook(lambda m, i, o: acts.__setitem__("a", i[0]))
    x = torch.randn(4, 3, 32, 32, dtype=torch.float64)
    out = net(x)
    a = acts["a"]
    a.retain_grad()
    out.square().sum().backward()
    # dL/dgate_c = sum over batch and positions of dL/d(gated)_c * activation_c
    net2 = sp.build(sp.uniform(0.125)).double()
    net2.load_state_dict(net.state_dict())
    y = {}

    def keep(m, i, o):
        o.retain_grad()
        y["o"] = o
    gates(net2)[2].register_forward_hook(keep)
    net2(x).square().sum().backward()
    manual = (y["o"].grad * y["o"]).sum(dim=(0, 2, 3))
    assert torch.allclose(g.ones.grad, manual)


def test_a_gate_after_a_batch_norm_is_scored_from_the_norms_gradients():
    # At gate 1, dLoss/dgate = gamma * dLoss/dgamma + beta * dLoss/dbeta: physical pruning needs no multiply.
    sp = ns.space("vgg11", "synthetic")
    torch.manual_seed(0)
    net = sp.build(sp.uniform(0.125)).double()
    gs = gates(net)
    assert all(isinstance(g.source, torch.nn.BatchNorm2d) for g in gs)
    assert not any("source" in k for k in net.state_dict())  # a reference, not a submodule
    for g in gs:
        g.ones = torch.ones(g.width, dtype=torch.float64, requires_grad=True)
    net(torch.randn(4, 3, 32, 32, dtype=torch.float64)).square().sum().backward()
    for g in gs:
        bn = g.source
        assert torch.allclose(g.ones.grad, bn.weight * bn.weight.grad + bn.bias * bn.bias.grad, rtol=1e-10)
    # a gate after a residual sum has no norm to read from (MobileNetV2's blocks)
    mb = gates(ns.space("mobilenetv2", "synthetic").build(ns.space("mobilenetv2", "synthetic").uniform(0.25)))
    assert [g.index for g in mb if g.source is not None] == [0, 18]
    # physical pruning leaves such gates as the identity; masking multiplies
    phys, tr_p = _run(sp, sp.uniform(0.125), True, dtype="float32", epochs=2, k=3, interval=4, warmup_epochs=1)
    mask, tr_m = _run(sp, sp.uniform(0.125), False, dtype="float32", epochs=2, k=3, interval=4, warmup_epochs=1)
    assert phys.session.pruning_steps > 0 and phys.session.pruning_steps == mask.session.pruning_steps
    assert all(g.ones is None for g in gates(tr_p.model))
    assert all(g.ones is not None for g in gates(tr_m.model))


def test_warm_up_gradients_never_reach_the_scores():
    # Gates are not parameters, so no optimizer clears their gradients: the pruner must, even in warm-up,
    # or the first interval's scores would carry every warm-up batch.
    sp = ns.space("vgg11", "synthetic")
    pr, tr = _run(sp, sp.uniform(0.125), False, dtype="float32", epochs=2, warmup_epochs=2)
    assert pr.session.pruning_steps == 0
    assert all(g.ones is not None and g.ones.grad is None for g in gates(tr.model))


def test_never_removes_a_layers_last_channels():
    sp = ns.space("vgg11", "synthetic")
    pr, tr = _run(sp, [4, 4, 4, 4, 4, 4, 4, 40], True, dtype="float32", k=8, interval=2, warmup_epochs=0,
                  prune_fraction=0.9, min_width=2, prune_past_one=True)
    assert min(pr.session.all_rows[-1]) >= 2
    assert pr.done and (pr.session.exhausted or sum(pr.session.all_rows[-1]) <= 0.1 * 68)
    assert len(tr.history) < 50  # stopped once nothing more could be pruned


def test_resnet_and_mobilenet_prune_by_masking_and_say_so():
    # ResNet18 pruned to 95%, far enough that every layer loses a channel and rows are recorded (57 steps, a step
    # after every batch; 4-24 rows with seeds 0-5 here); MobileNetV2 to 60% (27 steps), where none is
    for model, fraction in (("resnet18", 0.95), ("mobilenetv2", 0.6)):
        sp = ns.space(model, "synthetic")
        assert not ChannelGraph(sp, sp.uniform(0.25)).exact
        pr, tr = _run(sp, [max(2, w // 16) for w in sp.base_widths], True, dtype="float32",
                      k=4, interval=1, warmup_epochs=0, prune_fraction=fraction, prune_past_one=True)
        assert not pr.session.physical and pr.session.notes
        assert pr.done and pr.session.pruning_steps > 0
        last = pr.session.all_rows[-1]  # as far as asked, or every layer at its floor of one channel
        assert sum(last) <= (1 - fraction) * sum(pr.session.initial) + 4 or (pr.session.exhausted and set(last) == {1})
        # trajectory rows start only once every layer (not at its floor) has lost a channel: exactly the steps
        # from the first such one (none at all where some layer never loses one: then no row, not every row)
        t = pr.session.trajectory
        lost = [all(r < i or i <= f for r, i, f in zip(row, t.initial, t.floors)) for row in pr.session.all_rows]
        first = lost.index(True) if True in lost else len(lost)
        assert first > 0 and pr.session.rows == pr.session.all_rows[first:]
        if model == "resnet18":
            assert pr.session.rows, "no trajectory row: the row rule was not exercised"


@pytest.mark.parametrize("seed", range(3))
def test_vgg_state_shapes_by_rule_are_the_built_models(seed):
    """VGG11's state-dict shapes by rule (what a pruning step checks its sliced state against before resizing in
    place) are those of the model the widths build, at random widths, 1-channel layers included."""
    import random
    rng = random.Random(seed)
    for dataset in ("synthetic", "fashionmnist", "cifar100"):  # 3 input channels and 1; 10 classes and 100
        sp = ns.space("vgg11", dataset)
        widths = [rng.choice([1, rng.randint(1, 40)]) for _ in range(len(sp))]
        built = {k: tuple(v.shape) for k, v in sp.build(widths, device="meta").state_dict().items()}
        assert sp.state_shapes(widths) == built


def test_vgg_channel_map_names_every_sliced_dimension():
    sp = ns.space("vgg11", "synthetic")
    m = ChannelGraph(sp, sp.uniform(0.125)).slices
    assert m["features.0.weight"] == [(0, 0, 1)]  # conv1 output channels
    assert sorted(m["features.5.weight"]) == [(0, 1, 1), (1, 0, 1)]  # conv2 (after a max-pool): out = layer 1, in = layer 0
    assert m["classifier.weight"] == [(1, 7, 1)]


def test_a_flattened_map_is_sliced_in_blocks_of_positions():
    import torch
    sp = ns.space("torchvision:vgg11_bn", "synthetic")  # avgpool to 7x7, flatten, Linear(512*49, 4096)
    w = sp.uniform(0.0625)
    graph = ChannelGraph(sp, w)
    m = graph.slices
    assert graph.exact and sorted(m["classifier.0.weight"]) == [(0, 8, 1), (1, 7, 49)]
    torch.manual_seed(0)
    full = sp.build(w).eval()
    keep = [torch.arange(n) for n in w]
    keep[7] = torch.tensor([0, 2, 5])
    small_w = list(w)
    small_w[7] = 3
    small = sp.build(small_w).eval()
    small.load_state_dict(graph.slice_state(full.state_dict(), keep))
    from neuralscale.models.gate import gates
    for g in gates(full):  # masking the same channels in the full model computes the same function
        if g.index == 7:
            g.ones = torch.zeros(w[7])
            g.ones[keep[7]] = 1
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(full(x), small(x), atol=1e-5)


class _Doubled(torch.nn.Module):
    """A layer's channels read twice by the next convolution (torch.cat([y, y])): two channels per channel, not
    side by side, so slicing in blocks of 2 would keep the wrong ones."""

    def __init__(self):
        super().__init__()
        nn = torch.nn
        self.c, self.b = nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8)
        self.c2, self.b2 = nn.Conv2d(16, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8)
        self.o = nn.Linear(8, 10)

    def forward(self, x):
        y = torch.relu(self.b(self.c(x)))
        return self.o(torch.relu(self.b2(self.c2(torch.cat([y, y], 1)))).mean((2, 3)))


def test_a_layer_read_twice_side_by_side_is_masked_and_a_state_with_more_tensors_does_not_fit():
    """The graph slices a dimension only where a channel is one entry of it, or one block of positions where a
    linear layer reads a flattened map; a convolution reading a layer's channels twice is neither, and the graph
    says so (a mutation audit: taking it for blocks of 2, or any dimension 1 for a flattened map, passed). A state
    with a tensor the model does not have does not fit it (a mutation audit: only the model's keys were checked)."""
    sp = ns.space(_Doubled(), torch.randn(2, 3, 8, 8))
    graph = ChannelGraph(sp, sp.base_widths)
    assert not graph.exact and graph.why_not_exact == "c2.weight holds c's channels in a way slicing cannot follow"
    assert graph.slices["c2.weight"] == [(0, 1, 1)]  # its own output channels only
    shapes = sp.state_shapes(sp.base_widths)
    state = sp.build(sp.base_widths).state_dict()
    assert ChannelGraph.fits(state, shapes) and not ChannelGraph.fits({**state, "extra": torch.zeros(1)}, shapes)
    assert not ChannelGraph.fits({k: v for k, v in state.items() if k != "o.bias"}, shapes)


@pytest.mark.parametrize("start", ["all-lost", "per-layer"])
def test_a_trajectory_resumed_from_its_state_records_the_same_rows(start):
    """A descent killed mid-pruning resumes its trajectory from the checkpoint's state: under the original's
    rule (rows once every layer not at its floor has lost a channel) the rows after the resume start at the same
    step as without it. The kill tests (test_reliability) record rows from the first step; this covers the rule."""
    import json
    import random
    from neuralscale.pruning.trajectory import Trajectory
    initial, floors = [8, 6, 1, 5], [1, 1, 1, 2]  # the third layer starts at its floor and never holds rows back
    rng = random.Random(0)
    steps, row = [], list(initial)
    for _ in range(12):  # one layer loses a channel a step, down to its floor
        i = rng.choice([j for j, (w, f) in enumerate(zip(row, floors)) if w > f])
        row = row[:i] + [row[i] - 1] + row[i + 1:]
        steps.append(row)
    straight = Trajectory(initial, floors, start)
    for step, r in enumerate(steps, 1):
        straight.record(r, step)
    for cut in range(len(steps) + 1):
        before = Trajectory(initial, floors, start)
        for step, r in enumerate(steps[:cut], 1):
            before.record(r, step)
        resumed = Trajectory(initial, floors, start)
        resumed.load_state_dict(json.loads(json.dumps(before.state_dict())))  # as a checkpoint holds it
        for step, r in enumerate(steps[cut:], cut + 1):
            resumed.record(r, step)
        assert resumed.state_dict() == straight.state_dict(), cut
    if start == "all-lost":  # the rule did hold rows back: a real test of it
        assert 1 < straight.row_steps[0] and straight.rows == steps[straight.row_steps[0] - 1:]
        assert all(all(r < i or i <= f for r, i, f in zip(row, initial, floors)) for row in straight.rows)
    else:
        assert straight.row_steps == list(range(1, 13))


@pytest.mark.parametrize("name", ["vgg11", "torchvision:resnet18"])
def test_a_pruning_step_keeps_the_untouched_tensors_and_lays_out_all_as_a_rebuilt_model(name):
    """A step resized in place keeps the tensors of the layers it did not change (no copy, no new Parameter) and
    copies only the changed ones; the trainer then lays every 4-D tensor out exactly as in a model built fresh at
    the new widths and given the layout (contiguous, then channels_last where chosen), whichever layout a kept
    tensor had before: the strides a resumed run, rebuilt from its checkpoint, computes with. 1x1 convolutions
    (ResNet18's shortcuts) are the case where the two layouts' strides differ and both count as contiguous."""
    from neuralscale.models.resizing import fresh_strides
    from neuralscale.pruning.apply import shrink
    from neuralscale.train import _relaid
    sp = ns.space(name, "synthetic")
    w = sp.uniform(0.125)
    graph = ChannelGraph(sp, w)
    assert sp.resizes_in_place and graph.exact
    for before, after in ((True, False), (False, True), (True, True)):
        torch.manual_seed(0)
        model = _relaid(sp.build(w), before)
        old = {k: v for k, v in [*model.named_parameters(), *model.named_buffers()]}
        layer = max(range(len(w)), key=lambda i: w[i])  # one layer loses its first two channels
        keep = [torch.arange(n) for n in w]
        keep[layer] = torch.arange(2, w[layer])
        new_w = list(w)
        new_w[layer] -= 2
        out = shrink(sp, graph, model, None, keep, w, new_w)
        assert out is not None and out.model is model
        now = {k: v for k, v in [*model.named_parameters(), *model.named_buffers()]}
        changed = {k for k, v in now.items() if tuple(v.shape) != tuple(old[k].shape)}
        assert changed and all(now[k] is old[k] for k in now if k not in changed)  # kept, not copied
        _relaid(model, after)
        fresh = sp.build(new_w)
        fresh = fresh.to(memory_format=torch.channels_last) if after else fresh
        for (k, a), (k2, b) in zip(model.state_dict().items(), fresh.state_dict().items()):
            assert k == k2 and a.shape == b.shape and a.stride() == b.stride(), (k, before, after, a.stride(), b.stride())
        ref = graph.slice_state({k: v.detach() for k, v in old.items()}, keep)
        assert all(torch.equal(model.state_dict()[k], ref[k]) for k in ref)  # the kept channels' values
    for shape in ((8, 4, 3, 3), (8, 4, 1, 1), (1, 4, 1, 1), (8, 1, 3, 3), (8, 4, 1, 3), (2, 3, 5, 1)):
        for cl in (False, True):  # the rule worked out on meta is the rule on the CPU
            real = torch.empty(shape)
            real = real.to(memory_format=torch.channels_last) if cl else real
            assert fresh_strides(torch.Size(shape), cl) == real.stride(), (shape, cl)


def test_a_rebuilt_network_shares_nothing_with_the_one_it_was_cut_from():
    """Where a step rebuilds the network (a space that does not resize in place), the new one's tensors and
    momentum are its own, those of unchanged layers too: a caller who keeps the old network (a pruner in their
    own loop) does not see it change as the new one trains. Momentum is laid out contiguous, sliced or not."""
    from neuralscale.pruning.apply import shrink
    sp = ns.space("vgg11", "synthetic")
    w = sp.uniform(0.125)
    graph = ChannelGraph(sp, w)
    torch.manual_seed(0)
    model = sp.build(w).to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(2, *sp.info.input_shape).to(memory_format=torch.channels_last)).sum().backward()
    opt.step()
    keep = [torch.arange(n) for n in w]
    keep[3] = torch.arange(1, w[3])
    new_w = list(w)
    new_w[3] -= 1
    saved, sp._resize = sp._resize, None  # rebuilt, as a space without `resize` is
    try:
        out = shrink(sp, graph, model, opt, keep, w, new_w)
    finally:
        sp._resize = saved
    assert out is not None and out.model is not model
    ptrs = lambda ts: {t.untyped_storage().data_ptr() for t in ts if t.numel()}  # noqa: E731
    old = [*model.parameters(), *model.buffers(), *(s["momentum_buffer"] for s in opt.state.values())]
    new = [*out.model.parameters(), *out.model.buffers(),
           *(s["momentum_buffer"] for s in out.optimizer_state["state"].values())]
    assert not ptrs(old) & ptrs(new)
    moms = [s["momentum_buffer"] for s in out.optimizer_state["state"].values()]
    assert all(m.is_contiguous() and m.stride() == torch.empty(m.shape).stride() for m in moms if m.dim() == 4)


def test_a_trainer_leaves_a_users_layout_alone_and_takes_a_device_with_an_index():
    """A model handed to the trainer is moved and laid out as `Module.to` does it (a channels_last model kept so
    where the trainer runs NCHW), and a device named with its index (cpu:0, as cuda:0 on a GPU) is the device a
    tensor reports without one: pruning steps there run (they once recursed without end)."""
    sp = ns.space("vgg11", "synthetic")
    w = sp.uniform(0.0625)
    splits = load("synthetic", synthetic=dict(num_train=96, num_test=16)).split(0.0, 0)
    model = sp.build(w).to(memory_format=torch.channels_last)
    strides = {k: v.stride() for k, v in model.state_dict().items()}
    tr = Trainer(model, splits, TrainConfig(epochs=1, batch_size=32, device="cpu", channels_last=False),
                 progress=False)
    assert {k: v.stride() for k, v in tr.model.state_dict().items()} == strides
    torch.manual_seed(0)
    pr = TaylorPruner(sp, w, k=2, interval=1, warmup_epochs=0, prune_fraction=0.5, prune_past_one=True)
    tr = Trainer(sp.build(w), splits, TrainConfig(epochs=2, batch_size=32, device="cpu:0"), callbacks=[pr],
                 progress=False)
    tr.fit()
    assert pr.session.pruning_steps >= 3 and pr.session.physical


def test_the_trainer_stops_at_the_step_that_ends_pruning_with_the_masks_of_every_step():
    """TaylorPruner under the Trainer, masking: each step's masks reach the model (the pruned channels are zeroed
    as they are chosen), and training stops at the batch whose step ends pruning, not at the end of its epoch."""
    sp = ns.space("vgg11", "synthetic")
    pr, tr = _run(sp, sp.uniform(0.125), False, dtype="float32", epochs=5, k=3, interval=1, warmup_epochs=0,
                  prune_fraction=0.1, prune_past_one=True)
    assert pr.done and pr.session.pruning_steps >= 10
    assert [int(g.ones.sum()) for g in gates(tr.model)] == pr.session.current
    assert tr.step == pr.session.seen < 18 * len(tr.history)  # every batch was scored, the last one ended it
