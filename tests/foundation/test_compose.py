"""docker-compose.yml is valid (Debian's docker-compose checks it without a Docker engine) and runs
commands paperboy has."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from service.cli import PaperboyCommands
from tests.conftest import IN_CI

REPO = Path(__file__).resolve().parents[2]
SECRETS = {"POSTGRES_PASSWORD": "pg-secret", "RABBITMQ_PASSWORD": "mq-secret", "SECRET_KEY": "key-secret"}


def compose(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("docker-compose")
    if binary is None:
        message = "docker-compose is not installed (apt-get install docker-compose)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    clean = {k: v for k, v in os.environ.items() if k not in SECRETS}
    return subprocess.run(
        [binary, "-f", str(REPO / "docker-compose.yml"), *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )


def test_the_compose_file_is_valid_and_runs_a_clock_workers_and_the_web_app() -> None:
    done = compose("config", env=SECRETS)
    assert done.returncode == 0, done.stderr
    config = yaml.safe_load(done.stdout)
    services = config["services"]
    assert {"postgres", "rabbitmq", "redis", "clock", "worker", "web"} <= set(services)
    assert services["worker"]["deploy"]["replicas"] >= 2
    known = {command.name for command in PaperboyCommands.lazy_commands}
    for name, service in services.items():
        command = service.get("command") or []
        if command[:1] == ["paperboy"]:
            assert command[1] in known, name  # a command paperboy has
            assert service["environment"]["BROKER_URL"].startswith("amqp://"), name


def test_the_compose_file_refuses_to_start_without_its_secrets() -> None:
    done = compose("config", "-q", env={})
    assert done.returncode != 0 and "POSTGRES_PASSWORD" in done.stderr
