"""Delivery status notifications (RFC 3464), shaped as real MTAs send them, read back as bounces."""

from __future__ import annotations

import mailbox
import re
from email.message import EmailMessage, Message
from email.mime.message import MIMEMessage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText

import pytest

from papertide.bounces import Bounce, parse_bounce, read_bounces
from papertide.errors import FormatError

ORIGINAL_HEADERS = """From: papertide <digest@papers.example.org>
To: nobody@example.net
Subject: Your papertide digest: 25 Nov 2026
Message-ID: <digest-7-2026-11-25@papers.example.org>
"""


def fields(**named: str) -> Message:
    """One block of DSN fields, in the order given (Final_Recipient -> Final-Recipient)."""
    block = Message()
    for name, value in named.items():
        block[name.replace("_", "-")] = value
    return block


def dsn(recipients: list[Message], *, reporting: str = "dns; mx.papers.example.org", human: str | None = None,
        report_type: str = "delivery-status", subject: str = "Undelivered Mail Returned to Sender") -> bytes:
    """A multipart/report as Postfix builds it: human text, machine fields, the returned headers."""
    report = MIMEMultipart("report", report_type=report_type)
    report["From"] = "MAILER-DAEMON@mx.papers.example.org (Mail Delivery System)"
    report["To"] = "digest@papers.example.org"
    report["Subject"] = subject
    report["Auto-Submitted"] = "auto-replied"
    report.attach(MIMEText(human or (
        "This is the mail system at host mx.papers.example.org.\n\n"
        "I'm sorry to have to inform you that your message could not\n"
        "be delivered to one or more recipients.\n"), "plain"))
    status = Message()
    status["Content-Type"] = f"message/{report_type}"
    status["Content-Description"] = "Delivery report"
    status.set_payload([fields(Reporting_MTA=reporting, X_Postfix_Queue_ID="4Qk2Lz0Y3bz9rxN",
                               Arrival_Date="Thu, 26 Nov 2026 06:00:01 +0000 (UTC)"), *recipients])
    report.attach(status)
    returned = MIMEText(ORIGINAL_HEADERS, "rfc822-headers")
    returned["Content-Description"] = "Undelivered Message Headers"
    report.attach(returned)
    return report.as_bytes()


USER_UNKNOWN = fields(
    Final_Recipient="rfc822; nobody@example.net", Original_Recipient="rfc822;Nobody@Example.net",
    Action="failed", Status="5.1.1", Remote_MTA="dns; mx.example.net",
    Diagnostic_Code="smtp; 550 5.1.1 <nobody@example.net>: Recipient address rejected: User unknown in virtual "
                    "mailbox table (in reply to RCPT TO command)")


def test_postfix_user_unknown():
    raw = dsn([USER_UNKNOWN])
    assert re.search(rb"Diagnostic-Code:[^\n]*\n[ \t]", raw)  # the long field was folded over lines
    assert parse_bounce(raw) == [Bounce(
        "Nobody@Example.net", "failed", "5.1.1",
        "smtp; 550 5.1.1 <nobody@example.net>: Recipient address rejected: User unknown in virtual mailbox table "
        "(in reply to RCPT TO command)")]


def test_only_failed_recipients_are_bounces():
    raw = dsn([
        fields(Final_Recipient="rfc822; slow@example.net", Action="delayed", Status="4.4.1",
               Diagnostic_Code="X-Postfix; connect to mx.example.net[192.0.2.1]:25: Connection timed out",
               Will_Retry_Until="Sat, 28 Nov 2026 06:00:01 +0000"),
        fields(Final_Recipient="rfc822;<full@example.com>", Action="failed", Status="5.2.2 (mailbox full)",
               Diagnostic_Code="smtp; 552-5.2.2 The recipient's inbox is out of storage space."),
        fields(Final_Recipient="rfc822; fine@example.org", Action="delivered", Status="2.0.0"),
        fields(Final_Recipient="rfc822; list@example.org", Action="expanded", Status="2.0.0"),
    ])
    assert parse_bounce(raw) == [Bounce("full@example.com", "failed", "5.2.2",
                                        "smtp; 552-5.2.2 The recipient's inbox is out of storage space.")]


