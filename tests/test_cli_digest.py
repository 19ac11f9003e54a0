"""The digest commands, run as a user runs them: ``subscribe``, ``unsubscribe``, ``digest
preview|send|bounce|status`` against a real store and, where mail goes out, a real SMTP
server on loopback (``tests/smtp_sink.py``)."""

from __future__ import annotations

import email
import re
from datetime import datetime, timedelta, timezone
from email import policy
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText

import pytest
from conftest import cli_run
from smtp_sink import SmtpSink

from papertide.digest import last_complete_period
from papertide.ingest import ingest_demo
from papertide.mailtokens import check_token
from papertide.store import open_store
from papertide.web.auth import load_or_create_secret

YESTERDAY = last_complete_period("day")
BASE = "http://127.0.0.1:8000"  # the default base_url: links in mail point there


@pytest.fixture
def sink(monkeypatch):
    """A real SMTP server, configured the way an operator does it: PAPERTIDE_SMTP_URL."""
    s = SmtpSink()
    monkeypatch.setenv("PAPERTIDE_SMTP_URL", s.url())
    monkeypatch.setenv("PAPERTIDE_MAIL_RATE", "0")
    yield s
    s.close()


@pytest.fixture
def papers(config) -> list[str]:
    """The demo corpus; six papers listed yesterday (the daily digest's period), one upvoted twice."""
    with open_store(config) as store:
        ingest_demo(store)
        ids = [p.id for p in store.list_papers(limit=6, order="added")]
        for pid in ids:
            store.community.list_paper(pid, YESTERDAY)
        for name in ("u1", "u2"):
            store.community.vote(store.community.create_user(name, "", "argon2-hash-for-tests").id, ids[3])
    return ids


def sub_of(config, address: str):
    with open_store(config) as store:
        return store.mailing.subscription_by_email(address)


def active(config, *addresses: str) -> None:
    with open_store(config) as store:
        for a in addresses:
            store.mailing.confirm(store.mailing.subscribe(a, every="day", trending=True).id)


# ----------------------------------------------------------------- subscribe


def test_subscribe_without_smtp_is_pending_and_prints_the_confirmation_link(config):
    result = cli_run("subscribe", "Ada@Example.org", "--every", "week", "--trending", "--cat", "cs.CL", "--cat", "math",
                     "--search", '"language models"')  # fmt: skip
    lines = result.stdout.splitlines()
    assert lines[0] == "Ada@Example.org: pending, every week"
    [link] = re.findall(rf"^confirmation link: ({re.escape(BASE)}/subscribe/confirm/(\S+))$", result.stdout, re.M)
    assert "the confirmation mail goes out with the first `digest send`" in lines[-1]
    sub = sub_of(config, "ada@example.org")
    assert (sub.status, sub.every, sub.trending, sub.for_you) == ("pending", "week", True, False)
    assert sub.categories == ("cs.CL", "math") and sub.searches == ('"language models"',)
    assert check_token(load_or_create_secret(config.home), "confirm", link[1], sub.email)
    assert not check_token(load_or_create_secret(config.home), "confirm", link[1], "other@example.org")


def test_subscribe_with_smtp_mails_the_link_it_prints(config, sink):
    result = cli_run("subscribe", "ada@example.org", "--every", "day", "--trending")
    assert result.stdout.splitlines()[-1] == "confirmation mail sent"
    printed = re.search(r"confirmation link: (\S+)", result.stdout).group(1)
    [received] = sink.messages
    msg = received.message
    assert received.rcpt_tos == ["ada@example.org"] and msg["To"] == "ada@example.org"
    assert msg["Subject"] == "Confirm your papertide subscription"
    assert printed in msg.get_body(preferencelist=("plain",)).get_content()
    assert printed in msg.get_body(preferencelist=("html",)).get_content()
    assert sub_of(config, "ada@example.org").confirm_sent is not None  # `digest send` does not mail it again
    again = cli_run("digest", "send")
    assert again.stdout.startswith("0 sent") and "confirmation" not in again.stdout and len(sink.messages) == 1


