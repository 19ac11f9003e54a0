"""The search query language: a table of queries, the hostile cases one by one, and fuzzing.

Whatever a user types, ``parse_query`` must return a Query or raise QueryError, quickly.
"""

from __future__ import annotations

import time
import unicodedata
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from papertide.errors import PapertideError
from papertide.paper import Paper
from papertide.query import (
    KNOWN_FIELDS,
    MAX_CHARS,
    MAX_TERMS,
    Query,
    QueryError,
    author_matches,
    category_matches,
    normalise_category,
    parse_period,
    parse_query,
)

D = date

# query -> the whole expected Query (warnings are not compared: see WARNED below)
TABLE = [
    ("", Query()),
    ("   \t\n ", Query()),
    ("neural retrieval", Query(text="neural retrieval", words=("neural", "retrieval"))),
    ("Infini-gram  ∞-gram", Query(text="Infini-gram ∞-gram", words=("Infini-gram", "∞-gram"))),
    ('"in-context learning"', Query(text="in-context learning", phrases=("in-context learning",))),
    (
        '"in-context learning" cat:cs.CL since:2024',
        Query(text="in-context learning", phrases=("in-context learning",), categories=("cs.CL",), since=D(2024, 1, 1)),
    ),
    (
        'sparse "mixture  of experts" routing',
        Query(text="sparse mixture of experts routing", words=("sparse", "routing"), phrases=("mixture of experts",)),
    ),
    ('"a b""c d"', Query(text="a b c d", phrases=("a b", "c d"))),
    ('x"a b"y', Query(text="x a b y", words=("x", "y"), phrases=("a b",))),
    ("\u201csmart quotes\u201d too", Query(text="smart quotes too", words=("too",), phrases=("smart quotes",))),
    ("O'Brien's model", Query(text="O'Brien's model", words=("O'Brien's", "model"))),
    ("bert -survey", Query(text="bert", words=("bert",), excluded=("survey",))),
    ('bert -"large language" -survey -survey', Query(text="bert", words=("bert",), excluded=("large language", "survey"))),
    ("state-of-the-art", Query(text="state-of-the-art", words=("state-of-the-art",))),
    ("-", Query()),
    ("-- -", Query()),
    ("author:Smith", Query(authors=("Smith",))),
    ('author:"Jane Doe" author:Smith', Query(authors=("Jane Doe", "Smith"))),
    ("Author:Smith AU:Lee", Query(authors=("Smith", "Lee"))),
    ("author: Smith", Query(authors=("Smith",))),
    ('author: "Jane  Doe" llm', Query(text="llm", words=("llm",), authors=("Jane Doe",))),
    ("author:Smith, llm", Query(text="llm", words=("llm",), authors=("Smith",))),
    ("cat:cs.CL", Query(categories=("cs.CL",))),
    ("cat:cs", Query(categories=("cs",))),
    ("cat:cs.*", Query(categories=("cs",))),
    ("cat:hep-th", Query(categories=("hep-th",))),
    ("cat:CS.cl", Query(categories=("cs.CL",))),
    ("cat:Physics.Optics cat:cond-mat.SOFT", Query(categories=("physics.optics", "cond-mat.soft"))),
    ("cat:cs.CL,cs.ai cat:cs.CL", Query(categories=("cs.CL", "cs.AI"))),
    ("category:stat.ml", Query(categories=("stat.ML",))),
    ("since:2024", Query(since=D(2024, 1, 1))),
    ("since:2024-03", Query(since=D(2024, 3, 1))),
    ("since:2024-03-17", Query(since=D(2024, 3, 17))),
    ("until:2024", Query(until=D(2024, 12, 31))),
    ("until:2024-03", Query(until=D(2024, 3, 31))),
    ("until:2024-02", Query(until=D(2024, 2, 29))),
    ("until:2023-02", Query(until=D(2023, 2, 28))),
    ("until:2024-03-17", Query(until=D(2024, 3, 17))),
    ("year:2023", Query(since=D(2023, 1, 1), until=D(2023, 12, 31))),
    ("year:2023-05", Query(since=D(2023, 5, 1), until=D(2023, 5, 31))),
    ("since:2020 year:2023 until:2023-06", Query(since=D(2023, 1, 1), until=D(2023, 6, 30))),
    ("since:2024-3-7", Query(since=D(2024, 3, 7))),
    ("2401.17377", Query(paper_id="2401.17377")),
    ("arXiv:2401.17377v2", Query(paper_id="2401.17377")),
    ("arXiv: 2401.17377", Query(paper_id="2401.17377")),
    ("https://arxiv.org/abs/2401.17377", Query(paper_id="2401.17377")),
    ("https://arxiv.org/pdf/2401.17377v3.pdf", Query(paper_id="2401.17377")),
    ("<https://arxiv.org/abs/2401.17377>", Query(paper_id="2401.17377")),
    ("(2401.17377),", Query(paper_id="2401.17377")),
    ("hep-th/9901001", Query(paper_id="hep-th/9901001")),
    ("math.GT/0309136v2", Query(paper_id="math/0309136")),
    ("https://huggingface.co/papers/2401.17377", Query(paper_id="2401.17377")),
    ("10.48550/arXiv.2401.17377", Query(paper_id="2401.17377")),
    ("doi:10.1000/XYZ", Query(paper_id="doi:10.1000/xyz")),
    ("pt:0123456789abcdef", Query(paper_id="pt:0123456789abcdef")),
    ("beir:scifact:42", Query(paper_id="beir:scifact:42")),
    ("2401.17377 2401.17377v2", Query(paper_id="2401.17377")),
    (
        "follow-ups to 2401.17377 cat:cs.CL",
        Query(text="follow-ups to", words=("follow-ups", "to"), categories=("cs.CL",), paper_id="2401.17377"),
    ),
    ('"2401.17377"', Query(text="2401.17377", phrases=("2401.17377",))),
    ("-2401.17377", Query(excluded=("2401.17377",))),
    ("cat:cs.CL since:2024", Query(categories=("cs.CL",), since=D(2024, 1, 1))),
    ("Note: this", Query(text="Note: this", words=("Note:", "this"))),
    ("ratio 3:1", Query(text="ratio 3:1", words=("ratio", "3:1"))),
    ("C++ F# k-NN", Query(text="C++ F# k-NN", words=("C++", "F#", "k-NN"))),
]


