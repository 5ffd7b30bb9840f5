"""sgd.py: the trainer's SGD is torch.optim.SGD(foreach=True) bit for bit, shares its state dict's format, and
spares a training process the import of torch._dynamo and torchvision."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import neuralscale as ns
from neuralscale.sgd import SGD

SRC = Path(__file__).resolve().parents[1] / "src"  # this tree's package, whatever is installed
SETTINGS = [  # (momentum, weight decay, nesterov, dampening): the paper's, a Nesterov, none, momentum without
    (0.5, 5e-4, False, 0), (0.9, 5e-4, True, 0), (0.0, 0.0, False, 0), (0.9, 0.0, False, 0),  # decay, dampening
    (0.9, 1e-3, False, 0.1)]


def _model_and_batches(seed: int, dtype: torch.dtype):
    torch.manual_seed(seed)
    space = ns.space("vgg11", "synthetic")
    model = space.build(space.uniform(0.0625)).to(dtype).train()
    batches = [(torch.randn(8, *space.info.input_shape, dtype=dtype), torch.randint(0, 10, (8,)))
               for _ in range(6)]
    return model, batches


def _train(model, opt, batches, skip_first_grad: bool = False) -> None:
    for i, (x, y) in enumerate(batches):
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        if skip_first_grad and i == 0:  # one parameter without a gradient: no momentum buffer for it yet
            next(model.parameters()).grad = None
        opt.step()


def _same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    """The same weights and buffers, and the same gradients left after the last step (weight decay and
    Nesterov write into them, as torch's do)."""
    sa, sb = a.state_dict(), b.state_dict()
    grads = [(p.grad, q.grad) for p, q in zip(a.parameters(), b.parameters())]
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa) and \
        all((g is None and h is None) or (g is not None and h is not None and torch.equal(g, h)) for g, h in grads)


def _same_state(a, b) -> bool:
    da, db = a.state_dict(), b.state_dict()
    if da["state"].keys() != db["state"].keys():
        return False
    return all(torch.equal(da["state"][k]["momentum_buffer"], db["state"][k]["momentum_buffer"]) for k in da["state"])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("momentum, weight_decay, nesterov, dampening", SETTINGS)
def test_the_same_steps_as_torch_sgd_bit_for_bit(momentum, weight_decay, nesterov, dampening, dtype):
    for seed in range(3):
        for skip in (False, True):
            ours, batches = _model_and_batches(seed, dtype)
            theirs = copy.deepcopy(ours)
            kw = dict(lr=0.05, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov, dampening=dampening)
            a, b = SGD(ours.parameters(), **kw), torch.optim.SGD(theirs.parameters(), foreach=True, **kw)
            _train(ours, a, batches, skip)
            _train(theirs, b, batches, skip)
            assert _same(ours, theirs), (seed, skip)
            assert _same_state(a, b), (seed, skip)
            assert [g for g in a.state_dict()["param_groups"]] == [g for g in b.state_dict()["param_groups"]]


@pytest.mark.parametrize("direction", ["torch to ours", "ours to torch"])
def test_a_state_dict_of_either_continues_in_the_other(direction):
    kw = dict(lr=0.05, momentum=0.9, weight_decay=5e-4)
    for seed in range(3):
        first, batches = _model_and_batches(seed, torch.float32)
        make = {"ours": lambda m: SGD(m.parameters(), **kw),
                "torch": lambda m: torch.optim.SGD(m.parameters(), foreach=True, **kw)}
        src, dst = direction.split(" to ")
        opt = make[src](first)
        _train(first, opt, batches[:3])
        opt.param_groups[0]["lr"] = 0.02  # the schedule's rate when the state is saved: loading restores it
        saved = copy.deepcopy(opt.state_dict())
        second = copy.deepcopy(first)
        resumed = make[dst](second)  # built at the config's rate, 0.05, as the trainer builds it
        resumed.load_state_dict(saved)
        assert resumed.param_groups[0]["lr"] == 0.02
        _train(first, opt, batches[3:])
        _train(second, resumed, batches[3:])
        assert _same(first, second), seed


def test_zero_grad_keeps_or_drops_the_gradients_as_torch_does():
    model, batches = _model_and_batches(0, torch.float32)
    opt = SGD(model.parameters(), lr=0.05, momentum=0.9)
    x, y = batches[0]
    F.cross_entropy(model(x), y).backward()
    opt.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.any() and not p.grad.requires_grad for p in model.parameters())
    opt.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_zero_grad_detaches_a_gradient_that_is_part_of_a_graph_as_torch_does():
    """A gradient with a history (a higher-order loss's) or one that requires grad is zeroed out of the graph: no
    grad_fn, no requires_grad afterwards, as torch.optim's zero_grad(set_to_none=False) leaves them (a mutation
    audit: both steps could be left out)."""
    for make in (lambda: torch.ones(3, requires_grad=True) * 2, lambda: torch.ones(3, requires_grad=True)):
        grads = []
        for opt_class in (SGD, torch.optim.SGD):
            p = torch.nn.Parameter(torch.ones(3))
            opt = opt_class([p], lr=0.1, momentum=0.9)
            p.grad = make()
            opt.zero_grad(set_to_none=False)
            grads.append((p.grad.grad_fn is None, p.grad.requires_grad, p.grad.tolist()))
        assert grads[0] == grads[1] == (True, False, [0.0, 0.0, 0.0])


