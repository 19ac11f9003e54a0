"""The browsing pages: daily papers (and their week and month views), trending, authors.

Daily papers are the papers *listed* on papertide that day (``community.listed``: put
there by the daily import, a submission or the demo); a day nobody listed anything
falls back to the papers *submitted* (first version) that day, read from the search
index's date facts. Either way they are ranked by the community's upvotes, with
Hugging Face upvotes as the tie-breaker. Trending ranks by the time-decayed score of
:mod:`papertide.popularity`. "For you" (signed-in users) asks :func:`papertide.rank.recommend`
for the newest papers that the user's upvotes, saved papers and "not relevant" marks
point to, each with its reason (or, before any of those, for the newest papers of the
categories they chose). The paper page is in ``pages_paper.py``, search in
``pages_search.py``.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from typing import Literal

import numpy as np
from fastapi import APIRouter, HTTPException, Query, Request
from starlette.responses import Response

from papertide.index import IndexMissingError
from papertide.paper import is_arxiv_category, title_key
from papertide.popularity import WINDOWS, lookback_start, rank_trending
from papertide.query import Query as SearchQuery
from papertide.rank import recommend, search
from papertide.web.pages_common import (PAGE_METHODS, community, current_user, engines, entries, rank_by_votes,
                                        render, store)  # fmt: skip

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
MAX_CANDIDATES = 2_000  # papers of a day/week/month ranked at most (the rest are not shown)
TRENDING_CANDIDATES = 1_000  # most-voted papers of the look-back scored for trending
FOR_YOU = 30  # recommendations on the "for you" page
FOR_YOU_CANDIDATES = 2_000  # the newest papers of the index it chooses from
MAX_PAGE_CATEGORIES = 20
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
Page = Query(1, ge=1, le=10_000)


def today() -> date:
    return datetime.now(timezone.utc).date()


# ------------------------------------------------------------------ periods


def day_of(text: str) -> date | None:
    """``YYYY-MM-DD`` as a date, None when it is not one."""
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        try:
            return date.fromisoformat(text)
        except ValueError:
            pass
    return None


def week_of(text: str) -> date | None:
    """The Monday of ISO week ``YYYY-Www``, None when it is not one."""
    m = re.fullmatch(r"(\d{4})-W(\d{2})", text)
    if m:
        try:
            return date.fromisocalendar(int(m.group(1)), int(m.group(2)), 1)
        except ValueError:
            pass
    return None


def month_of(text: str) -> date | None:
    """The first day of month ``YYYY-MM``, None when it is not one."""
    m = re.fullmatch(r"(\d{4})-(\d{2})", text)
    if m and 1 <= int(m.group(2)) <= 12 and int(m.group(1)) >= 1:
        return date(int(m.group(1)), int(m.group(2)), 1)
    return None


def _day(text: str) -> date:
    if (d := day_of(text)) is None:
        raise HTTPException(404, f"{text!r} is not a day: daily pages are /papers/YYYY-MM-DD, like /papers/2024-03-17.")
    return d


def _week(text: str) -> date:
    if (d := week_of(text)) is None:
        raise HTTPException(404, f"{text!r} is not a week: weekly pages are /papers/week/YYYY-Www, like 2024-W11.")
    return d


def _month(text: str) -> date:
    if (d := month_of(text)) is None:
        raise HTTPException(404, f"{text!r} is not a month: monthly pages are /papers/month/YYYY-MM, like 2024-03.")
    return d


def week_label(d: date) -> str:
    y, w, _ = d.isocalendar()
    return f"{y}-W{w:02d}"


def heading(kind: str, first: date, last: date) -> str:
    """"Sunday, 17 March 2024", "Week 2024-W11 (11 Mar – 17 Mar 2024)" or "March 2024"."""
    if kind == "day":
        return f"{first:%A}, {first.day} {first:%B %Y}"
    if kind == "week":
        return f"Week {week_label(first)} ({first.day} {first:%b} – {last.day} {last:%b %Y})"
    return f"{first:%B %Y}"


def _month_end(first: date) -> date:
    nxt = date(first.year + (first.month == 12), first.month % 12 + 1, 1)
    return nxt - timedelta(days=1)


def _shift_month(first: date, n: int) -> date:
    i = first.year * 12 + first.month - 1 + n
    return date(i // 12, i % 12 + 1, 1)


# ------------------------------------------------------------------- papers


def period_ids(request: Request, first: date, last: date) -> tuple[list[str], str, str | None]:
    """Ids of the papers of the days ``first``..``last``: (ids, "listed" | "submitted", note)."""
    listed = community(request).listed(first.isoformat(), last.isoformat())
    if listed:
        return list(dict.fromkeys(pid for pid, _, _ in listed))[:MAX_CANDIDATES], "listed", None
    try:
        index = engines(request).search_index()
    except IndexMissingError:
        return [], "submitted", "The search index is not built yet, so papers cannot be found by date."
    ids, _ = search(index, SearchQuery(since=first, until=last), k=MAX_CANDIDATES)
    hidden = community(request).hidden_papers()
    return [i for i in ids if i not in hidden], "submitted", None


def latest_day(request: Request) -> date | None:
    """The most recent day that has papers: the latest listing, or the newest submission."""
    found = []
    end = (today() + timedelta(days=1)).isoformat()
    for back in (7, 92, 3_660):
        listed = community(request).listed((today() - timedelta(days=back)).isoformat(), end)
        if listed:
            found.append(date.fromisoformat(max(day for _, day, _ in listed)[:10]))
            break
    newest = store(request).list_papers(limit=1, order="submitted")
    if newest and newest[0].submitted:
        try:
            found.append(date.fromisoformat(newest[0].submitted[:10]))
        except ValueError:
            pass
    return max(found) if found else None


def _paged(items: list, page: int) -> tuple[list, dict]:
    pages = max(1, -(-len(items) // PAGE_SIZE))
    chunk = items[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    return chunk, {"page": page, "pages": pages, "total": len(items), "start": (page - 1) * PAGE_SIZE}


def _period_page(request: Request, kind: str, first: date, last: date, page: int, nav: dict) -> Response:
    ids, source, note = period_ids(request, first, last)
    shown, paging = _paged(rank_by_votes(request, ids), page)
    found = store(request).get_many(shown)
    papers = [found[i] for i in shown if i in found]
    return render(request, "daily.html", {
        "kind": kind, "first": first, "last": last, "entries": entries(request, papers), "paging": paging,
        "source": source,
        "note": note, "nav": nav, "week": week_label(first), "month": first.strftime("%Y-%m"),
        "heading": heading(kind, first, last),
    })  # fmt: skip


# ------------------------------------------------------------------- routes


@router.api_route("/", name="home", methods=PAGE_METHODS)
def home(request: Request, page: int = Page) -> Response:
    """The most recent day that has papers."""
    day = latest_day(request) or today()
    return daily(request, day.isoformat(), page)


@router.api_route("/papers/{day}", name="daily", methods=PAGE_METHODS)
def daily(request: Request, day: str, page: int = Page) -> Response:
    d = _day(day)
    one = timedelta(days=1)
    nav = {"prev": ((d - one).isoformat(), f"/papers/{d - one}"),
           "next": ((d + one).isoformat(), f"/papers/{d + one}") if d < today() else None}  # fmt: skip
    return _period_page(request, "day", d, d, page, nav)


@router.api_route("/papers/week/{week}", name="weekly", methods=PAGE_METHODS)
def weekly(request: Request, week: str, page: int = Page) -> Response:
    monday = _week(week)
    prev, nxt = monday - timedelta(days=7), monday + timedelta(days=7)
    nav = {"prev": (week_label(prev), f"/papers/week/{week_label(prev)}"),
           "next": (week_label(nxt), f"/papers/week/{week_label(nxt)}") if nxt <= today() else None}  # fmt: skip
    return _period_page(request, "week", monday, monday + timedelta(days=6), page, nav)


@router.api_route("/papers/month/{month}", name="monthly", methods=PAGE_METHODS)
def monthly(request: Request, month: str, page: int = Page) -> Response:
    first = _month(month)
    prev, nxt = _shift_month(first, -1), _shift_month(first, 1)
    nav = {"prev": (prev.strftime("%Y-%m"), f"/papers/month/{prev:%Y-%m}"),
           "next": (nxt.strftime("%Y-%m"), f"/papers/month/{nxt:%Y-%m}") if nxt <= today() else None}  # fmt: skip
    return _period_page(request, "month", first, _month_end(first), page, nav)


@router.api_route("/trending", name="trending", methods=PAGE_METHODS)
def trending(request: Request, window: Literal["day", "week", "month"] = "week", page: int = Page) -> Response:
    """Papers by the time-decayed score of their upvotes (see papertide/popularity.py)."""
    now = datetime.now(timezone.utc)
    since = lookback_start(now, window).strftime(TIME_FORMAT)
    com = community(request)
    top = com.top_voted(since, None, limit=TRENDING_CANDIDATES)
    ranked = rank_trending(com.vote_times([pid for pid, _ in top], since), now, window) if top else []
    shown, paging = _paged(ranked, page)
    found = store(request).get_many(pid for pid, _ in shown)
    papers = [found[pid] for pid, _ in shown if pid in found]
    return render(request, "trending.html", {
        "window": window, "windows": list(WINDOWS), "entries": entries(request, papers, scores=dict(shown)),
        "paging": paging, "lookback_days": (now - lookback_start(now, window)).days,
    })  # fmt: skip


@router.api_route("/author/{name:path}", name="author", methods=PAGE_METHODS)
def author(request: Request, name: str, page: int = Page) -> Response:
    name = name.strip()
    ids = store(request).paper_ids(author=name, limit=MAX_CANDIDATES) if title_key(name) else []
    hidden = community(request).hidden_papers()
    found = store(request).get_many(i for i in ids if i not in hidden)
    papers = sorted(found.values(), key=lambda p: (p.submitted or "", p.id), reverse=True)
    if not papers:
        raise HTTPException(404, f"No papers by {name!r} are in this papertide.")
    spelled = next((a for a in papers[0].authors if title_key(a) == title_key(name)), name)
    shown, paging = _paged(papers, page)
    return render(request, "author.html", {"name": spelled, "entries": entries(request, shown), "paging": paging})


# ------------------------------------------------------------------ for you


def newest_ids(index, n: int) -> list[str]:
    """The ids of the ``n`` most recently submitted papers of the search index (undated ones last)."""
    facts = index.facts
    if len(facts.keys) <= n:
        return list(facts.keys)
    days = np.asarray(facts.days)
    rows = np.argpartition(-days, n - 1)[:n]
    return [facts.keys[r] for r in rows.tolist()]


def page_categories(request: Request, user) -> tuple[list[str], list[str]]:
    """The categories "for you" starts from without likes: ``?categories=`` (space or comma
    separated), else those of the user's digest subscription; and the terms that are not categories."""
    typed = request.query_params.get("categories")
    if typed is None:
        sub = store(request).mailing.subscription_by_email(user.email) if user.email else None
        return (list(sub.categories) if sub is not None and sub.user_id == user.id else []), []
    terms = list(dict.fromkeys(t for t in re.split(r"[\s,;]+", typed[:1000]) if t))[:MAX_PAGE_CATEGORIES]
    return [t for t in terms if is_arxiv_category(t)], [t for t in terms if not is_arxiv_category(t)]


