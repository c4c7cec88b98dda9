"""`paperboy doctor`: would a real mail sender pass with these settings? One check, one line.

A check fails when mail would be rejected, unsigned, unaligned or unanswerable; it warns (and does not
fail) only where paperboy cannot find out, e.g. no DNS answer for the DKIM record on this machine.
"""

from __future__ import annotations

import smtplib
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass

from service.channels.email import sender_address
from service.channels.smtp import SmtpConfigError, parse_smtp_url
from service.config import Settings
from service.mail.dkim import DkimConfigError, DkimKey, signer_for

TxtLookup = Callable[[str], str | None]


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # ok | warn | fail
    message: str


def txt_record(name: str) -> str | None:
    """The TXT record at `name` (strings joined), None when DNS gives no answer."""
    try:
        import dns.resolver

        answer = dns.resolver.resolve(name, "TXT", lifetime=3.0)
    except Exception:  # no resolver, NXDOMAIN, timeout: "no answer" either way
        return None
    return "".join(b"".join(r.strings).decode("ascii", "replace") for r in answer)


def _domain_of(address: str) -> str:
    return address.rpartition("@")[2].strip(" >").lower()


def _aligned(child: str, parent: str) -> bool:
    """DMARC relaxed alignment, approximated: equal, or one is a subdomain of the other."""
    return child == parent or child.endswith("." + parent) or parent.endswith("." + child)


def check_smtp(settings: Settings) -> Check:
    if settings.smtp_url is None or not settings.smtp_url.get_secret_value().strip():
        return Check("smtp", "fail", "SMTP_URL is not set: digests go to the outbox folder, not to anyone")
    try:
        target = parse_smtp_url(settings.smtp_url.get_secret_value())
    except SmtpConfigError as exc:
        return Check("smtp", "fail", str(exc))
    where = f"{target.host}:{target.port}"
    context = ssl.create_default_context(cafile=str(settings.smtp_ca_file) if settings.smtp_ca_file else None)
    try:
        if target.scheme == "smtps":
            conn: smtplib.SMTP = smtplib.SMTP_SSL(target.host, target.port, timeout=10, context=context)
        else:
            conn = smtplib.SMTP(target.host, target.port, timeout=10)
            conn.ehlo()
            if not conn.has_extn("starttls"):
                conn.close()
                return Check("smtp", "fail", f"{where} is reachable but offers no STARTTLS")
            conn.starttls(context=context)
            conn.ehlo()
        sock = conn.sock
        version = sock.version() if isinstance(sock, ssl.SSLSocket) else "?"
        if target.username:
            conn.login(target.username, target.password or "")
        conn.quit()
    except smtplib.SMTPAuthenticationError as exc:
        return Check("smtp", "fail", f"{where}: login refused ({exc.smtp_code})")
    except (OSError, smtplib.SMTPException) as exc:
        return Check("smtp", "fail", f"{where} unreachable or TLS failed: {type(exc).__name__}: {exc}"[:300])
    login = ", login ok" if target.username else ""
    return Check("smtp", "ok", f"{where} reachable, TLS ({version}){login}")


def check_dkim(settings: Settings, lookup: TxtLookup) -> list[Check]:
    try:
        signer = signer_for(settings)
    except DkimConfigError as exc:
        return [Check("dkim", "fail", str(exc))]
    if signer is None:
        return [
            Check(
                "dkim",
                "fail",
                "DKIM_PRIVATE_KEY_FILE is not set: mail goes out unsigned (Gmail and Yahoo require DKIM)",
            )
        ]
    checks = []
    try:
        from_domain = sender_address(settings).domain.lower()
    except ValueError as exc:
        return [Check("dkim", "fail", str(exc))]
    dkim_domain = (settings.dkim_domain or "").lower()
    if _aligned(from_domain, dkim_domain):
        checks.append(
            Check("alignment", "ok", f"From domain {from_domain} is aligned with DKIM d={dkim_domain}")
        )
    else:
        checks.append(
            Check(
                "alignment",
                "fail",
                f"From domain {from_domain} is not DKIM_DOMAIN {dkim_domain}: DMARC fails",
            )
        )
    for key in signer.keys:
        checks.append(_check_published(key, lookup))
    checks.append(_check_dmarc(from_domain, lookup))
    return checks


