"""Tests for papertide.text.tokens: folding, LaTeX, compounds, stop words, hostile input."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from papertide.text import lexical
from papertide.text.tokens import MAX_TOKEN_LENGTH, STOP_WORDS, phrase_words, tokenize, tokenize_query


@pytest.mark.parametrize(
    "text, tokens",
    [
        ("Müller MÜLLER Muller", ["muller"] * 3),
        (
            r"M\"uller M{\"u}ller Schr{\"o}dinger Mart\'{\i}n \c{C}elik {\o}rsted Ørsted",
            ["muller", "muller", "schrodinger", "martin", "celik", "orsted", "orsted"],
        ),
        ("naïve café Straße ﬁne ＦＵＬＬ x²", ["naive", "cafe", "strasse", "fine", "full", "x2"]),
        (r"time $\mathcal{O}(n)$", ["time", "o", "n"]),
        (r"\emph{x} and \textbf{Deep} learning, 50\% of $x^2$", ["x", "deep", "learning", "50", "x", "2"]),
        (r"$\alpha$-divergence and α-synuclein in 5µm", ["alpha", "divergence", "alpha", "synuclein", "5μm"]),
        ("τ ς σ ω Ω λ-calculus", ["tau", "sigma", "sigma", "omega", "omega", "lambda", "calculus"]),
        ("in-context learning", ["context", "incontext", "learning"]),
        ("GPT-4 and GPT-3.5 from 2010-2020", ["gpt", "4", "gpt4", "gpt", "3.5", "gpt3.5", "2010", "2020"]),
        ("state-of-the-art", ["state", "art", "stateoftheart"]),
        ("the model's O'Brien", ["model", "o", "brien", "obrien"]),
        ("arXiv:2401.17377v2, e.g. 3.14 i.e. pi", ["arxiv", "2401.17377", "v2", "3.14", "pi"]),
        ("The of AND to a", []),
        ("snake_case CamelCase", ["snake", "case", "camelcase"]),
        ("東京大学 한국어 ελληνικά", ["東京大学", "한국어", "ελληνικα"]),
        ("", []),
    ],
)
def test_tokenize_cases(text, tokens):
    assert tokenize(text) == tokens


def test_long_tokens_dropped_numbers_kept():
    assert tokenize("a" * MAX_TOKEN_LENGTH + " " + "b" * (MAX_TOKEN_LENGTH + 1) + " 42") == ["a" * MAX_TOKEN_LENGTH, "42"]
    assert tokenize("x-" + "y" * MAX_TOKEN_LENGTH) == ["x", "y" * MAX_TOKEN_LENGTH]  # joined form too long


def test_query_tokens_equal_document_tokens():
    text = r"Infini-gram: n-gram models at trillion-token scale, by M\"uller"
    assert tokenize_query(text) == tokenize(text)
    assert "infinigram" in tokenize_query("InfiniGram") and "infinigram" in tokenize(text)


def test_phrase_words_keep_order_and_stop_words():
    text = r"The model's In-Context learning of GPT-3.5 by M\"uller"
    assert phrase_words(text) == ["the", "model", "in", "context", "learning", "of", "gpt", "3.5", "by", "muller"]
    assert phrase_words("") == [] and phrase_words("--- ,;") == []
    # index tokens keep text order too (joined forms right after their parts)
    assert tokenize(text) == ["model", "context", "incontext", "learning", "gpt", "3.5", "gpt3.5", "muller"]


@pytest.mark.parametrize(
    "text",
    [
        "x" * 100_000,
        ("word " * 20_000),
        "-" * 100_000,
        "a-" * 50_000,
        "\\" * 100_000,
        "\\emph{" * 20_000,
        "$" * 100_000 + "{" * 1000,
        "".join(chr(i) for i in range(0x3000)),
        "\x00\x01\x1b[31m\x7f\u200b\ufeff\ud800 zero\u0301 width",
        "'s" * 50_000,
        "1." * 50_000,
        "é" * 100_000,
    ],
)
def test_hostile_input_never_crashes(text):
    assert all(isinstance(w, str) and w for w in phrase_words(text))
    tokens = tokenize(text)
    assert all(isinstance(t, str) and 0 < len(t) <= MAX_TOKEN_LENGTH and t not in STOP_WORDS for t in tokens)
    assert not any(ch.isspace() for t in tokens for ch in t)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_tokenize_any_text(text):
    tokens = tokenize(text)
    assert all(0 < len(t) <= MAX_TOKEN_LENGTH and t not in STOP_WORDS and not any(c.isspace() for c in t) for t in tokens)


def test_lexical_re_exports_the_tokenizer():
    assert lexical.tokenize is tokenize and lexical.tokenize_query is tokenize_query