def test_a_delay_warning_alone_is_not_a_bounce():
    raw = dsn([fields(Final_Recipient="rfc822; slow@example.net", Action="delayed", Status="4.7.0")],
              subject="Delayed Mail (still being retried)")
    assert parse_bounce(raw) == []


def test_a_failure_without_diagnostic_code_is_still_a_bounce():
    raw = dsn([fields(Final_Recipient="RFC822; gone@example.org", Action="Failed", Status="5.0.0")])
    assert parse_bounce(raw) == [Bounce("gone@example.org", "failed", "5.0.0", "")]


def test_exchange_style_dsn_with_crlf_and_quoted_boundary():
    raw = (
        "From: postmaster@example.net\r\nTo: <digest@papers.example.org>\r\nSubject: Undeliverable: digest\r\n"
        "MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=\"delivery-status\";\r\n"
        "\tboundary=\"_000_PH0PR11MB\"\r\n\r\n"
        "--_000_PH0PR11MB\r\nContent-Type: text/plain; charset=\"us-ascii\"\r\n\r\nDelivery has failed.\r\n\r\n"
        "--_000_PH0PR11MB\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns;PH0PR11MB.namprd11.prod.outlook.com\r\nReceived-From-MTA: dns;mx.papers.example.org\r\n"
        "Arrival-Date: Thu, 26 Nov 2026 06:00:02 +0000\r\n\r\n"
        "Final-Recipient: rfc822;Carol@example.net\r\nAction: failed\r\nStatus: 5.1.10\r\n"
        "Diagnostic-Code: smtp;550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup\r\n"
        "\r\n--_000_PH0PR11MB--\r\n"
    ).encode()
    assert parse_bounce(raw) == [Bounce("Carol@example.net", "failed", "5.1.10",
                                        "smtp;550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by "
                                        "SMTP address lookup")]


def test_utf8_addresses_in_a_global_delivery_status():
    raw = (
        "From: MAILER-DAEMON@mx.example.net\nTo: digest@papers.example.org\nSubject: Undelivered\nMIME-Version: 1.0\n"
        "Content-Type: multipart/report; report-type=global-delivery-status; boundary=\"B\"\n\n"
        "--B\nContent-Type: text/plain\n\nfailed\n--B\nContent-Type: message/global-delivery-status\n\n"
        "Reporting-MTA: dns; mx.example.net\n\n"
        "Final-Recipient: utf-8; jörg@example.net\nAction: failed\nStatus: 5.1.1\n"
        "Diagnostic-Code: smtp; 550 5.1.1 no mailbox\n  for jörg\n\n--B--\n"
    ).encode()
    assert parse_bounce(raw) == [Bounce("jörg@example.net", "failed", "5.1.1", "smtp; 550 5.1.1 no mailbox for jörg")]


def test_a_dsn_forwarded_as_an_attachment_is_found():
    inner = dsn([USER_UNKNOWN])
    from email import message_from_bytes

    fwd = MIMEMultipart()
    fwd["From"] = "admin@papers.example.org"
    fwd["To"] = "bounces@papers.example.org"
    fwd["Subject"] = "Fwd: Undelivered Mail Returned to Sender"
    fwd.attach(MIMEText("see attached", "plain"))
    fwd.attach(MIMEMessage(message_from_bytes(inner)))
    assert [b.recipient for b in parse_bounce(fwd.as_bytes())] == ["Nobody@Example.net"]


