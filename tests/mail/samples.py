"""Returned mail as it arrives: RFC 3464 DSNs (in the shapes of the RFC examples, Gmail and Microsoft
365), non-standard bounces (Exim, qmail, Yahoo), an RFC 5965 ARF complaint, and unsubscribe mail.
Each sample is built from its parameters so that tests can aim it at a real delivery."""

from __future__ import annotations

ORIGINAL_ID = "<digest.7.2026-11-23@paperboy.example>"


def _crlf(text: str) -> bytes:
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")


def original_headers(recipient: str, message_id: str, return_path: str) -> str:
    return (
        f"Return-Path: <{return_path}>\n"
        "From: paperboy <digest@paperboy.example>\n"
        f"To: {recipient}\n"
        "Subject: 3 new papers on sparse attention\n"
        "Date: Mon, 23 Nov 2026 08:00:00 +0000\n"
        f"Message-ID: {message_id}\n"
    )


def rfc3464(
    recipient: str,
    *,
    to: str = "bounces@mail.paperboy.example",
    message_id: str = ORIGINAL_ID,
    return_path: str = "digest@paperboy.example",
    action: str = "failed",
    status: str = "5.1.1",
    diagnostic: str = "smtp; 550 5.1.1 <{r}>... User unknown",
    report_id: str = "<dsn-1@mx.example.net>",
) -> bytes:
    """The shape of RFC 3464's appendix example (a Sendmail-style report with the whole message)."""
    return _crlf(
        f"""From: Mail Delivery Subsystem <MAILER-DAEMON@mx.example.net>
To: {to}
Subject: Returned mail: see transcript for details
Message-ID: {report_id}
Date: Mon, 23 Nov 2026 08:01:00 +0000
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
    boundary="RAA14128.773615765/mx.example.net"

--RAA14128.773615765/mx.example.net
Content-Type: text/plain

   ----- The following addresses had delivery problems -----
<{recipient}>  (unrecoverable error)

--RAA14128.773615765/mx.example.net
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net
Arrival-Date: Mon, 23 Nov 2026 08:00:05 +0000

Original-Recipient: rfc822;{recipient}
Final-Recipient: RFC822; {recipient}
Action: {action}
Status: {status}
Remote-MTA: DNS; mail.example.org
Diagnostic-Code: {diagnostic.format(r=recipient)}
Last-Attempt-Date: Mon, 23 Nov 2026 08:01:00 +0000

--RAA14128.773615765/mx.example.net
Content-Type: message/rfc822

{original_headers(recipient, message_id, return_path)}MIME-Version: 1.0
Content-Type: text/plain

The digest.

--RAA14128.773615765/mx.example.net--
"""
    )


def microsoft365(recipient: str, *, to: str, message_id: str = ORIGINAL_ID) -> bytes:
    """An Exchange Online NDR: HTML explanation, delivery-status, and only the original's headers."""
    return _crlf(
        f"""From: Microsoft Outlook <postmaster@outlook.com>
To: {to}
Subject: Undeliverable: 3 new papers on sparse attention
Message-ID: <ndr-8f2e@AM0PR01MB1234.eurprd01.prod.outlook.com>
Content-Type: multipart/report; report-type=delivery-status;
 boundary="b1_ndr"
MIME-Version: 1.0

--b1_ndr
Content-Type: text/html; charset="us-ascii"

<html><body><p>Your message to {recipient} couldn't be delivered.</p></body></html>

--b1_ndr
Content-Type: message/delivery-status

Reporting-MTA: dns;AM0PR01MB1234.eurprd01.prod.outlook.com
Received-From-MTA: dns;mail.paperboy.example
Arrival-Date: Mon, 23 Nov 2026 08:00:01 +0000

Final-Recipient: rfc822;{recipient}
Action: failed
Status: 5.1.10
Diagnostic-Code: smtp;550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup

--b1_ndr
Content-Type: text/rfc822-headers

{original_headers(recipient, message_id, to)}
--b1_ndr--
"""
    )


def gmail_delayed(recipient: str, *, to: str, message_id: str = ORIGINAL_ID, n: int = 1) -> bytes:
    """Gmail's "Delivery Status Notification (Delay)": Action delayed, a 4.x.x status."""
    return _crlf(
        f"""From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>
To: {to}
Subject: Delivery Status Notification (Delay)
Message-ID: <delay-{n}@mx.google.com>
MIME-Version: 1.0
Content-Type: multipart/report; boundary="000000000000delay"; report-type=delivery-status

--000000000000delay
Content-Type: text/plain; charset="UTF-8"

Delivery incomplete. There was a temporary problem delivering your message to {recipient}.
Gmail will retry for 46 more hours.

--000000000000delay
Content-Type: message/delivery-status

Reporting-MTA: dns; googlemail.com
Arrival-Date: Mon, 23 Nov 2026 08:00:00 -0800

Final-Recipient: rfc822; {recipient}
Action: delayed
Status: 4.2.2
Diagnostic-Code: smtp; 452 4.2.2 The email account that you tried to reach is over quota.
Last-Attempt-Date: Mon, 23 Nov 2026 10:00:00 -0800
Will-Retry-Until: Wed, 25 Nov 2026 08:00:00 -0800

--000000000000delay
Content-Type: message/rfc822

{original_headers(recipient, message_id, to)}
The digest.

--000000000000delay--
"""
    )


