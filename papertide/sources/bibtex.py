"""BibTeX: a small parser that keeps line numbers, and entries turned into papers.

Reference managers, Google Scholar, DBLP and arXiv all hand out ``.bib`` files, so
papertide reads them (and ``export.py`` writes them). The parser follows BibTeX's
own rules: ``@type{key, field = {…} | "…" | 123 | macro # …}``, braces nest, ``@string``
defines macros, ``jan``…``dec`` are predefined, ``@comment`` and ``@preamble`` are
skipped and text between entries is ignored. A broken entry (unbalanced braces, a
syntax error) is reported as ``Rejected("path:line")`` at the line where it starts and
reading resumes at the next line that begins with ``@``.

Text is kept as LaTeX, as written, except that ``\\&``, ``\\%`` and ``\\#`` become the
characters they escape (the writer escapes exactly those).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Mapping

from papertide.errors import InvalidIdError, RecordError
from papertide.paper import (
    ArxivId,
    Paper,
    clean_text,
    is_arxiv_category,
    local_id,
    normalise_doi,
    parse_arxiv_id,
    parse_date,
    parse_paper_id,
)
from papertide.sources import Item, Rejected

MONTHS = {
    "jan": "January", "feb": "February", "mar": "March", "apr": "April", "may": "May", "jun": "June",
    "jul": "July", "aug": "August", "sep": "September", "oct": "October", "nov": "November", "dec": "December",
}  # fmt: skip
MAX_ENTRY_CHARS = 1_000_000
ID_FIELD = "papertide-id"  # written by export.py when a paper's id cannot be derived from its fields

_ENTRY_START = re.compile(r"@\s*([A-Za-z][\w-]*)\s*([{(])")
_LINE_START = re.compile(r"\s*@\s*[A-Za-z][\w-]*\s*[{(]")
_DELIMS = re.compile(r'[{}()"]')
_BRACES = re.compile(r"[{}]")
_KEY = {"}": re.compile(r"[^,}]*"), ")": re.compile(r"[^,)]*")}
_IDENT = re.compile(r"""[^\s"#%'(),={}]+""")
_AND = re.compile(r"\s+and\s+", re.IGNORECASE)
_COMMA = re.compile(r",")
_ESCAPED = re.compile(r"(?<!\\)((?:\\\\)*)\\([&%#])")
_ARXIV_IN_TEXT = re.compile(r"arXiv:\s*([\w./-]+)", re.IGNORECASE)
_NOT_A_VENUE = re.compile(r"^(?:corr|arxiv(?:\s+preprint\b.*|\s+e-prints)?)$", re.IGNORECASE)
TEXT_FIELDS = ("title", "author", "abstract", "journal", "booktitle", "keywords")


@dataclass(slots=True)
class Entry:
    """One BibTeX entry: lower-cased type and field names, values with macros expanded."""

    type: str
    key: str
    fields: dict[str, str] = field(default_factory=dict)
    line: int = 0


class _SyntaxError(Exception):
    """An entry that cannot be parsed; the message names the line."""


# ----------------------------------------------------------------- reading


def read(path: str | Path) -> Iterator[Item]:
    """The items of a ``.bib`` file (plain or gzipped, UTF-8 or UTF-16 with a BOM)."""
    from papertide.sources import files

    return files.read(path, "bibtex")


def parse_text(text: str, where: str = "<text>") -> Iterator[Item]:
    """The items of BibTeX source held in a string; ``where`` names it in messages."""
    return parse(_numbered(text), where)


def parse(lines: Iterable[tuple[int, str | None, str]], where: str) -> Iterator[Item]:
    """Items from numbered lines ``(number, text, problem)``; ``text`` None marks an unreadable line."""
    for entry in _entries(lines, where):
        yield entry if isinstance(entry, Rejected) else to_item(entry, f"{where}:{entry.line}")


def parse_entries(text: str) -> list[Entry]:
    """The entries of BibTeX source, not mapped to papers; broken entries are left out."""
    return [e for e in _entries(_numbered(text), "<text>") if isinstance(e, Entry)]


def _numbered(text: str) -> Iterator[tuple[int, str, str]]:
    return ((i, line.rstrip("\r"), "") for i, line in enumerate(text.split("\n"), 1))


