"""methods.py: the methods' registry, scale's refusals and findings, latency laws solved where they were measured,
and a latency budget's fresh measurement (a mutation audit's second pass)."""

from __future__ import annotations

import json
import re
import shutil
import warnings

import pytest

import neuralscale as ns
from neuralscale.budget import Budget
from neuralscale.errors import NeuralscaleError, NeuralscaleWarning
from neuralscale.methods import fresh_latency, method_label, method_law, scale


def test_scale_refuses_an_iteration_below_one_and_booleans_for_numbers():
    sp = ns.space("vgg11", "synthetic")
    for kwargs, said in (({"iteration": 0}, "iteration must be a number from 1"),
                         ({"iteration": True}, "iteration must be a number from 1"),
                         ({"min_width": True}, "min_width must be a whole number, at least 1, got True"),
                         ({"batch_size": 0}, "batch_size must be a whole number, at least 1, got 0")):
        with pytest.raises(NeuralscaleError, match=said):
            scale(sp, "uniform", "25%", **kwargs)
    with pytest.raises(NeuralscaleError, match="unknown method 'l1-prune'; choose one of: uniform, morphnet"):
        method_law(sp, "l1-prune")  # a pruning baseline has no law
    # a share given with % that comes to a count of 1-100 is not said to be one meant as a share (a walkthrough)
    share = f"{48 / sp.params(sp.base_widths):.10%}"
    with pytest.raises(NeuralscaleError, match="out of reach") as e:
        scale(sp, "uniform", share)
    assert "written with %" not in str(e.value), str(e.value)
    with pytest.raises(NeuralscaleError, match=r"\(a share of the base model is written with %: 48%\)$"):
        scale(sp, "uniform", 48)
    # params= and macs= as train and DescentResult.build take them (a walkthrough: a TypeError), one budget only
    assert scale(sp, "uniform", params="50%")["params"] == scale(sp, "uniform", "50%")["params"]
    assert scale(sp, "uniform", macs="50%")["budget"] == sp.macs(sp.base_widths) / 2
    for args, kwargs, said in (((), {}, "macs=$"), (("50%",), {"macs": "20%"}, "macs=, not 2$")):
        with pytest.raises(NeuralscaleError, match=r"^scale: give one budget: budget \(a Budget, or a parameter count "
                                                   r"or share\), params= or " + said):
            scale(sp, "uniform", *args, **kwargs)


def test_a_ratio_budget_is_uniform_scaling_only_for_uniform(tiny_descent):
    """A width ratio's budget is the uniform network's parameters: uniform takes that network as it is (no
    fallback, MACs above the base's only when they are); every other method solves its own law for it."""
    from neuralscale.descent import DescentDir
    from neuralscale.scaling import solve, uniform_law
    sp = ns.space("vgg11", "synthetic")
    same = scale(sp, "uniform", Budget.of_ratio(1.0))
    assert same["widths"] == list(sp.base_widths) and same["fallback"] is False and same["macs_above_base"] is False
    assert scale(sp, "uniform", Budget.of_ratio(2.0))["macs_above_base"] is True
    half = DescentDir(tiny_descent[0]).iteration(1).half_widths
    for ratio in (0.0625, 0.125):
        got = scale(sp, "morphnet", Budget.of_ratio(ratio), source=tiny_descent[0])
        want = solve(uniform_law(sp, half), sp, sp.params(sp.uniform(ratio))).widths
        assert got["widths"] == want != sp.uniform(ratio), ratio


def test_scale_says_whether_its_law_is_a_fallback_and_extrapolated(tiny_descent, tmp_path):
    from neuralscale.descent import DescentDir
    sp = ns.space("vgg11", "synthetic")
    path, _ = tiny_descent
    d = DescentDir(shutil.copytree(path, tmp_path / "d"))
    fits = json.loads(d.fits_path.read_text())
    fits["laws"][0]["fallback"] = True  # iteration 1's law: uniform scaling, not a fit
    d.fits_path.write_text(json.dumps(fits))
    for it, fallback in zip(d.iterations(), (True, False)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NeuralscaleWarning)  # iteration 1's: the law is not a fit
            got = scale(sp, "neuralscale", 20000, source=d.path, iteration=it.number)
        assert got["fallback"] is it.law.fallback is fallback and got["iteration"] == it.number
    with pytest.warns(NeuralscaleWarning, match="of the base model's MACs"):
        big = scale(sp, "uniform", "400%")  # uniform scaling beyond the base: more MACs than it
    assert big["macs_above_base"] is True and scale(sp, "uniform", "25%")["macs_above_base"] is False
    with pytest.warns(NeuralscaleWarning, match="extrapolated|of the base model.s MACs"):
        far = scale(sp, "neuralscale", 50 * sp.params(sp.base_widths), source=path)
    assert far["extrapolated"] is any(w.startswith("extrapolated") for w in far["warnings"]) is True
    assert scale(sp, "neuralscale", 20000, source=path)["extrapolated"] is False


def test_method_labels_without_an_iteration():
    assert method_label("neuralscale", None) == "neuralscale" and method_label("morphnet", None) == "morphnet"


