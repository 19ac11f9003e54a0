"""BibTeX: the parser (macros, concatenation, nesting, recovery) and entries mapped to papers."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from papertide.paper import Paper, local_id
from papertide.sources import Rejected, bibtex, files

REFS = Path(__file__).parent / "fixtures" / "files" / "refs.bib"


def parse(text: str) -> list:
    return list(bibtex.parse_text(text, "t.bib"))


def one(text: str) -> Paper:
    items = parse(text)
    assert len(items) == 1 and isinstance(items[0], Paper), items
    return items[0]


def rejects(items) -> list[Rejected]:
    return [i for i in items if isinstance(i, Rejected)]


# ------------------------------------------------------------------ fixture


def test_fixture_file_field_by_field():
    items = list(bibtex.read(REFS))
    got = {p.extra["bibtex_key"]: p for p in items if isinstance(p, Paper)}
    keys = ["vaswani2017attention", "devlin2018bert", "reimers2019sbert", "evans2007sparse", "semantic2023"]
    assert list(got) == keys

    v = got["vaswani2017attention"]
    assert v.id == "1706.03762" and v.source == "bibtex"
    assert v.title == "Attention is All you Need"
    assert v.authors == ["Ashish Vaswani", "Noam Shazeer", "Niki Parmar"]  # "others" dropped
    assert v.journal_ref == v.extra["venue"] == "Advances in Neural Information Processing Systems"  # @string
    assert v.extra["year"] == 2017 and v.extra["month"] == 12 and v.submitted is None  # no invented day
    assert v.categories == ["cs.CL"]
    assert v.links["url"] == "https://arxiv.org/abs/1706.03762"
    assert v.extra["keywords"] == ["transformers", "attention", "machine translation"]
    assert v.extra["bibtex_type"] == "inproceedings"

    d = got["devlin2018bert"]
    assert d.id == "1810.04805"  # Google Scholar's "arXiv preprint arXiv:…"
    assert d.title == "{BERT}: Pre-training of Deep Bidirectional Transformers for Language Understanding"
    assert d.journal_ref is None and "venue" not in d.extra
    assert d.authors == ["Jacob Devlin", "Ming-Wei Chang", "Kenton Lee", "Kristina Toutanova"]

    r = got["reimers2019sbert"]
    assert r.id == "doi:10.18653/v1/d19-1410" and r.doi == "10.18653/v1/D19-1410"
    assert r.title == "Sentence-{BERT}: Sentence Embeddings using {S}iamese {BERT}-Networks"
    assert r.authors == ["Nils Reimers", "Iryna Gurevych"]  # value spread over two lines
    assert r.extra["venue"] == (
        "Proceedings of the Annual Meeting of the Association for Computational Linguistics (ACL)"
    )  # a macro that is itself a concatenation, concatenated again
    assert r.abstract.endswith('We use {\\"u}ber-cheap siamese networks & save 65% of time.')

    e = got["evans2007sparse"]  # parenthesised entry, biblatex eprinttype and date
    assert e.id == "0704.0002" and e.version == 2
    assert e.authors == ["Neal J. Evans II", "Floris van der Tak", "Google Research"]
    assert e.title == "{Sparsity-certifying} Graph Decompositions for Koll{\\'a}r and G{\\\"o}del"
    assert e.submitted == "2007-03-31" and e.extra["year"] == 2007

    s = got["semantic2023"]
    title = "A Survey on Large Language Models for Recommendation"
    assert s.title == title and s.id == local_id(title=title)  # double braces removed once
    assert s.extra["month"] == 5 and "venue" not in s.extra

    bad = rejects(items)
    assert [r.where for r in bad] == [f"{REFS}:42", f"{REFS}:65"]
    assert "not closed (unbalanced braces) before the entry at line 47" in bad[0].reason
    assert "expected ',' or '}' after the value of 'title'" in bad[1].reason


def test_files_read_detects_and_delegates_bibtex():
    direct = [p.id for p in bibtex.read(REFS) if isinstance(p, Paper)]
    assert [p.id for p in files.read(REFS) if isinstance(p, Paper)] == direct and len(direct) == 5


# ------------------------------------------------------------------- parser


def test_string_macros_concatenation_and_numbers():
    p = one(
        """
        @string{ first = "Deep" }
        @String{second = {Learn} # "ing"}
        @misc{k, title = first # { } # second # " at " # 2024, year = 2024, month = feb}
        """
    )
    assert p.title == "Deep Learning at 2024"
    assert p.extra["year"] == 2024 and p.extra["month"] == 2


def test_nested_braces_and_quotes_inside_braces():
    p = one('@misc{k, title = {The {\\"O}ther {Side {of} "It"} \\{ok\\}}}')
    assert p.title == 'The {\\"O}ther {Side {of} "It"} \\{ok\\}'


def test_paren_entry_with_parenthesis_in_a_quoted_value():
    p = one('@article(k, title = "f(x) = y)", author = "Doe, J.")')
    assert p.title == "f(x) = y)" and p.authors == ["J. Doe"]


def test_several_entries_on_one_line_and_junk_between():
    items = parse("junk @misc{a, title={One}} more junk @misc{b, title={Two}}\n% @ not an entry")
    assert [p.title for p in items] == ["One", "Two"]


def test_comment_and_preamble_are_skipped():
    items = parse("@comment{ @misc{x, title={hidden}} }\n@preamble{ {\\foo} }\n@misc{k, title={Shown}}")
    assert [p.title for p in items] == ["Shown"]


def test_unbalanced_entry_in_the_middle_is_reported_where_it_starts():
    text = """@misc{a, title = {First}}

@article{b,
  title = {Never {closed},
  year = 2020
}
@misc{c, title = {Third}}
@misc{d, title = {Fourth}"""
    items = parse(text)
    assert [p.title for p in items if isinstance(p, Paper)] == ["First", "Third"]
    assert [(r.where, r.reason) for r in rejects(items)] == [
        ("t.bib:3", "entry is not closed (unbalanced braces) before the entry at line 7"),
        ("t.bib:8", "entry is not closed at the end of the file (unbalanced braces)"),
    ]


def test_syntax_errors_name_the_line():
    items = parse('@misc{a,\n  title = {T},\n  year 2020\n}\n@misc{b, title = {Fine}}\n@misc{c, title = "open}\n')
    assert [p.title for p in items if isinstance(p, Paper)] == ["Fine"]
    assert [(r.where, r.reason) for r in rejects(items)] == [
        ("t.bib:1", "line 3: expected '=' after the field name 'year'"),
        ("t.bib:6", 'a quoted value is not closed with "'),
    ]


def test_an_oversized_entry_is_skipped(monkeypatch):
    monkeypatch.setattr(bibtex, "MAX_ENTRY_CHARS", 50)
    items = parse("@misc{a, title = {" + "\n".join(["word"] * 40) + "}}\n@misc{b, title={Small}}")
    assert [p.title for p in items if isinstance(p, Paper)] == ["Small"]
    assert rejects(items)[0].where == "t.bib:1" and "over 50 characters" in rejects(items)[0].reason


def test_undecodable_line_rejects_its_entry_and_reading_goes_on(tmp_path):
    f = tmp_path / "latin1.bib"
    f.write_bytes(b"@misc{a,\n  title = {Caf\xe9}\n}\n@misc{b, title = {Fine}}\n% comment \xff\n")
    items = list(files.read(f))
    assert [p.title for p in items if isinstance(p, Paper)] == ["Fine"]
    assert [(r.where, r.reason) for r in rejects(items)] == [
        (f"{f}:1", "line 2: not valid UTF-8 (byte 0xE9 at column 15)"),
        (f"{f}:5", "not valid UTF-8 (byte 0xFF at column 11)"),
    ]


def test_gzipped_and_utf16_bib_files(tmp_path):
    text = "@misc{k, title = {Gödel's {Theorem}}, author = {Gödel, Kurt}}\n"
    gz = tmp_path / "refs.bib.gz"
    with gzip.open(gz, "wt", encoding="utf-8") as g:
        g.write(text)
    u16 = tmp_path / "refs16.bib"
    u16.write_bytes(text.encode("utf-16"))
    for f in (gz, u16):
        (p,) = list(bibtex.read(f))
        assert p.title == "Gödel's {Theorem}" and p.authors == ["Kurt Gödel"]


def test_entries_without_key_and_duplicate_fields():
    p = one("@misc{title = {Keyless}, title = {Second title ignored}}")
    assert p.title == "Keyless" and "bibtex_key" not in p.extra


# ------------------------------------------------------------------ mapping


@pytest.mark.parametrize(
    "fields, expected",
    [
        ("eprint = {2401.17377v3}, archivePrefix = {arXiv}", ("2401.17377", 3)),
        ("eprint = {hep-th/9901001}, eprinttype = {arxiv}", ("hep-th/9901001", None)),
        ("eprint = {arXiv:2401.17377}", ("2401.17377", None)),
        ("url = {https://arxiv.org/pdf/2401.17377v2.pdf}", ("2401.17377", 2)),
        ("doi = {10.48550/arXiv.2401.17377}", ("2401.17377", None)),
        ("note = {arXiv:1810.04805.}", ("1810.04805", None)),
        ("eprint = {hal-01234}, eprinttype = {hal}, doi = {10.1000/XYZ}", ("doi:10.1000/xyz", None)),
        ("url = {https://example.org/paper}", (local_id(title="A Title"), None)),
        ("papertide-id = {beir:scifact:42}, eprint = {2401.17377}, archivePrefix = {arXiv}", ("beir:scifact:42", None)),
    ],
)
def test_ids(fields, expected):
    p = one(f"@misc{{k, title = {{A Title}}, {fields}}}")
    assert (p.id, p.version) == expected


@pytest.mark.parametrize(
    "fields, reason",
    [
        ("eprint = {12345}, archivePrefix = {arXiv}", "not an arXiv id"),
        ("doi = {not a doi}", "not a DOI"),
        ("papertide-id = {garbage id}", "not a paper id"),
    ],
)
def test_bad_ids_are_rejected(fields, reason):
    (r,) = parse(f"@misc{{k, title = {{A Title}}, {fields}}}")
    assert isinstance(r, Rejected) and r.where == "t.bib:1" and reason in r.reason and "'k'" in r.reason


def test_entry_without_title_is_rejected():
    (r,) = parse("@misc{k, author = {Doe, Jane}, year = 2020}")
    assert isinstance(r, Rejected) and r.reason == "entry 'k': entry has no title"


def test_author_forms():
    assert bibtex.split_authors(
        "Doe, Jane and Evans, Jr., Neal and John von Neumann and {Barnes and Noble} and {Smith, J.} AND others"
    ) == ["Jane Doe", "Neal Evans Jr.", "John von Neumann", "Barnes and Noble", "Smith, J."]
    assert bibtex.split_authors("  ") == []


def test_dates_do_not_invent_precision():
    p = one("@misc{k, title = {T}, year = {2019}, month = {October}}")
    assert p.submitted is None and p.extra["year"] == 2019 and p.extra["month"] == 10
    p = one("@misc{k, title = {T}, date = {2019-10}}")
    assert p.submitted is None and p.extra["year"] == 2019 and p.extra["month"] == 10
    p = one("@misc{k, title = {T}, date = {2019-10-24}}")
    assert p.submitted == "2019-10-24"
    p = one("@misc{k, title = {T}, year = {in press}}")
    assert p.extra["year"] == "in press"


def test_escapes_become_characters_but_latex_stays():
    p = one("@misc{k, title = {AT\\&T: 100\\% of C\\# and $\\alpha_1$ \\\\& \\'e}}")
    assert p.title == "AT&T: 100% of C# and $\\alpha_1$ \\\\& \\'e"


_pieces = st.sampled_from(
    list('@{}()"#,=% \n\\aZ0')
    + ["@misc{", "@string{", "@comment(", "title", "author", " = ", " and ", "eprint", "archivePrefix", "arXiv"]
    + ["doi", "10.1/x", "date", "2019-10-24", "papertide-id", "jan"]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_pieces, max_size=60).map("".join))
def test_any_text_gives_papers_or_rejects_never_an_exception(text):
    for item in bibtex.parse_text(text, "t.bib"):
        assert isinstance(item, (Paper, Rejected))
        if isinstance(item, Rejected):
            assert item.where.startswith("t.bib:") and item.reason
