"""Finding 5: no signed token from a link reaches the server's log."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
from sqlalchemy import Engine

from service.config import Settings
from service.links import confirm_url, feedback_url, manage_url, unsubscribe_url
from tests.security.conftest import SECRET, LiveServer
from tests.web.helpers import add_paper, make_subscription


def test_the_access_log_holds_no_link_token(start_server, committed_engine: Engine) -> None:  # type: ignore[no-untyped-def]
    server: LiveServer = start_server()
    settings = Settings(_env_file=None, secret_key=SECRET, base_url=server.url)  # type: ignore[call-arg, arg-type]
    ada = make_subscription(committed_engine, "ada@example.org")
    paper = add_paper(committed_engine, "A paper")
    sid = ada.subscriber_id or 0
    urls = [
        confirm_url(sid, settings),
        manage_url(sid, ada.id, settings),
        unsubscribe_url(sid, ada.id, settings),
        feedback_url(ada.id, paper, True, settings),
        server.url + "/manage/forged.token-value",
    ]
    for url in urls:
        httpx.get(url + "?utm=x", timeout=120)
    httpx.post(urls[2], timeout=120)  # the one-click unsubscribe POST
    log = server.log()
    assert log.count('"GET /manage/') >= 2, log  # the requests are logged...
    for url in urls:
        token = urlsplit(url).path.rsplit("/", 1)[1]
        assert token not in log, f"{urlsplit(url).path.split('/')[1]} token in the log"
