"""The trainer: real steps on tiny data, determinism, resume, schedules, honest summaries."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
import torch

import neuralscale as ns
from helpers import run_cli, write_cifar, write_fashion, write_imagefolder, write_tinyimagenet
from neuralscale.data import load
from neuralscale.errors import NeuralscaleError
from neuralscale.train import Callback, Trainer, TrainConfig, summarize


def _synthetic_splits(n=600):
    return load("synthetic", synthetic=dict(num_train=n, num_test=200)).split(0.1, 0)


@pytest.mark.parametrize("fmt", ["cifar10", "cifar100", "fashionmnist", "tinyimagenet", "imagefolder", "synthetic"])
def test_a_few_steps_on_every_format_lower_the_loss(tmp_path, fmt):
    name = fmt
    if fmt in ("cifar10", "cifar100"):
        write_cifar(tmp_path, fmt, per_batch=24, n_test=20)
    elif fmt == "fashionmnist":
        write_fashion(tmp_path, n_train=120, n_test=20)
    elif fmt == "tinyimagenet":
        write_tinyimagenet(tmp_path, classes=3, train_per_class=20, val_per_class=4)
    elif fmt == "imagefolder":
        write_imagefolder(tmp_path, classes=3, per_class=20, size=32)
        name = f"imagefolder:{tmp_path}"
    data = load(name, tmp_path) if fmt != "synthetic" else load("synthetic", synthetic=dict(num_train=200, num_test=40))
    splits = data.split(0.1, 0)
    model = "resnet18" if fmt == "tinyimagenet" else "vgg11"
    sp = ns.space(model, data.info)
    torch.manual_seed(0)
    cfg = TrainConfig(epochs=3, batch_size=16, lr=0.02, momentum=0.9, schedule="constant", augment=False)
    trainer = Trainer(sp.build(sp.uniform(0.125)), splits, cfg, progress=False)
    x, y = next(trainer.train_data.eval_batches(10_000))

    def batch_loss():  # train mode: batch statistics, so BN running averages do not blur the signal
        with torch.no_grad():
            return torch.nn.functional.cross_entropy(trainer.model(x), y).item()
    before = batch_loss()
    trainer.fit()
    after = batch_loss()
    assert math.isfinite(after) and after < before - 0.01
    assert len(trainer.history) == 3


def test_same_seed_same_run_and_other_seed_differs():
    splits = _synthetic_splits()
    cfg = TrainConfig(epochs=2, batch_size=32, lr=0.05, schedule="cosine", device="cpu")  # (a GPU's sums need not repeat)

    def run(seed):
        c = TrainConfig(**{**cfg.to_dict(), "seed": seed})
        r = ns.train("vgg11", "synthetic", ratio=0.125, config=c, splits=splits, progress=False)
        return [(m["train_loss"], m["test_acc"]) for m in r["history"]]
    assert run(0) == run(0)
    assert run(0) != run(1)


class _Interrupt(Callback):
    def __init__(self, at_epoch):
        self.at = at_epoch

    def on_epoch_start(self, trainer, epoch):
        if epoch == self.at:
            raise KeyboardInterrupt


def test_interrupted_training_resumes_to_the_same_result(tmp_path, monkeypatch):
    # bit for bit at one thread count (a CPU's sums depend on how many threads share them): by default the count
    # follows the machine's load (threads.py), so the test fixes it as a user who needs exactness does
    monkeypatch.setenv("NEURALSCALE_THREADS", str(torch.get_num_threads()))
    splits = _synthetic_splits()
    sp = ns.space("vgg11", "synthetic")
    cfg = TrainConfig(epochs=3, batch_size=32, lr=0.05, momentum=0.9, device="cpu")

    def fresh():
        torch.manual_seed(0)
        return sp.build(sp.uniform(0.125))
    straight = Trainer(fresh(), splits, cfg, progress=False)
    straight.fit()

    ckpt = tmp_path / "ckpt.pt"
    interrupted = Trainer(fresh(), splits, cfg, callbacks=[_Interrupt(2)], checkpoint=ckpt, progress=False)
    interrupted.checkpoint_every_s = 0  # every epoch, however short (by default at most every 5 s)
    with pytest.raises(KeyboardInterrupt):
        interrupted.fit()
    saved = torch.load(ckpt, weights_only=True)
    assert saved["epoch"] == 2 and saved["elapsed_s"] > 0
    resumed = Trainer(fresh(), splits, cfg, checkpoint=ckpt, progress=False)
    result = resumed.fit()
    # its time is the earlier session's (to its checkpoint) and this one's (a walkthrough: a resumed run's wall_s
    # was its last session's alone)
    assert resumed.elapsed_before == saved["elapsed_s"] and result.wall_s >= saved["elapsed_s"]
    assert [m["train_loss"] for m in resumed.history] == [m["train_loss"] for m in straight.history]
    for a, b in zip(resumed.model.state_dict().values(), straight.model.state_dict().values()):
        assert torch.equal(a, b)
    assert resumed.step == straight.step  # the step count goes on from the checkpoint's (pruning paces by it)


def test_a_resume_on_an_image_folder_changed_since_is_refused(tmp_path, monkeypatch):
    """Images added to a folder after a run's first epochs: the rerun resumed without a word, its record saying the
    new counts while its first epochs trained, and selected, on the old ones (an adversarial pass). Refused, saying
    both; the folder put back as it was, it resumes."""
    import shutil

    from neuralscale.api import load_splits
    monkeypatch.setenv("NEURALSCALE_CACHE", str(tmp_path / "cache"))
    folder = write_imagefolder(tmp_path / "imgs", per_class=6, size=32)
    cfg = TrainConfig(epochs=2, batch_size=8, lr=0.05, device="cpu")
    sp = ns.space("vgg11", f"imagefolder:{folder}")

    def trainer(callbacks=()):
        t = Trainer(sp.build(sp.uniform(0.0625)), load_splits(f"imagefolder:{folder}", cfg), cfg,
                    callbacks=list(callbacks), checkpoint=tmp_path / "ckpt.pt", progress=False)
        t.checkpoint_every_s = 0
        return t
    with pytest.raises(KeyboardInterrupt):
        trainer([_Interrupt(1)]).fit()
    shutil.copytree(folder, tmp_path / "as_it_was")
    # an image replaced by another, the counts as they were: its digest differs (a review left it open)
    write_imagefolder(tmp_path / "other", per_class=6, size=32, seed=5)
    shutil.copy(tmp_path / "other" / "train" / "class_0" / "img2.png", folder / "train" / "class_0" / "img2.png")
    with pytest.raises(NeuralscaleError, match=r"ckpt.pt trained on other data \(train 15, val 3, test 6 images "
                                               r"\(digest [0-9a-f]{16}\) then; train 15, val 3, test 6 images "
                                               r"\(digest [0-9a-f]{16}\) now"):
        trainer().fit()
    write_imagefolder(folder, per_class=9, size=32)  # three more images of each class
    with pytest.raises(NeuralscaleError, match=r"ckpt.pt trained on other data \(train 15, val 3, test 6 images "
                                               r"\(digest \w+\) then; train 24, val 3, test 6 images \(digest"):
        trainer().fit()
    shutil.rmtree(folder)
    shutil.copytree(tmp_path / "as_it_was", folder)
    resumed = trainer()
    resumed.fit()
    assert [m["epoch"] for m in resumed.history] == [1, 2]


def test_a_finished_run_asked_for_again_on_an_image_folder_changed_since_is_refused(tmp_path, monkeypatch):
    """`train` again into a finished run's folder returned the run ("already finished") after the folder's images
    changed, its accuracy of other data as the command's result (a walkthrough): refused, saying both; with the
    folder put back, or where the images cannot be read here (a machine without them), returned as it is."""
    import shutil
    monkeypatch.setenv("NEURALSCALE_CACHE", str(tmp_path / "cache"))
    folder = write_imagefolder(tmp_path / "imgs", per_class=6, size=32)
    kw = dict(ratio=0.0625, config=TrainConfig(epochs=1, batch_size=8, device="cpu"), out_dir=tmp_path / "run",
              progress=False)
    first = ns.train("vgg11", f"imagefolder:{folder}", **kw)
    shutil.copytree(folder, tmp_path / "as_it_was")
    write_imagefolder(tmp_path / "other", per_class=6, size=32, seed=5)
    shutil.copy(tmp_path / "other" / "train" / "class_0" / "img2.png", folder / "train" / "class_0" / "img2.png")
    with pytest.raises(NeuralscaleError, match=r"run holds a run finished on other images of imagefolder:\S+ "
                                               r"\(digest [0-9a-f]{16} then, [0-9a-f]{16} now: its files changed "
                                               r"since\); put them back as they were, or train into another --out"):
        ns.train("vgg11", f"imagefolder:{folder}", **kw)
    # another run asked for into its folder (another subset): "holds another run", as before (a review: the images'
    # check came first, and said the files changed); splits given of the images as they are now: refused as well
    # (they were taken for the run's own, whatever they held)
    with pytest.raises(NeuralscaleError, match="holds another run"):
        ns.train("vgg11", f"imagefolder:{folder}", **kw, subset={"train": 10})
    from neuralscale.api import load_splits
    with pytest.raises(NeuralscaleError, match=r"run holds a run trained on other data \(train 15, val 3, test 6, "
                                               r"digest [0-9a-f]{16}\) than the splits given \(train 15, val 3, "
                                               r"test 6, digest [0-9a-f]{16}\); train into another out_dir"):
        ns.train("vgg11", f"imagefolder:{folder}", **kw, splits=load_splits(f"imagefolder:{folder}", kw["config"]))
    shutil.move(folder, tmp_path / "changed")  # not here: the run as it is
    assert ns.train("vgg11", f"imagefolder:{folder}", **kw)["id"] == first["id"]
    shutil.copytree(tmp_path / "as_it_was", folder)
    assert ns.train("vgg11", f"imagefolder:{folder}", **kw)["finished"] == first["finished"]
    own = load_splits(f"imagefolder:{folder}", kw["config"])  # the run's own splits given: returned as it is
    assert ns.train("vgg11", f"imagefolder:{folder}", **kw, splits=own)["finished"] == first["finished"]


def test_a_run_trained_on_splits_given_is_returned_only_for_the_same_data(tmp_path):
    """A run's id says the subsets asked for, not which images splits given in Python hold: another call with
    other splits, or with none (the settings' own data), returned the first run as its result (an adversarial
    pass). Refused, saying both; the same splits again, or a run trained without splits given its own, return it."""
    from neuralscale.api import load_splits
    kw = dict(ratio=0.0625, config=TrainConfig(epochs=1, batch_size=32, device="cpu"), progress=False)
    s64, s48 = (load_splits("synthetic", kw["config"], subset={"train": n, "test": 16}) for n in (64, 48))
    first = ns.train("vgg11", "synthetic", **kw, splits=s64, out_dir=tmp_path / "given")
    assert first["own_splits"] is True and first["data"]["train"] == 64
    assert ns.train("vgg11", "synthetic", **kw, splits=s64, out_dir=tmp_path / "given")["finished"] == \
        first["finished"]
    # a run recorded before runs recorded their splits' content: returned as recorded (a review: the call's content
    # was merged into the result, never checked)
    import shutil
    legacy = tmp_path / "legacy"
    shutil.copytree(tmp_path / "given", legacy)
    record = json.loads((legacy / "record.json").read_text())
    del record["splits_content"]
    (legacy / "record.json").write_text(json.dumps(record))
    assert "splits_content" not in ns.train("vgg11", "synthetic", **kw, splits=s64, out_dir=legacy)
    with pytest.raises(NeuralscaleError, match=re.escape(f"{tmp_path / 'given'} holds a run trained on other data "
                                                         "(train 64, val 7, test 16) than the splits given (train 48, "
                                                         "val 5, test 16); train into another out_dir")):
        ns.train("vgg11", "synthetic", **kw, splits=s48, out_dir=tmp_path / "given")
    # without splits: the settings do not say which images they were (none is read to compare: a machine without
    # the data, a download, a review)
    with pytest.raises(NeuralscaleError, match=re.escape(f"{tmp_path / 'given'} holds a run trained on splits given "
                                                         "in Python (splits=), which the data settings asked for now "
                                                         "do not say: give the same splits again")):
        ns.train("vgg11", "synthetic", **kw, out_dir=tmp_path / "given")
    # other images of the same sizes (another seed's subset) are other splits (a review: sizes alone passed)
    full = load_splits("synthetic", kw["config"], subset={"train": 256, "test": 16})
    a, b = full.subset(train=64, seed=0), full.subset(train=64, seed=1)
    assert a.identity() == b.identity() and a.content() != b.content()
    mine = ns.train("vgg11", "synthetic", **kw, splits=a, out_dir=tmp_path / "seeded")
    assert mine["splits_content"] == a.content()
    with pytest.raises(NeuralscaleError, match=re.escape("(train 64, val 7, test 16: other images of the same sizes); "
                                                         "train into another out_dir")):
        ns.train("vgg11", "synthetic", **kw, splits=b, out_dir=tmp_path / "seeded")
    assert ns.train("vgg11", "synthetic", **kw, splits=a, out_dir=tmp_path / "seeded")["finished"] == mine["finished"]
    # a run stopped before it finished resumes on the splits it started on only (a review: other images of the same
    # sizes went on it, its record then saying theirs); a run's record as it is while it trains
    record = json.loads((tmp_path / "seeded" / "record.json").read_text())
    running = {k: v for k, v in record.items() if k in ("id", "kind", "method", "label", "model", "dataset", "seed",
                                                         "budget", "spec", "config", "started", "own_splits",
                                                         "splits_content")}
    (tmp_path / "seeded" / "record.json").write_text(json.dumps({**running, "status": "running"}))
    with pytest.raises(NeuralscaleError, match="other images of the same sizes"):
        ns.train("vgg11", "synthetic", **kw, splits=b, out_dir=tmp_path / "seeded")
    with pytest.raises(NeuralscaleError, match="holds a run trained on splits given in Python"):
        ns.train("vgg11", "synthetic", **kw, out_dir=tmp_path / "seeded")
    assert ns.train("vgg11", "synthetic", **kw, splits=a, out_dir=tmp_path / "seeded")["status"] == "finished"
    assert ns.train("vgg11", "synthetic", **kw, splits=a.subset(train=np.int64(32)), out_dir=tmp_path / "half")[
        "data"]["train"] == 32  # (a subset's NumPy size: the number it is)
    plain = ns.train("vgg11", "synthetic", **kw, subset={"train": 48, "test": 16}, out_dir=tmp_path / "plain")
    assert "own_splits" not in plain
    assert ns.train("vgg11", "synthetic", **kw, subset={"train": 48, "test": 16},
                    out_dir=tmp_path / "plain")["finished"] == plain["finished"]
    with pytest.raises(NeuralscaleError, match="than the splits given"):
        ns.train("vgg11", "synthetic", **kw, subset={"train": 48, "test": 16}, splits=s64, out_dir=tmp_path / "plain")


def test_a_run_of_an_image_folder_named_another_way_says_how_it_was_named(tmp_path, monkeypatch):
    """The same folder by its full path, or a relative name from another directory, is another dataset's name: the
    refusal ("holds another run") said nothing of why (a walkthrough); it names both, says where both name one
    folder, and how to name it; a law or descent of the folder so named says the same."""
    from neuralscale.data import spelled_folder
    from neuralscale.scaling import uniform_law
    monkeypatch.setenv("NEURALSCALE_CACHE", str(tmp_path / "cache"))
    write_imagefolder(tmp_path / "imgs", per_class=4, size=32)
    monkeypatch.chdir(tmp_path)
    kw = dict(ratio=0.0625, config=TrainConfig(epochs=1, batch_size=8, device="cpu"), out_dir=tmp_path / "run",
              progress=False)
    ns.train("vgg11", "imagefolder:imgs", **kw)
    full = f"imagefolder:{tmp_path / 'imgs'}"
    with pytest.raises(NeuralscaleError, match=re.escape(
            f"holds another run (uniform-r0.0625-s0-") + r"\w+" + re.escape(
            f"; an image folder is known by the name it was given: imagefolder:imgs then, {full} now (here both name "
            "one folder); name it imagefolder:imgs, from the folder it was named in then); use another directory")):
        ns.train("vgg11", full, **kw)
    law = uniform_law(ns.space("vgg11", "imagefolder:imgs"), [8] * 8)
    assert law.other_space(ns.space("vgg11", full)).endswith(
        "(here both name one folder); name it imagefolder:imgs, from the folder it was named in then")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")  # from another directory: imgs is not that folder (none, here)
    assert spelled_folder("imagefolder:imgs", full) == (
        f"; an image folder is known by the name it was given: imagefolder:imgs then, {full} now; name it "
        "imagefolder:imgs, from the folder it was named in then")
    assert spelled_folder("imagefolder:imgs", "imagefolder:imgs") == spelled_folder("cifar10", full) == ""
    # two folders, each where its name says: nothing to say of names (a review: "name it imagefolder:.../cats" to
    # one who meant the dogs)
    assert spelled_folder(f"imagefolder:{tmp_path / 'cats'}", f"imagefolder:{tmp_path / 'dogs'}") == ""


class _Dropped(torch.nn.Module):
    """A network with dropout: its masks come from torch's global generator."""

    def __init__(self, classes: int):
        super().__init__()
        nn = torch.nn
        self.c1, self.b1 = nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8)
        self.c2, self.b2 = nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8)
        self.drop, self.fc = nn.Dropout(0.5), nn.Linear(8, classes)

    def forward(self, x):
        x = torch.relu(self.b2(self.c2(torch.relu(self.b1(self.c1(x))))))
        return self.fc(self.drop(x.mean((2, 3))))