def test_a_latency_law_is_solved_where_its_descent_measured(tiny_descent, tmp_path):
    """The device and batch the descent measured at (batch 1 where its configuration does not say)."""
    from neuralscale.descent import DescentDir
    from neuralscale.methods import _check_measured_where
    d = DescentDir(shutil.copytree(tiny_descent[0], tmp_path / "d"))
    cfg = json.loads(d.config_path.read_text())
    for stated, batch in (({"latency_device": "cpu", "latency_batch": 4}, 4), ({}, 1)):
        descent = {k: v for k, v in cfg["descent"].items() if k not in ("latency_device", "latency_batch")}
        d.config_path.write_text(json.dumps({**cfg, "descent": {**descent, **stated}}))
        _check_measured_where(d.path, "cpu", batch)
        with pytest.raises(NeuralscaleError, match=f"measured on cpu at batch {batch}; solve it there"):
            _check_measured_where(d.path, "cpu", batch + 1)
    _check_measured_where(tmp_path / "fit.json", "cpu", 7)  # a fit file says nothing of where


def test_a_fresh_latency_measurement_reports_its_error_and_tolerance():
    """The figures are this host's; their relations are not: the error is signed (measured over budget), the
    tolerance is the measurement's relative spread (at least 2%), at the batch asked for. (Under budget the error
    is at most -100%, which a loaded host's spread exceeded, IQR 3.6x the median: `within` is asserted False only
    for a budget of a nanosecond, a hundred thousand times under any forward pass.)"""
    sp = ns.space("vgg11", "synthetic")
    widths = sp.uniform(0.0625)
    for budget in (1e-6, 1e4):
        m = fresh_latency(sp, widths, budget, "cpu", 2)
        assert m["rel_error"] == pytest.approx((m["median_ms"] - budget) / budget)
        assert (m["rel_error"] > 0) is (budget == 1e-6)
        assert m["tolerance"] == pytest.approx(max(0.02, m["iqr_ms"] / m["median_ms"]))
        assert m["within"] is (abs(m["rel_error"]) <= m["tolerance"])
        assert m["within"] is False or budget == 1e4


def test_a_fallback_law_of_a_macs_descent_is_that_descents(tiny_descent, tmp_path):
    """A MACs descent's fallback law is uniform scaling (fitted against nothing): its configuration still belongs
    to the MACs descent, as its runs are labelled."""
    from neuralscale.descent import DescentDir
    sp = ns.space("vgg11", "synthetic")
    d = DescentDir(shutil.copytree(tiny_descent[0], tmp_path / "d"))
    cfg = json.loads(d.config_path.read_text())
    d.config_path.write_text(json.dumps({**cfg, "descent": {**cfg["descent"], "objective": "macs"}}))
    fits = json.loads(d.fits_path.read_text())
    fits["laws"][0]["fallback"] = True
    d.fits_path.write_text(json.dumps({**fits, "descent": d.fingerprint()}))  # the laws of the edited descent
    law = d.iteration(1).law
    assert law.fallback and law.objective == "params"
    with pytest.warns(NeuralscaleWarning, match="not a fit|extrapolated"):
        got = scale(sp, "neuralscale", Budget.parse("25%", "macs"), source=d.path, iteration=1)
    assert got["objective"] == "macs" and got["fallback"] is True


@pytest.mark.parametrize("within", [True, False])
def test_a_latency_budget_warns_only_when_measured_outside_its_tolerance(tiny_descent, monkeypatch, within):
    """The measurement made up (the words and when they are said, not this host's timings); a law fitted against
    parameters and converted to a latency budget is solved at any batch (where latency was measured binds only
    a latency law)."""
    from neuralscale import methods
    monkeypatch.setattr(methods, "cost_function", lambda space, metric, device="cpu", batch_size=1:
                        lambda w: space.macs(w) / 1e6)
    monkeypatch.setattr(methods, "fresh_latency", lambda space, widths, budget, device, batch_size: {
        "median_ms": budget * 1.3, "iqr_ms": 0.0, "rel_error": 0.3, "tolerance": 0.02, "within": within,
        "device": "cpu"})
    sp = ns.space("vgg11", "synthetic")
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        got = scale(sp, "uniform", Budget.parse("50%", "latency"), batch_size=2)
    fresh = [str(w.message) for w in said if "a fresh measurement gives" in str(w.message)]
    assert got["measured"]["within"] is within and len(fresh) == (0 if within else 1)
    if not within:
        assert "+30.0% from the budget (tolerance 2.0%)" in fresh[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NeuralscaleWarning)
        got = scale(sp, "neuralscale", Budget.parse("50%", "latency"), source=tiny_descent[0], convert=True,
                    batch_size=2)
    assert got["metric"] == "latency" and got["objective"] == "params"


def test_a_law_files_one_law_takes_no_other_iteration(tiny_descent, tmp_path):
    """An iteration given with a law file was ignored (its one law used; an adversarial pass): refused, unless it is
    that law's; a descent's folder chooses it."""
    d = tiny_descent[0]
    sp = ns.space("vgg11", "synthetic")
    ns.ScalingLaw.load(d / "fits.json").save(tmp_path / "law.json")  # iteration 2's
    assert ns.scale(sp, "neuralscale", params="50%", source=tmp_path / "law.json", iteration=2)["iteration"] == 2
    with pytest.raises(NeuralscaleError, match=re.escape(f"{tmp_path / 'law.json'} gives the law of iteration 2 (a "
                                                         "law file's one law, or a descent's last), not iteration 1: "
                                                         "give the descent's folder to choose an iteration, or leave "
                                                         "the iteration out")):
        ns.scale(sp, "neuralscale", params="50%", source=tmp_path / "law.json", iteration=1)
    assert ns.scale(sp, "neuralscale", params="50%", source=d, iteration=1)["iteration"] == 1
