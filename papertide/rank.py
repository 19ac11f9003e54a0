"""Rankers: search (lexical, dense, hybrid) and similar papers. Each returns ``(ids, scores)``.

Every mode applies the same query-language filters — categories, dates, authors,
exclusions, exact phrases — as one boolean mask over the index's papers, so a
filter means the same thing whatever the mode. Hybrid search fuses the lexical and
dense candidate lists (``DEPTH`` each) by a convex combination of their min-max
normalised scores with equal weights:

    hybrid(d) = ALPHA * minmax(bm25)(d) + (1 - ALPHA) * minmax(cosine)(d),   ALPHA = 0.5

Reciprocal rank fusion (Cormack, Clarke & Büttcher 2009) is kept as ``fusion="rrf"``.
The choice rests on numbers: on the labelled demo queries (``bench/quality_bench.py``)
the convex combination scores nDCG@10 0.985 at ALPHA = 0.5 and stays above RRF's 0.969
for every ALPHA from 0.2 to 0.6, in line with Bruch, Gai & Ingber (2023, *An analysis
of fusion functions for hybrid retrieval*), who find convex combination better than
RRF and insensitive to its weight. ALPHA = 0.5 is the untuned middle, not a fit.
"""

from __future__ import annotations

from typing import Literal, Sequence

import numpy as np

from papertide.errors import NotFoundError
from papertide.index import SearchIndex
from papertide.query import Query, author_matches, parse_query
from papertide.text.lexical import phrase_words, tokenize_query

Mode = Literal["hybrid", "lexical", "dense"]
MODES = ("hybrid", "lexical", "dense")
RRF_K = 60
ALPHA = 0.5  # lexical weight of the convex combination
FUSIONS = ("convex", "rrf")
DEPTH = 100  # candidates taken from each ranking before fusion
AUTHOR_CANDIDATES = 20_000  # author filters verify at most this many candidate papers

Ranking = tuple[list[str], np.ndarray]


def _check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}; not {mode!r}")
    return mode


# ------------------------------------------------------------------ fusion


def rrf(rankings: Sequence[Sequence[str]], k: int = RRF_K) -> Ranking:
    """Reciprocal rank fusion of several rankings (best first); ties broken by id."""
    score: dict[str, float] = {}
    for ranking in rankings:
        for rank, pid in enumerate(ranking, 1):
            score[pid] = score.get(pid, 0.0) + 1.0 / (k + rank)
    ordered = sorted(score.items(), key=lambda kv: (-kv[1], kv[0]))
    return [p for p, _ in ordered], np.array([s for _, s in ordered], dtype=np.float64)


def linear(a: Ranking, b: Ranking, alpha: float) -> Ranking:
    """``alpha * minmax(a) + (1 - alpha) * minmax(b)``; a missing document scores 0 there."""

    def norm(r: Ranking) -> dict[str, float]:
        ids, s = r
        if not ids:
            return {}
        lo, hi = float(np.min(s)), float(np.max(s))
        if hi == lo:
            return dict.fromkeys(ids, 1.0)
        return {pid: (float(v) - lo) / (hi - lo) for pid, v in zip(ids, s)}

    na, nb = norm(a), norm(b)
    score = {p: alpha * na.get(p, 0.0) + (1 - alpha) * nb.get(p, 0.0) for p in na.keys() | nb.keys()}
    ordered = sorted(score.items(), key=lambda kv: (-kv[1], kv[0]))
    return [p for p, _ in ordered], np.array([s for _, s in ordered], dtype=np.float64)


# ----------------------------------------------------------------- filters