def _entries(lines: Iterable[tuple[int, str | None, str]], where: str) -> Iterator[Entry | Rejected]:
    """Parsed entries (``@string`` macros applied, ``@comment``/``@preamble`` dropped) and rejects."""
    macros = dict(MONTHS)
    for chunk in _chunks(lines, where):
        if isinstance(chunk, Rejected):
            yield chunk
            continue
        start, text = chunk
        try:
            entry = _parse_entry(text, start, macros)
        except _SyntaxError as e:
            yield Rejected(f"{where}:{start}", str(e))
            continue
        if entry is not None:
            yield entry


@dataclass(slots=True)
class _Open:
    """An entry being collected: where it starts, its text so far, its nesting."""

    start: int
    parts: list[str]
    closer: str
    depth: int = 0
    quoted: bool = False
    size: int = 0


def _chunks(lines: Iterable[tuple[int, str | None, str]], where: str) -> Iterator[tuple[int, str] | Rejected]:
    """Split numbered lines into whole entries ``(start line, text)``; junk between them is dropped."""
    current: _Open | None = None
    skipping = False  # after a broken entry: wait for a line that starts with @
    for number, text, problem in lines:
        if text is None:
            if skipping:
                continue
            if current is not None:
                yield Rejected(f"{where}:{current.start}", f"line {number}: {problem}")
                current, skipping = None, True
            else:
                yield Rejected(f"{where}:{number}", problem)
            continue
        starts_entry = bool(_LINE_START.match(text))
        if current is not None and starts_entry:
            yield Rejected(
                f"{where}:{current.start}",
                f"entry is not closed (unbalanced braces) before the entry at line {number}",
            )
            current = None
        if skipping and not starts_entry:
            continue
        skipping = False
        pos = 0
        while pos <= len(text):
            if current is None:
                m = _ENTRY_START.search(text, pos)
                if not m:
                    break
                current = _Open(number, [], "}" if m.group(2) == "{" else ")")
                current.parts.append(text[m.start() : m.end()])
                pos = m.end()
            end = _scan(text, pos, current)
            if end < 0:
                current.parts.append(text[pos:] + "\n")
                current.size += len(text) - pos + 1
                if current.size > MAX_ENTRY_CHARS:
                    yield Rejected(f"{where}:{current.start}", f"entry is over {MAX_ENTRY_CHARS:,} characters; skipped")
                    current, skipping = None, True
                break
            current.parts.append(text[pos:end])
            yield current.start, "".join(current.parts)
            current, pos = None, end
    if current is not None:
        yield Rejected(f"{where}:{current.start}", "entry is not closed at the end of the file (unbalanced braces)")


def _scan(text: str, pos: int, entry: _Open) -> int:
    """Index just past the entry's closing delimiter in ``text[pos:]``, or -1 if it stays open."""
    for m in _DELIMS.finditer(text, pos):
        c = m.group()
        if c == "{":
            entry.depth += 1
        elif c == "}":
            if entry.depth == 0 and entry.closer == "}":
                return m.end()
            entry.depth -= 1
        elif entry.closer == ")" and entry.depth == 0:
            if c == '"':
                entry.quoted = not entry.quoted
            elif c == ")" and not entry.quoted:
                return m.end()
    return -1


# -------------------------------------------------------------- one entry


class _Cursor:
    """A position in an entry's text that knows its line number."""

    def __init__(self, text: str, line: int) -> None:
        self.text, self.pos, self.line0 = text, 0, line

    def fail(self, message: str) -> _SyntaxError:
        """The error to raise, naming the line when it is not the entry's first."""
        line = self.line0 + self.text.count("\n", 0, self.pos)
        return _SyntaxError(message if line == self.line0 else f"line {line}: {message}")

    def skip_space(self) -> str:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def ident(self) -> str:
        m = _IDENT.match(self.text, self.pos)
        if not m:
            return ""
        self.pos = m.end()
        return m.group()

    def braced(self) -> str:
        depth = 0
        for m in _BRACES.finditer(self.text, self.pos):
            depth += 1 if m.group() == "{" else -1
            if depth == 0:
                inner = self.text[self.pos + 1 : m.start()]
                self.pos = m.end()
                return inner
        raise self.fail("unbalanced braces in a value")

    def quoted(self) -> str:
        depth = 0
        for i in range(self.pos + 1, len(self.text)):
            c = self.text[i]
            depth += (c == "{") - (c == "}")
            if c == '"' and depth == 0:
                inner = self.text[self.pos + 1 : i]
                self.pos = i + 1
                return inner
        raise self.fail('a quoted value is not closed with "')


