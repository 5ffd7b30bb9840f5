"""Export: widths + weights round trip, ONNX export checked against PyTorch."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest
import torch

import neuralscale as ns
from helpers import RunsCode, run_cli, run_python
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


def test_an_export_says_how_its_datasets_images_were_made(tmp_path, fashion_data):
    """The input line (printed, and kept in the JSON) names the reader's own step: Fashion-MNIST's images were
    padded, not resized (a walkthrough resized them as the line said, and lost 6 points of accuracy)."""
    from neuralscale.export import pixels_text
    out = tmp_path / "run"
    ns.train("vgg11", "fashionmnist", ratio=0.0625, config=ns.TrainConfig(epochs=1, batch_size=32, device="cpu"),
             subset={"train": 64, "test": 32}, out_dir=out, progress=False)
    r = run_cli("export", str(out), "--out", str(tmp_path / "m"))
    assert r.returncode == 0, r.stderr
    said = next(x for x in r.stdout.splitlines() if x.startswith("input: "))
    assert "zero-padded by 2 pixels a side to 32 x 32" in said and "not resized" in said
    assert json.loads((tmp_path / "m.json").read_text())["preprocessing"]["input"] == pixels_text("fashionmnist")
    assert "bilinear resize" in pixels_text("imagefolder:/some/where") and "bilinear" not in pixels_text("cifar10")
    assert "64 x 64 images as they are" in pixels_text("tinyimagenet")


def test_an_exported_model_takes_the_images_of_a_folder_as_they_are(tmp_path):
    """Trained on an image folder, exported with ONNX: the ONNX model and `load_model`'s, fed the test images as
    a user has them (pixel values read from the PNG files, nothing else), score what the run's own evaluation
    scored, and say which class each index is (issue 33)."""
    import numpy as np
    import onnxruntime as ort
    from PIL import Image
    from helpers import write_imagefolder
    root = write_imagefolder(tmp_path / "folder", classes=3, per_class=12, size=32)
    out = tmp_path / "run"
    r = run_cli("train", "--model", "vgg11", "--dataset", f"imagefolder:{root}", "--ratio", "0.125", "--epochs", "4",
                "--batch-size", "8", "--lr", "0.05", "--device", "cpu", "--val-fraction", "0", "--out", str(out),
                "--quiet")
    assert r.returncode == 0, r.stderr
    r = run_cli("export", str(out), "--out", str(tmp_path / "m"), "--onnx")
    assert r.returncode == 0, r.stderr
    recorded = json.loads((out / "record.json").read_text())["summary"]["final_test_acc"]
    meta = json.loads((tmp_path / "m.json").read_text())
    assert meta["classes"] == ["class_0", "class_1", "class_2"]
    assert meta["preprocessing"]["in_onnx"] and len(meta["preprocessing"]["mean"]) == 3
    files = sorted((root / "test").glob("*/*.png"))
    x = np.stack([np.asarray(Image.open(f).convert("RGB"), dtype=np.float32).transpose(2, 0, 1) for f in files])
    truth = np.array([meta["classes"].index(f.parent.name) for f in files])
    logits = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"]).run(
        ["logits"], {"images": x})[0]
    # in a process of its own, with only the exported files (the run, the training images and the cache gone)
    import shutil
    alone = tmp_path / "alone"
    alone.mkdir()
    for suffix in (".json", ".pt"):
        shutil.copy(tmp_path / f"m{suffix}", alone / f"m{suffix}")
    np.save(alone / "x.npy", x)
    shutil.rmtree(out)
    shutil.rmtree(root / "train")
    code = ("import sys, numpy as np, torch, neuralscale as ns\n"
            "model, meta = ns.load_model(sys.argv[1])\n"
            "with torch.no_grad():\n"
            "    np.save(sys.argv[3], model(torch.from_numpy(np.load(sys.argv[2]))).numpy())\n")
    p = run_python(code, str(alone / "m.json"), str(alone / "x.npy"), str(alone / "y.npy"), cwd=alone,
                   env={"NEURALSCALE_DATA": str(alone / "none"), "NEURALSCALE_CACHE": str(alone / "nocache")})
    assert p.returncode == 0, p.stderr
    mine = np.load(alone / "y.npy")
    model, _ = load_model(alone / "m.json")
    for out_logits in (logits, mine):
        acc = 100.0 * float((out_logits.argmax(1) == truth).mean())
        # the same images and weights; only an argmax tie broken by rounding could differ (one image at most)
        assert abs(acc - recorded) <= 100.0 / len(files) + 1e-9, (acc, recorded)
    bare, _ = load_model(alone / "m.json", pixels=False)  # the network alone takes normalised inputs
    with torch.no_grad():
        mean = torch.tensor(meta["preprocessing"]["mean"]).view(1, 3, 1, 1)
        std = torch.tensor(meta["preprocessing"]["std"]).view(1, 3, 1, 1)
        assert torch.allclose(bare((torch.from_numpy(x) - mean) / std), torch.from_numpy(mine), atol=1e-5)


@pytest.mark.parametrize("field,value,says", [
    ("weights", 5, "its weights must name the weights file"),
    ("weights", None, "its weights must name the weights file"),
    ("widths", 5, "widths must be a list of 8 integers"),
    ("widths", None, "widths must be a list of 8 integers"),
    ("input_shape", [1, 28, 28], "its input_shape must be [3, 32, 32]"),
    ("input_shape", "3x32x32", "its input_shape must be"),
    ("num_classes", 7, "its num_classes must be 10"),
    ("num_classes", "10", "its num_classes must be 10"),
    ("classes", ["a", "b"], "its classes must be a list of 10 names"),
    ("classes", "abc", "its classes must be a list of 10 names"),
    ("preprocessing", {"mean": [0.5, 0.5], "std": [0.2, 0.2, 0.2]}, "preprocessing.mean must be 3 finite numbers"),
    ("preprocessing", {"mean": [0.5] * 3, "std": [0.0] * 3}, "preprocessing.std must be 3 finite positive numbers"),
    ("preprocessing", {"mean": [0.5] * 3, "std": [0.2] * 7}, "preprocessing.std must be 3 finite positive"),
    ("preprocessing", {"mean": ["a"] * 3, "std": [0.2] * 3}, "preprocessing.mean must be 3 finite numbers"),
])
def test_a_hand_edited_model_file_is_refused_naming_its_field(tmp_path, field, value, says):
    """An exported model's fields that its users read, or that its normalisation applies, checked as it loads
    (an adversarial pass found each passed through unchecked, or failing later as a TypeError or a size
    mismatch at the first forward pass, or, std 0, silently giving non-finite outputs)."""
    sp = ns.space("vgg11", "synthetic")
    json_path, _ = save_model(tmp_path / "net", sp.build(sp.uniform(0.0625)), sp, sp.uniform(0.0625),
                              {"preprocessing": {"mean": [125.0] * 3, "std": [60.0] * 3},
                               "classes": [f"c{i}" for i in range(10)]})
    load_model(json_path)  # as saved: loads
    meta = json.loads(json_path.read_text())
    meta[field] = value
    json_path.write_text(json.dumps(meta))
    with pytest.raises(NeuralscaleError, match=re.escape(says)):
        load_model(json_path)


def test_a_model_loaded_with_a_space_of_its_users_own_is_not_held_to_that_spaces_shapes(tmp_path):
    """A module with adaptive pooling, saved from a space made on 32 px and loaded with one made on 64 px: its
    file is not damaged (the check of its fields compared them with the space given, a review found)."""
    def net():
        torch.manual_seed(0)
        return torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
                                   torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 4))
    small = ns.space(net(), torch.zeros(1, 3, 32, 32))
    json_path, _ = save_model(tmp_path / "m", small.build(small.base_widths), small, small.base_widths)
    model, meta = load_model(json_path, space=ns.space(net(), torch.zeros(1, 3, 64, 64)))
    assert meta["input_shape"] == [3, 32, 32] and model(torch.zeros(2, 3, 64, 64)).shape == (2, 4)


@pytest.mark.parametrize("dataset, says", [("cifar100", "100 classes, 3 input channels"),
                                            ("fashionmnist", "10 classes, 1 input channel)")])
def test_a_space_given_for_other_data_is_said_not_to_fit_and_the_file_not_blamed(tmp_path, dataset, says):
    """A model file of CIFAR-10 loaded with a space made for other images: the space does not fit (it said "m.json
    is damaged: its num_classes must be 100", an adversarial pass found), and the same space of the file's loads."""
    sp = ns.space("vgg11", "cifar10")
    json_path, _ = save_model(tmp_path / "m", sp.build(sp.uniform(0.0625)), sp, sp.uniform(0.0625),
                              {"preprocessing": {"mean": [125.0] * 3, "std": [60.0] * 3}})
    with pytest.raises(NeuralscaleError) as e:
        load_model(json_path, space=ns.space("vgg11", dataset))
    assert str(e.value).startswith(f"the space given (vgg11 for {dataset}: {says}") and "damaged" not in str(e.value)
    assert "saved for cifar10 (10 classes, 3 input channels)" in str(e.value)
    assert load_model(json_path, space=ns.space("vgg11", "cifar10"))[1]["num_classes"] == 10


def test_a_folder_given_as_a_model_file_says_so(tmp_path):
    """It said "DIR.json does not exist" of a name nobody gave."""
    sp, folder = ns.space("vgg11", "synthetic"), tmp_path / "d"
    folder.mkdir()
    with pytest.raises(NeuralscaleError, match=re.escape(f"{folder} is a folder; name the model file in it (the "
                                                         ".json export wrote)")):
        load_model(folder)
    save_model(folder / "net", sp.build(sp.uniform(0.0625)), sp, sp.uniform(0.0625))
    with pytest.raises(NeuralscaleError, match=re.escape(f"such as {folder / 'net.json'})")):
        load_model(folder)
    (tmp_path / "d.json").write_text((folder / "net.json").read_text().replace('"net.pt"', '"d/net.pt"'))
    assert load_model(folder)[1]["widths"] == sp.uniform(0.0625)  # a file DIR.json beside the folder: that model


def test_a_runs_folder_given_as_a_model_file_says_to_export_it(finished_run, tmp_path):
    """load_model of a run's folder named its record.json as the model file to give, which was then refused (an
    adversarial pass): it says to export the run; a folder's JSON files that are not exports are not suggested."""
    with pytest.raises(NeuralscaleError, match=re.escape(f"{finished_run} is a run's folder, not a model file: export "
                                                         "it first (neuralscale export RUN --out NAME, "
                                                         "ns.export_run), then load NAME.json")):
        load_model(finished_run)
    (tmp_path / "notes.json").write_text("{}")
    with pytest.raises(NeuralscaleError, match=re.escape(f"{tmp_path} is a folder; name the model file in it (the "
                                                         ".json export wrote)")):
        load_model(tmp_path)


def test_a_device_or_file_the_python_calls_cannot_use_is_one_clear_error(tmp_path):
    """An adversarial pass: RuntimeError, IndexError and OverflowError from these calls, not the package's error."""
    import neuralscale as ns
    sp = ns.space("vgg11", "synthetic")
    with pytest.raises(ns.NeuralscaleError, match="unknown device 'tpu'"):
        sp.build(sp.uniform(0.0625), device="tpu")
    with pytest.raises(ns.NeuralscaleError, match="unknown device 'tpu'"):
        ns.load_model(tmp_path / "m.json", device="tpu")
    with pytest.raises(ns.NeuralscaleError, match="a budget must be a positive finite number"):
        ns.Budget.parse(10**400)
    assert sp.build(sp.uniform(0.0625), device="meta").features[0].weight.is_meta
    save_model(tmp_path / "m", sp.build(sp.uniform(0.0625)), sp, sp.uniform(0.0625))
    (tmp_path / "m.pt").write_bytes(b"")  # an empty weights file: its error had no first line to quote
    _vouch(tmp_path / "m.json")
    with pytest.raises(ns.NeuralscaleError, match=r"m.pt does not fit vgg11 at these widths \(\w"):
        ns.load_model(tmp_path / "m.json")


def test_an_export_named_as_long_as_the_file_system_allows_is_written(tmp_path):
    """Names of 240-250 characters failed, "cannot write in DIR: File name too long": the temporary file's name,
    longer than the file's own, overflowed."""
    sp = ns.space("vgg11", "synthetic")
    name = tmp_path / ("m" * 250)  # 250 + ".json": 255 bytes, the most a name may have
    save_model(name, sp.build(sp.uniform(0.0625)), sp, sp.uniform(0.0625))
    assert load_model(str(name) + ".json")[1]["widths"] == sp.uniform(0.0625)


# --- a mutation audit (tests that could not fail): each test below failed on a changed line of export.py ---------
@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A finished run of VGG11 at 1/16 width on 64 synthetic images, 2 epochs (copy it before changing it)."""
    out = tmp_path_factory.mktemp("finished") / "run"
    ns.train("vgg11", "synthetic", ratio=0.0625, config=ns.TrainConfig(epochs=2, batch_size=32, device="cpu"),
             subset={"train": 64, "test": 32}, out_dir=out, progress=False)
    return out


def _copy_run(run, tmp_path):
    shutil.copytree(run, tmp_path / "run")
    return tmp_path / "run"


def test_an_export_carries_the_runs_own_normalisation_and_accuracies(finished_run, tmp_path):
    """The exported preprocessing is the run's recorded mean and std (not swapped: a model of classes told apart by
    their mean colour scored the same with them swapped), and the final epoch's test accuracy is final_test_acc,
    the best-validation epoch's is test_acc_at_best_val (two different numbers here, written into the record)."""
    run = _copy_run(finished_run, tmp_path)
    rec = json.loads((run / "record.json").read_text())
    rec["summary"].update(final_test_acc=12.5, test_acc_at_best_val=87.5, best_val_epoch=1)
    (run / "record.json").write_text(json.dumps(rec))
    ns.export_run(run, tmp_path / "m")
    meta = json.loads((tmp_path / "m.json").read_text())
    assert meta["preprocessing"]["mean"] == rec["normalization"]["mean"]
    assert meta["preprocessing"]["std"] == rec["normalization"]["std"]
    assert rec["normalization"]["mean"] != rec["normalization"]["std"]
    assert (meta["final_test_acc"], meta["test_acc_at_best_val"], meta["best_val_epoch"]) == (12.5, 87.5, 1)
    assert meta["weights_epoch"] == 2 and meta["run"] == rec["id"]
    # a record edited by hand to classes or a normalisation of the wrong length: refused before anything is
    # written (a walkthrough: the export wrote a pair its own check then refused, and left it behind)
    for edit, said in (({"classes": ["a", "b"]}, "its classes must be a list of 10 names"),
                       ({"normalization": {**rec["normalization"], "mean": [1.0, 2.0], "std": [1.0, 2.0]}},
                        "its preprocessing.mean must be 3 finite numbers (one per channel)")):
        (run / "record.json").write_text(json.dumps({**rec, **edit}))
        with pytest.raises(ns.NeuralscaleError, match=re.escape(f"{run / 'record.json'} is damaged: {said}")):
            ns.export_run(run, tmp_path / "bad")
        assert not list(tmp_path.glob("bad*"))


