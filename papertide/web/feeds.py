"""RSS 2.0 and Atom 1.0 feeds of the daily papers, the trending papers and any search.

``/feeds/daily.rss|atom`` (the latest day with papers, as the home page, or ``?day=``),
``/feeds/trending.rss|atom?window=day|week|month`` and
``/feeds/search.rss|atom?q=…&mode=…`` list the same papers in the same order as their
pages (``api_lists.py``), at most :data:`FEED_ITEMS` of them.

Safety and validity: the XML is built with :mod:`xml.etree.ElementTree`, which escapes
every text and attribute, after removing the characters XML 1.0 cannot carry (control
characters a query may hold). Titles and Atom summaries are declared plain text, so a
title holding ``<script>`` stays text in a reader; an RSS ``description`` is read as
HTML by most readers, so the abstract is HTML-escaped once more before it goes there.
Links are absolute, built from the request's base URL.

Dates: an item's date is the day papertide listed the paper, else its first version's
date, else its latest update (RSS ``pubDate`` is left out when there is none); an Atom
entry's ``published`` is the first version (else the listing day) and its ``updated``
the latest of the three, else the feed's own ``updated`` — the newest of its entries'
dates, or now for a feed with no dated entry.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import date, datetime, timezone
from email.utils import format_datetime
from html import escape
from typing import Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from papertide.rank import MODES
from papertide.web.api_common import base_url, papers_of
from papertide.web.api_lists import Period, daily_ids, parse_day, period, run_search, trending
from papertide.web.pages import heading
from papertide.web.pages_common import PAGE_METHODS, Entry, entries, paper_url

router = APIRouter(prefix="/feeds", include_in_schema=False)

FEED_ITEMS = 50
RSS_TYPE = "application/rss+xml; charset=utf-8"
ATOM_TYPE = "application/atom+xml; charset=utf-8"
ATOM_NS = "http://www.w3.org/2005/Atom"
DC_NS = "http://purl.org/dc/elements/1.1/"
CACHE = {"Cache-Control": "public, max-age=300"}
MAX_TITLE_QUERY = 200  # characters of a search query shown in a feed's title

ET.register_namespace("atom", ATOM_NS)
ET.register_namespace("dc", DC_NS)

# What XML 1.0 allows (https://www.w3.org/TR/xml/#charsets); everything else is dropped.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(text: object) -> str:
    """``text`` with the characters XML cannot hold removed (ElementTree escapes the rest)."""
    return _NOT_XML.sub("", str(text))


# -------------------------------------------------------------------- dates


def _when(text: str | None) -> datetime | None:
    """A stored date or time (``2024-03-17``, ``…T12:00:00Z``) as an aware UTC datetime; None if unreadable."""
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        try:
            when = datetime.combine(date.fromisoformat(text.strip()[:10]), datetime.min.time())
        except ValueError:
            return None
    return when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when.astimezone(timezone.utc)


def item_date(e: Entry) -> datetime | None:
    """The date a feed item carries: listed, else submitted, else updated."""
    return _when(e.listed) or _when(e.paper.submitted) or _when(e.paper.updated)


def entry_dates(e: Entry) -> tuple[datetime | None, datetime | None]:
    """An Atom entry's (published, updated)."""
    known = [d for d in (_when(e.listed), _when(e.paper.submitted), _when(e.paper.updated)) if d is not None]
    published = _when(e.paper.submitted) or _when(e.listed)
    return published, max(known) if known else None


def _atom_time(when: datetime) -> str:
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def feed_updated(items: list[Entry]) -> datetime:
    dates = [d for e in items if (d := entry_dates(e)[1]) is not None]
    return max(dates) if dates else datetime.now(timezone.utc).replace(microsecond=0)


# ---------------------------------------------------------------- builders


def _sub(parent: ET.Element, tag: str, text: object | None = None, **attrib: str) -> ET.Element:
    el = ET.SubElement(parent, tag, {k: xml_text(v) for k, v in attrib.items()})
    if text is not None:
        el.text = xml_text(text)
    return el


