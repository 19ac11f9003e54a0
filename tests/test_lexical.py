"""Tests for papertide.text.lexical: BM25 scores against bm25s and by hand, filters, storage, updates."""

from __future__ import annotations

import json
import math
import os
from importlib.resources import files

import numpy as np
import pytest
from papertide.errors import ConfigError, FormatError, NotFoundError
from papertide.paper import Paper
from papertide.text.lexical import BM25Index, BM25Params, paper_doc, tokenize, tokenize_query

def demo_docs() -> list[tuple[str, str, str, list[str]]]:
    lines = (files("papertide") / "data" / "demo_papers.jsonl").read_text(encoding="utf-8").splitlines()
    out = []
    for i, line in enumerate(lines):
        d = json.loads(line)
        out.append((f"demo:{i:02d}", d["title"], d["abstract"], [f"Author {chr(65 + i % 7)}. Person{i % 5}"]))
    return out


def random_docs(n: int, seed: int = 0) -> list[tuple[str, str, str, list[str]]]:
    """Documents over a small Zipf-like vocabulary: common words (dense path) and rare ones."""
    rng = np.random.default_rng(seed)
    vocab = [f"w{i}" for i in range(400)]
    p = 1.0 / np.arange(1, 401)
    p /= p.sum()
    docs = []
    for i in range(n):
        title = " ".join(rng.choice(vocab, rng.integers(0, 6), p=p))
        abstract = " ".join(rng.choice(vocab, rng.integers(0, 40), p=p))
        authors = [f"name{j}" for j in rng.integers(0, 30, rng.integers(0, 3))]
        docs.append((f"k{(i * 7919) % 100003:06d}", title, abstract, authors))
    return docs


def keyed(index: BM25Index, result) -> tuple[list[str], np.ndarray]:
    docs, scores = result
    return index.doc_keys.take(docs), scores


# ------------------------------------------------------------------ parameters


@pytest.mark.parametrize(
    "kwargs",
    [{"k1": -0.1}, {"k1": 101}, {"b": 1.5}, {"b": -0.1}, {"k1": float("nan")}, {"title": float("inf")},
     {"title": 0, "abstract": 0, "authors": 0}, {"abstract": "1"}, {"authors": 1e-9}],
)  # fmt: skip
def test_params_validated(kwargs):
    with pytest.raises(ConfigError):
        BM25Params(**kwargs)


def test_default_params():
    p = BM25Params()
    assert (p.k1, p.b, p.title, p.abstract, p.authors) == (1.2, 0.75, 2.0, 1.0, 1.0)


# ------------------------------------------------------------------ scores


def test_hand_computed_three_documents():
    docs = [
        ("a", "", "neural retrieval neural", []),
        ("b", "", "retrieval models", []),
        ("c", "", "graph", []),
    ]
    index = BM25Index.build(docs, BM25Params(k1=1.2, b=0.75))
    avgdl = (3 + 2 + 1) / 3

    def s(tf, dl, df):
        return math.log(1 + (3 - df + 0.5) / (df + 0.5)) * tf / (tf + 1.2 * (1 - 0.75 + 0.75 * dl / avgdl))

    ids, scores = index.search(["neural", "retrieval"], k=10)
    assert index.doc_keys.take(ids) == ["a", "b"]
    assert scores == pytest.approx([s(2, 3, 1) + s(1, 3, 2), s(1, 2, 2)], rel=1e-6)
    assert index.avgdl == pytest.approx(avgdl)


def _compare_with_bm25s(index: BM25Index, corpus_tokens: list[list[str]], queries: list[list[str]]) -> int:
    bm25s = pytest.importorskip("bm25s")  # the reference implementation (test extra)
    ref = bm25s.BM25(k1=index.params.k1, b=index.params.b, method="lucene")
    ref.index(corpus_tokens, show_progress=False)
    checked = 0
    for q in queries:
        ids, scores = index.search(q, k=10)
        full = ref.get_scores(q)
        expected = np.sort(full[full > 0])[::-1][:10]
        assert len(ids) == len(expected)
        np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(full[ids], scores, rtol=1e-5, atol=1e-7)  # the same documents
        checked += len(ids)
    return checked


def test_scores_match_bm25s_single_field():
    docs = [(k, "", abstract, []) for k, _, abstract, _ in demo_docs()]
    index = BM25Index.build(docs, BM25Params(title=1, authors=1))
    corpus = [tokenize(d[2]) for d in docs]
    vocab = index.vocab.tolist()
    rng = np.random.default_rng(3)
    queries = [list(rng.choice(vocab, rng.integers(1, 6))) for _ in range(60)]
    queries += [tokenize("language models"), tokenize("speech tokens speech"), tokenize("efficient attention")]
    assert _compare_with_bm25s(index, corpus, queries) > 300


