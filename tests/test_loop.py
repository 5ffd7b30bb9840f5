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


def test_a_next_pruner_on_a_descent_takes_its_k(tmp_path):
    """k by default is the original's pace for the model pruned: a next iteration's model (laws.build(), another
    size) paced another k, and the directory refused it as "another configuration (k: recorded 10, now 16)", though
    the README says a new Pruner on the same directory makes the next iteration (a docs audit). It takes the
    descent's k; a k given that differs is still refused."""
    space = ns.space("vgg11", "synthetic")
    first, laws = _prune_in_a_plain_loop(space, space.uniform(0.125), tmp_path / "d", 0, interval=1,
                                         prune_fraction=0.3, prune_past_one=True, progress=False)
    assert first.config.k == paced_k(space.uniform(0.125), space.base_widths) == 1 and len(laws) == 1
    wider = space.build(space.uniform(0.5))  # paced k 5 (a law's network at the base size: any size)
    with pytest.warns(ns.NeuralscaleWarning, match="not from iteration 1's law"):
        second = ns.Pruner(space, wider, tmp_path / "d", interval=1, prune_fraction=0.3, prune_past_one=True,
                           progress=False)
    assert second.config.k == 1
    with pytest.raises(ns.NeuralscaleError, match=r"another configuration \(k: recorded 1, now 5\)"):
        ns.Pruner(space, wider, tmp_path / "d", k=5, interval=1, prune_fraction=0.3, prune_past_one=True,
                  progress=False)


def test_a_pruner_refuses_a_model_of_another_space(tmp_path):
    vgg = ns.space("vgg11", "synthetic")
    res = ns.space(torchvision.models.resnet18(num_classes=10), torch.randn(1, 3, 32, 32))
    with pytest.raises(ns.NeuralscaleError, match="gated layers"):
        ns.Pruner(vgg, res.build(res.uniform(0.05)), tmp_path / "d")


def _batches(seed: int, n: int):
    gen = torch.Generator().manual_seed(seed)
    return [(torch.randn(4, 3, 32, 32, generator=gen), torch.randint(0, 10, (4,), generator=gen)) for _ in range(n)]


def _backward(model, x, y):
    model.zero_grad(set_to_none=True)
    F.cross_entropy(model(x), y).backward()


def test_a_pruner_is_driven_in_turn_and_finishes_once(tmp_path):
    """step() before a backward pass and finish() before the end are refused; after the end, more steps change
    nothing (gradients or none); finish() writes iteration 1 once, masked (the model stays the user's); a step after
    it is refused; a second Pruner on the directory from laws.build() makes iteration 2 and returns both laws."""
    import warnings
    space = ns.space("vgg11", "synthetic")
    space = space.rebased(space.uniform(0.0625))  # a small base: laws.build() is as small
    torch.manual_seed(0)
    model = space.build(space.base_widths)
    kw = dict(k=4, interval=1, prune_fraction=0.3, prune_past_one=True, progress=False)
    pruner = ns.Pruner(space, model, tmp_path / "d", **kw)
    with pytest.raises(ns.NeuralscaleError, match=r"after loss\.backward"):
        pruner.step()
    with pytest.raises(ns.NeuralscaleError, match="pruning has not ended"):
        pruner.finish()
    for x, y in _batches(0, 200):
        _backward(model, x, y)
        pruner.step()
        if pruner.done:
            break
    assert pruner.done
    rows, widths = [list(r) for r in pruner.rows], list(pruner.widths)
    assert sum(widths) < sum(space.base_widths)
    for x, y in _batches(1, 3):  # the loop goes on past the end: nothing more is pruned or recorded
        _backward(model, x, y)
        pruner.step()
    model.zero_grad(set_to_none=True)
    pruner.step()
    assert pruner.rows == rows and pruner.widths == widths
    # the user's model is masked to the widths pruned to (each gate's live channels), not rebuilt
    assert [int(g.ones.sum()) for g in gates(model)] == widths
    assert [m.out_channels for m in model.modules() if isinstance(m, torch.nn.Conv2d)] == list(space.base_widths)
    laws = pruner.finish()
    assert pruner.finish() is laws and len(laws) == 1
    assert sorted(p.name for p in (tmp_path / "d").glob("iteration_*.csv")) == ["iteration_01.csv"]
    assert json.loads((tmp_path / "d" / "config.json").read_text())["descent"]["physical"] is False
    with pytest.raises(ns.NeuralscaleError, match="this pruner has finished"):
        pruner.step()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nxt = laws.build()
    second = ns.Pruner(space, nxt, tmp_path / "d", **kw)
    for x, y in _batches(2, 200):
        _backward(nxt, x, y)
        second.step()
        if second.done:
            break
    both = second.finish()
    assert len(both) == 2 and both[0].alpha == laws[0].alpha
    assert sorted(p.name for p in (tmp_path / "d").glob("iteration_*.csv")) == ["iteration_01.csv", "iteration_02.csv"]


def test_a_pruner_weighs_channels_by_the_objective(tmp_path):
    """objective="macs": each channel's score is weighed by the MACs it saves, so the first step (after interval + 1
    batches) takes other channels than the parameter count's would (vgg11's layers differ in MACs per parameter by
    their resolution)."""
    space = ns.space("vgg11", "synthetic")
    for seed in (0, 1):
        first = {}
        for objective in ("params", "macs"):
            torch.manual_seed(seed)
            model = space.build(space.uniform(0.0625))
            pruner = ns.Pruner(space, model, tmp_path / f"{objective}{seed}", k=8, interval=1, objective=objective,
                               progress=False)
            for x, y in _batches(seed, 2):
                _backward(model, x, y)
                pruner.step()
            assert sum(pruner.widths) == sum(space.uniform(0.0625)) - 8  # one step
            first[objective] = pruner.widths
        assert first["params"] != first["macs"], seed


def test_a_pruner_refuses_a_folder_that_is_not_a_descents_before_locking_it(tmp_path):
    space = ns.space("vgg11", "synthetic")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "notes.txt").write_text("mine")
    with pytest.raises(ns.NeuralscaleError, match=r"is not empty \(notes\.txt\) and is not a descent directory"):
        ns.Pruner(space, space.build(space.uniform(0.0625)), tmp_path / "d", progress=False)
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == ["notes.txt"]  # no .lock left in the user's folder
    resnet = ns.space("resnet18", "synthetic")  # a model of another space: as many gated layers or more
    with pytest.raises(ns.NeuralscaleError, match=r"the model has 17 gated layers, vgg11\S* has 8: build it with "
                                                  r"space\.build\(widths\)"):
        ns.Pruner(space, resnet.build(resnet.uniform(0.0625)), tmp_path / "r", progress=False)


def test_a_pruner_given_arguments_of_the_wrong_kind_says_which():
    """A model's name for the space, no out_dir, an importance's name: a TypeError or AttributeError before (a
    third adversarial pass)."""
    sp = ns.space("vgg11", "synthetic")
    model = sp.build(sp.uniform(0.0625))
    for args, kwargs, said in [(("vgg11", model, "d"), {}, "space must be a WidthSpace"),
                               ((sp, "model", "d"), {}, "model must be an nn.Module"),
                               ((sp, model, None), {}, "out_dir must be a path"),
                               ((sp, model, "d"), {"importance": "taylor"}, "importance must be an Importance")]:
        with pytest.raises(ns.NeuralscaleError, match=f"^Pruner: {said}"):
            ns.Pruner(*args, progress=False, **kwargs)