def test_zero_grad_that_keeps_the_gradients_leaves_the_momentum_as_torch_does():
    """zero_grad(set_to_none=False) zeroes the gradients in place: the momentum buffers started from them must be
    copies, or the first step's buffers are zeroed with them (a mutation audit)."""
    for nesterov in (False, True):
        ours, batches = _model_and_batches(0, torch.float32)
        theirs = copy.deepcopy(ours)
        kw = dict(lr=0.05, momentum=0.9, nesterov=nesterov)
        a, b = SGD(ours.parameters(), **kw), torch.optim.SGD(theirs.parameters(), foreach=True, **kw)
        for model, opt in ((ours, a), (theirs, b)):
            for x, y in batches[:3]:
                opt.zero_grad(set_to_none=False)
                F.cross_entropy(model(x), y).backward()
                opt.step()
        assert _same(ours, theirs) and _same_state(a, b), nesterov


def test_loaded_momentum_takes_each_parameters_dtype():
    single, batches = _model_and_batches(0, torch.float32)
    opt = SGD(single.parameters(), lr=0.05, momentum=0.9)
    _train(single, opt, batches[:2])
    double = copy.deepcopy(single).to(torch.float64)
    resumed = SGD(double.parameters(), lr=0.05, momentum=0.9)
    resumed.load_state_dict(opt.state_dict())
    assert {s["momentum_buffer"].dtype for s in resumed.state.values()} == {torch.float64}
    assert len(resumed.state) == len(list(double.parameters()))


def test_torch_options_it_does_not_run_are_refused():
    model, _ = _model_and_batches(0, torch.float32)
    theirs = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, maximize=True)
    with pytest.raises(ValueError, match="maximize"):
        SGD(model.parameters(), lr=0.1, momentum=0.9).load_state_dict(theirs.state_dict())
    with pytest.raises(ValueError, match="Nesterov"):
        SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, dampening=0.1)
    with pytest.raises(ValueError, match="learning rate"):
        SGD(model.parameters(), lr=-0.1)
    # torch's own refusals of settings it cannot run: a negative momentum or decay, Nesterov without momentum
    for kw, says in ((dict(momentum=-0.5), "momentum"), (dict(weight_decay=-1e-4), "weight_decay"),
                     (dict(momentum=0.0, nesterov=True), "Nesterov")):
        for opt_class in (SGD, torch.optim.SGD):
            with pytest.raises(ValueError, match=says):
                opt_class(model.parameters(), lr=0.1, **kw)
    for option in ("maximize", "differentiable", "fused"):  # any of them asked for by a state dict: refused
        saved = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9).state_dict()
        saved["param_groups"][0][option] = True
        with pytest.raises(ValueError, match=option):
            SGD(model.parameters(), lr=0.1, momentum=0.9).load_state_dict(saved)
    embedding = torch.nn.Embedding(5, 2, sparse=True)  # a sparse gradient: refused, not stepped as dense
    embedding(torch.tensor([1, 3])).sum().backward()
    with pytest.raises(ValueError, match="dense gradients only"):
        SGD(embedding.parameters(), lr=0.1).step()


def test_a_loaded_state_dict_replaces_the_momentum_it_lacks():
    """Loading a state dict without momentum buffers (an optimizer saved before its first step) leaves none: the
    next step starts them afresh as torch's does, not from the buffers this optimizer had (a mutation audit)."""
    ours, batches = _model_and_batches(0, torch.float32)
    kw = dict(lr=0.05, momentum=0.9)
    opt = SGD(ours.parameters(), **kw)
    _train(ours, opt, batches[:2])
    theirs = copy.deepcopy(ours)
    opt.load_state_dict(torch.optim.SGD(theirs.parameters(), **kw).state_dict())
    assert not opt.state
    fresh = torch.optim.SGD(theirs.parameters(), foreach=True, **kw)
    _train(ours, opt, batches[2:])
    _train(theirs, fresh, batches[2:])
    assert _same(ours, theirs)


def test_a_state_dict_of_another_network_is_refused():
    a, _ = _model_and_batches(0, torch.float32)
    opt = SGD(a.parameters(), lr=0.1, momentum=0.9)
    other = torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match="different number"):
        opt.load_state_dict(other.state_dict())


def test_training_imports_neither_dynamo_nor_torchvision(tmp_path):
    """A new interpreter (the process boundary is the point: what it imports) trains a tiny run through the
    command line's own entry point, and its record names torchvision's version all the same."""
    code = ("import sys, runpy\n"
            f"sys.argv = ['neuralscale', 'train', '--model', 'vgg11', '--dataset', 'synthetic', '--train-subset', "
            f"'64', '--test-subset', '16', '--batch-size', '32', '--device', 'cpu', '--epochs', '1', '--ratio', "
            f"'0.0625', '--out', {str(tmp_path / 'run')!r}, '--quiet']\n"
            "try:\n    runpy.run_module('neuralscale', run_name='__main__')\nexcept SystemExit as e:\n"
            "    assert not e.code, e.code\n"
            "print(sorted(m for m in ('torch._dynamo', 'torchvision', 'sympy') if m in sys.modules))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                       env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(SRC)})
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip().splitlines()[-1] == "[]", r.stdout
    import json
    import torchvision
    record = json.loads((tmp_path / "run" / "record.json").read_text())
    assert record["environment"]["torchvision"] == torchvision.__version__
