"""Exports: JSONL reads back to the same papers; BibTeX reads back to the same ids, titles and authors."""

from __future__ import annotations

import io
import json
import string
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from papertide import export
from papertide.errors import RecordError
from papertide.paper import Paper, Version, local_id
from papertide.sources import Rejected, bibtex, files

FIXTURES = Path(__file__).parent / "fixtures" / "files"
DEMO = Path(__file__).parent.parent / "papertide" / "data" / "demo_papers.jsonl"


def fixture_papers() -> list[Paper]:
    names = ["papers.jsonl", "snapshot.jsonl", "refs.bib", "beir/scifact-mini/corpus.jsonl"]
    found = [i for name in names for i in files.read(FIXTURES / name) if isinstance(i, Paper)]
    return found + [i for i in files.read(DEMO) if isinstance(i, Paper)]


def jsonl_round_trip(papers: list[Paper]) -> list:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "export.jsonl"
        with open(path, "w", encoding="utf-8") as out:
            assert export.write_jsonl(papers, out) == len(papers)
        return list(files.read(path, "jsonl"))


def bibtex_text(papers: list[Paper]) -> str:
    out = io.StringIO()
    assert export.write_bibtex(papers, out) == len(papers)
    return out.getvalue()


# -------------------------------------------------------------------- JSONL


def test_jsonl_is_one_object_a_line_and_keeps_unicode():
    p = Paper(id="pt:0123456789abcdef", title="Gödel, Escher, Bach", authors=["Douglas Hofstadter"]).normalised()
    out = io.StringIO()
    assert export.write_jsonl([p, p], out) == 2
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and "Gödel" in lines[0]
    assert json.loads(lines[0]) == p.to_dict()


def test_jsonl_round_trip_of_every_fixture_paper():
    papers = fixture_papers()
    back = jsonl_round_trip(papers)
    assert [type(b) for b in back] == [Paper] * len(papers)
    assert [b.content_hash() for b in back] == [p.content_hash() for p in papers]
    assert [b.source for b in back] == [p.source for p in papers]


def _json_values():
    ints = st.integers(-(2**63), 2**63 - 1)  # test_files covers larger ones
    scalars = st.none() | st.booleans() | ints | st.floats(allow_nan=False, allow_infinity=False) | st.text()
    return st.recursive(
        scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3), max_leaves=8
    )


_ids = st.one_of(
    st.builds(lambda ym, n: f"{ym}.{n:05d}", st.sampled_from(["1501", "1706", "2401", "2512"]), st.integers(0, 99999)),
    st.builds(lambda m, n: f"hep-th/99{m:02d}{n:03d}", st.integers(1, 12), st.integers(0, 999)),
    st.text("0123456789abcdef", min_size=16, max_size=16).map(lambda h: "pt:" + h),
    st.text(string.ascii_lowercase + string.digits + "._-", min_size=1, max_size=12).map(lambda s: "doi:10.1234/" + s),
    st.text(string.ascii_letters + string.digits, min_size=1, max_size=8).map(lambda s: "beir:scifact:" + s),
)
_dates = st.one_of(
    st.none(),
    st.dates().map(lambda d: d.isoformat()),
    st.datetimes(timezones=st.just(None)).map(lambda d: d.strftime("%Y-%m-%dT%H:%M:%SZ")),
)
_papers = st.builds(
    Paper,
    id=_ids,
    title=st.text(max_size=80),
    abstract=st.text(max_size=200),
    authors=st.lists(st.text(max_size=30), max_size=4),
    categories=st.lists(st.sampled_from(["cs.CL", "cs.LG", "hep-th", "math.CO", "q-bio"]), max_size=3),
    submitted=_dates,
    updated=_dates,
    version=st.none() | st.integers(1, 20),
    versions=st.lists(st.builds(Version, st.integers(1, 9), _dates), max_size=3),
    doi=st.none() | st.text(string.ascii_lowercase + "/.", max_size=10).map(lambda s: "10.5555/x" + s),
    journal_ref=st.none() | st.text(max_size=40),
    comments=st.none() | st.text(max_size=40),
    license=st.none() | st.just("http://creativecommons.org/licenses/by/4.0/"),
    links=st.dictionaries(st.sampled_from(["code", "project", "html"]), st.text(max_size=30), max_size=2),
    extra=st.dictionaries(st.text(max_size=10), _json_values(), max_size=3),
    source=st.sampled_from(["snapshot", "arxiv-oai", "hf-daily", ""]),
)


def _normalised(papers: list[Paper]) -> list[Paper]:
    out = []
    for p in papers:
        try:
            out.append(p.normalised())
        except RecordError:
            continue
    return out


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_papers, min_size=1, max_size=5))
def test_jsonl_round_trip_property(generated):
    papers = _normalised(generated)
    assume(papers)
    back = jsonl_round_trip(papers)
    assert [b.content_hash() for b in back] == [p.content_hash() for p in papers]
    assert [b.to_dict() | {"source": ""} for b in back] == [p.to_dict() | {"source": ""} for p in papers]


# ------------------------------------------------------------------- BibTeX


def test_bibtex_entry_for_an_arxiv_paper():
    p = Paper(
        id="1706.03762",
        title="Attention Is All You Need",
        authors=["Ashish Vaswani", "Noam Shazeer"],
        categories=["cs.CL", "cs.LG"],
        submitted="2017-06-12T17:57:34Z",
        doi="10.5555/3295222.3295349",
    ).normalised()
    text = bibtex_text([p])
    assert text == (
        "@misc{vaswani2017attention,\n"
        "  title = {Attention Is All You Need},\n"
        "  author = {Ashish Vaswani and Noam Shazeer},\n"
        "  year = {2017},\n"
        "  month = jun,\n"
        "  eprint = {1706.03762},\n"
        "  archivePrefix = {arXiv},\n"
        "  primaryClass = {cs.CL},\n"
        "  doi = {10.5555/3295222.3295349},\n"
        "  url = {https://arxiv.org/abs/1706.03762}\n"
        "}\n"
    )


