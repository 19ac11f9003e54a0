"""Reading papers from files: format detection, each reader field by field, bad input."""

from __future__ import annotations

import gzip
import json
import shutil
import tempfile
from pathlib import Path

import pytest
from conftest import SHARED_DATA
from hypothesis import given, settings
from hypothesis import strategies as st

from papertide.errors import FormatError
from papertide.paper import MAX_TITLE, Paper, Version, local_id
from papertide.sources import Deleted, Rejected, files

FIXTURES = Path(__file__).parent / "fixtures" / "files"
SHARED = SHARED_DATA
SNAPSHOT_SAMPLE = SHARED / "formats" / "kaggle-arxiv-metadata-snapshot-200.jsonl"
DEMO = Path(__file__).parent.parent / "papertide" / "data" / "demo_papers.jsonl"


def papers(items) -> list[Paper]:
    return [i for i in items if isinstance(i, Paper)]


def rejects(items) -> list[Rejected]:
    return [i for i in items if isinstance(i, Rejected)]


def gz_copy(src: Path, dest: Path) -> Path:
    with open(src, "rb") as f, gzip.open(dest, "wb") as g:
        shutil.copyfileobj(f, g)
    return dest


# ---------------------------------------------------------------- detection


@pytest.mark.parametrize(
    "name, expected",
    [
        ("papers.jsonl", "jsonl"),
        ("snapshot.jsonl", "arxiv-snapshot"),
        ("beir/scifact-mini/corpus.jsonl", "beir"),
        ("oai-listrecords.xml", "oai-xml"),
        ("refs.bib", "bibtex"),
    ],
)
def test_detects_each_format_plain_and_gzipped(name, expected, tmp_path):
    src = FIXTURES / name
    assert files.detect_format(src) == expected
    # Content decides, not the name: a gzipped copy with a neutral name is still recognised.
    assert files.detect_format(gz_copy(src, tmp_path / "data.gz")) == expected


def test_detects_the_demo_corpus_and_the_real_snapshot():
    assert files.detect_format(DEMO) == "jsonl"
    if SNAPSHOT_SAMPLE.exists():
        assert files.detect_format(SNAPSHOT_SAMPLE) == "arxiv-snapshot"


def test_detection_looks_past_a_malformed_first_line(tmp_path):
    f = tmp_path / "x.txt"
    f.write_text('{"_id": "1", "title": \n{"_id": "2", "title": "t", "text": "x"}\n')
    assert files.detect_format(f) == "beir"


def test_bibtex_after_comments_is_detected(tmp_path):
    f = tmp_path / "refs.txt"
    f.write_text("% exported by a reference manager\n\n  @Article{k, title={T}}\n")
    assert files.detect_format(f) == "bibtex"


def test_extension_decides_when_the_content_is_silent(tmp_path):
    for name, expected in [("a.bib", "bibtex"), ("b.jsonl", "jsonl"), ("c.jsonl.gz", "jsonl")]:
        f = tmp_path / name
        f.write_text("\n\n")
        assert files.detect_format(f) == expected
        assert list(files.read(f)) == []


@pytest.mark.parametrize(
    "content, message",
    [
        ("hello world\n", "cannot tell the file format"),
        ('{"foo": 1}\n', "cannot tell the file format"),
        ('[{"title": "x"}]\n', "a JSON array, not JSON lines"),
        ('<?xml version="1.0"?>\n<feed xmlns="http://www.w3.org/2005/Atom"></feed>\n', "not an OAI-PMH response"),
    ],
)
def test_unknown_content_raises_format_error_naming_file_and_formats(tmp_path, content, message):
    f = tmp_path / "mystery.dat"
    f.write_text(content)
    with pytest.raises(FormatError) as e:
        files.detect_format(f)
    assert str(f) in str(e.value) and message in str(e.value)
    if "cannot tell" in message:
        assert "jsonl, arxiv-snapshot, beir, oai-xml, bibtex" in str(e.value)


def test_unknown_format_name_is_a_value_error_listing_valid_ones():
    with pytest.raises(ValueError, match="'word'.*jsonl, arxiv-snapshot, beir, oai-xml, bibtex"):
        files.read(FIXTURES / "papers.jsonl", "word")