def test_field_weights_equal_repeating_the_field():
    """BM25F's construction: a title of weight 2 scores as the title written twice."""
    docs = random_docs(300, seed=5)
    index = BM25Index.build(docs, BM25Params(k1=0.9, b=0.4, title=2, abstract=1, authors=1))
    corpus = [tokenize(t) * 2 + tokenize(a) + tokenize("; ".join(au)) for _, t, a, au in docs]
    queries = [[f"w{i}"] for i in range(0, 60, 3)] + [["w0", "w7", "w150"], ["name3", "w1"], ["w399", "w2", "w2"]]
    assert _compare_with_bm25s(index, corpus, queries) > 150


def test_sparse_and_dense_paths_agree():
    docs = random_docs(2000, seed=1)
    index = BM25Index.build(docs)
    common, rare = "w0", "w300"
    assert len(index.term_docs(common)) * 16 >= len(index) > len(index.term_docs(rare)) * 16
    both = index.search([rare, "w301", common], k=2000)
    rare_only = index.search([rare, "w301"], k=2000)
    for d, score in zip(*rare_only):  # documents matching only rare terms: same score either way
        if d not in set(index.term_docs(common).tolist()):
            assert score == both[1][np.flatnonzero(both[0] == d)[0]]


def test_top_k_of_many_candidates_is_the_head_of_the_full_ranking():
    """With 12,000 matches the selection samples a threshold first; it must not change the answer."""
    docs = [(f"d{(i * 37) % 12000:05d}", f"t{i % 13}", "common " + f"u{i % 97} " * (1 + i % 5) + "x " * (i % 11), [])
            for i in range(12000)]  # fmt: skip
    index = BM25Index.build(docs)
    for q in (["common"], ["common", "u5"], ["u3", "t2", "common"]):
        full_ids, full_scores = index.search(q, k=len(docs))
        assert list(full_scores) == sorted(full_scores, reverse=True)
        for k in (1, 10, 100):
            ids, scores = index.search(q, k=k)
            assert np.array_equal(ids, full_ids[:k]) and np.array_equal(scores, full_scores[:k])


def test_ties_are_broken_by_key_whatever_the_order():
    docs = [(k, "same title", "same words here", []) for k in ["m", "b", "z", "a"]]
    for order in (docs, docs[::-1]):
        index = BM25Index.build(order)
        ids, scores = index.search(["words"], k=10)
        assert index.doc_keys.take(ids) == ["a", "b", "m", "z"]
        assert len(set(scores.tolist())) == 1
        assert index.doc_keys.take(index.search(["words"], k=2)[0]) == ["a", "b"]


# ------------------------------------------------------------------ filters and lookups


@pytest.fixture(scope="module")
def small():
    return BM25Index.build(
        [
            ("p1", "Neural retrieval", "dense neural retrieval with transformers", ["Ana Silva"]),
            ("p2", "Sparse retrieval", "BM25 is a strong sparse retrieval baseline", ["Bo Kim"]),
            ("p3", "Graph networks", "neural message passing on graphs", ["Ana Silva", "Carl Ng"]),
            ("p4", "Empty", "", []),
        ]
    )


def test_required_excluded_allowed(small):
    assert keyed(small, small.search(["retrieval"]))[0] == ["p1", "p2"]
    assert keyed(small, small.search(["retrieval", "neural"], required=["neural"]))[0] == ["p1", "p3"]
    assert keyed(small, small.search(["retrieval"], excluded=["sparse"]))[0] == ["p1"]
    allowed = np.array([False, True, True, True])
    assert keyed(small, small.search(["retrieval", "neural"], allowed=allowed))[0] == ["p2", "p3"]
    assert keyed(small, small.search(["silva"]))[0] == ["p1", "p3"]  # author names are words
    assert small.search(["retrieval"], required=["unknownword"])[0].size == 0
    assert keyed(small, small.search(["retrieval"], excluded=["unknownword"]))[0] == ["p1", "p2"]


