"""LOG_FORMAT=json: one JSON object per record, an event's fields as its keys; key=value otherwise."""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterator

import pytest

from service.cli.run import configure_logging
from service.config import get_settings
from service.oplog import log_event


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    get_settings.cache_clear()


def test_json_logs_carry_the_event_fields_as_keys(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LOG_FORMAT", "json")
    get_settings.cache_clear()
    configure_logging()
    at = dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.UTC)
    log_event(
        logging.getLogger("paperboy.dispatch"), "delivery", subscription=7, status="sent", next_attempt_at=at
    )
    logging.getLogger("paperboy.other").warning("plain %s", "words")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.strip()]
    event, plain = lines[-2], lines[-1]
    assert event["event"] == "delivery" and event["subscription"] == 7 and event["status"] == "sent"
    assert event["next_attempt_at"] == "2026-11-23T08:00:00Z"
    assert event["level"] == "info" and event["logger"] == "paperboy.dispatch" and "timestamp" in event
    assert plain["event"] == "plain words" and plain["level"] == "warning"


def test_text_logs_stay_key_value(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("LOG_FORMAT", raising=False)
    get_settings.cache_clear()
    configure_logging()
    log_event(logging.getLogger("paperboy.dispatch"), "delivery", subscription=7, status="sent")
    assert "event=delivery subscription=7 status=sent" in capsys.readouterr().err