def filter_mask(index: SearchIndex, q: Query) -> np.ndarray | None:
    """Papers (rows of ``index.facts``) that pass the query's filters; None when nothing filters."""
    facts = index.facts
    mask = None

    def narrow(m: np.ndarray) -> None:
        nonlocal mask
        mask = m if mask is None else mask & m

    if q.since or q.until:
        narrow(facts.date_mask(q.since, q.until))
    if q.categories:
        narrow(facts.category_mask(q.categories))
    engine = index.phrases if (q.phrases or q.excluded) else None
    for phrase in q.phrases:
        if engine is not None:  # the n-gram engine: exactly the papers holding the phrase
            narrow(_phrase_mask(index, engine, phrase))
            continue
        for token in tokenize_query(phrase):  # every word of a phrase must be there; order is checked later
            narrow(_term_mask(index, token))
    for excluded in q.excluded:
        tokens = tokenize_query(excluded)
        if len(tokens) == 1:
            narrow(~_term_mask(index, tokens[0]))
        elif engine is not None and len(phrase_words(excluded)) > 1:
            narrow(~_phrase_mask(index, engine, excluded))
    if q.authors:
        narrow(_author_mask(index, q, mask))
    return mask


def _phrase_mask(index: SearchIndex, engine, phrase: str) -> np.ndarray:
    pos = index.facts.positions
    rows = [pos[k] for k in engine.find(phrase) if k in pos]
    m = np.zeros(len(index.facts.keys), dtype=bool)
    m[np.asarray(rows, dtype=np.int64)] = True
    return m


def _term_mask(index: SearchIndex, token: str) -> np.ndarray:
    docs = index.lexical.term_docs(token)
    rows = index.lexical_rows[docs]
    m = np.zeros(len(index.facts.keys), dtype=bool)
    m[rows[rows >= 0]] = True
    return m


def _author_mask(index: SearchIndex, q: Query, within: np.ndarray | None) -> np.ndarray:
    """Candidates share the author names' words (from the lexical index), then each is checked."""
    cand = within.copy() if within is not None else np.ones(len(index.facts.keys), dtype=bool)
    for name in q.authors:
        for token in tokenize_query(name):
            if len(token) > 1:  # initials are checked below, not looked up
                cand &= _term_mask(index, token)
    rows = np.flatnonzero(cand)[:AUTHOR_CANDIDATES]
    keys = [index.facts.keys[i] for i in rows]
    papers = index.store.get_many(keys)
    ok = np.zeros(len(index.facts.keys), dtype=bool)
    for row, key in zip(rows, keys):
        p = papers.get(key)
        if p and all(any(author_matches(want, have) for have in p.authors) for want in q.authors):
            ok[row] = True
    return ok


def _has_phrases(index: SearchIndex, ids: list[str], q: Query) -> list[str]:
    """Keep the ids whose title or abstract holds every phrase and no excluded phrase, word for word."""
    excluded = [w for w in (phrase_words(e) for e in q.excluded) if len(w) > 1]
    wanted = [w for w in (phrase_words(p) for p in q.phrases) if len(w) > 1]
    if not (wanted or excluded) or not ids or index.phrases is not None:
        return ids  # nothing to check, or the n-gram engine's mask already did it exactly
    papers = index.store.get_many(ids)
    kept = []
    for pid in ids:
        p = papers.get(pid)
        if p is None:
            continue
        words = phrase_words(p.title) + ["\0"] + phrase_words(p.abstract)
        if all(_contains_run(words, w) for w in wanted) and not any(_contains_run(words, w) for w in excluded):
            kept.append(pid)
    return kept


def _contains_run(words: list[str], run: list[str]) -> bool:
    n = len(run)
    first = run[0]
    return any(words[i : i + n] == run for i, w in enumerate(words) if w == first)


# ------------------------------------------------------------------ search