@pytest.mark.parametrize("text, expected", TABLE, ids=[repr(t) for t, _ in TABLE])
def test_table(text, expected):
    q = parse_query(text)
    assert q == expected
    assert q.warnings == (), q.warnings


# query -> (expected Query, a phrase that must appear in one of the warnings)
WARNED = [
    ('""', Query(), 'empty phrase ""'),
    ('x " ; " y', Query(text="x y", words=("x", "y")), "empty phrase"),
    ('"unbalanced phrase', Query(text="unbalanced phrase", words=("unbalanced", "phrase")), "unbalanced quote"),
    (
        '"in-context learning cat:cs.CL',
        Query(text="in-context learning", words=("in-context", "learning"), categories=("cs.CL",)),
        "unbalanced quote",
    ),
    ('"a b" "c', Query(text="a b c", words=("c",), phrases=("a b",)), "unbalanced quote"),
    ('author:"Jane Doe', Query(text="Doe", words=("Doe",), authors=("Jane",)), "unbalanced quote"),
    ("foo:bar", Query(text="foo:bar", words=("foo:bar",)), "foo:"),
    ("title:x", Query(text="title:x", words=("title:x",)), "titles and abstracts"),
    ('title:"a b"', Query(text="title: a b", words=("title:",), phrases=("a b",)), "title:"),
    ("autor:Smith", Query(text="autor:Smith", words=("autor:Smith",)), "did you mean author:"),
    ("since:2024-13", Query(), "no month 13"),
    ("since:2024-13 x", Query(text="x", words=("x",)), "this filter was ignored"),
    ("until:2023-02-29", Query(), "has no day 29"),
    ("since:yesterday", Query(), "not a date"),
    ("since:0999", Query(), "year 999"),
    ("year:20240", Query(), "not a date"),
    ("author:", Query(), "author: has no value"),
    ("author: -survey", Query(excluded=("survey",)), "author: has no value"),
    ("author: cat:cs", Query(categories=("cs",)), "author: has no value"),
    ('author:""', Query(), "empty phrase"),
    ("author:,;", Query(), "names no one"),
    ("cat:I.2.7", Query(), "not an arXiv category"),
    ("cat:nlp", Query(categories=("nlp",)), "not an arXiv archive"),
    ("-cat:cs.CL x", Query(text="x", words=("x",)), "cannot exclude by field"),
    ('-author:"Jane Doe" x', Query(text="x", words=("x",)), "cannot exclude by field"),
    ("doi:garbage", Query(text="doi:garbage", words=("doi:garbage",)), "not a paper id"),
    (
        "2401.17377 vs 2402.00001",
        Query(text="vs", words=("vs",), paper_id="2401.17377"),
        "only one paper id",
    ),
    (
        "https://github.com/liujch1998/infini-gram",
        Query(text="https://github.com/liujch1998/infini-gram", words=("https://github.com/liujch1998/infini-gram",)),
        "not a link to a paper",
    ),
    ("a AND b OR NOT c", Query(text="a b c", words=("a", "b", "c")), "not an operator"),
    ("bar*", Query(text="bar*", words=("bar*",)), "wildcards"),
]


