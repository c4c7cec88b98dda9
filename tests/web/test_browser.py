"""End to end in a real browser: subscribe, read the confirmation from a loopback SMTP server, follow
the link, tune the profile while the preview updates, save, unsubscribe. Screenshots of every page go
to tests/artifacts/.

Debian's chromium (/usr/bin/chromium) through Playwright, headless and kept off the network; uvicorn
on a free loopback port; aiosmtpd on another. With CI=true a missing chromium is a failure.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from service.config import Settings
from service.db import make_engine
from service.migrations import upgrade
from service.models import Subscriber, Subscription
from service.web.app import create_app
from tests.conftest import IN_CI, REPO
from tests.smtp_server import SmtpServer, free_port
from tests.web.helpers import add_paper

pytestmark = pytest.mark.browser

CHROMIUM = Path(os.environ.get("PAPERBOY_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = REPO / "tests" / "artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_MS = 15_000  # Playwright waits for a condition up to this long (a limit, not a measurement)


def _need_chromium() -> None:
    if CHROMIUM.exists():
        return
    message = f"chromium is not installed at {CHROMIUM} (apt-get install -y chromium)"
    if IN_CI:
        pytest.fail(f"{message}; CI=true: the browser test must run")
    pytest.skip(message)


class _Server:
    """uvicorn serving the app on 127.0.0.1 in a thread."""

    def __init__(self, settings: Settings, engine: Engine, port: int) -> None:
        config = uvicorn.Config(
            create_app(settings, engine), host="127.0.0.1", port=port, log_level="warning"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="uvicorn", daemon=True)

    def __enter__(self) -> _Server:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[str, SmtpServer, Engine]]:
    _need_chromium()
    url = f"sqlite:///{(tmp_path / 'browser.db').as_posix()}"
    upgrade(url)
    engine = make_engine(url)
    port = free_port()
    with SmtpServer() as smtp:
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            database_url=url,
            var_dir=tmp_path / "var",
            secret_key="browser-test-secret",  # type: ignore[arg-type]
            base_url=f"http://127.0.0.1:{port}",
            smtp_url=smtp.url,  # type: ignore[arg-type]
            smtp_from="paperboy <digest@paperboy.test>",
        )
        with _Server(settings, engine, port):
            yield settings.base_url, smtp, engine
    engine.dispose()


def _wait_for_mail(smtp: SmtpServer, count: int) -> None:
    deadline = time.monotonic() + WAIT_MS / 1000
    while len(smtp.messages) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"no confirmation email arrived (got {len(smtp.messages)})")
        time.sleep(0.05)


def test_subscribe_confirm_tune_and_leave_in_a_browser(site: tuple[str, SmtpServer, Engine]) -> None:
    from playwright.sync_api import expect, sync_playwright

    base, smtp, engine = site
    add_paper(engine, "Sparse attention for long documents", "We make sparse attention fast on long inputs.")
    add_paper(engine, "KV cache compression at scale", "Compressing the kv cache of large language models.")
    add_paper(engine, "Protein folding with diffusion", "Diffusion models fold proteins.")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        context = browser.new_context(timezone_id="Europe/Berlin", viewport={"width": 1280, "height": 900})
        context.set_default_timeout(WAIT_MS)
        # Nothing may leave loopback: any other request is aborted and counted as a problem.
        context.route(
            re.compile(r"^(?!http://127\.0\.0\.1[:/]).*"),
            lambda route: (problems.append(f"off-site request {route.request.url}"), route.abort()),
        )
        page = context.new_page()
        page.on(
            "console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None
        )
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))

        # 1. Subscribe: the time zone comes from the browser.
        page.goto(base + "/")
        expect(page.locator("select[name=timezone]")).to_have_value("Europe/Berlin")
        page.fill("input[name=email]", "ada@example.org")
        page.fill("textarea[name=keywords]", "sparse attention, kv cache")
        page.select_option("select[name=cadence]", "weekly")
        expect(page.locator("select[name=weekday]")).to_be_visible()
        page.select_option("select[name=weekday]", "1")
        page.screenshot(path=ARTIFACTS / "1-subscribe.png", full_page=True)
        page.click("button[type=submit]")
        expect(page.locator("h1")).to_have_text("Check your inbox")
        page.screenshot(path=ARTIFACTS / "2-check-your-inbox.png", full_page=True)

        # 2. The confirmation email, read back from the SMTP server.
        _wait_for_mail(smtp, 1)
        message = smtp.messages[0]
        assert message.rcpt_tos == ["ada@example.org"]
        body = message.message.get_body(("plain",))
        assert body is not None
        link = re.search(re.escape(base) + r"/confirm/\S+", body.get_content())  # type: ignore[union-attr]
        assert link, "the confirmation email holds no confirm link"
        with Session(engine) as session:
            assert session.scalar(select(Subscription.status)) == "pending"

        # 3. Follow it: a page with one button (opening the link changes nothing); press it:
        # confirmed, on the preferences page.
        page.goto(link.group(0))
        expect(page.locator("h1")).to_have_text("Confirm your subscription")
        with Session(engine) as session:
            assert session.scalar(select(Subscription.status)) == "pending"
        page.click("button.primary")
        expect(page.locator(".notice.ok")).to_contain_text("Your subscription is confirmed")
        expect(page.locator("select[name=timezone]")).to_have_value("Europe/Berlin")
        page.screenshot(path=ARTIFACTS / "3-preferences.png", full_page=True)
        page.emulate_media(color_scheme="dark")  # the same page on a phone at night
        page.set_viewport_size({"width": 390, "height": 844})
        page.screenshot(path=ARTIFACTS / "3b-preferences-phone-dark.png", full_page=True)
        page.emulate_media(color_scheme="light")
        page.set_viewport_size({"width": 1280, "height": 900})

        # 4. Tune an interest: the preview follows what is typed, before saving.
        preview = page.locator("#preview")
        page.fill("input[name='interest-0-name']", "attention")
        page.fill("textarea[name='interest-0-keywords']", "sparse attention, long documents")
        expect(preview).to_have_attribute("data-state", "ok")
        if "not available" not in preview.inner_text():  # the ranker is in the tree
            expect(preview).to_contain_text("Sparse attention for long documents")
            expect(preview.locator("mark").first).to_be_visible()
            expect(preview).not_to_contain_text("Protein folding")
        page.screenshot(path=ARTIFACTS / "4-live-preview.png", full_page=True)
        page.click("button.primary")
        expect(page.locator(".notice.ok")).to_contain_text("Saved.")
        expect(page.locator("input[name='interest-0-name']")).to_have_value("attention")
        page.screenshot(path=ARTIFACTS / "5-saved.png", full_page=True)

        # 5. Leave: one button.
        page.click("a.quiet")
        expect(page.locator("h1")).to_have_text("Unsubscribe?")
        page.screenshot(path=ARTIFACTS / "6-unsubscribe.png", full_page=True)
        page.click("button.danger")
        expect(page.locator("h1")).to_have_text("You are unsubscribed")
        page.screenshot(path=ARTIFACTS / "7-unsubscribed.png", full_page=True)
        browser.close()

    assert problems == []
    with Session(engine) as session:
        subscriber = session.scalar(select(Subscriber))
        subscription = session.scalar(select(Subscription))
        assert subscriber is not None and subscriber.verified
        assert subscription is not None and subscription.status == "unsubscribed"
        assert subscription.timezone == "Europe/Berlin"
        assert (subscription.cadence, subscription.weekday) == ("weekly", 1)
        assert "attention" in subscription.interests
