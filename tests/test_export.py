"""Export: widths + weights round trip, ONNX export checked against PyTorch."""

from __future__ import annotations

import json

import pytest
import torch

import neuralscale as ns
from helpers import run_cli
from neuralscale.errors import NeuralscaleError
from neuralscale.export import load_model, save_model, to_onnx


@pytest.mark.parametrize("model", ["vgg11", "torchvision:mobilenet_v2"])
def test_widths_and_weights_round_trip_and_onnx(tmp_path, model):
    sp = ns.space(model, "synthetic")
    widths = sp.uniform(0.25)
    torch.manual_seed(0)
    net = sp.build(widths).eval()
    json_path, weights = save_model(tmp_path / "net", net, sp, widths)
    meta = json.loads(json_path.read_text())
    assert meta["widths"] == widths and meta["params"] == sp.params(widths) and weights.exists()
    again, meta2 = load_model(json_path)
    x = torch.randn(4, *sp.info.input_shape)
    with torch.no_grad():
        assert torch.equal(net(x), again(x))
    result = to_onnx(again, sp.info.input_shape, tmp_path / "net.onnx")
    assert result["checked"] and result["max_abs_diff"] < 1e-3


def test_export_command_from_a_run(tmp_path):
    out = tmp_path / "run"
    r = run_cli("train", "--model", "vgg11", "--dataset", "synthetic", "--ratio", "0.125", "--epochs", "1",
                "--batch-size", "64", "--train-subset", "128", "--device", "cpu", "--out", str(out), "--quiet")
    assert r.returncode == 0, r.stderr
    r = run_cli("export", str(out), "--out", str(tmp_path / "small"), "--onnx")
    assert r.returncode == 0, r.stderr
    assert "onnxruntime matches PyTorch" in r.stdout
    model, meta = load_model(tmp_path / "small.json")
    rec = json.loads((out / "record.json").read_text())
    assert meta["widths"] == rec["widths"] and meta["test_acc_at_best_val"] == rec["summary"]["test_acc_at_best_val"]
    # bad input: not a run, not a model file
    r = run_cli("export", str(tmp_path), "--out", str(tmp_path / "x"))
    assert r.returncode == 2 and "no run record" in r.stderr
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(NeuralscaleError, match="not a neuralscale model file"):
        load_model(tmp_path / "bad.json")
