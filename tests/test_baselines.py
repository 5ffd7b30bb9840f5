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