def test_a_resumed_run_draws_the_dropout_masks_the_straight_run_drew(tmp_path, monkeypatch):
    """The global generator's state is checkpointed and restored, so that a resumed run of a model with dropout
    is the run it would have been, whatever the program drew in between (a mutation audit: the restore was
    untested, as the paper's models have no dropout)."""
    monkeypatch.setenv("NEURALSCALE_THREADS", str(torch.get_num_threads()))
    splits = _synthetic_splits(200)
    sp = ns.space(_Dropped(splits.info.num_classes), torch.randn(2, *splits.info.input_shape))
    cfg = TrainConfig(epochs=3, batch_size=32, lr=0.05, momentum=0.9, device="cpu")

    def fresh():
        torch.manual_seed(0)
        return sp.build(list(sp.base_widths))
    straight = Trainer(fresh(), splits, cfg, progress=False)
    straight.fit()
    ckpt = tmp_path / "ckpt.pt"
    interrupted = Trainer(fresh(), splits, cfg, callbacks=[_Interrupt(2)], checkpoint=ckpt, progress=False)
    interrupted.checkpoint_every_s = 0
    with pytest.raises(KeyboardInterrupt):
        interrupted.fit()
    model = fresh()
    torch.manual_seed(12345)  # the program draws something else before it resumes
    resumed = Trainer(model, splits, cfg, checkpoint=ckpt, progress=False)
    resumed.fit()
    assert [m["train_loss"] for m in resumed.history] == [m["train_loss"] for m in straight.history]
    for a, b in zip(resumed.model.state_dict().values(), straight.model.state_dict().values()):
        assert torch.equal(a, b)