def test_mail_that_is_not_a_dsn_yields_nothing():
    reply = EmailMessage()
    reply["From"] = "alice@example.org"
    reply["To"] = "digest@papers.example.org"
    reply["Subject"] = "Re: Your papertide digest"
    reply.set_content("Thanks, great list! Action: failed\nFinal-Recipient: rfc822; fake@example.org\n")
    assert parse_bounce(reply.as_bytes()) == []
    ooo = EmailMessage()
    ooo["From"] = "bob@example.org"
    ooo["Subject"] = "Automatic reply: out of office"
    ooo["Auto-Submitted"] = "auto-replied"
    ooo.set_content("I am away until Monday.")
    assert parse_bounce(ooo.as_bytes()) == []
    receipt = dsn([fields(Final_Recipient="rfc822; alice@example.org", Action="failed", Status="5.0.0")],
                  report_type="disposition-notification")
    assert parse_bounce(receipt) == []  # a read receipt is a report, but not a delivery report


@pytest.mark.parametrize("raw, problem", [
    (b"", "empty input"),
    (b"   \r\n", "empty input"),
    (b"\x00\x01\x02 binary junk \xff\xfe", "no header fields"),
    (dsn([fields(Action="failed", Status="5.1.1")]), "recipient block 1 of the delivery status has no Final-Recipient"),
    (dsn([fields(Final_Recipient="rfc822; a@example.org", Status="5.1.1")]), "(a@example.org) has no Action field"),
    (dsn([fields(Final_Recipient="rfc822; a@example.org", Action="exploded", Status="5.1.1")]),
     "unknown Action 'exploded'"),
    (dsn([fields(Final_Recipient="rfc822; a@example.org", Action="failed")]), "(a@example.org) has no Status field"),
    (dsn([]), "no per-recipient fields"),
])
def test_malformed_input_is_a_format_error_naming_the_problem(raw, problem):
    with pytest.raises(FormatError) as e:
        parse_bounce(raw)
    assert problem in str(e.value)


def test_a_report_without_its_status_part_is_a_format_error():
    report = MIMEMultipart("report", report_type="delivery-status")
    report["From"] = "MAILER-DAEMON@example.net"
    report.attach(MIMEText("your mail failed", "plain"))
    with pytest.raises(FormatError, match="without a message/delivery-status part"):
        parse_bounce(report.as_bytes())


def test_read_an_eml_file(tmp_path):
    path = tmp_path / "bounce.eml"
    path.write_bytes(dsn([USER_UNKNOWN]))
    report = read_bounces(path)
    assert report.messages == 1 and report.problems == []
    assert [b.status for b in report] == ["5.1.1"] and len(report) == 1
    bad = tmp_path / "bad.eml"
    bad.write_bytes(dsn([fields(Action="failed", Status="5.1.1")]))
    with pytest.raises(FormatError, match=r"bad\.eml: recipient block 1 .* no Final-Recipient"):
        read_bounces(bad)


def test_read_an_mbox_keeps_going_past_a_malformed_message(tmp_path):
    path = tmp_path / "bounces.mbox"
    box = mailbox.mbox(str(path))
    box.add(dsn([USER_UNKNOWN]))
    note = EmailMessage()
    note["From"] = "alice@example.org"
    note["Subject"] = "hello"
    note.set_content("From the start, this line begins with From and must be escaped in mbox.\n")
    box.add(note)
    box.add(dsn([fields(Final_Recipient="rfc822; x@example.org", Action="failed")]))  # no Status: malformed
    box.add(dsn([fields(Final_Recipient="rfc822; second@example.org", Action="failed", Status="5.7.1",
                        Diagnostic_Code="smtp; 550 5.7.1 Message rejected by policy")]))
    box.flush()
    box.close()
    report = read_bounces(path)
    assert report.messages == 4
    assert [b.recipient for b in report.bounces] == ["Nobody@Example.net", "second@example.org"]
    assert len(report.problems) == 1 and "message 3" in report.problems[0] and "no Status" in report.problems[0]


def test_a_single_message_with_an_mbox_from_line(tmp_path):
    raw = b"From MAILER-DAEMON Thu Nov 26 06:00:03 2026\n" + dsn([USER_UNKNOWN])
    assert [b.recipient for b in parse_bounce(raw)] == ["Nobody@Example.net"]


def test_an_unreadable_file_is_a_format_error(tmp_path):
    with pytest.raises(FormatError, match="cannot read"):
        read_bounces(tmp_path / "missing.eml")
