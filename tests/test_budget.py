"""Budgets: one parser for every spelling, and the record's form, names and texts of earlier releases."""

from __future__ import annotations

import pytest

import neuralscale as ns
from neuralscale.budget import Budget
from neuralscale.errors import NeuralscaleError
from neuralscale.runs import RunSpec
from neuralscale.store import budget_key


@pytest.mark.parametrize("text, metric, value, share", [
    ("25%", "params", None, 0.25), ("2.8M", "params", 2.8e6, None), ("150k", "macs", 150e3, None),
    ("1,200,000", "params", 1.2e6, None), (" 1.5G ", "macs", 1.5e9, None), (2795410, "params", 2795410.0, None),
    ("12.5%", "latency", None, 0.125), ("8", "latency", 8.0, None)])
def test_every_spelling_parses_to_one_value(text, metric, value, share):
    b = Budget.parse(text, metric)
    assert (b.metric, b.value, b.share, b.ratio) == (metric, value, share, None)
    assert isinstance(b.value, (float, type(None)))  # records of earlier releases hold floats for parsed amounts


@pytest.mark.parametrize("bad", ["", "0", "-5", "x", "12%%", "nan", "inf", "0%", "1e400", True, None, [1], "5q"])
def test_a_bad_budget_is_one_clear_error(bad):
    with pytest.raises(NeuralscaleError, match="must be a positive finite number"):
        Budget.parse(bad)


def test_metric_and_ratio_are_checked():
    with pytest.raises(NeuralscaleError, match="unknown budget metric 'flops'"):
        Budget("flops", 1.0)
    with pytest.raises(NeuralscaleError, match="width ratio"):
        Budget.of_ratio(0)
    with pytest.raises(NeuralscaleError, match="a macs budget where a params budget"):
        Budget.parse(Budget("macs", 5.0), "params")


def test_resolve_against_a_space():
    sp = ns.space("vgg11", "synthetic")
    base_p, base_m = sp.params(sp.base_widths), sp.macs(sp.base_widths)
    assert Budget.parse("25%").resolve(sp).value == 0.25 * base_p
    assert Budget.parse("50%", "macs").resolve(sp).value == 0.5 * base_m
    r = Budget.of_ratio(0.25).resolve(sp)
    assert r.value == sp.params(sp.uniform(0.25)) and isinstance(r.value, int)
    assert Budget.parse("2.8M").resolve(sp).value == 2.8e6  # an amount stays what it is
    assert Budget.parse("10%", "latency").resolve(sp, cost=lambda w: 4.0).value == pytest.approx(0.4)
    with pytest.raises(NeuralscaleError, match="measured latency"):
        Budget.parse("10%", "latency").resolve(sp)
    # a key or a space of the wrong kind: one NeuralscaleError, not a ValueError or AttributeError from inside
    assert Budget.from_key(Budget.parse("25%").key) == Budget.parse("25%")
    for key in ("junk", ("params",), (1, 2)):
        with pytest.raises(NeuralscaleError, match=r"a budget's key is \(kind, amount\)"):
            Budget.from_key(key)
    with pytest.raises(NeuralscaleError, match="DescentConfig.resolve takes the space of a model and dataset "
                                               r"\(ns.space\(model, dataset\)\), not str"):
        ns.DescentConfig().resolve("vgg11")


# the record's form, run directory names, report keys and texts that neuralscale 0.1.0 wrote (runs.budget_slug,
# store.budget_key and budget_text of that release): a store written then still resumes and reports the same
@pytest.mark.parametrize("record, slug, key, text", [
    ({"metric": "params", "value": 579786, "ratio": 0.25}, "r0.25", ("ratio", 0.25), "ratio 0.25"),
    ({"metric": "params", "value": 700000.0, "share": 0.25}, "params25pct", ("params share", 0.25),
     "25% of the base params"),
    ({"metric": "macs", "value": 150000.0}, "macs150k", ("macs", 150000.0), "150,000 macs"),
    ({"metric": "params", "value": 2800000.0}, "params2.8M", ("params", 2800000.0), "2,800,000 params"),
    ({"metric": "params", "value": 512}, "params512", ("params", 512.0), "512 params")])
