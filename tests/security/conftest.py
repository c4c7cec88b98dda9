"""A real `paperboy web` in a subprocess on an ephemeral port, for findings that are about HTTP."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine

from tests.web.conftest import app, client, web_settings  # noqa: F401  (the web tests' app and client)

SECRET = "security-tests-secret-key"
ADMIN_TOKEN = "security-tests-admin-token"
SIGNING_SECRET = "security-tests-signing-secret"
_STARTED = re.compile(r"Uvicorn running on http://127\.0\.0\.1:(\d+)")


@dataclass
class LiveServer:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def status_kb(self, field: str) -> int:
        """A /proc/<pid>/status figure of the server process in kB (VmRSS now, VmHWM its peak)."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        raise AssertionError(f"no {field} in /proc/{self.process.pid}/status")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def _paperboy() -> list[str]:
    script = Path(sys.executable).parent / "paperboy"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from service.cli import main; main()"]


def server_env(engine: Engine, var_dir: Path, **overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "SECRET_", "ADMIN_"))}
    env.update(
        DATABASE_URL=engine.url.render_as_string(hide_password=False),
        VAR_DIR=str(var_dir),
        SECRET_KEY=SECRET,
        ADMIN_TOKEN=ADMIN_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        BASE_URL="http://testserver",
        ENVIRONMENT="development",
    )
    env.update(overrides)
    return {k: v for k, v in env.items() if v != ""}


@pytest.fixture
def start_server(committed_engine: Engine, tmp_path: Path) -> Iterator[Callable[..., LiveServer]]:
    """Starts `paperboy web --port 0` (settings from the environment, overridable) and waits for it."""
    servers: list[LiveServer] = []

    def start(*args: str, **env: str) -> LiveServer:
        log_path = tmp_path / f"server-{len(servers)}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [*_paperboy(), "web", "--port", "0", *args],
                env=server_env(committed_engine, tmp_path / "var", **env),
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=tmp_path,
            )
        server = LiveServer("", process, log_path)
        servers.append(server)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            match = _STARTED.search(server.log())
            if match:
                server.url = f"http://127.0.0.1:{match.group(1)}"
                return server
            if process.poll() is not None:
                raise AssertionError(f"paperboy web exited {process.returncode}:\n{server.log()}")
            time.sleep(0.1)
        raise AssertionError(f"paperboy web did not start:\n{server.log()}")

    yield start
    for server in servers:
        server.process.terminate()
        try:
            server.process.wait(10)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()


@pytest.fixture
def serve() -> Iterator[Callable[[object], str]]:
    """Serves an ASGI app with uvicorn in a thread on an ephemeral port; returns its base URL. For
    tests that need to shape the app (a route that fails) but still talk real HTTP to it."""
    import socket
    import threading

    import uvicorn

    servers: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(asgi_app: object) -> str:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        config = uvicorn.Config(asgi_app, log_level="warning", lifespan="off")  # type: ignore[arg-type]
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        servers.append((server, thread))
        deadline = time.monotonic() + 30
        while not server.started:
            if time.monotonic() > deadline:
                raise AssertionError("uvicorn did not start")
            time.sleep(0.02)
        return f"http://127.0.0.1:{sock.getsockname()[1]}"

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(10)
