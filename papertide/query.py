"""The search query language: what a person types into the search box, as a typed record.

Rankers never see the raw string. :func:`parse_query` turns it into a :class:`Query`
(free words, exact phrases, exclusions, author / category / date filters, or a pasted
paper id) and the ranker only reads that record's fields, so nothing a user types is
ever passed anywhere as SQL, FTS or regex syntax. The parser is pure (no index or store
access), reads at most a fixed amount of input in one left-to-right pass, and answers
anything it does not understand with a sensible reading plus a warning, never a traceback.

The language::

    neural retrieval                  free words (ranked: BM25 + dense)
    "in-context learning"             an exact phrase (every phrase must appear)
    -survey  -"large language"        exclusions (a word or a phrase that must not appear)
    author:Smith  author:"Jane Doe"   authors; several = every one must be an author
    cat:cs.CL  cat:cs  cat:hep-th     arXiv categories; several = any one may match;
                                      an archive without subject (cs) covers cs.CL, cs.AI…
    since:2024  since:2024-03  since:2024-03-17      submitted on or after the START of the period
    until:2024  until:2024-03  until:2024-03-17      on or before the END (2024-12-31, 2024-03-31)
    year:2023                         since:2023 and until:2023
    2401.17377  arXiv:2401.17377v2  https://arxiv.org/abs/2401.17377  doi:10.…  pt:…
                                      a pasted paper id or URL -> ``paper_id``

Decisions (the web app shows every warning to the user):

* Field names are case-insensitive; ``au:`` and ``category:`` are accepted as aliases.
  ``author: Smith`` (a space after the colon) takes the next term as the value.
  ``cat:cs.CL,cs.AI`` lists several categories; ``cat:cs.*`` is ``cat:cs``. Categories
  are written back the way arXiv writes them (``CS.cl`` -> ``cs.CL``, ``physics.optics``).
* Impossible dates (``since:2024-13``, ``until:2024-02-30``, ``since:yesterday``): a
  warning and that filter is ignored. Several date filters intersect (the latest
  ``since``, the earliest ``until``); since after until raises :class:`QueryError`.
* Unbalanced quotes: the lone quote is dropped and the text after it is read as ordinary
  words and fields, with a warning. ``""`` (or a phrase of punctuation only) is ignored.
  Straight and typographic quotes (" “ ” „) are all quotes; apostrophes are not.
* Unknown fields (``title:x``, ``foo:bar``): kept as a plain word as typed, with a warning
  naming the field and listing the known ones. A term with ``://`` is never a field.
* ``-`` excludes only at the start of a term (``state-of-the-art`` is one word);
  excluding by field (``-cat:cs.CL``) is not supported and ignored with a warning.
* ``AND``, ``OR`` and ``NOT`` in capitals are ignored with a warning (every word counts;
  exclude with ``-word``). Terms with no letter or digit (``;``, ``--``, ``(``, ``*``) are
  dropped. Other punctuation stays inside words as typed (``bar*``, ``NEAR(a``); the
  ranker's tokenizer reduces words to tokens.
* A pasted id sets ``paper_id`` (canonical, without version). Mixed with other terms, the
  id is taken out of the words and the rest of the query is kept: ``is_lookup`` says
  whether the query is *only* an id (go straight to the paper). A second, different id
  is ignored with a warning. A link that is not a paper papertide knows stays a word.
* Limits: input beyond ``MAX_INPUT`` characters is not read; after cleaning, the query is
  cut to ``MAX_CHARS`` characters (at a word boundary) and ``MAX_TERMS`` terms, with a
  warning. Control characters, NULs, lone surrogates and invisible format characters
  (zero-width space, BOM, bidi overrides) are removed; text is NFC-normalised; case kept.
* :class:`QueryError` only for input that cannot mean anything: a non-string, or date
  filters that contradict each other. An empty query is not an error: ``is_empty``.
"""

from __future__ import annotations

import calendar
import difflib
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date

from papertide.errors import InvalidIdError, PapertideError
from papertide.paper import OLD_ARCHIVES, Paper, is_arxiv_category, parse_paper_id, title_key

MAX_CHARS = 1_000  # characters of the cleaned query that are parsed
MAX_TERMS = 64  # words, phrases, exclusions, filters and ids together
MAX_INPUT = 4 * MAX_CHARS  # raw characters read at all (bounds the time of cleaning)