def test_a_run_recorded_before_runs_kept_their_normalisation_exports_its_training_splits(finished_run, tmp_path):
    """A record without "normalization" and "classes" (neuralscale 0.1.0's): the export reads the run's data again
    and computes the training split's statistics, those a newer record holds."""
    run = _copy_run(finished_run, tmp_path)
    rec = json.loads((run / "record.json").read_text())
    norm = rec.pop("normalization")
    rec.pop("classes", None)
    (run / "record.json").write_text(json.dumps(rec))
    ns.export_run(run, tmp_path / "m")
    pre = json.loads((tmp_path / "m.json").read_text())["preprocessing"]
    assert pre["mean"] == pytest.approx(norm["mean"], rel=1e-6) and pre["std"] == pytest.approx(norm["std"], rel=1e-6)


def test_an_export_overwrites_none_of_its_files_and_checks_the_onnx_extra_first(finished_run, tmp_path, monkeypatch):
    """NAME.pt or NAME.onnx already there: refused, nothing written, unless force; and with onnx asked for where the
    extra is missing, refused before NAME.json and NAME.pt are written."""
    import sys
    (tmp_path / "a.pt").write_bytes(b"mine")
    with pytest.raises(NeuralscaleError, match=r"a\.pt exists"):
        ns.export_run(finished_run, tmp_path / "a")
    (tmp_path / "b.onnx").write_bytes(b"mine")
    with pytest.raises(NeuralscaleError, match=r"b\.onnx exists"):
        ns.export_run(finished_run, tmp_path / "b", onnx=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.pt", "b.onnx"]
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "b.onnx").read_bytes() == b"mine"
    ns.export_run(finished_run, tmp_path / "a", force=True)
    assert (tmp_path / "a.pt").read_bytes() != b"mine"
    # --force without --onnx: the user's own NAME.onnx is left alone, and the JSON does not say its preprocessing is
    # in an ONNX file; beside an earlier export that wrote NAME.onnx, that file (its network) is removed (a reviewer:
    # another run's ONNX stayed beside the new JSON)
    ns.export_run(finished_run, tmp_path / "b", force=True)
    assert (tmp_path / "b.onnx").read_bytes() == b"mine"
    assert json.loads((tmp_path / "b.json").read_text())["preprocessing"]["in_onnx"] is False
    meta = json.loads((tmp_path / "b.json").read_text())
    (tmp_path / "b.json").write_text(json.dumps({**meta, "preprocessing": {**meta["preprocessing"], "in_onnx": True}}))
    ns.export_run(finished_run, tmp_path / "b", force=True)  # as after an earlier `export --onnx`
    assert not (tmp_path / "b.onnx").exists()
    import neuralscale.export

    def broken(*args, **kwargs):
        raise NeuralscaleError("the ONNX model's outputs differ from PyTorch's")
    monkeypatch.setattr(neuralscale.export, "to_onnx", broken)  # an ONNX export that fails after the JSON is written
    with pytest.raises(NeuralscaleError, match="outputs differ"):
        ns.export_run(finished_run, tmp_path / "b", force=True, onnx=True)
    assert json.loads((tmp_path / "b.json").read_text())["preprocessing"]["in_onnx"] is False
    monkeypatch.undo()
    monkeypatch.setitem(sys.modules, "onnx", None)  # as where the extra is not installed
    with pytest.raises(NeuralscaleError, match=r"needs the optional extra"):
        ns.export_run(finished_run, tmp_path / "c", onnx=True)
    assert not list(tmp_path.glob("c.*"))


