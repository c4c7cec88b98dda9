"""`paperboy export`: every stored paper as JSON Lines, the format `paperboy ingest` reads back."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, TextIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.ingest.parsers.jsonl import EXPORT_FIELDS
from service.models import Paper


def paper_object(paper: Paper) -> dict[str, Any]:
    """One paper as an export object (dates in ISO format)."""
    obj: dict[str, Any] = {}
    for name in EXPORT_FIELDS:
        value = getattr(paper, name)
        if isinstance(value, dt.date):  # datetime is a date too
            value = value.isoformat()
        obj[name] = value
    return obj


def export_papers(session: Session, out: TextIO) -> int:
    """Write every paper, oldest first, one JSON object per line; returns how many."""
    count = 0
    rows = session.scalars(select(Paper).order_by(Paper.id).execution_options(yield_per=1000))
    for paper in rows:
        out.write(json.dumps(paper_object(paper), ensure_ascii=False))
        out.write("\n")
        count += 1
    return count
