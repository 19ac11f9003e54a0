"""The n-gram engine over the store: main + delta + dead rows stay exact through changes and merges."""

from __future__ import annotations

import random

import pytest

from papertide.errors import FormatError
from papertide.ingest import ingest, ingest_demo
from papertide.paper import Paper
from papertide.phrases import Phrases, ngram_dir, update_phrases
from papertide.store import Batch, open_store
from papertide.text.ngram import doc_tokens

WORDS = "state space model models language large the of , . attention is all you need".split()


@pytest.fixture
def store(config):
    s = open_store(config)
    yield s
    s.close()


def brute(store, phrase: list[str]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for p in store.iter_papers():
        toks = doc_tokens(p.title, p.abstract)
        for i in range(len(toks) - len(phrase) + 1):
            if toks[i:i + len(phrase)] == phrase:
                out.setdefault(p.id, []).append(i)
    return out


def paper(rng: random.Random, n: int) -> Paper:
    words = lambda k: " ".join(rng.choice(WORDS) for _ in range(k))  # noqa: E731
    return Paper(id=f"2401.{n:05d}", title=words(rng.randint(1, 6)), abstract=words(rng.randint(0, 30)),
                 submitted=f"2024-01-{1 + n % 28:02d}").normalised()


def check(store, config, rng: random.Random) -> None:
    engine = Phrases.open(config)
    for _ in range(25):
        phrase = [rng.choice(WORDS) for _ in range(rng.randint(1, 3))]
        expected = brute(store, phrase)
        assert engine.count(phrase) == sum(map(len, expected.values())), phrase
        assert {k: sorted(v) for k, v in engine.find(phrase).items()} == expected, phrase


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_counts_stay_exact_through_adds_updates_deletes_and_merges(store, config, seed):
    rng = random.Random(seed)
    ingest(store, [paper(rng, i) for i in range(30)])
    assert update_phrases(store, config).rebuilt
    check(store, config, rng)
    n = 30
    for round_ in range(4):
        live = [p.id for p in store.iter_papers()]
        changed = []
        for pid in rng.sample(live, 5):  # new text for old papers
            old = store.get(pid)
            changed.append(Paper(**{**old.to_dict(), "abstract": old.abstract + " state space model"}).normalised())
        ingest(store, changed + [paper(rng, n + i) for i in range(4)])
        n += 4
        store.write(Batch(deleted=rng.sample(live, 2)))
        r = update_phrases(store, config, merge=(round_ == 2))
        assert not r.rebuilt and r.merged == (round_ == 2)
        check(store, config, rng)
        engine = Phrases.open(config)
        assert engine.papers == len(list(store.iter_papers()))
        assert (engine.delta is None) == (round_ == 2) and (not engine.dead.any()) == (round_ == 2)


def test_next_words_infgram_and_completions(store, config):
    ingest(store, [
        Paper(id="2401.00001", title="State space models", abstract="State space models scale. State space model.",
              submitted="2024-01-01").normalised(),
        Paper(id="2401.00002", title="Statistics of language", abstract="Large language models are state of the art.",
              submitted="2024-01-02").normalised(),
    ])
    update_phrases(store, config)
    e = Phrases.open(config)
    assert e.next_words("state space") == {"models": 2, "model": 1}
    suffix, dist = e.infgram("we study deep state space")
    assert suffix == ["state", "space"] and dist == {"models": pytest.approx(2 / 3), "model": pytest.approx(1 / 3)}
    assert e.infgram("zzz qqq") == ([], {})
    assert e.complete("sta") == [("state space models", 4), ("statistics", 1)]  # a one-off is not extended
    assert e.complete("state sp", extend=0) == [("state space", 3)]
    assert e.complete("state ") == [("state space models", 3), ("state of", 1)]
    assert e.complete("") == [] and e.complete("   ") == [] and e.complete("qqq") == []


def test_demo_corpus_and_rebuild_after_damage(store, config):
    ingest_demo(store)
    r = update_phrases(store, config)
    assert r.papers == 43 and r.tokens > 5000 and r.core_bytes / r.tokens <= 4 and r.bytes / r.tokens < 12
    e = Phrases.open(config)
    assert e.count("language models") == sum(map(len, brute(store, ["language", "models"]).values())) > 0
    assert update_phrases(store, config).papers == 43  # nothing changed: nothing to do
    (ngram_dir(config) / "state.json").write_text("{broken")
    assert update_phrases(store, config).rebuilt


def test_missing_engine_is_a_clear_error(config):
    with pytest.raises(FormatError, match="run `papertide index`"):
        Phrases.open(config)


def test_frequent_phrases_subtract_dead_papers_by_scanning_them(store, config):
    ingest(store, [Paper(id=f"2401.{i:05d}", title="State space", abstract=f"state space model {i}").normalised()
                   for i in range(100)])
    update_phrases(store, config)
    store.write(Batch(deleted=["2401.00007", "2401.00042"]))
    update_phrases(store, config, merge=False)
    e = Phrases.open(config)
    assert len(e._dead_stream) < (e.main.range("state space")[1] - e.main.range("state space")[0]) / 4
    assert e.count("state space") == 196 == sum(map(len, e.find("state space").values()))
    assert e.count("state space model") == 98 and e.count(["model", "7"]) == 0 and e.count("model 8") == 1
    assert e.next_words("", prefix="stat") == {"state": 196}


def test_completions_after_a_frequent_context_are_exact(store, config, monkeypatch):
    import papertide.phrases as phrases

    monkeypatch.setattr(phrases, "SAMPLE_ABOVE", 10)  # sample even small segments
    monkeypatch.setattr(phrases, "SAMPLE", 8)
    words = ["space", "speech", "spectral", "sparse"]
    ingest(store, [Paper(id=f"2401.{i:05d}", title="The state", abstract=f"state {words[i % 4]} state space")
                   .normalised() for i in range(60)])
    update_phrases(store, config)
    done = dict(Phrases.open(config).complete("state sp", extend=0))
    assert done["state space"] == 15 + 60 and done["state speech"] == 15


def test_a_phrase_series_follows_the_engine_version(store, config):
    """The web app reopens the engine after ``papertide index``: series answers for the new version."""
    from papertide.trends import series

    ingest(store, [Paper(id=f"2401.{i:05d}", title="State space", abstract="a state space model",
                         submitted=f"2024-01-{1 + i:02d}").normalised() for i in range(10)])  # fmt: skip
    update_phrases(store, config)
    before = series(Phrases.open(config).segments(), "state space", period="month")
    assert before == [("2024-01", 20, 60)] == series(Phrases.open(config).segments(), "state space", period="month")
    ingest(store, [Paper(id=f"2402.{i:05d}", title="Language models", abstract="state space",
                         submitted="2024-02-03").normalised() for i in range(3)])  # fmt: skip
    store.write(Batch(deleted=["2401.00000"]))
    update_phrases(store, config, merge=False)  # a delta and a dead row of main
    after = series(Phrases.open(config).segments(), "state space", period="month")
    assert after == [("2024-01", 18, 54), ("2024-02", 3, 12)]
