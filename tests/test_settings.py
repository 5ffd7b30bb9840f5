"""settings.py: one declaration per option, read by the command line and experiment files alike."""

from __future__ import annotations

import pytest

from neuralscale import cli
from neuralscale.data import DataConfig
from neuralscale.descent import DescentConfig
from neuralscale.errors import NeuralscaleError
from neuralscale.sweep import SweepConfig
from neuralscale.train import TrainConfig

# what a command takes that is not a configuration's setting: what to run, where to write, how to show it
COMMAND_ONLY = {
    "descend": {"model", "dataset", "convcut", "out", "force", "json", "plots", "quiet"},
    "train": {"model", "dataset", "convcut", "out", "force", "json", "quiet", "widths", "ratio", "method", "params",
              "macs", "source", "iteration", "preset", "init_from", "convert"},
    "sweep": {"model", "dataset", "convcut", "out", "force", "json", "quiet", "preset", "report", "retry_failed",
              "executor",
              "workers", "threads", "devices", "address", "gpus_per_run", "cpus_per_run"},
}
CONFIGS = {"descend": (DescentConfig, DataConfig), "train": (TrainConfig, DataConfig),
           "sweep": (TrainConfig, DataConfig, SweepConfig)}


@pytest.mark.parametrize("command", sorted(COMMAND_ONLY))
def test_every_option_of_a_command_is_a_declared_setting(command):
    """No option is translated on the way down: each is a field's name or the flag its field declares."""
    sub = next(a for a in cli.build_parser()._actions if a.__class__.__name__ == "_SubParsersAction")
    dests = {a.dest for a in sub.choices[command]._actions} - {"help"}
    declared = set().union(*(set(c.flags()) for c in CONFIGS[command]))
    assert dests - declared - COMMAND_ONLY[command] == set() and COMMAND_ONLY[command] <= dests


def test_a_sweeps_pretrain_ratio_is_given_on_the_command_line_too():
    """Only an experiment file could set it (a walkthrough: four full-width runs to start the pruning baselines
    from, on the command line): --pretrain-ratio reaches the sweep's setting."""
    args = cli.build_parser().parse_args(["sweep", "--model", "vgg11", "--dataset", "synthetic", "--out", "s",
                                          "--pretrain-ratio", "0.5"])
    assert cli._given(args, SweepConfig, skip=("model", "dataset", "convcut"))["pretrain_ratio"] == 0.5


def test_flags_fields_and_inverted_flags_reach_one_field():
    a = DescentConfig.from_flags({"prune-k": 3, "prune_interval": 4, "masking": True})
    b = DescentConfig.from_dict({"k": 3, "interval": 4, "physical": False})
    assert a == b
    assert TrainConfig.from_flags({"no_augment": True}).augment is False
    assert DataConfig.keys_from_flags({"train_subset": 10, "test": 5}) == {"train": 10, "test": 5}
    assert SweepConfig.keys_from_flags({"from": "d", "preset": "quick"}) == {"descent": "d", "preset": "quick"}


def test_a_wrong_key_names_the_flag_and_a_field_set_twice_is_refused():
    with pytest.raises(NeuralscaleError, match=r"unknown descent setting\(s\): prune_intervall \(did you mean "
                                               r"prune_interval\?\)"):
        DescentConfig.from_flags({"prune_intervall": 4})
    with pytest.raises(NeuralscaleError, match="sets k twice: prune_k and k"):
        DescentConfig.from_flags({"prune_k": 3, "k": 4}, "[descent]")
    # a data subset given to a configuration says where it goes (a walkthrough: no word, no suggestion)
    with pytest.raises(NeuralscaleError, match=r"^unknown descent setting\(s\): train_subset \(a data setting: give "
                                               r"subset=\{'train': N\} to the call \(--train-subset\)\)$"):
        DescentConfig(train_subset=512)
    with pytest.raises(NeuralscaleError, match=r"^unknown training setting\(s\): test_subset \(a data setting: give "
                                               r"subset=\{'test': N\} to the call"):
        TrainConfig.from_dict({"test_subset": 3})
    # each key with its own way on (a review: the first's hint read as all of theirs), flags' names too
    with pytest.raises(NeuralscaleError, match=r"^unknown training setting\(s\): train-subset \(a data setting: give "
                                               r"subset=\{'train': N\} to the call \(--train-subset\)\), epoch "
                                               r"\(did you mean epochs\?\)$"):
        TrainConfig.from_flags({"train-subset": 3, "epoch": 2})
    with pytest.raises(NeuralscaleError, match="masking must be true or false"):
        DescentConfig.from_flags({"masking": "yes"})
    with pytest.raises(NeuralscaleError, match="descent settings must be a table"):
        DescentConfig.from_dict([1])
    with pytest.raises(NeuralscaleError, match="bad sweep settings: .*'model' and 'dataset'"):  # not a TypeError
        SweepConfig.from_dict({"seeds": [0]})


