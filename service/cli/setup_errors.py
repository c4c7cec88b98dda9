"""Setup mistakes as one line: which setting is wrong and what to do, instead of a traceback.

Every `paperboy` command passes through `explain` (see service/cli/group.py), so a garbage DATABASE_URL,
a database that is down or was never migrated, or an SMTP_URL that is not a URL reads the same
everywhere. Errors it does not recognise are left alone: a real bug keeps its traceback.
"""

from __future__ import annotations

import re
import sys

UPGRADE = "run `paperboy db upgrade` first (or `paperboy run --demo` on a fresh machine)"
_UNDEFINED_TABLE, _UNDEFINED_COLUMN = "42P01", "42703"  # PostgreSQL SQLSTATEs


def explain(exc: BaseException) -> str | None:
    """One line for a setup mistake, or None when `exc` is not one."""
    # Not imported at the top (`paperboy --help` reads no settings); unloaded, it raised nothing.
    config = sys.modules.get("service.config")
    if config is not None and isinstance(exc, config.SetupError):
        return str(exc)
    module = type(exc).__module__
    if module.startswith("pydantic") and getattr(exc, "title", None) == "Settings":
        return _bad_setting(exc)
    if module.startswith("sqlalchemy.exc"):
        return _database_error(exc)
    return None


def _bad_setting(exc: BaseException) -> str:
    from pydantic import ValidationError

    assert isinstance(exc, ValidationError)
    first = exc.errors(include_url=False, include_input=False)[0]  # the value may be a secret: not shown
    name = "_".join(str(part) for part in first["loc"]).upper() or "a setting"
    message = str(first["msg"]).removeprefix("Value error, ")
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"setting {name}: {message}{more}; fix it in the environment or .env"


def _database_error(exc: BaseException) -> str | None:
    from sqlalchemy.exc import DBAPIError

    if not isinstance(exc, DBAPIError):
        return None
    orig = exc.orig
    text = str(orig).strip()
    sqlstate = getattr(orig, "sqlstate", None)
    if sqlstate == _UNDEFINED_TABLE or text.startswith("no such table"):
        return f"the database at {_where()} has no paperboy schema: {UPGRADE}"
    if sqlstate == _UNDEFINED_COLUMN or text.startswith("no such column"):
        return f"the database at {_where()} has an older paperboy schema: run `paperboy db upgrade`"
    if text.startswith("unable to open database file"):
        where = _where()
        return (
            f"DATABASE_URL: cannot open the SQLite file at {where}: check the folder exists and is writable"
        )
    if type(orig).__module__.startswith("psycopg") and text.startswith("connection"):
        return _connection_error(text)
    return None


def _connection_error(text: str) -> str:
    """A PostgreSQL connection that failed: the server's own reason, reduced to what to do."""
    where = _where()
    if missing := re.search(r'database "([^"]+)" does not exist', text):
        name = missing.group(1)
        return (
            f"DATABASE_URL: the PostgreSQL database {name!r} does not exist ({where}): "
            f"create it (createdb {name}) or fix the database name"
        )
    if "authentication failed" in text:
        return f"DATABASE_URL: PostgreSQL refused the login ({where}): check the user name and password"
    reason = next(
        (r for r in ("Connection refused", "timeout expired", "could not translate host name") if r in text),
        text.splitlines()[-1].strip(),
    )
    what = "start the server or fix the host and port"
    return f"DATABASE_URL: cannot reach PostgreSQL at {where} ({reason}): {what}"


def _where() -> str:
    """The configured database, without its password."""
    from sqlalchemy.engine import make_url

    from service.config import get_settings

    try:
        return make_url(get_settings().resolved_database_url).render_as_string(hide_password=True)
    except Exception:
        return "DATABASE_URL"