def _as_baselines(run, widths) -> dict:
    """The run's record as a pruning baseline's whose widths (its spec's: none, chosen in training) are not its
    checkpoint's (a masked baseline's): its recorded widths changed by `widths`."""
    from neuralscale.layout import RunDir
    from neuralscale.spec import RunSpec
    rec = json.loads((run / "record.json").read_text())
    rec["spec"]["widths"] = None
    rec = {**rec, "id": RunSpec.from_dict(rec["spec"]).id, "widths": [widths(w) for w in rec["widths"]]}
    state = torch.load(RunDir(run).checkpoint, weights_only=True)
    torch.save({**state, "owner": f"run {rec['id']}"}, RunDir(run).checkpoint)  # (the checkpoint is the run's)
    return rec


def test_a_checkpoint_of_other_widths_than_the_record_is_one_clear_error(finished_run, tmp_path):
    run = _copy_run(finished_run, tmp_path)
    (run / "record.json").write_text(json.dumps(_as_baselines(run, lambda w: w * 2)))
    with pytest.raises(NeuralscaleError, match="is not a network of the recorded widths"):
        ns.export_run(run, tmp_path / "m")


def test_a_model_file_is_found_by_any_of_its_names_and_its_shares_computed_if_absent(tmp_path):
    """NAME, NAME.json, NAME.pt and NAME.onnx all name one model; a file without params_share or macs_share (older
    or trimmed) gets them computed as the space computes them."""
    sp = ns.space("vgg11", "synthetic")
    widths = sp.uniform(0.0625)
    save_model(tmp_path / "net.onnx", sp.build(widths), sp, widths)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.json", "net.pt"]
    for name in ("net", "net.json", "net.pt", "net.onnx"):
        assert load_model(tmp_path / name)[1]["widths"] == widths, name
    meta = json.loads((tmp_path / "net.json").read_text())
    shares = meta.pop("params_share"), meta.pop("macs_share")
    assert 0 < shares[0] < 1 and 0 < shares[1] < 1
    (tmp_path / "net.json").write_text(json.dumps(meta))
    loaded = load_model(tmp_path / "net.json")[1]
    assert (loaded["params_share"], loaded["macs_share"]) == pytest.approx(shares, rel=1e-12)