def test_subscribe_when_the_mail_server_refuses_keeps_the_subscription(config, sink):
    sink.reject("ada@example.org")
    result = cli_run("subscribe", "ada@example.org", "--every", "day", "--trending")
    assert "confirmation mail not sent" in result.stderr and "550" in result.stderr
    assert "`papertide digest send` will try again" in result.stderr
    assert sub_of(config, "ada@example.org").status == "pending" and not sink.messages


def test_an_active_address_stays_active_when_its_subscription_changes(config, sink):
    active(config, "ada@example.org")
    result = cli_run("subscribe", "ada@example.org", "--every", "week", "--cat", "cs")
    assert result.stdout == "ada@example.org: active, every week\n"  # no new confirmation
    assert sub_of(config, "ada@example.org").categories == ("cs",) and not sink.messages


@pytest.mark.parametrize(("args", "code", "message"), [
    (["not-an-address", "--every", "day", "--trending"], 1, "not an email address: 'not-an-address'"),
    (["ada@example.org", "--every", "day"], 1, "a subscription needs some content: trending, a category"),
    (["ada@example.org", "--every", "day", "--cat", "computer science"], 1,
     "not an arXiv category or archive: 'computer science'"),
    (["ada@example.org", "--every", "month", "--trending"], 2, "'month' is not one of 'day', 'week'"),
    (["ada@example.org", "--trending"], 2, "Missing option '--every'"),
    (["ada@example.org", "--every", "day", "--trending", "--user", "nobody"], 1, "no account named 'nobody'"),
])  # fmt: skip
def test_subscribe_refuses_bad_input_clearly_and_stores_nothing(config, args, code, message):
    result = cli_run("subscribe", *args, code=code)
    assert message in result.output
    assert "Traceback" not in result.output
    with open_store(config) as store:
        assert store.mailing.subscription_count() == 0


def test_subscribe_for_an_account_links_it(config):
    with open_store(config) as store:
        ann = store.community.create_user("ann", "ann@example.org", "argon2-hash-for-tests")
    cli_run("subscribe", "ann@example.org", "--every", "day", "--for-you", "--user", "ann")
    sub = sub_of(config, "ann@example.org")
    assert sub.user_id == ann.id and sub.for_you and not sub.trending


# --------------------------------------------------------------- unsubscribe


def test_unsubscribe(config):
    active(config, "ada@example.org")
    assert cli_run("unsubscribe", "ADA@example.org").stdout == "ada@example.org: unsubscribed\n"
    sub = sub_of(config, "ada@example.org")
    assert sub.status == "unsubscribed" and sub.reason == "unsubscribed from the command line"
    assert "no subscription for nobody@example.org" in cli_run("unsubscribe", "nobody@example.org", code=1).output


# ------------------------------------------------------------------- preview


def test_preview_writes_an_eml_and_an_html_that_parse(config, papers, tmp_path):
    active(config, "ada@example.org")
    out = tmp_path / "previews" / "ada"
    result = cli_run("digest", "preview", "ada@example.org", "--out", str(out))
    assert result.stdout.splitlines()[0].endswith(f": 6 papers ({YESTERDAY})")
    eml, html = out.with_name("ada.eml"), out.with_name("ada.html")
    msg = email.message_from_bytes(eml.read_bytes(), policy=policy.default)
    assert msg["To"] == "ada@example.org" and msg["Subject"].startswith("Your papertide digest: ")
    assert msg.get_content_type() == "multipart/alternative"
    assert msg["List-Unsubscribe"].startswith(f"<{BASE}/unsubscribe/") and msg["List-Unsubscribe-Post"]
    page = html.read_text(encoding="utf-8")
    assert page == msg.get_body(preferencelist=("html",)).get_content()
    assert page.lstrip().lower().startswith("<!doctype html") and page.rstrip().lower().endswith("</html>")
    links = re.findall(r'href="([^"]+/paper/[^"]+)"', page)
    assert links[0] == f"{BASE}/paper/{papers[3]}" and {link.rsplit("/", 1)[1] for link in links} == set(papers)
    assert re.search("listed on|among the most upvoted on", page) and ">2<" in page  # the reason; the count
    with open_store(config) as store:
        assert store.mailing.send_log() == []  # a preview sends and records nothing


