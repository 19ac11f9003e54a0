"""The search page and the autocomplete endpoint.

``/search`` reads the query language (:mod:`papertide.query`), with the mode and a few
filter fields of the form added to it, asks :func:`papertide.rank.search` for one page
of results, and marks the exact phrases (found by the n-gram engine's matching) and
the query's words in titles and snippets. Whatever is typed gives a page: what the
parser could not use comes back as notes (``Query.warnings``), contradictory filters
as a note with no results. A query that is only a paper id goes to that paper.

``/api/complete`` answers the search box's autocomplete from
:meth:`papertide.phrases.Phrases.complete` (a few milliseconds).
"""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from starlette.responses import RedirectResponse, Response

from papertide.errors import NotFoundError
from papertide.index import IndexMissingError
from papertide.query import QueryError, parse_query
from papertide.rank import MODES, search
from papertide.text.ngram import phrase_highlights
from papertide.web.pages_common import PAGE_METHODS, community, engines, entries, paper_url, render, store

router = APIRouter()

PAGE_SIZE = 20
MAX_PAGE = 100
COMPLETE_CHARS = 200  # the end of what is typed that completions read


def full_query(q: str, cat: str, author: str, since: str, until: str) -> str:
    """The search box text plus the filter fields, written in the query language."""
    parts = [q]
    for name, value in (("cat", cat), ("author", author), ("since", since), ("until", until)):
        value = " ".join(value.replace('"', " ").split())
        if value:
            parts.append(f'{name}:"{value}"' if " " in value else f"{name}:{value}")
    return " ".join(p for p in parts if p)


@router.api_route("/search", name="search", include_in_schema=False, methods=PAGE_METHODS)
def search_page(request: Request, q: str = "", mode: str = "hybrid", page: int = Query(1, ge=1, le=MAX_PAGE),
                cat: str = "", author: str = "", since: str = "", until: str = "") -> Response:  # fmt: skip
    text = full_query(q, cat, author, since, until)
    notes: list[str] = []
    if mode not in MODES:
        notes.append(f"unknown mode {mode[:40]!r}: searching in hybrid mode ({', '.join(MODES)} are known)")
        mode = "hybrid"
    context = {"q": q, "mode": mode, "modes": MODES, "cat": cat, "author": author, "since": since, "until": until,
               "notes": notes, "entries": [], "page": page, "has_next": False,
               "searched": bool(text.strip())}  # fmt: skip
    if not text.strip():
        return render(request, "search.html", context)
    try:
        parsed = parse_query(text)
    except QueryError as e:
        notes.append(str(e))
        return render(request, "search.html", context)
    notes.extend(parsed.warnings)
    if parsed.is_lookup:
        try:
            store(request).get(parsed.paper_id)
            return RedirectResponse(paper_url(parsed.paper_id), status_code=303)
        except NotFoundError:
            notes.append(f"the paper {parsed.paper_id} is not in this papertide")
            return render(request, "search.html", context)
    try:
        index = engines(request).search_index()
    except IndexMissingError as e:
        notes.append(str(e))
        return render(request, "search.html", context, status=503)
    ids, _ = search(index, parsed, k=PAGE_SIZE + 1, offset=(page - 1) * PAGE_SIZE, mode=mode)
    context["has_next"] = len(ids) > PAGE_SIZE
    hidden = community(request).hidden_papers()
    found = store(request).get_many(i for i in ids[:PAGE_SIZE] if i not in hidden)
    papers = [found[i] for i in ids[:PAGE_SIZE] if i in found]
    marks = {p.id: phrase_highlights(p.title, p.abstract, parsed.phrases) for p in papers} if parsed.phrases else {}
    context["entries"] = entries(request, papers, marks=marks, words=parsed.words)
    context["describe"] = parsed.describe()
    context["offset"] = (page - 1) * PAGE_SIZE
    return render(request, "search.html", context)


@router.get("/api/complete", name="complete")
def complete(request: Request, q: str = "", k: int = Query(8, ge=1, le=20)) -> dict:
    """Phrase completions of what is being typed, most frequent first, with exact counts."""
    typed = q[-COMPLETE_CHARS:]
    engine = engines(request).phrases() if typed.strip() else None
    items = engine.complete(typed, k=k) if engine is not None else []
    return {"query": q[:COMPLETE_CHARS], "completions": [{"phrase": s, "count": n} for s, n in items]}