@pytest.mark.parametrize("damage, says", [
    (lambda p: p.write_text("{not json"), "is not a neuralscale model file"),
    (lambda p: p.write_text(json.dumps({**json.loads(p.read_text()), "weights": "  "})), "its weights must name"),
    *[(lambda p, k=k: p.write_text(json.dumps({x: v for x, v in json.loads(p.read_text()).items() if x != k})),
       f"is damaged: it has no {k}") for k in ("model", "dataset", "widths", "weights")],
    (lambda p: p.write_text(json.dumps({**json.loads(p.read_text()), "classes": list(range(10))})),
     "its classes must be a list of 10 names"),
    *[(lambda p, v=v: p.write_text(json.dumps({**json.loads(p.read_text()),
                                                "preprocessing": {"mean": [v, 0.5, 0.5], "std": [60.0] * 3}})),
       "preprocessing.mean must be 3 finite numbers") for v in (float("nan"), float("inf"))],
    # a fourth adversarial pass (2026-12-07): a TypeError, a ValueError, a RecursionError, and the bare network
    # returned without a word where preprocessing was no table
    *[(lambda p, v=v: p.write_text(json.dumps({**json.loads(p.read_text()), "layers": v})),
       "its layers must be a list of layer names") for v in (None, -1, [1, 2])],
    (lambda p: p.write_text('{"format": "neuralscale-model", "x": ' + "9" * 5000 + "}"),
     "is not a neuralscale model file (Exceeds the limit"),
    (lambda p: p.write_text("[" * 100_000 + "]" * 100_000), "is not a neuralscale model file (maximum recursion depth"),
    *[(lambda p, v=v: p.write_text(json.dumps({**json.loads(p.read_text()), "preprocessing": v})),
       "its preprocessing must be a table (input, mean, std)") for v in (None, "x", [], -1)],
], ids=["not-json", "blank-weights", "no-model", "no-dataset", "no-widths", "no-weights", "int-classes", "nan-mean",
        "inf-mean", "null-layers", "negative-layers", "int-layers", "huge-number", "deep", "null-pre", "text-pre",
        "list-pre", "negative-pre"])