def test_preview_of_another_period_and_bad_input(config, papers, tmp_path):
    active(config, "ada@example.org")
    result = cli_run("digest", "preview", "ada@example.org", "--out", str(tmp_path / "old"), "--period", "2024-03-17")
    assert "0 papers (2024-03-17) (empty)" in result.stdout
    assert (tmp_path / "old.eml").is_file()
    bad = cli_run("digest", "preview", "ada@example.org", "--period", "2024-13-01", code=2)
    assert "Invalid value for --period: not a period: '2024-13-01'" in bad.output
    missing = cli_run("digest", "preview", "nobody@example.org", code=1)
    assert "no subscription for nobody@example.org: add one with `papertide subscribe`" in missing.output


# ---------------------------------------------------------------------- send


def test_send_without_an_smtp_server_says_how_to_configure_one(config, papers):
    active(config, "ada@example.org")
    result = cli_run("digest", "send", code=1)
    assert "no SMTP server configured: set PAPERTIDE_SMTP_URL" in result.output
    assert "no search index" not in result.output  # refused before any work
    with open_store(config) as store:
        assert store.mailing.send_log() == []


def test_send_dry_run_builds_everything_and_sends_nothing(config, papers, sink):
    active(config, "ada@example.org", "bob@example.org")
    result = cli_run("digest", "send", "--dry-run")
    assert "0 sent" in result.stdout and "2 built (dry run)" in result.stdout
    assert "no search index: saved searches stay empty" in result.stderr
    assert not sink.messages
    with open_store(config) as store:
        assert store.mailing.send_log() == []


def test_send_only_one_then_the_rest_each_once(config, papers, sink):
    active(config, "ada@example.org", "bob@example.org", "cy@example.org")
    first = cli_run("digest", "send", "--only", "BOB@example.org")
    assert first.stdout.startswith("1 sent, 0 empty") and [r.message["To"] for r in sink.messages] == ["bob@example.org"]
    rest = cli_run("digest", "send")
    assert rest.stdout.startswith("2 sent, 0 empty")
    assert sorted(r.message["To"] for r in sink.messages) == ["ada@example.org", "bob@example.org", "cy@example.org"]
    assert cli_run("digest", "send").stdout.startswith("0 sent, 0 empty")
    with open_store(config) as store:
        log = store.mailing.send_log(period=YESTERDAY)
    assert sorted(r.message_id for r in log) == sorted(r.message["Message-ID"] for r in sink.messages)


def test_send_exits_1_and_names_the_address_the_server_refused(config, papers, sink):
    active(config, "ada@example.org", "gone@example.org")
    sink.reject("gone@example.org")
    result = cli_run("digest", "send", code=1)
    assert "1 sent, 0 empty, 0 deferred, 1 failed" in result.stdout
    assert "error: gone@example.org: refused: " in result.stderr and "550 5.1.1" in result.stderr
    assert sub_of(config, "gone@example.org").status == "paused"


def test_send_now_catches_up_a_missed_day_and_refuses_a_bad_time(config, sink):
    with open_store(config) as store:
        ingest_demo(store)
        pid = store.list_papers(limit=1, order="added")[0].id
        store.community.list_paper(pid, "2024-03-17")
    active(config, "ada@example.org")
    result = cli_run("digest", "send", "--now", "2024-03-18T06:00")  # the morning after: 17 March is due
    assert result.stdout.startswith("1 sent") and "later than the clock" not in result.stderr
    [received] = sink.messages
    assert received.message["Subject"] == "Your papertide digest: 17 Mar 2024"
    with open_store(config) as store:
        assert [(r.period, r.state) for r in store.mailing.send_log()] == [("2024-03-17", "sent")]
    bad = cli_run("digest", "send", "--now", "tomorrow", code=2)
    assert "Invalid value for '--now': not a time: 'tomorrow'" in bad.output
    future = (datetime.now(timezone.utc) + timedelta(days=2)).strftime("%Y-%m-%d")
    assert "later than the clock" in cli_run("digest", "send", "--now", future).stderr


# -------------------------------------------------------------------- bounce