@pytest.mark.parametrize("make, message", [
    (lambda: DescentConfig(k=0), r"prune_k \(--prune-k\) must be at least 1, got 0"),
    (lambda: DescentConfig(warmup_epochs=-1), "warmup_epochs must be at least 0"),
    (lambda: DescentConfig(lr=0.0), r"learning rate \(lr\) must be positive"),
    (lambda: TrainConfig(schedule="cosin"), "unknown schedule 'cosin'"),
    (lambda: TrainConfig(bn_sparsity=-1e-4), "bn_sparsity must be at least 0"),
    (lambda: TrainConfig(epochs="3"), "training setting epochs must be"),
])
def test_ranges_are_declared_on_the_field_and_checked_once(make, message):
    with pytest.raises(NeuralscaleError, match=message):
        make()


def test_train_options_override_the_paper_preset():
    """`train --preset paper --epochs 2` trains 2 epochs (the paper's steps at the same fractions of them); an
    option left out is the preset's, not the command's own default (which, without a preset, it is)."""
    parser = cli.build_parser()
    base = ["train", "--model", "vgg11", "--dataset", "cifar10"]

    def config(*extra):
        return cli._train_config(parser.parse_args([*base, *extra]))
    paper = config("--preset", "paper")
    assert (paper.epochs, paper.batch_size, paper.lr, paper.schedule) == (300, 128, 0.1, "step")
    mine = config("--preset", "paper", "--epochs", "2", "--lr", "0.01", "--batch-size", "32", "--momentum", "0.9",
                  "--weight-decay", "0", "--schedule", "cosine", "--seed", "3")
    assert (mine.epochs, mine.batch_size, mine.lr, mine.momentum, mine.weight_decay, mine.schedule, mine.seed) == \
        (2, 32, 0.01, 0.9, 0.0, "cosine", 3) and mine.milestones == paper.milestones
    assert config() == TrainConfig() and config("--epochs", "2") == TrainConfig(epochs=2)


def test_float32_training_is_asked_for_by_no_amp_by_train_and_sweep_alike():
    """Training autocasts to bf16 on CUDA unless told: `--no-amp` trains in float32, as the original did (with
    `--preset paper` too), `--amp` autocasts anywhere, and left out it is the device's default (None)."""
    parser = cli.build_parser()
    train = ["train", "--model", "vgg11", "--dataset", "cifar10"]
    assert cli._train_config(parser.parse_args([*train, "--preset", "paper"])).amp is None
    assert cli._train_config(parser.parse_args([*train, "--preset", "paper", "--no-amp"])).amp is False
    assert cli._train_config(parser.parse_args([*train, "--amp"])).amp is True
    sweep = ["sweep", "--model", "vgg11", "--dataset", "cifar10", "--out", "s"]
    assert cli._given(parser.parse_args([*sweep, "--no-amp"]), TrainConfig)["amp"] is False
    assert "amp" not in cli._given(parser.parse_args(sweep), TrainConfig)
    # an experiment's [sweep.train] says amp = false; no_amp is refused with the name to use (no_amp = false would
    # have read as amp = true: bf16 autocast even on a CPU, not the default)
    assert TrainConfig.keys_from_flags({"amp": False}) == {"amp": False}
    with pytest.raises(NeuralscaleError, match=r"unknown training setting\(s\): no_amp \(did you mean amp\?\)"):
        TrainConfig.keys_from_flags({"no_amp": True})


def test_the_parser_is_built_once_parses_alike_again_and_anew_for_a_new_family():
    """cli.build_parser is built once per process (a program or test calling `main` many times): a parse leaves
    it as it was, and a family registered later gets a parser whose help lists it."""
    from neuralscale import zoo
    parser = cli.build_parser()
    assert cli.build_parser() is parser
    args = ["report", "somewhere", "--format", "svg"]
    first = vars(parser.parse_args(args))
    default = vars(parser.parse_args(["report", "somewhere"]))
    assert first["format"] == ["svg"] and tuple(default["format"]) == ("png",)
    assert vars(parser.parse_args(args)) == first and vars(parser.parse_args(["report", "somewhere"])) == default
    zoo.register_family("cachedparsertest")(lambda info, convcut: None)
    try:
        again = cli.build_parser()
        assert again is not parser
        info = next(a for a in again._actions if a.__class__.__name__ == "_SubParsersAction").choices["info"]
        assert "cachedparsertest" in " ".join(info.format_help().split())
    finally:
        zoo.FAMILIES.pop("cachedparsertest")
        zoo.FAMILY_INFO.pop("cachedparsertest")
    assert cli.build_parser() is not again  # as before the family came and went


def test_a_configuration_made_in_python_names_an_unknown_keyword():
    """TrainConfig(epoch=3) was the dataclass's TypeError; experiment files already named the nearest key."""
    import neuralscale as ns
    with pytest.raises(ns.NeuralscaleError, match=r"unknown training setting\(s\): epoch \(did you mean epochs\?\)"):
        ns.TrainConfig(epoch=3)
    with pytest.raises(ns.NeuralscaleError, match=r"unknown descent setting\(s\): bogus"):
        ns.DescentConfig(bogus=1)
    assert ns.TrainConfig(epochs=3).epochs == 3