def search(index: SearchIndex, query: Query | str, *, k: int = 10, offset: int = 0, mode: str = "hybrid",
           fusion: str = "convex") -> Ranking:  # fmt: skip
    """The best ``k`` papers for a query (after ``offset``): ``(ids, scores)``, best first."""
    _check_mode(mode)
    if fusion not in FUSIONS:
        raise ValueError(f"fusion must be one of {', '.join(FUSIONS)}; not {fusion!r}")
    if k < 1 or offset < 0:
        raise ValueError("k must be at least 1 and offset at least 0")
    q = parse_query(query) if isinstance(query, str) else query
    if q.paper_id and q.is_lookup:
        try:
            index.store.get(q.paper_id)
        except NotFoundError:
            return [], np.zeros(0)
        return [q.paper_id], np.ones(1)
    mask = filter_mask(index, q)
    tokens = tokenize_query(" ".join((*q.words, *q.phrases)))
    if not tokens and not q.text.strip():
        return _browse(index, mask, k, offset)
    depth = max(DEPTH, offset + k)
    if index.phrases is None and (q.phrases or any(len(phrase_words(e)) > 1 for e in q.excluded)):
        depth *= 3  # some candidates will fail the word-for-word phrase check
    rankings = []
    if mode in ("hybrid", "lexical"):
        rankings.append(_lexical(index, tokens, mask, depth))
    if mode in ("hybrid", "dense"):
        rankings.append(_dense(index, q.text, mask, depth))
    if len(rankings) == 1:
        ids, scores = rankings[0]
    elif fusion == "rrf":
        ids, scores = rrf([r[0] for r in rankings])
    else:
        ids, scores = linear(rankings[0], rankings[1], ALPHA)
    keep = set(_has_phrases(index, ids, q))
    picked = [i for i, pid in enumerate(ids) if pid in keep][offset : offset + k]
    return [ids[i] for i in picked], np.asarray(scores)[picked]


def _lexical(index: SearchIndex, tokens: list[str], mask: np.ndarray | None, depth: int) -> Ranking:
    allowed = None if mask is None else index.to_lexical(mask)
    docs, scores = index.lexical.search(tokens, depth, allowed=allowed)
    return index.lexical.doc_keys.take(docs), scores


def _dense(index: SearchIndex, text: str, mask: np.ndarray | None, depth: int) -> Ranking:
    if index.pgvectors is not None:  # pgvector's HNSW index in the PostgreSQL store
        if mask is not None and not mask.any():
            return [], np.zeros(0)
        allowed = None if mask is None else index.allowed_ids(mask)
        return _hits(index.pgvectors.search(index.embed_query(text), depth, allowed=allowed))
    if index.vectors.size == 0:
        return [], np.zeros(0)
    allowed = None if mask is None else index.to_vectors(mask)
    if allowed is not None and not allowed.any():
        return [], np.zeros(0)
    docs, scores = index.vectors.search(index.embed_query(text), depth, allowed=allowed)
    return index.vectors.keys_of(docs), scores


def _hits(hits: list[tuple[str, float]]) -> Ranking:
    return [h[0] for h in hits], np.array([h[1] for h in hits], dtype=np.float32)


def _browse(index: SearchIndex, mask: np.ndarray | None, k: int, offset: int) -> Ranking:
    """Only filters given: the matching papers, newest first."""
    days = np.asarray(index.facts.days)
    rows = np.arange(len(days)) if mask is None else np.flatnonzero(mask)
    order = rows[np.lexsort((rows, -days[rows]))][offset : offset + k]
    return [index.facts.keys[i] for i in order], days[order].astype(np.float64)


# ----------------------------------------------------------------- similar


def similar(index: SearchIndex, paper_id: str, *, k: int = 10) -> Ranking:
    """Papers closest in meaning to a stored paper (cosine of their embeddings), itself left out."""
    if paper_id not in index.vectors:
        index.store.get(paper_id)  # NotFoundError when the store does not have it either
        raise NotFoundError(f"paper {paper_id!r} is not indexed yet: run `papertide index`")
    doc = index.vectors.doc(paper_id)
    if index.pgvectors is not None:
        hits = index.pgvectors.search(index.vectors.vector(doc), k + 1)
        return _hits([h for h in hits if h[0] != paper_id][:k])
    exclude = np.zeros(index.vectors.size, dtype=bool)
    exclude[doc] = True
    docs, scores = index.vectors.search(index.vectors.vector(doc), k, exclude=exclude)
    return index.vectors.keys_of(docs), scores


# --------------------------------------------------------------- recommend


def recommend(index: SearchIndex, store, user_id: int | None, **options):
    """Personal "for you" recommendations, each with its reason: :func:`papertide.recommend.recommend`
    (options ``k``, ``candidates``, ``seeds``, ``categories``, ``exclude``)."""
    from papertide.recommend import recommend as recommend_for

    return recommend_for(index, store, user_id, **options)
