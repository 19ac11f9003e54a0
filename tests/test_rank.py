"""Rankers on real text: modes, filters, phrases, exclusions, ids, similar papers, quality."""

from __future__ import annotations

import json

import numpy as np
import pytest

from papertide.evaluation import evaluate
from papertide.index import SearchIndex, update_index
from papertide.ingest import ingest, ingest_demo
from papertide.paper import Paper
from papertide.rank import linear, rrf, search, similar
from papertide.store import open_store

from conftest import FIXTURES

EXTRA = [
    Paper(id="2403.00001", title="In-context learning in small transformers", abstract="We study in-context learning.",
          authors=["Jane Q. Doe", "Ming Li"], categories=["cs.CL", "cs.LG"], submitted="2024-03-01"),
    Paper(id="2303.00002", title="Learning in context: a survey", abstract="Context helps learning in many ways.",
          authors=["Ming Li"], categories=["cs.LG"], submitted="2023-03-02"),
    Paper(id="2203.00003", title="Quantum error correction codes", abstract="Surface codes and learning decoders.",
          authors=["John Smith"], categories=["quant-ph"], submitted="2022-03-03"),
]  # fmt: skip


@pytest.fixture(scope="module")
def index(tmp_path_factory, embedder, demo_embeddings):
    import shutil

    from papertide.config import load_config

    config = load_config(tmp_path_factory.mktemp("rank-home"), env={})
    shutil.copytree(demo_embeddings, config.home / "embeddings")
    store = open_store(config)
    ingest_demo(store)
    ingest(store, [p.normalised() for p in EXTRA])
    update_index(store, config, embedder=embedder)
    yield SearchIndex.open(config, store, embedder=embedder)
    store.close()


def titles(index, ids):
    papers = index.store.get_many(ids)
    return [papers[i].title for i in ids]


def test_meaning_finds_infini_gram_in_every_semantic_mode(index):
    for mode in ("hybrid", "dense"):
        ids, scores = search(index, "n-gram language models at trillion-token scale", mode=mode, k=3)
        assert titles(index, ids)[0].startswith("Infini-gram"), mode
        assert list(scores) == sorted(scores, reverse=True)


def test_filters_apply_to_every_mode(index):
    for mode in ("hybrid", "lexical", "dense"):
        ids, _ = search(index, '"in-context learning" cat:cs.CL since:2024', mode=mode, k=10)
        assert ids == ["2403.00001"], mode
        ids, _ = search(index, "learning cat:cs", mode=mode, k=10)
        assert set(ids) == {"2403.00001", "2303.00002"}, mode
        ids, _ = search(index, "learning author:Smith", mode=mode, k=10)
        assert ids == ["2203.00003"], mode
        ids, _ = search(index, "learning year:2023", mode=mode, k=10)
        assert ids == ["2303.00002"], mode


def test_exact_phrase_and_exclusion(index):
    ids, _ = search(index, '"learning in context"', mode="lexical", k=10)
    assert ids == ["2303.00002"]
    ids, _ = search(index, "in-context learning -survey", k=50)
    assert "2303.00002" not in ids and "2403.00001" in ids


def test_filters_alone_browse_newest_first(index):
    ids, _ = search(index, "cat:cs", k=10)
    assert ids == ["2403.00001", "2303.00002"]


def test_pasted_id_goes_straight_to_the_paper(index):
    assert search(index, "https://arxiv.org/abs/2203.00003v2")[0] == ["2203.00003"]
    assert search(index, "arXiv:2401.00001")[0] == []  # a real id form, but not stored


@pytest.mark.parametrize("hostile", [
    "", '"unbalanced', "x" * 10_000, "\x00\x01 control", "'; DROP TABLE papers; --", "title:foo OR bar*",
    "NEAR(a b) AND (c", "since:2025 until:2020", "cat:", "-", '""', "author:", "since:2024-13",
])  # fmt: skip
def test_hostile_queries_never_crash(index, hostile):
    from papertide.query import QueryError

    try:
        ids, scores = search(index, hostile, k=5)
    except QueryError as e:
        assert str(e)
    else:
        assert len(ids) == len(scores) <= 5


def test_bad_mode_and_paging(index):
    with pytest.raises(ValueError, match="mode must be one of hybrid, lexical, dense"):
        search(index, "x", mode="fuzzy")
    all_ids, _ = search(index, "language models", k=20)
    page2, _ = search(index, "language models", k=5, offset=5)
    assert page2 == all_ids[5:10]


def test_similar_papers(index):
    infini = next(i for i in index.facts.keys if index.store.get(i).title.startswith("Infini-gram"))
    ids, scores = similar(index, infini, k=5)
    assert infini not in ids and len(ids) == 5 and np.all(np.diff(scores) <= 1e-6)
    ids, _ = similar(index, "2403.00001", k=1)
    assert ids == ["2303.00002"]


def test_fusion_hand_computed():
    ids, scores = rrf([["a", "b"], ["b", "c"]], k=60)
    assert ids == ["b", "a", "c"]
    assert scores[0] == pytest.approx(1 / 62 + 1 / 61)
    lexical = (["a", "b", "c"], np.array([2.0, 1.0, 0.0]))  # min-max: 1, .5, 0
    dense = (["b", "c"], np.array([0.9, 0.5]))  # min-max: 1, 0
    ids, scores = linear(lexical, dense, alpha=0.5)
    assert ids == ["b", "a", "c"] and scores.tolist() == pytest.approx([0.75, 0.5, 0.0])


def test_hybrid_beats_lexical_and_dense_on_the_labelled_set(index):
    labelled = json.loads((FIXTURES / "quality" / "demo_queries.json").read_text())["queries"]
    by_title = {index.store.get(i).title: i for i in index.facts.keys}
    qrels = {}
    for n, item in enumerate(labelled):
        rel = {}
        for prefix, grade in item["rel"].items():
            [pid] = [i for t, i in by_title.items() if t.startswith(prefix)]
            rel[pid] = grade
        qrels[str(n)] = rel
    scores = {}
    for mode in ("lexical", "dense", "hybrid"):
        run = {str(n): search(index, item["q"], mode=mode, k=100)[0] for n, item in enumerate(labelled)}
        scores[mode] = evaluate(run, qrels)["ndcg@10"]
    assert scores["hybrid"] > scores["lexical"] and scores["hybrid"] > scores["dense"], scores


def test_phrases_match_word_for_word(index):
    ids, _ = search(index, '"learning in small transformers"', mode="lexical", k=10)
    assert ids == ["2403.00001"]
    ids, _ = search(index, '"learning small transformers"', mode="lexical", k=10)
    assert ids == []  # the stop word "in" is part of the phrase as written


def test_exact_phrases_come_from_the_ngram_engine(index):
    assert index.phrases is not None  # built by update_index, at the same watermark
    holders = set(index.phrases.find("language models"))
    assert len(holders) > 3
    for mode in ("lexical", "dense", "hybrid"):
        ids, _ = search(index, '"language models"', mode=mode, k=100)
        assert set(ids) == holders, mode
    ids, _ = search(index, 'models -"language models"', mode="lexical", k=100)
    assert ids and not set(ids) & holders


def test_without_the_engine_phrases_are_checked_word_for_word(index):
    bare = SearchIndex(index.lexical, index.vectors, index.facts, index.store, index.embedder)
    assert bare.phrases is None  # as when the n-gram engine lags behind the search indexes
    for q in ('"language models"', '"learning in small transformers"', 'models -"language models"'):
        assert set(search(bare, q, mode="lexical", k=100)[0]) == set(search(index, q, mode="lexical", k=100)[0]), q