def test_records_of_earlier_releases_keep_their_names(record, slug, key, text):
    b = Budget.from_dict(record)
    assert b.to_dict() == record and b.slug == slug and b.key == key and b.text == text
    assert Budget.from_key(key).text == text
    assert budget_key({"budget": record}) == key


def test_a_run_spec_keeps_its_id_and_record_form():
    # the id of a spec written by the release before Budget existed (same dict, same hash)
    spec = RunSpec(model="vgg11", dataset="synthetic", method="uniform", config={"seed": 1, "epochs": 2},
                   widths=[8] * 8, budget={"metric": "params", "value": 579786, "ratio": 0.25})
    assert spec.id == "uniform-r0.25-s1-2eed949a57"  # what the release before Budget named it
    shared = RunSpec(model="vgg11", dataset="synthetic", method="uniform", config={"seed": 0}, widths=[8] * 8,
                     budget=Budget.parse("25%").resolve(ns.space("vgg11", "synthetic")))
    assert shared.budget.value != 700000.0
    shared.budget = Budget("params", 700000.0, share=0.25)
    assert shared.id == "uniform-params25pct-s0-88442893db"
    again = RunSpec.from_dict(spec.to_dict())
    assert again.id == spec.id and again.budget == spec.budget
    assert spec.to_dict()["budget"] == {"metric": "params", "value": 579786, "ratio": 0.25}
    bare = RunSpec(model="vgg11", dataset="synthetic", method="explicit", config={}, widths=[8] * 8)
    assert bare.budget is None and bare.to_dict()["budget"] == {} and bare.id == "explicit-s0-1e5f3eb710"


def test_every_door_takes_the_same_spellings(tmp_path):
    sp = ns.space("vgg11", "synthetic")
    by_api = ns.scale(sp, "uniform", "25%")["widths"]
    assert by_api == ns.scale(sp, "uniform", Budget.parse("25%"))["widths"]
    from neuralscale.sweep import SweepConfig, plan
    cfg = SweepConfig(model="vgg11", dataset="synthetic", methods=["uniform"], params=[Budget.parse("25%"), "2e5"],
                      seeds=[0], train={"epochs": 1})
    assert cfg.params == ["25%", "2e5"]  # kept as spelled: the sweep's file says what a person wrote
    specs = plan(cfg)
    assert specs[0].widths == by_api and specs[0].budget.share == 0.25
    assert specs[1].budget.to_dict() == {"metric": "params", "value": 2e5}


def test_a_sweeps_ids_are_the_release_befores():
    """Whole-number ratios stay what they were given as (1, not 1.0) and a share keeps the digits it was typed
    with, so a store planned before Budget resumes without training anything again (ids computed by bb21cfa)."""
    from neuralscale.sweep import SweepConfig, plan
    cfg = SweepConfig(model="vgg11", dataset="synthetic", methods=["uniform", "l1-prune"], ratios=[1, 0.25],
                      params=[Budget.parse("12.345678%")], seeds=[0], train={"epochs": 1}, pretrain_ratio=1)
    assert cfg.params == ["12.345678%"]
    assert [s.id for s in plan(cfg)] == [
        "uniform-r1-s0-9f47ba53de", "l1-prune-r1-s0-87e7906acf", "uniform-r0.25-s0-a095322a21",
        "l1-prune-r0.25-s0-9622a3b8a2", "uniform-params12.35pct-s0-b207726050", "l1-prune-params12.35pct-s0-443cd5bfe9"]
    with pytest.raises(NeuralscaleError, match="a params budget where a macs budget"):
        SweepConfig(model="vgg11", dataset="synthetic", macs=[Budget.parse("5%")])
    with pytest.raises(NeuralscaleError, match="given as a ratio"):
        SweepConfig(model="vgg11", dataset="synthetic", params=[Budget.of_ratio(0.5)])


def test_a_run_directory_prints_as_its_path(tmp_path):
    from neuralscale.layout import RunDir
    assert f"remove {RunDir(tmp_path / 'w')}" == f"remove {tmp_path / 'w'}"


def test_a_budget_made_directly_is_checked_as_a_parsed_one_is():
    """An adversarial pass: Budget('macs', value='x') failed later with a ValueError, Budget() with a TypeError,
    and Budget(value=-1) gave a slug of 'params-1'."""
    for kwargs, said in (({"metric": "macs", "value": "x"}, "value must be a positive finite number, got 'x'"),
                         ({}, "a budget needs a value, a share or a ratio"),
                         ({"share": -1}, "share must be a positive finite number"),
                         ({"value": float("nan")}, "value must be a positive finite number")):
        with pytest.raises(NeuralscaleError, match=said):
            Budget(**kwargs)


