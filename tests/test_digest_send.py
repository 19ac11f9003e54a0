"""Sending digests through a real SMTP server on loopback: once per period, confirmations
first, failures recorded, and a sender killed mid-run resumed without duplicates."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from datetime import datetime, timedelta, timezone

import pytest
from conftest import cli_run

from papertide.config import replace
from papertide.digest import last_complete_period
from papertide.digest_send import DigestRun, owner_dead, owner_name
from papertide.mailer import Mailer, SmtpSettings
from papertide.store import open_store
from papertide.web.auth import load_or_create_secret

NOW = datetime.now(timezone.utc)
YESTERDAY = last_complete_period("day", NOW)


@pytest.fixture
def home(config):
    """The demo corpus, ten of its papers listed yesterday (the period a daily digest covers now)."""
    cli_run("ingest", "demo")
    with open_store(config) as store:
        for p in store.list_papers(limit=10, order="added"):
            store.community.list_paper(p.id, YESTERDAY)
    return config


def _subscribers(config, n: int, *, confirm: bool = True) -> list[str]:
    emails = [f"reader{i:03d}@example.org" for i in range(n)]
    with open_store(config) as store:
        for e in emails:
            sub = store.mailing.subscribe(e, every="day", trending=True)
            if confirm:
                store.mailing.confirm(sub.id)
    return emails


def _run(config, sink, *, now=NOW, retries: int = 2, **kw):
    settings = SmtpSettings.from_url(sink.url())
    with open_store(config) as store, Mailer(settings, rate=0, retries=retries, backoff=0, sleep=lambda s: None) as m:
        return DigestRun(store, None, config, load_or_create_secret(config.home), mailer=m, now=now, **kw).run()


def _to(sink) -> list[str]:
    return [r.message["To"] for r in sink.messages]


def test_confirmation_first_then_one_digest_per_period(home, sink):
    emails = _subscribers(home, 3, confirm=False)
    report = _run(home, sink)
    assert report.confirmations == 3 and report.sent == 0
    assert sorted(_to(sink)) == emails and all("confirm" in r.message["Subject"].lower() for r in sink.messages)
    with open_store(home) as store:
        for e in emails[:2]:
            store.mailing.confirm(store.mailing.subscription_by_email(e).id)
    report = _run(home, sink)
    assert (report.sent, report.confirmations) == (2, 0)
    digests = sink.messages[3:]
    assert sorted(_to(sink)[3:]) == emails[:2]
    with open_store(home) as store:
        log = {r.subscription_id: r for r in store.mailing.send_log(period=YESTERDAY)}
        for r in digests:
            sub = store.mailing.subscription_by_email(r.message["To"])
            assert log[sub.id].state == "sent" and log[sub.id].message_id == r.message["Message-ID"]
            assert r.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
            assert r.message["List-Unsubscribe"].startswith(f"<{home.base_url}/unsubscribe/{sub.id}.")
    again = _run(home, sink)
    assert (again.sent, again.confirmations, len(sink.messages)) == (0, 0, 5)


def test_permanent_refusal_is_recorded_and_pauses_the_address(home, sink):
    emails = _subscribers(home, 3)
    sink.reject(emails[1])
    report = _run(home, sink)
    assert (report.sent, report.failed) == (2, 1) and emails[1] in report.errors[0]
    with open_store(home) as store:
        sub = store.mailing.subscription_by_email(emails[1])
        assert sub.status == "paused" and "550" in sub.reason
        assert store.mailing.events(emails[1])[0].kind == "failure"
    assert _run(home, sink).failed == 0  # a paused address is not tried again


def test_transient_failure_defers_and_the_next_run_sends_the_same_message(home, sink):
    [email] = _subscribers(home, 1)
    sink.fail_next(3)  # all three attempts of the first run (retries=2) get 451
    first = _run(home, sink)
    assert (first.sent, first.deferred) == (0, 1) and not sink.messages
    second = _run(home, sink)
    assert second.sent == 1
    with open_store(home) as store:
        [rec] = store.mailing.send_log(period=YESTERDAY)
    assert rec.attempts == 2 and sink.messages[0].message["Message-ID"] == rec.message_id


def test_dry_run_and_only(home, sink):
    emails = _subscribers(home, 3)
    with open_store(home) as store:
        dry = DigestRun(store, None, home, b"k" * 32, now=NOW).run()
        assert dry.previewed == 3 and dry.sent == 0 and not store.mailing.send_log()
    report = _run(home, sink, only=emails[2].upper())
    assert report.sent == 1 and _to(sink) == [emails[2]]


def test_the_per_run_cap_stops_early_and_the_next_run_finishes(home, sink):
    _subscribers(home, 5)
    capped = replace(home, mail_max_per_run=2)
    first = _run(capped, sink)
    assert first.sent == 2 and first.stopped
    assert _run(home, sink).sent == 3 and len(set(_to(sink))) == 5


def test_an_empty_period_sends_nothing_and_is_not_retried(home, sink):
    _subscribers(home, 2)
    later = NOW + timedelta(days=30)  # nothing listed on that day, nobody voted
    report = _run(home, sink, now=later)
    assert (report.empty, report.sent, len(sink.messages)) == (2, 0, 0)
    assert _run(home, sink, now=later).empty == 0


def test_unsubscribed_and_paused_addresses_get_nothing(home, sink):
    emails = _subscribers(home, 3)
    with open_store(home) as store:
        store.mailing.unsubscribe(store.mailing.subscription_by_email(emails[0]).id, "test")
        store.mailing.pause(store.mailing.subscription_by_email(emails[1]).id, "bounced")
    assert _run(home, sink).sent == 1 and _to(sink) == [emails[2]]


def test_a_dead_senders_claim_is_released_and_sent_under_its_message_id(home, sink):
    [email] = _subscribers(home, 1)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    owner = f"{owner_name().rpartition(':')[0]}:{dead.stdout.strip()}"
    assert owner_dead(owner) and not owner_dead(owner_name())
    with open_store(home) as store:
        sub = store.mailing.subscription_by_email(email)
        claim = store.mailing.claim_send(sub.id, YESTERDAY, "<first@example.org>", owner=owner)
    assert claim is not None
    assert _run(home, sink).sent == 1
    assert sink.messages[0].message["Message-ID"] == "<first@example.org>"


# ----------------------------------------------------------- killed mid-run


def _sender(home, sink) -> subprocess.Popen:
    env = os.environ | {"PAPERTIDE_HOME": str(home.home), "PAPERTIDE_SMTP_URL": sink.url(), "PAPERTIDE_MAIL_RATE": "0"}
    return subprocess.Popen([sys.executable, "-m", "papertide", "digest", "send"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip


def _assert_each_once(sink, emails):
    got = _to(sink)
    assert sorted(got) == sorted(emails), f"{len(got)} messages for {len(emails)} subscribers"


@pytest.mark.slow
@pytest.mark.parametrize("kill_at", [0, 19])
def test_killed_during_a_hand_off_then_rerun_sends_each_digest_once(home, sink, kill_at):
    """The sink kills the sender while message ``kill_at`` is being handed off and refuses it
    (so it was not delivered); the re-run must deliver exactly the rest."""
    emails = _subscribers(home, 20)
    proc = _sender(home, sink)

    def kill(accepted: int) -> str | None:
        if accepted == kill_at and proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            return "451 4.3.0 sender died"
        return None

    sink.before_accept = kill
    proc.wait(timeout=120)
    assert proc.returncode == -signal.SIGKILL
    assert len(sink.messages) == kill_at
    sink.before_accept = None
    rerun = _sender(home, sink)
    out, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err
    assert f"{20 - kill_at} sent" in out
    _assert_each_once(sink, emails)


@pytest.mark.slow
@pytest.mark.parametrize("kill_at", [12])
def test_killed_between_messages_then_rerun_sends_each_digest_once(home, sink, kill_at):
    """Killed as it begins message ``kill_at + 1``: everything before was accepted and logged."""
    emails = _subscribers(home, 20)
    proc = _sender(home, sink)

    def kill(accepted: int) -> None:
        if accepted == kill_at and proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)

    sink.on_mail = kill
    proc.wait(timeout=120)
    assert proc.returncode == -signal.SIGKILL and len(sink.messages) == kill_at
    sink.on_mail = None
    rerun = _sender(home, sink)
    out, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err
    assert f"{20 - kill_at} sent" in out
    _assert_each_once(sink, emails)


@pytest.mark.slow
def test_killed_at_random_moments_loses_nothing_and_repeats_at_most_the_message_in_flight(home, sink):
    """SIGKILL at random moments (mid-build, mid-claim, mid-hand-off), four times, then a run to
    the end. Every subscriber gets the digest; the only repeat SMTP allows is a message whose
    250 reply was lost with the sender, and it carries the same Message-ID (docs: digest_send)."""
    import random

    emails = _subscribers(home, 40)
    rng = random.Random(7)
    for _ in range(4):
        proc = _sender(home, sink)
        try:
            proc.wait(timeout=rng.uniform(0.3, 1.5))
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=60)
    final = _sender(home, sink)
    _, err = final.communicate(timeout=120)
    assert final.returncode == 0, err
    got = _to(sink)
    assert set(got) == set(emails)
    repeats = len(got) - len(emails)
    assert repeats <= 4
    by_to: dict[str, set[str]] = {}
    for r in sink.messages:
        by_to.setdefault(r.message["To"], set()).add(r.message["Message-ID"])
    assert all(len(ids) == 1 for ids in by_to.values()), "a repeat is the same message, never a new one"


def test_two_senders_at_once_share_the_work_without_duplicates(home, sink):
    emails = _subscribers(home, 30)
    errors: list[BaseException] = []

    def go() -> None:
        try:
            _run(home, sink)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=go) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    _assert_each_once(sink, emails)