def test_a_checkpoint_whose_count_of_epochs_was_edited_is_refused(tmp_path):
    """A checkpoint that loads but says another epoch than its history holds (a count too high finished a run of 3
    epochs after 2, a negative or textual one trained extra epochs), or a stop that is not true or false, is refused
    as not this run's; the checkpoint as written resumes."""
    splits = _synthetic_splits(96)
    sp = ns.space("vgg11", "synthetic")
    cfg = TrainConfig(epochs=3, batch_size=32, augment=False)
    ckpt = tmp_path / "c.pt"
    first = Trainer(sp.build(sp.uniform(0.0625)), splits, cfg, callbacks=[_Interrupt(2)], checkpoint=ckpt,
                    progress=False)
    first.checkpoint_every_s = 0
    with pytest.raises(KeyboardInterrupt):
        first.fit()
    pristine = ckpt.read_bytes()
    state = torch.load(ckpt, weights_only=False)
    assert state["epoch"] == len(state["history"]) >= 1
    for field, value in (("epoch", 10 ** 9), ("epoch", -5), ("epoch", "1"), ("epoch", True), ("stop", "no"),
                         ("step", -1)):
        torch.save({**state, field: value}, ckpt)
        with pytest.raises(NeuralscaleError, match="does not fit this run"):
            Trainer(sp.build(sp.uniform(0.0625)), splits, cfg, checkpoint=ckpt, progress=False).fit()
    ckpt.write_bytes(pristine)
    done = Trainer(sp.build(sp.uniform(0.0625)), splits, cfg, checkpoint=ckpt, progress=False)
    done.fit()
    assert len(done.history) == 3


def test_channels_last_asked_of_a_model_that_views_a_map_as_a_vector_is_said_not_used(fashion_data):
    """Such a model trains in NCHW whatever is asked (generic.py: nchw_only); asked for channels_last, the trainer
    says so once, rather than train otherwise than its recorded setting reads; not asked, it says nothing."""
    import warnings
    from helpers import LeNetNoNorm
    from neuralscale.errors import NeuralscaleWarning
    from neuralscale.generic import module_space
    sp = module_space("lenet", LeNetNoNorm, ns.data.dataset_info("fashionmnist"))
    splits = load("fashionmnist").split(0.1, 0)
    model = sp.build(list(sp.base_widths))
    with pytest.warns(NeuralscaleWarning, match="channels_last not used: the model's forward views a feature map") \
            as said:
        t = Trainer(model, splits, TrainConfig(epochs=1, channels_last=True), progress=False)
        t.set_model(sp.build(list(sp.base_widths)))  # a rebuild asks again: said once
    assert not t.channels_last and len([w for w in said if "channels_last" in str(w.message)]) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error", NeuralscaleWarning)
        assert not Trainer(sp.build(list(sp.base_widths)), splits, TrainConfig(epochs=1), progress=False).channels_last


