"""Paper features and the logistic solver: the solver at its optimum, TF-IDF rows read both
ways from a real BM25 index, embeddings through a vector index, and features shared by
threads (one build per index, the lazy parts and the block cache under a lock)."""

from __future__ import annotations

import gc
import json
import weakref

import numpy as np
import pytest

from together import together

from papertide.filters import DocFacts
from papertide.index import SearchIndex
from papertide.paper import Paper
from papertide.text.features import BLOCK_CACHE, PaperFeatures, fit_logistic, lexical_gram, weights_at
from papertide.text.lexical import BM25Index
from papertide.text.vectors import VectorIndex

# ------------------------------------------------------------------ the solver


def _kkt(X, y, c, l2, a):
    """The primal gradient at w = X^T a: sum_i c_i dl/dz_i x_i + l2 w."""
    z = X @ (X.T @ a)
    p = 1 / (1 + np.exp(y * z))
    return X.T @ (-c * y * p) + l2 * (X.T @ a)


def test_solver_separates_a_separable_toy_problem_at_its_optimum():
    rng = np.random.default_rng(0)
    pos = rng.normal([2, 2], 0.5, (30, 2))
    neg = rng.normal([-2, -1], 0.5, (40, 2))
    X = np.hstack([np.vstack([pos, neg]), np.ones((70, 1))])  # the last column: the intercept
    y = np.r_[np.ones(30), -np.ones(40)]
    c = np.ones(70)
    a, steps = fit_logistic(X @ X.T, y, c, l2=0.1)
    w = X.T @ a
    assert np.all(np.sign(X @ w) == y)  # every training point on its side
    assert np.abs(_kkt(X, y, c, 0.1, a)).max() < 1e-6  # and the gradient vanishes: the optimum
    assert 0 < steps < 30


def test_solver_optimum_with_weights_and_overlap_beats_every_nearby_point():
    rng = np.random.default_rng(1)
    X = np.hstack([rng.normal(0, 1, (80, 5)), np.ones((80, 1))])
    y = np.where(X[:, 0] + rng.normal(0, 1, 80) > 0, 1.0, -1.0)  # overlapping classes
    c = np.where(y > 0, 3.0, 0.5)
    a, _ = fit_logistic(X @ X.T, y, c, l2=1.0)
    assert np.abs(_kkt(X, y, c, 1.0, a)).max() < 1e-6

    def primal(w):
        return c @ np.logaddexp(0, -y * (X @ w)) + 0.5 * np.dot(w, w)

    w = X.T @ a
    for d in rng.normal(0, 1e-2, (20, 6)):
        assert primal(w + d) > primal(w)


def test_solver_refuses_no_regularisation():
    with pytest.raises(ValueError, match="l2"):
        fit_logistic(np.eye(2), np.array([1.0, -1.0]), np.ones(2), l2=0)


# ------------------------------------------------------------------ features

TEXTS = ["diffusion models for video generation", "video generation with latent diffusion",
         "quantum error correction with surface codes", "decoding surface codes for quantum memories",
         "a survey of graph neural networks", "protein folding with attention", "bird song recognition"]  # fmt: skip


def small(*, n: int = len(TEXTS), dim: int = 8, seed: int = 0) -> tuple[list[str], np.ndarray, BM25Index]:
    """``n`` papers (the texts above, then random words): keys, random vectors, a BM25 index."""
    rng = np.random.default_rng(seed)
    words = [f"w{i}" for i in range(500)]
    texts = [TEXTS[i] if i < len(TEXTS) else " ".join(rng.choice(words, 30)) for i in range(n)]
    keys = [f"p{i:05d}" for i in range(n)]
    lex = BM25Index.build([(k, t, f"We study {t}.", []) for k, t in zip(keys, texts)])
    return keys, rng.normal(size=(n, dim)).astype(np.float32), lex


def test_tfidf_rows_are_unit_and_both_scoring_paths_agree():
    keys, vec, lex = small()
    f = PaperFeatures(keys, vec, lex)
    rows = np.arange(len(f))
    block = f.lexical_block(rows)
    norms = np.sqrt(np.bincount(block.row, weights=block.values**2))
    assert np.allclose(norms, 1.0)
    terms = np.unique(block.terms)
    weights = np.linspace(-1, 1, len(terms))
    few = f.lexical_dots(terms, weights, rows[:1])  # the doc-major path (a few papers)
    every = f.lexical_dots(terms, weights, rows)  # the term-major path (most of the index)
    assert np.allclose(few, every[:1])
    assert np.allclose(every, [weights_at(terms, weights, block.terms[block.row == r]) @ block.values[block.row == r]
                               for r in rows])  # fmt: skip


def test_tfidf_matches_scikit_learn_on_the_same_counts():
    """Same recipe as TfidfVectorizer(sublinear_tf=True, smooth_idf=True, norm="l2") over the
    index's own term frequencies: the same rows."""
    text = pytest.importorskip("sklearn.feature_extraction.text", reason="scikit-learn (the bench extra)")
    from scipy.sparse import csr_matrix

    keys, vec, lex = small()
    f = PaperFeatures(keys, vec, lex)
    lex = f.lexical
    terms = np.searchsorted(lex.indptr, np.arange(len(lex.docs)), side="right") - 1
    counts = csr_matrix((lex.tf, (lex.docs, terms)), shape=(lex.n_docs, len(lex.indptr) - 1))
    expected = text.TfidfTransformer(sublinear_tf=True).fit_transform(counts).toarray()
    block = f.lexical_block(np.arange(len(f)))
    got = np.zeros_like(expected)
    got[block.row, block.terms] = block.values
    assert np.allclose(got, expected)