def learned_from(request: Request, user_id: int) -> dict[str, int]:
    """How much the recommender has to go on: upvotes, saved papers, "not relevant" marks."""
    com = community(request)
    saved = {i.paper_id for c in com.collections(user_id) for i in com.items(c.id)}
    return {"upvotes": len(com.user_votes(user_id)), "saved": len(saved), "marked": len(com.not_relevant(user_id))}


@router.api_route("/for-you", name="for_you", methods=PAGE_METHODS)
def for_you(request: Request) -> Response:
    """Recommendations for the signed-in user with their reasons; visitors get a link to log in."""
    user = current_user(request)
    if user is None:
        return render(request, "for_you.html", {"entries": [], "visitor": True}, headers={"Cache-Control": "no-store"})
    categories, ignored = page_categories(request, user)
    ctx = {"visitor": False, "categories": categories, "ignored": ignored, "basis": learned_from(request, user.id),
           "entries": [], "reasons": {}, "note": None, "candidates": FOR_YOU_CANDIDATES}  # fmt: skip
    try:
        index = engines(request).search_index()
    except IndexMissingError:
        ctx["note"] = "Recommendations appear once the search index is built (papertide index)."
        return render(request, "for_you.html", ctx, headers={"Cache-Control": "no-store"})
    recs = recommend(index, store(request), user.id, k=FOR_YOU, candidates=newest_ids(index, FOR_YOU_CANDIDATES),
                     categories=categories)  # fmt: skip
    found = store(request).get_many(r.paper_id for r in recs)
    papers = [found[r.paper_id] for r in recs if r.paper_id in found]
    ctx["entries"] = entries(request, papers, scores={r.paper_id: r.score for r in recs})
    ctx["reasons"] = {r.paper_id: r.reason for r in recs}
    return render(request, "for_you.html", ctx, headers={"Cache-Control": "no-store"})
