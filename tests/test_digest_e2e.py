"""Issue 6's "Done when", end to end with real processes on loopback.

A real ``papertide serve`` (its settings from the environment: the SMTP sink, the base
URL it listens on) and a real SMTP server (aiosmtpd, ``tests/smtp_sink.py``). Two new
readers subscribe through the web form (its CSRF token and cookie, as a browser sends
them), the confirmation mails arrive, each link is opened (a page: nothing changes) and
its button pressed. ``papertide worker --once`` then delivers yesterday's digest to both:
the mails parse, carry the right headers and the send log's Message-ID, and link to
papers the web app serves. One reader leaves by RFC 8058 one-click POST (no cookies),
and the run for the next day (``digest send --now``) mails only the other one; the worker
run again sends nothing twice.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from datetime import date, datetime, timedelta, timezone
from email.message import EmailMessage

import httpx
import pytest
from processes import free_port, run_papertide, wait_until_serving

from papertide.digest import last_complete_period
from papertide.ingest import ingest_demo
from papertide.store import open_store

pytestmark = pytest.mark.slow  # three papertide processes start (web app, worker, sender): ~15 s here

READERS = ("ada@example.org", "grace@example.net")


@pytest.fixture
def site(config, warm_home, sink, tmp_path):
    """The demo corpus, six papers listed yesterday (two upvoted), served by ``papertide serve``."""
    yesterday = date.fromisoformat(last_complete_period("day"))
    with open_store(config) as store:
        ingest_demo(store)
        ids = [p.id for p in store.list_papers(limit=9, order="added")]
        com = store.community
        for pid in ids[:6]:
            com.list_paper(pid, yesterday.isoformat())
        for n in range(3):
            voter = com.create_user(f"voter{n}", "", "argon2-hash-for-tests")
            com.vote(voter.id, ids[4])
            if n < 2:
                com.vote(voter.id, ids[2])
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAPERTIDE_")}
    env |= {"PAPERTIDE_HOME": str(warm_home), "PAPERTIDE_SMTP_URL": sink.url(), "PAPERTIDE_BASE_URL": base}
    log = tmp_path / "serve.log"
    cmd = [sys.executable, "-m", "papertide", "serve", "--port", str(port), "--no-index", "--retry-submissions", "0"]
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_until_serving(base, proc, log, "/subscribe")
        yield {"base": base, "env": env, "ids": ids, "yesterday": yesterday, "config": config}
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)  # one uvicorn process re-raises SIGTERM once it has shut down
        assert code in (0, -signal.SIGTERM) and "Application shutdown complete" in log.read_text(), log.read_text()


def _mail_to(sink, address: str, *, after: int = 0) -> EmailMessage:
    """The first message to ``address`` among those after the first ``after``, waiting for it."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        found = [r.message for r in sink.messages[after:] if r.message["To"] == address]
        if found:
            return found[0]
        time.sleep(0.05)
    raise AssertionError(f"no mail to {address}; the sink holds {[r.message['To'] for r in sink.messages]}")


def _text(msg: EmailMessage) -> str:
    return msg.get_body(preferencelist=("plain",)).get_content()


def _html(msg: EmailMessage) -> str:
    return msg.get_body(preferencelist=("html",)).get_content()


def _subscribe_and_confirm(site: dict, sink, email: str) -> None:
    """What a reader does: the form, the mail, the link's page, its button."""
    base = site["base"]
    with httpx.Client(base_url=base, timeout=10) as browser:
        form = browser.get("/subscribe")
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
        answer = browser.post("/subscribe", data={"csrf": csrf, "email": email, "every": "day", "trending": "1"})
    assert answer.status_code == 200 and "Check your inbox" in answer.text, answer.text[:500]
    mail = _mail_to(sink, email)
    assert mail["Subject"] == "Confirm your papertide subscription" and mail["List-Unsubscribe"] is None
    [link] = re.findall(r"https?://\S+/subscribe/confirm/\S+", _text(mail))
    assert link.startswith(base + "/subscribe/confirm/")
    assert link in _html(mail)
    page = httpx.get(link, timeout=10)  # what a mail scanner's prefetch does: nothing changes
    assert page.status_code == 200 and "Confirm your subscription" in page.text and email in page.text
    assert _status(site, email) == "pending"
    action = re.search(r'<form method="post" action="(/subscribe/confirm/[^"]+)"', page.text).group(1)
    done = httpx.post(base + action, timeout=10)  # the button: a plain POST, no cookies, no CSRF token
    assert done.status_code == 200 and "Subscription confirmed" in done.text, done.text[:500]
    assert _status(site, email) == "active"