def test_unreadable_file_raises_format_error_when_iterated(tmp_path):
    missing = tmp_path / "nope.jsonl"
    items = files.read(missing)  # lazy: the ingest loop's error handling covers it
    with pytest.raises(FormatError, match="nope.jsonl.*cannot read"):
        next(items)
    with pytest.raises(FormatError, match="cannot read"):
        list(files.read(tmp_path, "jsonl"))  # a directory


# ----------------------------------------------------------- papertide JSONL


def test_papertide_jsonl_fields():
    items = list(files.read(FIXTURES / "papers.jsonl"))
    assert rejects(items) == []
    full, demo_like, with_doi, pasted = papers(items)
    assert full.id == "1706.03762" and full.source == "arxiv-oai"
    assert full.authors == ["Ashish Vaswani", "Noam Shazeer", "Niki Parmar"]
    assert full.categories == ["cs.CL", "cs.LG"]
    assert full.versions == [Version(1, "2017-06-12T17:57:34Z"), Version(7, "2023-08-02T00:41:18Z")]
    assert full.version == 7 and full.updated == "2023-08-02T00:41:18Z"
    assert full.links["code"] == "https://github.com/tensorflow/tensor2tensor"
    assert full.extra == {"ai_summary": "Transformers replace recurrence with attention."}
    title = "Infini-gram: Scaling Unbounded n-gram Language Models to a Trillion Tokens"
    assert demo_like.id == local_id(title=title) and demo_like.source == "jsonl"
    assert demo_like.abstract.startswith("Are n-gram language models")
    assert with_doi.id == "doi:10.18653/v1/n19-1423" and with_doi.doi == "10.18653/v1/N19-1423"
    assert pasted.id == "2401.17377" and pasted.version == 2 and pasted.categories == ["cs.CL"]


def test_demo_corpus_reads_43_papers():
    items = list(files.read(DEMO))
    assert rejects(items) == []
    got = papers(items)
    assert len(got) == 43 and len({p.id for p in got}) == 43
    assert all(p.id.startswith("pt:") and p.title and p.abstract for p in got)
    if (SHARED / "seed_papers.jsonl").exists():
        assert [p.id for p in papers(files.read(SHARED / "seed_papers.jsonl"))] == [p.id for p in got]


# -------------------------------------------------------------- arXiv snapshot


def test_snapshot_fields():
    items = list(files.read(FIXTURES / "snapshot.jsonl"))
    assert rejects(items) == []
    attention, old_style, no_parsed = papers(items)
    assert attention.id == "1706.03762" and attention.source == "snapshot"
    assert attention.title == "Attention Is All You Need"
    assert attention.abstract.startswith("The dominant sequence") and "\n" not in attention.abstract
    assert attention.authors[:2] == ["Ashish Vaswani", "Noam Shazeer"] and len(attention.authors) == 8
    assert attention.categories == ["cs.CL", "cs.LG"]
    assert [v.version for v in attention.versions] == [1, 2, 7] and attention.version == 7
    assert attention.submitted == "2017-06-12T17:57:34Z"
    assert attention.updated == "2023-08-02T00:41:18Z"  # the latest version, not update_date
    assert attention.license == "http://arxiv.org/licenses/nonexclusive-distrib/1.0/"
    assert attention.comments == "15 pages, 5 figures" and attention.doi is None
    assert attention.extra == {"submitter": "Llion Jones"}

    assert old_style.id == "hep-th/9901001"
    assert old_style.title == "Tensionless strings and the $\\alpha'$ expansion"  # LaTeX kept
    assert old_style.authors == ["Robert C. Myers Jr.", "Juan Martín Maldacena"]  # suffix; affiliation dropped
    assert old_style.categories == ["hep-th", "gr-qc"]
    assert old_style.submitted == "1999-01-01T12:00:00Z"
    assert old_style.updated == "2008-11-26"  # one version: update_date
    assert old_style.doi == "10.1103/PhysRevD.59.086001"
    assert old_style.journal_ref == "Phys.Rev. D59 (1999) 086001"
    assert old_style.extra == {"report_no": "McGill-98/37", "submitter": "Robert C. Myers"}
    assert old_style.license is None

    assert no_parsed.authors == ["Ileana Streinu", "Louis Theran"]  # from the authors string


