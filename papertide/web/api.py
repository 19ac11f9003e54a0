"""The JSON API under ``/api/``: papers, daily and trending lists, search, similar papers,
authors, comments, collections and phrase counts — read here; writes in ``api_write.py``.

Every list asks the rankers the pages ask (``api_lists.py``) and every paper carries
the numbers the pages show (``api_common.paper_outs``), so the API and the HTML never
disagree. Lists page with ``limit`` (1..100, default 20) and ``offset`` and answer
with ``total`` (when cheap) and ``next`` (a URL, or null). Errors are
``{"detail": "…"}`` with a proper status (app.py renders them): 404 for an unknown
paper or an id that is not one, 422 for an invalid parameter, 503 while the search
index or the n-gram index is not built, 429 (with ``Retry-After``) past a rate limit
(searches and writes, per account or address: ``api_common.py``). Reads need no token,
and other sites' scripts may make them (CORS, ``security.ApiCors``); with one
(``Authorization: Bearer …``) papers say whether the caller ``voted`` and the
caller's private collections become readable. The schema is ``/api/openapi.json``,
browsable at ``/api/docs`` (``api_docs.py``, a vendored Swagger UI).
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request

from papertide.errors import InvalidIdError
from papertide.index import IndexMissingError
from papertide.paper import parse_paper_id, title_key
from papertide.popularity import half_life
from papertide.rank import similar as similar_ranker
from papertide.store.community import User
from papertide.text.ngram import ngram_tokens, phrase_highlights
from papertide.web import api_docs, api_write
from papertide.web.api_common import (collection_out, comment_out, item_papers, limit_searches, next_url,
                                      optional_user, paper_outs, papers_of, require_user, visible_collection,
                                      visible_paper_id)  # fmt: skip
from papertide.web.api_lists import MAX_SEARCH_OFFSET, daily_ids, period, run_search, trending
from papertide.web.api_models import (MAX_ID, AuthorOut, CollectionDetailOut, CollectionItemOut, CollectionsOut,
                                      CommentsOut, DailyOut, ErrorOut, NgramCountOut, PaperOut, PapersOut, SearchOut,
                                      SimilarOut, TrendingOut, UserOut)  # fmt: skip
from papertide.web.pages import MAX_CANDIDATES
from papertide.web.pages_common import community, engines, query_tokens, store, word_spans

ERRORS = {404: {"model": ErrorOut, "description": "Not found"},
          422: {"model": ErrorOut, "description": "Invalid parameters"}}  # fmt: skip
UNAVAILABLE = {503: {"model": ErrorOut, "description": "The index is not built yet"}}
LIMITED = {429: {"model": ErrorOut, "description": "Too many searches: wait Retry-After seconds"}}
SEARCH = [Depends(limit_searches)]  # searches count against the caller's allowance
router = APIRouter(prefix="/api", responses=ERRORS)

MAX_IDS = 100
MAX_OFFSET = 100_000
MAX_SIMILAR_OFFSET = 1_000
PAPERS_LISTED_UP_TO = 200_000  # /api/ngram/count lists the papers of a phrase up to this many occurrences

Limit = Query(20, ge=1, le=100, description="How many items per page (1 to 100).")
Offset = Query(0, ge=0, le=MAX_OFFSET, description="How many items to skip.")
CollectionId = Path(ge=1, le=MAX_ID)


def _page(ids: list, offset: int, limit: int) -> tuple[list, bool]:
    return ids[offset : offset + limit], len(ids) > offset + limit


# ------------------------------------------------------------------- papers


@router.get("/papers", response_model=PapersOut, tags=["papers"])
def papers(request: Request, ids: list[str] | None = Query(None, description="Paper ids in any form, comma-"
           "separated or repeated; without ids, every paper, newest first."), limit: int = Limit,
           offset: int = Offset, user: User | None = Depends(optional_user)) -> PapersOut:  # fmt: skip
    """Several papers by id (in the order asked), or all papers page by page."""
    if ids is None:
        return _all_papers(request, limit, offset, user)
    wanted = [s.strip() for raw in ids for s in raw.split(",") if s.strip()]
    if len(wanted) > MAX_IDS:
        raise HTTPException(422, f"ids: at most {MAX_IDS} ids at a time, not {len(wanted)}")
    canonical = {}
    for text in wanted:
        try:
            canonical[text] = parse_paper_id(text)
        except InvalidIdError:
            pass
    hidden = set() if getattr(user, "role", None) == "admin" else community(request).hidden_papers()
    found = store(request).get_many(set(canonical.values()))
    visible = {pid for pid in found if pid not in hidden}
    shown = [found[pid] for pid in dict.fromkeys(canonical.get(t) for t in wanted) if pid in visible]
    missing = [t for t in wanted if canonical.get(t) not in visible]  # not an id, not stored, or hidden
    return PapersOut(items=paper_outs(request, shown, user), offset=0, limit=max(len(shown), 1), total=len(shown),
                     missing=missing)  # fmt: skip


def _all_papers(request: Request, limit: int, offset: int, user: User | None) -> PapersOut:
    """Every visible paper, newest first. Offsets count the store's papers, so a page holds
    fewer than ``limit`` items where a moderator hid some (follow ``next`` to the end)."""
    listed = store(request).list_papers(limit=limit + 1, offset=offset, order="submitted")
    hidden = community(request).hidden_papers()
    shown = [p for p in listed[:limit] if p.id not in hidden]
    total = store(request).count() - len(store(request).get_many(hidden))
    return PapersOut(items=paper_outs(request, shown, user), offset=offset, limit=limit, total=total,
                     next=next_url(request, offset, limit, len(listed) > limit))  # fmt: skip


@router.get("/papers/{paper_id:path}/comments", response_model=CommentsOut, tags=["comments"])
def comments(request: Request, paper_id: str, limit: int = Query(100, ge=1, le=100), offset: int = Offset,
             user: User | None = Depends(optional_user)) -> CommentsOut:  # fmt: skip
    """A paper's comments in thread order (each reply after its parent), Markdown and sanitised HTML."""
    pid = visible_paper_id(request, paper_id, user)
    admin = getattr(user, "role", None) == "admin"
    found = community(request).comments(pid, include_hidden=admin)
    shown, more = _page(found, offset, limit)
    return CommentsOut(paper_id=pid, items=[comment_out(c) for c in shown], offset=offset, limit=limit,
                       total=len(found), next=next_url(request, offset, limit, more))  # fmt: skip