def test_a_run_description_names_a_latency_budget_in_milliseconds():
    """A sweep's progress lines said `uniform 4 latency seed 0` for a 4.301 ms budget (a documentation audit)."""
    assert Budget.parse("4.3012", "latency").words == "4.3012 ms"
    assert Budget.parse("12345.678", "latency").words == "12,345.7 ms"
    assert Budget.parse("579786", "params").words == "579,786 params"
    assert Budget.parse("150000", "macs").words == "150,000 macs"
    assert Budget.of_ratio(0.25).words == "ratio 0.25"
    # a share, named as reports name it, with its amount (progress lines named the amount alone: a reviewer)
    assert Budget("latency", 0.249515, share=0.03).words == "3% of the base latency (0.249515 ms)"
    assert Budget("params", 2_794_510.0, share=0.25).words == "25% of the base params (2,794,510 params)"


def test_a_budgets_directory_name_takes_the_largest_unit_it_reaches():
    assert [Budget.parse(x).slug for x in ("999", "1000", "1M", "2.5M", "1G")] == \
        ["params999", "params1k", "params1M", "params2.5M", "params1G"]
    assert Budget.parse("25%").slug == "params25pct" and Budget.parse("150k", "macs").slug == "macs150k"


@pytest.mark.parametrize("bad", ["inf%", "1e400", "1e400%", -5, 0, float("inf")])
def test_a_budget_past_the_numbers_is_refused_in_the_words_of_its_metric(bad):
    """A mutation audit: an infinite share or amount, or a number at or below zero, was refused only by the
    constructor's check, whose message lost the metric, the examples and the budget as it was given."""
    with pytest.raises(NeuralscaleError) as err:
        Budget.parse(bad, "macs")
    assert str(err.value) == ("a macs budget must be a positive finite number (e.g. 2795410 or 2.8M) or a share of "
                              f"the base model (e.g. 25%), got {bad!r}")


def test_a_budget_made_directly_is_checked_for_its_metric_and_for_zero():
    with pytest.raises(NeuralscaleError, match="a ratio budget counts parameters"):
        Budget("macs", ratio=0.5)
    for kwargs in ({"value": 0}, {"share": 0.0}, {"metric": "latency", "value": 0.0}):
        with pytest.raises(NeuralscaleError, match="must be a positive finite number, got 0"):
            Budget(**kwargs)
    assert Budget.from_dict({}) is None and Budget.from_dict(None) is None  # a record without a budget


def test_a_budgets_amount_is_its_records_value_or_its_share_of_the_latency_given():
    """A recorded ratio budget already holds its parameters (no space needed to read them); a latency share is of
    the latency passed (a mutation audit: both passed when changed)."""
    assert Budget.from_dict({"metric": "params", "value": 579786, "ratio": 0.25}).amount() == 579786.0
    sp = ns.space("vgg11", "synthetic")
    assert Budget.parse("10%", "latency").amount(sp, cost=lambda w: 4.0) == pytest.approx(0.4)
    assert Budget.parse("50%", "macs").amount(sp) == pytest.approx(0.5 * sp.macs(sp.base_widths))


def test_a_budgets_spellings_and_texts_for_every_metric():
    """Amounts as the CLI prints them, a share not typed spelled as a share, keys of floats, latency texts in
    milliseconds, and a share equal to itself however it was typed (a mutation audit: each passed when changed)."""
    from neuralscale.budget import amount
    assert amount(2794510, "params") == "2,794,510 parameters" and amount(150000, "macs") == "150,000 MACs"
    assert amount(4.30125, "latency") == "4.301 ms"
    assert Budget("params", share=0.25).spelling == "25%" and Budget("macs", 5.0).spelling == 5.0
    key = Budget.from_dict({"metric": "macs", "value": 5.0, "share": 1}).key
    assert key == ("macs share", 1.0) and isinstance(key[1], float)
    assert Budget.parse("4.3012", "latency").text == "4.3012 ms"
    assert Budget.parse("25%") == Budget.parse("25.0%") and Budget.parse("25.0%").spelling == "25.0%"
