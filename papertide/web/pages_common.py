"""What every page shares: rendering a template, URLs, and papers as list entries.

A list of papers looks the same on the daily, trending, search and author pages: the
title (linked to the paper page), authors (linked to their pages), a snippet of the
abstract with the query's words and exact phrases marked, the upvotes, the submitter,
the comment count and the links (arXiv abstract, PDF, code), and an upvote button in
the signed-in visitor's state (a link to log in for visitors). :func:`entries`
gathers all of that for a list of papers with a handful of batched store calls — one
``voted()`` call for the visitor's upvotes.

Text reaches templates as plain strings or as :data:`Segments` — ``(text, marked)``
pieces the template wraps in ``<mark>`` — so every character is escaped by Jinja2 and
nothing from a paper or a query is ever inserted as markup.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Iterable, Sequence
from urllib.parse import quote

from fastapi import Request
from starlette.responses import Response

from papertide.paper import Paper
from papertide.sources.hf_daily import SIGNAL_SOURCE
from papertide.text.tokens import tokenize, tokenize_query

Segments = list[tuple[str, bool]]
PAGE_METHODS = ["GET", "HEAD"]  # pages answer HEAD too (monitors, link checkers)
SNIPPET_CHARS = 300
HF_SOURCE = SIGNAL_SOURCE  # the Signal source hf_daily writes ("hf")


# --------------------------------------------------------------- rendering


def paper_url(paper_id: str) -> str:
    return "/paper/" + quote(paper_id, safe="/:")


def author_url(name: str) -> str:
    return "/author/" + quote(name, safe="")


def template_globals(version: str) -> dict:
    return {
        "paper_url": paper_url,
        "author_url": author_url,
        "static": lambda path: f"/static/{path}?v={version}",
        "version": version,
    }


def current_user(request: Request):
    """The logged-in user (set on ``request.state`` by the auth layer), or None."""
    return getattr(request.state, "user", None)


def here(request: Request) -> str:
    """This page's path and query, percent-encoded: where a form sends the browser back to."""
    path = quote(request.url.path, safe="/:@!$&'()*+,;=-._~")
    return path + (f"?{request.url.query}" if request.url.query else "")


def render(request: Request, name: str, context: dict, *, status: int = 200, headers: dict | None = None) -> Response:
    """A page from ``templates/name`` with what the layout needs (user, search box text, this page's URL)."""
    base = {
        "user": current_user(request),
        "csrf": getattr(request.state, "csrf", ""),
        "q": "",
        "here": here(request),
    }
    return request.app.state.templates.TemplateResponse(request, name, base | context, status_code=status,
                                                        headers=headers)  # fmt: skip


def engines(request: Request):
    return request.app.state.engines


def store(request: Request):
    return request.app.state.store


def community(request: Request):
    """The community store (votes, comments, listings): ``store.community``."""
    return request.app.state.store.community


# ------------------------------------------------------------------ marking


def mark_spans(text: str, spans: Iterable[tuple[int, int]]) -> Segments:
    """``text`` cut into pieces, the given character spans marked (overlaps merged)."""
    out: Segments = []
    last = 0
    for a, b in sorted(spans):
        a, b = max(a, last), min(b, len(text))
        if a >= b:
            continue
        if a > last:
            out.append((text[last:a], False))
        out.append((text[a:b], True))
        last = b
    if last < len(text) or not out:
        out.append((text[last:], False))
    return out


_WORD = re.compile(r"\w(?:[\w'’.-]*\w)?")


def word_spans(text: str, tokens: set[str]) -> list[tuple[int, int]]:
    """Spans of the words of ``text`` whose search tokens meet ``tokens`` (the query's)."""
    if not tokens:
        return []
    return [m.span() for m in _WORD.finditer(text) if not tokens.isdisjoint(_word_tokens(m.group()))]


@lru_cache(maxsize=65_536)
def _word_tokens(word: str) -> tuple[str, ...]:
    """The search tokens of one word (memoised: a result page asks for thousands)."""
    return tuple(tokenize(word))


def query_tokens(words: Sequence[str]) -> set[str]:
    return set(tokenize_query(" ".join(words)))


def _math_safe_cut(text: str, end: int) -> int:
    """Move a cut at ``end`` back before an unclosed ``$`` or ``\\(`` so no formula is split."""
    head = text[:end]
    dollars = len(re.findall(r"(?<!\\)\$", head))
    if dollars % 2:
        end = head.rfind("$")
    elif head.count("\\(") > head.count("\\)"):
        end = head.rfind("\\(")
    return end


def snippet(text: str, spans: Sequence[tuple[int, int]] = (), *, chars: int = SNIPPET_CHARS) -> Segments:
    """About ``chars`` characters of ``text`` around its first marked span, cut at word
    boundaries and never inside a formula, with ``…`` where text was left out."""
    if len(text) <= chars:
        return mark_spans(text, spans)
    first = min(spans)[0] if spans else 0
    start = 0 if first < chars // 2 else text.rfind(" ", 0, first - chars // 3) + 1
    start = _math_safe_cut(text, start) if start else 0
    end = start + chars
    if end < len(text):
        space = text.rfind(" ", start, end)
        end = _math_safe_cut(text, space if space > start else end)
    if end <= start:
        end = min(len(text), start + chars)
    kept = [(max(a, start) - start, min(b, end) - start) for a, b in spans if b > start and a < end]
    out = mark_spans(text[start:end], kept)
    if start:
        out.insert(0, ("… ", False))
    if end < len(text):
        out.append((" …", False))
    return out