@pytest.mark.parametrize("text, expected, warning", WARNED, ids=[repr(t) for t, _, _ in WARNED])
def test_understood_with_a_warning(text, expected, warning):
    q = parse_query(text)
    assert q == expected
    assert any(warning in w for w in q.warnings), q.warnings


def test_unknown_field_warning_lists_the_known_fields_once():
    q = parse_query("foo:1 foo:2 bar:3 title:x")
    (w,) = q.warnings
    assert "foo:, bar:, title:" in w
    assert all(f"{k}:" in w for k in KNOWN_FIELDS)


# ---------------------------------------------------------------- hostile, one by one


def test_sql_injection_is_just_words():
    q = parse_query("'; DROP TABLE papers; --")
    assert q.words == ("DROP", "TABLE", "papers;")
    assert not q.has_filters and q.paper_id is None


def test_fts_syntax_is_words_and_punctuation():
    q = parse_query("title:foo OR bar* NEAR(a b) c^2 (x AND y) ~z")
    assert q.words == ("title:foo", "bar*", "NEAR(a", "b)", "c^2", "(x", "y)", "~z")
    assert "OR" not in q.words and "AND" not in q.words
    assert q.text == "title:foo bar* NEAR(a b) c^2 (x y) ~z"


def test_lowercase_and_or_not_are_words():
    assert parse_query("cats and dogs or not").words == ("cats", "and", "dogs", "or", "not")


def test_a_bare_url_with_colons_is_not_a_field():
    q = parse_query("https://arxiv.org/abs/2401.17377?context=cs#section:2")
    assert q.paper_id == "2401.17377" and q.is_lookup and q.warnings == ()


def test_only_an_id_is_a_lookup_and_mixed_is_not():
    assert parse_query("arXiv:2401.17377v2").is_lookup
    mixed = parse_query("2401.17377 suffix arrays")
    assert mixed.paper_id == "2401.17377" and not mixed.is_lookup
    assert mixed.words == ("suffix", "arrays") and mixed.text == "suffix arrays"


def test_ten_thousand_characters_are_cut_at_a_word_boundary():
    text = " ".join(f"word{i}" for i in range(2_000))  # ~15,000 characters
    q = parse_query(text)
    assert len(q.text) <= MAX_CHARS
    assert all(w.startswith("word") and w[4:].isdigit() for w in q.words)
    assert len(q.words) == MAX_TERMS
    assert any("longer than 1,000 characters" in w for w in q.warnings)
    assert any(f"first {MAX_TERMS}" in w for w in q.warnings)


def test_one_enormous_word_is_cut_to_the_limit():
    q = parse_query("x" * 1_000_000)
    assert q.words == ("x" * MAX_CHARS,)
    assert q.warnings


def test_terms_are_capped_counting_filters_and_phrases():
    q = parse_query(" ".join(['"a b"', "author:Z", "cat:cs"] + [f"w{i}" for i in range(100)]))
    assert len(q.phrases) + len(q.authors) + len(q.categories) + len(q.words) == MAX_TERMS


