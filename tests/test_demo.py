"""The demo's descent (examples/demo.toml, what `make demo` runs) fits a law on any host.

`make demo` once failed on some hosts of this project's kind: its descent recorded 4 trajectory rows on one
host's rounding and 6+ on another's, and under 6 rows is no fit.  Other seeds stand in for other hosts' rounding
here: with the original's pace relative to the network (1 channel a step from VGG11 at 1/8 width) every seed
must record a fitted law with a wide margin of rows.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from neuralscale.api import load_splits
from neuralscale.descent import descend
from neuralscale.experiment import prepare

DEMO = Path(__file__).resolve().parent.parent / "examples" / "demo.toml"
MIN_ROWS = 20


@pytest.fixture(scope="module")
def demo(tmp_path_factory, fashion_files):
    """The demo's experiment and the images its descent prunes on (the same for every seed: read once): Debian's
    Fashion-MNIST where installed, else files of its format (conftest.fashion_files)."""
    tmp = tmp_path_factory.mktemp("demo")
    with pytest.MonkeyPatch.context() as mp:
        if fashion_files is not None:
            mp.setenv("NEURALSCALE_DATA", str(fashion_files.parent))
        e = prepare(DEMO, out=tmp / "demo")
        assert e.descent is not None and e.descent.k == 1  # the pace: 1 of VGG11's 344 channels at 1/8 width
        splits = load_splits("fashionmnist", e.descent.train_config(), None,
                             subset={"train": e.data["train"], "test": 64})
    return e, splits


# three seeds (5 recorded 86, 205, 248, 127 and 192 rows on this host: every one far above MIN_ROWS)
@pytest.mark.parametrize("seed", range(3))
def test_the_demos_descent_fits_a_law_with_many_rows_on_every_seed(seed, demo, tmp_path):
    e, splits = demo
    cfg = replace(e.descent, iterations=1, seed=seed, device="cpu")
    laws = descend(e.space, splits, tmp_path / "d", cfg, progress=False)
    fits = json.loads((tmp_path / "d" / "fits.json").read_text())["laws"]
    assert not laws[0].fallback, fits[0].get("fallback_reason")
    assert laws[0].rows >= MIN_ROWS, (seed, laws[0].rows)
    assert fits[0]["pruning_steps"] >= laws[0].rows