KNOWN_FIELDS = ("author", "cat", "since", "until", "year")
_ALIASES = {"au": "author", "authors": "author", "category": "cat", "categories": "cat"}
_ID_PREFIXES = frozenset({"arxiv", "doi", "pt", "beir", "oai"})  # `name:` that introduce a paper id
_TEXT_FIELDS = frozenset({"title", "ti", "abs", "abstract", "intitle", "all", "text"})  # other engines' fields
_OPERATORS = frozenset({"AND", "OR", "NOT"})
QUOTES = '"\u201c\u201d\u201e'  # " “ ” „

# Archives arXiv files papers under today, plus the old-style ones in ids.
ARXIV_ARCHIVES = frozenset(
    """astro-ph cond-mat cs econ eess gr-qc hep-ex hep-lat hep-ph hep-th math math-ph nlin
    nucl-ex nucl-th physics q-bio q-fin quant-ph stat""".split()
) | OLD_ARCHIVES
_LOWERCASE_SUBJECTS = frozenset({"physics", "cond-mat"})  # physics.optics, cond-mat.soft

# Removed outright: C0/C1 controls except whitespace, lone surrogates, invisible format
# characters (zero-width space, word joiner, BOM, bidi embeddings/overrides/isolates/marks).
_INVISIBLE = re.compile(
    "[\x00-\x08\x0e-\x1f\x7f-\x9f\ud800-\udfff\u200b\u200e\u200f\u202a-\u202e\u2060\u2066-\u2069\ufeff]"
)
_QUOTE = re.compile(f"[{QUOTES}]")
_FIELD = re.compile(r"([A-Za-z]{1,24}):(.*)", re.DOTALL)
_PERIOD = re.compile(r"(\d{4})(?:-(\d{1,2})(?:-(\d{1,2}))?)?")
_EDGE_PUNCT = "<>()[]{},.;'`"


class QueryError(PapertideError, ValueError):
    """A query that cannot mean anything (contradictory dates, not text at all)."""


@dataclass(frozen=True)
class Query:
    """A parsed search query. Every field is plain data; see the module docstring.

    ``text`` is what to embed for dense search: the free words and the inner text of
    the phrases, in the order typed, without operators, fields, ids or exclusions.
    ``words`` are the free words only (raw strings; the ranker's tokenizer applies).
    ``excluded`` holds words and phrases alike: an entry of several tokens is a phrase.
    ``warnings`` are not compared: two queries that ask for the same thing are equal.
    """

    text: str = ""
    words: tuple[str, ...] = ()
    phrases: tuple[str, ...] = ()
    excluded: tuple[str, ...] = ()
    authors: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    since: date | None = None
    until: date | None = None
    paper_id: str | None = None
    warnings: tuple[str, ...] = field(default=(), compare=False)

    @property
    def is_empty(self) -> bool:
        """Nothing at all was asked for (warnings aside)."""
        return not (self.words or self.phrases or self.excluded or self.has_filters or self.paper_id)

    @property
    def has_filters(self) -> bool:
        """Authors, categories or dates restrict the results."""
        return bool(self.authors or self.categories or self.since or self.until)

    @property
    def is_lookup(self) -> bool:
        """Only a paper id was given: go straight to that paper."""
        return self.paper_id is not None and not (self.words or self.phrases or self.excluded or self.has_filters)

    def matches_filters(self, paper: Paper) -> bool:
        """Whether ``paper`` passes the author, category and date filters (not the words).

        Every author must match (:func:`author_matches`), any one category
        (:func:`category_matches`); dates apply to the first submission, and a paper
        without a date fails a date filter.
        """
        if any(not any(author_matches(a, name) for name in paper.authors) for a in self.authors):
            return False
        if self.categories and not any(category_matches(c, pc) for c in self.categories for pc in paper.categories):
            return False
        if self.since or self.until:
            day = _day(paper.submitted)
            if day is None or (self.since and day < self.since) or (self.until and day > self.until):
                return False
        return True

    def describe(self) -> str:
        """A one-line human summary, e.g. ``"in-context learning", in cs.CL, since 2024-01-01``."""
        head = " ".join([*self.words, *(f'"{p}"' for p in self.phrases)])
        parts = [f"paper {self.paper_id}"] if self.paper_id else []
        if head:
            parts.append(head)
        if self.excluded:
            parts.append("excluding " + ", ".join(f'"{e}"' if " " in e else e for e in self.excluded))
        if self.authors:
            parts.append("by " + " and ".join(self.authors))
        if self.categories:
            parts.append("in " + " or ".join(self.categories))
        dates = _describe_dates(self.since, self.until)
        if dates:
            parts.append(dates)
        if head or self.paper_id:
            return ", ".join(parts)
        return " ".join(["all papers", ", ".join(parts)]).strip()