def test_control_characters_and_nuls_are_removed():
    q = parse_query("neu\x00ral\x07 re\x1btrieval\x7f\x85 \u200bzero\ufeff\u202ebidi\ud800")
    assert q.words == ("neural", "retrieval", "zerobidi")


def test_tabs_and_newlines_separate_words():
    assert parse_query("a\tb\nc\r\nd\u00a0e\u2003f").words == ("a", "b", "c", "d", "e", "f")


def test_unicode_is_kept_in_nfc():
    q = parse_query('cafe\u0301 "Schro\u0308dinger equation" author:Erdo\u030bs 学习')
    assert q.words == ("caf\u00e9", "学习")
    assert q.phrases == ("Schr\u00f6dinger equation",)
    assert q.authors == ("Erd\u0151s",)


def test_since_after_until_is_an_error_with_a_clear_message():
    with pytest.raises(QueryError, match="since 2025-01-01 is after until 2024-12-31"):
        parse_query("since:2025 until:2024")
    with pytest.raises(QueryError, match="no paper can match"):
        parse_query("year:2023 year:2024")


def test_query_error_is_a_papertide_value_error():
    assert issubclass(QueryError, PapertideError) and issubclass(QueryError, ValueError)
    with pytest.raises(QueryError):
        parse_query(None)  # type: ignore[arg-type]
    with pytest.raises(QueryError):
        parse_query(b"bytes")  # type: ignore[arg-type]


def test_only_filters_is_a_browse_query():
    q = parse_query("cat:cs.CL since:2024")
    assert q.text == "" and q.has_filters and not q.is_empty


def test_is_empty():
    assert parse_query("").is_empty
    assert parse_query(' "" -- ; ( ) ').is_empty
    assert parse_query("since:2024-13").is_empty  # nothing usable was given; the warning says why
    for text in ("x", '"a b"', "-x", "author:A", "cat:cs", "since:2024", "until:2024", "2401.17377"):
        assert not parse_query(text).is_empty, text


# ------------------------------------------------------------------------ describe


@pytest.mark.parametrize(
    "text, summary",
    [
        ("", "all papers"),
        ("cat:cs.CL since:2024", "all papers in cs.CL, since 2024-01-01"),
        ('"in-context learning" cat:cs.CL since:2024', '"in-context learning", in cs.CL, since 2024-01-01'),
        (
            'transformers -survey -"large language" author:"Jane Doe" au:Smith cat:cs.CL,cs.AI year:2023',
            'transformers, excluding survey, "large language", by Jane Doe and Smith, in cs.CL or cs.AI, in 2023',
        ),
        ("until:2024-03", "all papers until 2024-03-31"),
        ("since:2024-02 until:2024-03-17", "all papers from 2024-02-01 to 2024-03-17"),
        ("https://arxiv.org/abs/2401.17377", "paper 2401.17377"),
        ("2401.17377 code", "paper 2401.17377, code"),
    ],
)
def test_describe(text, summary):
    assert parse_query(text).describe() == summary


# ------------------------------------------------------------------ helper functions


def test_parse_period_bounds():
    assert parse_period("2024", end=False) == D(2024, 1, 1)
    assert parse_period("2024", end=True) == D(2024, 12, 31)
    assert parse_period("2000-02", end=True) == D(2000, 2, 29)
    assert parse_period("1900-02", end=True) == D(1900, 2, 28)
    assert parse_period("２０２４-０３", end=False) == D(2024, 3, 1)  # digits typed with a CJK input method
    for bad in ("2024-00", "2024-13", "2024-04-31", "24", "2024-1-1-1", "2024/03", "2024-03-17T00:00"):
        with pytest.raises(ValueError):
            parse_period(bad, end=False)


def test_normalise_category():
    assert normalise_category("CS.cl") == "cs.CL"
    assert normalise_category("astro-ph.co") == "astro-ph.CO"
    assert normalise_category("cond-mat.Mes-Hall") == "cond-mat.mes-hall"
    assert normalise_category("HEP-TH") == "hep-th"
    for bad in ("I.2.7", "81T30", "cs.CL;", "", "."):
        with pytest.raises(ValueError):
            normalise_category(bad)