def snapshot_line(**changes) -> str:
    record = {
        "id": "0704.0002",
        "submitter": "Louis Theran",
        "authors": "Ileana Streinu and Louis Theran",
        "title": "Sparsity-certifying Graph Decompositions",
        "abstract": "We describe a new algorithm.",
        "categories": "math.CO cs.CG",
        "versions": [{"version": "v1", "created": "Sat, 31 Mar 2007 02:26:18 GMT"}],
        "update_date": "2008-12-13",
        "authors_parsed": [["Streinu", "Ileana", ""], ["Theran", "Louis", ""]],
    }
    record.update(changes)
    return json.dumps({k: v for k, v in record.items() if v is not ...})


@pytest.mark.parametrize(
    "changes, reason",
    [
        ({"id": ...}, "record has no id"),
        ({"id": "0704.00002"}, "not an arXiv id"),
        ({"id": 704.0002}, "'id' must be a string"),
        ({"title": "  "}, "record has no title"),
        ({"versions": [{"version": "one", "created": "x"}]}, "bad version entry"),
        ({"versions": [{"version": "v1", "created": "someday"}]}, "not a date"),
        ({"categories": "math.CO Not-A-Category!"}, "bad category"),
        ({"title": ["a", "list"]}, "'title' must be a string"),
    ],
)
def test_snapshot_bad_records_are_rejected_with_their_line(tmp_path, changes, reason):
    f = tmp_path / "snap.jsonl"
    f.write_text(snapshot_line() + "\n" + snapshot_line(**changes) + "\n" + snapshot_line(id="0704.0003") + "\n")
    items = list(files.read(f, "arxiv-snapshot"))
    assert [p.id for p in papers(items)] == ["0704.0002", "0704.0003"]
    (r,) = rejects(items)
    assert r.where == f"{f}:2" and reason in r.reason


@pytest.mark.skipif(not SNAPSHOT_SAMPLE.exists(), reason="shared snapshot sample not present")
def test_real_snapshot_sample_reads_200_papers_without_rejects():
    items = list(files.read(SNAPSHOT_SAMPLE))
    assert rejects(items) == []
    got = papers(items)
    assert len(got) == 200 and len({p.id for p in got}) == 200
    first = got[0]
    assert first.id == "0704.0001" and first.authors[0] == "C. Balázs"
    assert first.submitted == "2007-04-02T19:18:42Z" and first.updated == "2007-07-24T20:10:27Z"
    assert first.extra["report_no"] == "ANL-HEP-PR-07-12"
    assert all(p.title and p.categories and p.versions and p.submitted for p in got)
    assert "Neal J. Evans II" in next(p for p in got if p.id == "0704.0009").authors


# ------------------------------------------------------------------- BEIR


def test_beir_corpus_fields_and_dataset_name():
    items = list(files.read(FIXTURES / "beir" / "scifact-mini" / "corpus.jsonl"))
    assert rejects(items) == []
    first, untitled, third = papers(items)
    assert first.id == "beir:scifact-mini:4983" and first.source == "beir"
    assert first.title.startswith("Microstructural development") and first.abstract.startswith("Alterations")
    assert first.extra == {}  # empty metadata is dropped
    assert untitled.title == "" and untitled.abstract.startswith("Induction")
    assert untitled.extra == {"metadata": {"url": "https://example.org/5836"}}
    assert third.id == "beir:scifact-mini:7912"


def test_beir_dataset_argument_and_bad_documents(tmp_path):
    f = tmp_path / "corpus.jsonl"
    lines = [
        {"_id": "d1", "title": "T", "text": "x"},
        {"_id": 42, "title": "", "text": "numeric ids happen"},
        {"title": "no id", "text": "x"},
        {"_id": "has space", "text": "x"},
        {"_id": "d5", "title": "", "text": ""},
    ]
    f.write_text("".join(json.dumps(d) + "\n" for d in lines))
    items = list(files.read(f, dataset="nfcorpus"))
    assert [p.id for p in papers(items)] == ["beir:nfcorpus:d1", "beir:nfcorpus:42"]
    assert [(r.where, r.reason.split(" ")[0]) for r in rejects(items)] == [
        (f"{f}:3", "document"),
        (f"{f}:4", "BEIR"),
        (f"{f}:5", "beir:nfcorpus:d5:"),
    ]


