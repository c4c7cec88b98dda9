"""What every page shares: the request's session and form, and rendering templates/web."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import Depends, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from service.config import Settings
from service.web.security import csrf_token, set_csrf_cookie


def web_session(request: Request) -> Iterator[Session]:
    """A session for one request; handlers commit what they mean to keep."""
    session: Session = request.app.state.sessions()
    try:
        yield session
    finally:
        session.close()


async def form_data(request: Request) -> FormData:
    # Parsed here (async) so the handlers can stay synchronous and run in the thread pool.
    return await request.form(max_files=0, max_fields=400, max_part_size=64 * 1024)


DB = Annotated[Session, Depends(web_session)]
Form = Annotated[FormData, Depends(form_data)]


def settings_of(request: Request) -> Settings:
    return request.app.state.settings


def http_url(value: object) -> str | None:
    """Only http(s) links reach an href (no javascript: or data: from paper metadata)."""
    text = str(value or "").strip()
    return text if urlsplit(text).scheme in {"http", "https"} else None


def render(request: Request, name: str, context: Mapping[str, Any], status_code: int = 200) -> Response:
    """A page from templates/web, with this browser's CSRF token and cookie."""
    settings = settings_of(request)
    templates = request.app.state.templates
    full = {"csrf_token": csrf_token(request, settings), **context}
    response = templates.TemplateResponse(request, f"web/{name}", full, status_code=status_code)
    set_csrf_cookie(request, response, settings)
    return response


def error_page(
    request: Request, status_code: int, message: str, *, show_subscribe: bool = False, headers: Any = None
) -> Response:
    headings = {
        400: "Something is wrong",
        403: "Please try again",
        404: "Not found",
        410: "This link has expired",
    }
    heading = headings.get(status_code, "Too many attempts" if status_code == 429 else "Something went wrong")
    response = render(
        request,
        "error.html.j2",
        {"heading": heading, "message": message, "show_subscribe": show_subscribe},
        status_code,
    )
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response
