"""Papers out of papertide: JSONL to move or back up a collection, BibTeX to cite it.

JSONL is papertide's own lossless form (``Paper.to_dict``, one object a line); the
file reader reads it back to papers with the same content hash. BibTeX is for
people's reference managers and LaTeX documents: readable keys such as
``vaswani2017attention``, LaTeX in titles left as written, the few characters that
would break a document (bare ``&``, ``%``, ``#``, an unmatched brace) escaped, and
arXiv papers marked with ``eprint``/``archivePrefix``/``primaryClass``. Reading the
BibTeX back gives the same ids, titles and authors (``\\&`` and friends come back as
the plain characters).
"""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Iterable, TextIO

from papertide.errors import InvalidIdError, RecordError
from papertide.paper import Paper, normalise_doi
from papertide.sources import bibtex

_BARE_SPECIAL = re.compile(r"(?<!\\)((?:\\\\)*)([&%#])")
_SUFFIXES = frozenset({"jr", "sr", "ii", "iii", "iv", "v"})
_STOPWORDS = frozenset(
    "a an the on of in for and to with from by at as is are via towards toward what how why when do does can".split()
)
_MONTH_MACROS = list(bibtex.MONTHS)


def write_jsonl(papers: Iterable[Paper], out: TextIO) -> int:
    """Write one ``Paper.to_dict()`` JSON object a line; return how many papers were written."""
    n = 0
    for paper in papers:
        out.write(json.dumps(paper.to_dict(), ensure_ascii=False) + "\n")
        n += 1
    return n


def write_bibtex(papers: Iterable[Paper], out: TextIO) -> int:
    """Write one BibTeX entry a paper, with unique keys; return how many were written."""
    used: set[str] = set()
    n = 0
    for paper in papers:
        if n:
            out.write("\n")
        out.write(bibtex_entry(paper, used))
        n += 1
    return n


def bibtex_entry(paper: Paper, used_keys: set[str]) -> str:
    """The BibTeX entry of one paper; its key is added to ``used_keys``."""
    key = unique_key(cite_key(paper), used_keys)
    fields = _fields(paper)
    kind = "article" if paper.journal_ref else "misc"
    body = ",\n".join(f"  {name} = {value}" for name, value in fields)
    return f"@{kind}{{{key},\n{body}\n}}\n"


def _fields(paper: Paper) -> list[tuple[str, str]]:
    """``(name, written value)`` pairs; a papertide-id field when the others do not give the id."""
    out: list[tuple[str, str]] = [("title", _braced(text_value(paper.title)))] if paper.title else []
    if paper.authors:
        out.append(("author", _braced(" and ".join(bib_name(a) for a in paper.authors))))
    year, month = _year_month(paper)
    if year:
        out.append(("year", _braced(text_value(year))))
    if month:
        out.append(("month", _MONTH_MACROS[month - 1]))
    if paper.is_arxiv:
        out += [("eprint", _braced(paper.id)), ("archivePrefix", "{arXiv}")]
        if paper.primary_category:
            out.append(("primaryClass", _braced(paper.primary_category)))
    doi = _doi(paper)
    if doi:
        out.append(("doi", _braced(_url_safe(doi))))
    if paper.journal_ref:
        out.append(("journal", _braced(text_value(paper.journal_ref))))
    url = paper.links.get("url") or paper.links.get("abs")
    if url:
        out.append(("url", _braced(_url_safe(url))))
    if paper.abstract:
        out.append(("abstract", _braced(text_value(paper.abstract))))
    as_read = {name.lower(): value[1:-1] if value.startswith("{") else value for name, value in out}
    as_read = {k: bibtex.unescape(v) if k in bibtex.TEXT_FIELDS else v for k, v in as_read.items()}
    try:
        derived = bibtex.choose_id(as_read)[0]
    except (RecordError, InvalidIdError):
        derived = None
    if derived != paper.id:
        out.append((bibtex.ID_FIELD, _braced(paper.id)))
    return out


def _braced(value: str) -> str:
    return "{" + value + "}"


def _url_safe(text: str) -> str:
    return text.replace("{", "%7B").replace("}", "%7D")


def _doi(paper: Paper) -> str | None:
    """A DOI that ``bibtex.read`` accepts: the paper's, its first token, or the one in a ``doi:`` id."""
    candidates = [paper.doi, (paper.doi or "").split(" ")[0]]
    if paper.id.startswith("doi:"):
        candidates.append(paper.id[4:])
    for doi in candidates:
        if doi:
            try:
                normalise_doi(doi)
            except InvalidIdError:
                continue
            return doi
    return None


