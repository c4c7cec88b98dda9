"""Reading returned mail (pure): RFC 3464 DSNs, non-standard bounces, ARF complaints, unsubscribe mail."""

from __future__ import annotations

from service.config import Settings
from service.mail.bounce_path import return_path
from service.mail.reports import read_mail
from tests.mail import samples

SETTINGS = Settings(
    _env_file=None,  # type: ignore[call-arg]
    secret_key="mail-tests-secret",  # type: ignore[arg-type]
    bounce_address="bounces@mail.paperboy.example",
    unsubscribe_mailto="unsubscribe@paperboy.example",
)
VERP = return_path(SETTINGS, 7, "2026-11-23") or ""


def test_an_rfc3464_failure_is_a_hard_bounce_with_its_status_and_original_message_id() -> None:
    reading = read_mail(samples.rfc3464("Ada@Example.org", to=VERP), SETTINGS)
    [report] = reading.reports
    assert (report.kind, report.provider, report.address, report.status) == (
        "hard_bounce",
        "dsn",
        "ada@example.org",
        "5.1.1",
    )
    assert "User unknown" in report.detail
    assert report.original_message_id == samples.ORIGINAL_ID
    assert VERP in report.return_paths
    assert report.report_id == "<dsn-1@mx.example.net>"


def test_a_delayed_dsn_is_a_soft_bounce() -> None:
    [report] = read_mail(samples.gmail_delayed("ada@example.org", to=VERP), SETTINGS).reports
    assert (report.kind, report.status) == ("soft_bounce", "4.2.2")


def test_a_failed_action_with_a_4xx_status_is_soft() -> None:
    data = samples.rfc3464("ada@example.org", status="4.4.7", diagnostic="smtp; 421 timed out")
    assert [r.kind for r in read_mail(data, SETTINGS).reports] == ["soft_bounce"]


def test_a_delivered_action_is_a_delivery() -> None:
    data = samples.rfc3464("ada@example.org", action="delivered", status="2.0.0")
    assert [r.kind for r in read_mail(data, SETTINGS).reports] == ["delivered"]


def test_microsoft_365_ndr_with_only_the_original_headers() -> None:
    [report] = read_mail(samples.microsoft365("bob@outlook.com", to=VERP), SETTINGS).reports
    assert (report.kind, report.address, report.status) == ("hard_bounce", "bob@outlook.com", "5.1.10")
    assert report.original_message_id == samples.ORIGINAL_ID


def test_non_standard_bounces_go_through_flufl_bounce() -> None:
    cases = {
        "exim": samples.exim("carol@example.com", to=VERP),
        "qmail": samples.qmail("carol@example.com", to=VERP),
        "yahoo": samples.yahoo("carol@example.com", to=VERP),
    }
    for name, data in cases.items():
        reports = read_mail(data, SETTINGS).reports
        assert [(r.kind, r.provider, r.address) for r in reports] == [
            ("hard_bounce", "bounce", "carol@example.com")
        ], name
        assert VERP in reports[0].return_paths
    [exim] = read_mail(cases["exim"], SETTINGS).reports
    assert exim.status == "5.1.1" and exim.original_message_id == samples.ORIGINAL_ID


def test_an_arf_report_is_a_complaint_even_when_the_recipient_is_redacted() -> None:
    [named] = read_mail(samples.arf("ada@example.org", return_path=VERP), SETTINGS).reports
    assert (named.kind, named.provider, named.address) == ("complaint", "arf", "ada@example.org")
    [hidden] = read_mail(samples.arf(None, return_path=VERP), SETTINGS).reports
    assert hidden.kind == "complaint" and hidden.address == ""
    assert VERP in hidden.return_paths and hidden.original_message_id == samples.ORIGINAL_ID


def test_mail_to_the_unsubscribe_mailbox_carries_its_token() -> None:
    [report] = read_mail(samples.unsubscribe_mail("Abc.DEF-ghi_jkl.mnopqrstuvwxyz"), SETTINGS).reports
    assert (report.kind, report.token, report.address) == (
        "unsubscribe",
        "Abc.DEF-ghi_jkl.mnopqrstuvwxyz",
        "reader@example.org",
    )
    by_address = samples.unsubscribe_mail("", to="unsubscribe+Tok.EN-123@paperboy.example")
    [report] = read_mail(
        by_address, SETTINGS, recipients=("unsubscribe+Tok.EN-123@paperboy.example",)
    ).reports
    assert report.token == "Tok.EN-123"


def test_ordinary_mail_is_not_a_report() -> None:
    reading = read_mail(samples.personal_mail("digest@paperboy.example"), SETTINGS)
    assert reading.reports == [] and "not a bounce" in reading.why
