"""Sending the digests that are due, each exactly once, and the confirmation mails.

One run walks every active subscription whose latest complete period has no final entry
in the send log. For each: build the digest, *claim* the send (the log says ``sending``,
committed before anything leaves), hand the message to SMTP, then record the outcome
(``sent``, ``empty``, ``deferred`` or ``failed``). A crash between claim and outcome
leaves a ``sending`` row: a later run takes it over once its sender is known dead (same
host, process gone) or its lease has run out, and sends it again under the same
Message-ID. SMTP cannot say whether a message whose 250 reply was lost got through, so
the one window left is between the server's 250 and the log's commit (microseconds);
every other kill point resends exactly what was not accepted.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import make_msgid
from pathlib import Path
from urllib.parse import urlsplit

from papertide.config import Config
from papertide.digest import EVERY, Digest, DigestBuilder, last_complete_period
from papertide.store.mailing import Subscription

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5  # a digest deferred this many times is recorded as failed
LEASE = 600.0  # seconds a live sender's claim is respected


def owner_name() -> str:
    """Who holds a claim: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


def owner_dead(owner: str) -> bool:
    """True when ``owner`` is a process on this host that no longer runs."""
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def sender_address(config: Config) -> str:
    if config.mail_from:
        return config.mail_from
    host = urlsplit(config.base_url).hostname or "localhost"
    return f"papertide@{host}"


def mail_domain(config: Config) -> str:
    return sender_address(config).rpartition("@")[2] or "localhost"


@dataclass
class SendReport:
    sent: int = 0
    empty: int = 0
    deferred: int = 0
    failed: int = 0
    skipped: int = 0  # claimed by another live sender, or already final
    previewed: int = 0  # dry run: built and rendered, nothing sent
    confirmations: int = 0
    stopped: bool = False  # a stop request or the per-run cap ended the run early
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> str:
        parts = [f"{self.sent} sent", f"{self.empty} empty", f"{self.deferred} deferred", f"{self.failed} failed",
                 f"{self.skipped} skipped"]  # fmt: skip
        if self.previewed:
            parts.append(f"{self.previewed} built (dry run)")
        if self.confirmations:
            parts.append(f"{self.confirmations} confirmation mails")
        tail = " (stopped early)" if self.stopped else ""
        return ", ".join(parts) + f" in {self.seconds:.1f} s{tail}"


class Links:
    """The links a mail carries, signed with the app secret."""

    def __init__(self, config: Config, secret: bytes) -> None:
        self.base = config.base_url.rstrip("/")
        self.secret = secret

    def _token(self, purpose: str, sub: Subscription) -> str:
        from papertide.mailtokens import make_token

        return make_token(self.secret, purpose, sub.id, sub.email)

    def unsubscribe(self, sub: Subscription) -> str:
        return f"{self.base}/unsubscribe/{self._token('unsubscribe', sub)}"

    def confirm(self, sub: Subscription) -> str:
        return f"{self.base}/subscribe/confirm/{self._token('confirm', sub)}"

    def preferences(self) -> str:
        return f"{self.base}/subscribe"


def render(digest: Digest, config: Config, links: Links, message_id: str | None = None):
    from papertide.digest_mail import render_digest

    return render_digest(digest, base_url=links.base, sender=sender_address(config),
                         unsubscribe_url=links.unsubscribe(digest.subscription), preferences_url=links.preferences(),
                         message_id=message_id)  # fmt: skip


def send_confirmation(store, config: Config, mailer, links: Links, sub: Subscription) -> str:
    """Send the double opt-in mail for ``sub`` and note it; returns the server's reply."""
    from papertide.digest_mail import render_confirmation

    msg = render_confirmation(sub.email, links.confirm(sub), sender=sender_address(config), base_url=links.base,
                              subscription=sub)
    reply = mailer.send(msg)
    store.mailing.mark_confirm_sent(sub.id)
    return reply


