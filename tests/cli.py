"""Running the `paperboy` command in-process, as tests do."""

from __future__ import annotations

import logging

from typer.testing import CliRunner

from service.cli import app

runner = CliRunner()


def run_cli(*args: str) -> tuple[int, str]:
    """Exit code and output (stdout and stderr) of `paperboy ARGS...`."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        result = runner.invoke(app, list(args))
    finally:  # see tests/conftest.py: the runner's stderr is closed once the call returns
        root.handlers[:] = handlers
        root.setLevel(level)
    return result.exit_code, result.output