def test_filters_agree_with_sets_on_many_and_few_candidates():
    index = BM25Index.build(random_docs(1500, seed=9))
    for query, must, never in ((["w0", "w1"], "w2", "w3"), (["w390", "w391", "w5"], "w5", "w0"), (["w390", "w391", "w392"], "w391", "w1")):
        everything = index.search(query, k=len(index))[0].tolist()
        with_must = set(index.term_docs(must).tolist())
        with_never = set(index.term_docs(never).tolist())
        ids = index.search(query, k=len(index), required=[must], excluded=[never])[0].tolist()
        assert ids == [d for d in everything if d in with_must and d not in with_never]


def test_search_edge_cases(small):
    assert small.search([], k=5)[0].size == 0
    assert small.search(["nothing", "here"])[0].size == 0
    assert small.search(["retrieval"], k=0)[0].size == 0
    assert len(small.search(["retrieval", "neural", "graph"], k=100)[0]) == 3
    ids, scores = small.search_text("Neural Retrieval!")
    assert ids.dtype == np.int64 and scores.dtype == np.float32 and list(scores) == sorted(scores, reverse=True)
    with pytest.raises(ValueError):
        small.search(["x"], k=-1)
    with pytest.raises(TypeError):
        small.search("retrieval")
    with pytest.raises(ValueError):
        small.search(["retrieval"], allowed=np.ones(3, dtype=bool))
    with pytest.raises(ValueError):
        small.search(["retrieval"], allowed=np.ones(4, dtype=np.int8))


def test_lookups(small):
    assert len(small) == 4 and list(small.doc_keys) == ["p1", "p2", "p3", "p4"]
    assert small.doc_number("p3") == 2
    with pytest.raises(NotFoundError):
        small.doc_number("p9")
    docs = small.term_docs("neural")
    assert docs.tolist() == [0, 2] and not docs.flags.writeable
    assert small.term_docs("absent").size == 0
    assert small.vocab.tolist() == sorted(small.vocab.tolist())


def test_paper_doc_and_progress():
    paper = Paper(id="2401.17377", title="Infini-gram", abstract="n-gram models", authors=["Jiacheng Liu"])
    assert paper_doc(paper) == ("2401.17377", "Infini-gram", "n-gram models", ["Jiacheng Liu"])
    seen: list[int] = []
    index = BM25Index.build([paper_doc(paper)] + random_docs(2500), progress=seen.append)
    assert sum(seen) == 2501
    assert keyed(index, index.search(tokenize_query("infinigram liu")))[0][0] == "2401.17377"


def test_bad_documents_rejected_and_repeated_keys_keep_the_last():
    with pytest.raises(ValueError):
        BM25Index.build([("", "t", "a", [])])
    index = BM25Index.build([("a", "t", "first", []), ("b", "t", "other", []), ("a", "t", "second", [])])
    assert list(index.doc_keys) == ["b", "a"] and index.search(["first"])[0].size == 0
    assert keyed(index, index.search(["second"]))[0] == ["a"]


# ------------------------------------------------------------------ storage


def test_save_load_round_trip(tmp_path, small):
    small.watermark = 17
    path = small.save(tmp_path / "lexical")
    assert BM25Index.exists(path)
    params = json.loads((path / "params.json").read_text())
    assert params["watermark"] == 17 and params["params"]["title"] == 2.0 and params["n_docs"] == 4
    assert not any(p.suffix == ".pkl" for p in path.iterdir())
    for mmap in (True, False):
        loaded = BM25Index.load(path, mmap=mmap)
        assert isinstance(loaded.impacts, np.memmap) == mmap
        assert loaded.watermark == 17 and loaded.params == small.params and loaded.avgdl == small.avgdl
        for q in (["retrieval"], ["neural", "silva"], ["graph", "sparse", "bm25"]):
            a, b = small.search(q), loaded.search(q)
            assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
        assert loaded.doc_number("p2") == 1


def test_save_replaces_atomically(tmp_path, small):
    target = tmp_path / "lexical"
    small.save(target)
    other = BM25Index.build([("x", "only", "one document", [])])
    other.save(target)
    assert len(BM25Index.load(target)) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lexical"]  # no temp or old directories left


def test_load_errors(tmp_path, small):
    with pytest.raises(FormatError):
        BM25Index.load(tmp_path / "missing")
    assert not BM25Index.exists(tmp_path / "missing")
    path = small.save(tmp_path / "lexical")
    (path / "docs.npy").write_bytes(b"garbage")
    with pytest.raises(FormatError):
        BM25Index.load(path)
    path = small.save(tmp_path / "lexical")
    meta = json.loads((path / "params.json").read_text())
    (path / "params.json").write_text(json.dumps(meta | {"format_version": 99}))
    with pytest.raises(FormatError):
        BM25Index.load(path)
    (path / "params.json").write_text("{not json")
    with pytest.raises(FormatError):
        BM25Index.load(path)