def _parse_entry(text: str, line: int, macros: dict[str, str]) -> Entry | None:
    """Parse one whole entry; @string updates ``macros``; @comment and @preamble give None."""
    m = _ENTRY_START.match(text)
    if not m:
        raise _SyntaxError("not an entry")  # cannot happen: chunks start with an entry header
    kind, closer = m.group(1).lower(), "}" if m.group(2) == "{" else ")"
    if kind in ("comment", "preamble"):
        return None
    c = _Cursor(text, line)
    c.pos = m.end()
    if kind == "string":
        macros.update(_fields(c, closer, macros))
        return None
    key = _key(c, closer)
    return Entry(kind, key, _fields(c, closer, macros), line)


def _key(c: _Cursor, closer: str) -> str:
    candidate = _KEY[closer].match(c.text, c.pos).group()  # type: ignore[union-attr]
    if "=" in candidate or "{" in candidate:
        return ""  # no key: the entry starts with a field
    c.pos += len(candidate)
    if c.pos < len(c.text) and c.text[c.pos] == ",":
        c.pos += 1
    return candidate.strip()


def _fields(c: _Cursor, closer: str, macros: Mapping[str, str]) -> dict[str, str]:
    fields: dict[str, str] = {}
    while True:
        ch = c.skip_space()
        if ch == closer:
            c.pos += 1
            return fields
        if not ch:
            raise c.fail("the entry ends in the middle")
        name = c.ident()
        if not name:
            raise c.fail(f"expected a field name, found {ch!r}")
        if c.skip_space() != "=":
            raise c.fail(f"expected '=' after the field name {name!r}")
        c.pos += 1
        value = _value(c, macros)
        fields.setdefault(name.lower(), value)  # the first of duplicate fields wins, as in BibTeX
        ch = c.skip_space()
        if ch == ",":
            c.pos += 1
        elif ch != closer:
            raise c.fail(f"expected ',' or {closer!r} after the value of {name!r}, found {ch or 'the end'!r}")


def _value(c: _Cursor, macros: Mapping[str, str]) -> str:
    """``piece # piece …`` where a piece is ``{…}``, ``"…"``, a number or a macro name."""
    parts = []
    while True:
        ch = c.skip_space()
        if ch == "{":
            parts.append(c.braced())
        elif ch == '"':
            parts.append(c.quoted())
        else:
            name = c.ident()
            if not name:
                raise c.fail(f"expected a value, found {ch or 'the end'!r}")
            parts.append(name if name.isdigit() else macros.get(name.lower(), name))
        if c.skip_space() != "#":
            return "".join(parts)
        c.pos += 1


# ---------------------------------------------------------- entry -> paper


def to_item(entry: Entry, where: str) -> Paper | Rejected:
    """The paper an entry describes, normalised, or a Rejected saying why not."""
    try:
        return to_paper(entry).normalised()
    except (RecordError, InvalidIdError) as e:
        return Rejected(where, f"entry {entry.key!r}: {e}" if entry.key else str(e))


def to_paper(entry: Entry) -> Paper:
    """Map an entry's fields to a :class:`Paper` (raises RecordError or InvalidIdError)."""
    f = {k: unescape(v) if k in TEXT_FIELDS else v for k, v in entry.fields.items()}
    title = strip_wrap(f.get("title", ""))
    if not clean_text(title) and not f.get(ID_FIELD):  # papertide's own exports may hold untitled papers
        raise RecordError("entry has no title")
    pid, version = choose_id(f)
    extra: dict[str, object] = {"bibtex_key": entry.key, "bibtex_type": entry.type}
    submitted = _dates(f, extra)
    venue = clean_text(strip_wrap(f.get("journal") or f.get("booktitle") or ""))
    if venue and not _NOT_A_VENUE.match(venue) and not _ARXIV_IN_TEXT.search(venue):
        extra["venue"] = venue
    keywords = [k for k in (clean_text(x) for x in re.split(r"[,;]", f.get("keywords", ""))) if k]
    extra["keywords"] = keywords
    primary = clean_text(f.get("primaryclass", ""))
    return Paper(
        id=pid,
        title=title,
        abstract=strip_wrap(f.get("abstract", "")),
        authors=split_authors(f.get("author", "")),
        categories=[primary] if is_arxiv_category(primary) else [],
        submitted=submitted,
        version=version,
        doi=_doi(f.get("doi", "")),
        journal_ref=extra.get("venue"),  # type: ignore[arg-type]
        links={"url": f["url"].strip()} if f.get("url", "").strip() else {},
        extra=extra,
        source="bibtex",
    )


