"""The CUDA path: run on a GPU machine (`pytest -m cuda`, or benchmarks/gpu_check.py); skipped without CUDA."""

from __future__ import annotations

import json

import pytest
import torch

import neuralscale as ns
from helpers import lockstep_pruning, run_cli
from neuralscale.store import load_records
from neuralscale.train import Trainer, TrainConfig

pytestmark = pytest.mark.cuda


def _splits(n=2048):
    return ns.data.load("synthetic", synthetic=dict(num_train=n, num_test=512)).split(0.1, 0)


def test_bf16_channels_last_reaches_the_accuracy_of_fp32():
    sp = ns.space("vgg11", "synthetic")
    accs = {}
    for name, extra in (("fp32", dict(amp=False, channels_last=False)), ("bf16-cl", dict(amp=True, channels_last=True))):
        torch.manual_seed(0)
        cfg = TrainConfig(epochs=4, batch_size=128, lr=0.05, momentum=0.9, schedule="cosine", device="cuda", **extra)
        result = Trainer(sp.build(sp.uniform(0.25)), _splits(), cfg, progress=False).fit()
        accs[name] = result.summary["final_test_acc"]
    assert accs["fp32"] > 50 and abs(accs["fp32"] - accs["bf16-cl"]) < 8, accs


def test_physical_pruning_on_cuda_decides_as_masking():
    sp = ns.space("vgg11", "synthetic")
    # float64, as on the CPU: in float32 an H100 runs convolutions in TF32 (PyTorch's default for cuDNN), whose
    # 10-bit mantissa made the scores of the narrow and the masked network differ by up to 240% (gpu_check, H100)
    torch.backends.cudnn.deterministic = True
    results = lockstep_pruning(sp, sp.uniform(0.125), _splits(640), steps=20, k=3, interval=4, lr=0.05,
                               batch_size=32, device="cuda", dtype="float64")
    assert len(results) >= 15 and max(r["rel"] for r in results) < 1e-6
    assert all(r["same"] for r in results if r["decided"])
    assert sum(r["decided"] for r in results) >= 0.8 * len(results)


def test_a_descent_on_cuda_computes_in_float32_unless_asked(tmp_path, monkeypatch):
    """A descent's trainer does not autocast to bf16 on CUDA (training runs do by default): its pruning choices
    are what the law is fitted on.  Checked on the trainer `descend` really builds."""
    import neuralscale.descent as descent
    from neuralscale.descent import DescentConfig
    built = []

    class Recording(descent.Trainer):
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            built.append((self.device.type, self.amp))

    monkeypatch.setattr(descent, "Trainer", Recording)
    for amp in (False, True):
        cfg = DescentConfig(iterations=1, warmup_epochs=0, interval=2, batch_size=32, prune_fraction=0.1,
                            base_ratio=0.125, device="cuda", amp=amp, allow_fallback=True)
        ns.descend("vgg11", "synthetic", tmp_path / f"d{amp}", cfg, subset={"train": 320}, progress=False)
        assert built[-1] == ("cuda", amp)


def test_a_sweep_with_several_workers_on_one_gpu(tmp_path):
    r = run_cli("sweep", "--model", "vgg11", "--dataset", "synthetic", "--methods", "uniform", "--ratios",
                "0.0625,0.125", "--seeds", "0,1", "--epochs", "2", "--train-subset", "512", "--test-subset", "128",
                "--executor", "local", "--workers", "4", "--devices", "cuda:0", "--out", str(tmp_path / "s"),
                "--quiet", timeout=600)
    assert r.returncode == 0, r.stderr
    records = load_records(tmp_path / "s")
    assert len(records) == 4 and all(x["status"] == "finished" for x in records)
    assert all(x["environment"]["device"].startswith("cuda") for x in records)


def test_a_cuda_trained_run_exports_and_reloads(tmp_path):
    r = run_cli("train", "--model", "vgg11", "--dataset", "synthetic", "--ratio", "0.125", "--train-subset", "1024",
                "--test-subset", "128", "--device", "cuda", "--quiet", "--epochs", "2", "--out", str(tmp_path / "run"))
    assert r.returncode == 0, r.stderr
    rec = json.loads((tmp_path / "run" / "record.json").read_text())
    assert rec["environment"]["device"].startswith("cuda")
    assert torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)["cuda_rng"] is not None
    r = run_cli("export", str(tmp_path / "run"), "--out", str(tmp_path / "model"))
    assert r.returncode == 0, r.stderr
    from neuralscale.export import load_model
    for device in ("cuda", "cpu"):
        model, meta = load_model(tmp_path / "model.json", device=device)
        assert model(torch.zeros(2, 3, 32, 32, device=device)).shape == (2, 10)


def test_resuming_a_cuda_run_continues_identically(tmp_path):
    for graphs in (False, True):  # the eager step, and the step captured as a CUDA graph
        _resume_identically(tmp_path / str(graphs), graphs)


class _StopsAtEpoch3(Trainer):
    def _train_epoch(self, epoch):
        if epoch == 2:
            raise KeyboardInterrupt
        return super()._train_epoch(epoch)


