"""Building and catching up the search indexes from the store's change log."""

from __future__ import annotations

import pytest

from papertide.config import replace
from papertide.errors import ConfigError
from papertide.index import IndexMissingError, SearchIndex, update_index
from papertide.ingest import ingest, ingest_demo
from papertide.paper import Paper
from papertide.rank import search
from papertide.store import Batch, open_store


@pytest.fixture
def store(config):
    s = open_store(config)
    ingest_demo(s)
    yield s
    s.close()


def test_build_then_nothing_to_do(store, config, embedder, warm_home):
    first = update_index(store, config, embedder=embedder)
    assert (first.papers, first.changed, first.embedded) == (43, 43, 0)  # every text was in the cache
    again = update_index(store, config, embedder=embedder)
    assert (again.changed, again.embedded, again.papers) == (0, 0, 43)


def test_catch_up_embeds_only_changed_text(store, config, embedder, warm_home):
    update_index(store, config, embedder=embedder)
    victim = next(p for p in store.iter_papers() if p.title.startswith("Infini-gram"))
    gone = next(p for p in store.iter_papers() if p.title.startswith("TweepFake"))
    changed = Paper(**{**victim.to_dict(), "abstract": victim.abstract + " Now with suffix automata."}).normalised()
    same_text = next(p for p in store.iter_papers() if p.title.startswith("Moshi"))
    relabelled = Paper(**{**same_text.to_dict(), "comments": "12 pages"}).normalised()
    fresh = Paper(id="2401.99999", title="Suffix automata for n-gram counting", abstract="We count n-grams.")
    ingest(store, [changed, relabelled, fresh.normalised()])
    store.write(Batch(deleted=[gone.id]))
    r = update_index(store, config, embedder=embedder)
    assert (r.changed, r.removed, r.papers) == (3, 1, 43)
    assert r.embedded == 2  # Moshi's text did not change: its vector came from the cache
    index = SearchIndex.open(config, store, embedder=embedder)
    ids, _ = search(index, "suffix automata", mode="lexical", k=5)
    assert set(ids[:2]) == {victim.id, "2401.99999"}
    assert gone.id not in search(index, "deepfake tweets", k=43)[0]


def test_caught_up_index_equals_a_rebuild(store, config, embedder, warm_home):
    update_index(store, config, embedder=embedder)
    ingest(store, [Paper(id="2401.99998", title="Matryoshka n-gram embeddings", abstract="Nested codes.").normalised()])
    update_index(store, config, embedder=embedder)
    index = SearchIndex.open(config, store, embedder=embedder)
    queries = ["matryoshka embeddings", "speech", "survey of large language models", "n-gram"]
    caught_up = [search(index, q, k=10) for q in queries]
    update_index(store, config, embedder=embedder, rebuild=True)
    rebuilt = SearchIndex.open(config, store, embedder=embedder)
    for q, (ids, scores) in zip(queries, caught_up):
        ids2, scores2 = search(rebuilt, q, k=10)
        assert ids == ids2, q
        assert scores == pytest.approx(scores2, abs=1e-6)


def test_no_index_is_a_clear_error(store, config):
    with pytest.raises(IndexMissingError, match="run `papertide index`"):
        SearchIndex.open(config, store)


def test_an_unreadable_index_is_rebuilt(store, config, embedder, warm_home):
    update_index(store, config, embedder=embedder)
    (config.home / "index" / "lexical" / "params.json").write_text("{not json")
    r = update_index(store, config, embedder=embedder)
    assert (r.changed, r.papers) == (43, 43)
    assert search(SearchIndex.open(config, store, embedder=embedder), "infini-gram", mode="lexical")[0]


def test_changing_the_embedding_settings_rebuilds_the_vectors(store, config, warm_home):
    first = update_index(store, config)  # the settings' own embedder: int8, 128 tokens
    assert first.embedded == 0
    assert SearchIndex.open(config, store).vectors.model == "all-MiniLM-L6-v2-int8-128t"
    shorter = replace(config, embed_max_tokens=16)
    r = update_index(store, shorter)
    assert (r.changed, r.embedded) == (43, 43)  # vectors of another space are never mixed in
    index = SearchIndex.open(shorter, store)
    assert index.vectors.model == "all-MiniLM-L6-v2-int8-16t"
    assert search(index, "n-gram language models", mode="dense", k=3)[0]
    stale = SearchIndex.open(config, store)  # settings and index disagree: no query vectors
    with pytest.raises(IndexMissingError, match="int8-16t vectors but the settings ask for .*-128t"):
        search(stale, "n-gram language models", mode="dense")


def test_bad_embedding_settings_are_clear_errors(store, config):
    with pytest.raises(ConfigError, match="precision must be one of fp32, int8"):
        update_index(store, replace(config, embed_precision="fp16"))
    with pytest.raises(ConfigError, match="no model directory"):
        update_index(store, replace(config, embed_model=str(config.home / "missing-model")))
