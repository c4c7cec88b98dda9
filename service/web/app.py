"""The web app: subscription pages, the admin JSON API and (when present) the Slack endpoints."""

from __future__ import annotations

import importlib.util

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy import Engine
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp

from service.config import Settings, get_settings
from service.db import get_engine, session_factory
from service.digest.render import TEMPLATES_DIR, environment
from service.web import (
    admin,
    admin_archive,
    admin_bulk,
    admin_mail,
    archive,
    feed_pages,
    following,
    mail_webhooks,
    pages,
    views,
)
from service.web.admin import admin_refusal
from service.web.gate import FORM_MAX_BYTES, AdminGate
from service.web.security import SecurityHeadersMiddleware

STATIC = TEMPLATES_DIR / "web" / "static"


def make_templates() -> Jinja2Templates:
    """The pages render through paperboy's one Jinja2 environment (autoescape, StrictUndefined)."""
    env = environment()
    env.filters.setdefault("http_url", views.http_url)
    return Jinja2Templates(env=env)


class PaperboyApp(FastAPI):
    """FastAPI with the security headers outside everything, even the error middleware that
    answers an unhandled exception with a 500 (user middleware sits inside it)."""

    https = False

    def build_middleware_stack(self) -> ASGIApp:
        return SecurityHeadersMiddleware(super().build_middleware_stack(), https=self.https)


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> FastAPI:
    """A FastAPI app bound to `settings` and `engine` (the configured ones by default)."""
    settings = settings or get_settings()
    engine = engine or get_engine(settings)
    app = PaperboyApp(
        title="paperboy",
        summary="Subscription pages and the admin API of paperboy.",
        version="1",
        # Swagger UI and ReDoc load scripts from a CDN, which the CSP (and the no-network rule) forbid;
        # the schema itself stays at /openapi.json.
        docs_url=None,
        redoc_url=None,
        # Counted while the body streams; the admin and Slack routers set their own limits.
        max_body_size=FORM_MAX_BYTES,
    )
    app.state.settings = settings
    app.state.sessions = session_factory(engine)
    app.state.engine = engine
    app.state.templates = make_templates()

    app.https = settings.base_url.startswith("https://")
    app.add_middleware(AdminGate, admin_refusal=lambda header: admin_refusal(settings.admin_token, header))
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.include_router(pages.router)
    app.include_router(archive.router)
    app.include_router(following.router)
    app.include_router(feed_pages.router)
    app.include_router(admin_bulk.router)  # before admin's /subscriptions/{id}
    app.include_router(admin.router)
    app.include_router(admin_mail.router)
    app.include_router(mail_webhooks.router)
    app.include_router(admin_archive.router)
    _include_slack(app)

    @app.exception_handler(StarletteHTTPException)
    async def _error_page(request: Request, exc: StarletteHTTPException) -> Response:
        # The JSON API answers in JSON; people in a browser get a page.
        if request.url.path.startswith(("/api/", "/slack/", "/webhooks/")):
            return await http_exception_handler(request, exc)
        return views.error_page(request, exc.status_code, str(exc.detail), headers=exc.headers)

    return app


def _include_slack(app: FastAPI) -> None:
    # The Slack endpoints (service/web/slack.py) join the app when that module is in the tree; an
    # error inside it is not hidden.
    if importlib.util.find_spec("service.web.slack") is None:
        return
    from service.web.slack import router as slack_router
    from service.web.slack_events import router as events_router
    from service.web.slack_install import router as install_router

    app.include_router(slack_router)
    app.include_router(install_router)
    app.include_router(events_router)
