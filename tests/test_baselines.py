"""baselines.py and the training they prune: network slimming's sparsity training, as the original does it."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import neuralscale as ns
from neuralscale.baselines import choose_widths, importance
from neuralscale.data import load
from neuralscale.data.augment import DeviceBatches, channel_stats
from neuralscale.sweep import SPARSE_LABEL, SweepConfig, plan, recipe, run_sweep
from neuralscale.train import Trainer, TrainConfig

S = 0.2  # far larger than the original's 1e-4, so that 20 steps of a tiny network show it


def _original_sparsity_training(space, widths, splits, tc: TrainConfig) -> nn.Module:
    """The original's train_slim loop: backward, updateBN (s * sign(gamma) added to every BN scale's gradient),
    step; on the trainer's batches, seed and learning rates."""
    torch.manual_seed(0)
    model = space.build(widths).double()
    opt = torch.optim.SGD(model.parameters(), lr=tc.lr, momentum=tc.momentum, weight_decay=tc.weight_decay)
    mean, std = channel_stats(splits.train[0])
    batches = DeviceBatches(*splits.train, mean, std, torch.device("cpu"), False, torch.float64)
    for epoch in range(tc.epochs):
        for g in opt.param_groups:
            g["lr"] = tc.lr_at(epoch)
        model.train()
        gen = torch.Generator().manual_seed(tc.seed * 1_000_003 + epoch)
        for x, y in batches.train_batches(tc.batch_size, gen, splits.info.crop_padding, splits.info.rotate, True):
            loss = F.cross_entropy(model(x).float(), y)
            opt.zero_grad()
            loss.backward()
            for m in model.modules():  # updateBN
                if isinstance(m, nn.BatchNorm2d):
                    m.weight.grad.data.add_(tc.bn_sparsity * torch.sign(m.weight.data))
            opt.step()
    return model


def test_slimming_ranks_a_network_trained_with_the_originals_sparsity_penalty_as_the_original_does():
    sp = ns.space("vgg11", "synthetic")
    widths = sp.uniform(0.0625)
    splits = load("synthetic", synthetic=dict(num_train=320, num_test=32)).split(0.0, 0)
    trained = {}
    for s in (S, 0.0):
        tc = TrainConfig(epochs=2, batch_size=32, lr=0.05, schedule="constant", dtype="float64", device="cpu",
                         val_fraction=0.0, channels_last=False, bn_sparsity=s, eval_every=0)
        torch.manual_seed(0)
        trainer = Trainer(sp.build(widths), splits, tc, progress=False)
        trainer.fit()
        trained[s] = trainer.model
        if s:
            ref = _original_sparsity_training(sp, widths, splits, tc)
    ours = importance(sp, trained[S], "slimming")
    theirs = importance(sp, ref, "slimming")
    assert all(torch.allclose(a.double(), b.double(), rtol=1e-6, atol=1e-9) for a, b in zip(ours, theirs))
    budget = sp.params(widths) // 2
    assert choose_widths(sp, ours, budget)[0] == choose_widths(sp, theirs, budget)[0]
    # the penalty is what makes the difference: without it the scales stay larger
    plain = importance(sp, trained[0.0], "slimming")
    assert sum(float(x.abs().sum()) for x in ours) < 0.9 * sum(float(x.abs().sum()) for x in plain)


def test_a_sweep_prunes_slimming_from_a_network_trained_with_the_penalty_and_l1_from_a_plain_one():
    cfg = SweepConfig(model="vgg11", dataset="synthetic", methods=["uniform", "slimming", "l1-prune"],
                      ratios=[0.0625], seeds=[0], pretrain_ratio=0.125, train={"epochs": 1})
    specs = {s.id: s for s in plan(cfg)}
    slim = next(s for s in specs.values() if s.method == "slimming")
    l1 = next(s for s in specs.values() if s.method == "l1-prune")
    assert specs[slim.pretrained].label == SPARSE_LABEL and specs[slim.pretrained].config["bn_sparsity"] == 1e-4
    assert specs[l1.pretrained].label == "uniform" and "bn_sparsity" not in specs[l1.pretrained].config
    sp = ns.space("vgg11", "synthetic")  # both pruned from networks at pretrain_ratio (a mutation audit)
    assert specs[l1.pretrained].widths == specs[slim.pretrained].widths == sp.uniform(0.125) != sp.base_widths
    # without the penalty (as stores recorded before it): one trained network for both, and the recipe of old
    old = SweepConfig(**{**cfg.__dict__, "slimming_sparsity": 0.0})
    specs = {s.id: s for s in plan(old)}
    assert len({s.pretrained for s in specs.values() if s.pretrained}) == 1 and recipe(old) == recipe(cfg)