def test_a_model_file_damaged_in_other_ways_is_one_clear_error(tmp_path, damage, says):
    sp = ns.space("vgg11", "synthetic")
    json_path, _ = save_model(tmp_path / "net", sp.build(sp.uniform(0.0625)), sp, sp.uniform(0.0625))
    damage(json_path)
    with pytest.raises(NeuralscaleError, match=re.escape(says)):
        load_model(json_path)


def test_a_weights_file_is_read_without_running_code_in_it(tmp_path):
    sp = ns.space("vgg11", "synthetic")
    json_path, weights = save_model(tmp_path / "net", sp.build(sp.uniform(0.0625)), sp, sp.uniform(0.0625))
    torch.save({"x": RunsCode(tmp_path / "ran")}, weights)
    with pytest.raises(NeuralscaleError, match="is not the weights net.json was saved with"):
        load_model(json_path)
    _vouch(json_path)  # a JSON that vouches for them (edited with them): read, not run
    with pytest.raises(NeuralscaleError, match="does not fit vgg11"):
        load_model(json_path)
    assert not (tmp_path / "ran").exists()


def _vouch(json_path):
    """A model file that says its weights are the file beside it now (its weights_sha256 written for them)."""
    import hashlib
    meta = json.loads(json_path.read_text())
    digest = hashlib.sha256(json_path.with_suffix(".pt").read_bytes()).hexdigest()
    json_path.write_text(json.dumps({**meta, "weights_sha256": digest}))


def test_onnx_export_checks_its_outputs_and_exports_the_eval_network(tmp_path):
    """A network in training mode is exported (and checked) as in evaluation (batch norm's running statistics);
    a network whose ONNX graph computes other outputs than PyTorch's is refused."""
    pytest.importorskip("onnxruntime")
    sp = ns.space("vgg11", "synthetic")
    torch.manual_seed(0)
    net = sp.build(sp.uniform(0.0625)).train()
    result = to_onnx(net, sp.info.input_shape, tmp_path / "a.onnx")
    assert result["checked"] and result["max_abs_diff"] < 1e-3

    class Drifts(torch.nn.Module):  # its output changes with each call: the traced graph keeps the first call's
        def __init__(self):
            super().__init__()
            self.calls = 0

        def forward(self, x):
            self.calls += 1
            return x.flatten(1)[:, :4] * self.calls
    with pytest.raises(NeuralscaleError, match="ONNX model's outputs differ from PyTorch's"):
        to_onnx(Drifts(), (3, 8, 8), tmp_path / "b.onnx")
    # the file is checked before it is put in place: none is left whose outputs differ, nor its temporary file, and
    # a file there before is left as it was
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.onnx"]
    before = (tmp_path / "a.onnx").read_bytes()
    with pytest.raises(NeuralscaleError, match="ONNX model's outputs differ from PyTorch's"):
        to_onnx(Drifts(), (3, 8, 8), tmp_path / "a.onnx")
    assert (tmp_path / "a.onnx").read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["a.onnx"]


