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
