"""Recommendations: the per-user model and its reasons, and ``recommend`` on a real SQLite
store whose users upvote, save, and mark papers not relevant (the features and the solver
are tested in test_features.py)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from papertide.errors import NotFoundError
from papertide.index import SearchIndex, update_index
from papertide.ingest import ingest, ingest_demo
from papertide.paper import Paper
from papertide.rank import recommend as rank_recommend
from papertide.recommend import CLOSE, Recommendation, explain, fit_user_model, recommend, score
from papertide.store import open_store
from papertide.text.features import PaperFeatures
from papertide.text.lexical import BM25Index

# ------------------------------------------------------------------ a toy corpus

TOPIC_A = ["diffusion models for video generation", "video generation with latent diffusion",
           "text to video generation by diffusion", "diffusion transformers make video generation fast",
           "long video generation with diffusion and memory", "controllable video generation via diffusion"]  # fmt: skip
TOPIC_B = ["quantum error correction with surface codes", "decoding surface codes for quantum memories",
           "fault tolerant quantum error correction thresholds", "quantum codes from expander graphs",
           "error correction for superconducting qubits", "lattice surgery on surface codes"]  # fmt: skip
OTHER = ["a survey of graph neural networks", "protein folding with attention", "sorting networks revisited",
         "market microstructure and order books", "glacier melt in the alps", "bird song recognition"]  # fmt: skip


def toy_corpus(*, vectors: str = "none"):
    """18 papers in 3 topics; vectors "none" (zeros: the words decide), "topic" (one direction per topic)."""
    texts = TOPIC_A + TOPIC_B + OTHER
    keys = [f"a{i}" for i in range(6)] + [f"b{i}" for i in range(6)] + [f"o{i}" for i in range(6)]
    lex = BM25Index.build([(k, t, f"We study {t}.", []) for k, t in zip(keys, texts)])
    vec = np.zeros((18, 8), dtype=np.float32)
    if vectors == "topic":
        rng = np.random.default_rng(3)
        for i in range(18):
            vec[i, i // 6] = 1.0
            vec[i, 3 + i % 5] = 0.3 * rng.random()
    titles = dict(zip(keys, texts))
    return PaperFeatures(keys, vec, lex), titles


# ------------------------------------------------------------------ the model


def test_model_ranks_the_liked_topic_first_and_says_which_words_fired():
    f, titles = toy_corpus()
    model = fit_user_model(f, ["a0", "a1", "a2"], ["b0"])
    ids, scores = score(f, model, exclude=["a0", "a1", "a2", "b0"], min_similarity=0)
    assert set(ids[:3]) == {"a3", "a4", "a5"}
    assert list(scores) == sorted(scores, reverse=True)
    texts = {k: f"{t}\nWe study {t}." for k, t in titles.items()}
    reasons = explain(f, model, ids[:3], titles=titles, labels={}, texts=texts)
    for r in reasons:  # zero vectors: no paper is "close"; the words speak
        assert r.startswith("for: ")
    assert any("video generation" in r for r in reasons)  # adjacent fired words become a phrase
    assert all("diffusion" in r or "video" in r for r in reasons)


def test_reason_names_the_closest_liked_paper_when_it_is_close():
    f, titles = toy_corpus(vectors="topic")
    model = fit_user_model(f, ["b0", "a0"])
    ids, _ = score(f, model, ["b3", "o4"], min_similarity=0)
    assert ids[0] == "b3"
    assert score(f, model, ["b3", "o4"])[0] == ["b3"]  # o4 is like neither liked paper: never offered
    labels = {"b0": "which you upvoted", "a0": "which you saved in “Video”"}
    reasons = dict(zip(ids, explain(f, model, ids, titles=titles, labels=labels)))
    assert float((f.dense(f.rows(["b3"])) @ f.dense(f.rows(["b0"])).T)[0, 0]) >= CLOSE
    assert reasons["b3"] == f"close to “{titles['b0']}”, which you upvoted"
    assert not reasons["o4"].startswith("close to")


def test_negatives_and_exclusions_and_candidates():
    f, _ = toy_corpus()
    model = fit_user_model(f, ["a0", "a1"], ["a2"])  # one video paper marked not relevant
    ids, _ = score(f, model, candidates=["a2", "a3", "b1", "nope"], exclude=["a3"], min_similarity=0)
    assert set(ids) == {"a2", "b1"}  # unknown candidates ignored, exclusions gone
    with pytest.raises(ValueError, match="positive"):
        fit_user_model(f, ["unknown"])


def test_fitting_is_deterministic_and_the_seed_only_moves_the_background():
    f, _ = toy_corpus()
    one = score(f, fit_user_model(f, ["b0", "b1"], seed=5), min_similarity=0)
    two = score(f, fit_user_model(f, ["b0", "b1"], seed=5), min_similarity=0)
    assert one[0] == two[0] and np.array_equal(one[1], two[1])
    other = score(f, fit_user_model(f, ["b0", "b1"], seed=6, background=8), min_similarity=0)
    assert set(other[0][2:6]) == set(one[0][2:6]) == {"b2", "b3", "b4", "b5"}  # after the liked two


def test_a_hundred_likes_on_a_large_index_fit_well_under_a_second():
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(3000)]
    n = 20_000
    ids = rng.integers(0, len(words), (n, 68))
    docs = [(f"p{i}", " ".join(words[j] for j in ids[i, :8]), " ".join(words[j] for j in ids[i, 8:]), [])
            for i in range(n)]  # fmt: skip
    f = PaperFeatures([d[0] for d in docs], rng.normal(size=(n, 384)).astype(np.float32), BM25Index.build(docs))
    f.lexical_block(np.arange(3))  # the one-off per-index work (tf-idf norms) before the clock
    liked = [f"p{i}" for i in rng.choice(n, 100, replace=False)]
    t0 = time.perf_counter()
    model = fit_user_model(f, liked)
    assert time.perf_counter() - t0 < 1.0
    assert len(score(f, model, k=20, min_similarity=0)[0]) == 20


# ------------------------------------------------------------------ with a real store

EXTRA = [
    Paper(id="2403.00101", title="Surface codes for fault-tolerant quantum memories",
          abstract="We decode surface codes under circuit noise.", categories=["quant-ph"], submitted="2024-03-10"),
    Paper(id="2403.00102", title="Magic state distillation with fewer qubits",
          abstract="A cheaper factory for fault-tolerant quantum computation.", categories=["quant-ph", "cs.ET"],
          submitted="2024-03-12"),
    Paper(id="2403.00103", title="Elliptic curves over finite fields", abstract="We count points on curves.",
          categories=["math.NT"], submitted="2024-03-11"),
    Paper(id="2403.00104", title="Neural decoders for quantum error correction",
          abstract="A transformer decodes syndromes.", categories=["quant-ph", "cs.LG"], submitted="2024-03-09"),
]  # fmt: skip
HASH = "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA"


@pytest.fixture(scope="module")
def site(tmp_path_factory, embedder, demo_embeddings):
    import shutil

    from papertide.config import load_config

    config = load_config(tmp_path_factory.mktemp("recommend-home"), env={})
    shutil.copytree(demo_embeddings, config.home / "embeddings")
    store = open_store(config)
    ingest_demo(store)
    ingest(store, [p.normalised() for p in EXTRA])
    update_index(store, config, embedder=embedder)
    yield store, SearchIndex.open(config, store, embedder=embedder)
    store.close()


def by_title(store, index, prefix: str) -> str:
    papers = store.get_many(index.facts.keys)
    return next(i for i, p in papers.items() if p.title.startswith(prefix))


def test_a_user_who_upvotes_embedding_papers_gets_embedding_papers_with_reasons(site):
    store, index = site
    com = store.community
    uid = com.create_user("emma", "emma@example.org", HASH).id
    liked = [by_title(store, index, t) for t in ("2D Matryoshka", "Scalable Attentive Sentence-Pair", "L3Cube-MahaSBERT")]
    for pid in liked:
        com.vote(uid, pid)
    saved = com.create_collection(uid, "Embeddings")
    defsent = by_title(store, index, "DefSent+")
    com.add_item(saved.id, defsent)
    survey = by_title(store, index, "A Survey of Large Language Models")
    com.mark_not_relevant(uid, survey)
    hidden = by_title(store, index, "LLMs are Also Effective Embedding Models")
    com.set_paper_hidden(hidden, True)
    excluded = by_title(store, index, "ULLME")

    recs = recommend(index, store, uid, k=8, exclude=[excluded])
    assert len(recs) == 8 and all(isinstance(r, Recommendation) for r in recs)
    ids = [r.paper_id for r in recs]
    assert not set(ids) & {*liked, defsent, survey, hidden, excluded}  # never what they liked, refused or can't see
    assert by_title(store, index, "From Word Vectors to Multimodal Embeddings") in ids[:3]
    off_topic = {"2403.00101", "2403.00102", "2403.00103", "2403.00104"} | {by_title(store, index, t) for t in (
        "S2SNet", "Astrocyte-Enabled", "Language Modeling on a SpiNNaker", "Generative Discovery of Novel Chemical")}
    assert not off_topic.intersection(ids)  # fmt: skip
    assert [r.score for r in recs] == sorted((r.score for r in recs), reverse=True)
    titles = {p: store.get(p).title for p in [*liked, defsent]}
    for r in recs:
        assert r.reason.startswith(("close to “", "for: ", "related to “"))
        if r.reason.startswith(("close to", "related to")):
            assert any(f"“{t[:40]}" in r.reason for t in titles.values())
            assert r.reason.endswith(("which you upvoted", "which you saved in “Embeddings”"))
    assert recommend(index, store, uid, k=8, exclude=[excluded]) == recs  # deterministic
    assert rank_recommend(index, store, uid, k=8, exclude=[excluded]) == recs  # the same ranker through rank.py


def test_candidates_restrict_the_choice_and_categories_do_not_override_likes(site):
    store, index = site
    com = store.community
    uid = com.create_user("quinn", "", HASH).id
    com.vote(uid, "2403.00101")
    period = ["2403.00102", "2403.00103", "2403.00104", "2403.00101"]
    recs = recommend(index, store, uid, k=5, candidates=period, categories=["math"])
    ids = [r.paper_id for r in recs]
    # The liked paper is never offered again, and likes outrank the chosen category: the
    # number-theory paper is unlike anything the user liked, so it is not "for you" at all.
    assert sorted(ids) == ["2403.00102", "2403.00104"]
    assert recommend(index, store, uid, candidates=[]) == []


def test_cold_start_by_categories_ranks_upvoted_then_newest(site):
    store, index = site
    com = store.community
    for name in ("fan", "fan2"):  # (another test's user upvoted 2403.00101 once)
        com.vote(com.create_user(name, "", HASH).id, "2403.00104")
    newcomer = com.create_user("newcomer", "", HASH).id
    recs = recommend(index, store, newcomer, categories=["quant-ph"])
    assert [r.paper_id for r in recs] == ["2403.00104", "2403.00101", "2403.00102"]
    assert [r.reason for r in recs] == ["2 upvotes in quant-ph", "1 upvote in quant-ph", "new in quant-ph"]
    assert [r.paper_id for r in recommend(index, store, None, categories=["cs"])] == ["2403.00104", "2403.00102"]
    assert recommend(index, store, newcomer) == []  # nothing to go on


def test_cold_start_by_seed_papers(site):
    store, index = site
    seeds = [by_title(store, index, "Infini-gram"), "2403.00101"]
    recs = recommend(index, store, None, k=6, seeds=seeds)
    assert not set(seeds).intersection(r.paper_id for r in recs)
    vec = {p: index.vectors.vector(index.vectors.doc(p)) for p in [*seeds, *(r.paper_id for r in recs)]}
    titles = {p: store.get(p).title for p in seeds}
    for r in recs:  # the reason names the seed it is closest to, "close" from CLOSE up
        cos = {s: float(vec[r.paper_id] @ vec[s]) for s in seeds}
        best = next(s for s in seeds if f"“{titles[s]}”" in r.reason)
        assert r.reason == f"{'close to' if cos[best] >= CLOSE else 'related to'} “{titles[best]}”, which you chose"
    assert [r.score for r in recs] == sorted((r.score for r in recs), reverse=True)
    # Each seed gets its share, though language-model papers crowd around Infini-gram (cosines
    # 0.55-0.7) while the quantum seed's neighbours sit near 0.5: similarity is standardised per seed.
    assert {"2403.00104", "2403.00102"} <= {r.paper_id for r in recs}
    assert sum(f"“{titles[seeds[0]]}”" in r.reason for r in recs) >= 2
    seed = seeds[0]
    with pytest.raises(NotFoundError, match="2499.99999"):
        recommend(index, store, None, seeds=["2499.99999"])
    with pytest.raises(ValueError, match="k must"):
        recommend(index, store, None, k=0, seeds=[seed])
    with pytest.raises(TypeError, match="seeds must be a list"):
        recommend(index, store, None, seeds=seed)
