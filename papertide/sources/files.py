"""Papers from files: papertide JSONL, the arXiv metadata snapshot, BEIR corpora,
saved OAI-PMH XML and BibTeX.

People arrive with papers in files: an export from another papertide, the public
arXiv snapshot (millions of JSON lines, several GB), a BEIR ``corpus.jsonl`` to
evaluate search on, a harvest saved to disk, a ``.bib`` from their reference
manager. This module tells the formats apart and turns each record into an item.

Files are streamed line by line and may be gzipped. One bad record (malformed
JSON, invalid UTF-8, a line over 10 MB, a missing title) becomes a
``Rejected("path:line", reason)`` and reading goes on; only a problem with the
whole file (unreadable, unknown format, damaged compression) raises
:class:`FormatError` naming the file.
"""

from __future__ import annotations

import codecs
import gzip
import io
import json
import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

from papertide.errors import FormatError, InvalidIdError, RecordError
from papertide.paper import (
    Paper,
    Version,
    beir_id,
    clean_text,
    local_id,
    parse_arxiv_id,
    parse_date,
    parse_paper_id,
)
from papertide.sources import Item, Rejected

FORMATS = ("jsonl", "arxiv-snapshot", "beir", "oai-xml", "bibtex")

MAX_LINE_BYTES = 10 * 1024 * 1024  # one record larger than this is not a paper
_SNIFF_LINES = 50  # non-blank lines looked at to tell the format
_GZIP_MAGIC = b"\x1f\x8b"
_BOMS = (  # UTF-32 first: its little-endian BOM starts with UTF-16's
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_BY_EXTENSION = {".jsonl": "jsonl", ".ndjson": "jsonl", ".bib": "bibtex", ".bibtex": "bibtex", ".xml": "oai-xml"}
_SNAPSHOT_KEYS = frozenset({"authors_parsed", "update_date", "submitter"})
_BIBTEX_START = re.compile(r"\s*@\s*[A-Za-z]+\s*[{(]")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


# ------------------------------------------------------------------ public API


def read(path: str | Path, format: str | None = None, *, dataset: str | None = None) -> Iterator[Item]:
    """Items read from ``path``; the format is detected unless ``format`` names one.

    ``dataset`` names a BEIR corpus (default: the file's directory name). An unknown
    ``format`` raises ValueError at once; an unreadable file or unknown format raises
    FormatError when iteration starts, so a caller's error handling covers it.
    """
    if format is not None and format not in FORMATS:
        raise ValueError(f"unknown file format {format!r}; valid formats: {', '.join(FORMATS)}")
    return _read(Path(path), format, dataset)


def detect_format(path: str | Path) -> str:
    """The format of ``path`` from its content, then its extension; FormatError if neither tells."""
    path = Path(path)
    found = _sniff(path)
    if found:
        return found
    name = path.name.lower().removesuffix(".gz")
    by_ext = _BY_EXTENSION.get(Path(name).suffix)
    if by_ext:
        return by_ext
    raise FormatError(f"{path}: cannot tell the file format; give one of: {', '.join(FORMATS)}")


# ------------------------------------------------------------- reading lines


@dataclass(slots=True)
class Line:
    """One line of a text file; ``text`` is None when it could not be read (``problem`` says why)."""

    number: int
    text: str | None
    problem: str = ""
    complete: bool = True  # False for a last line with no newline: the file may be cut short


class _Transcoder(io.RawIOBase):
    """UTF-16/32 bytes in, UTF-8 bytes out, so one line reader serves every encoding.

    Unpaired surrogates pass through as bytes that are not valid UTF-8 (the line
    reader rejects that line); an odd byte at the end becomes an invalid byte too.
    """

    def __init__(self, source: BinaryIO, encoding: str) -> None:
        super().__init__()
        self._source = source
        self._decoder = codecs.getincrementaldecoder(encoding)("surrogatepass")
        self._pending = b""
        self._offset = 0
        self._eof = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        while self._offset >= len(self._pending) and not self._eof:
            chunk = self._source.read(1 << 16)
            self._eof = not chunk
            try:
                text = self._decoder.decode(chunk, final=self._eof)
            except UnicodeDecodeError:
                text, self._eof = "\udcff", True
            self._pending, self._offset = text.encode("utf-8", "surrogatepass"), 0
        n = min(len(buffer), len(self._pending) - self._offset)
        buffer[:n] = self._pending[self._offset : self._offset + n]
        self._offset += n
        return n

    def close(self) -> None:
        self._source.close()
        super().close()


def _open(path: Path) -> tuple[BinaryIO, str]:
    """A binary stream of UTF-8 (gunzipped, transcoded from UTF-16/32) and the file's encoding."""
    try:
        f: BinaryIO = open(path, "rb")
        if f.peek(2)[:2] == _GZIP_MAGIC:  # type: ignore[attr-defined]
            f.close()
            f = gzip.open(path, "rb")  # type: ignore[assignment]
        head = f.peek(4)[:4]  # type: ignore[attr-defined]
    except (OSError, EOFError, zlib.error) as e:
        raise FormatError(f"{path}: cannot read the file ({_os_reason(e)})") from None
    for bom, encoding in _BOMS:
        if head.startswith(bom):
            return io.BufferedReader(_Transcoder(f, encoding)), encoding  # type: ignore[return-value]
    return f, "utf-8"


def _os_reason(e: BaseException) -> str:
    return getattr(e, "strerror", None) or str(e) or type(e).__name__


def lines(path: str | Path, *, start: int = 0, end: int | None = None, first_number: int = 1) -> Iterator[Line]:
    """The lines of a text file, without line ends, numbered from 1; never the whole file at once.

    ``start``/``end``/``first_number`` read just the lines of a byte range of a plain
    UTF-8 file (``start`` at a line start), for readers that split a file among processes.
    """
    path = Path(path)
    ranged = start > 0 or end is not None
    if ranged:
        try:
            stream: BinaryIO = open(path, "rb")
            stream.seek(start)
        except OSError as e:
            raise FormatError(f"{path}: cannot read the file ({_os_reason(e)})") from None
        encoding = "utf-8"
    else:
        stream, encoding = _open(path)
    label = "UTF-8" if encoding == "utf-8" else encoding.upper()
    position = start
    with stream:
        number = first_number - 1
        while end is None or position < end:
            raw = _readline(stream, path, number, MAX_LINE_BYTES + 1)
            if not raw:
                return
            position += len(raw)
            number += 1
            complete = raw.endswith(b"\n")
            if len(raw) > MAX_LINE_BYTES and not complete:
                skipped = _skip_line(stream, path, number)
                position += skipped
                size = len(raw) + skipped
                yield Line(number, None, f"line is {size:,} bytes, over the {_size(MAX_LINE_BYTES)} limit; skipped")
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                where = f" (byte 0x{raw[e.start]:02X} at column {e.start + 1})" if encoding == "utf-8" else ""
                yield Line(number, None, f"not valid {label}{where}", complete)
                continue
            if text.startswith("\ufeff"):
                text = text[1:]
            yield Line(number, text.rstrip("\n").rstrip("\r"), "", complete)


def _size(n: int) -> str:
    return f"{n // 2**20} MB" if n % 2**20 == 0 else f"{n:,} bytes"


def _readline(stream: BinaryIO, path: Path, number: int, limit: int) -> bytes:
    try:
        return stream.readline(limit)
    except (EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise FormatError(f"{path}: the compressed data is damaged or cut short after line {number} ({e})") from None
    except OSError as e:
        raise FormatError(f"{path}: reading failed after line {number} ({_os_reason(e)})") from None


def _skip_line(stream: BinaryIO, path: Path, number: int) -> int:
    """Read past the rest of an over-long line; return how many bytes were skipped."""
    skipped = 0
    while True:
        chunk = _readline(stream, path, number, 1 << 20)
        skipped += len(chunk)
        if not chunk or chunk.endswith(b"\n"):
            return skipped


# --------------------------------------------------------------- detection


def _sniff(path: Path) -> str | None:
    """The format the first lines show, or None when they do not tell."""
    seen = 0
    for line in lines(path):
        if line.text is None or not line.text.strip():
            continue
        text = line.text.lstrip()
        if text.startswith("<"):
            return _sniff_xml(path, text)
        if _BIBTEX_START.match(text):
            return "bibtex"
        if text.startswith("{"):
            found = _sniff_json(text)
            if found:
                return found
        elif text.startswith("[") and seen == 0:
            raise FormatError(f"{path}: a JSON array, not JSON lines (one object per line); convert it first")
        seen += 1
        if seen >= _SNIFF_LINES:
            return None
    return None


def _sniff_xml(path: Path, first: str) -> str:
    if first.startswith("<OAI-PMH") or (first.startswith("<?xml") and "<OAI-PMH" in _head_text(path)):
        return "oai-xml"
    raise FormatError(f"{path}: an XML file but not an OAI-PMH response; formats: {', '.join(FORMATS)}")


def _head_text(path: Path, limit: int = 8192) -> str:
    parts, size = [], 0
    for line in lines(path):
        parts.append(line.text or "")
        size += len(parts[-1])
        if size > limit:
            break
    return "\n".join(parts)


def _sniff_json(text: str) -> str | None:
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(obj, dict):
        return None
    if "_id" in obj:
        return "beir"
    versions = obj.get("versions")
    created = isinstance(versions, list) and any(isinstance(v, dict) and "created" in v for v in versions)
    if "id" in obj and (created or _SNAPSHOT_KEYS & obj.keys()):
        return "arxiv-snapshot"
    if "title" in obj or "id" in obj:
        return "jsonl"
    return None


# ----------------------------------------------------------------- readers


JSON_LINE_FORMATS = ("jsonl", "arxiv-snapshot", "beir")


def _read(path: Path, format: str | None, dataset: str | None) -> Iterator[Item]:
    if format is None:
        format = detect_format(path)
    if format == "oai-xml":
        yield from _read_oai(path)
    elif format == "bibtex":
        from papertide.sources import bibtex

        yield from bibtex.parse(((ln.number, ln.text, ln.problem) for ln in lines(path)), str(path))
    else:
        from papertide.sources import parallel

        if parallel.worth_it(path):
            yield from parallel.read_json_lines(path, format, dataset)
        else:
            yield from json_items(path, format, dataset)


def json_items(
    path: Path, format: str, dataset: str | None, *, start: int = 0, end: int | None = None, first_number: int = 1
) -> Iterator[Item]:
    """The items of a JSON-lines file (or of a byte range of one) in one of :data:`JSON_LINE_FORMATS`."""
    if format == "beir":
        name = dataset or path.parent.name or path.resolve().parent.name
        build: Callable[[dict], Paper] = lambda d: _beir_paper(d, name)  # noqa: E731
    elif format == "arxiv-snapshot":
        build = _snapshot_paper
    else:
        build = _jsonl_paper
    yield from _json_items(path, build, lines(path, start=start, end=end, first_number=first_number))


def _read_oai(path: Path) -> Iterator[Item]:
    try:
        with open(path, "rb") as f:
            gzipped = f.read(2) == _GZIP_MAGIC
    except OSError as e:
        raise FormatError(f"{path}: cannot read the file ({_os_reason(e)})") from None
    if gzipped:
        raise FormatError(f"{path}: gzipped OAI-PMH XML is not supported; decompress it first")
    from papertide.sources import arxiv_oai

    yield from arxiv_oai.read_file(path)


def _json_items(path: Path, build: Callable[[dict], Paper], source: Iterator[Line]) -> Iterator[Item]:
    """One item per JSON line: ``build(obj)``, normalised, or a Rejected saying why not."""
    for line in source:
        where = f"{path}:{line.number}"
        if line.text is None:
            reason = line.problem if line.complete else f"the file ends in the middle of this line ({line.problem})"
            yield Rejected(where, reason)
            continue
        if not line.text.strip():
            continue
        obj = _parse_json(line)
        if isinstance(obj, str):
            yield Rejected(where, obj)
            continue
        try:
            paper = build(obj).normalised()
            if _SURROGATE_ESCAPE.search(line.text):
                _check_encodable(paper)
        except (RecordError, InvalidIdError) as e:
            yield Rejected(where, str(e))
            continue
        yield paper


def _parse_json(line: Line) -> dict | str:
    """The JSON object on a line, or the reason it is not one."""
    try:
        obj = json.loads(line.text)  # type: ignore[arg-type]
    except json.JSONDecodeError as e:
        if not line.complete:
            return f"the file ends in the middle of this line ({e.msg} at column {e.colno})"
        return f"malformed JSON: {e.msg} at column {e.colno}"
    except RecursionError:
        return "malformed JSON: nested too deeply"
    if not isinstance(obj, dict):
        return f"expected a JSON object, found {type(obj).__name__ if obj is not None else 'null'}"
    return obj


def _check_encodable(paper: Paper) -> None:
    try:
        json.dumps(paper.to_dict(), ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise RecordError(f"{paper.id}: text holds an unpaired surrogate (\\ud800-\\udfff), not a character") from None


def _str(d: dict, key: str) -> str | None:
    """``d[key]`` when it is a string (or missing/null); RecordError for anything else."""
    value = d.get(key)
    if value is None or isinstance(value, str):
        return value
    raise RecordError(f"{key!r} must be a string, not {type(value).__name__}")


# papertide JSONL ---------------------------------------------------------


def _jsonl_paper(d: dict) -> Paper:
    """papertide's own JSON form (``Paper.to_dict``); the id is derived when missing."""
    d = dict(d)
    raw_id = d.get("id")
    if raw_id in (None, ""):
        d["id"] = local_id(doi=_str(d, "doi"), title=_str(d, "title"))
    elif isinstance(raw_id, str):
        d["id"], version = _canonical_id(raw_id)
        if version is not None and d.get("version") is None:
            d["version"] = version
    else:
        raise RecordError(f"id must be a string, not {type(raw_id).__name__}")
    if not d.get("source"):
        d["source"] = "jsonl"
    return Paper.from_dict(d)


def _canonical_id(text: str) -> tuple[str, int | None]:
    try:
        aid = parse_arxiv_id(text)
    except InvalidIdError:
        return parse_paper_id(text), None
    return aid.id, aid.version


# arXiv metadata snapshot -------------------------------------------------


def _snapshot_paper(d: dict) -> Paper:
    """A line of the public arXiv metadata snapshot (Kaggle ``arxiv-metadata-oai-snapshot``)."""
    raw_id = _str(d, "id")
    if not raw_id:
        raise RecordError("record has no id")
    pid = parse_arxiv_id(raw_id).id
    title = _str(d, "title")
    if not clean_text(title):
        raise RecordError(f"{pid}: record has no title")
    versions = _snapshot_versions(d.get("versions"), pid)
    updated = versions[-1].date if len(versions) > 1 else _date(_str(d, "update_date"), "update_date", pid)
    categories = _str(d, "categories") or ""
    return Paper(
        id=pid,
        title=title or "",
        abstract=_str(d, "abstract") or "",
        authors=_snapshot_authors(d),
        categories=categories.split(),
        submitted=versions[0].date if versions else None,
        updated=updated,
        version=versions[-1].version if versions else None,
        versions=versions,
        doi=_str(d, "doi"),
        journal_ref=_str(d, "journal-ref"),
        comments=_str(d, "comments"),
        license=_str(d, "license"),
        extra={"report_no": _str(d, "report-no"), "submitter": _str(d, "submitter")},
        source="snapshot",
    )


def _date(value: str | None, what: str, pid: str) -> str | None:
    try:
        return parse_date(value)
    except RecordError as e:
        raise RecordError(f"{pid}: {what}: {e}") from None


def _snapshot_versions(value: object, pid: str) -> list[Version]:
    """``[{"version": "v1", "created": "Mon, 2 Apr 2007 19:18:42 GMT"}, …]`` in version order."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise RecordError(f"{pid}: versions must be a list")
    out = []
    for v in value:
        tag = v.get("version") if isinstance(v, dict) else None
        m = re.fullmatch(r"v(\d+)", tag.strip()) if isinstance(tag, str) else None
        created = v.get("created") if isinstance(v, dict) else None
        if not m or int(m.group(1)) < 1 or not (created is None or isinstance(created, str)):
            raise RecordError(f"{pid}: bad version entry {str(v)[:80]!r}")
        out.append(Version(int(m.group(1)), _date(created, f"version {tag}", pid)))
    return sorted(out, key=lambda v: v.version)


def _snapshot_authors(d: dict) -> list[str]:
    """Names from ``authors_parsed`` ([keyname, forenames, suffix, affiliation…]), else from ``authors``."""
    parsed = d.get("authors_parsed")
    names = _parsed_names(parsed) if isinstance(parsed, list) and parsed else None
    return names if names is not None else split_author_string(_str(d, "authors") or "")


def _parsed_names(parsed: list) -> list[str] | None:
    """``[["Evans", "Neal J.", "II"], …]`` -> ``["Neal J. Evans II", …]``; None if not in that shape."""
    out = []
    try:
        for a in parsed:
            if type(a) is not list:
                return None
            parts = (a[1].strip(), a[0].strip(), a[2].strip() if len(a) > 2 else "")
            out.append(" ".join(p for p in parts if p))
    except (IndexError, AttributeError):
        return None
    return out


def split_author_string(text: str) -> list[str]:
    """``"A. One, B. Two and C. Three (Uni X)"`` -> names; parenthesised affiliations dropped."""
    previous = None
    while previous != text:  # innermost parentheses first, for nested ones
        previous, text = text, re.sub(r"\([^()]*\)", " ", text)
    return [n for n in (clean_text(p) for p in re.split(r",\s*(?:and\s+)?|\s+and\s+", text)) if n]


# BEIR corpus -------------------------------------------------------------


def _beir_paper(d: dict, dataset: str) -> Paper:
    """A BEIR ``corpus.jsonl`` document: ``{"_id", "title", "text", "metadata"}``."""
    doc_id = d.get("_id")
    if isinstance(doc_id, int) and not isinstance(doc_id, bool):
        doc_id = str(doc_id)
    if not isinstance(doc_id, str) or not doc_id:
        raise RecordError("document has no _id")
    metadata = d.get("metadata")
    return Paper(
        id=beir_id(dataset, doc_id),
        title=_str(d, "title") or "",
        abstract=_str(d, "text") or "",
        extra={"metadata": metadata} if isinstance(metadata, dict) else {},
        source="beir",
    )
