"""Fuzzing campaign (outside CI): mutated inputs through every parser, and through the web forms,
the link pages, the admin API and the Slack endpoints of a real `paperboy web`.

    python bench/fuzz.py [--parser-examples 100000] [--web-examples 10000]

Parsers (pure, in this process): each dump format, format detection, the query language, email
addresses, topic splitting, signed tokens, the subscribe form, display text. Inputs are hypothesis
text and mutations (splices, cuts, repeats, inserted characters) of the sample dumps in samples/.
A crash is any exception other than the target's documented error type.

Web: `paperboy web --port 0` in a subprocess on a fresh SQLite database; hypothesis form fields,
paths and JSON bodies (with and without a valid CSRF token and admin token). A crash is any 5xx or a
dropped connection. The server's peak RSS (VmHWM) is recorded.

Writes bench/results/fuzz.json and prints the figures. Zero crashes is the bar.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from service.config import Settings  # noqa: E402
from service.display import neutralise  # noqa: E402
from service.ingest.detect import detect_format  # noqa: E402
from service.ingest.parsers import parse  # noqa: E402
from service.ingest.records import FORMATS, ParseError  # noqa: E402
from service.matching.query import parse_query  # noqa: E402
from service.matching.query_lexer import QueryError  # noqa: E402
from service.subscription import SubscriptionError, normalise_email  # noqa: E402
from service.tokens import PURPOSES, TokenError, read_token  # noqa: E402
from service.web.forms import parse_subscribe, split_topics  # noqa: E402
from service.web.log_redaction import redact  # noqa: E402

SAMPLES = [
    p.read_text(errors="replace") for p in sorted((REPO / "samples" / "dumps").iterdir()) if p.is_file()
]
TOKEN_SETTINGS = Settings(_env_file=None, secret_key="fuzz-secret")  # type: ignore[call-arg, arg-type]


@st.composite
def mutated(draw: st.DrawFn) -> str:
    """A sample dump (or a fragment of one) with a few random edits, or plain random text."""
    if draw(st.integers(0, 4)) == 0:
        return draw(st.text(max_size=2000))
    text = draw(st.sampled_from(SAMPLES))
    start = draw(st.integers(0, max(0, len(text) - 1)))
    text = text[start : start + draw(st.integers(1, 20000))]
    for _ in range(draw(st.integers(0, 6))):
        at = draw(st.integers(0, len(text)))
        edit = draw(st.sampled_from(["insert", "cut", "repeat", "splice"]))
        if edit == "insert":
            text = text[:at] + draw(st.text(min_size=1, max_size=40)) + text[at:]
        elif edit == "cut":
            text = text[:at] + text[at + draw(st.integers(1, 200)) :]
        elif edit == "repeat":
            text = text[:at] + text[at : at + 50] * draw(st.integers(2, 50)) + text[at:]
        else:
            other = draw(st.sampled_from(SAMPLES))
            text = text[:at] + other[: draw(st.integers(0, 500))] + text[at:]
    return text


def _form(values: dict[str, str]) -> Any:
    from starlette.datastructures import FormData

    return FormData(list(values.items()))


FORM_FIELDS = ["email", "keywords", "query", "cadence", "weekday", "send_time", "timezone", "csrf_token"]
form_values = st.dictionaries(st.sampled_from(FORM_FIELDS), st.text(max_size=300), max_size=len(FORM_FIELDS))

# target name -> (strategy, function, documented error types)
PARSER_TARGETS: dict[str, tuple[Any, Callable[[Any], object], tuple[type[BaseException], ...]]] = {
    **{
        f"parse:{fmt}": (
            mutated(),
            lambda text, fmt=fmt: list(parse(fmt, [text], dt.date(2026, 11, 23))),
            (ParseError,),
        )
        for fmt in FORMATS
    },
    "detect_format": (mutated(), detect_format, ()),
    "query": (st.text(max_size=300), parse_query, (QueryError,)),
    "email": (st.text(max_size=330), normalise_email, (SubscriptionError,)),
    "topics": (st.text(max_size=2000), split_topics, ()),
    "tokens": (
        st.tuples(st.sampled_from(sorted(PURPOSES)), st.text(max_size=300)),
        lambda args: read_token(args[0], args[1], settings=TOKEN_SETTINGS),
        (TokenError,),
    ),
    "subscribe_form": (form_values, lambda values: parse_subscribe(_form(values)), ()),
    "display": (st.text(max_size=500), lambda t: (neutralise(t), redact(t)), ()),
}


def fuzz(
    name: str,
    strategy: Any,
    target: Callable[[Any], object],
    allowed: tuple[type[BaseException], ...],
    n: int,
) -> dict[str, Any]:
    crashes: list[str] = []
    count = 0

    @settings(
        max_examples=n,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def run(value: Any) -> None:
        nonlocal count
        count += 1
        try:
            target(value)
        except allowed:
            pass
        except Exception as exc:  # a crash: recorded, the campaign goes on
            if len(crashes) < 20:
                crashes.append(
                    f"{type(exc).__name__}: {exc} <- {value!r:.200}\n{traceback.format_exc(limit=3)}"
                )
            else:
                crashes.append(type(exc).__name__)

    started = time.perf_counter()
    run()
    seconds = time.perf_counter() - started
    print(f"  {name:<22} {count:>8} inputs  {len(crashes)} crashes  {seconds:6.1f} s", flush=True)
    return {
        "inputs": count,
        "crashes": len(crashes),
        "first_crashes": crashes[:5],
        "seconds": round(seconds, 1),
    }


# --- the web app ---------------------------------------------------------------------------------

ADMIN = "fuzz-admin-token"
STARTED = re.compile(r"Uvicorn running on http://127\.0\.0\.1:(\d+)")
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=50),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=20), inner, max_size=5),
    max_leaves=20,
)
ADMIN_KEYS = [
    "name",
    "url",
    "format",
    "enabled",
    "status",
    "paused",
    "cadence",
    "weekday",
    "send_time",
    "timezone",
    "max_papers",
    "min_score",
    "interests",
    "email",
    "verified",
    "id",
]
admin_bodies = st.dictionaries(st.sampled_from(ADMIN_KEYS), json_values, max_size=6) | json_values


def _start_server(var: Path) -> tuple[subprocess.Popen[bytes], str, Path]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "SECRET_", "ADMIN_"))}
    env.update(
        VAR_DIR=str(var), ADMIN_TOKEN=ADMIN, SLACK_SIGNING_SECRET="fuzz-signing", BASE_URL="http://testserver"
    )
    paperboy = Path(sys.executable).parent / "paperboy"
    subprocess.run([str(paperboy), "db", "upgrade"], env=env, check=True, capture_output=True, cwd=var)
    log = var / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(paperboy), "web", "--port", "0"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=var,
        )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        match = STARTED.search(log.read_text(errors="replace"))
        if match:
            return process, f"http://127.0.0.1:{match.group(1)}", log
        if process.poll() is not None:
            raise SystemExit(f"paperboy web exited:\n{log.read_text()}")
        time.sleep(0.2)
    raise SystemExit("paperboy web did not start")


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def web_campaign(n: int) -> dict[str, Any]:
    from sqlalchemy.orm import Session

    from service.db import make_engine
    from service.links import manage_url
    from service.subscription import SubscriptionRequest, create_subscription

    var = Path(tempfile.mkdtemp(prefix="paperboy-fuzz-"))
    process, url, _ = _start_server(var)
    settings_ = Settings(_env_file=None, var_dir=var, base_url="http://testserver")  # type: ignore[call-arg]
    engine = make_engine(settings_.resolved_database_url)
    with Session(engine) as session:
        sub = create_subscription(
            session, SubscriptionRequest(email="fuzz@example.org", interests=["sparse attention"])
        )
        session.commit()
        manage = manage_url(sub.subscriber_id or 0, sub.id, settings_).removeprefix("http://testserver")
    client = httpx.Client(base_url=url, timeout=60)
    page = client.get("/")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    token = csrf.group(1) if csrf else ""
    results: dict[str, Any] = {}

    def request(method: str, path: str, **kw: Any) -> None:
        try:
            answer = client.request(method, path, **kw)
        except httpx.TransportError as exc:
            raise AssertionError(f"connection failed: {exc}") from exc
        if answer.status_code >= 500:
            raise AssertionError(f"{answer.status_code} for {method} {path}")

    def with_csrf(values: dict[str, str], keep: bool) -> dict[str, str]:
        return {**values, "csrf_token": token} if keep else values

    manage_fields = st.dictionaries(
        st.sampled_from(
            [
                "cadence",
                "weekday",
                "send_time",
                "timezone",
                "max_papers",
                "paused",
                "resubscribe",
                "interest_count",
                "interest-0-id",
                "interest-0-name",
                "interest-0-keywords",
                "interest-0-query",
                "interest-0-exclude",
                "interest-0-add_seeds",
                "interest-0-remove",
            ]
        ),
        st.text(max_size=200),
        max_size=10,
    )
    targets: dict[str, tuple[Any, Callable[[Any], None]]] = {
        "POST /subscribe": (
            st.tuples(form_values, st.booleans()),
            lambda a: request("POST", "/subscribe", data=with_csrf(a[0], a[1])),
        ),
        "POST /manage/{token}": (
            st.tuples(manage_fields, st.booleans(), st.booleans()),
            lambda a: request("POST", manage + ("/preview" if a[2] else ""), data=with_csrf(a[0], a[1])),
        ),
        "GET link pages": (
            st.tuples(
                st.sampled_from(["confirm", "manage", "unsubscribe", "feedback"]),
                st.text(
                    alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="/?#%"),
                    min_size=1,
                    max_size=200,
                ),
            ),
            lambda a: request("GET", f"/{a[0]}/{quote(a[1], safe='')}"),
        ),
        "admin API": (
            st.tuples(
                st.sampled_from(
                    [
                        "POST /api/admin/sources",
                        "PATCH /api/admin/subscriptions/1",
                        "PATCH /api/admin/subscribers/1",
                        "PATCH /api/admin/sources/1",
                    ]
                ),
                admin_bodies,
            ),
            lambda a: request(
                a[0].split()[0], a[0].split()[1], json=a[1], headers={"Authorization": f"Bearer {ADMIN}"}
            ),
        ),
        "Slack (unsigned)": (
            st.tuples(st.sampled_from(["/slack/commands", "/slack/interactions"]), st.binary(max_size=2000)),
            lambda a: request(
                "POST",
                a[0],
                content=a[1],
                headers={
                    "Content-Type": "application/x-www-form-urlencoded",
                    "X-Slack-Request-Timestamp": str(int(time.time())),
                    "X-Slack-Signature": "v0=00",
                },
            ),
        ),
    }
    try:
        for name, (strategy, target) in targets.items():
            results[name] = fuzz(name, strategy, target, (), n)
    finally:
        rss = _peak_rss_mb(process.pid)
        process.terminate()
        process.wait(30)
        client.close()
        engine.dispose()
    return {"targets": results, "server_peak_rss_mb": round(rss, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parser-examples", type=int, default=100_000)
    parser.add_argument("--web-examples", type=int, default=10_000)
    args = parser.parse_args()
    print(f"parsers ({args.parser_examples} inputs each):")
    parsers = {
        name: fuzz(name, s, f, allowed, args.parser_examples)
        for name, (s, f, allowed) in PARSER_TARGETS.items()
    }
    print(f"web ({args.web_examples} requests each):")
    web = web_campaign(args.web_examples)
    crashes = sum(r["crashes"] for r in parsers.values()) + sum(r["crashes"] for r in web["targets"].values())
    result = {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "command": " ".join(["python bench/fuzz.py", *sys.argv[1:]]),
        "parser_examples": args.parser_examples,
        "web_examples": args.web_examples,
        "parsers": parsers,
        "web": web,
        "crashes": crashes,
    }
    out = REPO / "bench" / "results" / "fuzz.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"crashes: {crashes}; server peak RSS {web['server_peak_rss_mb']} MB; written to {out}")


if __name__ == "__main__":
    main()