def test_a_store_refuses_slimming_runs_of_another_sparsity_and_grows_otherwise(tmp_path):
    cfg = SweepConfig(model="vgg11", dataset="synthetic", methods=["uniform"], ratios=[0.03125], seeds=[0],
                      pretrain_ratio=0.0625, finetune_epochs=1, data={"train": 64, "test": 16},
                      train={"epochs": 1, "batch_size": 32, "device": "cpu"}, slimming_sparsity=0.0)
    run_sweep(cfg, tmp_path / "s", progress=False)
    grown = SweepConfig(**{**cfg.__dict__, "methods": ["uniform", "slimming"]})
    records = run_sweep(grown, tmp_path / "s", progress=False)  # methods may grow
    assert all(r["status"] == "finished" for r in records)
    with pytest.raises(ns.NeuralscaleError, match="sparsity penalty of 0, and this sweep asks for 0.0001"):
        run_sweep(SweepConfig(**{**grown.__dict__, "slimming_sparsity": 1e-4}), tmp_path / "s", progress=False)


def test_the_sparsity_penalty_follows_a_network_pruned_in_place():
    """A pruner resizes VGG11 in place (the trainer keeps its model object; the tensors are new): the penalty must
    reach the new scales. It once cached them per model object and, after the first step, silently penalised
    the old, detached ones."""
    from neuralscale.pruning import TaylorPruner
    from neuralscale.train import BNSparsity
    sp = ns.space("vgg11", "synthetic")
    widths = sp.uniform(0.0625)
    splits = load("synthetic", synthetic=dict(num_train=96, num_test=8)).split(0.25, 0)
    pruner = TaylorPruner(sp, widths, k=4, interval=1, warmup_epochs=0, prune_fraction=0.5)
    torch.manual_seed(0)
    model = sp.build(widths)
    tc = TrainConfig(epochs=1, batch_size=24, lr=0.05, device="cpu", schedule="constant", bn_sparsity=S)
    trainer = Trainer(model, splits, tc, callbacks=[pruner], progress=False)
    trainer.fit()
    assert trainer.model is model and pruner.session.physical and pruner.session.pruning_steps >= 2
    penalty = next(c for c in trainer.callbacks if isinstance(c, BNSparsity))
    scales = [m.weight for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    for w in scales:
        w.grad = torch.zeros_like(w)
    penalty.after_backward(trainer)
    assert all(torch.equal(w.grad, S * torch.sign(w.detach())) for w in scales)


# --- a mutation audit (second pass): budgets met exactly, floors, criteria, warm starts' refusals ----------------
def _scores(base, seed):
    g = torch.Generator().manual_seed(seed)
    return [torch.rand(w, generator=g) for w in base]


def test_pruning_stops_at_the_first_configuration_within_the_budget_and_at_each_layers_floor():
    """A budget the network already meets removes nothing; a budget equal to what a configuration costs gives that
    configuration, not one more channel gone; a budget of every layer at its floor is reachable, one under it is
    not; min_width is each layer's floor (1 by default), globally and at one ratio."""
    from neuralscale.baselines import choose_uniform_widths
    sp = ns.space("vgg11", "synthetic")
    base = sp.uniform(0.125)
    small = sp.rebased(base)
    full = small.params(base)
    for seed in range(3):
        scores = _scores(base, seed)
        for choose in (choose_widths, choose_uniform_widths):
            widths, keep = choose(small, scores, full)
            assert widths == base and all(torch.equal(k, torch.arange(b)) for k, b in zip(keep, base)), choose
            for floor in (1, 2):
                at_floor = small.params([floor] * len(base))
                kwargs = {} if floor == 1 else {"min_width": floor}
                assert choose(small, scores, at_floor, **kwargs)[0] == [floor] * len(base), (choose, floor)
                with pytest.raises(ns.NeuralscaleError, match=f"below what pruning can reach .*at {floor} channel"):
                    choose(small, scores, at_floor - 1, **kwargs)
        for share in (0.3, 0.6):
            widths, keep = choose_widths(small, scores, share * full)
            again, kept = choose_widths(small, scores, small.params(widths))
            assert again == widths and all(torch.equal(a, b) for a, b in zip(kept, keep)), (seed, share)


def test_the_pruning_criteria_score_what_they_say_and_refuse_others():
    """l1 (l1-global) is the mean absolute weight of each filter, l1-uniform (l1-prune) their sum: the two
    differ by each layer's filter size, which is what lets l1-global rank channels across layers."""
    sp = ns.space("vgg11", "synthetic")
    torch.manual_seed(0)
    model = sp.build(sp.uniform(0.125))
    total, mean = importance(sp, model, "l1-uniform"), importance(sp, model, "l1")
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == len(total)
    for conv, t, m in zip(convs, total, mean):
        size = conv.weight[0].numel()
        assert torch.allclose(t, conv.weight.detach().abs().sum(dim=(1, 2, 3))) and torch.allclose(m * size, t)
    with pytest.raises(ns.NeuralscaleError, match="unknown pruning criterion 'bogus'; choose one of: slimming"):
        importance(sp, model, "bogus")


def test_a_warm_start_refuses_what_it_cannot_cut():
    """A space that is not one, a network of another space, widths that are not the space's, a layer that would
    grow (named, the first one), and a network that cannot be sliced exactly: each one clear error."""
    from neuralscale.baselines import warm_start
    sp = ns.space("vgg11", "synthetic")
    base = sp.uniform(0.125)
    net = sp.build(base)
    with pytest.raises(ns.NeuralscaleError, match="warm_start takes a width space and a network it built"):
        warm_start("vgg11", net, base)
    res = ns.space("resnet18", "synthetic")
    with pytest.raises(ns.NeuralscaleError, match=f"needs a network built by this space \\({len(sp)} gated layers\\)"):
        warm_start(sp, res.build(res.uniform(0.0625)), base)
    with pytest.raises(ns.NeuralscaleError, match=f"got {len(sp) - 1} widths"):
        warm_start(sp, net, base[:-1])
    with pytest.raises(ns.NeuralscaleError, match="must be between 1 and"):
        warm_start(sp, net, [0] + base[1:])
    grown = [2 * w if i in (2, 5) else w for i, w in enumerate(base)]
    with pytest.raises(ns.NeuralscaleError, match=f"layer {sp.layer_names[2]} would grow from {base[2]} to "
                                                  f"{2 * base[2]} channels"):
        warm_start(sp, net, grown)
    rbase = res.uniform(0.125)
    with pytest.raises(ns.NeuralscaleError, match="resnet18 cannot be sliced exactly at these widths"):
        warm_start(res, res.build(rbase), res.uniform(0.0625))


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A finished run of VGG11 at 1/8 width on synthetic data (one epoch of 64 images), with its checkpoint."""
    out = tmp_path_factory.mktemp("trained") / "run"
    splits = load("synthetic", synthetic=dict(num_train=64, num_test=16)).split(0.0, 0)
    ns.train(ns.space("vgg11", "synthetic"), "synthetic", ratio=0.125, splits=splits, out_dir=out, progress=False,
             config=TrainConfig(epochs=1, batch_size=32, device="cpu"))
    return out


def test_a_trained_run_is_refused_unless_finished_of_this_model_with_its_weights_fitting(trained_run, tmp_path):
    import json
    import shutil

    from neuralscale.baselines import trained_network, trained_record
    sp = ns.space("vgg11", "synthetic")
    record = trained_record(sp, trained_run)
    net, again = trained_network(sp, trained_run)
    assert again == record and [g.width for g in ns.models.gate.gates(net)] == sp.uniform(0.125)
    with pytest.raises(ns.NeuralscaleError, match="is a vgg11, not a resnet18"):
        trained_record(ns.space("resnet18", "synthetic"), trained_run)
    with pytest.raises(ns.NeuralscaleError, match="do not fit vgg11 on this data"):  # 100 classes, not 10
        trained_network(ns.space("vgg11", "cifar100"), trained_run)
    running = tmp_path / "running"
    shutil.copytree(trained_run, running)
    (running / "record.json").write_text(json.dumps({**record, "status": "running"}))
    with pytest.raises(ns.NeuralscaleError, match="has not finished"):
        trained_record(sp, running)
    bare = tmp_path / "bare"
    shutil.copytree(trained_run, bare)
    (bare / "checkpoint.pt").unlink()
    with pytest.raises(ns.NeuralscaleError, match="checkpoint.pt is missing; the trained run's weights are needed"):
        trained_record(sp, bare)


def test_a_pruned_baseline_says_where_it_started(trained_run):
    """prune_pretrained's record: the pretrained run's widths (a report marks a baseline whose widths equal
    them as having pruned nothing) and its final test accuracy."""
    from neuralscale.baselines import prune_pretrained
    from neuralscale.runs import RunSpec
    from neuralscale.store import read_record
    sp = ns.space("vgg11", "synthetic")
    record = read_record(trained_run)
    budget = sp.params(sp.uniform(0.0625))
    spec = RunSpec(model="vgg11", dataset="synthetic", method="l1-global", criterion="l1", pretrained=record["id"],
                   budget={"metric": "params", "value": budget}, latency_batches=(),
                   config=TrainConfig(epochs=1, batch_size=32, device="cpu").to_dict())
    model, widths, callbacks, info = prune_pretrained(sp, trained_run, spec)
    assert info["from_widths"] == record["widths"] == sp.uniform(0.125) != widths and sp.params(widths) <= budget
    assert info["from_test_acc"] == record["summary"]["final_test_acc"] is not None
    assert info["from"] == trained_run.name and info["physical"] and not callbacks
