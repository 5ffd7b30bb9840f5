"""The pruning package's parts on their own: the schedule, the pure selection, the trajectory recorder, and the
session that the Trainer's callback and a plain loop (loop.Pruner) both drive."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import neuralscale as ns
from neuralscale.pruning import ORIGINAL_K, PruningSession, Schedule, paced_k
from neuralscale.pruning.select import choose, half_widths, last_channel
from neuralscale.pruning.trajectory import Trajectory


def _alive(*widths):
    return [torch.ones(w, dtype=torch.bool) for w in widths]


def test_the_schedule_counts_as_the_original():
    s = Schedule(k=10, interval=50, prune_fraction=0.95)
    assert s.target(2752) == 2614 and s.max_steps(2752) == 262
    assert [n for n in range(1, 160) if s.due(n)] == [51, 101, 151]  # the first step after interval + 1 batches
    with pytest.raises(ValueError, match="trajectory_start"):
        Schedule(trajectory_start="step")
    with pytest.raises(ValueError):
        Schedule(k=0)


def test_the_schedules_defaults_are_the_originals_and_its_bounds_are_checked():
    """A session or TaylorPruner given no schedule prunes as the original and as a descent resolves it for the
    paper's models on CIFAR-10: 10 channels every 50 batches after 10 epochs, to 95%, ending at the first step that
    would empty a layer, rows once every layer has lost one."""
    from neuralscale.descent import DescentConfig
    assert Schedule() == Schedule(k=10, interval=50, warmup_epochs=10, prune_fraction=0.95, min_width=1,
                                  prune_past_one=False, trajectory_start="all-lost")
    assert Schedule() == Schedule(**DescentConfig().resolve(ns.space("vgg11", "cifar10")).schedule_fields())
    for bad in (dict(interval=0), dict(min_width=0), dict(prune_fraction=0.0), dict(prune_fraction=1.01)):
        with pytest.raises(ValueError, match="pruning schedule needs"):
            Schedule(**bad)
    assert Schedule(prune_fraction=1.0).target(29) == 29  # every channel may go
    assert Schedule(prune_fraction=0.95).target(29) == 27  # 27.55: never past the fraction (not rounded to 28)


def test_an_iterations_epochs_are_the_warm_up_and_the_most_steps_in_full_batches_with_one_to_spare():
    s = Schedule(k=10, interval=50, warmup_epochs=10, prune_fraction=0.95)
    # 10 steps of 50 batches and the first one's extra batch (501), at 3 full batches of 300 an epoch (not 4):
    # 167 epochs, after 10 of warm-up, and one more
    assert s.max_steps(100) == 10 and s.epochs(100, images=1000, batch_size=300) == 10 + 167 + 1
    assert Schedule(k=10, interval=50, warmup_epochs=0).epochs(100, images=100, batch_size=300) == 501 + 1


def test_the_pace_is_the_originals_share_of_the_network_rounded_half_up():
    full = [64, 128, 256, 256, 512, 512, 512, 512]  # VGG11's 2,752 channels
    assert paced_k(full, full) == ORIGINAL_K == 10
    assert paced_k([w // 4 for w in full], full) == 3  # 2.5 channels: rounded half up
    assert paced_k([w // 8 for w in full], full) == 1  # 1.25
    assert paced_k([1] * 8, full) == 1  # 0.03: never a step of none
    assert paced_k([4, 4], [0, 0]) == ORIGINAL_K  # no full-width channels to pace by: the original's k


def test_a_small_network_of_ones_own_takes_a_smaller_step_at_full_width(tmp_path):
    """The paper's families keep the original's 10 a step; a network of one's own with under 640 channels takes one
    per 64 of them (a network of 40 channels was pruned in 4 steps, 4 rows: the descent refused its law), and a
    descent begun with the earlier default (10) continues with it rather than being refused as another."""
    from torch import nn

    from neuralscale.pruning import full_width_k
    assert full_width_k([8, 16, 16], paper=True) == 10 and full_width_k([8, 16, 16], paper=False) == 1
    assert [full_width_k([n], paper=False) for n in (63, 64, 639, 640, 5000)] == [1, 1, 9, 10, 10]
    assert ns.DescentConfig().resolve(ns.space("vgg11", "synthetic")).k == 10  # the paper's: as the original

    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.f = nn.Sequential(*[m for i, o in ((3, 8), (8, 16), (16, 16))
                                     for m in (nn.Conv2d(i, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU())])
            self.fc = nn.Linear(16, 10)

        def forward(self, x):
            return self.fc(self.f(x).mean((2, 3)))
    sp = ns.space(Tiny(), torch.zeros(1, 3, 32, 32))
    assert ns.DescentConfig().resolve(sp).k == 1 and ns.DescentConfig(k=4).resolve(sp).k == 4
    assert ns.DescentConfig(base_ratio=0.5).resolve(sp).k == 1  # paced as before, from the full width's
    with pytest.raises(ns.NeuralscaleError, match=r"base ratio \(--base-ratio\) is a ratio in \(0, 1\] of the "
                                                  "base widths, got 2"):  # (a review: a folder left damaged)
        ns.DescentConfig(base_ratio=2.0)
    kw = dict(iterations=1, warmup_epochs=0, interval=1, batch_size=64, allow_fallback=True,
              device="cpu")
    old = ns.descend(sp, "synthetic", tmp_path / "d", ns.DescentConfig(k=10, **kw), subset={"train": 128},
                     progress=False)  # as the earlier default recorded it
    again = ns.descend(sp, "synthetic", tmp_path / "d", ns.DescentConfig(**kw), subset={"train": 128},
                       progress=False)
    assert again[0].alpha == old[0].alpha
    with pytest.raises(ns.NeuralscaleError, match=r"k: recorded 10, now 3"):  # a k given is still its own
        ns.descend(sp, "synthetic", tmp_path / "d", ns.DescentConfig(k=3, **kw), subset={"train": 128},
                   progress=False)


def test_choose_takes_the_lowest_scores_across_layers_with_ties():
    scores = [torch.tensor([0.5, 0.1, 0.9]), torch.tensor([0.1, 0.2, 0.1, 0.7])]
    assert choose(scores, _alive(3, 4), [1, 1], want=2) == [(0, 1), (1, 0), (1, 2)]  # the tie at 0.1 comes along
    dead = _alive(3, 4)
    dead[1][0] = False  # a pruned channel is never chosen again
    assert choose(scores, dead, [1, 1], want=2) == [(0, 1), (1, 2)]
    # past one: a layer at min_width is passed over; the original's rule takes it (and last_channel ends the step)
    one = [torch.tensor([0.0]), torch.tensor([0.3, 0.2])]
    assert choose(one, _alive(1, 2), [1, 1], want=1, prune_past_one=True) == [(1, 1)]
    assert choose(one, _alive(1, 2), [1, 1], want=1) == [(0, 0)]


def test_a_grouped_layer_loses_one_channel_per_group():
    scores = [torch.tensor([0.1, 0.9, 0.2, 0.8]), torch.tensor([0.5, 0.6])]
    # two groups of two: the unit is the cheapest channel of each group, scored by their mean (0.15)
    assert choose(scores, _alive(4, 2), [2, 1], want=1) == [(0, 0), (0, 2)]
    # the unit's channels are each group's cheapest, wherever they sit in it (1 of [5, 1], 0 of [4, 0]), and its
    # score their mean (0.5), not their sum (1.0), which 0.6 would undercut (a mutation audit)
    scores = [torch.tensor([5.0, 1.0, 4.0, 0.0]), torch.tensor([0.6, 9.0])]
    assert choose(scores, _alive(4, 2), [2, 1], want=2) == [(0, 1), (0, 3)]


def test_a_grouped_layer_keeps_its_floor_in_every_group():
    # one channel a group is the floor: a layer of two groups of one has no unit to give
    assert choose([torch.tensor([0.1, 0.2])], _alive(2), [2], want=1) == []
    # min_width 3 over 2 groups keeps ceil(3 / 2) = 2 a group: groups of two give nothing, of three one unit
    assert choose([torch.tensor([0.1, 0.2, 0.3, 0.4])], _alive(4), [2], want=1, min_width=3) == []
    assert choose([torch.tensor([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])], _alive(6), [2], want=1, min_width=3) == [(0, 0), (0, 3)]
    # a unit is scored by its mean (0.5 here), not its cheapest channel (0), which 0.3 would not undercut
    scores = [torch.tensor([0.0, 5.0, 1.0, 5.0]), torch.tensor([0.3, 9.0])]
    assert choose(scores, _alive(4, 2), [2, 1], want=1) == [(1, 0)]
    # groups are the physical channels' (pruned ones included): with 0 and 3 pruned, [1, 2] and [4, 5]
    alive = _alive(6)
    alive[0][[0, 3]] = False
    assert choose([torch.tensor([0.0, 0.4, 0.5, 0.0, 0.1, 0.9])], alive, [2], want=2) == [(0, 1), (0, 4)]
    # scores of any dtype (a criterion may rank with integers)
    assert choose([torch.tensor([3, 1, 4, 0])], _alive(4), [2], want=2) == [(0, 1), (0, 3)]


def test_the_last_channel_rule_and_morphnets_half_point():
    assert last_channel([(0, 0)], current=[1, 4], initial=[4, 4]) == 0  # a layer already at one ends it
    assert last_channel([(1, 0), (1, 1)], current=[3, 2], initial=[4, 4]) == 1  # this step would empty layer 1
    assert last_channel([(1, 0)], current=[3, 2], initial=[4, 4]) is None
    assert half_widths([(0, 0), (1, 1)], current=[4, 4], initial=[4, 4], half_target=5) is None  # not there yet
    assert half_widths([(0, 0), (1, 1), (1, 2)], current=[3, 3], initial=[4, 4], half_target=4) == [2, 2]


def test_the_last_channel_rule_spares_a_layer_that_started_at_one_and_half_widths_stop_at_the_target():
    # a layer already pruned to one ends pruning even where this step takes nothing from it
    assert last_channel([(1, 0)], current=[1, 4], initial=[4, 4]) == 0
    # one that started at one channel has lost nothing and never ends it (unless the step takes its channel)
    assert last_channel([(1, 0)], current=[1, 4], initial=[1, 4]) is None
    assert last_channel([(0, 0)], current=[1, 4], initial=[1, 4]) == 0
    # the step that reaches exactly half gives the widths there
    assert half_widths([(0, 0), (1, 1)], current=[4, 4], initial=[4, 4], half_target=2) == [3, 3]
    # a capped run takes only the step's cheapest channels up to half: the rule is checked on those, not on the
    # channels past the cap (which would empty layer 1 here)
    assert half_widths([(0, 0), (1, 0), (1, 1)], current=[4, 2], initial=[4, 4], half_target=3) == [3, 2]
    # where the capped channels themselves would empty a layer, the original's capped run ends before: None;
    # past one, the capped run goes on
    assert half_widths([(1, 0), (1, 1)], current=[4, 2], initial=[4, 4], half_target=4) is None
    assert half_widths([(1, 0), (1, 1)], current=[4, 2], initial=[4, 4], half_target=4, prune_past_one=True) == [4, 0]


def test_the_trajectory_starts_once_every_layer_has_lost_a_channel():
    t = Trajectory([4, 4, 1], floors=[1, 1, 1])  # the third starts at its floor: it never holds rows back
    t.record([3, 4, 1], 1)
    t.record([3, 3, 1], 2)
    assert t.all_rows == [[3, 4, 1], [3, 3, 1]] and t.rows == [[3, 3, 1]] and t.row_steps == [2]
    assert t.fit_start is None
    per = Trajectory([4, 4], floors=[1, 1], start="per-layer")
    per.record([3, 4], 1)
    assert per.rows == [[3, 4]] and per.fit_start == [4, 4]


def test_no_driver_reads_the_sessions_private_state():
    """loop.Pruner and the callback use the session's public methods only (no fake trainer, no `_x` reads)."""
    src = Path(ns.__file__).parent
    for path in (src / "loop.py", src / "pruning" / "callback.py", src / "descent.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
                base = node.value
                assert isinstance(base, ast.Name) and base.id == "self", f"{path.name}: .{node.attr}"
    assert "_Loop" not in (src / "loop.py").read_text()


def test_a_session_in_a_plain_loop_prunes_by_masking():
    sp = ns.space("vgg11", "synthetic")
    widths = sp.uniform(0.125)
    model = sp.build(widths)
    session = PruningSession(sp, widths, Schedule(k=3, interval=1, warmup_epochs=0, prune_fraction=0.3),
                             physical=False)
    session.start(model, torch.device("cpu"))
    torch.manual_seed(0)
    x, y = torch.randn(8, *sp.info.input_shape), torch.randint(0, sp.info.num_classes, (8,))
    while not session.done:
        F.cross_entropy(model(x), y).backward()
        session.observe()
        if session.due():
            step = session.step(model)
            assert step.shrunk is None  # masking: the model stays the caller's
            session.attach(model, torch.device("cpu"))
    assert session.pruned >= session.max_pruned or session.stop_reason
    assert [g.width for g in ns.models.gate.gates(model)] == widths  # nothing rebuilt


def test_the_time_estimate_of_a_resumed_session_is_this_processs_pace(monkeypatch):
    """A descent resumed from its checkpoint has scored many batches in an earlier process: the estimate of the time
    left is what this process measured per batch (it once divided this process's seconds by every batch scored,
    and a descent resumed at step 56 of 225 said 21 minutes left where about 100 remained)."""
    import neuralscale.pruning.session as session_module
    sp = ns.space("vgg11", "synthetic")
    widths = sp.uniform(0.125)
    clock = [1000.0]
    monkeypatch.setattr(session_module.time, "monotonic", lambda: clock[0])
    schedule = Schedule(k=1, interval=5, warmup_epochs=0, prune_fraction=0.5)
    torch.manual_seed(0)
    x, y = torch.randn(4, *sp.info.input_shape), torch.randint(0, sp.info.num_classes, (4,))

    def prune(session, seconds_a_batch, more):
        """Train on (x, y) a batch at a time, pruning when due, while `more()`; each batch takes this long."""
        model = sp.build(widths)
        session.start(model, torch.device("cpu"))
        while more():
            F.cross_entropy(model(x), y).backward()
            session.observe()
            clock[0] += seconds_a_batch
            if session.due():
                session.step(model)
                session.attach(model, torch.device("cpu"))

    earlier = PruningSession(sp, widths, schedule, physical=False)
    prune(earlier, 1.0, lambda: earlier.pruning_steps < 20)  # the earlier process: 1 s a batch
    resumed = PruningSession(sp, widths, schedule, physical=False)
    resumed.load_state_dict(earlier.state_dict())
    batches = iter(range(11))
    prune(resumed, 2.0, lambda: next(batches, None) is not None)  # this process: 2 s a batch
    minutes = 2.0 * schedule.interval * (resumed.max_steps - resumed.pruning_steps) / 60
    assert f"about {minutes:.0f} min left" in resumed.status(), (resumed.status(), minutes)


class _Ordered(ns.Importance):
    """A criterion of distinct fixed scores (channel i of layer l: 10 i + l), so that the session's own rules
    alone decide what a step takes: no training, no rounding."""

    name = "ordered"
    needs_graph = False

    def score(self, layer):
        return torch.arange(layer.width, dtype=torch.float64) * 10 + layer.index


def _drive(session, model, optimizer=None, batches=1000):
    """Observe batches (nothing to compute: the criterion is fixed) and step when due, until done."""
    session.start(model, torch.device("cpu"))
    for _ in range(batches):
        if session.done:
            break
        session.observe()
        if session.due():
            step = session.step(model, optimizer)
            assert not session.due()  # a step needs batches observed since the last one
            if step.shrunk is not None:
                model = step.shrunk.model
                if optimizer is not None:
                    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
                    optimizer.load_state_dict(step.shrunk.optimizer_state)
            session.attach(model, torch.device("cpu"))
    return model


@pytest.mark.parametrize("physical", [False, True])
def test_a_session_ends_exactly_at_its_target_and_records_the_half_point(physical):
    """The last step takes only the channels left to the target (206 of 344, after 29 steps of 7, not 210); the
    reason names it; MorphNet's half point is the widths at 172 pruned; a physical session's widths follow the
    model's; after the end nothing is due, however many batches are observed."""
    sp = ns.space("vgg11", "synthetic")
    widths = sp.uniform(0.125)
    session = PruningSession(sp, widths, Schedule(k=7, interval=1, warmup_epochs=0, prune_fraction=0.6,
                                                  prune_past_one=True), importance=_Ordered(), physical=physical)
    model = _drive(session, sp.build(widths))
    assert session.done and not session.exhausted and session.pruning_steps == 30
    assert session.pruned == session.max_pruned == 206 and sum(session.all_rows[-1]) == 344 - 206
    assert session.stop_reason == "206 of 344 channels pruned (60%)"
    assert sum(session.half_widths) == 344 - 172
    assert all(h >= w for h, w in zip(session.half_widths, session.current))
    assert session.physical is physical and not session.notes
    live = [g.width for g in ns.models.gate.gates(model)] if physical else \
        [int(g.ones.sum()) for g in ns.models.gate.gates(model)]
    assert live == session.current
    assert session.widths == (session.current if physical else widths)  # the model's physical widths
    session.observe()
    session.observe()
    assert not session.due()


def test_a_sessions_state_resumes_every_field():
    """A session resumed from its state (a checkpoint's) goes on as it was: mid-interval (batches, Taylor-FO's
    sums), ended (why, exhausted), and MorphNet's half point."""
    sp = ns.space("vgg11", "synthetic")
    widths = [2, 3, 2, 2, 2, 2, 2, 40]
    schedule = Schedule(k=5, interval=3, warmup_epochs=0, prune_fraction=0.95, prune_past_one=True, min_width=2)
    ended = PruningSession(sp, widths, schedule, importance=_Ordered(), physical=False)
    _drive(ended, sp.build(widths))
    assert ended.exhausted and ended.stop_reason.startswith("every layer reached 2 channel(s)")
    again = PruningSession(sp, widths, schedule, importance=_Ordered(), physical=False)
    again.load_state_dict(ended.state_dict())
    assert again.done and again.exhausted and again.stop_reason == ended.stop_reason
    assert again.half_widths == ended.half_widths is not None and again.current == ended.current
    assert again.rows == ended.rows and again.row_steps == ended.row_steps and again.notes == ended.notes
    # mid-interval, with Taylor-FO's sums: a step due at the same batch, from the same scores
    taylor = Schedule(k=5, interval=3, warmup_epochs=0, prune_past_one=True)  # a step whatever the scores
    torch.manual_seed(0)
    model = sp.build(widths)
    x, y = torch.randn(4, *sp.info.input_shape), torch.randint(0, sp.info.num_classes, (4,))
    mid = PruningSession(sp, widths, taylor, physical=False)
    mid.start(model, torch.device("cpu"))
    for _ in range(5):
        F.cross_entropy(model(x), y).backward()
        mid.observe()
        if mid.due():
            mid.step(model)
            mid.attach(model, torch.device("cpu"))
    assert mid.pruning_steps == 1 and mid.batches == 1 and mid.seen == 5
    resumed = PruningSession(sp, widths, taylor, physical=False)
    resumed.load_state_dict(mid.state_dict())
    assert (resumed.batches, resumed.seen, resumed.pruning_steps) == (1, 5, 1)
    assert [a.tolist() for a in resumed.alive] == [a.tolist() for a in mid.alive]
    resumed.start(sp.build(widths), torch.device("cpu"))
    for layer in mid.layers:
        torch.testing.assert_close(resumed.importance.score(layer), mid.importance.score(layer))


def test_a_sessions_floors_are_its_min_width_in_multiples():
    """A layer that starts at min_width can never lose a channel, so it does not hold the trajectory's rows back."""
    sp = ns.space("vgg11", "synthetic")
    assert PruningSession(sp, sp.uniform(0.125), Schedule(min_width=3)).trajectory.floors == [3] * 8


def test_a_gate_after_a_frozen_batch_norm_multiplies():
    """Physical pruning lets a gate right after an affine batch norm multiply nothing and reads the norm's gradients;
    a frozen norm has none, so its gate keeps a mask to be scored by (its scores were all 0)."""
    from neuralscale.graph import gate_layers
    from neuralscale.pruning.apply import attach_masks
    sp = ns.space("vgg11", "synthetic")
    w = sp.uniform(0.125)
    model = sp.build(w)
    layers = gate_layers(sp, model)
    layers[2].gates[0].source.weight.requires_grad_(False)
    layers[5].gates[0].source.bias.requires_grad_(False)
    attach_masks(layers, _alive(*w), True, torch.device("cpu"), torch.float32)
    assert [layer.gates[0].ones is None for layer in layers] == [i not in (2, 5) for i in range(8)]


@pytest.mark.parametrize("in_place", [True, False])
def test_a_shrunk_network_keeps_its_mode_its_frozen_weights_and_adams_step_counts(in_place):
    from neuralscale.graph import ChannelGraph
    from neuralscale.pruning.apply import shrink
    sp = ns.space("vgg11", "synthetic")
    w = sp.uniform(0.125)
    torch.manual_seed(0)
    model = sp.build(w)
    first = next(model.parameters())  # layer 0's convolution: it loses a channel
    first.requires_grad_(False)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=0.01)
    for _ in range(2):
        F.cross_entropy(model(torch.randn(2, *sp.info.input_shape)), torch.tensor([0, 1])).backward()
        opt.step()
    model.eval()
    keep = [torch.arange(n) for n in w]
    keep[0] = torch.arange(1, w[0])
    new_w = [w[0] - 1, *w[1:]]
    saved = sp._resize
    if not in_place:
        sp._resize = None  # rebuilt, as a space without `resize` is
    try:
        out = shrink(sp, ChannelGraph(sp, w), model, opt, keep, w, new_w)
    finally:
        sp._resize = saved
    assert out is not None and (out.model is model) is in_place
    assert not out.model.training
    params = list(out.model.parameters())
    assert not params[0].requires_grad and params[0].shape[0] == w[0] - 1 and all(p.requires_grad for p in params[1:])
    state = out.optimizer_state["state"]
    assert len(state) == len(params) - 1
    for i, s in state.items():
        assert float(s["step"]) == 2 and s["exp_avg"].shape == s["exp_avg_sq"].shape


