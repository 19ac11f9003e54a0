"""Paper feature vectors for per-user linear models, and the solver that fits one.

A paper's features are x(d) = [e(d); tfidf(d)]: its unit sentence embedding and its
TF-IDF vector over the BM25 vocabulary (sublinear tf of the index's weighted term
frequencies, smooth idf, unit norm), both read from the search indexes, so nothing is
stored twice. :class:`PaperFeatures` serves them in either direction: doc-major rows for
a few papers (a model's training rows, a digest period) and term-major dot products over
the whole index (scoring every paper against a model's terms).

The solver, :func:`fit_logistic`, is weighted L2-regularised logistic regression,

    minimise  F(w) = sum_i c_i ln(1 + exp(-y_i w.x_i)) + (lambda / 2) |w|^2,

whose optimum lies in the span of the training rows, w = sum_i a_i x_i (the representer
theorem). So it is solved over the m row weights ``a`` with the m x m Gram matrix
K = X X^T, by Newton's method (kernel logistic regression's IRLS, Zhu & Hastie 2005):
each step solves (D K + lambda I) delta = g + lambda a with D = diag(c_i p_i (1 - p_i))
by conjugate gradients on its symmetric form, then halves the step until F decreases
enough (Armijo). A few hundred rows make that a few milliseconds a step, whatever the
size of the vocabulary.

Nothing here reads a store; ``papertide/recommend.py`` builds users' models from them.
Features are thread-safe: the web app serves recommendations from several threads, so
:meth:`PaperFeatures.of_index` builds one object per index once, and its lazily built
parts (idf, norms, the cache of doc-major blocks) are guarded by a lock.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence, TypeVar

import numpy as np

from papertide.text.lexical import BM25Index

BLOCK_CACHE = 8  # doc-major lexical blocks kept per feature space (a digest run reuses a period's)

T = TypeVar("T")


@dataclass(frozen=True)
class LexicalBlock:
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
    cold start by categories. Safe to share between threads.
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
        self._lock = threading.RLock()  # the lazy parts below and the block cache
        self._lazy: dict[str, np.ndarray] = {}
        self._blocks: OrderedDict[bytes, LexicalBlock] = OrderedDict()
        self.watermark: object = None  # what of_index() built it from

    @classmethod
    def of_index(cls, index) -> PaperFeatures:
        """The features of a :class:`~papertide.index.SearchIndex`: built once per index object
        (and again when that index has caught up with the store), whichever thread asks first."""
        stamp = (index.watermark, len(index.facts.keys))
        with _FEATURES_LOCK:  # held while building, so concurrent first requests build it once
            cached = _FEATURES.get(index)
            if cached is None or cached.watermark != stamp:
                cached = cls(index.facts.keys, index.vectors, index.lexical, facts=index.facts)
                cached.watermark = stamp
                _FEATURES[index] = cached
            return cached

    def __len__(self) -> int:
        return len(self.keys)

    def _once(self, name: str, build: Callable[[], T]) -> T:
        """``build()``, run by the first thread that asks for ``name`` and kept."""
        value = self._lazy.get(name)
        if value is None:
            with self._lock:
                value = self._lazy.get(name)
                if value is None:
                    value = self._lazy[name] = build()
        return value

    def rows(self, ids: Iterable[str]) -> np.ndarray:
        """Rows of the known ids, in order, duplicates and unknown ids dropped."""
        seen = dict.fromkeys(self.row_of[i] for i in ids if i in self.row_of)
        return np.fromiter(seen, dtype=np.int64, count=len(seen))

    @property
    def key_rank(self) -> np.ndarray:
        """Each row's place in key order: ties in a ranking are broken by paper id."""

        def build() -> np.ndarray:
            rank = np.empty(len(self.keys), dtype=np.int64)
            rank[sorted(range(len(self.keys)), key=self.keys.__getitem__)] = np.arange(len(self.keys))
            return rank

        return self._once("key_rank", build)

    def term(self, term_id: int) -> str:
        return self.lexical.vocab[int(term_id)]

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
    @property
    def idf(self) -> np.ndarray:
        """Smooth idf per term, as scikit-learn's TfidfVectorizer: 1 + ln((1 + N) / (1 + df))."""

        def build() -> np.ndarray:
            df = np.diff(self.lexical.indptr).astype(np.float64)
            return 1.0 + np.log((1.0 + self.lexical.n_docs) / (1.0 + df))

        return self._once("idf", build)

    @property
    def inv_norm(self) -> np.ndarray:
        """1 / ||tfidf(d)|| per lexical document (0 for an empty one)."""
        return self._once("inv_norm", self._inv_norm)

    def _inv_norm(self) -> np.ndarray:
        """Summed term range by term range, a few million postings at a time."""
        lex, sq, idf = self.lexical, np.zeros(self.lexical.n_docs, dtype=np.float64), self.idf
        indptr, step = lex.indptr, 1 << 22
        t, n_terms = 0, len(indptr) - 1
        while t < n_terms:
            end = max(t + 1, int(np.searchsorted(indptr, indptr[t] + step, side="right")) - 1)
            s, e = int(indptr[t]), int(indptr[end])
            v = (1.0 + np.log(lex.tf[s:e])) * np.repeat(idf[t:end], np.diff(indptr[t : end + 1]))
            sq += np.bincount(lex.docs[s:e], weights=v * v, minlength=len(sq))
            t = end
        return np.where(sq > 0, 1.0 / np.sqrt(np.where(sq > 0, sq, 1.0)), 0.0)

    def _tfidf(self, pos: np.ndarray, terms: np.ndarray) -> np.ndarray:
        """The tf-idf values of the postings at ``pos`` (of the terms ``terms``)."""
        lex = self.lexical
        return (1.0 + np.log(lex.tf[pos])) * self.idf[terms] * self.inv_norm[lex.docs[pos]]

    def lexical_block(self, rows: np.ndarray, *, keep: bool = True) -> LexicalBlock:
        """The TF-IDF rows of ``rows`` (doc-major), read off the term-major postings in one pass;
        with ``keep``, the last :data:`BLOCK_CACHE` blocks asked for are kept."""
        key = rows.tobytes()
        with self._lock:
            block = self._blocks.get(key)
            if block is not None:
                self._blocks.move_to_end(key)
                return block
        block = self._build_block(rows)  # outside the lock: threads build different blocks at once
        if keep:
            with self._lock:
                self._blocks[key] = block
                self._blocks.move_to_end(key)
                while len(self._blocks) > BLOCK_CACHE:
                    self._blocks.popitem(last=False)
        return block

    def _build_block(self, rows: np.ndarray) -> LexicalBlock:
        lex = self.lexical
        ldocs = self._ldoc[rows]
        mark = np.full(lex.n_docs, -1, dtype=np.int64)
        mark[ldocs[ldocs >= 0]] = np.flatnonzero(ldocs >= 0)
        pos = np.flatnonzero(mark[lex.docs] >= 0)
        terms = np.searchsorted(lex.indptr, pos, side="right") - 1
        row = mark[lex.docs[pos]]
        order = np.argsort(row, kind="stable")
        pos, terms, row = pos[order], terms[order], row[order]
        return LexicalBlock(row, terms, self._tfidf(pos, terms))

    def lexical_dots(self, terms: np.ndarray, weights: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """``sum_t weights[t] tfidf_t(d)`` for each row; ``terms`` ascending."""
        if len(terms) == 0 or len(rows) == 0:
            return np.zeros(len(rows))
        if len(rows) * 4 < len(self.keys):  # a few papers (a digest period): their rows
            block = self.lexical_block(rows)
            w = weights_at(terms, weights, block.terms)
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


_FEATURES: weakref.WeakKeyDictionary[object, PaperFeatures] = weakref.WeakKeyDictionary()
_FEATURES_LOCK = threading.Lock()


def weights_at(terms: np.ndarray, weights: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """The weight of each of ``wanted`` in (ascending ``terms``, ``weights``); 0 where absent."""
    if len(terms) == 0:
        return np.zeros(len(wanted))
    at = np.minimum(np.searchsorted(terms, wanted), len(terms) - 1)
    return np.where(terms[at] == wanted, weights[at], 0.0)


def lexical_gram(block: LexicalBlock, m: int) -> np.ndarray:
    """K = T T^T for the ``m`` TF-IDF rows of a block: terms in two or more rows as a dense
    product, terms in a single row straight onto the diagonal (their only products)."""
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


def one_blas_thread() -> None:
    """Limit this process's BLAS (OpenBLAS, MKL) to one thread from now on.

    The digest sender and the worker fit and score one user's model after another:
    small matrix products, where BLAS's second thread spins waiting for work instead of
    helping. One thread sends the same digests in the same time on 42% less CPU
    (bench/digest_bench.py --subscribers 2000: 45.0 s / 62.3 CPU-s with OpenBLAS's two
    threads, 46.7 s / 36.0 CPU-s with one). Process-wide and set once, at the start of a
    command: changing it while other threads are inside BLAS is not safe."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")
