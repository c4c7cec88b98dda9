"""Fixtures for the web tests: an app on the shared test database, and a client with cookies."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from service.config import Settings
from service.web.app import create_app
from tests.web.helpers import ADMIN_TOKEN, SECRET


@pytest.fixture
def web_settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=database_url,
        var_dir=tmp_path / "var",
        secret_key=SECRET,  # type: ignore[arg-type]
        admin_token=ADMIN_TOKEN,  # type: ignore[arg-type]
        base_url="http://testserver",
        smtp_url=None,
    )


@pytest.fixture
def app(web_settings: Settings, committed_engine: Engine) -> FastAPI:
    return create_app(web_settings, committed_engine)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client
