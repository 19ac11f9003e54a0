"""The mailing store's interface: digest subscriptions, their send log, and delivery failures.

Kept apart from :mod:`papertide.store.community` because it is its own concept with its
own rules: an address gets nothing but a confirmation until it is confirmed (double
opt-in); a digest is sent once per subscription and period, which the send log
guarantees across crashes and across several sending processes (a *claim* is a lease:
a row in state ``sending`` that a live sender holds; one older than the lease is taken
over and sent again with the same Message-ID); addresses that bounce are paused.
The SQL both backends run is in ``mailing_sql.py``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

SUB_STATUSES = ("pending", "active", "paused", "unsubscribed")
SEND_STATES = ("sending", "sent", "empty", "deferred", "failed")
FINAL_SEND_STATES = ("sent", "empty", "failed")  # a period with one of these is never sent again
MAX_CATEGORIES = 20
MAX_SEARCHES = 10
MAX_SEARCH_CHARS = 500


@dataclass(frozen=True)
class Subscription:
    id: int
    email: str  # as given; unique case-insensitively
    user_id: int | None  # the account it belongs to ("for you" learns from it), if any
    every: str  # "day" | "week"
    trending: bool
    categories: tuple[str, ...]
    searches: tuple[str, ...]
    for_you: bool
    status: str  # one of SUB_STATUSES
    reason: str  # why it is paused or unsubscribed ("" otherwise)
    created: str
    confirmed: str | None  # when the address was confirmed
    confirm_sent: str | None  # when the last confirmation mail went out


@dataclass(frozen=True)
class SendRecord:
    subscription_id: int
    period: str
    state: str  # one of SEND_STATES
    message_id: str  # the Message-ID header; kept across retries so a resend is recognisably the same mail
    attempts: int
    started: str
    finished: str | None
    detail: str  # the SMTP reply or error of the last attempt
    owner: str = ""  # "host:pid" of the sender that took the latest claim


@dataclass(frozen=True)
class MailEvent:
    id: int
    email: str
    kind: str  # "bounce" | "failure" | "complaint"
    detail: str
    created: str


class Mailing(ABC):
    # --- subscriptions -----------------------------------------------------------------
    @abstractmethod
    def subscribe(self, email: str, *, every: str, trending: bool = False, categories: tuple[str, ...] = (),
                  searches: tuple[str, ...] = (), for_you: bool = False, user_id: int | None = None) -> Subscription:
        """Create or replace the subscription of ``email`` (case-insensitive match).

        New, unsubscribed or paused addresses become ``pending`` (confirmation needed);
        ``pending`` and ``active`` keep their status. At least one kind of content is
        required; categories look like ``cs.CL`` or ``cs``; searches are query strings.
        ``ValueError`` names what is wrong.
        """

    @abstractmethod
    def subscription(self, subscription_id: int) -> Subscription:
        """``NotFoundError`` for an unknown id."""

    @abstractmethod
    def subscription_by_email(self, email: str) -> Subscription | None: ...

    @abstractmethod
    def subscriptions(self, *, status: str | None = None, every: str | None = None,
                      limit: int = 1000, offset: int = 0) -> list[Subscription]:
        """By id; optionally only one status and/or frequency."""

    @abstractmethod
    def subscription_count(self, *, status: str | None = None) -> int: ...

    @abstractmethod
    def confirm(self, subscription_id: int) -> Subscription:
        """pending -> active (sets ``confirmed``); idempotent on active; ``ConflictError`` when
        unsubscribed or paused (they must subscribe again)."""

    @abstractmethod
    def mark_confirm_sent(self, subscription_id: int) -> None: ...

    @abstractmethod
    def unsubscribe(self, subscription_id: int, reason: str = "") -> Subscription:
        """Any status -> unsubscribed; idempotent."""

    @abstractmethod
    def pause(self, subscription_id: int, reason: str) -> Subscription: ...

    # --- send log -----------------------------------------------------------------------
    @abstractmethod
    def due(self, every: str, period: str, *, limit: int = 1000, after_id: int = 0) -> list[Subscription]:
        """Active subscriptions of frequency ``every`` (id > after_id, by id) with no final
        send record (``FINAL_SEND_STATES``) for ``period``."""

    @abstractmethod
    def claim_send(self, subscription_id: int, period: str, message_id: str, *, lease: float = 600.0,
                   owner: str = "") -> SendRecord | None:
        """Atomically take the right to send this period's digest, writing state ``sending``
        (attempts + 1) *before* the hand-off. Returns None when the period is final or another
        sender's claim is younger than ``lease`` seconds. A taken-over or deferred claim keeps
        its first Message-ID (the returned record's ``message_id``; use it, not the argument).
        ``owner`` names the sender (``host:pid``) so a later run can tell a dead sender's claim
        from a live one's and release it with ``finish_send(..., "deferred")``."""

    @abstractmethod
    def finish_send(self, subscription_id: int, period: str, state: str, detail: str = "") -> SendRecord:
        """Record the outcome *after* the hand-off: ``sent``, ``empty``, ``deferred`` (due again
        next run) or ``failed``. ``ValueError`` for another state or when no claim exists."""

    @abstractmethod
    def send_log(self, *, subscription_id: int | None = None, period: str | None = None,
                 state: str | None = None, limit: int = 1000) -> list[SendRecord]:
        """Newest first; optionally one subscription, period and/or state."""

    # --- delivery failures -----------------------------------------------------------
    @abstractmethod
    def record_event(self, email: str, kind: str, detail: str) -> MailEvent:
        """Record a bounce, permanent failure or complaint; a ``bounce`` or ``failure`` pauses the
        address's subscription (if any) with the detail as reason."""

    @abstractmethod
    def events(self, email: str | None = None, *, limit: int = 100) -> list[MailEvent]:
        """Newest first."""