# ------------------------------------------------------------------ updates


def _assert_same(a: BM25Index, b: BM25Index, queries) -> None:
    assert len(a) == len(b) and a.n_terms == b.n_terms and a.avgdl == b.avgdl
    assert a.vocab.tolist() == b.vocab.tolist()
    for q in queries:
        ka, sa = keyed(a, a.search(q, k=50))
        kb, sb = keyed(b, b.search(q, k=50))
        assert ka == kb and np.array_equal(sa, sb), q


def test_update_equals_rebuild(tmp_path):
    docs = random_docs(600, seed=2)
    index = BM25Index.build(docs[:500])
    index.save(tmp_path / "lex")
    index = BM25Index.load(tmp_path / "lex")  # read-only memory maps: update must not write into them
    changed = [(k, "w399 " + t, a, au) for k, t, a, au in docs[100:150]]
    removed = [d[0] for d in docs[300:340]] + ["never-indexed"]
    result = index.update(changed + docs[500:], removed)
    assert (result.added, result.replaced, result.removed) == (100, 50, 40)
    final = {d[0]: d for d in docs[:500]}
    final.update({d[0]: d for d in changed + docs[500:]})
    for k in removed:
        final.pop(k, None)
    rebuilt = BM25Index.build(sorted(final.values()))  # another order: results must not care
    queries = [[f"w{i}"] for i in range(0, 400, 7)] + [["w399", "w0"], ["name1", "w3", "w3"], ["w250", "w251"]]
    _assert_same(index, rebuilt, queries)
    index.save(tmp_path / "lex")
    _assert_same(BM25Index.load(tmp_path / "lex"), rebuilt, queries)


def test_update_vocabulary_grows_and_shrinks():
    index = BM25Index.build([("a", "alpha", "shared words", []), ("b", "beta", "shared", [])])
    index.update([("c", "gamma", "fresh words", [])], removed=["a"])
    rebuilt = BM25Index.build([("b", "beta", "shared", []), ("c", "gamma", "fresh words", [])])
    assert index.vocab.tolist() == rebuilt.vocab.tolist() == ["beta", "fresh", "gamma", "shared", "words"]
    _assert_same(index, rebuilt, [["alpha"], ["shared"], ["words", "fresh"], ["gamma", "beta"]])
    assert index.update() == (0, 0, 0)
    index.update(removed=["b", "c"])
    assert len(index) == 0 and index.n_terms == 0 and index.search(["shared"])[0].size == 0
    index.update([("d", "delta", "", [])])
    assert keyed(index, index.search(["delta"]))[0] == ["d"]


def test_update_rejects_bad_arguments():
    index = BM25Index.build([("a", "x", "y", [])])
    with pytest.raises(TypeError):
        index.update(removed="a")
    with pytest.raises(ValueError):
        index.update([(None, "t", "", [])])
    with pytest.raises(TypeError):
        index.update([("b", "title", 42, [])])  # nothing half-added
    index.update([("c", "title", "text", "Ann Author")])  # authors as one string
    assert len(index) == 2 and keyed(index, index.search(["author"]))[0] == ["c"]


def test_many_small_updates_equal_one_build():
    """Updates only tokenize; the merge happens once, when the index is read."""
    docs = random_docs(400, seed=4)
    index = BM25Index.empty()
    counts = [index.update(docs[i : i + 50]) for i in range(0, 400, 50)]
    assert sum(c.added for c in counts) == 400 and index._pending is not None
    assert index.update(docs[:10], removed=[docs[20][0], docs[20][0], "nope"]) == (0, 10, 1)
    assert index.update([docs[30]], removed=[docs[30][0]]) == (0, 1, 1)  # added back, then removed
    expected = BM25Index.build(docs[10:20] + docs[21:30] + docs[31:] + docs[:10])
    _assert_same(index, expected, [[f"w{i}"] for i in range(0, 400, 9)] + [["w1", "name2"]])
    assert index._pending is None


def test_empty_index(tmp_path):
    index = BM25Index.build([])
    assert len(index) == 0 and index.search(["x"])[0].size == 0
    loaded = BM25Index.load(index.save(tmp_path / "empty"))
    assert len(loaded) == 0 and loaded.search(["x"])[0].size == 0
    loaded.update([("a", "first", "paper", [])])
    assert keyed(loaded, loaded.search(["paper"]))[0] == ["a"]
    assert os.listdir(tmp_path) == ["empty"]
