"""Personal recommendations ("for you"): one small linear model per user, and why each paper is there.

In the spirit of arxiv-sanity's per-tag SVM, every user gets a linear classifier of
"papers like the ones I liked" over features the search index already holds,
x(d) = [e(d); tfidf(d); 1]: the paper's unit sentence embedding, its TF-IDF vector over
the BM25 vocabulary (sublinear tf of the index's weighted term frequencies, smooth idf,
unit norm) and the intercept. Training rows: upvotes and collection items (and seed
papers) as positives, papers marked "not relevant" as negatives, and a sample of other
papers as soft negatives weighing as much as the positives together. The model is
weighted L2-regularised logistic regression,

    minimise  F(w) = sum_i c_i ln(1 + exp(-y_i w.x_i)) + (lambda / 2) |w|^2,

whose optimum lies in the span of the training rows, w = sum_i a_i x_i (the representer
theorem). So it is solved over the m row weights ``a`` with the m x m Gram matrix
K = X X^T, by Newton's method (kernel logistic regression's IRLS, Zhu & Hastie 2005):
each step solves (D K + lambda I) delta = g + lambda a with D = diag(c_i p_i (1 - p_i))
by conjugate gradients on its symmetric form, then halves the step until F decreases
enough (Armijo). A few hundred rows make that a few milliseconds a step, whatever the
size of the vocabulary.

Every result carries a reason: the liked paper it is closest to when that cosine is
high (``close to “Title”, which you upvoted``), else the words that weighed most in its
score (``for: diffusion, video generation``, adjacent words joined into a phrase).
Without likes, seed papers rank by similarity and chosen categories by upvotes among
their newest papers. The defaults (lambda = 1, both blocks weighing 1) were the best of a
small grid on held-out simulated communities of ``bench/recommend_bench.py``, which
compares them with arxiv-sanity's TF-IDF + linear SVM. The pure core (:class:`PaperFeatures`, :func:`fit_user_model`,
:func:`score`, :func:`explain`) needs no store; :func:`recommend` reads the community's
votes, collections, "not relevant" marks and hidden papers around it.
"""

from __future__ import annotations

import weakref
import zlib
from dataclasses import dataclass
from functools import cached_property
from itertools import pairwise
from typing import Iterable, Mapping, Sequence

import numpy as np

from papertide.errors import NotFoundError
from papertide.text.lexical import BM25Index, phrase_words

CLOSE = 0.6  # cosine from which the closest liked paper is the reason (MiniLM: same topic, often same task)
MIN_SIMILARITY = 0.2  # a paper less similar than this to every liked one is never recommended
L2 = 1.0  # lambda: the weight of (1/2)|w|^2 against the summed row losses (each positive weighs 1)
BACKGROUND_PER_POSITIVE = 3
BACKGROUND_MIN, BACKGROUND_MAX = 100, 300  # sampled soft negatives
MAX_POSITIVES = 300  # the newest likes used
CATEGORY_NEWEST = 1_000  # cold start by categories: upvotes decide among this many newest papers
REASON_WORDS = 3
_BLOCK_CACHE = 8  # doc-major lexical blocks kept per feature space (a digest run reuses a period's)

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


@dataclass(frozen=True)
class _Block:
    """TF-IDF rows of some papers as entries (row, term, value), sorted by row."""

    row: np.ndarray  # the row (place in the rows asked for) of each entry
    terms: np.ndarray  # term id of each entry
    values: np.ndarray  # normalised tf-idf of each entry


# ------------------------------------------------------------------ features