def exim(recipient: str, *, to: str, message_id: str = ORIGINAL_ID) -> bytes:
    """Exim's plain-text bounce with X-Failed-Recipients (no multipart/report)."""
    return _crlf(
        f"""Return-path: <>
From: Mail Delivery System <Mailer-Daemon@mail.example.com>
To: {to}
Subject: Mail delivery failed: returning message to sender
X-Failed-Recipients: {recipient}
Message-Id: <E1kXyZ-0001@mail.example.com>

This message was created automatically by mail delivery software.

A message that you sent could not be delivered to one or more of its
recipients. This is a permanent error. The following address(es) failed:

  {recipient}
    host mx.example.com [192.0.2.1]
    SMTP error from remote mail server after RCPT TO:<{recipient}>:
    550 5.1.1 No such user here

------ This is a copy of the message, including all the headers. ------

{original_headers(recipient, message_id, to)}
The digest.
"""
    )


def qmail(recipient: str, *, to: str, message_id: str = ORIGINAL_ID) -> bytes:
    """qmail's QSBMF bounce."""
    return _crlf(
        f"""From: MAILER-DAEMON@mx.example.org
To: {to}
Subject: failure notice
Message-ID: <qmail-77@mx.example.org>

Hi. This is the qmail-send program at mx.example.org.
I'm afraid I wasn't able to deliver your message to the following addresses.
This is a permanent error; I've given up. Sorry it didn't work out.

<{recipient}>:
Sorry, no mailbox here by that name. (#5.1.1)

--- Below this line is a copy of the message.

{original_headers(recipient, message_id, to)}
The digest.
"""
    )


def yahoo(recipient: str, *, to: str) -> bytes:
    """Yahoo's own format (older Yahoo bounces; flufl.bounce's Yahoo detector)."""
    return _crlf(
        f"""From: MAILER-DAEMON@yahoo.com
To: {to}
Subject: Failure Notice
Message-ID: <yahoo-12@yahoo.com>

Sorry, we were unable to deliver your message to the following address.

<{recipient}>:
554: delivery error: dd This user doesn't have a yahoo.com account ({recipient}) [0] - mta1.mail.yahoo.com

--- Original message follows.
"""
    )


def arf(
    recipient: str | None,
    *,
    to: str = "fbl@paperboy.example",
    message_id: str = ORIGINAL_ID,
    return_path: str = "digest@paperboy.example",
    report_id: str = "<fbl-1@feedback.example.net>",
) -> bytes:
    """RFC 5965 section 3.5's example shape; `recipient` None: the loop redacts it (as Yahoo, AOL do)."""
    rcpt_line = f"Original-Rcpt-To: <{recipient}>\n" if recipient else ""
    shown = recipient or "redacted@example.org"
    return _crlf(
        f"""From: <abusedesk@feedback.example.net>
Date: Thu, 26 Nov 2026 09:00:00 +0000
Subject: FW: 3 new papers on sparse attention
To: <{to}>
Message-ID: {report_id}
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report;
     boundary="part1_13d.2e68ed54_boundary"

--part1_13d.2e68ed54_boundary
Content-Type: text/plain; charset="US-ASCII"
Content-Transfer-Encoding: 7bit

This is an email abuse report for an email message received from IP
192.0.2.1 on Thu, 26 Nov 2026 08:00:00 +0000.

--part1_13d.2e68ed54_boundary
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: SomeGenerator/1.0
Version: 1
Original-Mail-From: <{return_path}>
{rcpt_line}Arrival-Date: Thu, 26 Nov 2026 08:00:00 +0000
Reporting-MTA: dns; mail.feedback.example.net
Source-IP: 192.0.2.1
Reported-Domain: paperboy.example

--part1_13d.2e68ed54_boundary
Content-Type: message/rfc822
Content-Disposition: inline

{original_headers(shown, message_id, return_path)}
The digest.
--part1_13d.2e68ed54_boundary--
"""
    )


def unsubscribe_mail(
    token: str, *, sender: str = "reader@example.org", to: str = "unsubscribe@paperboy.example"
) -> bytes:
    """What a mail client sends for the mailto: List-Unsubscribe (RFC 2369)."""
    return _crlf(
        f"""From: {sender}
To: {to}
Subject: unsubscribe {token}
Message-ID: <unsub-{token[-8:]}@mail.example.org>

"""
    )


def personal_mail(to: str) -> bytes:
    return _crlf(
        f"""From: Ada <ada@example.org>
To: {to}
Subject: Thanks for the digest
Message-ID: <thanks@example.org>

I liked the paper on sparse attention.
"""
    )