# ------------------------------------------------------------------ entries


@dataclass
class Entry:
    """One paper as a list shows it."""

    paper: Paper
    title: Segments
    snippet: Segments
    votes: int = 0
    hf_upvotes: int = 0
    comments: int = 0
    submitter: str | None = None
    listed: str | None = None  # the day papertide listed it
    links: list[tuple[str, str]] = field(default_factory=list)
    score: float | None = None
    voted: bool | None = None  # whether the visitor upvoted it; None when nobody is signed in

    @property
    def id(self) -> str:
        return self.paper.id


def paper_links(p: Paper) -> list[tuple[str, str]]:
    """(label, url) of the links a list shows: arXiv abstract, PDF, code."""
    out = []
    for key, label in (("abs", "arXiv"), ("pdf", "PDF")):
        if p.links.get(key):
            out.append((label, p.links[key]))
    code = p.links.get("code") or next(
        (v for k in ("code", "github", "github_repo", "code_url") if isinstance(v := p.extra.get(k), str) and v), None
    )
    if code and code.startswith(("https://", "http://")):
        out.append(("Code", code))
    return out


def hf_signal(store, paper_id: str):
    """The paper's Hugging Face Daily Papers signal (upvotes, submitter), or None."""
    return next((s for s in store.signals(paper_id) if s.source == HF_SOURCE), None)


SIGNED_IN: Any = object()  # ``entries(user=...)``'s default: the visitor signed in on this request


def user_voted(request: Request, ids: Sequence[str], user: Any = SIGNED_IN) -> set[str] | None:
    """Which of ``ids`` ``user`` (by default the signed-in visitor) upvoted, in one batched
    store call; None when nobody is signed in."""
    user = current_user(request) if user is SIGNED_IN else user
    if user is None:
        return None
    return community(request).voted(user.id, ids) if ids else set()


def hf_signals(store, ids: Sequence[str]) -> dict:
    """The Hugging Face Daily Papers signal of each paper that has one, in one batched read."""
    return {pid: found[0] for pid, found in store.signals_many(ids, source=HF_SOURCE).items()}


def entries(request: Request, papers: Sequence[Paper], *, marks: dict[str, dict] | None = None,
            words: Sequence[str] = (), scores: dict[str, float] | None = None, user: Any = SIGNED_IN,
            voted: set[str] | None = None) -> list[Entry]:  # fmt: skip
    """List entries for ``papers`` (in that order): votes, comment counts, HF upvotes,
    submitters and listing days from the store; ``marks`` are exact-phrase spans per
    paper (``phrase_highlights``), ``words`` the query words to mark as well.

    ``Entry.voted`` tells whether ``user`` (by default the signed-in visitor; None for
    nobody) upvoted each paper; pass ``voted`` when the page already asked the store
    (:func:`user_voted`), so a page makes one ``voted()`` call whatever it lists."""
    st, com = store(request), community(request)
    ids = [p.id for p in papers]
    if voted is None:
        voted = user_voted(request, ids, user)
    votes = com.votes(ids) if ids else {}
    counts = com.comment_counts(ids) if ids else {}
    listing = com.listing(ids) if ids else {}
    hf_all = hf_signals(st, ids) if ids else {}
    names: dict[int, str | None] = {}
    tokens = query_tokens(words)
    out = []
    for p in papers:
        mark = (marks or {}).get(p.id, {})
        title_spans = list(mark.get("title", [])) + word_spans(p.title, tokens)
        abstract_spans = list(mark.get("abstract", [])) + word_spans(p.abstract, tokens)
        hf = hf_all.get(p.id)
        day, uid = listing.get(p.id, (None, None))
        submitter = _username(com, uid, names) if uid is not None else None
        if submitter is None and hf is not None:
            submitter = hf.data.get("submitted_by")
        out.append(Entry(
            paper=p,
            title=mark_spans(p.title, title_spans),
            snippet=snippet(p.abstract, sorted(abstract_spans)),
            votes=votes.get(p.id, 0),
            hf_upvotes=hf.upvotes if hf else 0,
            comments=counts.get(p.id, 0),
            submitter=submitter,
            listed=day,
            links=paper_links(p),
            score=(scores or {}).get(p.id),
            voted=(p.id in voted) if voted is not None else None,
        ))  # fmt: skip
    return out


def _username(com, user_id: int, cache: dict[int, str | None]) -> str | None:
    if user_id not in cache:
        try:
            cache[user_id] = com.user(user_id).username
        except KeyError:  # NotFoundError: a deleted account
            cache[user_id] = None
    return cache[user_id]


def rank_by_votes(request: Request, ids: Sequence[str]) -> list[str]:
    """Most upvoted first; Hugging Face upvotes break ties; then the order given (stable)."""
    votes = community(request).votes(ids) if ids else {}
    st = store(request)
    hf = {pid: s.upvotes for pid, s in hf_signals(st, ids).items()} if ids else {}
    return sorted(ids, key=lambda pid: (-votes.get(pid, 0), -hf.get(pid, 0)))