class PaperFeatures:
    """Embeddings and TF-IDF vectors of the papers ``keys`` (rows), read from the search indexes.

    ``vectors`` is a (len(keys), dim) array of embeddings in row order, or a
    :class:`~papertide.text.vectors.VectorIndex` holding them by key. ``facts`` (the
    index's :class:`~papertide.filters.DocFacts`, same keys in the same order) serves
    cold start by categories.
    """

    def __init__(self, keys: Sequence[str], vectors, lexical: BM25Index, *, facts=None) -> None:
        self.keys = list(keys)
        self.facts = facts
        self.row_of = {k: i for i, k in enumerate(self.keys)}
        if isinstance(vectors, np.ndarray):
            mat = np.asarray(vectors, dtype=np.float32)
            if mat.ndim != 2 or len(mat) != len(self.keys):
                raise ValueError(f"vectors must have one row per key: shape ({len(self.keys)}, dim), not {mat.shape}")
            norms = np.linalg.norm(mat, axis=1, keepdims=True)
            self._matrix, self._vindex = mat / np.where(norms > 0, norms, 1), None
            self._vdoc = np.arange(len(self.keys), dtype=np.int64)
            self.dim = mat.shape[1]
        else:
            self._matrix, self._vindex = None, vectors
            self._vdoc = vectors.positions(self.keys)
            self.dim = vectors.dim
        self.lexical = lexical.flush()
        where = {k: i for i, k in enumerate(self.lexical.doc_keys.tolist())}
        self._ldoc = np.array([where.get(k, -1) for k in self.keys], dtype=np.int64)
        self._blocks: dict[bytes, _Block] = {}
        self.watermark: object = None  # what of_index() built it from

    @classmethod
    def of_index(cls, index) -> "PaperFeatures":
        """The features of a :class:`~papertide.index.SearchIndex`, built once per index object."""
        cached = _FEATURES.get(index)
        if cached is None or cached.watermark != (index.watermark, len(index.facts.keys)):
            cached = cls(index.facts.keys, index.vectors, index.lexical, facts=index.facts)
            cached.watermark = (index.watermark, len(index.facts.keys))
            _FEATURES[index] = cached
        return cached

    def __len__(self) -> int:
        return len(self.keys)

    def rows(self, ids: Iterable[str]) -> np.ndarray:
        """Rows of the known ids, in order, duplicates and unknown ids dropped."""
        seen = dict.fromkeys(self.row_of[i] for i in ids if i in self.row_of)
        return np.fromiter(seen, dtype=np.int64, count=len(seen))

    @cached_property
    def key_rank(self) -> np.ndarray:
        """Each row's place in key order: ties in a ranking are broken by paper id."""
        rank = np.empty(len(self.keys), dtype=np.int64)
        rank[sorted(range(len(self.keys)), key=self.keys.__getitem__)] = np.arange(len(self.keys))
        return rank

    # -- dense block -----------------------------------------------------------------
    def dense(self, rows: np.ndarray) -> np.ndarray:
        """(len(rows), dim) unit embeddings; zeros for a paper without one."""
        if self._matrix is not None:
            return self._matrix[rows]
        out = np.zeros((len(rows), self.dim), dtype=np.float32)
        for i, doc in enumerate(self._vdoc[rows].tolist()):
            if doc >= 0:
                out[i] = self._vindex.vector(doc)
        return out

    def dense_dots(self, w: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """``w . e(d)`` for each row."""
        if self._matrix is not None:
            return np.einsum("ij,j->i", self._matrix[rows], w.astype(np.float32), dtype=np.float64)
        out = np.zeros(len(rows), dtype=np.float64)
        norm = float(np.linalg.norm(w))
        docs = self._vdoc[rows]
        valid = docs >= 0
        if norm == 0 or not valid.any():
            return out
        allowed = np.zeros(self._vindex.size, dtype=bool)
        allowed[docs[valid]] = True
        found, cos = self._vindex.search(w, int(allowed.sum()), allowed=allowed, mode="exact")
        by_doc = np.zeros(self._vindex.size, dtype=np.float64)
        by_doc[found] = cos
        out[valid] = by_doc[docs[valid]] * norm
        return out

    # -- lexical block ---------------------------------------------------------------
    @cached_property
    def _idf(self) -> np.ndarray:
        """Smooth idf, as scikit-learn's TfidfVectorizer: 1 + ln((1 + N) / (1 + df))."""
        df = np.diff(self.lexical.indptr).astype(np.float64)
        return 1.0 + np.log((1.0 + self.lexical.n_docs) / (1.0 + df))

    @cached_property
    def _inv_norm(self) -> np.ndarray:
        """1 / ||tfidf(d)|| per lexical document, summed term range by term range."""
        lex, sq = self.lexical, np.zeros(self.lexical.n_docs, dtype=np.float64)
        indptr, step = lex.indptr, 1 << 22
        t, n_terms = 0, len(indptr) - 1
        while t < n_terms:
            end = max(t + 1, int(np.searchsorted(indptr, indptr[t] + step, side="right")) - 1)
            s, e = int(indptr[t]), int(indptr[end])
            v = (1.0 + np.log(lex.tf[s:e])) * np.repeat(self._idf[t:end], np.diff(indptr[t : end + 1]))
            sq += np.bincount(lex.docs[s:e], weights=v * v, minlength=len(sq))
            t = end
        return np.where(sq > 0, 1.0 / np.sqrt(np.where(sq > 0, sq, 1.0)), 0.0)

    def _tfidf(self, pos: np.ndarray, terms: np.ndarray) -> np.ndarray:
        lex = self.lexical
        return (1.0 + np.log(lex.tf[pos])) * self._idf[terms] * self._inv_norm[lex.docs[pos]]

    def lexical_block(self, rows: np.ndarray, *, keep: bool = True) -> _Block:
        """The TF-IDF rows of ``rows`` (doc-major), read off the term-major postings in one pass."""
        key = rows.tobytes()
        if key in self._blocks:
            return self._blocks[key]
        lex = self.lexical
        ldocs = self._ldoc[rows]
        mark = np.full(lex.n_docs, -1, dtype=np.int64)
        mark[ldocs[ldocs >= 0]] = np.flatnonzero(ldocs >= 0)
        pos = np.flatnonzero(mark[lex.docs] >= 0)
        terms = np.searchsorted(lex.indptr, pos, side="right") - 1
        row = mark[lex.docs[pos]]
        order = np.argsort(row, kind="stable")
        pos, terms, row = pos[order], terms[order], row[order]
        block = _Block(row, terms, self._tfidf(pos, terms))
        if keep:
            if len(self._blocks) >= _BLOCK_CACHE:
                self._blocks.pop(next(iter(self._blocks)))
            self._blocks[key] = block
        return block

    def lexical_dots(self, terms: np.ndarray, weights: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """``sum_t weights[t] tfidf_t(d)`` for each row; ``terms`` ascending."""
        if len(terms) == 0 or len(rows) == 0:
            return np.zeros(len(rows))
        if len(rows) * 4 < len(self.keys):  # a few papers (a digest period): their rows
            block = self.lexical_block(rows)
            w = _weights_at(terms, weights, block.terms)
            return np.bincount(block.row, weights=w * block.values, minlength=len(rows))
        lex = self.lexical  # most of the index: the postings of the model's terms
        starts, ends = lex.indptr[terms], lex.indptr[terms + 1]
        lengths = ends - starts
        pos = np.repeat(starts - np.cumsum(lengths) + lengths, lengths) + np.arange(int(lengths.sum()))
        term_of = np.repeat(terms, lengths)
        vals = self._tfidf(pos, term_of) * np.repeat(weights, lengths)
        per_doc = np.bincount(lex.docs[pos], weights=vals, minlength=lex.n_docs)
        ldocs = self._ldoc[rows]
        return np.where(ldocs >= 0, per_doc[np.maximum(ldocs, 0)], 0.0)

    def term(self, term_id: int) -> str:
        return self.lexical.vocab[int(term_id)]


_FEATURES: "weakref.WeakKeyDictionary[object, PaperFeatures]" = weakref.WeakKeyDictionary()


def _weights_at(terms: np.ndarray, weights: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """The weight of each of ``wanted`` in (ascending ``terms``, ``weights``); 0 where absent."""
    if len(terms) == 0:
        return np.zeros(len(wanted))
    at = np.minimum(np.searchsorted(terms, wanted), len(terms) - 1)
    return np.where(terms[at] == wanted, weights[at], 0.0)


# ------------------------------------------------------------------ the solver


def fit_logistic(K: np.ndarray, y: np.ndarray, c: np.ndarray, l2: float, *, max_iter: int = 50,
                 tol: float = 1e-15) -> tuple[np.ndarray, int]:  # fmt: skip
    """Row weights ``a`` minimising sum_i c_i ln(1 + exp(-y_i z_i)) + (l2 / 2) a.K.a, z = K a.

    Newton's method with Armijo backtracking; stops when half the Newton decrement
    (the predicted decrease) falls below ``tol`` times (1 + |F|). Returns (a, steps).
    """
    if l2 <= 0:
        raise ValueError(f"l2 must be > 0, not {l2!r}")
    a, z = np.zeros(len(y)), np.zeros(len(y))

    def objective(a: np.ndarray, z: np.ndarray) -> float:
        return float(c @ np.logaddexp(0.0, -y * z) + 0.5 * l2 * (a @ z))

    f = objective(a, z)
    for step in range(max_iter):
        p = 0.5 * (1.0 + np.tanh(-0.5 * y * z))  # sigma(-y z), without overflow
        r = -c * y * p + l2 * a  # dF/da = K r
        delta = _newton_direction(K, np.sqrt(c * p * (1.0 - p)), l2, r)
        k_delta = _matvec(K, delta)
        decrement = float(r @ k_delta)  # delta' H delta >= 0: the Newton decrement squared
        if decrement / 2 <= tol * (1.0 + abs(f)):
            return a, step
        t = 1.0
        while True:
            a_new, z_new = a - t * delta, z - t * k_delta
            f_new = objective(a_new, z_new)
            if f_new <= f - 1e-4 * t * decrement:
                break
            t /= 2
            if t < 1e-10:  # no decrease left to find in floating point: as good as it gets
                return a, step
        a, z, f = a_new, z_new, f_new
    return a, max_iter


def _matvec(K: np.ndarray, v: np.ndarray) -> np.ndarray:
    """K v in numpy's own loop: OpenBLAS would split it over both cores and wait for a busy one."""
    return np.einsum("ij,j->i", K, v)


def _newton_direction(K: np.ndarray, s: np.ndarray, l2: float, r: np.ndarray) -> np.ndarray:
    """delta with (D K + l2 I) delta = r, D = diag(s^2), as (r - S x) / l2 where x solves the
    symmetric positive definite (S K S + l2 I) x = S K r (push-through identity) by conjugate
    gradients: a few dozen products with K instead of a factorisation."""
    b = s * _matvec(K, r)
    x, res = np.zeros_like(b), b.copy()
    d, rr, goal = res.copy(), float(res @ res), 1e-24 * float(b @ b)
    for _ in range(4 * len(b)):
        if rr <= goal:
            break
        kd = s * _matvec(K, s * d) + l2 * d
        alpha = rr / float(d @ kd)
        x += alpha * d
        res -= alpha * kd
        rr, rr_old = float(res @ res), rr
        d = res + (rr / rr_old) * d
    return (r - s * x) / l2


def _lexical_gram(block: _Block, m: int) -> np.ndarray:
    """K = T T^T for the TF-IDF rows of a block: terms in two or more rows as a dense product,
    terms in a single row straight onto the diagonal (their only products)."""
    uniq, local = np.unique(block.terms, return_inverse=True)
    shared = np.bincount(local, minlength=len(uniq)) >= 2
    col = np.cumsum(shared) - 1
    entry_shared = shared[local]
    dense = np.zeros((m, int(shared.sum())), dtype=np.float32)
    dense[block.row[entry_shared], col[local[entry_shared]]] = block.values[entry_shared]
    K = (dense @ dense.T).astype(np.float64)
    K[np.diag_indices(m)] += np.bincount(block.row[~entry_shared], weights=block.values[~entry_shared] ** 2,
                                         minlength=m)  # fmt: skip
    return K


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
        K += lexical_weight**2 * _lexical_gram(block, len(rows))
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
    contrib = _weights_at(model.terms, model.weights, block.terms) * block.values
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
