"""The structured log line: one greppable key=value line that parses back to the same fields."""

from __future__ import annotations

import datetime as dt
import logging

import pytest

from service.oplog import format_event, log_event, parse_event


def test_values_with_spaces_quotes_and_newlines_stay_on_one_line_and_parse_back() -> None:
    line = format_event(
        "delivery",
        subscription=7,
        period="2026-W48",
        error='550 5.1.1 "no such user"\nsecond line',
        sent=True,
        message_id=None,
        at=dt.datetime(2026, 11, 23, 8, 0, 5, 123, tzinfo=dt.UTC),
    )
    assert "\n" not in line
    assert line.startswith("event=delivery subscription=7 period=2026-W48 ")
    fields = parse_event(line)
    assert fields == {
        "event": "delivery",
        "subscription": "7",
        "period": "2026-W48",
        "error": '550 5.1.1 "no such user"\nsecond line',
        "sent": "true",
        "message_id": "-",
        "at": "2026-11-23T08:00:05Z",
    }


def test_log_event_logs_the_line_at_the_given_level(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("paperboy.test")
    with caplog.at_level(logging.INFO, logger="paperboy.test"):
        line = log_event(logger, "ingest_run", level=logging.WARNING, file="a b.txt", new=3)
    assert caplog.records[-1].levelno == logging.WARNING
    assert caplog.records[-1].getMessage() == line == 'event=ingest_run file="a b.txt" new=3'