def rss(base: str, title: str, description: str, html_url: str, self_url: str, items: list[Entry]) -> bytes:
    """An RSS 2.0 document of ``items``."""
    root = ET.Element("rss", {"version": "2.0"})
    channel = _sub(root, "channel")
    _sub(channel, "title", title)
    _sub(channel, "link", html_url)
    _sub(channel, "description", description)
    _sub(channel, "language", "en")
    _sub(channel, "generator", "papertide")
    _sub(channel, "lastBuildDate", format_datetime(feed_updated(items), usegmt=True))
    _sub(channel, f"{{{ATOM_NS}}}link", href=self_url, rel="self", type=RSS_TYPE.split(";")[0])
    for e in items:
        p, url = e.paper, base + paper_url(e.paper.id)
        item = _sub(channel, "item")
        _sub(item, "title", p.title)
        _sub(item, "link", url)
        _sub(item, "guid", url, isPermaLink="true")
        _sub(item, "description", escape(p.abstract))  # readers take it as HTML: escaped, it stays text
        when = item_date(e)
        if when is not None:
            _sub(item, "pubDate", format_datetime(when, usegmt=True))
        for name in p.authors:
            _sub(item, f"{{{DC_NS}}}creator", name)
        for cat in p.categories:
            _sub(item, "category", cat)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def atom(base: str, title: str, subtitle: str, html_url: str, self_url: str, items: list[Entry]) -> bytes:
    """An Atom 1.0 document of ``items`` (Atom as the default namespace)."""
    updated = feed_updated(items)
    root = ET.Element("feed", {"xmlns": ATOM_NS})
    _sub(root, "id", self_url)
    _sub(root, "title", title, type="text")
    _sub(root, "subtitle", subtitle, type="text")
    _sub(root, "updated", _atom_time(updated))
    _sub(root, "link", href=self_url, rel="self", type=ATOM_TYPE.split(";")[0])
    _sub(root, "link", href=html_url, rel="alternate", type="text/html")
    _sub(_sub(root, "author"), "name", "papertide")
    _sub(root, "generator", "papertide")
    for e in items:
        p, url = e.paper, base + paper_url(e.paper.id)
        entry = _sub(root, "entry")
        _sub(entry, "id", url)
        _sub(entry, "title", p.title, type="text")
        _sub(entry, "link", href=url, rel="alternate", type="text/html")
        for label, href in e.links:
            _sub(entry, "link", href=href, rel="related", title=label)
        published, changed = entry_dates(e)
        if published is not None:
            _sub(entry, "published", _atom_time(published))
        _sub(entry, "updated", _atom_time(changed or updated))
        for name in p.authors:
            _sub(_sub(entry, "author"), "name", name)
        for cat in p.categories:
            _sub(entry, "category", term=cat)
        _sub(entry, "summary", p.abstract, type="text")
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def _respond(request: Request, fmt: str, title: str, subtitle: str, html_path: str, ids: list[str],
             scores: dict[str, float] | None = None) -> Response:  # fmt: skip
    base = base_url(request)
    items = entries(request, papers_of(request, ids[:FEED_ITEMS]), scores=scores)
    build, media = (rss, RSS_TYPE) if fmt == "rss" else (atom, ATOM_TYPE)
    body = build(base, title, subtitle, base + html_path, str(request.url), items)
    return Response(body, media_type=media, headers=CACHE)


# ------------------------------------------------------------------- routes


def _daily(request: Request, fmt: str, day: str | None) -> Response:
    p = Period("day", parse_day(day), parse_day(day)) if day else period(request, None, None, None)
    ids, source, note = daily_ids(request, p)
    what = "listed" if source == "listed" else "submitted (first version)"
    subtitle = note or f"Papers {what} on {heading('day', p.first, p.last)}, most upvoted first."
    return _respond(request, fmt, f"papertide: daily papers of {p.first.isoformat()}", subtitle,
                    f"/papers/{p.first.isoformat()}", ids)  # fmt: skip


@router.api_route("/daily.rss", methods=PAGE_METHODS, name="feed_daily_rss")
def daily_rss(request: Request, day: str | None = Query(None, description="YYYY-MM-DD")) -> Response:
    return _daily(request, "rss", day)


@router.api_route("/daily.atom", methods=PAGE_METHODS, name="feed_daily_atom")
def daily_atom(request: Request, day: str | None = Query(None, description="YYYY-MM-DD")) -> Response:
    return _daily(request, "atom", day)


Window = Literal["day", "week", "month"]


def _trending(request: Request, fmt: str, window: str) -> Response:
    ranked = trending(request, window)
    return _respond(request, fmt, f"papertide: trending papers ({window})",
                    f"Papers by the time-decayed score of their upvotes over a {window}.",
                    f"/trending?window={window}", [pid for pid, _ in ranked], dict(ranked))  # fmt: skip


@router.api_route("/trending.rss", methods=PAGE_METHODS, name="feed_trending_rss")
def trending_rss(request: Request, window: Window = "week") -> Response:
    return _trending(request, "rss", window)


@router.api_route("/trending.atom", methods=PAGE_METHODS, name="feed_trending_atom")
def trending_atom(request: Request, window: Window = "week") -> Response:
    return _trending(request, "atom", window)


def _search(request: Request, fmt: str, q: str, mode: str, filters: tuple[str, str, str, str]) -> Response:
    notes = []
    if mode not in MODES:
        notes.append(f"unknown mode {mode[:40]!r}: searching in hybrid mode")
        mode = "hybrid"
    found = run_search(request, q, mode, limit=FEED_ITEMS, offset=0, filters=filters)
    notes += found.notes
    shown = found.text if len(found.text) <= MAX_TITLE_QUERY else found.text[:MAX_TITLE_QUERY] + "…"
    subtitle = (f"Search results for {shown}" if found.text.strip() else "No query was given.") + "".join(
        f" Note: {n}" for n in notes)  # fmt: skip
    query = {"q": q, "mode": mode} | {k: v for k, v in zip(("cat", "author", "since", "until"), filters) if v}
    return _respond(request, fmt, f"papertide: search for {shown}", subtitle, "/search?" + urlencode(query),
                    found.ids, found.scores)  # fmt: skip


SearchQ = Query("", description="The search page's query language.")


@router.api_route("/search.rss", methods=PAGE_METHODS, name="feed_search_rss")
def search_rss(request: Request, q: str = SearchQ, mode: str = "hybrid", cat: str = "", author: str = "",
               since: str = "", until: str = "") -> Response:  # fmt: skip
    return _search(request, "rss", q, mode, (cat, author, since, until))


@router.api_route("/search.atom", methods=PAGE_METHODS, name="feed_search_atom")
def search_atom(request: Request, q: str = SearchQ, mode: str = "hybrid", cat: str = "", author: str = "",
                since: str = "", until: str = "") -> Response:  # fmt: skip
    return _search(request, "atom", q, mode, (cat, author, since, until))