def test_lexical_gram_is_the_product_of_the_rows():
    keys, vec, lex = small()
    f = PaperFeatures(keys, vec, lex)
    rows = np.array([4, 0, 2, 1])
    block = f.lexical_block(rows, keep=False)
    T = np.zeros((len(rows), len(f.lexical.indptr) - 1))
    T[block.row, block.terms] = block.values
    assert np.allclose(lexical_gram(block, len(rows)), T @ T.T)
    assert np.allclose(np.diag(lexical_gram(block, len(rows))), 1.0)


def test_features_read_through_a_vector_index_by_key():
    keys, vec, lex = small()
    f = PaperFeatures(keys, vec, lex)
    shuffled = list(reversed(keys))
    g = PaperFeatures(keys, VectorIndex.build(shuffled, f.dense(f.rows(shuffled))), lex)
    rows = np.arange(len(f))
    assert np.allclose(g.dense(rows), f.dense(rows), atol=1e-6)
    w = np.random.default_rng(0).normal(size=8)
    assert np.allclose(g.dense_dots(w, rows), f.dense_dots(w, rows), atol=1e-5)


def test_rows_and_bad_vectors():
    keys, vec, lex = small()
    f = PaperFeatures(keys, vec, lex)
    assert f.rows(["p00003", "nope", "p00001", "p00003"]).tolist() == [3, 1]
    assert f.key_rank.tolist() == list(range(len(keys)))
    with pytest.raises(ValueError, match="one row per key"):
        PaperFeatures(keys, vec[:3], lex)


# ------------------------------------------------------------------ one per index, shared by threads


def search_index(n: int, *, seed: int = 0) -> SearchIndex:
    """A real SearchIndex over ``n`` papers, built in memory (no store needed for features)."""
    keys, vec, lex = small(n=n, dim=16, seed=seed)
    papers = [Paper(id=k, title=k, categories=["cs.LG"], submitted="2024-03-17") for k in keys]
    index = SearchIndex(lex, VectorIndex.build(keys, vec), DocFacts.build(papers), store=None)
    index.watermark = 1
    return index


def test_one_feature_space_per_index_until_it_catches_up_and_none_kept_after_it():
    index = search_index(40)
    f = PaperFeatures.of_index(index)
    assert PaperFeatures.of_index(index) is f and f.facts is index.facts and len(f) == 40
    assert PaperFeatures.of_index(search_index(40)) is not f  # another index object: its own
    index.watermark = 2  # the index caught up with the store
    g = PaperFeatures.of_index(index)
    assert g is not f and PaperFeatures.of_index(index) is g
    gone = weakref.ref(g)
    del index, f, g
    gc.collect()
    assert gone() is None  # a replaced index does not keep its features alive


def test_threads_asking_at_once_share_one_build_and_its_lazy_parts():
    for attempt in range(5):
        index = search_index(3_000, seed=attempt)
        built = together(8, lambda i, index=index: PaperFeatures.of_index(index))
        assert all(f is built[0] for f in built)
        f = built[0]
        norms = together(8, lambda i, f=f: f.inv_norm if i % 2 else f.key_rank)
        assert all(x is norms[1] for x in norms[1::2]) and all(x is norms[0] for x in norms[0::2])


def test_threads_share_the_block_cache_and_get_the_blocks_a_single_thread_gets():
    keys, vec, lex = small(n=2_000)
    f = PaperFeatures(keys, vec, lex)
    rng = np.random.default_rng(5)
    sets = [np.sort(rng.choice(len(keys), 50, replace=False)) for _ in range(3 * BLOCK_CACHE)]
    expected = [PaperFeatures(keys, vec, lex).lexical_block(r, keep=False) for r in sets]
    terms = np.unique(np.concatenate([b.terms for b in expected]))
    weights = rng.normal(size=len(terms))

    def work(i: int) -> bool:
        ok = True
        for j in np.random.default_rng(i).permutation(len(sets)).tolist() if i % 2 else range(len(sets)):  # evicting as they go
            got = f.lexical_block(sets[j])
            ok &= all(np.array_equal(getattr(got, a), getattr(expected[j], a)) for a in ("row", "terms", "values"))
            dots = f.lexical_dots(terms, weights, sets[j])
            ok &= np.allclose(dots, np.bincount(expected[j].row, weights=weights_at(terms, weights, expected[j].terms)
                                                * expected[j].values, minlength=50))  # fmt: skip
        return ok

    assert all(together(8, work))
    last = f.lexical_block(sets[0])
    assert f.lexical_block(sets[0]) is last  # kept
    for r in sets[1 : BLOCK_CACHE + 1]:
        f.lexical_block(r)
    assert f.lexical_block(sets[0]) is not last  # pushed out by BLOCK_CACHE newer ones


def test_one_blas_thread_limits_the_process_blas_to_one_thread():
    import subprocess
    import sys

    code = ("import numpy, json; from threadpoolctl import threadpool_info; "
            "from papertide.text.features import one_blas_thread; one_blas_thread(); "
            "print(json.dumps([p['num_threads'] for p in threadpool_info() if p['user_api'] == 'blas']))")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) and set(json.loads(done.stdout)) == {1}
