"""The prepared GPU check runs end to end, at toy sizes on the CPU, as it will be run on a GPU machine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from helpers import run_python

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_check_runs_on_the_cpu_in_quick_mode(tmp_path):
    # as on the GPU machine: no install, the source tree; no CUDA seen, so that the CUDA tests it runs are skipped
    # on a host with a GPU too (there, `make test` runs them itself)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "CUDA_VISIBLE_DEVICES": ""}
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--device", "cpu", "--quick",
                        "--out", str(tmp_path / "out"), "--budget", "100000"],  # (its sections are skipped by the
                       # time left of its budget: not on a slow or loaded host here; the timeout guards a hang)
                       capture_output=True, text=True, env=env, timeout=600, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
    result = json.loads((tmp_path / "out" / "gpu_check.json").read_text())
    sections = result["sections"]
    assert set(sections) == {"correctness", "throughput", "runs_per_device", "step_cost"}
    assert not [name for name, s in sections.items() if "error" in s or "not_run" in s], sections
    cuda_tests = (ROOT / "tests" / "test_cuda.py").read_text().count("\ndef test_")
    assert sections["correctness"]["skipped"] == cuda_tests and sections["correctness"]["failed"] == 0  # no CUDA
    row, captured = sections["throughput"]["rows"]
    assert row["mode"] == "eager" and row["neuralscale_images_per_s"] > 0 and row["speedup"] > 0
    # the captured step is CUDA's: on the CPU its row says why it did not run, and the other rows still ran
    assert captured["mode"] == "graphs" and "CUDA graphs need a CUDA device" in captured["error"]
    assert [(r["runs"], r["mode"]) for r in sections["runs_per_device"]["rows"]] == [(1, "eager"), (2, "eager")]
    assert sections["step_cost"]["rows"][0]["physical_ms"] > 0
    assert set(result["targets"]) == {"graphs_over_eager_025_b128", "speedup_025", "full_width_images_per_s",
                                      "runs_per_gpu_gain"}
    assert "## Targets" in (tmp_path / "out" / "gpu_check.md").read_text()
    import torch
    if not torch.cuda.is_available():  # asked for CUDA where there is none: one clear line (the script run as
        # `python gpu_check.py` runs it, in a fork of the tests' zygote: its arguments are the point, not its start)
        r = run_python("import runpy, sys; sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')",
                       str(ROOT / "benchmarks" / "gpu_check.py"), "--out", str(tmp_path / "x"), "--device", "cuda",
                       env=env, cwd=ROOT, timeout=120)
        assert r.returncode == 2 and "no CUDA device here" in r.stderr and len(r.stderr.strip().splitlines()) == 1