def _status(site: dict, email: str) -> str:
    with open_store(site["config"]) as store:
        return store.mailing.subscription_by_email(email).status


def test_subscribe_confirm_receive_from_the_worker_unsubscribe_and_receive_nothing_more(site, sink):
    base, env, ids = site["base"], site["env"], site["ids"]
    for email in READERS:
        _subscribe_and_confirm(site, sink, email)
    confirmations = len(sink.messages)
    assert confirmations == 2

    # the worker's tick: index, submissions, then yesterday's digests
    worker = run_papertide(env, "worker", "--once")
    assert "digests: 2 sent, 0 empty, 0 deferred, 0 failed" in worker.stderr, worker.stderr
    assert "worker: stopped" in worker.stderr
    period = site["yesterday"].isoformat()
    with open_store(site["config"]) as store:
        subs = {e: store.mailing.subscription_by_email(e) for e in READERS}
        log = {r.subscription_id: r for r in store.mailing.send_log(period=period)}
        titles = {pid: p.title for pid, p in store.get_many(ids).items()}
    digests = {e: _mail_to(sink, e, after=confirmations) for e in READERS}
    assert len(sink.messages) == 4
    for email, msg in digests.items():
        record = log[subs[email].id]
        assert record.state == "sent" and msg["Message-ID"] == record.message_id
        assert msg["To"] == email and msg["From"].addresses[0].addr_spec == "papertide@127.0.0.1"
        d = site["yesterday"]
        assert msg["Subject"] == f"Your papertide digest: {d.day} {d:%b %Y}"
        assert msg.get_content_type() == "multipart/alternative"
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert re.fullmatch(rf"<{re.escape(base)}/unsubscribe/{subs[email].id}\.[\w-]+>", msg["List-Unsubscribe"])
        html, text = _html(msg), _text(msg)
        links = re.findall(r'href="([^"]+/paper/[^"]+)"', html)
        assert links[:2] == [f"{base}/paper/{ids[4]}", f"{base}/paper/{ids[2]}"]  # most upvoted first
        assert {link.rsplit("/paper/", 1)[1] for link in links} == set(ids[:6])  # yesterday's six, nothing else
        assert "3 upvotes" in text and "2 upvotes" in text and f"listed on {d.day} {d:%b}" in text  # and why
        assert titles[ids[4]] in text
    paper = httpx.get(re.findall(r'href="([^"]+/paper/[^"]+)"', _html(digests[READERS[0]]))[0], timeout=10)
    assert paper.status_code == 200 and titles[ids[4]].split(":")[0] in paper.text  # the link leads to the paper

    # one-click unsubscribe (RFC 8058): the header's URL, POSTed as a mail client does, without cookies
    leaving, staying = READERS
    url = digests[leaving]["List-Unsubscribe"].strip("<>")
    answer = httpx.post(url, content=b"List-Unsubscribe=One-Click", timeout=10,
                        headers={"Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
    assert answer.status_code == 200 and "Unsubscribed" in answer.text
    assert _status(site, leaving) == "unsubscribed" and _status(site, staying) == "active"

    # the next day's run (as the worker runs it tomorrow): today's upvotes make today's trending
    today = site["yesterday"] + timedelta(days=1)
    tomorrow = datetime.combine(today + timedelta(days=1), datetime.min.time(), timezone.utc) + timedelta(hours=6)
    before = len(sink.messages)
    later = run_papertide(env, "digest", "send", "--now", tomorrow.strftime("%Y-%m-%dT%H:%MZ"))
    assert "1 sent, 0 empty" in later.stdout, later.stdout + later.stderr
    assert "later than the clock" in later.stderr  # --now in the future is allowed, with a warning
    assert [r.message["To"] for r in sink.messages[before:]] == [staying]
    newest = sink.messages[-1].message
    assert newest["Subject"] == f"Your papertide digest: {today.day} {today:%b %Y}"
    assert re.findall(r'href="[^"]+/paper/([^"]+)"', _html(newest)) == [ids[4], ids[2]]
    assert f"among the most upvoted on {today.day} {today:%b}" in _text(newest)
    with open_store(site["config"]) as store:
        assert [r.state for r in store.mailing.send_log(period=today.isoformat())] == ["sent"]

    # the worker again, today: yesterday's digests are in the send log, so nothing goes out twice
    again = run_papertide(env, "worker", "--once")
    assert "digests: 0 sent, 0 empty" in again.stderr, again.stderr
    assert len(sink.messages) == before + 1