@router.get("/papers/{paper_id:path}", response_model=PaperOut, tags=["papers"])
def paper(request: Request, paper_id: str, user: User | None = Depends(optional_user)) -> PaperOut:
    """One paper. Any id form works (``arXiv:2403.01234v2``, an arXiv URL, a DOI); the answer has the canonical id."""
    pid = visible_paper_id(request, paper_id, user)
    return paper_outs(request, papers_of(request, [pid]), user)[0]


# -------------------------------------------------------------------- lists


@router.get("/daily", response_model=DailyOut, tags=["lists"])
def daily(request: Request, day: str | None = Query(None, description="YYYY-MM-DD"),
          week: str | None = Query(None, description="YYYY-Www (ISO week)"),
          month: str | None = Query(None, description="YYYY-MM"), limit: int = Limit, offset: int = Offset,
          user: User | None = Depends(optional_user)) -> DailyOut:  # fmt: skip
    """The daily papers of a day, week or month (the latest day with papers by default), most upvoted first."""
    p = period(request, day, week, month)
    ids, source, note = daily_ids(request, p)
    shown, more = _page(ids, offset, limit)
    return DailyOut(items=paper_outs(request, papers_of(request, shown), user), offset=offset, limit=limit,
                    total=len(ids), next=next_url(request, offset, limit, more), kind=p.kind,
                    first=p.first.isoformat(), last=p.last.isoformat(), source=source, note=note)  # fmt: skip