def test_checkpoint_of_another_model_is_a_clear_error(tmp_path):
    splits = _synthetic_splits(200)
    sp = ns.space("vgg11", "synthetic")
    cfg = TrainConfig(epochs=1, batch_size=64)
    ckpt = tmp_path / "c.pt"
    Trainer(sp.build(sp.uniform(0.125)), splits, cfg, checkpoint=ckpt, progress=False).fit()
    cfg2 = TrainConfig(epochs=2, batch_size=64)
    with pytest.raises(NeuralscaleError, match="does not fit"):
        Trainer(sp.build(sp.uniform(0.25)), splits, cfg, checkpoint=ckpt, progress=False).fit()
    with pytest.raises(NeuralscaleError, match=r"other training settings \(epochs: 1 there, 2 here\)"):
        Trainer(sp.build(sp.uniform(0.125)), splits, cfg2, checkpoint=ckpt, progress=False).fit()
    ckpt.write_bytes(b"garbage")
    with pytest.raises(NeuralscaleError, match="unreadable"):
        Trainer(sp.build(sp.uniform(0.125)), splits, cfg2, checkpoint=ckpt, progress=False).fit()
    # an empty file said "unreadable ()"; a pickled object, torch's coloured paragraph advising an unsafe load
    # (an interruption audit)
    from helpers import RunsCode
    for content, why in ((b"", r"empty or cut short"),
                         (RunsCode(tmp_path / "ran"), r"it refers to [\w.]+, which a weights-only load refuses")):
        ckpt.unlink()
        ckpt.write_bytes(content) if isinstance(content, bytes) else torch.save({"x": content}, ckpt)
        with pytest.raises(NeuralscaleError) as e:
            Trainer(sp.build(sp.uniform(0.125)), splits, cfg2, checkpoint=ckpt, progress=False).fit()
        assert re.fullmatch(f"checkpoint {re.escape(str(ckpt))} is unreadable \\({why}\\); delete it to start over",
                            str(e.value)), str(e.value)
        assert not (tmp_path / "ran").exists()


