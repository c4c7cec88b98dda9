"""Running the `paperboy` command in-process, as tests do."""

from __future__ import annotations

from typer.testing import CliRunner

from service.cli import app

runner = CliRunner()


def run_cli(*args: str) -> tuple[int, str]:
    """Exit code and output (stdout and stderr) of `paperboy ARGS...`."""
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output
