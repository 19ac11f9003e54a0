"""The suffix-array n-gram segment: exact counts, positions and next words against a brute scan."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from papertide.errors import FormatError
from papertide.text.ngram import (
    Doc,
    NgramIndex,
    build_segment,
    doc_tokens,
    highlight,
    ngram_tokens,
    phrase_highlights,
    token_spans,
)

WORDS = ["language", "model", "models", "state", "space", "the", "of", ",", ".", "Language", "MODEL"]


def brute_find(docs: list[Doc], phrase: list[str]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    m = len(phrase)
    for d in docs:
        toks = doc_tokens(d.title, d.abstract)
        for i in range(len(toks) - m + 1):
            if toks[i:i + m] == phrase:
                out.setdefault(d.key, []).append(i)
    return out


def brute_next(docs: list[Doc], phrase: list[str]) -> Counter:
    c: Counter = Counter()
    m = len(phrase)
    for d in docs:
        toks = doc_tokens(d.title, d.abstract)
        for i in range(len(toks) - m):
            if toks[i:i + m] == phrase and toks[i + m]:
                c[toks[i + m]] += 1
    return c


texts = st.lists(st.sampled_from(WORDS), max_size=12).map(" ".join)
corpora = st.lists(st.tuples(texts, texts), min_size=0, max_size=8)
phrases = st.lists(st.sampled_from([w.lower() for w in WORDS] + ["absent"]), min_size=1, max_size=4)


@settings(max_examples=60, deadline=None)
@given(corpus=corpora, queries=st.lists(phrases, min_size=1, max_size=6))
def test_counts_positions_and_next_words_match_a_brute_scan(tmp_path_factory, corpus, queries):
    docs = [Doc(f"p{i}", i, t, a) for i, (t, a) in enumerate(corpus)]
    d = tmp_path_factory.mktemp("seg")
    build_segment(d / "s", docs)
    ix = NgramIndex(d / "s")
    for q in queries:
        expected = brute_find(docs, q)
        assert ix.count(q) == sum(map(len, expected.values())), q
        assert {k: sorted(v) for k, v in ix.find(q).items()} == expected, q
        assert ix.next_words(q) == dict(brute_next(docs, q)), q


@settings(max_examples=30, deadline=None)
@given(corpus=st.lists(st.tuples(texts, texts), min_size=2, max_size=5), data=st.data())
def test_phrases_across_boundaries_never_match(tmp_path_factory, corpus, data):
    docs = [Doc(f"p{i}", i, t, a) for i, (t, a) in enumerate(corpus)]
    stream = [t for d in docs for t in doc_tokens(d.title, d.abstract)]
    cut = data.draw(st.sampled_from([i for i, t in enumerate(stream) if t == ""]))
    phrase = [t for t in stream[max(0, cut - 2):cut + 3] if t]  # the words around a boundary
    assume(phrase)
    d = tmp_path_factory.mktemp("seg")
    build_segment(d / "s", docs)
    ix = NgramIndex(d / "s")
    assert ix.count(phrase) == sum(map(len, brute_find(docs, phrase).values()))


def test_tokens_fold_case_and_split_punctuation():
    assert ngram_tokens("Language Models, e.g. GPT-3.5") == [
        "language", "models", ",", "e", ".", "g", ".", "gpt", "-", "3", ".", "5"]
    assert ngram_tokens("Straße ÉCOLE ﬁne_tuning") == ["strasse", "école", "fine", "_", "tuning"]
    text = "State-space models!"
    assert [text[a:b] for a, b in token_spans(text)] == ["State", "-", "space", "models", "!"]


def test_counts_on_a_real_example(tmp_path):
    docs = [
        Doc("a", 1, "Language Models are Few-Shot Learners", "Large language models, e.g. GPT-3. A language model."),
        Doc("b", 2, "A language", "model of language models"),
    ]
    build_segment(tmp_path / "s", docs)
    ix = NgramIndex(tmp_path / "s")
    assert ix.count("language model") == 1  # "A language | model of" crosses the title's end
    assert ix.count("Language MODELS") == 3
    assert ix.count("language") == 5 and ix.count("few - shot") == 1
    assert ix.count("") == 0 and ix.count("absent words") == 0
    assert ix.find("language models") == {"a": [0, 9], "b": [5]}
    assert ix.next_words("language") == {"model": 1, "models": 3}
    marks = highlight(docs[0].title, docs[0].abstract, ix.find("language models")["a"], 2)
    assert marks == {"title": [(0, 15)], "abstract": [(6, 21)]}
    assert ix.stream()[-1] == 0 and len(ix.stream()) == ix.n_tokens


def test_widths_and_bytes_per_token(tmp_path):
    vocab = [f"w{i}" for i in range(100_000)]  # more than 2**16 words: 3-byte tokens
    docs = [Doc(str(i), i, "", " ".join(vocab[i * 200:(i + 1) * 200])) for i in range(500)]
    build_segment(tmp_path / "s", docs)
    ix = NgramIndex(tmp_path / "s")
    assert (ix.tw, ix.pw) == (3, 3)
    words = ix.params["words"]
    assert ((tmp_path / "s" / "tokens.bin").stat().st_size + (tmp_path / "s" / "sa.bin").stat().st_size) <= 7 * ix.n_tokens
    assert ix.count(docs[7].abstract.split()[3:5]) == 1 and ix.count(["w1399", "w1400"]) == 0
    assert words == 500 * 200


def test_empty_segment(tmp_path):
    build_segment(tmp_path / "s", [])
    ix = NgramIndex(tmp_path / "s")
    assert ix.count("anything") == 0 and ix.find("x") == {} and ix.next_words("x") == {}


def test_a_damaged_segment_is_a_format_error(tmp_path):
    build_segment(tmp_path / "s", [Doc("a", 1, "title words", "abstract words")])
    (tmp_path / "s" / "sa.bin").write_bytes(b"\x00")
    with pytest.raises(FormatError, match="do not match"):
        NgramIndex(tmp_path / "s")
    (tmp_path / "s" / "params.json").write_text("{")
    with pytest.raises(FormatError, match="unreadable"):
        NgramIndex(tmp_path / "s")


def test_phrase_highlights_of_one_paper():
    title, abstract = "Large Language Models", "We study language models. Language, models and LANGUAGE MODELS."
    marks = phrase_highlights(title, abstract, ["language models", "   "])
    assert [title[a:b] for a, b in marks["title"]] == ["Language Models"]
    assert [abstract[a:b] for a, b in marks["abstract"]] == ["language models", "LANGUAGE MODELS"]
    assert phrase_highlights(title, abstract, ["models language"]) == {"title": [], "abstract": []}
