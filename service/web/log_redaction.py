"""Signed tokens in link paths never reach a log line: whoever reads the log could follow them."""

from __future__ import annotations

import copy
import logging
import re
from typing import Any

from service.links import CONFIRM_PATH, FEEDBACK_PATH, MANAGE_PATH, UNSUBSCRIBE_PATH

_PREFIXES = "|".join(
    re.escape(p.split("{")[0]) for p in (CONFIRM_PATH, MANAGE_PATH, UNSUBSCRIBE_PATH, FEEDBACK_PATH)
)
# Everything after a link prefix up to the next /, ?, # or space is the token.
_TOKEN = re.compile(rf"({_PREFIXES})[^/?#\s\"']+")
REDACTED = "[token]"


def redact(text: str) -> str:
    """`/manage/eyJ...` -> `/manage/[token]`, wherever it appears in the text."""
    return _TOKEN.sub(rf"\g<1>{REDACTED}", text)


class RedactTokens(logging.Filter):
    """A logging filter for handlers: redacts the message and its arguments (uvicorn's access log
    passes the path as an argument)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: redact(v) if isinstance(v, str) else v for k, v in record.args.items()}
        return True


def uvicorn_log_config() -> dict[str, Any]:
    """uvicorn's logging configuration with every handler redacting tokens."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact_tokens"] = {"()": RedactTokens}
    for handler in config["handlers"].values():
        handler.setdefault("filters", []).append("redact_tokens")
    return config