def _describe_dates(since: date | None, until: date | None) -> str:
    if since and until:
        if (since.month, since.day, until.month, until.day) == (1, 1, 12, 31) and since.year == until.year:
            return f"in {since.year}"
        return f"from {since.isoformat()} to {until.isoformat()}"
    if since:
        return f"since {since.isoformat()}"
    return f"until {until.isoformat()}" if until else ""


def _day(iso: str | None) -> date | None:
    try:
        return date.fromisoformat(iso[:10]) if iso else None
    except ValueError:
        return None


# ------------------------------------------------------------------ filter helpers


def category_matches(wanted: str, category: str) -> bool:
    """``cs`` matches ``cs`` and ``cs.CL``; ``cs.CL`` matches only ``cs.CL``."""
    return category == wanted or ("." not in wanted and category.startswith(wanted + "."))


def author_matches(wanted: str, name: str) -> bool:
    """Whether a queried author matches an author name.

    Case and accents are ignored (``title_key``); every word of ``wanted`` must match a
    word of ``name`` in order, a single letter matching as an initial either way:
    ``Smith`` and ``J. Smith`` match ``John Smith``; ``Jane Smith`` does not.
    """
    want, have = title_key(wanted).split(), title_key(name).split()
    i = 0
    for w in want:
        while i < len(have) and not _same_name_word(w, have[i]):
            i += 1
        if i == len(have):
            return False
        i += 1
    return bool(want)


def _same_name_word(a: str, b: str) -> bool:
    return a == b or (len(a) == 1 and b.startswith(a)) or (len(b) == 1 and a.startswith(b))


def normalise_category(value: str) -> str:
    """``CS.cl`` -> ``cs.CL``, ``physics.Optics`` -> ``physics.optics``, ``cs.*`` -> ``cs``.

    Raises :class:`ValueError` for what is not an arXiv category.
    """
    v = value.strip().rstrip("*").rstrip(".")
    archive, dot, subject = v.partition(".")
    archive = archive.lower()
    if subject:
        subject = subject.lower() if archive in _LOWERCASE_SUBJECTS else subject.upper()
    cat = archive + dot + subject
    if not is_arxiv_category(cat):
        raise ValueError(f"cat:{value} is not an arXiv category (write it like cs.CL, cs or hep-th)")
    return cat


def parse_period(value: str, *, end: bool) -> date:
    """``2024`` / ``2024-03`` / ``2024-03-17`` -> the first day (or, with ``end``, the last day).

    Raises :class:`ValueError` whose message says what is wrong (the caller names the value).
    """
    m = _PERIOD.fullmatch(value)
    if not m:
        raise ValueError("not a date (write 2024, 2024-03 or 2024-03-17)")
    year = int(m.group(1))
    month = int(m.group(2)) if m.group(2) else None
    day = int(m.group(3)) if m.group(3) else None
    if year < 1000:
        raise ValueError(f"year {year} is not a year papertide can use")
    if month is None:
        return date(year, 12, 31) if end else date(year, 1, 1)
    if not 1 <= month <= 12:
        raise ValueError(f"there is no month {month}")
    if day is None:
        return date(year, month, calendar.monthrange(year, month)[1] if end else 1)
    try:
        return date(year, month, day)
    except ValueError:
        raise ValueError(f"{year}-{month:02d} has no day {day}") from None


# -------------------------------------------------------------------------- parser


def parse_query(text: str) -> Query:
    """Parse what a user typed into a :class:`Query`; see the module docstring for the rules.

    Raises :class:`QueryError` (only) when the query cannot mean anything.
    """
    if not isinstance(text, str):
        raise QueryError(f"a query must be text, not {type(text).__name__}")
    cleaned, warnings = _clean(text)
    return _Parser(cleaned, warnings).run()


def _clean(text: str) -> tuple[str, list[str]]:
    """Invisible characters removed, NFC, at most MAX_CHARS characters cut at a word boundary."""
    s = text[:MAX_INPUT]
    s = _INVISIBLE.sub("", s)
    if not s.isascii():
        s = unicodedata.normalize("NFC", s)
    s = " ".join(s.split())
    warnings = []
    if len(text) > MAX_INPUT or len(s) > MAX_CHARS:
        cut = s[:MAX_CHARS]
        if len(s) > MAX_CHARS and s[MAX_CHARS] != " " and " " in cut:
            cut = cut.rsplit(" ", 1)[0]  # do not search half a word
        warnings.append(f"the query is longer than {MAX_CHARS:,} characters: the rest was ignored")
        s = cut
    return s, warnings


