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


# ------------------------------------------------------------------- composing

PER_SECTION = 10  # papers per section at most
PER_SEARCH = 5  # papers per saved search at most
SEARCH_DEPTH = 500  # a saved search's best papers over the whole index, then the period's kept
PERIOD_CANDIDATES = 2_000  # papers of one period considered at most
_HEADINGS = {"trending": "Trending", "category": "New in your categories", "search": "Your saved searches",
             "for_you": "For you"}  # fmt: skip


def title_for(every: str, period: str) -> str:
    first, last = period_bounds(period)
    if every == "day":
        return f"Your papertide digest: {first.day} {first:%b %Y}"
    return f"Your weekly papertide digest: {first.day} {first:%b} – {last.day} {last:%b %Y}"


def period_phrase(every: str, period: str) -> str:
    """``on 25 Nov`` or ``in the week of 18 Nov``: how a reason names the period."""
    first, _ = period_bounds(period)
    return f"on {first.day} {first:%b}" if every == "day" else f"in the week of {first.day} {first:%b}"


def _in_categories(paper: Paper, wanted: tuple[str, ...]) -> str | None:
    """The first wanted category (``cs.CL``) or archive (``cs``) the paper is in, else None."""
    for want in wanted:
        for cat in paper.categories:
            if cat == want or cat.split(".", 1)[0] == want:
                return want
    return None


class DigestBuilder:
    """Builds the digests of one run. Everything shared by many subscribers (a period's
    papers, its trending list, a saved search's results, a user's model) is computed once
    and kept for the run, so 10,000 digests cost little more than their distinct parts."""

    def __init__(self, store, index, *, now: datetime | None = None) -> None:
        self.store, self.index = store, index
        self.now = now or datetime.now(timezone.utc)
        self._period: dict[str, list[str]] = {}
        self._papers: dict[str, Paper] = {}
        self._votes: dict[str, int] = {}
        self._trending: dict[str, list[tuple[str, str]]] = {}
        self._searches: dict[tuple[str, str], list[str]] = {}
        self._categories: dict[tuple[tuple[str, ...], str], list[tuple[str, str]]] = {}
        self._cold: dict[tuple[tuple[str, ...], str], list[tuple[str, str]]] = {}
        self._hidden = store.community.hidden_papers()

    # --- shared parts
    def period_ids(self, period: str) -> list[str]:
        """The papers of a period: those listed on its days, else those submitted in it; by votes."""
        if period not in self._period:
            from papertide.daily import period_papers

            first, last = period_bounds(period)
            ids = [i for i in period_papers(self.store, self.index, first, last, limit=PERIOD_CANDIDATES)
                   if i not in self._hidden]  # fmt: skip
            self._load(ids)
            self._period[period] = sorted((i for i in ids if i in self._papers), key=lambda i: -self._votes[i])
        return self._period[period]

    def _load(self, ids: list[str]) -> None:
        missing = [i for i in ids if i not in self._papers]
        if missing:
            self._papers.update(self.store.get_many(missing))
            self._votes.update(self.store.community.votes(missing))
            for i in missing:
                self._votes.setdefault(i, 0)

    def trending(self, every: str, period: str) -> list[tuple[str, str]]:
        """(paper id, reason): by time-decayed upvotes at the period's end; the period's most
        upvoted papers when nobody voted in the look-back."""
        key = f"{every}:{period}"
        if key not in self._trending:
            from papertide.popularity import lookback_start, rank_trending

            end = datetime.combine(period_bounds(period)[1] + timedelta(days=1), datetime.min.time(), timezone.utc)
            window = "day" if every == "day" else "week"
            since = lookback_start(end, window).strftime("%Y-%m-%dT%H:%M:%SZ")
            com = self.store.community
            top = com.top_voted(since, end.strftime("%Y-%m-%dT%H:%M:%SZ"), limit=200)
            ranked = rank_trending(com.vote_times([p for p, _ in top], since), end, window) if top else []
            when = period_phrase(every, period)
            ids = [p for p, _ in ranked if p not in self._hidden][:PER_SECTION]
            rows = [(p, f"among the most upvoted {when}") for p in ids]
            if not rows:  # nobody voted: the period's papers, most upvoted first
                rows = [(p, f"listed {when}") for p in self.period_ids(period)[:PER_SECTION]]
            self._load([p for p, _ in rows])
            self._trending[key] = [(p, r) for p, r in rows if p in self._papers]
        return self._trending[key]

    def search(self, q: str, period: str) -> list[str]:
        if (q, period) not in self._searches:
            from dataclasses import replace as dc_replace

            from papertide.query import parse_query
            from papertide.rank import search

            # The period's papers are those *listed* in it (else submitted in it), and a listed
            # paper may have been submitted long before: rank the search over the whole index
            # and keep the period's papers, plus what the date filter finds beyond the depth.
            first, last = period_bounds(period)
            members = set(self.period_ids(period))
            parsed = parse_query(q)
            wide, _ = search(self.index, parsed, k=SEARCH_DEPTH)
            dated, _ = search(self.index, dc_replace(parsed, since=first, until=last), k=PER_SEARCH)
            ids = [i for i in dict.fromkeys([*wide, *dated]) if i in members][:PER_SEARCH]
            self._load(ids)
            self._searches[(q, period)] = [i for i in ids if i in self._papers]
        return self._searches[(q, period)]

    def for_you(self, sub: Subscription, period: str) -> list[tuple[str, str]]:
        from papertide.rank import recommend

        candidates = self.period_ids(period)
        if not candidates:
            return []
        if sub.user_id is None and not sub.categories:
            return []
        if sub.user_id is None and (sub.categories, period) in self._cold:  # cold start: the same for everyone
            return self._cold[(sub.categories, period)]
        recs = recommend(self.index, self.store, sub.user_id, k=PER_SECTION, candidates=candidates,
                         categories=sub.categories)  # fmt: skip
        rows = [(r.paper_id, r.reason) for r in recs if r.paper_id in self._papers]
        if sub.user_id is None:
            self._cold[(sub.categories, period)] = rows
        return rows

    def in_categories(self, wanted: tuple[str, ...], period: str) -> list[tuple[str, str]]:
        """(paper id, reason) of the period's papers in any of ``wanted``, by votes."""
        if (wanted, period) not in self._categories:
            rows = []
            for pid in self.period_ids(period):
                cat = _in_categories(self._papers[pid], wanted)
                if cat:
                    rows.append((pid, f"new in {cat}"))
            self._categories[(wanted, period)] = rows
        return self._categories[(wanted, period)]

    # --- one subscriber
    def build(self, sub: Subscription, period: str) -> Digest:
        seen: set[str] = set()
        sections: list[tuple[str, list[DigestItem]]] = []

        def add(section: str, rows: list[tuple[str, str]], limit: int = PER_SECTION) -> None:
            items = []
            for pid, reason in rows:
                if len(items) == limit:
                    break
                if pid not in seen and pid in self._papers:
                    seen.add(pid)
                    items.append(DigestItem(self._papers[pid], self._votes.get(pid, 0), reason, section))
            if items:
                sections.append((_HEADINGS[section], items))

        if sub.trending:
            add("trending", self.trending(sub.every, period))
        if sub.for_you:
            add("for_you", self.for_you(sub, period))
        if sub.categories:
            add("category", self.in_categories(sub.categories, period))
        if sub.searches:
            rows = [(pid, f"matches your search “{q}”") for q in sub.searches for pid in self.search(q, period)]
            add("search", rows, limit=PER_SEARCH * len(sub.searches))
        return Digest(sub, period, title_for(sub.every, period), sections)