def choose_id(fields: Mapping[str, str]) -> tuple[str, int | None]:
    """The paper id an entry's fields give: papertide-id, arXiv eprint/DOI/URL, then DOI, then title."""
    own = fields.get(ID_FIELD, "").strip()
    if own:
        return parse_paper_id(own), None
    arxiv = _arxiv_id(fields)
    if arxiv is not None:
        return arxiv.id, arxiv.version
    return local_id(doi=_doi(fields.get("doi", "")), title=fields.get("title")), None


def _arxiv_id(f: Mapping[str, str]) -> ArxivId | None:
    eprint = f.get("eprint", "").strip()
    kind = (f.get("archiveprefix") or f.get("eprinttype") or "").strip().lower()
    if eprint and kind == "arxiv":
        return parse_arxiv_id(eprint)  # a wrong arXiv id is an error, not a cue to invent another id
    candidates = [eprint] if eprint and not kind else []
    doi = f.get("doi", "")
    if re.search(r"10\.48550/arxiv\.", doi, re.IGNORECASE):
        return parse_arxiv_id(doi)
    candidates.append(f.get("url", "").strip())
    for name in ("journal", "note", "howpublished"):
        m = _ARXIV_IN_TEXT.search(f.get(name, ""))
        if m:
            candidates.append(m.group(1).rstrip("."))
    for text in candidates:
        try:
            return parse_arxiv_id(text)
        except InvalidIdError:
            continue
    return None


def _doi(raw: str) -> str | None:
    """A DOI as written, without ``doi:`` or ``https://doi.org/``; InvalidIdError if it is not one."""
    raw = raw.strip()
    if not raw:
        return None
    normalise_doi(raw)
    return re.sub(r"^(?:doi:\s*|https?://(?:dx\.)?doi\.org/)", "", raw, flags=re.IGNORECASE)


def _dates(f: Mapping[str, str], extra: dict[str, object]) -> str | None:
    """Year and month go to ``extra``; only a full ``date`` (YYYY-MM-DD…) becomes ``submitted``."""
    date = f.get("date", "").strip()
    year = f.get("year", "").strip() or date[:4]
    extra["year"] = int(year) if re.fullmatch(r"\d{4}", year) else clean_text(year)
    month = _month(f.get("month", "").strip() or date[5:7])
    if month:
        extra["month"] = month
    if re.match(r"\d{4}-\d{2}-\d{2}", date):
        try:
            return parse_date(date)
        except RecordError:
            return None
    return None


def _month(text: str) -> int | str | None:
    if text.isdigit() and 1 <= int(text) <= 12:
        return int(text)
    low = text.lower()[:3]
    names = list(MONTHS)
    return names.index(low) + 1 if low in names else (clean_text(text) or None)


# --------------------------------------------------------------- text forms


def unescape(text: str) -> str:
    """``\\&``, ``\\%``, ``\\#`` -> the characters; other LaTeX stays as written."""
    return _ESCAPED.sub(r"\1\2", text)


def strip_wrap(text: str) -> str:
    """``{Attention Is All You Need}`` -> ``Attention Is All You Need`` (one pair that wraps it all)."""
    s = text.strip()
    if not (s.startswith("{") and s.endswith("}")):
        return s
    depth = 0
    for i, c in enumerate(s):
        depth += (c == "{") - (c == "}")
        if depth == 0:
            return s[1:-1] if i == len(s) - 1 else s
    return s


def split_top(text: str, sep: re.Pattern) -> list[str]:
    """Split ``text`` at ``sep`` where it is outside braces."""
    parts, depth, start, i = [], 0, 0, 0
    while i < len(text):
        c = text[i]
        if c == "{":
            depth += 1
        elif c == "}":
            depth = max(depth - 1, 0)
        elif depth == 0:
            m = sep.match(text, i)
            if m and m.end() > i:
                parts.append(text[start:i])
                start = i = m.end()
                continue
        i += 1
    parts.append(text[start:])
    return parts


def split_authors(text: str) -> list[str]:
    """``"Vaswani, Ashish and Evans, II, Neal J. and others"`` -> ``["Ashish Vaswani", "Neal J. Evans II"]``."""
    names = []
    for raw in split_top(text.strip(), _AND):
        raw = clean_text(raw)
        if not raw or raw.lower() == "others":
            continue
        parts = [strip_wrap(p) for p in split_top(raw, _COMMA)]
        if len(parts) == 2:  # Last, First
            parts = [parts[1], parts[0]]
        elif len(parts) >= 3:  # Last, Jr, First
            parts = [", ".join(parts[2:]), parts[0], parts[1]]
        name = clean_text(" ".join(p for p in parts if p.strip()))
        if name:
            names.append(name)
    return names
