"""Mail benchmark: reading returned mail, and the cost of DKIM signing per message. One process, one core.

    python bench/mail_ops.py [--reports 6000] [--messages 2000]

1. parse: --reports returned messages, a mix of the shapes tests/mail/samples.py writes (RFC 3464 with
   the whole message, Microsoft 365 with headers only, a Gmail delay, Exim, qmail and Yahoo bounces
   through flufl.bounce, ARF complaints, unsubscribe mail), read by service.mail.reports.read_mail.
   Also the same reports stored and acted on in SQLite (service.mail.intake, one transaction each).
Times are CPU seconds of this process (time.process_time): this machine's 2 cores are shared by
several jobs, so wall-clock figures (also written, as *_wall) measure the neighbours as much as the
code. "On one core" means per CPU second of the one process.

2. dkim: --messages real digest messages (EmailChannel.digest_message) signed with RSA 2048, then RSA
   + Ed25519; the figure is the time added per message. dkimpy's own pure-Python RSA signing is
   timed on a few messages for comparison (why the private-key step runs in OpenSSL).

Writes bench/results/mail_ops.json and prints the figures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import dkim  # noqa: E402
from cryptography.hazmat.primitives import serialization  # noqa: E402

from service.channels.email import EmailChannel  # noqa: E402
from service.config import Settings  # noqa: E402
from service.db import make_engine, session_scope  # noqa: E402
from service.mail.bounce_path import return_path  # noqa: E402
from service.mail.dkim import DkimKey, DkimSigner, generate_key  # noqa: E402
from service.mail.intake import take_in  # noqa: E402
from service.mail.reports import read_mail  # noqa: E402
from service.migrations import upgrade  # noqa: E402
from service.models import Subscription  # noqa: E402
from tests.digest.test_render import golden_digest  # noqa: E402
from tests.mail import samples  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "mail_ops.json"
SETTINGS = Settings(
    _env_file=None,  # type: ignore[call-arg]
    secret_key="mail-bench-secret",  # type: ignore[arg-type]
    bounce_address="bounces@mail.paperboy.example",
    unsubscribe_mailto="unsubscribe@paperboy.example",
    smtp_from="paperboy <digest@paperboy.example>",
    smtp_rate_per_s=0,
    base_url="https://paperboy.example",
)


def returned_mail(count: int) -> list[bytes]:
    """`count` distinct returned messages, cycling through the shapes."""
    out = []
    for n in range(count):
        rcpt = f"reader{n}@example.org"
        verp = return_path(SETTINGS, n + 1, "2026-11-23") or ""
        shape = n % 9
        if shape in (0, 1):
            out.append(samples.rfc3464(rcpt, to=verp, report_id=f"<dsn-{n}@mx>"))
        elif shape == 2:
            out.append(samples.microsoft365(rcpt, to=verp))
        elif shape == 3:
            out.append(samples.gmail_delayed(rcpt, to=verp, n=n))
        elif shape == 4:
            out.append(samples.exim(rcpt, to=verp))
        elif shape == 5:
            out.append(samples.qmail(rcpt, to=verp))
        elif shape == 6:
            out.append(samples.yahoo(rcpt, to=verp))
        elif shape == 7:
            out.append(samples.arf(rcpt, return_path=verp, report_id=f"<fbl-{n}@fb>"))
        else:
            out.append(samples.unsubscribe_mail(f"token.{n:06d}.abcdefghijklmnop", sender=rcpt))
    return out


def bench_parse(messages: list[bytes]) -> dict[str, Any]:
    read_mail(messages[0], SETTINGS)  # imports, regex compilation
    found = 0
    start, cpu_start = time.perf_counter(), time.process_time()
    for data in messages:
        found += len(read_mail(data, SETTINGS).reports)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    per_shape = {}
    for name, data in (
        ("rfc3464", messages[0]),
        ("microsoft365", messages[2]),
        ("exim_flufl", messages[4]),
        ("qmail_flufl", messages[5]),
        ("arf", messages[7]),
    ):
        t0 = time.process_time()
        for _ in range(300):
            read_mail(data, SETTINGS)
        per_shape[name] = round(300 / (time.process_time() - t0))
    return {
        "reports": len(messages),
        "recognised": found,
        "seconds": round(elapsed, 3),
        "reports_per_s_wall": round(len(messages) / elapsed),
        "reports_per_cpu_s": round(len(messages) / cpu),
        "reports_per_cpu_s_by_shape": per_shape,
        "mean_bytes": round(statistics.mean(len(m) for m in messages)),
    }


def bench_store(messages: list[bytes], folder: Path) -> dict[str, Any]:
    # The unsubscribe samples carry made-up tokens: each is refused with a warning, not worth printing.
    logging.getLogger("paperboy.mail").setLevel(logging.ERROR)
    url = f"sqlite:///{folder / 'mail.db'}"
    upgrade(url)
    engine = make_engine(url)
    now = dt.datetime.now(dt.UTC)
    start, cpu_start = time.perf_counter(), time.process_time()
    for n, data in enumerate(messages):
        with session_scope(engine) as session:
            take_in(session, data, settings=SETTINGS, ref=f"bench#{n}", now=now)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    engine.dispose()
    return {
        "reports": len(messages),
        "seconds": round(elapsed, 3),
        "reports_per_s_wall": round(len(messages) / elapsed),
        "reports_per_cpu_s": round(len(messages) / cpu),
    }


def bench_dkim(count: int) -> dict[str, Any]:
    channel = EmailChannel(SETTINGS)
    sub = Subscription(id=7, channel="email", address="reader@example.org")
    messages = [channel.digest_message(sub, golden_digest()).data for _ in range(count)]
    rsa_key = DkimKey("pb", "paperboy.example", generate_key("rsa"))
    ed_key = DkimKey("pbe", "paperboy.example", generate_key("ed25519"))

    def per_message(signer: DkimSigner) -> float:
        signer.sign(messages[0])
        start = time.process_time()
        for data in messages:
            signer.sign(data)
        return (time.process_time() - start) / count * 1000

    build_start = time.process_time()
    for _ in range(count):
        channel.digest_message(sub, golden_digest())
    build_ms = (time.process_time() - build_start) / count * 1000
    rsa_ms = per_message(DkimSigner([rsa_key]))
    both_ms = per_message(DkimSigner([rsa_key, ed_key]))
    pem = rsa_key.key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    start = time.process_time()
    for data in messages[:10]:
        dkim.sign(data, b"pb", b"paperboy.example", pem, include_headers=[b"from", b"to", b"subject"])
    dkimpy_ms = (time.process_time() - start) / 10 * 1000
    return {
        "messages": count,
        "mean_message_bytes": round(statistics.mean(len(m) for m in messages)),
        "build_ms_per_message": round(build_ms, 3),
        "sign_rsa2048_ms_per_message": round(rsa_ms, 3),
        "sign_rsa2048_and_ed25519_ms_per_message": round(both_ms, 3),
        "dkimpy_pure_python_rsa2048_ms_per_message": round(dkimpy_ms, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--reports", type=int, default=6000)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--store", type=int, default=1000, help="reports stored in SQLite (0: skip)")
    args = parser.parse_args()
    messages = returned_mail(args.reports)
    results: dict[str, Any] = {
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        },
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "date": dt.date.today().isoformat(),
        "parse": bench_parse(messages),
        "dkim": bench_dkim(args.messages),
    }
    if args.store:
        with tempfile.TemporaryDirectory() as tmp:
            results["store_sqlite"] = bench_store(messages[: args.store], Path(tmp))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
