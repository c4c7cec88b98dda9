"""Reading typed fields out of untrusted JSON/XML values, with a message when a value is unusable."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Iterator
from typing import Any

from service.ingest.normalize import checked_text, normalize_arxiv_id


class FieldProblem(ValueError):
    """A field's value cannot be used; the message names the field."""


def text_field(name: str, value: Any, required: bool = False) -> str | None:
    if value is None or value == "":
        if required:
            raise FieldProblem(f"missing {name}")
        return None
    if not isinstance(value, str):
        raise FieldProblem(f"{name} must be a string, not {type(value).__name__}")
    text, reason = checked_text(value)
    if text is None:
        raise FieldProblem(f"{name} is {reason}")
    if required and not text:
        raise FieldProblem(f"{name} is blank")
    return text or None


def int_field(name: str, value: Any) -> int | None:
    if type(value) is int and 0 <= value < 2**31:  # the common case, without the checks below
        return value
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise FieldProblem(f"{name} must be a whole number, not {json.dumps(value)[:40]}")
    try:
        number = int(value)
    except ValueError:
        raise FieldProblem(f"{name} must be a whole number, not {value[:40]!r}") from None
    if not 0 <= number < 2**31:
        raise FieldProblem(f"{name} {number} is out of range")
    return number


def date_field(name: str, value: Any) -> dt.date | None:
    """An ISO date, or the date part of an ISO datetime ('2024-01-02T18:00:00.000Z')."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise FieldProblem(f"{name} must be an ISO date string, not {type(value).__name__}")
    try:
        return dt.date.fromisoformat(value[:10])
    except ValueError:
        raise FieldProblem(f"{name} is not an ISO date: {value[:40]!r}") from None


def names_field(name: str, value: Any) -> list[str]:
    """A list of names: strings, or objects with a "name" (Hugging Face, arXiv authors)."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise FieldProblem(f"{name} must be a list, not {type(value).__name__}")
    if value and type(value[0]) is dict:  # author objects: their names, if all are clean strings
        try:
            shown = [entry.get("name") for entry in value if entry.get("hidden") is not True]
        except AttributeError:  # objects mixed with other values: the loop below sorts them out
            shown = None
        if shown is not None and _clean_names(shown):
            return shown
    elif _clean_names(value):
        return list(value)
    names: list[str] = []
    for entry in value:
        if isinstance(entry, dict):
            if entry.get("hidden") is True:
                continue
            entry = entry.get("name")
        if not isinstance(entry, str):
            continue
        if entry.isascii() and entry.isprintable() and "  " not in entry and entry.strip() == entry:
            if entry:  # already clean: most names are
                names.append(entry)
            continue
        text = text_field(name, entry)
        if text:
            names.append(text)
    return names


def _clean_names(value: list[Any]) -> bool:
    """True when every entry is a non-empty clean ASCII string: checked on them all joined at once.

    Joined with "|", an empty entry shows as "||" or an end "|", a space at an entry's edge as " |",
    "| " or an end space. A name holding "|" itself may look unclean; the slow path then decides.
    """
    try:
        joined = "|".join(value)
    except TypeError:  # an entry that is not a string (an object, null)
        return False
    if not joined:  # [] is clean, [""] is not
        return not value
    return (
        joined.isascii()
        and joined.isprintable()
        and "  " not in joined
        and " |" not in joined
        and "| " not in joined
        and "||" not in joined
        and joined[:1] not in (" ", "|")
        and joined[-1:] not in (" ", "|")
    )


def links_field(name: str, value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(link, str) for link in value):
        raise FieldProblem(f"{name} must be a list of strings")
    return [link.strip() for link in value if link.strip()][:50]


def arxiv_field(name: str, value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise FieldProblem(f"{name} must be a string, not {type(value).__name__}")
    arxiv_id = normalize_arxiv_id(value)
    if arxiv_id is None:
        raise FieldProblem(f"{name} {value[:40]!r} is not an arXiv id")
    return arxiv_id


def count_lines(pieces: Iterable[str]) -> Iterator[tuple[int, str]]:
    """(number of the line the piece starts on, piece) for pieces read line by line."""
    line = 1
    for piece in pieces:
        yield line, piece
        line += piece.count("\n")