def test_a_resume_may_change_the_device_and_evaluation_batch_and_is_told_what_else_differs(tmp_path):
    """A mutation audit: which settings a resume may change (where it runs, how large its evaluation batches are),
    a trainer without an owner resuming an owned checkpoint, and the refusal naming up to three differences were
    untested. A finished checkpoint resumed is not written again: a trainer without an owner wrote it without
    one."""
    splits = _synthetic_splits(64)
    sp = ns.space("vgg11", splits.info)
    ckpt = tmp_path / "c.pt"
    cfg = TrainConfig(epochs=1, batch_size=32, device="cpu", eval_batch_size=1000)
    Trainer(sp.build(sp.uniform(0.0625)), splits, cfg, checkpoint=ckpt, progress=False, owner="run a").fit()
    same = TrainConfig(epochs=1, batch_size=32, device="auto" if not torch.cuda.is_available() else "cpu",
                       eval_batch_size=7)
    with pytest.raises(NeuralscaleError, match="belongs to run a, not to run b"):
        Trainer(sp.build(sp.uniform(0.0625)), splits, cfg, checkpoint=ckpt, progress=False, owner="run b").fit()
    other = TrainConfig(epochs=2, batch_size=16, lr=0.05, momentum=0.9, device="cpu")
    with pytest.raises(NeuralscaleError, match=r"\(batch_size: 32 there, 16 here; epochs: 1 there, 2 here; "
                                               r"lr: 0.1 there, 0.05 here\)"):
        Trainer(sp.build(sp.uniform(0.0625)), splits, other, checkpoint=ckpt, progress=False, owner="run a").fit()
    state = torch.load(ckpt, weights_only=True)
    state["config"]["milestones"] = list(state["config"]["milestones"])  # as lists, as JSON gives tuples back
    torch.save(state, ckpt)
    saved = ckpt.read_bytes()
    for owner in ("run a", None):  # None: a trainer that names no owner checks none
        resumed = Trainer(sp.build(sp.uniform(0.0625)), splits, same, checkpoint=ckpt, progress=False, owner=owner)
        resumed.fit()
        assert resumed.epoch == 1 and len(resumed.history) == 1  # resumed finished: nothing trained again
        assert resumed.owner == "run a" and ckpt.read_bytes() == saved  # nor written again (without its owner)
    two, ckpt2 = TrainConfig(epochs=2, batch_size=32, device="cpu"), tmp_path / "c2.pt"
    Trainer(sp.build(sp.uniform(0.0625)), splits, two, checkpoint=ckpt2, progress=False, owner="run a").fit()
    state = torch.load(ckpt2, weights_only=True)
    torch.save({**state, "epoch": 1, "step": state["step"] // 2, "history": state["history"][:1]}, ckpt2)  # cut
    Trainer(sp.build(sp.uniform(0.0625)), splits, two, checkpoint=ckpt2, progress=False).fit()
    state = torch.load(ckpt2, weights_only=True)
    assert state["epoch"] == 2 and state["owner"] == "run a"  # continued without naming one: still run a's


class _Linear(torch.nn.Module):
    """A network without batch norms, so that an image's loss does not depend on the batch it is in; it keeps the
    first pixel of every image it trains on, in order."""

    def __init__(self, shape, classes: int):
        super().__init__()
        torch.manual_seed(0)
        self.fc = torch.nn.Linear(math.prod(shape), classes)
        self.seen: list[list[float]] = []

    def forward(self, x):
        if self.training and torch.is_grad_enabled():
            self.seen.append(x[:, 0, 0, 0].tolist())
        return self.fc(x.flatten(1))


def test_an_epochs_record_holds_its_learning_rate_and_the_means_over_its_images():
    """train_loss and train_acc are means over the epoch's images (not over its batches, nor scaled by the batch
    size), val and test are their own splits', and lr is the rate the epoch trained at (a mutation audit: each
    could be wrong unseen). A learning rate of 1e-12 leaves the weights as they were, so the numbers can be
    recomputed from the data; and each epoch sees the images in an order of its own."""
    splits = _synthetic_splits(100)  # 90 training images: batches of 16 and a last one of 10
    model = _Linear(splits.info.input_shape, splits.info.num_classes)
    cfg = TrainConfig(epochs=3, batch_size=16, lr=1e-12, momentum=0.0, weight_decay=0.0, augment=False, device="cpu")
    trainer = Trainer(model, splits, cfg, progress=False)
    result = trainer.fit()

    def means(data):
        x, y = next(data.eval_batches(10_000))
        with torch.no_grad():
            out = model(x)
        return torch.nn.functional.cross_entropy(out, y).item(), 100.0 * (out.argmax(1) == y).float().mean().item()
    (train_loss, train_acc), (val_loss, val_acc), (test_loss, test_acc) = (
        means(d) for d in (trainer.train_data, trainer.val_data, trainer.test_data))
    assert len(trainer.train_data) == 90 and len(trainer.val_data) == 10 and len(trainer.test_data) == 200
    for m in result.history:
        assert m["train_loss"] == pytest.approx(train_loss, rel=1e-4) and m["train_acc"] == pytest.approx(train_acc)
        assert (m["val_loss"], m["val_acc"]) == pytest.approx((val_loss, val_acc), rel=1e-4)
        assert (m["test_loss"], m["test_acc"]) == pytest.approx((test_loss, test_acc), rel=1e-4)
    # the step schedule's: milestones at 1/3, 2/3 and 5/6 of 3 epochs (the last two both at epoch 2)
    assert [m["lr"] for m in result.history] == pytest.approx([1e-12, 1e-13, 1e-15], rel=1e-9, abs=0)
    assert result.summary["final_val_acc"] == pytest.approx(val_acc) and result.summary["epochs"] == 3
    orders = [sum(model.seen[i:i + 6], []) for i in (0, 6, 12)]  # 6 batches an epoch
    assert len(model.seen) == 18 and all(sorted(o) == sorted(orders[0]) for o in orders)
    assert orders[0] != orders[1] != orders[2] != orders[0]


class _StopAt(Callback):
    def __init__(self, step):
        self.at = step

    def on_step_end(self, trainer):
        if trainer.step == self.at:
            trainer.stop = True


def test_a_callback_that_stops_training_ends_it_there_evaluated_and_a_resume_trains_no_more(tmp_path):
    """A pruner ends its run by setting `stop`: the epoch ends after that step, is evaluated though not due
    (eval_every 0), and the run stops there, recorded as stopped early; resumed from its checkpoint it stays stopped
    (a mutation audit: none of it was tested in the trainer's own tests)."""
    splits = _synthetic_splits(70)  # 60 training images: 4 batches of 16 (the last of 12) an epoch
    cfg = TrainConfig(epochs=5, batch_size=16, lr=0.01, augment=False, eval_every=0, device="cpu")
    ckpt = tmp_path / "c.pt"
    model = _Linear(splits.info.input_shape, splits.info.num_classes)
    result = Trainer(model, splits, cfg, callbacks=[_StopAt(6)], checkpoint=ckpt, progress=False).fit()
    assert len(splits.train[1]) == 60
    assert result.stopped_early and [m["epoch"] for m in result.history] == [1, 2] and len(model.seen) == 6
    assert result.history[0]["test_acc"] is None and result.history[1]["test_acc"] is not None
    assert result.summary["final_test_acc"] == result.history[1]["test_acc"]
    resumed = Trainer(_Linear(splits.info.input_shape, splits.info.num_classes), splits, cfg, checkpoint=ckpt,
                      progress=False)
    again = resumed.fit()
    assert again.stopped_early and len(again.history) == 2 and resumed.step == 6 and not resumed.model.seen


class _Counting(Callback):
    """A callback with state: the steps it has seen, kept in the checkpoint."""

    def __init__(self, refuse: str | None = None):
        self.n, self.refuse = 0, refuse

    def on_step_end(self, trainer):
        self.n += 1

    def state_dict(self):
        return {"n": self.n}

    def load_state_dict(self, state, trainer):
        if self.refuse:
            raise NeuralscaleError(self.refuse)
        self.n = state["n"]


def test_a_resume_gives_each_callback_its_state_and_passes_on_its_refusal(tmp_path):
    """A callback's state (a pruner's) is checkpointed and given back on resume; a callback that refuses the state
    is heard in its own words, not as a checkpoint that "does not fit" (a mutation audit: neither was tested
    outside the random kills of test_reliability)."""
    splits = _synthetic_splits(70)
    cfg = TrainConfig(epochs=3, batch_size=16, lr=0.01, augment=False, eval_every=0, device="cpu")
    ckpt = tmp_path / "c.pt"

    def model():
        return _Linear(splits.info.input_shape, splits.info.num_classes)
    interrupted = Trainer(model(), splits, cfg, callbacks=[_Counting(), _Interrupt(2)], checkpoint=ckpt,
                          progress=False)
    interrupted.checkpoint_every_s = 0
    with pytest.raises(KeyboardInterrupt):
        interrupted.fit()
    counting = _Counting()
    Trainer(model(), splits, cfg, callbacks=[counting], checkpoint=ckpt, progress=False).fit()
    assert counting.n == 3 * 4  # 8 steps before the interruption, 4 after
    refusing = Trainer(model(), splits, cfg, callbacks=[_Counting("the pruner's state is of another schedule")],
                       checkpoint=ckpt, progress=False)
    with pytest.raises(NeuralscaleError, match="^the pruner's state is of another schedule$"):
        refusing.fit()


def test_a_runs_weights_are_read_only_from_its_own_whole_checkpoint(tmp_path):
    from neuralscale.train import read_run_weights
    path = tmp_path / "checkpoint.pt"
    torch.save({"owner": "run abc", "epoch": 1}, path)
    with pytest.raises(NeuralscaleError, match=r"is damaged \(no network weights\)"):
        read_run_weights(path, "abc")
    weights = {"w": torch.ones(2)}
    torch.save({"owner": "run other", "model": weights}, path)
    with pytest.raises(NeuralscaleError, match="belongs to run other, not to run abc"):
        read_run_weights(path, "abc")
    for owner in ("run abc", None):  # None: written before owners were recorded
        torch.save({"owner": owner, "model": weights}, path)
        assert torch.equal(read_run_weights(path, "abc")["w"], weights["w"])
    path.write_bytes(b"garbage")
    with pytest.raises(NeuralscaleError, match="is damaged"):
        read_run_weights(path, "abc")


def test_divergence_is_an_error():
    class Poison(Callback):
        def on_step_end(self, trainer):
            with torch.no_grad():
                next(trainer.model.parameters()).fill_(float("nan"))
    sp = ns.space("vgg11", "synthetic")
    tr = Trainer(sp.build(sp.uniform(0.125)), _synthetic_splits(200), TrainConfig(epochs=1, batch_size=64),
                 callbacks=[Poison()], progress=False)
    with pytest.raises(NeuralscaleError, match="diverged"):
        tr.fit()


def test_a_network_whose_evaluation_loss_is_not_finite_diverged():
    """Training whose loss stays finite while the network's outputs in evaluation are not (`--lr 1e12`: a train loss
    of 5e20, NaN validation and test losses) was recorded as finished, its accuracy (argmax of NaN) pooled in
    sweeps and reports. Its batch norms' running statistics are poisoned here: training never reads them."""
    class Poison(Callback):
        def on_step_end(self, trainer):
            with torch.no_grad():
                next(m for m in trainer.model.modules() if isinstance(m, torch.nn.BatchNorm2d)).running_var.fill_(-1.0)
    sp = ns.space("vgg11", "synthetic")
    for val_fraction, where in ((0.1, "on the validation images"), (0.0, "on the test images")):
        splits = load("synthetic", synthetic=dict(num_train=200, num_test=50)).split(val_fraction, 0)
        tr = Trainer(sp.build(sp.uniform(0.125)), splits, TrainConfig(epochs=1, batch_size=64), callbacks=[Poison()],
                     progress=False)
        with pytest.raises(NeuralscaleError, match=f"diverged at epoch 1 \\(loss {where} is nan\\)"):
            tr.fit()
    tr = Trainer(sp.build(sp.uniform(0.125)), splits, TrainConfig(epochs=1, batch_size=64), progress=False)
    assert math.isfinite(tr.fit().history[-1]["test_loss"])  # (unpoisoned, the same run finishes)
    tr = Trainer(sp.build(sp.uniform(0.125)), splits, TrainConfig(epochs=1, batch_size=64), callbacks=[Poison()],
                 progress=False)
    tr.eval_diverges = False  # a descent's trainer: the training loss alone, as before (its law is the scores')
    assert math.isnan(tr.fit().history[-1]["test_loss"])


def test_schedules():
    step = TrainConfig(epochs=300, lr=0.1)
    assert [step.lr_at(e) for e in (0, 99, 100, 199, 200, 249, 250, 299)] == pytest.approx(
        [0.1, 0.1, 0.01, 0.01, 1e-3, 1e-3, 1e-4, 1e-4])
    # the paper's recipe: the original's epochs 100, 200 and 250 counted from 1 (50, 100 and 150 on TinyImageNet)
    # are the first at the lower rate; the trainer counts from 0
    paper = ns.paper_config("cifar100")
    assert paper.epochs == 300 and [paper.lr_at(e) for e in (0, 98, 99, 198, 199, 248, 249, 299)] == pytest.approx(
        [0.1, 0.1, 0.01, 0.01, 1e-3, 1e-3, 1e-4, 1e-4])
    tiny = ns.paper_config("tinyimagenet")
    assert tiny.epochs == 150 and [tiny.lr_at(e) for e in (0, 48, 49, 98, 99, 148, 149)] == pytest.approx(
        [0.1, 0.1, 0.01, 0.01, 1e-3, 1e-3, 1e-4])
    # a short run: no milestone takes effect at the first epoch (1/3 of 1 epoch rounds to 0: it trained at lr/10)
    assert TrainConfig(epochs=1, lr=0.1).lr_at(0) == pytest.approx(0.1)
    assert [TrainConfig(epochs=2, lr=0.1).lr_at(e) for e in (0, 1)] == pytest.approx([0.1, 0.001])
    cos = TrainConfig(epochs=10, lr=0.2, schedule="cosine")
    assert cos.lr_at(0) == pytest.approx(0.2) and cos.lr_at(5) == pytest.approx(0.1) and cos.lr_at(10) == pytest.approx(0)
    prune = TrainConfig(epochs=100, lr=0.1, schedule="prune", warmup_epochs=10)
    # the trainer counts epochs from 0, the original from 1: its epoch 10 (index 9) is the first at 0.01
    assert [prune.lr_at(e) for e in (8, 9, 18, 19, 29)] == pytest.approx([0.1, 0.01, 0.01, 0.01 / 1.5, 0.01 / 2.25])
    with pytest.raises(NeuralscaleError):
        TrainConfig(schedule="exponential")
    with pytest.raises(NeuralscaleError):
        TrainConfig(epochs=0)


def test_schedules_past_their_ends_and_without_warm_up_and_the_settings_they_refuse():
    """A mutation audit: the cosine's end, a pruning schedule without warm-up (its divisions apply to `lr`, no
    epoch sets 0.01), TinyImageNet's divisions at multiples of 10 epochs, and the configuration's own refusals
    were untested."""
    assert TrainConfig(epochs=10, lr=0.2, schedule="cosine").lr_at(15) == pytest.approx(0)  # stays at 0 past the end
    cold = TrainConfig(epochs=40, lr=0.1, schedule="prune", warmup_epochs=0)
    assert [cold.lr_at(e) for e in (0, 8, 9, 19)] == pytest.approx([0.1, 0.1, 0.1 / 1.5, 0.1 / 2.25])
    # counted from 1 as the original counts: epoch 25 divides once (10 epochs past the warm-up of 15); TinyImageNet's
    # schedule waits for epoch 30, the next multiple of 10
    for name, at_25 in (("prune", 0.01 / 1.5), ("prune-tinyimagenet", 0.01)):
        c = TrainConfig(epochs=100, lr=0.1, schedule=name, warmup_epochs=15)
        assert [c.lr_at(e) for e in (13, 14, 19, 24, 29)] == pytest.approx([0.1, 0.01, 0.01, at_25, 0.01 / 1.5]), name
    with pytest.raises(NeuralscaleError, match="nesterov needs a positive momentum"):
        TrainConfig(nesterov=True, momentum=0)
    for bad in ((0.0,), (0.5, 1.5), (-0.2,)):
        with pytest.raises(NeuralscaleError, match="milestone"):
            TrainConfig(milestones=bad)
    assert TrainConfig(milestones=(1.0,)).lr_at(0) == pytest.approx(0.1)  # the last epoch is a milestone allowed
    for bad in (1.0, -0.1):
        with pytest.raises(NeuralscaleError, match="validation fraction"):
            TrainConfig(val_fraction=bad)
    # a milestone given as an integer (TOML's 1) records as the float it means: the same run, the same id
    as_toml, as_floats = TrainConfig(milestones=[0.5, 1]), TrainConfig(milestones=(0.5, 1.0))
    assert json.dumps(as_toml.to_dict()) == json.dumps(as_floats.to_dict())


def test_summary_selects_on_validation_not_test():
    hist = [{"epoch": 1, "val_acc": 50.0, "test_acc": 60.0, "images_per_s": 1.0},
            {"epoch": 2, "val_acc": 70.0, "test_acc": 55.0, "images_per_s": 1.0},
            {"epoch": 3, "val_acc": 65.0, "test_acc": 58.0, "images_per_s": 1.0}]
    s = summarize(hist)
    assert s["best_val_epoch"] == 2 and s["test_acc_at_best_val"] == 55.0
    assert s["final_test_acc"] == 58.0 and s["best_test_acc_original_protocol"] == 60.0
    # a tie in validation accuracy goes to the earliest epoch (documented; a mutation audit found it untested)
    tie = [*hist, {"epoch": 4, "val_acc": 70.0, "test_acc": 61.0, "images_per_s": 1.0}]
    assert summarize(tie)["best_val_epoch"] == 2 and summarize(tie)["test_acc_at_best_val"] == 55.0


def test_a_summary_holds_each_number_it_names():
    """Every field of a run's summary, and a run without a validation split selecting nothing (a mutation audit:
    the final and best validation accuracy, the speed's mean and the selection without validation were
    untested)."""
    hist = [{"epoch": 1, "val_acc": 50.0, "test_acc": 60.0, "images_per_s": 100.0},
            {"epoch": 2, "val_acc": None, "test_acc": None, "images_per_s": None},  # not evaluated (eval_every)
            {"epoch": 3, "val_acc": 70.0, "test_acc": 55.0, "images_per_s": 300.0},
            {"epoch": 4, "val_acc": 65.0, "test_acc": 58.0, "images_per_s": 500.0}]
    assert summarize(hist) == {"epochs": 4, "final_test_acc": 58.0, "final_val_acc": 65.0, "best_val_epoch": 3,
                               "best_val_acc": 70.0, "test_acc_at_best_val": 55.0,
                               "best_test_acc_original_protocol": 60.0, "images_per_s": 300.0}
    unvalidated = [{**m, "val_acc": None} for m in hist]  # val_fraction 0: no validation split
    s = summarize(unvalidated)
    assert (s["best_val_epoch"], s["best_val_acc"], s["test_acc_at_best_val"], s["final_val_acc"]) == (None,) * 4
    assert s["final_test_acc"] == 58.0 and summarize([]) == {}


def test_the_last_epoch_is_checkpointed_whatever_the_interval(tmp_path, monkeypatch):
    """Epochs of milliseconds are checkpointed every few seconds, and the last always (a mutation audit: without
    the final save, the checkpoint could hold an earlier epoch's weights)."""
    monkeypatch.setenv("NEURALSCALE_CHECKPOINT_SECONDS", "3600")
    splits = _synthetic_splits(64)
    sp = ns.space("vgg11", splits.info)
    cfg = TrainConfig(epochs=3, batch_size=32, lr=0.02, schedule="constant", augment=False)
    trainer = Trainer(sp.build(sp.uniform(0.0625)), splits, cfg, progress=False, checkpoint=tmp_path / "c.pt")
    trainer.fit()
    state = torch.load(tmp_path / "c.pt", weights_only=False)
    assert state["epoch"] == 3 and len(state["history"]) == 3
    assert all(torch.equal(v, trainer.model.state_dict()[k]) for k, v in state["model"].items())


def test_evaluation_leaves_the_network_as_it_was():
    """Evaluating in evaluation mode: the batch norms' running statistics are not moved by the test images, and
    the model's mode is given back (a mutation audit: evaluating in training mode was caught by one export test
    only)."""
    splits = _synthetic_splits(64)
    sp = ns.space("vgg11", splits.info)
    torch.manual_seed(0)
    trainer = Trainer(sp.build(sp.uniform(0.0625)), splits, TrainConfig(epochs=1, batch_size=32, augment=False),
                      progress=False)
    trainer.fit()
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.model.train()
    first = trainer.evaluate(trainer.test_data)
    assert trainer.model.training
    assert all(torch.equal(v, trainer.model.state_dict()[k]) for k, v in before.items())
    assert first[1] is not None and any("running_mean" in k for k in before)
    trainer.model.eval()  # and a model in evaluation mode stays in it (a mutation audit: only training was given back)
    assert trainer.evaluate(trainer.test_data) == first and not trainer.model.training


def test_eval_every_skips_evaluation_but_not_the_last_epoch():
    splits = _synthetic_splits(200)
    sp = ns.space("vgg11", splits.info)
    cfg = TrainConfig(epochs=5, batch_size=32, lr=0.02, schedule="constant", augment=False, eval_every=2)
    torch.manual_seed(0)
    result = Trainer(sp.build(sp.uniform(0.125)), splits, cfg, progress=False).fit()
    evaluated = [m["epoch"] for m in result.history if m["test_acc"] is not None]
    assert evaluated == [2, 4, 5]  # the others hold null (not NaN, which strict JSON readers reject)
    assert all(m["val_acc"] is None and m["test_loss"] is None for m in result.history if m["epoch"] in (1, 3))
    assert result.summary["best_val_epoch"] in (2, 4, 5)
    assert math.isfinite(result.summary["best_test_acc_original_protocol"])

    cfg0 = TrainConfig(epochs=3, batch_size=32, lr=0.02, schedule="constant", augment=False, eval_every=0)
    result0 = Trainer(sp.build(sp.uniform(0.125)), splits, cfg0, progress=False).fit()
    assert [m["epoch"] for m in result0.history if m["val_acc"] is not None] == [3]
    with pytest.raises(NeuralscaleError):
        TrainConfig(eval_every=-1)


class _Grouped(torch.nn.Module):
    def __init__(self, groups: int):
        super().__init__()
        nn = torch.nn
        self.c1, self.b1 = nn.Conv2d(3, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64)
        self.c2, self.b2 = nn.Conv2d(64, 64, 3, padding=1, bias=False, groups=groups), nn.BatchNorm2d(64)
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        return self.fc(torch.relu(self.b2(self.c2(torch.relu(self.b1(self.c1(x)))))).mean((2, 3)))


def test_a_step_with_callbacks_or_compiled_or_off_cuda_is_not_captured_and_says_why():
    """Why the trainer leaves a step eager under cuda_graphs, read without a GPU: callbacks (a pruner) named, a
    compiled step, a device that is not CUDA (a mutation audit: each check dropped from `capturable` passed, as
    the CUDA tests that reach it cannot run here)."""
    from types import SimpleNamespace
    from neuralscale.captured import capturable
    from neuralscale.pruning import TaylorPruner

    def trainer(device, compiled=False, callbacks=()):
        return SimpleNamespace(device=torch.device(device), config=SimpleNamespace(compile=compiled),
                               callbacks=list(callbacks))
    pruner = TaylorPruner.__new__(TaylorPruner)  # its class name is all capturable reads
    assert capturable(trainer("cuda")) is None
    assert capturable(trainer("cuda", callbacks=[pruner])) == "callbacks run Python between steps (TaylorPruner)"
    assert capturable(trainer("cuda", compiled=True, callbacks=[pruner])).startswith("the step is compiled")
    assert capturable(trainer("cpu", callbacks=[pruner])) == "CUDA graphs need a CUDA device"


def test_the_cpu_layout_rule_and_the_optimizers_settings():
    """Channels-last on the CPU where the mean width is 32 or more and no layer under 4, not with grouped
    convolutions (a depthwise one is not grouped in this sense); the optimizer gets the configuration's momentum,
    weight decay and Nesterov; bf16 only from float32 (a mutation audit: these were untested on the CPU)."""
    from neuralscale.train import autocasts, cpu_channels_last
    assert cpu_channels_last([32, 32]) and cpu_channels_last([60, 4])
    assert not cpu_channels_last([31, 32]) and not cpu_channels_last([61, 3]) and not cpu_channels_last([])
    splits = ns.data.load("synthetic", synthetic=dict(num_train=20, num_test=4)).split(0.0, 0)
    layouts = {}
    for groups in (1, 4, 64):  # plain, grouped (ResNeXt's kind), depthwise (MobileNet's)
        sp = ns.space(_Grouped(groups), torch.randn(2, 3, 32, 32))
        trainer = Trainer(sp.build(sp.base_widths), splits, TrainConfig(device="cpu"), progress=False)
        layouts[groups] = trainer.channels_last
    assert layouts == {1: True, 4: False, 64: True}
    cfg = TrainConfig(device="cpu", momentum=0.9, weight_decay=1e-3, nesterov=True)
    sp = ns.space("vgg11", splits.info)
    group = Trainer(sp.build(sp.uniform(0.0625)), splits, cfg, progress=False).optimizer.param_groups[0]
    assert (group["momentum"], group["weight_decay"], group["nesterov"]) == (0.9, 1e-3, True)
    assert autocasts(True, False, "float32") and not autocasts(True, True, "float64")
    assert autocasts(None, True, "float32") and not autocasts(None, False, "float32")


def test_a_runs_environment_names_its_versions_device_and_thread_policy():
    """Where a run ran, as its record keeps it: with the trainer's governor, how its threads were chosen and how
    often they changed (a mutation audit: the governor's fields were untested here)."""
    from neuralscale.threads import Governor
    from neuralscale.train import environment
    env = environment(torch.device("cpu"))
    assert env["device"] == "cpu" and env["torch"] == torch.__version__ and env["neuralscale"] == ns.__version__
    assert env["threads"] == torch.get_num_threads() and "thread_policy" not in env and "gpu" not in env
    governor = Governor(follow=False)
    try:
        env = environment(torch.device("cpu"), governor)
        assert (env["thread_policy"], env["thread_changes"]) == (governor.describe(), governor.changes)
    finally:
        governor.restore()


def test_checkpoint_seconds_default_to_five_and_refuse_what_is_not_a_number_of_seconds(monkeypatch):
    from neuralscale.train import checkpoint_seconds
    monkeypatch.delenv("NEURALSCALE_CHECKPOINT_SECONDS", raising=False)
    assert checkpoint_seconds() == 5.0
    for text, value in (("0", 0.0), ("2.5", 2.5)):
        monkeypatch.setenv("NEURALSCALE_CHECKPOINT_SECONDS", text)
        assert checkpoint_seconds() == value
    for text in ("inf", "nan", "-1", "abc"):
        monkeypatch.setenv("NEURALSCALE_CHECKPOINT_SECONDS", text)
        with pytest.raises(NeuralscaleError, match=f"got '{text}'"):
            checkpoint_seconds()


def test_cuda_graphs_are_refused_without_cuda_and_leave_run_ids_alone(tmp_path):
    from neuralscale.train import TrainConfig, Trainer
    assert "cuda_graphs" not in TrainConfig().to_dict()  # a setting added later: runs recorded before keep their ids
    assert TrainConfig(cuda_graphs=True).to_dict()["cuda_graphs"] is True
    sp = ns.space("vgg11", "synthetic")
    splits = ns.data.load("synthetic", synthetic=dict(num_train=64, num_test=8)).split(0.0, 0)
    with pytest.raises(ns.NeuralscaleError, match="CUDA graphs need a CUDA device"):
        Trainer(sp.build(sp.uniform(0.125)), splits, TrainConfig(device="cpu", cuda_graphs=True), progress=False)
    r = run_cli("train", "--model", "vgg11", "--dataset", "synthetic", "--device", "cpu", "--cuda-graphs",
                "--epochs", "1", "--out", str(tmp_path / "r"))
    assert r.returncode == 2 and r.stderr.strip() == ("neuralscale: error: cuda_graphs: CUDA graphs need a CUDA "
                                                      "device; train on --device cuda, or leave --cuda-graphs out"), \
        r.stderr


def test_short_epochs_log_the_first_and_last_and_one_line_per_interval(caplog, monkeypatch):
    import logging
    import sys
    train_module = sys.modules["neuralscale.train"]  # (the package's `train` is the function)
    sp = ns.space("vgg11", "synthetic")
    splits = ns.data.load("synthetic", synthetic=dict(num_train=64, num_test=8)).split(0.0, 0)
    cfg = TrainConfig(epochs=6, batch_size=64, device="cpu", eval_every=0)
    lines = {}
    for interval in (3600.0, 0.0):  # epochs of milliseconds: an hour between lines, or none
        monkeypatch.setattr(train_module, "EPOCH_LINE_S", interval)
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="neuralscale"):
            tr = Trainer(sp.build(sp.uniform(0.125)), splits, cfg, progress=False, desc="t")
            tr.fit()
        lines[interval] = [r.getMessage().split(":")[0] for r in caplog.records if r.getMessage().startswith("t epoch")]
        assert len(tr.history) == 6  # every epoch trained and recorded, whatever was logged
    assert lines[3600.0] == ["t epoch 1/6", "t epoch 6/6"]
    assert lines[0.0] == [f"t epoch {i}/6" for i in range(1, 7)]


def test_the_trainer_given_arguments_of_the_wrong_kind_says_which(tmp_path):
    """A config as a dict, an ImageData for Splits, a model's name, callbacks that are not Callbacks, a checkpoint
    that is not a path: each an AttributeError or TypeError from inside before (a third adversarial pass)."""
    data = ns.load_dataset("synthetic", synthetic={"num_train": 40, "num_test": 10})
    splits, sp = data.split(0.0, 0), ns.space("vgg11", "synthetic")
    model, cfg = sp.build(sp.uniform(0.0625)), TrainConfig(epochs=1, device="cpu")
    for kwargs, said in [(dict(config={"epochs": 1}), "config must be a TrainConfig"),
                         (dict(splits=data), "splits must be a Splits"),
                         (dict(model="vgg11"), "model must be an nn.Module"),
                         (dict(callbacks=[1]), "callbacks must be a list of Callback objects"),
                         (dict(checkpoint=5), "checkpoint must be a path, not int")]:
        with pytest.raises(NeuralscaleError, match=f"^Trainer: {said}"):
            Trainer(**{"model": model, "splits": splits, "config": cfg, "progress": False, **kwargs})


def test_a_trainer_given_a_model_of_other_classes_than_its_data_says_so_before_training():
    """The Trainer has only the module (`ns.train` checks the space): a model of 100 classes on data of 10 trained
    outputs no label names; one of 5 failed with torch's IndexError at the first batch (a third pass, left open)."""
    splits = ns.load_dataset("synthetic", synthetic={"num_train": 40, "num_test": 10}).split(0.0, 0)
    cfg = TrainConfig(epochs=1, batch_size=20, device="cpu")
    for classes in (5, 100):
        sp = ns.space("vgg11", "cifar100" if classes == 100 else "synthetic")
        model = sp.build(sp.uniform(0.0625))
        if classes == 5:
            model.classifier = torch.nn.Linear(model.classifier.in_features, 5)
        was = {k: v.clone() for k, v in model.state_dict().items()}
        with pytest.raises(NeuralscaleError, match=f"^Trainer: the model gives {classes} outputs an image, but "
                                                   "synthetic has 10 classes; build it for 10$"):
            Trainer(model, splits, cfg, progress=False)
        assert all(torch.equal(v, model.state_dict()[k]) for k, v in was.items())  # its statistics untouched
    sp = ns.space("vgg11", "synthetic")
    model = sp.build(sp.uniform(0.0625)).train()
    was = {k: v.clone() for k, v in model.state_dict().items()}
    tr = Trainer(model, splits, cfg, progress=False)  # its own classes: accepted, the model as it was given
    assert tr.model.training and all(torch.equal(v, tr.model.state_dict()[k]) for k, v in was.items())
    assert len(tr.fit().history) == 1


def test_a_finished_run_is_returned_on_a_machine_without_its_images(tmp_path, capsys):
    """`train --out DIR` of a finished run returns its record without training: its images were loaded first, so
    on a machine without them (a copied store, say) it failed (a review, left open)."""
    from neuralscale import cli
    write_cifar(tmp_path / "data", "cifar10", per_batch=8, n_test=8)
    out = tmp_path / "run"
    args = ["train", "--model", "vgg11", "--dataset", "cifar10", "--ratio", "0.0625", "--epochs", "1",
            "--batch-size", "20", "--device", "cpu", "--json", "--quiet"]
    assert cli.main([*args, "--out", str(out), "--data-dir", str(tmp_path / "data")]) == 0
    record = json.loads((out / "record.json").read_text())
    capsys.readouterr()
    elsewhere = ["--data-dir", str(tmp_path / "elsewhere")]  # no such folder: no images to load
    assert cli.main([*args, "--out", str(out), *elsewhere]) == 0
    assert json.loads(capsys.readouterr().out)["id"] == record["id"]
    assert json.loads((out / "record.json").read_text()) == record
    assert cli.main([*args, "--out", str(tmp_path / "new"), *elsewhere]) == 2  # one not trained needs its images
    assert "elsewhere does not exist" in capsys.readouterr().err and not (tmp_path / "new" / "record.json").exists()
    with pytest.raises(ns.NeuralscaleError, match="10 classes, but cifar100 has"):  # the data asked for, not the
        ns.train(ns.space("vgg11", "cifar10"), "cifar100", ratio=0.0625, out_dir=out, progress=False)  # space's
    # nothing written, not even its lock: a finished run on a read-only medium (an archive) is read as a descent
    # is (it said "cannot use RUN: Read-only file system"; a lock that cannot be opened stands in for the medium)
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.iterdir() if p.is_file()}
    (out / ".lock").unlink()
    (out / ".lock").mkdir()
    assert cli.main([*args, "--out", str(out), *elsewhere]) == 0
    assert json.loads(capsys.readouterr().out)["id"] == record["id"]
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.iterdir() if p.is_file()} == \
        {k: v for k, v in before.items() if k != ".lock"}