def dsn(recipient: str, status: str = "5.1.1", action: str = "failed") -> bytes:
    """A delivery status notification (RFC 3464) as Postfix sends one: text, fields, returned headers."""
    report = MIMEMultipart("report", report_type="delivery-status")
    report["From"] = "MAILER-DAEMON@mx.example.net (Mail Delivery System)"
    report["To"] = "papertide@127.0.0.1"
    report["Subject"] = "Undelivered Mail Returned to Sender"
    report.attach(MIMEText("I'm sorry to have to inform you that your message could not be delivered.\n"))
    per_message, per_recipient = Message(), Message()
    per_message["Reporting-MTA"] = "dns; mx.example.net"
    per_recipient["Final-Recipient"] = f"rfc822; {recipient}"
    per_recipient["Action"] = action
    per_recipient["Status"] = status
    per_recipient["Diagnostic-Code"] = f"smtp; 550 {status} <{recipient}>: Recipient address rejected: User unknown"
    status_part = Message()
    status_part["Content-Type"] = "message/delivery-status"
    status_part.set_payload([per_message, per_recipient])
    report.attach(status_part)
    report.attach(MIMEText(f"To: {recipient}\nSubject: Your papertide digest\n", "rfc822-headers"))
    return report.as_bytes()


def test_bounce_pauses_the_address_and_status_counts_it(config, tmp_path):
    active(config, "gone@example.org", "fine@example.org")
    cli_run("subscribe", "new@example.org", "--every", "day", "--trending")
    (tmp_path / "gone.eml").write_bytes(dsn("gone@example.org"))
    (tmp_path / "stranger.eml").write_bytes(dsn("stranger@example.org"))
    (tmp_path / "late.eml").write_bytes(dsn("fine@example.org", status="4.4.1", action="delayed"))
    result = cli_run("digest", "bounce", str(tmp_path / "gone.eml"), str(tmp_path / "stranger.eml"),
                     str(tmp_path / "late.eml"))  # fmt: skip
    assert "gone@example.org: bounced (5.1.1): subscription paused" in result.stdout
    assert "stranger@example.org: bounced (5.1.1): no subscription for this address" in result.stdout
    assert result.stdout.splitlines()[-1] == "2 bounces recorded from 3 file(s)"  # a delay is not a bounce
    gone = sub_of(config, "gone@example.org")
    assert gone.status == "paused" and "5.1.1" in gone.reason and "User unknown" in gone.reason
    assert sub_of(config, "fine@example.org").status == "active"
    status = cli_run("digest", "status").stdout
    assert status.splitlines()[0] == "1 pending, 1 active, 1 paused, 0 unsubscribed"


def test_bounce_of_a_file_that_is_no_report_reads_nothing_and_a_broken_one_exits_1(config, tmp_path):
    active(config, "ada@example.org")
    (tmp_path / "reply.eml").write_text("From: ada@example.org\nTo: papertide@127.0.0.1\nSubject: thanks\n\nNice digest!\n")
    broken = MIMEMultipart("report", report_type="delivery-status")
    broken["Subject"] = "Undelivered Mail"
    broken.attach(MIMEText("no machine-readable part"))
    (tmp_path / "broken.eml").write_bytes(broken.as_bytes())
    result = cli_run("digest", "bounce", str(tmp_path / "reply.eml"), str(tmp_path / "broken.eml"), code=1)
    assert "without a message/delivery-status part" in result.stderr and "broken.eml" in result.stderr
    assert result.stdout.splitlines()[-1] == "0 bounces recorded from 1 file(s)"
    assert sub_of(config, "ada@example.org").status == "active"
    missing = cli_run("digest", "bounce", str(tmp_path / "nowhere.eml"), code=2)
    assert "does not exist" in missing.output


# -------------------------------------------------------------------- status


def test_status_counts_and_lists_the_latest_sends(config, papers, sink):
    active(config, "ada@example.org", "bob@example.org")
    cli_run("subscribe", "cy@example.org", "--every", "day", "--trending")
    cli_run("unsubscribe", "bob@example.org")
    cli_run("digest", "send")
    lines = cli_run("digest", "status").stdout.splitlines()
    assert lines[0] == "1 pending, 1 active, 0 paused, 1 unsubscribed"
    ada = sub_of(config, "ada@example.org")
    assert re.fullmatch(rf"{YESTERDAY}  #{ada.id}  sent  .*queued as Q\d+.*", lines[1]), lines
    assert len(lines) == 2
