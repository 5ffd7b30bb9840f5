"""logs.py: where the package's messages go, in the pytest process itself (new interpreters:
test_user_workflow.test_the_python_api_prints_progress_as_the_cli_does_unless_told_otherwise)."""

from __future__ import annotations

import logging

import pytest

from neuralscale import logs


@pytest.fixture
def own_handler():
    """logs' handler as the test leaves it removed, and the package logger's level put back."""
    package = logging.getLogger(logs.PACKAGE)
    before, level = logs._handler, package.level
    package.setLevel(logging.NOTSET)  # as in a new process: configure sets the level the lines need
    yield package
    if logs._handler is not None:
        package.removeHandler(logs._handler)
    if before is not None:
        package.addHandler(before)
    logs._handler = before
    package.setLevel(level)


def test_configured_twice_a_command_prints_each_line_once_and_quiet_keeps_warnings(own_handler, capsys):
    """A mutation audit: the first handler left in place (every line twice), `--quiet` keeping progress, lines
    written to the process's first stderr and not to the current one, and a prefix on each line all passed."""
    log = logging.getLogger(f"{logs.PACKAGE}.test_logs")
    logs.configure()
    log.info("epoch 1/2: loss 1.0")
    assert capsys.readouterr().err == "epoch 1/2: loss 1.0\n"
    logs.configure(quiet=True)
    log.info("epoch 2/2: loss 0.5")
    log.warning("a problem")
    assert capsys.readouterr().err == "a problem\n"


def test_the_same_threads_line_of_run_after_run_is_said_once_on_one_stream(own_handler, capsys, tmp_path,
                                                                          monkeypatch):
    """A walkthrough: every run of a sequential sweep printed the same 'threads: ...' line. Said once on one stream;
    another threads line, and the same one on another stream (a worker's next run's own log), still said."""
    import io
    import sys
    log = logging.getLogger(f"{logs.PACKAGE}.test_logs")
    logs.configure()
    same = "threads: 1 of 2 CPUs, fixed by NEURALSCALE_THREADS; idle OpenMP threads wait: libgomp's default"
    for run in ("uniform ratio 0.5 seed 0", "uniform ratio 1 seed 0"):
        log.info(f"{run}: {same}")
        log.info(f"{run} epoch 1/1: loss 1.0")
    log.info("morphnet ratio 0.5 seed 0: threads: 2 of 2 CPUs, as the machine allows")
    assert capsys.readouterr().err.splitlines() == [
        f"uniform ratio 0.5 seed 0: {same}", "uniform ratio 0.5 seed 0 epoch 1/1: loss 1.0",
        "uniform ratio 1 seed 0 epoch 1/1: loss 1.0", "morphnet ratio 0.5 seed 0: threads: 2 of 2 CPUs, as the machine "
                                                      "allows"]
    log.info(f"uniform ratio 2 seed 0: {same}")  # after another threads line: said again
    assert capsys.readouterr().err == f"uniform ratio 2 seed 0: {same}\n"
    run_log = io.StringIO()  # a worker's next run: its stderr is that run's log.txt
    monkeypatch.setattr(sys, "stderr", run_log)
    log.info(f"uniform ratio 4 seed 0: {same}")
    assert run_log.getvalue() == f"uniform ratio 4 seed 0: {same}\n"
