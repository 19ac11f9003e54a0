"""Paper ids in every pasted form, the record's normalisation, merging and round trips."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from papertide.errors import InvalidIdError, RecordError
from papertide.paper import (
    Paper,
    Version,
    beir_id,
    local_id,
    merge,
    normalise_doi,
    parse_arxiv_id,
    parse_date,
    parse_paper_id,
    title_key,
)

VALID = [
    ("2401.17377", "2401.17377", None),
    ("2401.17377v2", "2401.17377", 2),
    ("0704.0001", "0704.0001", None),
    ("1412.8544v12", "1412.8544", 12),
    ("hep-th/9901001", "hep-th/9901001", None),
    ("hep-th/9901001v3", "hep-th/9901001", 3),
    ("math.GT/0309136", "math/0309136", None),
    ("cond-mat/0102536v1", "cond-mat/0102536", 1),
    ("arXiv:2401.17377", "2401.17377", None),
    ("arxiv: 2401.17377v1", "2401.17377", 1),
    ("  ARXIV:hep-th/9901001  ", "hep-th/9901001", None),
    ("https://arxiv.org/abs/2401.17377", "2401.17377", None),
    ("https://arxiv.org/abs/2401.17377v3", "2401.17377", 3),
    ("http://arxiv.org/pdf/2401.17377v2.pdf", "2401.17377", 2),
    ("https://arxiv.org/pdf/2401.17377", "2401.17377", None),
    ("https://arxiv.org/html/2401.17377v1", "2401.17377", 1),
    ("https://www.arxiv.org/abs/2401.17377?context=cs", "2401.17377", None),
    ("arxiv.org/abs/2401.17377#section", "2401.17377", None),
    ("http://export.arxiv.org/abs/hep-th/9901001", "hep-th/9901001", None),
    ("https://arxiv.org/abs/math.GT/0309136v2/", "math/0309136", 2),
    ("oai:arXiv.org:0704.0001", "0704.0001", None),
    ("10.48550/arXiv.2401.17377", "2401.17377", None),
    ("https://doi.org/10.48550/arXiv.2401.17377", "2401.17377", None),
    ("https://huggingface.co/papers/2401.17377", "2401.17377", None),
]


@pytest.mark.parametrize("text,canonical,version", VALID)
def test_parses_every_pasted_form(text, canonical, version):
    aid = parse_arxiv_id(text)
    assert (aid.id, aid.version) == (canonical, version)
    assert str(aid) == canonical + (f"v{version}" if version else "")


GARBAGE = [
    "",
    "   ",
    "hello world",
    "2401.1737",  # 2015+ ids have five digits
    "1401.12345",  # before 2015 four digits
    "2413.12345",  # month 13
    "0703.0001",  # before new-style ids began
    "2401.17377v0",
    "2401.17377v",
    "foo-bar/9901001",  # unknown archive
    "hep-th/0801001",  # old style ended March 2007
    "hep-th/99010",
    "https://example.com/abs/2401.17377",
    "2401.17377; DROP TABLE papers",
    "<script>alert(1)</script>",
    "x" * 10_000,
]


@pytest.mark.parametrize("text", GARBAGE)
def test_rejects_garbage_with_clear_message(text):
    with pytest.raises(InvalidIdError, match="not an arXiv id"):
        parse_arxiv_id(text)


@given(st.text(max_size=40))
def test_parser_never_crashes(text):
    try:
        aid = parse_arxiv_id(text)
    except InvalidIdError:
        return
    assert parse_arxiv_id(str(aid)) == aid  # whatever parses is canonical and stable


def test_paper_ids_for_papers_not_on_arxiv():
    assert parse_paper_id("https://doi.org/10.1000/ABC.def") == "doi:10.1000/abc.def"
    assert parse_paper_id("10.1000/xyz") == "doi:10.1000/xyz"
    assert parse_paper_id("beir:scifact:4983") == "beir:scifact:4983"
    assert local_id(doi="10.1000/XYZ") == "doi:10.1000/xyz"
    a = local_id(title="Attention Is All You Need")
    assert a.startswith("pt:") and a == local_id(title="  attention is ALL you need. ")
    assert parse_paper_id(a) == a
    assert beir_id("sci fact", "d1") == "beir:sci-fact:d1"
    with pytest.raises(InvalidIdError):
        parse_paper_id("no such id")
    with pytest.raises(InvalidIdError):
        normalise_doi("11.1/x")
    with pytest.raises(RecordError):
        local_id(title="  ")


def test_dates_normalise_to_iso():
    assert parse_date("Mon, 2 Apr 2007 19:18:42 GMT") == "2007-04-02T19:18:42Z"
    assert parse_date("2024-01-30T18:59:59Z") == "2024-01-30T18:59:59Z"
    assert parse_date("2024-01-30T20:59:59+02:00") == "2024-01-30T18:59:59Z"
    assert parse_date("2024-01-30") == "2024-01-30"
    assert parse_date("") is None and parse_date(None) is None
    with pytest.raises(RecordError, match="not a date"):
        parse_date("2024-02-30")
    with pytest.raises(RecordError, match="not a date"):
        parse_date("yesterday")


def test_normalised_cleans_and_derives():
    p = Paper(
        id="2401.17377",
        title="  Infini-gram:\n  Scaling   $\\infty$-gram  ",
        abstract="Line one\n  line two\x00",
        authors=["Jiacheng  Liu", "", "Noah A. Smith"],
        categories=["cs.CL", "cs.AI", "cs.CL"],
        versions=[Version(2, "Tue, 30 Jan 2024 18:59:59 GMT"), Version(1, "Fri, 26 Jan 2024 18:59:59 GMT")],
        doi="10.1/x",
    ).normalised()
    assert p.title == "Infini-gram: Scaling $\\infty$-gram"  # LaTeX kept, whitespace collapsed
    assert p.abstract == "Line one line two"
    assert p.authors == ["Jiacheng Liu", "Noah A. Smith"]
    assert p.categories == ["cs.CL", "cs.AI"] and p.primary_category == "cs.CL"
    assert p.version == 2 and [v.version for v in p.versions] == [1, 2]
    assert p.submitted == "2024-01-26T18:59:59Z" and p.updated == "2024-01-30T18:59:59Z"
    assert p.links["abs"] == "https://arxiv.org/abs/2401.17377" and p.links["doi"] == "https://doi.org/10.1/x"


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"title": "", "abstract": ""}, "neither title nor abstract"),
        ({"title": "x" * 5000}, "title is 5,000 characters"),
        ({"abstract": "y" * 100_000}, "abstract is 100,000"),
        ({"authors": ["a"] * 6000}, "6,000 authors"),
        ({"authors": ["z" * 1000]}, "author name"),
        ({"categories": ["not a category!"]}, "bad category"),
        ({"submitted": "sometime"}, "not a date"),
    ],
)
def test_normalised_rejects_absurd_records(kwargs, message):
    base = {"id": "2401.17377", "title": "T"} | kwargs
    with pytest.raises(RecordError, match=message):
        Paper(**base).normalised()


def test_merge_keeps_what_the_new_copy_lacks():
    harvested = Paper(id="2401.17377", title="T", abstract="A", categories=["cs.CL"], version=2,
                      versions=[Version(1, "2024-01-26"), Version(2, "2024-01-30")])  # fmt: skip
    from_hf = Paper(id="2401.17377", title="T", abstract="A", links={"code": "https://github.com/x/y"})
    m = merge(harvested, from_hf)
    assert m.categories == ["cs.CL"] and m.version == 2 and m.links["code"].endswith("x/y")


def test_merge_never_lets_an_older_version_win():
    new = Paper(id="1", title="New title", version=3)
    old = Paper(id="1", title="Old title", version=1, comments="old comment")
    m = merge(new, old)
    assert m.title == "New title" and m.version == 3 and m.comments == "old comment"


def test_dict_round_trip_and_hash_stability():
    p = Paper(id="2401.17377", title="T", authors=["A B"], versions=[Version(1, "2024-01-26")],
              extra={"ai_summary": "s"}).normalised()  # fmt: skip
    q = Paper.from_dict(p.to_dict())
    assert q == p and q.content_hash() == p.content_hash()
    assert Paper.from_dict(p.to_dict() | {"source": "elsewhere"}).content_hash() == p.content_hash()
    assert Paper.from_dict(p.to_dict() | {"title": "U"}).content_hash() != p.content_hash()
    with pytest.raises(RecordError, match="unknown field"):
        Paper.from_dict({"id": "x", "title": "t", "colour": "red"})
    with pytest.raises(RecordError, match="authors must be a list"):
        Paper.from_dict({"id": "x", "title": "t", "authors": [1, 2]})


def test_title_key_ignores_case_accents_punctuation():
    assert title_key("Façade: A Study!") == title_key("facade a STUDY")
