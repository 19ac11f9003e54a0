"""The paper page: everything papertide knows about one paper.

Full abstract, authors, categories, versions and links; its upvotes (the upvote form
appears for a logged-in user and posts to ``/paper/{id}/vote``); similar papers
(:func:`papertide.rank.similar`); comments, rendered from Markdown and sanitised by
``web/markdown.py`` — admins also see the hidden ones, marked, with an Unhide button;
and, where the n-gram engine is built, the frequency over time of a couple of the
title's phrases that other papers use too (:func:`chart_phrases`, charted by
:func:`papertide.charts.svg_chart` and inlined: the SVG holds no script).

A signed-in user can also mark the paper "not relevant" (``/paper/{id}/not-relevant``,
taken back at ``…/not-relevant/undo``; CSRF-checked forms, JSON for the page's script):
the mark is a negative example for their "for you" recommendations, which never show
the paper again.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, HTTPException, Request
from starlette.datastructures import FormData
from starlette.responses import JSONResponse, RedirectResponse, Response

from papertide.charts import svg_chart
from papertide.errors import InvalidIdError, NotFoundError
from papertide.index import IndexMissingError
from papertide.paper import Paper, parse_paper_id
from papertide.rank import similar
from papertide.store.community import Comment
from papertide.text.ngram import ngram_tokens
from papertide.trends import EDGE_STOP, series
from papertide.web import actions
from papertide.web.pages_common import (PAGE_METHODS, community, current_user, engines, entries, hf_signal,
                                        paper_url, render, store, user_voted)  # fmt: skip
from papertide.web.session import CsrfForm, back_url, require_user, wants_json

router = APIRouter(include_in_schema=False)

SIMILAR = 6
CHARTS = 2
CHART_PERIODS = 36  # the chart shows at most the last 36 months


@dataclass
class PhraseChart:
    phrase: str
    papers: int  # papers other than this one that use it
    count: int  # occurrences in every paper
    svg: str | None  # None when no paper using it has a date


def chart_phrases(engine, paper: Paper, k: int = CHARTS) -> list[tuple[str, int, int]]:
    """The ``k`` phrases of 2-3 words of the title that the most *other* papers use:
    (phrase, other papers, occurrences). Phrases may not start or end with a function
    word, and a phrase inside (or around) one already chosen is skipped."""
    tokens = ngram_tokens(paper.title)
    found: dict[tuple[str, ...], tuple[int, int]] = {}
    for n in (3, 2):
        for i in range(len(tokens) - n + 1):
            gram = tuple(tokens[i : i + n])
            if gram in found or not all(t.isalnum() for t in gram) or gram[0] in EDGE_STOP or gram[-1] in EDGE_STOP:
                continue
            docs = engine.find(list(gram))
            others = len(docs) - (paper.id in docs)
            if others > 0:
                found[gram] = (others, sum(len(v) for v in docs.values()))
    chosen: list[tuple[str, ...]] = []
    for gram in sorted(found, key=lambda g: (-found[g][0], -len(g), g)):
        text = " ".join(gram)
        if any(text in " ".join(c) or " ".join(c) in text for c in chosen):
            continue
        chosen.append(gram)
        if len(chosen) == k:
            break
    return [(" ".join(g), *found[g]) for g in chosen]


def phrase_charts(engine, paper: Paper) -> list[PhraseChart]:
    out = []
    for phrase, others, count in chart_phrases(engine, paper):
        points = series(engine.segments(), phrase, period="month")[-CHART_PERIODS:]
        svg = svg_chart(points, title=f"“{phrase}”") if points else None
        out.append(PhraseChart(phrase, others, count, svg))
    return out


def _similar(request: Request, pid: str) -> tuple[list[Paper], dict[str, float], str | None]:
    """The papers closest to ``pid`` (hidden ones left out), their scores, or a note why there are none."""
    try:
        index = engines(request).search_index()
        ids, scores = similar(index, pid, k=SIMILAR + 4)
    except IndexMissingError:
        return [], {}, "Similar papers appear once the search index is built (papertide index)."
    except NotFoundError:
        return [], {}, ("This paper is not in the search index yet; similar papers appear after the next "
                        "papertide index.")
    hidden = community(request).hidden_papers()
    found = store(request).get_many(i for i in ids if i not in hidden)
    papers = [found[i] for i in ids if i in found][:SIMILAR]
    return papers, dict(zip(ids, map(float, scores))), None


@dataclass
class ShownComment:
    """A comment as the paper page shows it."""

    comment: Comment
    html: str  # its Markdown, rendered and sanitised
    hidden: bool = False  # hidden by a moderator (only admins see it, with an Unhide button)
    under_hidden: bool = False  # a reply under a hidden comment: hidden with it


def shown_comments(request: Request, pid: str, admin: bool) -> list[ShownComment]:
    """The comments of ``pid`` in thread order: the visible ones, and for an admin the hidden
    ones too, marked (with the replies hidden along with them)."""
    from papertide.web.markdown import render_markdown

    out: list[ShownComment] = []
    gone: set[int] = set()  # ids hidden themselves or under a hidden comment
    for c in community(request).comments(pid, include_hidden=admin):
        under = c.parent_id in gone
        if c.hidden or under:
            gone.add(c.id)
        out.append(ShownComment(c, render_markdown(c.body), hidden=c.hidden, under_hidden=under and not c.hidden))
    return out


@router.api_route("/paper/{paper_id:path}", name="paper", methods=PAGE_METHODS)
def paper_page(request: Request, paper_id: str) -> Response:
    try:
        pid = parse_paper_id(paper_id)
    except InvalidIdError as e:
        raise HTTPException(404, str(e)) from None
    if pid != paper_id:
        return RedirectResponse(paper_url(pid), status_code=308)
    p = store(request).get(pid)  # NotFoundError -> the 404 page
    user = current_user(request)
    admin = getattr(user, "role", None) == "admin"
    com = community(request)
    if pid in com.hidden_papers() and not admin:
        raise HTTPException(404, f"no paper {pid!r} in the store")
    hf = hf_signal(store(request), pid)
    similar_papers, similar_scores, similar_note = _similar(request, pid)
    mine = user_voted(request, [pid] + [q.id for q in similar_papers])  # one call for the page
    engine = engines(request).phrases()
    listing = com.listing([pid]).get(pid)
    comments = shown_comments(request, pid, admin)
    return render(request, "paper.html", {
        "p": p,
        "votes": com.votes([pid]).get(pid, 0),
        "voted": mine is not None and pid in mine,
        "not_relevant": user is not None and pid in com.not_relevant(user.id),
        "hf": hf,
        "listed": listing[0] if listing else None,
        "comments": comments,
        "hidden_comments": sum(1 for c in comments if c.hidden or c.under_hidden),
        "similar": entries(request, similar_papers, scores=similar_scores, voted=mine),
        "similar_note": similar_note,
        "charts": phrase_charts(engine, p) if engine is not None else [],
        "has_phrases": engine is not None,
    })  # fmt: skip


# --------------------------------------------------------------- not relevant


def set_not_relevant(request: Request, paper_id: str, form: FormData, on: bool) -> Response:
    """Mark (``on``) or unmark a paper as not relevant to the signed-in user; back to the page, or JSON."""
    if wants_json(request) and current_user(request) is None:
        return JSONResponse({"detail": "log in to mark papers"}, status_code=401)
    user = require_user(request, back_url(request, form, paper_url(paper_id)))
    try:
        pid = actions.visible_paper(store(request), user, paper_id)
    except NotFoundError as e:
        if wants_json(request):
            return JSONResponse({"detail": str(e)}, status_code=404)
        raise
    com = community(request)
    if on:
        com.mark_not_relevant(user.id, pid)
    else:
        com.unmark_not_relevant(user.id, pid)
    if wants_json(request):
        return JSONResponse({"paper_id": pid, "not_relevant": on})
    return RedirectResponse(back_url(request, form, paper_url(pid)), status_code=303)


@router.post("/paper/{paper_id:path}/not-relevant", name="not_relevant")
def mark_not_relevant(request: Request, paper_id: str, form: CsrfForm) -> Response:
    return set_not_relevant(request, paper_id, form, True)


@router.post("/paper/{paper_id:path}/not-relevant/undo", name="relevant_again")
def unmark_not_relevant(request: Request, paper_id: str, form: CsrfForm) -> Response:
    return set_not_relevant(request, paper_id, form, False)