def _check_dmarc(from_domain: str, lookup: TxtLookup) -> Check:
    """Gmail and Yahoo require a DMARC record for bulk senders (p=none is enough to start)."""
    name = f"_dmarc.{from_domain}"
    record = lookup(name)
    if record is None:
        return Check(
            "dmarc", "warn", f'no DNS answer for {name} here: publish "v=DMARC1; p=none; ..." at least'
        )
    if not record.replace(" ", "").lower().startswith("v=dmarc1"):
        return Check("dmarc", "fail", f"{name} holds no v=DMARC1 record")
    return Check("dmarc", "ok", f"{name}: {record[:80]}")


def _check_published(key: DkimKey, lookup: TxtLookup) -> Check:
    name = f"dkim {key.selector}"
    published = lookup(key.record_name)
    if published is None:
        return Check(name, "warn", f"key readable; no DNS answer for {key.record_name} here, so not compared")
    tags = dict(part.strip().split("=", 1) for part in published.split(";") if "=" in part)
    if "".join(tags.get("p", "").split()) != key.public_value():
        return Check(
            name,
            "fail",
            f"{key.record_name} publishes another key than the private key file: signatures fail",
        )
    return Check(name, "ok", f"key readable and matching {key.record_name}")


def check_web(settings: Settings) -> list[Check]:
    checks = []
    if settings.base_url.startswith("https://"):
        checks.append(Check("base_url", "ok", f"BASE_URL {settings.base_url} is https"))
    else:
        checks.append(
            Check("base_url", "fail", f"BASE_URL {settings.base_url} is not https: unsubscribe links must be")
        )
    if settings.secret_key is None or not settings.secret_key.get_secret_value():
        # The generated VAR_DIR/secret_key would differ per machine: links signed on one fail on another.
        checks.append(
            Check("secret_key", "fail", "SECRET_KEY is not set: set one long random secret everywhere")
        )
    else:
        checks.append(Check("secret_key", "ok", "SECRET_KEY is set"))
    return checks


def check_unsubscribe_mailbox(settings: Settings) -> Check:
    mailbox = settings.unsubscribe_mailto
    if _domain_of(mailbox).endswith(".localhost"):
        return Check("unsubscribe mailbox", "fail", f"UNSUBSCRIBE_MAILTO {mailbox} is not a real address")
    listener = f"{settings.inbound_host}:{settings.inbound_port}"
    try:
        with socket.create_connection((settings.inbound_host, settings.inbound_port), timeout=5) as sock:
            banner = sock.recv(512)
    except OSError:
        return Check(
            "unsubscribe mailbox",
            "fail",
            f"nothing reads {mailbox}: `paperboy inbound` does not answer on {listener} (its MX goes there)",
        )
    if not banner.startswith(b"220"):
        return Check("unsubscribe mailbox", "fail", f"{listener} answers, but not as an SMTP/LMTP server")
    return Check("unsubscribe mailbox", "ok", f"{mailbox} is read by the listener on {listener}")


def check_bounce_path(settings: Settings) -> Check:
    webhooks = [
        name
        for name, on in (
            ("SES", settings.ses_sns_cert_file is not None),
            ("Postmark", settings.postmark_webhook_credentials is not None),
            ("SendGrid", bool(settings.sendgrid_webhook_public_key)),
            ("Mailgun", settings.mailgun_webhook_signing_key is not None),
        )
        if on
    ]
    if settings.bounce_address:
        try:
            from_domain = sender_address(settings).domain.lower()
        except ValueError:
            from_domain = ""
        bounce_domain = _domain_of(settings.bounce_address)
        if from_domain and not _aligned(bounce_domain, from_domain):
            return Check(
                "bounce path",
                "fail",
                f"BOUNCE_ADDRESS domain {bounce_domain} is not aligned with {from_domain} (SPF alignment)",
            )
        extra = f"; webhooks: {', '.join(webhooks)}" if webhooks else ""
        return Check("bounce path", "ok", f"digests return to VERP addresses at {bounce_domain}{extra}")
    if webhooks:
        return Check("bounce path", "ok", f"bounces come by provider webhook: {', '.join(webhooks)}")
    return Check(
        "bounce path", "fail", "neither BOUNCE_ADDRESS nor a provider webhook is set: bounces go unheard"
    )


def run_checks(settings: Settings, *, lookup: TxtLookup | None = None) -> list[Check]:
    """Every check, in the order an operator fixes them."""
    return [
        check_smtp(settings),
        *check_dkim(settings, lookup or txt_record),
        *check_web(settings),
        check_unsubscribe_mailbox(settings),
        check_bounce_path(settings),
    ]
