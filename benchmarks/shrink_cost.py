"""What a pruning session's bookkeeping costs, beside the reference way of doing it, in one process.

Two costs that every descent pays and that do not depend on the data:

- the channel graph (graph.py), derived when a pruning session starts: the space's state-dict shapes at the
  widths and at one more channel per layer.  Now: by rule (`WidthSpace.state_shapes`, a generic space's
  `GenericSpace.state_shapes`); reference: a meta build of the model for every probe (how it was derived
  before, and still is for a space without a rule).
- one physical pruning step (pruning/apply.shrink): the network without 3 channels, its weights and momentum
  sliced.  Now: a generic network's and VGG11's own modules resized in place (`WidthSpace.resize`; the others
  rebuilt on meta), the sliced tensors assigned directly; reference: rebuilt on meta, then `load_state_dict(assign=True)`
  and a `.to()` over the new model.

    python benchmarks/shrink_cost.py [--models torchvision:densenet121,torchvision:resnet18,vgg11] [--reps 5]
"""

from __future__ import annotations

import argparse
import time

import torch

import neuralscale as ns
from neuralscale.graph import ChannelGraph
from neuralscale.pruning import apply


def _best(fn, reps: int, setup=None) -> float:
    times = []
    for _ in range(reps):
        args = setup() if setup is not None else ()
        t = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - t)
    return min(times)


def graph_seconds(space, widths, reps: int) -> tuple[float, float]:
    now = _best(lambda: ChannelGraph(space, widths), reps)
    rule, space._shapes = space._shapes, None  # the reference: a meta build per probe
    try:
        reference = _best(lambda: ChannelGraph(space, widths), reps)
    finally:
        space._shapes = rule
    return now, reference


def _reference_assign(model, state):
    first = next(iter(state.values()))
    model.load_state_dict(state, assign=True)
    model.to(first.device)


def shrink_seconds(space, widths, reps: int) -> tuple[float, float] | None:
    graph = ChannelGraph(space, widths)
    if not graph.exact:
        return None  # this space prunes by masking: nothing is rebuilt
    keep = [torch.arange(w) for w in widths]
    i = max(range(len(widths)), key=lambda j: widths[j])
    keep[i] = keep[i][3:]
    new = list(widths)
    new[i] -= 3

    def trained():  # a fresh network with momentum for every rep: a step resizes a generic network in place
        model = space.build(widths)
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        model(torch.randn(2, *space.info.input_shape)).sum().backward()
        opt.step()
        return model, opt
    run = lambda model, opt: apply.shrink(space, graph, model, opt, keep, widths, new)  # noqa: E731
    now = _best(run, reps, trained)
    saved, resize = apply._assign, space._resize
    apply._assign, space._resize = _reference_assign, None  # rebuilt, then load_state_dict
    try:
        reference = _best(run, reps, trained)
    finally:
        apply._assign, space._resize = saved, resize
    return now, reference


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="torchvision:densenet121,torchvision:resnet18,vgg11")
    p.add_argument("--dataset", default="synthetic")
    p.add_argument("--reps", type=int, default=5)
    args = p.parse_args()
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, 1 thread; best of {args.reps}")
    print(f"{'model':28s} {'graph now':>10s} {'reference':>10s} {'ratio':>6s}   {'shrink now':>10s} "
          f"{'reference':>10s} {'ratio':>6s}")
    for name in args.models.split(","):
        space = ns.space(name, args.dataset)
        widths = space.uniform(0.25)
        g_now, g_ref = graph_seconds(space, widths, args.reps)
        s = shrink_seconds(space, widths, args.reps)
        shrink = (f"{s[0] * 1e3:8.1f}ms {s[1] * 1e3:8.1f}ms {s[1] / s[0]:5.1f}x" if s
                  else f"{'(masks: nothing rebuilt)':>30s}")
        print(f"{name:28s} {g_now:9.3f}s {g_ref:9.3f}s {g_ref / g_now:5.1f}x   {shrink}")


if __name__ == "__main__":
    main()