# ----------------------------------------------------------------- OAI-PMH


def test_oai_xml_is_delegated_to_the_oai_reader():
    oai = pytest.importorskip("papertide.sources.arxiv_oai", reason="arxiv_oai is written concurrently")
    if not hasattr(oai, "read_file"):
        pytest.skip("papertide.sources.arxiv_oai.read_file does not exist yet")
    items = list(files.read(FIXTURES / "oai-listrecords.xml"))
    (paper,) = papers(items)
    assert paper.id == "2401.17377" and paper.authors == ["Jiacheng Liu", "Sewon Min"]
    assert [i.id for i in items if isinstance(i, Deleted)] == ["2401.00001"]


def test_gzipped_oai_xml_is_a_clear_format_error(tmp_path):
    f = gz_copy(FIXTURES / "oai-listrecords.xml", tmp_path / "records.xml.gz")
    with pytest.raises(FormatError, match="gzipped OAI-PMH XML"):
        list(files.read(f))


# --------------------------------------------------------------- bad input


def test_bad_jsonl_lines_are_rejected_and_good_ones_come_through(tmp_path):
    good = lambda n: json.dumps({"title": f"Good paper {n}", "abstract": "fine"}).encode()  # noqa: E731
    long_title = json.dumps({"title": "x" * (MAX_TITLE + 1)}).encode()
    f = tmp_path / "mixed.jsonl"
    f.write_bytes(
        b"\n".join(
            [
                good(1),  # 1
                b'{"title": "unterminated',  # 2
                b"",  # 3 blank: skipped
                b"[1, 2, 3]",  # 4
                b'{"title": "caf\xe9 latin-1"}',  # 5
                b'{"abstract": "no title and no id"}',  # 6
                long_title,  # 7
                b'{"title": "x", "colour": "blue"}',  # 8
                good(2),  # 9
                b'{"title": "the file was cut he',  # 10, no newline at the end
            ]
        )
    )
    items = list(files.read(f, "jsonl"))
    assert [p.title for p in papers(items)] == ["Good paper 1", "Good paper 2"]
    got = {r.where: r.reason for r in rejects(items)}
    assert list(got) == [f"{f}:{n}" for n in (2, 4, 5, 6, 7, 8, 10)]
    assert got[f"{f}:2"].startswith("malformed JSON: Unterminated string")
    assert got[f"{f}:4"] == "expected a JSON object, found list"
    assert got[f"{f}:5"] == "not valid UTF-8 (byte 0xE9 at column 15)"
    assert "neither DOI nor title" in got[f"{f}:6"]
    assert f"title is {MAX_TITLE + 1:,} characters (limit {MAX_TITLE:,})" in got[f"{f}:7"]
    assert "unknown field(s): colour" in got[f"{f}:8"]
    assert got[f"{f}:10"].startswith("the file ends in the middle of this line")


def test_a_last_line_without_newline_is_fine_when_complete(tmp_path):
    f = tmp_path / "a.jsonl"
    f.write_text('{"title": "one"}\r\n{"title": "two"}')  # CRLF, no final newline
    assert [p.title for p in papers(files.read(f))] == ["one", "two"]


def test_over_long_line_is_skipped(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "MAX_LINE_BYTES", 100)
    f = tmp_path / "big.jsonl"
    f.write_text('{"title": "before"}\n{"title": "' + "y" * 500 + '"}\n{"title": "after"}\n')
    items = list(files.read(f, "jsonl"))
    assert [p.title for p in papers(items)] == ["before", "after"]
    (r,) = rejects(items)
    assert r.where == f"{f}:2" and r.reason == "line is 514 bytes, over the 100 bytes limit; skipped"


def test_nesting_and_surrogates_are_rejected(tmp_path):
    f = tmp_path / "odd.jsonl"
    f.write_text("[" * 100_000 + "\n" + '{"title": "lone \\ud800 surrogate"}\n' + '{"title": "ok \\ud83d\\ude00"}\n')
    items = list(files.read(f, "jsonl"))
    assert [p.title for p in papers(items)] == ["ok \N{GRINNING FACE}"]
    assert [(r.where, r.reason[:20]) for r in rejects(items)] == [
        (f"{f}:1", "malformed JSON: nest"),
        (f"{f}:2", rejects(items)[1].reason[:20]),
    ]
    assert "unpaired surrogate" in rejects(items)[1].reason