class DigestRun:
    """One ``digest send`` run. ``mailer`` is None for a dry run."""

    def __init__(self, store, index, config: Config, secret: bytes, *, mailer=None, now: datetime | None = None,
                 only: str | None = None, stop: threading.Event | None = None, lease: float = LEASE) -> None:
        self.store, self.config, self.mailer = store, config, mailer
        self.now = now or datetime.now(timezone.utc)
        self.only = only.strip().lower() if only else None
        self.stop = stop or threading.Event()
        self.lease = lease
        self.links = Links(config, secret)
        self.builder = DigestBuilder(store, index, now=self.now)
        self.report = SendReport()
        self.owner = owner_name()
        self._budget = config.mail_max_per_run or None

    def run(self) -> SendReport:
        started = time.perf_counter()
        try:
            if self.mailer is not None:
                self._confirmations()
            for every in EVERY:
                if not self._period(every, last_complete_period(every, self.now)):
                    self.report.stopped = True
                    break
        finally:
            self.report.seconds = time.perf_counter() - started
        return self.report

    def _spend(self) -> bool:
        """One message's worth of the run's budget; False when the run must stop."""
        if self.stop.is_set():
            return False
        if self._budget is not None:
            if self._budget <= 0:
                return False
            self._budget -= 1
        return True

    def _confirmations(self) -> None:
        from papertide.mailer import PermanentMailError, TransientMailError

        pending = [s for s in self.store.mailing.subscriptions(status="pending", limit=100_000)
                   if s.confirm_sent is None and (self.only is None or s.email.lower() == self.only)]  # fmt: skip
        for sub in pending:
            if not self._spend():
                return
            try:
                send_confirmation(self.store, self.config, self.mailer, self.links, sub)
                self.report.confirmations += 1
            except PermanentMailError as e:
                self.store.mailing.record_event(sub.email, "failure", str(e))
                self.report.errors.append(f"{sub.email}: confirmation refused: {e}")
            except TransientMailError as e:
                self.report.errors.append(f"{sub.email}: confirmation not sent, will retry: {e}")

    def _period(self, every: str, period: str) -> bool:
        self._recover(period)
        after = 0
        while True:
            batch = self.store.mailing.due(every, period, limit=500, after_id=after)
            if not batch:
                return True
            for sub in batch:
                after = sub.id
                if self.only is not None and sub.email.lower() != self.only:
                    continue
                if not self._one(sub, period):
                    return False

    def _recover(self, period: str) -> None:
        """Claims left ``sending`` by a sender that died on this host go back to ``deferred``."""
        if self.mailer is None:
            return
        for rec in self.store.mailing.send_log(period=period, state="sending", limit=100_000):
            if rec.owner != self.owner and owner_dead(rec.owner):
                self.store.mailing.finish_send(rec.subscription_id, period, "deferred",
                                               f"sender {rec.owner} died mid-send")  # fmt: skip

    def _one(self, sub: Subscription, period: str) -> bool:
        digest = self.builder.build(sub, period)
        if self.mailer is None:
            render(digest, self.config, self.links)
            self.report.previewed += 1
            return not self.stop.is_set()
        if not digest.empty and not self._spend():
            return False
        mailing = self.store.mailing
        claim = mailing.claim_send(sub.id, period, make_msgid("digest", domain=mail_domain(self.config)),
                                   lease=self.lease, owner=self.owner)  # fmt: skip
        if claim is None:
            self.report.skipped += 1
            return True
        if digest.empty:
            mailing.finish_send(sub.id, period, "empty", "nothing new for this subscription")
            self.report.empty += 1
            return True
        self._hand_off(sub, period, render(digest, self.config, self.links, claim.message_id), claim.attempts)
        return True

    def _hand_off(self, sub: Subscription, period: str, msg, attempts: int) -> None:
        from papertide.mailer import PermanentMailError, TransientMailError

        mailing = self.store.mailing
        try:
            reply = self.mailer.send(msg)
        except PermanentMailError as e:
            mailing.finish_send(sub.id, period, "failed", str(e))
            mailing.record_event(sub.email, "failure", str(e))
            self.report.failed += 1
            self.report.errors.append(f"{sub.email}: refused: {e}")
        except TransientMailError as e:
            state = "failed" if attempts >= MAX_ATTEMPTS else "deferred"
            mailing.finish_send(sub.id, period, state, str(e))
            setattr(self.report, state, getattr(self.report, state) + 1)
            self.report.errors.append(f"{sub.email}: not sent ({state}): {e}")
        else:
            mailing.finish_send(sub.id, period, "sent", reply)
            self.report.sent += 1


def preview(store, index, config: Config, secret: bytes, email: str, out: Path, *, period: str | None = None,
            now: datetime | None = None) -> tuple[Path, Path, Digest]:
    """Write the digest ``email`` would receive as ``<out>.eml`` and ``<out>.html``."""
    from papertide.digest_mail import write_preview
    from papertide.errors import NotFoundError

    sub = store.mailing.subscription_by_email(email)
    if sub is None:
        raise NotFoundError(f"no subscription for {email}: add one with `papertide subscribe`")
    builder = DigestBuilder(store, index, now=now)
    digest = builder.build(sub, period or last_complete_period(sub.every, builder.now))
    msg = render(digest, config, Links(config, secret))
    eml, html = write_preview(msg, out)
    return eml, html, digest