def test_an_export_stopped_before_its_onnx_is_checked_leaves_no_other_networks_onnx(finished_run, tmp_path,
                                                                                        monkeypatch):
    """`--force --onnx` over an earlier export: the earlier network's NAME.onnx is gone before the new JSON and
    weights are written, and the JSON says that an ONNX file holds the network only once it is written and checked
    (a review: stopped between, the earlier network's ONNX stayed beside a JSON that said it held this one)."""
    pytest.importorskip("onnxruntime")
    import neuralscale.export
    ns.export_run(finished_run, tmp_path / "m", onnx=True)
    assert json.loads((tmp_path / "m.json").read_text())["preprocessing"]["in_onnx"] is True
    seen = []

    def stopped(model, input_shape, path, check=True):
        seen.append((path.exists(), json.loads((tmp_path / "m.json").read_text())["preprocessing"]["in_onnx"]))
        raise KeyboardInterrupt
    monkeypatch.setattr(neuralscale.export, "to_onnx", stopped)
    with pytest.raises(KeyboardInterrupt):
        ns.export_run(finished_run, tmp_path / "m", onnx=True, force=True)
    assert seen == [(False, False)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "m.pt"]
    monkeypatch.undo()
    ns.export_run(finished_run, tmp_path / "m", onnx=True, force=True)
    assert json.loads((tmp_path / "m.json").read_text())["preprocessing"]["in_onnx"] is True
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "m.onnx", "m.pt"]
    # an ONNX file of the user's own (beside an export that wrote none): kept until this network's is written and
    # checked in its place (a review: removed first, and lost when the export then failed)
    ns.export_run(finished_run, tmp_path / "n")
    (tmp_path / "n.onnx").write_bytes(b"mine")
    monkeypatch.setattr(neuralscale.export, "to_onnx", stopped)
    with pytest.raises(KeyboardInterrupt):
        ns.export_run(finished_run, tmp_path / "n", onnx=True, force=True)
    assert (tmp_path / "n.onnx").read_bytes() == b"mine"
    assert json.loads((tmp_path / "n.json").read_text())["preprocessing"]["in_onnx"] is False
    # killed there (to_onnx stopped, and nothing after: the JSON as it was while the ONNX file was written): it does
    # not claim the user's file, which a later --force then removed (a review)
    monkeypatch.setattr(neuralscale.export, "_said_onnx", lambda json_path, written: None)
    with pytest.raises(KeyboardInterrupt):
        ns.export_run(finished_run, tmp_path / "n", onnx=True, force=True)
    monkeypatch.undo()
    assert "onnx_writing" not in json.loads((tmp_path / "n.json").read_text())
    ns.export_run(finished_run, tmp_path / "n", force=True)
    assert (tmp_path / "n.onnx").read_bytes() == b"mine"
    monkeypatch.undo()
    ns.export_run(finished_run, tmp_path / "n", onnx=True, force=True)
    assert (tmp_path / "n.onnx").read_bytes() != b"mine"
    # stopped after its NAME.onnx was put in place, before the JSON said so: a later --force without --onnx removes
    # it (it stayed, another network's, beside the new pair: an adversarial pass)
    real = neuralscale.export._said_onnx

    def stopped_after(json_path, written):
        if written:
            raise KeyboardInterrupt
        real(json_path, written)
    monkeypatch.setattr(neuralscale.export, "_said_onnx", stopped_after)
    with pytest.raises(KeyboardInterrupt):
        ns.export_run(finished_run, tmp_path / "k", onnx=True)
    assert (tmp_path / "k.onnx").exists() and json.loads((tmp_path / "k.json").read_text())["onnx_writing"] is True
    monkeypatch.undo()
    ns.export_run(finished_run, tmp_path / "k", force=True)
    assert not (tmp_path / "k.onnx").exists() and "onnx_writing" not in json.loads((tmp_path / "k.json").read_text())
    # stopped once the earlier export's NAME.onnx is removed, before the new pair is written: no JSON is left that
    # says an ONNX file holds its network (the earlier one was)
    monkeypatch.setattr(neuralscale.export, "save_model", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        ns.export_run(finished_run, tmp_path / "n", force=True)
    assert not (tmp_path / "n.onnx").exists() and not (tmp_path / "n.json").exists()


def test_a_model_files_weights_are_the_ones_it_was_saved_with(tmp_path):
    """Two exports of the same widths: each one's NAME.pt put in the other's place is refused (it loaded silently,
    a network other than the JSON's run and accuracy); a file saved before files said their weights' digest loads,
    and a damaged digest is said."""
    sp = ns.space("vgg11", "synthetic")
    widths = sp.uniform(0.0625)
    for name, seed in (("a", 0), ("b", 1)):
        torch.manual_seed(seed)
        save_model(tmp_path / name, sp.build(widths), sp, widths)
    a, b = (tmp_path / "a.pt").read_bytes(), (tmp_path / "b.pt").read_bytes()
    assert a != b
    load_model(tmp_path / "a.json")
    (tmp_path / "a.pt").write_bytes(b)
    with pytest.raises(NeuralscaleError, match=re.escape(f"{tmp_path / 'a.pt'} is not the weights a.json was saved "
                                                         "with")):
        load_model(tmp_path / "a.json")
    meta = json.loads((tmp_path / "a.json").read_text())
    for digest, works in ((None, True), ("0" * 63, False), (7, False)):
        if digest is None:
            meta.pop("weights_sha256")
        else:
            meta["weights_sha256"] = digest
        (tmp_path / "a.json").write_text(json.dumps(meta))
        if works:
            load_model(tmp_path / "a.json")
        else:
            with pytest.raises(NeuralscaleError, match="is damaged: its weights_sha256 must be 64 hex digits"):
                load_model(tmp_path / "a.json")


def test_an_export_with_the_space_of_another_network_says_so(finished_run, tmp_path):
    """`export_run(space=)` with another network's space: said to be another network, not a widths mismatch ("has
    17 gated layers, got 8 widths") nor "not a network of the recorded widths"."""
    with pytest.raises(NeuralscaleError, match=re.escape("the space given (resnet18, 17 gated layers) is not the "
                                                         "recorded network (vgg11, 8 layers)")):
        ns.export_run(finished_run, tmp_path / "m", space=ns.space("resnet18", "synthetic"))

    class Eight(torch.nn.Module):  # as many gated layers as VGG11, another network
        def __init__(self):
            super().__init__()
            self.body = torch.nn.Sequential(*[m for i in range(8) for m in (
                torch.nn.Conv2d(3 if i == 0 else 4, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU())])
            self.fc = torch.nn.Linear(4, 10)

        def forward(self, x):
            return self.fc(self.body(x).mean((2, 3)))
    with pytest.raises(NeuralscaleError, match=r"does not fit the space given \(module:Eight\): it is not the "
                                               r"network run run was trained as \(vgg11\)"):
        ns.export_run(finished_run, tmp_path / "m", space=ns.space(Eight(), torch.zeros(1, 3, 32, 32)))
    assert not list(tmp_path.iterdir())
    # the same network made for other data, or a checkpoint of other widths than its record's, with the right space:
    # said as what they are, not as another network (a review)
    with pytest.raises(NeuralscaleError, match=re.escape("the space given (vgg11 for cifar100: 100 classes, 3 input "
                                                         "channels) does not fit run run, trained on synthetic (10 "
                                                         "classes, 3 input channels)")):
        ns.export_run(finished_run, tmp_path / "m", space=ns.space("vgg11", "cifar100"))
    run = _copy_run(finished_run, tmp_path / "copy")
    (run / "record.json").write_text(json.dumps(_as_baselines(run, lambda w: w // 2)))
    with pytest.raises(NeuralscaleError, match="is not a network of the recorded widths"):
        ns.export_run(run, tmp_path / "m", space=ns.space("vgg11", "synthetic"))
    # a model file of one width too few, loaded with its own network's space: the file is damaged, and says so as
    # it does without a space (the space was blamed)
    sp = ns.space("vgg11", "synthetic")
    save_model(tmp_path / "f", sp.build(sp.uniform(0.0625)), sp, sp.uniform(0.0625))
    meta = json.loads((tmp_path / "f.json").read_text())
    (tmp_path / "f.json").write_text(json.dumps({**meta, "widths": meta["widths"][:-1]}))
    for given in (None, sp):
        with pytest.raises(NeuralscaleError, match="vgg11 has 8 gated layers, got 7 widths"):
            load_model(tmp_path / "f.json", space=given)


class _StartupInterrupted:
    """A module whose extension's start-up is interrupted: pybind11 turns the KeyboardInterrupt raised there into
    ImportError('initialization failed'), `from` it (`remembered`: as the command's handler would, while the
    command defers signals during imports, it also marks the signal received)."""

    def __init__(self, name: str, remembered: bool = False):
        self.name, self.remembered = name, remembered

    def find_spec(self, fullname, path=None, target=None):
        if fullname != self.name:
            return None
        if self.remembered:
            from neuralscale import command
            command._signalled = True
            raise ImportError("initialization failed")
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as e:
            raise ImportError("initialization failed") from e


@pytest.mark.parametrize("remembered", [False, True])
def test_an_interrupt_while_onnxruntime_loads_stops_the_export(finished_run, tmp_path, monkeypatch, remembered):
    """Ctrl-C while onnxruntime's extension started up reached the export as an ImportError, read as "onnxruntime
    is not installed": the export went on and wrote an ONNX file said to be in the JSON but never checked (an
    adversarial pass). The interrupt stops it: no ONNX file, and the JSON says none holds the network."""
    import signal
    import sys

    from neuralscale import command
    pytest.importorskip("onnxruntime")
    monkeypatch.delitem(sys.modules, "onnxruntime", raising=False)
    monkeypatch.setattr(sys, "meta_path", [_StartupInterrupted("onnxruntime", remembered)] + sys.meta_path)
    monkeypatch.setattr(command, "_signalled", False)
    monkeypatch.setattr(command, "_sigterm", False)
    handler = signal.getsignal(signal.SIGINT)
    try:
        with pytest.raises(KeyboardInterrupt):
            ns.export_run(finished_run, tmp_path / "m", onnx=True)
    finally:
        signal.signal(signal.SIGINT, handler)
    assert not (tmp_path / "m.onnx").exists()
    assert json.loads((tmp_path / "m.json").read_text())["preprocessing"]["in_onnx"] is False
    monkeypatch.setattr(sys, "meta_path", sys.meta_path[1:])  # not installed at all: said as before
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(NeuralscaleError, match="needs the optional extra"):
        ns.export_run(finished_run, tmp_path / "n", onnx=True)


def test_two_exports_to_one_name_at_once_are_refused_not_interleaved(finished_run, tmp_path, monkeypatch):
    """An export holds a lock named for its NAME (whatever spelling names it) while it writes: a second one to that
    NAME meanwhile is refused and writes nothing (two at once paired one's JSON with the other's weights, or one
    removed what the other wrote).  The lock lies in the user's temporary folder, none beside the files."""
    from neuralscale.records import exclusive_name
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    (tmp_path / "out").mkdir()
    with exclusive_name(tmp_path / "out" / "n", lambda pid: f"held by {pid}"):
        with pytest.raises(NeuralscaleError, match=re.escape(f"{tmp_path / 'sub' / '..' / 'out' / 'n'} is being "
                                                             f"exported by another neuralscale command (pid")):
            (tmp_path / "sub").mkdir()
            ns.export_run(finished_run, tmp_path / "sub" / ".." / "out" / "n.json")
        assert list((tmp_path / "out").iterdir()) == []
    ns.export_run(finished_run, tmp_path / "out" / "n")  # released: it exports
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["n.json", "n.pt"]
    locks = tmp_path / "tmp" / f"neuralscale-{os.getuid()}-locks"
    assert list(locks.iterdir()) == []  # removed by its holder when done (a review: they piled up)
    (tmp_path / "loop").symlink_to(tmp_path / "loop")  # a loop of links: one line (a review: a RuntimeError)
    with pytest.raises(NeuralscaleError, match=re.escape(f"{tmp_path / 'loop'}")):  # (resolve() raises on 3.11;
        # on 3.13 it does not, and the write names the path)
        ns.export_run(finished_run, tmp_path / "loop" / "m")
    shutil.rmtree(locks)
    locks.symlink_to(tmp_path / "out")  # another's (a link in a shared temporary folder) is not used
    with pytest.raises(NeuralscaleError, match="is not a folder of this user's; remove it, or set TMPDIR"):
        ns.export_run(finished_run, tmp_path / "out" / "m")
    assert not (tmp_path / "out" / "m.json").exists()


def test_what_a_killed_export_or_save_left_goes_with_the_next_write_of_that_name(finished_run, tmp_path):
    """An export or a law's save killed while writing (SIGKILL: nothing of it runs) leaves its temporary file, named
    for the file it wrote; no folder lock holder clears a folder of the user's, so it stayed for good however often
    the export ran again (an adversarial pass). The next write of that name clears it once it is ten minutes old
    (younger, it may be a write under way where no lock of this machine's says so), and no other file."""
    import tempfile

    from neuralscale.scaling import ScalingLaw, uniform_law

    def killed_write_of(path, age=3600):  # what mkstemp made for a write of `path` that never reached its rename
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".ns.tmp")
        os.write(fd, b"half a file")
        os.close(fd)
        os.utime(name, (os.path.getmtime(name) - age,) * 2)
        return Path(name)
    out = tmp_path / "out"
    out.mkdir()
    left = [killed_write_of(out / name) for name in ("m.pt", "m.json", "m.onnx", "law.json")]
    kept = [killed_write_of(out / name) for name in ("m.pt.x", "n.pt", "laws.json")]  # other files' writes
    kept += [killed_write_of(out / "m.pt", age=0)]  # a write under way (another machine's, say: no lock here)
    ns.export_run(finished_run, out / "m")
    sp = ns.space("vgg11", "synthetic")
    uniform_law(sp, sp.base_widths).save(out / "law.json")
    assert not any(p.exists() for p in left), [p.name for p in left if p.exists()]
    assert all(p.read_bytes() == b"half a file" for p in kept)
    assert ScalingLaw.load(out / "law.json").model == "vgg11" and (out / "m.pt").is_file()
    # an export of NAME and a save of NAME.json take one lock: neither clears the other's write (a review)
    from neuralscale.records import exclusive_name
    with exclusive_name(out / "m", lambda pid: f"busy {pid}"):
        with pytest.raises(NeuralscaleError, match="being written by another neuralscale command"):
            uniform_law(sp, sp.base_widths).save(out / "m.json", force=True)
