"""Personal recommendations ("for you"): one small linear model per user, and why each paper is there.

In the spirit of arxiv-sanity's per-tag SVM, every user gets a linear classifier of
"papers like the ones I liked" over features the search index already holds,
x(d) = [e(d); tfidf(d); 1]: the paper's unit sentence embedding, its TF-IDF vector over
the BM25 vocabulary and the intercept (the features and the solver are
``papertide/text/features.py``). Training rows: upvotes and collection items (and seed
papers) as positives, papers marked "not relevant" as negatives, and a sample of other
papers as soft negatives weighing as much as the positives together. The model is
weighted L2-regularised logistic regression, solved over the rows' Gram matrix
(:func:`~papertide.text.features.fit_logistic`).

Every result carries a reason: the liked paper it is closest to when that cosine is
high (``close to “Title”, which you upvoted``), else the words that weighed most in its
score (``for: diffusion, video generation``, adjacent words joined into a phrase).
Without likes, seed papers rank by similarity and chosen categories by upvotes among
their newest papers. The defaults (lambda = 1, both blocks weighing 1) were the best of a
small grid on held-out simulated communities of ``bench/recommend_bench.py``, which
compares them with arxiv-sanity's TF-IDF + linear SVM. The model's core
(:func:`fit_user_model`, :func:`score`, :func:`explain`) needs no store;
:func:`recommend` reads the community's votes, collections, "not relevant" marks and
hidden papers around it.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from itertools import pairwise
from typing import Iterable, Mapping, Sequence

import numpy as np

from papertide.errors import NotFoundError
from papertide.text.features import PaperFeatures, fit_logistic, lexical_gram, weights_at
from papertide.text.lexical import phrase_words

CLOSE = 0.6  # cosine from which the closest liked paper is the reason (MiniLM: same topic, often same task)
MIN_SIMILARITY = 0.2  # a paper less similar than this to every liked one is never recommended
L2 = 1.0  # lambda: the weight of (1/2)|w|^2 against the summed row losses (each positive weighs 1)
BACKGROUND_PER_POSITIVE = 3
BACKGROUND_MIN, BACKGROUND_MAX = 100, 300  # sampled soft negatives
MAX_POSITIVES = 300  # the newest likes used
CATEGORY_NEWEST = 1_000  # cold start by categories: upvotes decide among this many newest papers
REASON_WORDS = 3

Ranking = tuple[list[str], np.ndarray]


@dataclass(frozen=True)
class Recommendation:
    paper_id: str
    score: float
    reason: str


@dataclass(frozen=True)
class UserModel:
    """A fitted model: score(d) = dense . e(d) + sum_t weights[t] tfidf_t(d) + bias."""

    dense: np.ndarray  # (dim,)
    terms: np.ndarray  # int64 term ids of the lexical index, ascending
    weights: np.ndarray  # float64, one per term
    bias: float
    liked: tuple[str, ...]  # the positives it was fitted on, newest first
    iterations: int = 0


# ------------------------------------------------------------------ the model


def fit_user_model(features: PaperFeatures, positives: Sequence[str], negatives: Iterable[str] = (), *,
                   weights: Sequence[float] | None = None, background: int | None = None, seed: int = 0,
                   l2: float = L2, dense_weight: float = 1.0, lexical_weight: float = 1.0) -> UserModel:  # fmt: skip
    """Fit a user's model: ``positives`` (newest first; ``weights`` per positive, default 1),
    ``negatives`` marked not relevant (weight 1 each), ``background`` papers sampled with
    ``seed`` from the rest (default 3 per positive, 100 to 300) weighing as much as the
    positives together. ``dense_weight``/``lexical_weight`` scale the two feature blocks
    (0 leaves one out). Ids not in ``features`` are ignored; ValueError when no positive is known."""
    known = [i for i, pid in enumerate(positives) if pid in features.row_of][:MAX_POSITIVES]
    if not known:
        raise ValueError("none of the positive papers is in the index")
    pos = features.rows(positives[i] for i in known)
    w_pos = np.ones(len(pos)) if weights is None else np.asarray([weights[i] for i in known], dtype=np.float64)
    taken = set(pos.tolist())
    neg = np.array([r for r in features.rows(negatives).tolist() if r not in taken], dtype=np.int64)
    taken.update(neg.tolist())
    if background is None:
        background = min(max(BACKGROUND_PER_POSITIVE * len(pos), BACKGROUND_MIN), BACKGROUND_MAX)
    bg = _sample(len(features), taken, background, seed)
    rows = np.concatenate([pos, neg, bg])
    y = np.concatenate([np.ones(len(pos)), -np.ones(len(neg) + len(bg))])
    c = np.concatenate([w_pos, np.ones(len(neg)), np.full(len(bg), w_pos.sum() / max(len(bg), 1))])
    dense = features.dense(rows)
    block = features.lexical_block(rows, keep=False)
    K = np.full((len(rows), len(rows)), 1.0)  # the intercept's feature
    if dense_weight:
        K += dense_weight**2 * (dense @ dense.T)
    if lexical_weight:
        K += lexical_weight**2 * lexical_gram(block, len(rows))
    a, iterations = fit_logistic(K, y, c, l2)
    uniq, local = np.unique(block.terms, return_inverse=True)
    term_w = lexical_weight**2 * np.bincount(local, weights=a[block.row] * block.values, minlength=len(uniq))
    nonzero = term_w != 0
    return UserModel(dense_weight**2 * (dense.T.astype(np.float64) @ a), uniq[nonzero].astype(np.int64),
                     term_w[nonzero], float(a.sum()), tuple(features.keys[r] for r in pos), iterations)  # fmt: skip


def _sample(n: int, taken: set[int], size: int, seed: int) -> np.ndarray:
    """``size`` distinct rows below ``n`` outside ``taken``, drawn with ``seed``, ascending."""
    size = max(0, min(size, n - len(taken)))
    if size == 0:
        return np.zeros(0, dtype=np.int64)
    rng = np.random.default_rng(seed)
    draw = rng.choice(n, size=min(n, size + len(taken)), replace=False)  # at least `size` outside `taken`
    return np.sort(draw[~np.isin(draw, np.fromiter(taken, dtype=np.int64, count=len(taken)))][:size])


# ------------------------------------------------------------------ scoring and reasons


def score(features: PaperFeatures, model: UserModel, candidates: Iterable[str] | None = None, *,
          exclude: Iterable[str] = (), k: int | None = None,
          min_similarity: float = MIN_SIMILARITY) -> Ranking:  # fmt: skip
    """The model's ranking of ``candidates`` (default: every paper) less ``exclude``:
    ``(ids, scores)``, best first, ties by id; ``k`` keeps the best k. Papers whose cosine
    to every liked paper is below ``min_similarity`` are left out, however they score."""
    rows = np.arange(len(features)) if candidates is None else features.rows(candidates)
    banned = features.rows(exclude)
    if len(banned):
        rows = rows[~np.isin(rows, banned)]
    return _score_rows(features, model, rows, k, min_similarity)


def _score_rows(features: PaperFeatures, model: UserModel, rows: np.ndarray, k: int | None,
                min_similarity: float) -> Ranking:  # fmt: skip
    s = model.bias + features.dense_dots(model.dense, rows) + features.lexical_dots(model.terms, model.weights, rows)
    order = np.lexsort((features.key_rank[rows], -s))
    if min_similarity > 0:
        order = _related(features, model, rows, order, k, min_similarity)
    order = order[:k]
    return [features.keys[r] for r in rows[order]], s[order]


def _related(features: PaperFeatures, model: UserModel, rows: np.ndarray, order: np.ndarray, k: int | None,
             floor: float) -> np.ndarray:  # fmt: skip
    """``order`` without the rows whose best cosine to a liked paper is below ``floor``, checked
    best first, chunk by chunk, until ``k`` are kept.

    A linear score puts a paper unlike anything (a lone elliptic-curves paper in a
    language-model index) near the intercept, above the typical papers the background
    pushed down; "for you" should not offer it. Related papers sit above 0.2 with MiniLM.
    """
    liked = features.dense(features.rows(model.liked))
    kept: list[np.ndarray] = []
    step = max(4 * (k or 0), 256)
    for start in range(0, len(order), step):
        part = order[start : start + step]
        best = np.max(features.dense(rows[part]) @ liked.T, axis=1)
        kept.append(part[best >= floor])
        if k is not None and sum(map(len, kept)) >= k:
            break
    return np.concatenate(kept) if kept else order[:0]


def explain(features: PaperFeatures, model: UserModel, ids: Sequence[str], *, titles: Mapping[str, str],
            labels: Mapping[str, str], texts: Mapping[str, str] | None = None) -> list[str]:  # fmt: skip
    """One reason per id: ``close to “Title”, <label>`` naming the closest liked paper when its
    cosine is at least :data:`CLOSE`, else ``for: <the words that weighed most>`` (adjacent
    ones in ``texts[id]`` joined as a phrase), else ``related to “Title”, <label>``.
    ``titles`` and ``labels`` (``which you upvoted``) are those of the liked papers."""
    liked = [p for p in model.liked if p in titles]
    rows = features.rows(ids)
    if len(rows) != len(ids):
        raise ValueError("explain() takes ids that are in the index, once each")
    sims = features.dense(rows) @ features.dense(features.rows(liked)).T if liked else np.zeros((len(ids), 0))
    block = features.lexical_block(rows, keep=False)  # one pass over the postings for all of them
    contrib = weights_at(model.terms, model.weights, block.terms) * block.values
    bounds = np.searchsorted(block.row, np.arange(len(rows) + 1))
    out = []
    for i, pid in enumerate(ids):
        j = int(np.argmax(sims[i])) if liked else -1
        if j >= 0 and sims[i, j] >= CLOSE:
            out.append(f"close to “{_short(titles[liked[j]])}”, {labels.get(liked[j], 'which you liked')}")
            continue
        span = slice(bounds[i], bounds[i + 1])
        words = _fired_words(features, block.terms[span], contrib[span], (texts or {}).get(pid, ""))
        if words:
            out.append("for: " + ", ".join(words))
        elif j >= 0:
            out.append(f"related to “{_short(titles[liked[j]])}”, {labels.get(liked[j], 'which you liked')}")
        else:
            out.append("like the papers you liked")
    return out


def _fired_words(features: PaperFeatures, terms: np.ndarray, contrib: np.ndarray, text: str) -> list[str]:
    """A paper's words of largest positive weight x tf-idf (``contrib``), adjacent ones in
    ``text`` joined as a phrase that counts both."""
    weight: dict[str, float] = {}
    for i in np.argsort(-contrib, kind="stable").tolist():
        if contrib[i] <= 0 or len(weight) == 2 * REASON_WORDS:
            break
        term = features.term(terms[i])
        if len(term) > 1 and not term.isdigit():  # "2" says nothing
            weight[term] = float(contrib[i])
    items = dict(weight)
    for a, b in pairwise(phrase_words(text)):
        if a != b and a in weight and b in weight:
            items[f"{a} {b}"] = max(items.get(f"{a} {b}", 0.0), weight[a] + weight[b])
    picked: list[str] = []
    used: set[str] = set()
    for item in sorted(items, key=lambda t: (-items[t], t)):
        parts = item.split(" ")
        if not used.intersection(parts):
            picked.append(item)
            used.update(parts)
        if len(picked) == REASON_WORDS:
            break
    return picked


def _short(title: str, limit: int = 90) -> str:
    title = " ".join(title.split())
    return title if len(title) <= limit else title[: limit - 1].rstrip() + "…"


# ------------------------------------------------------------------ with a store


def recommend(index, store, user_id: int | None, *, k: int = 20, candidates: Sequence[str] | None = None,
              seeds: Sequence[str] = (), categories: Sequence[str] = (),
              exclude: Iterable[str] = ()) -> list[Recommendation]:  # fmt: skip
    """The ``k`` papers ``user_id`` (None: nobody signed in) is likeliest to want, each with a reason.

    ``candidates`` restricts the choice (a digest period's papers); papers the user
    upvoted, saved, marked not relevant or chose as seeds, hidden papers and ``exclude``
    are never recommended. With likes (or seeds) next to them the user's model ranks;
    with seeds alone, similarity to them; with neither, upvotes among the newest papers
    of ``categories``; with nothing to go on, an empty list. Unknown seed ids raise
    :class:`NotFoundError`.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive integer, not {k!r}")
    for name, value in (("candidates", candidates), ("seeds", seeds), ("categories", categories),
                        ("exclude", exclude)):  # fmt: skip
        if isinstance(value, str):
            raise TypeError(f"{name} must be a list of strings, not the string {value[:40]!r}")
    features = PaperFeatures.of_index(index)
    for s in seeds:
        if s not in features.row_of:
            raise NotFoundError(f"seed paper {s!r} is not in the search index")
    com = store.community
    labels = _liked(com, user_id) if user_id is not None else {}
    negatives = com.not_relevant(user_id) if user_id is not None else set()
    liked = [p for p in labels if p in features.row_of]
    seeds = list(dict.fromkeys(seeds))
    for s in seeds:
        labels.setdefault(s, "which you chose")
    banned = set(labels) | set(negatives) | com.hidden_papers() | set(exclude)
    pool = np.arange(len(features)) if candidates is None else features.rows(candidates)
    pool = pool[~np.isin(pool, features.rows(banned))]
    if len(pool) == 0:
        return []
    if liked:
        positives = list(dict.fromkeys([*liked, *seeds]))
        ids, scores, reasons = _by_model(features, store, user_id, positives, negatives, labels, pool, k)
    elif seeds:
        ids, scores, reasons = _by_seeds(features, store, seeds, labels, pool, categories, k)
    elif categories and features.facts is not None:
        ids, scores, reasons = _by_categories(features, com, pool, categories, k)
    else:
        return []
    return [Recommendation(i, float(s), r) for i, s, r in zip(ids, scores, reasons)]


def _liked(com, user_id: int) -> dict[str, str]:
    """Liked paper -> how (``which you upvoted``), upvotes newest first, then collection items."""
    out = {pid: "which you upvoted" for pid, _ in com.user_votes(user_id)}
    for col in com.collections(user_id):
        for item in reversed(com.items(col.id)):
            out.setdefault(item.paper_id, f"which you saved in “{_short(col.name, 40)}”")
    return out


def _by_model(features, store, user_id, positives, negatives, labels, pool, k) -> tuple[list, np.ndarray, list]:
    seed = zlib.crc32("\0".join([str(user_id), *sorted(positives)]).encode())  # same user and likes: same sample
    model = fit_user_model(features, positives, negatives, seed=seed)
    ids, scores = _score_rows(features, model, pool, k, MIN_SIMILARITY)
    return ids, scores, _reasons(features, store, model, ids, labels)


def _reasons(features, store, model: UserModel, ids: list[str], labels: Mapping[str, str]) -> list[str]:
    papers = store.get_many(list(dict.fromkeys([*model.liked, *ids])))
    titles = {p: papers[p].title for p in model.liked if p in papers}
    texts = {p: f"{papers[p].title}\n{papers[p].abstract}" for p in ids if p in papers}
    return explain(features, model, ids, titles=titles, labels=labels, texts=texts)


def _by_seeds(features, store, seeds, labels, pool, categories, k) -> tuple[list, np.ndarray, list]:
    """Cold start from seed papers: cosine to each seed, standardised over the pool so that a
    seed in a crowded field does not drown one in a sparse field, best seed taken (within
    ``categories`` when any candidate is in them); the reason names that seed."""
    if categories and features.facts is not None:
        inside = pool[features.facts.category_mask(categories)[pool]]
        pool = inside if len(inside) else pool
    seed_vecs = features.dense(features.rows(seeds)).astype(np.float64)
    cos = np.stack([features.dense_dots(v, pool) for v in seed_vecs])
    spread = cos.std(axis=1, keepdims=True)
    z = (cos - cos.mean(axis=1, keepdims=True)) / np.where(spread > 0, spread, 1.0)
    best = z.max(axis=0)
    order = np.lexsort((features.key_rank[pool], -best))[:k]
    ids, scores = [features.keys[r] for r in pool[order]], best[order]
    at = {r: i for i, r in enumerate(pool.tolist())}
    titles = {p: q.title for p, q in store.get_many(seeds).items()}
    reasons = []
    for r in features.rows(ids).tolist():
        j = int(np.argmax(z[:, at[r]]))
        word = "close to" if cos[j, at[r]] >= CLOSE else "related to"
        title = _short(titles.get(seeds[j], seeds[j]))
        reasons.append(f"{word} “{title}”, {labels.get(seeds[j], 'which you chose')}")
    return ids, scores, reasons


def _by_categories(features, com, pool, categories, k) -> tuple[list, np.ndarray, list]:
    """Cold start from categories: the newest papers in them, most upvoted first."""
    facts = features.facts
    rows = pool[facts.category_mask(categories)[pool]]
    if len(rows) == 0:
        return [], np.zeros(0), []
    days = np.asarray(facts.days)
    rows = rows[np.lexsort((features.key_rank[rows], -days[rows]))][:CATEGORY_NEWEST]
    votes = com.votes([features.keys[r] for r in rows])
    v = np.array([votes.get(features.keys[r], 0) for r in rows], dtype=np.float64)
    order = np.lexsort((features.key_rank[rows], -days[rows], -v))[:k]
    ids, reasons = [], []
    for r in rows[order].tolist():
        cats = [facts.categories[c] for c in facts.cat_ids[facts.cat_ptr[r] : facts.cat_ptr[r + 1]]]
        cat = next((w for c in cats for w in categories if _in_category(c, w)), categories[0])
        n = votes.get(features.keys[r], 0)
        ids.append(features.keys[r])
        reasons.append(f"{n} upvote{'s' if n != 1 else ''} in {cat}" if n else f"new in {cat}")
    return ids, v[order], reasons


def _in_category(category: str, wanted: str) -> bool:
    """As the search filter reads ``cat:``: ``cs`` covers ``cs.CL``, letter case aside."""
    c, w = category.lower(), wanted.lower()
    return c == w or c.startswith(w + ".")