def test_an_optimizers_parameter_that_is_not_the_models_keeps_its_state():
    """An optimizer over the model and a parameter of the loss's own (a temperature, a second head): the model's
    momentum is sliced with its channels, the other's kept as it was (a KeyError before)."""
    from neuralscale.graph import ChannelGraph
    from neuralscale.pruning.apply import shrink
    sp = ns.space("vgg11", "synthetic")
    w = sp.uniform(0.125)
    torch.manual_seed(0)
    model = sp.build(w)
    temperature = torch.nn.Parameter(torch.ones(3))
    opt = torch.optim.SGD([{"params": [temperature]}, {"params": list(model.parameters())}], lr=0.1, momentum=0.9)
    (F.cross_entropy(model(torch.randn(2, *sp.info.input_shape)), torch.tensor([0, 1])) + temperature.sum()).backward()
    opt.step()
    saved = opt.state[temperature]["momentum_buffer"].clone()
    keep = [torch.arange(n) for n in w]
    keep[0] = torch.arange(1, w[0])
    out = shrink(sp, ChannelGraph(sp, w), model, opt, keep, w, [w[0] - 1, *w[1:]])
    state = out.optimizer_state["state"]
    assert torch.equal(state[0]["momentum_buffer"], saved)
    assert state[1]["momentum_buffer"].shape == next(out.model.parameters()).shape == (w[0] - 1, sp.info.input_shape[0], 3, 3)


def test_a_step_that_ties_past_the_target_ends_pruning():
    """Channels tied with the k-th come along, so one step may pass the target long before the most steps the
    fraction allows: pruning ends there, at the target's count, not later as exhausted."""

    class Tied(_Ordered):
        def score(self, layer):
            return torch.zeros(layer.width)

    sp = ns.space("vgg11", "synthetic")
    widths = sp.uniform(0.125)
    session = PruningSession(sp, widths, Schedule(k=7, interval=1, warmup_epochs=0, prune_fraction=0.6,
                                                  prune_past_one=True), importance=Tied(), physical=False)
    _drive(session, sp.build(widths))
    assert session.pruning_steps == 1 and session.current == [1] * 8 and session.done and not session.exhausted
    assert session.stop_reason == "336 of 344 channels pruned (60%)"