def _resume_identically(tmp_path, graphs):
    tmp_path.mkdir()
    sp = ns.space("vgg11", "synthetic")
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    splits = _splits(1024)

    def trainer(ckpt, cls=Trainer):
        torch.manual_seed(0)
        cfg = TrainConfig(epochs=3, batch_size=128, lr=0.05, schedule="constant", device="cuda", amp=False,
                          cuda_graphs=graphs)
        return cls(sp.build(sp.uniform(0.125)), splits, cfg, checkpoint=ckpt, progress=False)
    whole = trainer(tmp_path / "a.pt").fit()
    # stopped as Ctrl-C stops it, after epoch 2's checkpoint; not by a callback, which would turn capture off
    interrupted = trainer(tmp_path / "b.pt", _StopsAtEpoch3)
    interrupted.checkpoint_every_s = 0  # every epoch, however short
    assert (interrupted.captured is not None) == graphs
    with pytest.raises(KeyboardInterrupt):
        interrupted.fit()
    assert torch.load(tmp_path / "b.pt", weights_only=True)["epoch"] == 2
    resumed = trainer(tmp_path / "b.pt").fit()
    assert [m["train_loss"] for m in resumed.history] == pytest.approx([m["train_loss"] for m in whole.history],
                                                                       rel=1e-5)


def test_a_captured_step_trains_as_the_eager_one():
    """cuda_graphs replays the captured step: the same training as eager, across a partial last batch and
    learning rate changes (captured again at each)."""
    sp = ns.space("vgg11", "synthetic")
    torch.backends.cudnn.deterministic = True
    splits = _splits(2048)  # 1,843 training images: 14 batches of 128 and a partial one each epoch
    states, trainers = {}, {}
    for graphs in (False, True):
        torch.manual_seed(0)
        cfg = TrainConfig(epochs=6, batch_size=128, lr=0.05, momentum=0.9, schedule="step", device="cuda",
                          dtype="float64", cuda_graphs=graphs)
        tr = Trainer(sp.build(sp.uniform(0.125)), splits, cfg, progress=False)
        tr.fit()
        states[graphs], trainers[graphs] = tr.model.state_dict(), tr
    assert trainers[True].captured.captures == 4  # lr 0.05, then x0.1 at epochs 2, 4 and 5
    for name, a in states[False].items():
        b = states[True][name]
        assert torch.allclose(a.double(), b.double(), rtol=1e-9, atol=1e-12), name
    assert [m["train_loss"] for m in trainers[False].history] == pytest.approx(
        [m["train_loss"] for m in trainers[True].history], rel=1e-9)


def test_a_step_with_callbacks_is_not_captured():
    from neuralscale.train import Callback
    cfg = TrainConfig(epochs=1, batch_size=128, device="cuda", cuda_graphs=True)
    sp = ns.space("vgg11", "synthetic")
    assert Trainer(sp.build(sp.uniform(0.125)), _splits(512), cfg, progress=False).captured is not None
    tr = Trainer(sp.build(sp.uniform(0.125)), _splits(512), cfg, callbacks=[Callback()], progress=False)
    assert tr.captured is None
    tr.fit()  # trains eagerly
    assert tr.history[-1]["train_loss"] > 0


def test_the_trainers_sgd_steps_as_torch_sgd_on_cuda():
    """sgd.SGD against torch.optim.SGD(foreach=True) on the GPU, where both run CUDA's fused foreach kernels
    (on the CPU, tests/test_sgd.py): the same weights and momentum, bit for bit."""
    sp = ns.space("vgg11", "synthetic")
    # the two networks' gradients must agree before their optimizers can: deterministic convolution kernels
    saved = torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    try:
        _sgd_against_torch_on_cuda(sp)
    finally:
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = saved


def _sgd_against_torch_on_cuda(sp) -> None:
    import copy

    import torch.nn.functional as F

    from neuralscale.sgd import SGD
    for seed in range(3):
        torch.manual_seed(seed)
        ours = sp.build(sp.uniform(0.125)).cuda().train()
        theirs = copy.deepcopy(ours)
        kw = dict(lr=0.05, momentum=0.9, weight_decay=5e-4, nesterov=seed == 1)
        a, b = SGD(ours.parameters(), **kw), torch.optim.SGD(theirs.parameters(), foreach=True, **kw)
        for _ in range(5):
            x = torch.randn(32, *sp.info.input_shape, device="cuda")
            y = torch.randint(0, 10, (32,), device="cuda")
            for model, opt in ((ours, a), (theirs, b)):
                opt.zero_grad(set_to_none=True)
                F.cross_entropy(model(x), y).backward()
                opt.step()
        sa, sb = ours.state_dict(), theirs.state_dict()
        assert all(torch.equal(sa[k], sb[k]) for k in sa), seed
        assert all(torch.equal(a.state[p]["momentum_buffer"], b.state[q]["momentum_buffer"])
                   for p, q in zip(ours.parameters(), theirs.parameters())), seed