@router.get("/trending", response_model=TrendingOut, tags=["lists"])
def trending_papers(request: Request, window: Literal["day", "week", "month"] = "week", limit: int = Limit,
                    offset: int = Offset, user: User | None = Depends(optional_user)) -> TrendingOut:  # fmt: skip
    """Papers by the time-decayed score of their upvotes: each vote's weight halves every quarter window."""
    ranked = trending(request, window)
    shown, more = _page(ranked, offset, limit)
    items = paper_outs(request, papers_of(request, [pid for pid, _ in shown]), user, scores=dict(shown))
    return TrendingOut(items=items, offset=offset, limit=limit, total=len(ranked),
                       next=next_url(request, offset, limit, more), window=window,
                       half_life_hours=half_life(window).total_seconds() / 3600)  # fmt: skip


# ------------------------------------------------------------------- search


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _highlights(papers: list, parsed) -> dict[str, dict[str, list[tuple[int, int]]]]:
    tokens = query_tokens(parsed.words)
    out = {}
    for p in papers:
        marks = phrase_highlights(p.title, p.abstract, parsed.phrases) if parsed.phrases else {}
        out[p.id] = {"title": _merged(list(marks.get("title", [])) + word_spans(p.title, tokens)),
                     "abstract": _merged(list(marks.get("abstract", [])) + word_spans(p.abstract, tokens))}  # fmt: skip
    return out


@router.get("/search", response_model=SearchOut, tags=["search"], responses=UNAVAILABLE | LIMITED)
def search(request: Request, q: str = Query("", description="The query language of the search page: words, "
           '"exact phrases", -exclusions, author:, cat:, since:, until:, year:, or a paper id.'),
           mode: Literal["hybrid", "lexical", "dense"] = "hybrid", limit: int = Limit,
           k: int | None = Query(None, ge=1, le=100, description="Another name for limit."),
           offset: int = Query(0, ge=0, le=MAX_SEARCH_OFFSET), cat: str = "", author: str = "", since: str = "",
           until: str = "", user: User | None = Depends(limit_searches)) -> SearchOut:  # fmt: skip
    """Search as the search page does (same parser, same ranker, same order); what the parser could
    not use comes back in ``notes``, never as an error."""
    limit = k or limit
    found = run_search(request, q, mode, limit=limit, offset=offset, filters=(cat, author, since, until))
    shown = papers_of(request, found.ids)
    marks = _highlights(shown, found.parsed) if found.parsed is not None else None
    items = paper_outs(request, shown, user, scores=found.scores, highlights=marks)
    return SearchOut(items=items, offset=offset, limit=limit, total=None,
                     next=next_url(request, offset, limit, found.has_more), query=found.text, mode=mode,
                     describe=found.parsed.describe() if found.parsed is not None else None,
                     notes=found.notes)  # fmt: skip


@router.get("/similar/{paper_id:path}", response_model=SimilarOut, tags=["search"], responses=UNAVAILABLE | LIMITED)
def similar(request: Request, paper_id: str, limit: int = Limit,
            offset: int = Query(0, ge=0, le=MAX_SIMILAR_OFFSET),
            user: User | None = Depends(limit_searches)) -> SimilarOut:  # fmt: skip
    """Papers closest in meaning to a paper (cosine of their embeddings), closest first."""
    pid = visible_paper_id(request, paper_id, user)
    index = engines(request).search_index()
    hidden = community(request).hidden_papers()
    ids, scores = similar_ranker(index, pid, k=offset + limit + 1 + len(hidden))
    ranked = [(i, float(s)) for i, s in zip(ids, scores) if i not in hidden]
    shown, more = _page(ranked, offset, limit)
    items = paper_outs(request, papers_of(request, [i for i, _ in shown]), user, scores=dict(shown))
    return SimilarOut(items=items, offset=offset, limit=limit, total=None,
                      next=next_url(request, offset, limit, more), paper_id=pid)  # fmt: skip


