"""Email digests: what one subscriber receives for one period, and when it is due.

A digest covers one *period*: a UTC day ("2026-11-25") for daily subscribers, an ISO
week ("2026-W48") for weekly ones. A run sends the digest of the latest period that has
ended, so the same period key is what the send log keys on and what makes a digest go
out exactly once. Composing (which papers, and why each is there) lives here; rendering
the message is ``digest_mail.py``, handing it to SMTP is ``mailer.py``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

from papertide.paper import Paper
from papertide.store.mailing import Subscription

EVERY = ("day", "week")
SECTIONS = ("trending", "category", "search", "for_you")
_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")


@dataclass(frozen=True)
class DigestItem:
    paper: Paper
    upvotes: int
    reason: str  # why it is there, one line: "12 upvotes this week", "close to “X”, which you upvoted"
    section: str  # one of SECTIONS


@dataclass(frozen=True)
class Digest:
    subscription: Subscription
    period: str  # the period key: "2026-11-25" or "2026-W48"
    title: str  # "Your papertide digest: 25 Nov 2026"
    sections: list[tuple[str, list[DigestItem]]] = field(default_factory=list)  # (heading, items), in order

    @property
    def empty(self) -> bool:
        return not any(items for _, items in self.sections)

    @property
    def size(self) -> int:
        return sum(len(items) for _, items in self.sections)


def period_of(every: str, day: date) -> str:
    """The key of the period of kind ``every`` that contains ``day``."""
    if every == "day":
        return day.isoformat()
    if every == "week":
        year, week, _ = day.isocalendar()
        return f"{year}-W{week:02d}"
    raise ValueError(f"every must be one of {', '.join(EVERY)}, not {every!r}")


def period_bounds(period: str) -> tuple[date, date]:
    """The first and last day (inclusive) of a period key."""
    m = _WEEK.match(period)
    if m:
        first = date.fromisocalendar(int(m.group(1)), int(m.group(2)), 1)
        return first, first + timedelta(days=6)
    try:
        day = date.fromisoformat(period)
    except ValueError:
        raise ValueError(f"not a period: {period!r} (expected 2026-11-25 or 2026-W48)") from None
    return day, day


def last_complete_period(every: str, now: datetime | None = None) -> str:
    """The latest period of kind ``every`` that has ended by ``now`` (UTC): yesterday, or last week."""
    now = now or datetime.now(timezone.utc)
    today = now.astimezone(timezone.utc).date()
    if every == "day":
        return period_of("day", today - timedelta(days=1))
    return period_of(every, today - timedelta(days=today.isoweekday()))