def test_category_matches_archives_as_prefixes():
    assert category_matches("cs", "cs.CL") and category_matches("cs", "cs")
    assert category_matches("cs.CL", "cs.CL")
    assert not category_matches("cs.CL", "cs.CLX") and not category_matches("cs", "csx.AI")
    assert not category_matches("cs.CL", "cs") and not category_matches("hep", "hep-th")


def test_author_matches():
    assert author_matches("Smith", "John Smith")
    assert author_matches("J. Smith", "John Smith")
    assert author_matches("john smith", "J. Smith")
    assert author_matches("Erdos", "Paul Erdős")
    assert not author_matches("Jane Smith", "John Smith")
    assert not author_matches("Smith John", "John Smith")  # order counts
    assert not author_matches("Smit", "John Smith")
    assert not author_matches(";", "John Smith")


def test_matches_filters():
    paper = Paper(
        id="2401.17377", title="t", authors=["Jiacheng Liu", "Luke Zettlemoyer"],
        categories=["cs.CL", "cs.AI"], submitted="2024-01-30T18:00:00Z",
    )
    undated = Paper(id="x", title="t")
    assert parse_query("author:Liu author:zettlemoyer cat:cs year:2024").matches_filters(paper)
    assert parse_query("cat:cs.LG cat:cs.AI").matches_filters(paper)  # any category
    assert not parse_query("author:Liu author:Smith").matches_filters(paper)  # every author
    assert not parse_query("cat:math").matches_filters(paper)
    assert not parse_query("since:2024-02").matches_filters(paper)
    assert parse_query("until:2024-01-30").matches_filters(paper)
    assert not parse_query("until:2024-01-29").matches_filters(paper)
    assert parse_query("anything").matches_filters(undated)
    assert not parse_query("since:2000").matches_filters(undated)


# ---------------------------------------------------------------------------- fuzzing

_PIECES = st.sampled_from(
    ['"', "\u201c", "\u201d", ":", "-", "--", " ", "\t", "\x00", "*", "(", ")", "^", "AND", "OR", "NOT",
     "author:", "cat:", "since:", "until:", "year:", "title:", "au:", "arXiv:", "doi:", "pt:", "beir:",
     "2401.17377", "hep-th/9901001", "https://arxiv.org/abs/", "://", "2024", "-13", "-02-30", "cs.CL",
     "cs", ",", "é", "\u0301", "\u200b", "\ud800", "x", "word", "10.1000/x"]
)
_HOSTILE = st.lists(st.one_of(_PIECES, st.text(max_size=8)), max_size=40).map("".join)


def _check(text: str) -> None:
    start = time.perf_counter()
    try:
        q = parse_query(text)
    except QueryError as e:
        assert str(e)
        return
    finally:
        assert time.perf_counter() - start < 0.5
    assert isinstance(q, Query)
    assert len(q.text) <= MAX_CHARS
    assert len(q.words) + len(q.phrases) + len(q.excluded) <= MAX_TERMS
    for w in q.words + q.phrases + q.excluded + q.authors:
        assert w and not any(unicodedata.category(ch) in ("Cc", "Cs") for ch in w), w
        assert unicodedata.is_normalized("NFC", w)
    assert all(" " not in w and '"' not in w for w in q.words)
    assert all(not w.startswith("-") for w in q.words)
    assert q.since is None or q.until is None or q.since <= q.until
    assert isinstance(q.describe(), str)
    hash(q)


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_fuzz_any_text(text):
    _check(text)


@settings(max_examples=500, deadline=None)
@given(_HOSTILE)
def test_fuzz_query_syntax(text):
    _check(text)


@pytest.mark.parametrize(
    "text",
    [
        '"' * 100_000,
        '"a' * 50_000,
        "a:" * 50_000,
        "-" * 100_000,
        "author: " * 20_000,
        "-\"" * 50_000,
        "x " * 500_000,
        "\x00" * 100_000 + "hello",
        "é\u0301" * 50_000,
        "a" * 299 + "/" + "1" * 700,
        "arxiv.org/abs/" * 10_000,
    ],
    ids=lambda t: repr(t[:12]),
)
def test_pathological_inputs_are_fast(text):
    start = time.perf_counter()
    try:
        parse_query(text)
    except QueryError:
        pass
    assert time.perf_counter() - start < 0.2