def test_bibtex_article_with_journal_and_keys_deduplicated():
    a = Paper(
        id="doi:10.1103/physrevd.76.013009",
        title="The Calculation of Diphotons",
        authors=["C. Bal\\'azs"],
        doi="10.1103/PhysRevD.76.013009",
        journal_ref="Phys.Rev.D76:013009,2007",
        extra={"year": 2007},
    )
    b = Paper(id="pt:0123456789abcdef", title="Calculation, again", authors=["Csaba Balázs"], extra={"year": 2007})
    entries = bibtex.parse_entries(bibtex_text([a.normalised(), b.normalised(), b.normalised()]))
    assert [(e.type, e.key) for e in entries] == [
        ("article", "balazs2007calculation"),
        ("misc", "balazs2007calculationb"),
        ("misc", "balazs2007calculationc"),
    ]
    assert entries[0].fields["journal"] == "Phys.Rev.D76:013009,2007"
    assert entries[0].fields["doi"] == "10.1103/PhysRevD.76.013009" and "papertide-id" not in entries[0].fields
    assert entries[1].fields["papertide-id"] == "pt:0123456789abcdef"  # not derivable from the title


def test_cite_keys():
    def key(**kw) -> str:
        return export.cite_key(Paper(id="pt:0123456789abcdef", **kw))

    attention = key(title="Attention Is All You Need", authors=["Ashish Vaswani"], submitted="2017-06-12")
    assert attention == "vaswani2017attention"
    assert key(title="A Survey of $\\alpha$-{BERT} Models", authors=["Neal J. Evans II"]) == "evanssurvey"
    accents = key(title="On the G{\\\"o}del Numbering", authors=["Kurt G\\\"odel"], extra={"year": 1931})
    assert accents == "godel1931godel"
    assert key(title="", authors=[]) == "anon"


def test_latex_survives_and_specials_are_escaped():
    title = "AT&T saves 100% of C# time with $\\alpha_1$, {BERT} and Koll\\'ar's \\& co"
    p = Paper(id="pt:0123456789abcdef", title=title).normalised()
    text = bibtex_text([p])
    assert "title = {AT\\&T saves 100\\% of C\\# time with $\\alpha_1$, {BERT} and Koll\\'ar's \\& co}" in text
    (back,) = bibtex.parse_text(text)
    assert back.title == title.replace("\\&", "&")  # \& reads back as the character it escapes
    assert back.id == p.id


def test_unbalanced_braces_cannot_break_the_file():
    odd = [
        Paper(id="pt:0123456789abcdef", title="Open { brace", authors=["Close } Brace"]),
        Paper(id="pt:fedcba9876543210", title="Escaped \\{ only"),
        Paper(id="2401.17377", title="After them"),
    ]
    text = bibtex_text([p.normalised() for p in odd])
    assert "Open \\textbraceleft{} brace" in text and "Escaped \\textbraceleft{} only" in text
    back = list(bibtex.parse_text(text))
    assert [b.id for b in back] == ["pt:0123456789abcdef", "pt:fedcba9876543210", "2401.17377"]
    assert back[0].authors == ["Close \\textbraceright{} Brace"]


def test_bibtex_round_trip_of_every_fixture_paper():
    papers = fixture_papers()
    text = bibtex_text(papers)
    back = list(bibtex.parse_text(text))
    assert not [b for b in back if isinstance(b, Rejected)]
    assert [(b.id, b.title, b.authors) for b in back] == [(p.id, p.title, p.authors) for p in papers]
    assert text.count("@") == len(papers)
    keys = [e.key for e in bibtex.parse_entries(text)]
    assert len(set(keys)) == len(keys)


_word = st.text(string.ascii_letters + "éü0123456789", min_size=1, max_size=8)
_token = st.one_of(
    _word,
    _word.map(lambda w: "{" + w + "}"),
    st.sampled_from(["&", "%", "#", "\\&", "$\\alpha$", "\\'e", '"', "@", ",", "and", "AND", "others", "Jr", "II",
                     "\\\\", "~", "_", "^", "(", ")", "=", "{}", "{,}", "{\\\"o}"]),
)  # fmt: skip
_latexish = st.lists(_token, min_size=1, max_size=8).flatmap(
    lambda tokens: st.lists(st.sampled_from([" ", "", "  "]), min_size=len(tokens), max_size=len(tokens)).map(
        lambda seps: "".join(t + s for t, s in zip(tokens, seps))
    )
)


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.one_of(_ids, st.none()), _latexish, st.lists(_latexish, max_size=4), st.none() | st.just("10.1000/Abc")
        ),
        min_size=1,
        max_size=4,
    )
)
def test_bibtex_round_trip_property(generated):
    papers = []
    for pid, title, authors, doi in generated:
        try:
            papers.append(Paper(id=pid or local_id(title=title), title=title, authors=authors, doi=doi).normalised())
        except RecordError:
            continue
    assume(papers)
    back = list(bibtex.parse_text(bibtex_text(papers)))
    assert [type(b) for b in back] == [Paper] * len(papers), back
    for p, b in zip(papers, back):
        assert b.id == p.id
        assert b.title == bibtex.unescape(p.title)
        assert b.authors == [bibtex.unescape(a) for a in p.authors]