@router.get("/authors/{name:path}", response_model=AuthorOut, tags=["papers"])
def author(request: Request, name: str, limit: int = Limit, offset: int = Offset,
           user: User | None = Depends(optional_user)) -> AuthorOut:  # fmt: skip
    """An author's papers, newest first (names match ignoring case and accents)."""
    name = name.strip()
    ids = store(request).paper_ids(author=name, limit=MAX_CANDIDATES) if title_key(name) else []
    hidden = community(request).hidden_papers()
    found = papers_of(request, [i for i in ids if i not in hidden])
    if not found:
        raise HTTPException(404, f"no papers by {name[:200]!r} in this papertide")
    found.sort(key=lambda p: (p.submitted or "", p.id), reverse=True)
    spelled = next((a for a in found[0].authors if title_key(a) == title_key(name)), name)
    shown, more = _page(found, offset, limit)
    return AuthorOut(items=paper_outs(request, shown, user), offset=offset, limit=limit, total=len(found),
                     next=next_url(request, offset, limit, more), name=spelled)  # fmt: skip


# -------------------------------------------------------------- collections


@router.get("/collections", response_model=CollectionsOut, tags=["collections"])
def public_collections(request: Request, limit: int = Limit, offset: int = Offset) -> CollectionsOut:
    """Everyone's public collections, most recently changed first."""
    found = community(request).public_collections(limit + 1, offset)
    return CollectionsOut(items=[collection_out(request, c) for c in found[:limit]], offset=offset, limit=limit,
                          next=next_url(request, offset, limit, len(found) > limit))  # fmt: skip


@router.get("/collections/{collection_id}", response_model=CollectionDetailOut, tags=["collections"])
def collection(request: Request, collection_id: int = CollectionId, limit: int = Query(100, ge=1, le=100),
               offset: int = Offset, user: User | None = Depends(optional_user)) -> CollectionDetailOut:  # fmt: skip
    """A public collection, or one of your own (with your token), with its papers and notes."""
    c = visible_collection(request, collection_id, user)
    items = community(request).items(c.id)
    shown, more = _page(items, offset, limit)
    papers = item_papers(request, shown, user)
    out = [CollectionItemOut(paper_id=i.paper_id, note=i.note, added=i.added, paper=papers.get(i.paper_id))
           for i in shown]  # fmt: skip
    head = collection_out(request, c).model_dump()
    return CollectionDetailOut(**head, items=out, offset=offset, limit=limit,
                               next=next_url(request, offset, limit, more))  # fmt: skip


@router.get("/me", response_model=UserOut, tags=["account"])
def me(user: User = Depends(require_user)) -> UserOut:
    """Who the token belongs to (a way to check a token)."""
    return UserOut(username=user.username, role=user.role, created=user.created)


@router.get("/me/collections", response_model=CollectionsOut, tags=["account", "collections"])
def my_collections(request: Request, user: User = Depends(require_user)) -> CollectionsOut:
    """Your collections, public and private."""
    found = community(request).collections(user.id)
    return CollectionsOut(items=[collection_out(request, c) for c in found], offset=0, limit=max(len(found), 1),
                          total=len(found))  # fmt: skip


# ------------------------------------------------------------------ phrases


@router.get("/ngram/count", response_model=NgramCountOut, tags=["phrases"], responses=UNAVAILABLE | LIMITED,
            dependencies=SEARCH)  # fmt: skip
def ngram_count(request: Request, phrase: str = Query(min_length=1, max_length=1_000)) -> NgramCountOut:
    """Exact occurrences of a phrase (whole words, any case) in every title and abstract, and in how many papers."""
    engine = engines(request).phrases()
    if engine is None:
        raise IndexMissingError("the n-gram index is not built yet: run `papertide index`")
    tokens = ngram_tokens(phrase)
    n = engine.count(tokens) if tokens else 0
    papers_n = (len(engine.find(tokens)) if n else 0) if n <= PAPERS_LISTED_UP_TO else None
    return NgramCountOut(phrase=phrase, tokens=tokens, count=n, papers=papers_n)


router.include_router(api_write.router)
router.include_router(api_docs.router)
