"""Which papers, in which order: the lists the JSON API and the feeds share with the pages.

The HTML routes compute their lists inside the route functions; these functions ask
the same rankers the same way (``pages.period_ids`` + ``pages_common.rank_by_votes``
for daily papers, :mod:`papertide.popularity` over ``community.vote_times`` for
trending, :func:`papertide.rank.search` for search, hidden papers dropped after
ranking as the search page does), so a surface never disagrees with another. Each
returns ids (and scores) only; turning them into records is the caller's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

from fastapi import HTTPException, Request

from papertide.errors import NotFoundError
from papertide.popularity import lookback_start, rank_trending
from papertide.query import Query, QueryError, parse_query
from papertide.rank import search
from papertide.web.pages import (TIME_FORMAT, TRENDING_CANDIDATES, day_of, latest_day, month_of, period_ids, today,
                                  week_of)
from papertide.web.pages_common import community, engines, rank_by_votes, store
from papertide.web.pages_search import full_query

MAX_SEARCH_OFFSET = 2_000  # as deep as the search page goes (100 pages of 20)


# ------------------------------------------------------------------ periods


@dataclass(frozen=True)
class Period:
    kind: str  # day, week, month
    first: date
    last: date


def _bad(message: str) -> HTTPException:
    return HTTPException(422, message)


def parse_day(text: str) -> date:
    if (d := day_of(text)) is None:
        raise _bad(f"day: {text[:40]!r} is not a day; write YYYY-MM-DD, like 2024-03-17")
    return d


def parse_week(text: str) -> date:
    if (d := week_of(text)) is None:
        raise _bad(f"week: {text[:40]!r} is not an ISO week; write YYYY-Www, like 2024-W11")
    return d


def parse_month(text: str) -> date:
    if (d := month_of(text)) is None:
        raise _bad(f"month: {text[:40]!r} is not a month; write YYYY-MM, like 2024-03")
    return d


def period(request: Request, day: str | None, week: str | None, month: str | None) -> Period:
    """The period asked for (at most one of day, week, month); none: the latest day with papers."""
    given = [(k, v) for k, v in (("day", day), ("week", week), ("month", month)) if v is not None]
    if len(given) > 1:
        raise _bad(f"give one of day, week or month, not {' and '.join(k for k, _ in given)}")
    if not given:
        d = latest_day(request) or today()
        return Period("day", d, d)
    kind, text = given[0]
    if kind == "day":
        d = parse_day(text)
        return Period("day", d, d)
    if kind == "week":
        monday = parse_week(text)
        return Period("week", monday, monday + timedelta(days=6))
    first = parse_month(text)
    following = date(first.year + (first.month == 12), first.month % 12 + 1, 1)
    return Period("month", first, following - timedelta(days=1))


def daily_ids(request: Request, p: Period) -> tuple[list[str], str, str | None]:
    """The papers of a period as the daily pages rank them: (ids, source, note)."""
    ids, source, note = period_ids(request, p.first, p.last)
    return rank_by_votes(request, ids), source, note


# ----------------------------------------------------------------- trending


def trending(request: Request, window: str) -> list[tuple[str, float]]:
    """Papers by the time-decayed score of their upvotes, as the trending page ranks them."""
    now = datetime.now(timezone.utc)
    since = lookback_start(now, window).strftime(TIME_FORMAT)
    com = community(request)
    top = com.top_voted(since, None, limit=TRENDING_CANDIDATES)
    if not top:
        return []
    return rank_trending(com.vote_times([pid for pid, _ in top], since), now, window)  # top_voted drops hidden


# ------------------------------------------------------------------- search


@dataclass
class Found:
    """One page of search results."""

    text: str  # the query as read: q plus the filter fields
    mode: str
    ids: list[str] = field(default_factory=list)
    scores: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    parsed: Query | None = None
    has_more: bool = False


def run_search(request: Request, q: str, mode: str, *, limit: int, offset: int,
               filters: tuple[str, str, str, str] = ("", "", "", "")) -> Found:  # fmt: skip
    """The search page's reading of a query, for ``limit`` results after ``offset``.

    What the parser could not use is in ``notes``; contradictory filters give a note and
    no results; a query that is only a paper id gives that paper. A missing index
    raises :class:`~papertide.index.IndexMissingError` (503).
    """
    found = Found(full_query(q, *filters), mode)
    if not found.text.strip():
        return found
    try:
        parsed = parse_query(found.text)
    except QueryError as e:
        found.notes.append(str(e))
        return found
    found.parsed = parsed
    found.notes.extend(parsed.warnings)
    hidden = community(request).hidden_papers()
    if parsed.is_lookup:
        try:
            store(request).get(parsed.paper_id)
        except NotFoundError:
            found.notes.append(f"the paper {parsed.paper_id} is not in this papertide")
            return found
        if offset == 0 and parsed.paper_id not in hidden:
            found.ids, found.scores = [parsed.paper_id], {parsed.paper_id: 1.0}
        return found
    index = engines(request).search_index()
    ids, scores = search(index, parsed, k=limit + 1, offset=offset, mode=mode)
    found.has_more = len(ids) > limit
    kept = [(i, float(s)) for i, s in zip(ids[:limit], scores[:limit]) if i not in hidden]
    found.ids, found.scores = [i for i, _ in kept], dict(kept)
    return found