def _year_month(paper: Paper) -> tuple[str, int | None]:
    if paper.submitted and re.match(r"\d{4}-\d{2}", paper.submitted):
        return paper.submitted[:4], int(paper.submitted[5:7])
    year, month = paper.extra.get("year"), paper.extra.get("month")
    return ("" if year is None else str(year)), (month if isinstance(month, int) and 1 <= month <= 12 else None)


# ---------------------------------------------------------------- escaping


def escape_text(text: str) -> str:
    """LaTeX kept as written; bare ``&``, ``%``, ``#`` escaped; unmatched braces made harmless.

    BibTeX counts every brace, escaped or not, so an unmatched one would swallow the
    rest of the file: it becomes ``\\textbraceleft{}`` / ``\\textbraceright{}``.
    """
    s = _BARE_SPECIAL.sub(r"\1\\\2", text)
    unmatched = _unmatched_braces(s)
    if not unmatched:
        return s
    out: list[str] = []
    for i, c in enumerate(s):
        if i in unmatched:
            if out and out[-1] == "\\":
                out.pop()  # \{ -> \textbraceleft{}
            out.append("\\textbraceleft{}" if c == "{" else "\\textbraceright{}")
        else:
            out.append(c)
    return "".join(out)


def _unmatched_braces(s: str) -> set[int]:
    opened: list[int] = []
    bad: set[int] = set()
    for i, c in enumerate(s):
        if c == "{":
            opened.append(i)
        elif c == "}":
            if opened:
                opened.pop()
            else:
                bad.add(i)
    return bad | set(opened)


def text_value(text: str) -> str:
    """A text field's value: escaped, and braced once more if braces already wrap it all."""
    s = escape_text(text)
    return "{" + s + "}" if _wrapped(s) else s


def _wrapped(s: str) -> bool:
    return s.startswith("{") and bibtex.strip_wrap(s) != s


def bib_name(name: str) -> str:
    """An author as BibTeX reads it back: as written, braced when commas or "and" would split it."""
    s = escape_text(name)
    and_parts = bibtex.split_top(f" {s} ", re.compile(r"\s+and\s+", re.IGNORECASE))
    if len(bibtex.split_top(s, re.compile(","))) > 1 or len(and_parts) > 1 or s.lower() == "others" or _wrapped(s):
        return "{" + s + "}"
    tokens = s.split(" ")
    if len(tokens) >= 3 and tokens[-1].rstrip(".").lower() in _SUFFIXES and "{" not in s:
        return f"{tokens[-2]}, {tokens[-1]}, {' '.join(tokens[:-2])}"  # Evans, II, Neal J.
    return s


# -------------------------------------------------------------------- keys


def cite_key(paper: Paper) -> str:
    """``vaswani2017attention``: first author's surname, year, first word of the title that says something."""
    surname = _ascii_word(_surname(paper.authors[0])) if paper.authors else ""
    year = _year_month(paper)[0]
    year = year if re.fullmatch(r"\d{4}", year) else ""
    words = [_ascii_word(w) for w in re.split(r"[\s\-/]+", _strip_latex(paper.title))]
    word = next((w for w in words if len(w) > 1 and w not in _STOPWORDS), "")
    return f"{surname or 'anon'}{year}{word}"


def unique_key(key: str, used: set[str]) -> str:
    """``key``, or ``key`` + b, c, … (then numbers) when already used; the result is added to ``used``."""
    candidate, n = key, 1
    while candidate in used:
        n += 1
        candidate = key + (chr(ord("a") + n - 1) if n <= 26 else str(n))
    used.add(candidate)
    return candidate


def _surname(name: str) -> str:
    if "," in name:
        return name.split(",")[0]
    tokens = name.split()
    while len(tokens) > 1 and tokens[-1].rstrip(".").lower() in _SUFFIXES:
        tokens.pop()
    return tokens[-1] if tokens else ""


def _strip_latex(text: str) -> str:
    """Drop LaTeX commands and accents: ``Bal\\'azs`` -> ``Balazs``, ``$\\alpha$-BERT`` -> ``-BERT``."""
    s = re.sub(r"\$[^$]*\$", " ", text)
    s = re.sub(r"\\[A-Za-z]+\s*|\\.", "", s)
    return s.replace("{", "").replace("}", "")


def _ascii_word(text: str) -> str:
    s = unicodedata.normalize("NFKD", _strip_latex(text))
    return re.sub(r"[^a-z0-9]", "", s.encode("ascii", "ignore").decode().lower())