def test_a_finished_run_of_an_image_folder_is_returned_where_the_folder_is_not(tmp_path, capsys):
    """As above for an image folder, whose image size and classes were read from the folder before anything else
    (a review, left open for sessions): the record's own description of them serves instead. Another run, or one
    not trained, still needs the folder."""
    import shutil
    from neuralscale import cli
    from helpers import write_imagefolder
    write_imagefolder(tmp_path / "flowers", classes=3, per_class=4, size=32)
    flowers = f"imagefolder:{tmp_path / 'flowers'}"
    args = ["train", "--model", "vgg11", "--dataset", flowers, "--ratio", "0.0625",
            "--epochs", "1", "--batch-size", "8", "--device", "cpu", "--json", "--quiet"]
    out = tmp_path / "run"
    assert cli.main([*args, "--out", str(out)]) == 0
    record = json.loads((out / "record.json").read_text())
    space = ns.space("vgg11", flowers)
    shutil.rmtree(tmp_path / "flowers")
    # (a review: the model asked for, and a space given for other data, were taken from the record: the run came
    # back for any of them)
    capsys.readouterr()
    model = args.index("--model") + 1
    for other in ("resnet18", "vgg111"):
        assert cli.main([*args[:model], other, *args[model + 1:], "--out", str(out)]) == 2
    said = capsys.readouterr().err.splitlines()
    assert "holds another run" in said[0] and "unknown model 'vgg111'" in said[1], said
    with pytest.raises(ns.NeuralscaleError, match="ants does not exist"):
        ns.train(space, f"imagefolder:{tmp_path / 'ants'}", ratio=0.0625, out_dir=out, progress=False)
    assert ns.train(space, flowers, ratio=0.0625, out_dir=out, progress=False, config=ns.TrainConfig(
        epochs=1, batch_size=8, device="cpu"))["id"] == record["id"]  # the space it was trained in: the run
    capsys.readouterr()
    assert cli.main([*args, "--out", str(out)]) == 0
    assert json.loads(capsys.readouterr().out)["id"] == record["id"]
    assert json.loads((out / "record.json").read_text()) == record
    ratio = args.index("--ratio") + 1
    assert cli.main([*args[:ratio], "0.125", *args[ratio + 1:], "--out", str(out)]) == 2  # another run: refused
    assert "holds another run" in capsys.readouterr().err
    assert cli.main([*args, "--out", str(tmp_path / "new")]) == 2
    assert "flowers does not exist" in capsys.readouterr().err and not (tmp_path / "new" / "record.json").exists()
    damaged = tmp_path / "damaged"
    shutil.copytree(out, damaged)
    (damaged / "record.json").write_text(json.dumps({**record, "input": {"classes": 3}}))
    assert cli.main([*args, "--out", str(damaged)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"neuralscale: error: {damaged / 'record.json'}'s data description is damaged"], err
