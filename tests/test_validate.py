"""validate.py: the one check of option types and ranges, and its suggestions."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from neuralscale.errors import NeuralscaleError
from neuralscale.validate import at_least, check_data, check_types, fraction, matches, one_of, ratio, suggest


@pytest.mark.parametrize("value, tp, ok", [
    (1, int, True), (True, int, False), (1.5, float, True), (1, float, True), (float("nan"), float, False),
    ("no", bool, False), (False, bool, True), ([1, 2], list[int], True), ([1, "2"], list[int], False),
    (None, int | None, True), ("x", int | None, False), ((1, 2), tuple[int, ...], True), ({"a": 1}, dict, True),
    (1, bool, False), (0, bool, False), (True, float, False), (float("inf"), float, False), (10**400, float, False)])
def test_matches_is_strict_where_python_is_lax(value, tp, ok):
    assert matches(value, tp) is ok


def test_check_types_names_the_field_and_what_it_wanted():
    @dataclass
    class Settings:
        epochs: int = 1
        lr: float = 0.1
    check_types(Settings(), "training setting")
    with pytest.raises(NeuralscaleError, match="epochs"):
        check_types(Settings(epochs="3"), "training setting")


def test_ranges_and_choices():
    at_least("epochs", 1, 1)
    with pytest.raises(NeuralscaleError, match="epochs"):
        at_least("epochs", 0, 1)
    fraction("val", 0.0)
    with pytest.raises(NeuralscaleError, match=r"\[0, 1\)"):
        fraction("val", 1.0)
    with pytest.raises(NeuralscaleError, match="width ratio"):
        ratio(0)
    with pytest.raises(NeuralscaleError, match="cosine"):
        one_of("schedule", "cosin", ("step", "cosine"))
    assert "did you mean 'cosine'" in suggest("cosin", ["step", "cosine"]) or "cosine" in suggest("cosin",
                                                                                                   ["step", "cosine"])
    assert suggest("zzzz", ["step", "cosine"]) == ""


def test_data_settings_are_checked_once():
    check_data({"train": 10, "test": None, "tinyimagenet_split": "original"})
    with pytest.raises(NeuralscaleError):
        check_data({"train": 0})
    with pytest.raises(NeuralscaleError):
        check_data({"tinyimagenet_split": "mine"})


def test_the_bounds_themselves_are_inside_and_one_past_them_outside():
    """A mutation audit: a bound moved by one (at most, the largest width ratio) passed every test."""
    from neuralscale.validate import MAX_RATIO, SEED_MAX, at_most
    at_most("a seed", SEED_MAX, SEED_MAX)
    with pytest.raises(NeuralscaleError, match="a seed must be at most"):
        at_most("a seed", SEED_MAX + 1, SEED_MAX)
    at_most("a seed", None, SEED_MAX)
    assert ratio(MAX_RATIO) == MAX_RATIO == 64.0 and ratio(1) == 1.0
    for bad in (64.5, True, float("nan"), "1"):
        with pytest.raises(NeuralscaleError, match="width ratio"):
            ratio(bad)


def test_data_settings_refuse_unknown_keys_and_a_folder_that_is_not_a_path():
    with pytest.raises(NeuralscaleError, match=re.escape("unknown data setting(s): tran (did you mean train?)")):
        check_data({"tran": 10})
    with pytest.raises(NeuralscaleError, match="data_dir must be a path, got 5"):
        check_data({"data_dir": 5})
    with pytest.raises(NeuralscaleError, match="data settings must be a table of settings"):
        check_data(["train", 10])
    check_data({"data_dir": "/data", "test": 1, "tinyimagenet_split": "official"})


def test_a_wrong_optional_field_says_it_may_be_left_out():
    @dataclass
    class Settings:
        train: int | None = None
    check_types(Settings(train=None), "data setting")
    with pytest.raises(NeuralscaleError, match=r"data setting train must be an integer \(or left out\), got 'x'"):
        check_types(Settings(train="x"), "data setting")


def test_a_notebooks_numpy_numbers_are_taken_as_the_numbers_they_are_or_said_to_be_numpy(tmp_path):
    """NumPy numbers were refused as if they were not numbers ("a width ratio must be a number", "a budget must be a
    positive finite number", "epochs must be an integer, got np.int64(2)"; an adversarial pass): a ratio, a budget,
    a recipe's settings and a subset take them as the numbers they are (recorded as JSON's), and a check that still
    refuses one says it is NumPy's."""
    import numpy as np
    import neuralscale as ns
    from neuralscale.data import DataConfig
    sp = ns.space("vgg11", "synthetic")
    assert sp.uniform(np.float32(0.0625)) == sp.uniform(0.0625)
    assert ns.Budget.parse(np.int64(5000)) == ns.Budget.parse(5000)
    config = ns.TrainConfig(epochs=np.int64(2), lr=np.float64(0.05))
    assert type(config.epochs) is int and type(config.lr) is float and json.dumps(config.to_dict())
    assert type(DataConfig.from_settings("synthetic", {"train": np.int64(100)}).train) is int
    assert ns.scale(sp, "uniform", params=50_000, multiple=np.int64(8))["widths"] == \
        ns.scale(sp, "uniform", params=50_000, multiple=8)["widths"]
    with pytest.raises(NeuralscaleError, match=r"latency_batches' batch size must be a whole number, at least 1, got "
                                               r"np.int64\(8\) \(a NumPy or torch number: pass int\(x\) or "
                                               r"float\(x\)\)"):
        ns.train("vgg11", "synthetic", ratio=0.0625, latency_batches=[np.int64(8)])


def test_a_python_paths_tilde_is_the_home_folder_as_a_shell_reads_it(tmp_path, monkeypatch):
    """`ns.train(..., out_dir="~/runs/a")` made a folder named `~` in the working directory (an adversarial pass: a
    later `rm -rf ~` to clean it is the home folder); data paths read `~` already. Every path argument reads it."""
    import neuralscale as ns
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    record = ns.train("vgg11", "synthetic", ratio=0.0625, subset={"train": 32, "test": 16}, progress=False,
                      config=ns.TrainConfig(epochs=1, batch_size=16, device="cpu"), out_dir="~/runs/a")
    assert (tmp_path / "home" / "runs" / "a" / "record.json").is_file() and not (tmp_path / "~").exists()
    ns.export_run("~/runs/a", "~/net")
    assert ns.load_model("~/net.json")[1]["widths"] == record["widths"]
    sp = ns.space("vgg11", "synthetic")
    from neuralscale.scaling import uniform_law
    uniform_law(sp, sp.base_widths).save("~/law.json")
    assert ns.ScalingLaw.load(Path("~/law.json")).layers == list(sp.layer_names)
    assert ns.scale(sp, "neuralscale", params="50%", source="~/law.json")["widths"] == \
        ns.scale(sp, "neuralscale", params="50%", source=tmp_path / "home" / "law.json")["widths"]
    assert not (tmp_path / "~").exists()
    (tmp_path / "~").mkdir()  # an earlier version's folder named ~: said, not used (a review)
    (tmp_path / "~" / "law.json").write_text((tmp_path / "home" / "law.json").read_text())
    with pytest.warns(ns.NeuralscaleWarning, match=re.escape(f"{tmp_path / '~' / 'law.json'} (a folder named ~ in the "
                                                             "working directory) is not used: ~ is the home folder")):
        ns.ScalingLaw.load("~/law.json")