def test_huge_numbers_in_extra_give_a_paper_or_a_reject_never_an_exception(tmp_path):
    f = tmp_path / "big.jsonl"
    f.write_text('{"title": "Big", "extra": {"n": 123456789012345678901234567890}}\n{"title": "next"}\n')
    items = list(files.read(f, "jsonl"))
    assert len(items) == 2 and papers(items)[-1].title == "next"
    assert isinstance(items[0], Paper) or items[0].where == f"{f}:1"


def test_utf8_bom_and_utf16_files_are_decoded(tmp_path):
    text = '{"title": "Gödel and Ünicode"}\n{"title": "second"}\n'
    bom8 = tmp_path / "bom8.jsonl"
    bom8.write_bytes(b"\xef\xbb\xbf" + text.encode())
    le = tmp_path / "le.jsonl"
    le.write_bytes(text.encode("utf-16"))  # with a BOM
    be = tmp_path / "be.jsonl"
    be.write_bytes(b"\xfe\xff" + text.encode("utf-16-be"))
    for f in (bom8, le, be):
        assert files.detect_format(f) == "jsonl"
        assert [p.title for p in papers(files.read(f))] == ["Gödel and Ünicode", "second"]


def test_broken_utf16_is_rejected_by_line(tmp_path):
    f = tmp_path / "u16.jsonl"
    body = '{"title": "one"}\n'.encode("utf-16-le") + "\ud800".encode("utf-16-le", "surrogatepass")
    body += '{"title": "x"}\n{"title": "three"}\n'.encode("utf-16-le") + b"\x00"  # odd final byte
    f.write_bytes(b"\xff\xfe" + body)
    items = list(files.read(f, "jsonl"))
    assert [p.title for p in papers(items)] == ["one", "three"]
    assert [(r.where, r.reason) for r in rejects(items)] == [
        (f"{f}:2", "not valid UTF-16"),
        (f"{f}:4", "the file ends in the middle of this line (not valid UTF-16)"),
    ]


def test_gzipped_jsonl_streams_and_a_cut_gzip_raises_after_the_good_part(tmp_path):
    src = tmp_path / "many.jsonl"
    records = (json.dumps({"title": f"Paper number {i}", "abstract": "a" * 200}) for i in range(2000))
    src.write_text("".join(r + "\n" for r in records))
    gz = gz_copy(src, tmp_path / "many.jsonl.gz")
    assert len(papers(files.read(gz))) == 2000
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(gz.read_bytes()[: gz.stat().st_size // 2])
    seen = []
    with pytest.raises(FormatError, match="cut.jsonl.gz: the compressed data is damaged or cut short"):
        for item in files.read(cut):
            seen.append(item)
    assert len(seen) > 100 and all(isinstance(i, Paper) for i in seen)


def test_lines_never_hold_more_than_one_line(tmp_path):
    f = tmp_path / "l.txt"
    f.write_bytes(b"a\r\n\nb")
    got = [(ln.number, ln.text, ln.complete) for ln in files.lines(f)]
    assert got == [(1, "a", True), (2, "", True), (3, "b", False)]


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)
_keys = st.sampled_from(
    ["id", "_id", "title", "text", "abstract", "authors", "authors_parsed", "versions", "update_date", "categories",
     "doi", "journal-ref", "license", "submitter", "metadata", "links", "extra", "version", "submitted"]
)  # fmt: skip
_helpful = st.sampled_from(
    ["0704.0001", [["Doe", "J.", ""]], [{"version": "v1", "created": "Mon, 2 Apr 2007 19:18:42 GMT"}]]
)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.dictionaries(_keys, _json | _helpful), min_size=1, max_size=3), st.sampled_from(files.FORMATS[:3]))
def test_any_json_record_gives_a_paper_or_a_reject(records, fmt):
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "fuzz.jsonl"
        f.write_text("".join(json.dumps(r) + "\n" for r in records))
        items = list(files.read(f, fmt))
    assert len(items) == len(records)
    assert all(isinstance(i, Paper) or (isinstance(i, Rejected) and i.reason) for i in items)
