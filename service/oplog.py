"""One structured log line per operation (ingest run, delivery): `event=... key=value ...`.

key=value lines are greppable by eye and parse with one regex or `logfmt` tools; values with spaces or
quotes are quoted JSON-style. Callers pass only safe fields: never a secret, an SMTP URL or a token.
With LOG_FORMAT=json every record becomes one JSON object (structlog), an event's fields its keys,
for operators who ship logs to a log store.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from typing import Any

_BARE = re.compile(r"^[A-Za-z0-9_.:/@+\-]+$")


def _value(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    text = str(value)
    return text if _BARE.match(text) else json.dumps(text, ensure_ascii=False)


def format_event(event: str, **fields: Any) -> str:
    """`event=<event> k1=v1 k2=v2` with values quoted when needed."""
    parts = [f"event={event}"]
    parts.extend(f"{key}={_value(value)}" for key, value in fields.items())
    return " ".join(parts)


def log_event(logger: logging.Logger, event: str, *, level: int = logging.INFO, **fields: Any) -> str:
    """Log one structured line and return it (tests and CLIs echo it)."""
    line = format_event(event, **fields)
    logger.log(level, line, extra={"event_fields": {"event": event, **fields}})
    return line


def _json_value(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _event_fields(_logger: Any, _name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """structlog processor: a log_event record's fields become the JSON object's keys."""
    record = event_dict.get("_record")
    fields = getattr(record, "event_fields", None)
    if fields:
        event_dict.pop("event", None)
        event_dict.update({key: _json_value(value) for key, value in fields.items()})
    return event_dict


def json_formatter() -> logging.Formatter:
    """One JSON object per record (LOG_FORMAT=json)."""
    import structlog

    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
        ],
        processors=[
            _event_fields,
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
    )


def parse_event(line: str) -> dict[str, str]:
    """The fields of a line written by format_event (tests, log readers)."""
    fields: dict[str, str] = {}
    for match in re.finditer(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)', line):
        key, raw = match.groups()
        fields[key] = json.loads(raw) if raw.startswith('"') else raw
    return fields