class _Parser:
    """One left-to-right pass over the cleaned query, collecting the parts of a Query."""

    def __init__(self, s: str, warnings: list[str]) -> None:
        self.s, self.pos, self.terms = s, 0, 0
        self.free: list[str] = []  # words and phrases in typed order, for Query.text
        self.words: list[str] = []
        self.phrases: list[str] = []
        self.excluded: list[str] = []
        self.authors: list[str] = []
        self.categories: list[str] = []
        self.since: date | None = None
        self.until: date | None = None
        self.paper_id: str | None = None
        self.unknown: list[str] = []
        self.warnings = warnings

    def warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)

    def run(self) -> Query:
        n = len(self.s)
        while self.pos < n:
            if self.s[self.pos] == " ":
                self.pos += 1
                continue
            if self.terms >= MAX_TERMS:
                self.warn(f"the query has too many terms: only the first {MAX_TERMS} were used")
                break
            self.term()
        return self.build()

    # --- reading

    def read_bare(self) -> str:
        """Characters up to the next space or quote."""
        start, s, n = self.pos, self.s, len(self.s)
        while self.pos < n and s[self.pos] != " " and s[self.pos] not in QUOTES:
            self.pos += 1
        return s[start : self.pos]

    def read_quoted(self) -> str | None:
        """At a quote: the phrase up to the closing quote ("" if it has no word).

        An unbalanced quote is skipped and None returned: what follows reads as if it were not there.
        """
        m = _QUOTE.search(self.s, self.pos + 1)
        if m is None:
            self.pos += 1
            self.warn("unbalanced quote: the text after it was read as plain words (close it with \" for a phrase)")
            return None
        inner = " ".join(self.s[self.pos + 1 : m.start()].split())
        self.pos = m.end()
        if not _has_word(inner):
            self.warn(f'empty phrase "{inner}" ignored')
            return ""
        return inner

    def at_quote(self) -> bool:
        return self.pos < len(self.s) and self.s[self.pos] in QUOTES

    # --- terms

    def term(self) -> None:
        if self.at_quote():
            phrase = self.read_quoted()
            if phrase:
                self.add(self.phrases, phrase, free=True)
            return
        token = self.read_bare()
        if token.startswith("-"):
            self.excluded_term(token.lstrip("-"))
        else:
            self.bare_term(token)

    def excluded_term(self, rest: str) -> None:
        if not rest and self.at_quote():
            phrase = self.read_quoted()
            if phrase:
                self.add(self.excluded, phrase)
            return
        m = _FIELD.fullmatch(rest)
        if m and _field_name(m.group(1)) in KNOWN_FIELDS:
            self.warn(f"-{m.group(1)}: cannot exclude by field: -{rest} was ignored")
            if not m.group(2) and self.at_quote():
                self.read_quoted()
            return
        if _has_word(rest):
            self.add(self.excluded, rest)

    def bare_term(self, token: str) -> None:
        if not _has_word(token):
            return  # punctuation only: ; -- ( ) * ||
        if token in _OPERATORS:
            self.warn(f"{token} is not an operator here and was ignored (every word counts; exclude with -word)")
            return
        if self.paper_id_term(token):
            return
        m = _FIELD.fullmatch(token)
        if m and not m.group(2).startswith("//"):
            self.field_term(m.group(1), m.group(2))
            return
        if "://" in token:
            self.warn(f"{token[:80]} is not a link to a paper papertide knows: searched as words")
        if "*" in token:
            self.warn("wildcards (*) are not supported: words are matched whole")
        self.add(self.words, token, free=True)

    def paper_id_term(self, token: str) -> bool:
        try:
            pid = parse_paper_id(token.strip(_EDGE_PUNCT))
        except (InvalidIdError, ValueError):
            return False
        if self.paper_id is None:
            self.paper_id = pid
            self.terms += 1
        elif pid != self.paper_id:
            self.warn(f"only one paper id per query: {pid} was ignored (kept {self.paper_id})")
        return True

    def field_term(self, raw_name: str, value: str) -> None:
        name = _field_name(raw_name)
        if name in _ID_PREFIXES:
            if value:  # a failed id (`arXiv:` alone just precedes one: dropped)
                self.warn(f"{raw_name}:{value} is not a paper id papertide understands: searched as words")
                self.add(self.words, f"{raw_name}:{value}", free=True)
            return
        if name not in KNOWN_FIELDS:
            if value or self.at_quote():
                self.unknown_field(raw_name)
            self.add(self.words, f"{raw_name}:{value}", free=True)  # `Note:` is just a word
            return
        if not value:
            value = self.field_value(raw_name)
            if value is None:
                return
        self.terms += 1
        if name == "author":
            self.author(value)
        elif name == "cat":
            self.category(value)
        else:
            self.period(name, value)

    def field_value(self, raw_name: str) -> str | None:
        """The value of ``name:`` given as ``name:"…"`` or ``name: value`` (None: no value)."""
        save = self.pos
        while self.pos < len(self.s) and self.s[self.pos] == " ":
            self.pos += 1
        value: str | None = None
        if self.at_quote():
            value = self.read_quoted()
            if value is None:  # unbalanced: read on as if the quote were not there
                value = self.read_bare()
        elif self.pos > save:  # `name: value`, unless the next term is itself an operator
            nxt = self.read_bare()
            if nxt and not nxt.startswith("-") and not _FIELD.fullmatch(nxt):
                value = nxt
            else:
                self.pos = save
        if not value:
            self.warn(f"{raw_name}: has no value and was ignored")
            return None
        return value

    def unknown_field(self, raw_name: str) -> None:
        if raw_name.lower() not in (u.lower() for u in self.unknown):
            self.unknown.append(raw_name)

    # --- field values

    def author(self, value: str) -> None:
        name = " ".join(value.strip(",;").split())
        if _has_word(name):
            if name not in self.authors:
                self.authors.append(name)
        else:
            self.warn(f"author:{value} names no one and was ignored")

    def category(self, value: str) -> None:
        for part in re.split(r"[,\s]+", value):
            if not part:
                continue
            try:
                cat = normalise_category(part)
            except ValueError as e:
                self.warn(f"{e}: ignored")
                continue
            archive = cat.partition(".")[0]
            if archive not in ARXIV_ARCHIVES:
                self.warn(f"cat:{cat}: {archive} is not an arXiv archive papertide knows (kept as given)")
            if cat not in self.categories:
                self.categories.append(cat)

    def period(self, name: str, value: str) -> None:
        try:
            first = parse_period(value, end=False) if name in ("since", "year") else None
            last = parse_period(value, end=True) if name in ("until", "year") else None
        except ValueError as e:
            self.warn(f"{name}:{value}: {e}; this filter was ignored")
            return
        if first and (self.since is None or first > self.since):
            self.since = first
        if last and (self.until is None or last < self.until):
            self.until = last

    # --- result

    def add(self, bucket: list[str], value: str, *, free: bool = False) -> None:
        self.terms += 1
        if free:
            self.free.append(value)
            bucket.append(value)
        elif value not in bucket:
            bucket.append(value)

    def build(self) -> Query:
        if self.unknown:
            self.warn(_unknown_fields_warning(self.unknown))
        if self.since and self.until and self.since > self.until:
            raise QueryError(
                f"the dates contradict each other: since {self.since.isoformat()} is after "
                f"until {self.until.isoformat()}, so no paper can match"
            )
        return Query(
            text=" ".join(self.free),
            words=tuple(self.words),
            phrases=tuple(dict.fromkeys(self.phrases)),
            excluded=tuple(self.excluded),
            authors=tuple(self.authors),
            categories=tuple(self.categories),
            since=self.since,
            until=self.until,
            paper_id=self.paper_id,
            warnings=tuple(self.warnings),
        )


def _unknown_fields_warning(unknown: list[str]) -> str:
    """Names the unknown fields, suggests a close known one (autor -> author:), lists them all."""
    names = [u.lower() for u in unknown]
    close = [m for u in names for m in difflib.get_close_matches(u, KNOWN_FIELDS, n=1, cutoff=0.75)]
    hint = ""
    if close:
        hint = f" (did you mean {', '.join(f'{c}:' for c in dict.fromkeys(close))}?)"
    elif _TEXT_FIELDS.intersection(names):
        hint = " (plain words already search titles and abstracts)"
    verb = "is not a field papertide knows, so it was" if len(unknown) == 1 else "are not fields papertide knows, so they were"
    listed, known = ", ".join(f"{u}:" for u in unknown), ", ".join(f"{k}:" for k in KNOWN_FIELDS)
    return f"{listed} {verb} searched as plain words{hint}. The fields are {known}."


def _field_name(raw: str) -> str:
    low = raw.lower()
    return _ALIASES.get(low, low)


def _has_word(s: str) -> bool:
    return any(ch.isalnum() for ch in s)

