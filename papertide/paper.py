"""The paper record and paper ids.

Every source turns what it reads into a :class:`Paper`; the store keeps them and
every surface shows them. This module also owns identifiers: arXiv ids in every
form people paste (new and old style, versions, ``arXiv:`` prefixes, abs/pdf/html
URLs, OAI identifiers, arXiv DOIs) are parsed to one canonical id plus version, and
papers that are not on arXiv get a stable id of their own (``doi:…``, ``beir:…``,
or ``pt:`` + a hash of the normalised title).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass, field, fields
from datetime import date, datetime, timezone
from email.utils import parsedate_to_datetime

import orjson

from papertide.errors import InvalidIdError, RecordError

# --------------------------------------------------------------------------- ids

# Archives of old-style identifiers (1991 to March 2007), as listed by arXiv.
OLD_ARCHIVES = frozenset(
    """acc-phys adap-org alg-geom ao-sci astro-ph atom-ph bayes-an chao-dyn chem-ph
    cmp-lg comp-gas cond-mat cs dg-ga funct-an gr-qc hep-ex hep-lat hep-ph hep-th
    math math-ph mtrl-th nlin nucl-ex nucl-th patt-sol physics plasm-ph q-alg q-bio
    quant-ph solv-int supr-con""".split()
)

_NEW_ID = re.compile(r"(?P<yymm>\d{4})\.(?P<num>\d{4,5})(?:v(?P<v>\d+))?")
_OLD_ID = re.compile(
    r"(?P<archive>[a-z]+(?:-[a-z]+)?)(?:\.(?P<subj>[A-Za-z]{2}))?/(?P<yymm>\d{4})(?P<num>\d{3})(?:v(?P<v>\d+))?"
)
_URL = re.compile(
    r"(?:https?://)?(?:www\.|export\.|browse\.)?arxiv\.org/(?:abs|pdf|html|format|ps|src)/(?P<rest>.+)",
    re.IGNORECASE,
)
_HF_URL = re.compile(r"(?:https?://)?(?:www\.)?huggingface\.co/papers/(?P<rest>.+)", re.IGNORECASE)
_ARXIV_DOI = re.compile(r"(?:doi:\s*|(?:https?://)?(?:dx\.)?doi\.org/)?10\.48550/arxiv\.(?P<rest>.+)", re.IGNORECASE)
_PREFIX = re.compile(r"^(?:arxiv:|oai:arxiv\.org:|oai:arxiv:)\s*", re.IGNORECASE)
_DOI = re.compile(r"^10\.\d{4,9}/\S+$")


@dataclass(frozen=True, slots=True)
class ArxivId:
    """A canonical arXiv id (``2401.17377``, ``hep-th/9901001``) and an optional version."""

    id: str
    version: int | None = None

    def __str__(self) -> str:
        return self.id if self.version is None else f"{self.id}v{self.version}"

    @property
    def is_old_style(self) -> bool:
        return "/" in self.id


def _check_yymm(yymm: str, text: str, old: bool) -> None:
    yy, mm = int(yymm[:2]), int(yymm[2:])
    if not 1 <= mm <= 12:
        raise InvalidIdError(f"not an arXiv id: {text!r} (month {mm:02d} does not exist)")
    if old:
        year = 1900 + yy if yy >= 91 else 2000 + yy
        if not (1991 <= year <= 2007) or (year == 2007 and mm > 3):
            raise InvalidIdError(f"not an arXiv id: {text!r} (old-style ids run from 1991 to March 2007)")
    elif int(yymm) < 704:
        raise InvalidIdError(f"not an arXiv id: {text!r} (new-style ids start at 0704)")


def parse_arxiv_id(text: str) -> ArxivId:
    """Parse any pasted form of an arXiv id; raise :class:`InvalidIdError` for garbage.

    >>> str(parse_arxiv_id("https://arxiv.org/pdf/2401.17377v2.pdf"))
    '2401.17377v2'
    >>> parse_arxiv_id("math.GT/0309136").id
    'math/0309136'
    """
    if not isinstance(text, str):
        raise InvalidIdError(f"not an arXiv id: {text!r}")
    s = text.strip()
    if not s or len(s) > 300:
        raise InvalidIdError("not an arXiv id: empty" if not s else "not an arXiv id: too long")
    for pattern in (_URL, _HF_URL, _ARXIV_DOI):
        m = pattern.fullmatch(s)
        if m:
            s = m.group("rest")
            s = re.split(r"[?#]", s, maxsplit=1)[0].rstrip("/")
            if s.lower().endswith(".pdf"):
                s = s[:-4]
            break
    s = _PREFIX.sub("", s)
    m = _NEW_ID.fullmatch(s)
    if m:
        yymm, num = m.group("yymm"), m.group("num")
        _check_yymm(yymm, text, old=False)
        if int(yymm) < 1501 and len(num) != 4:
            raise InvalidIdError(f"not an arXiv id: {text!r} (ids before 2015 have 4 digits after the dot)")
        if int(yymm) >= 1501 and len(num) != 5:
            raise InvalidIdError(f"not an arXiv id: {text!r} (ids from 2015 have 5 digits after the dot)")
        return ArxivId(f"{yymm}.{num}", _version(m.group("v"), text))
    m = _OLD_ID.fullmatch(s)
    if m:
        archive = m.group("archive").lower()
        if archive not in OLD_ARCHIVES:
            raise InvalidIdError(f"not an arXiv id: {text!r} (unknown archive {archive!r})")
        _check_yymm(m.group("yymm"), text, old=True)
        return ArxivId(f"{archive}/{m.group('yymm')}{m.group('num')}", _version(m.group("v"), text))
    raise InvalidIdError(f"not an arXiv id: {text!r}")


def _version(v: str | None, text: str) -> int | None:
    if v is None:
        return None
    n = int(v)
    if n < 1:
        raise InvalidIdError(f"not an arXiv id: {text!r} (versions start at v1)")
    return n


def is_arxiv_id(text: str) -> bool:
    try:
        parse_arxiv_id(text)
    except InvalidIdError:
        return False
    return True


def normalise_doi(text: str) -> str:
    """``https://doi.org/10.1000/XYZ`` -> ``10.1000/xyz`` (DOIs are case-insensitive)."""
    s = text.strip()
    s = re.sub(r"^(?:doi:\s*|https?://(?:dx\.)?doi\.org/)", "", s, flags=re.IGNORECASE)
    if not _DOI.match(s):
        raise InvalidIdError(f"not a DOI: {text!r}")
    return s.lower()


_WORD = re.compile(r"\w+")
# Combining marks left by NFKD decomposition (é -> e + U+0301), dropped for matching.
_COMBINING = re.compile(r"[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")


def title_key(title: str) -> str:
    """Case-, accent- and punctuation-insensitive form of a title, for matching."""
    t = title.casefold()
    if not t.isascii():
        t = _COMBINING.sub("", unicodedata.normalize("NFKD", t))
    return " ".join(_WORD.findall(t))


def local_id(*, doi: str | None = None, title: str | None = None) -> str:
    """A stable id for a paper that is not on arXiv: ``doi:…`` or ``pt:`` + title hash."""
    if doi:
        return "doi:" + normalise_doi(doi)
    key = title_key(title or "")
    if not key:
        raise RecordError("cannot make an id for a paper with neither DOI nor title")
    return "pt:" + hashlib.sha256(key.encode()).hexdigest()[:16]


def beir_id(dataset: str, doc_id: str) -> str:
    """Id of a BEIR document: ``beir:<dataset>:<doc id>``."""
    dataset = re.sub(r"[^A-Za-z0-9_.-]+", "-", dataset).strip("-") or "corpus"
    if not doc_id or any(ch.isspace() for ch in doc_id):
        raise RecordError(f"BEIR document id {doc_id!r} is empty or contains whitespace")
    return f"beir:{dataset}:{doc_id}"


def parse_paper_id(text: str) -> str:
    """Canonical paper id (without version) from anything a user may paste.

    arXiv forms give the arXiv id; ``doi:``/``beir:``/``pt:`` ids pass through
    (a bare DOI or doi.org URL becomes ``doi:…``).
    """
    s = (text or "").strip()
    try:
        return parse_arxiv_id(s).id
    except InvalidIdError:
        pass
    low = s.lower()
    if low.startswith("pt:") and re.fullmatch(r"pt:[0-9a-f]{16}", low):
        return low
    if low.startswith("beir:") and re.fullmatch(r"beir:[A-Za-z0-9_.-]+:\S+", s):
        return s
    if low.startswith(("doi:", "10.", "https://doi.org/", "http://doi.org/", "https://dx.doi.org/")):
        return "doi:" + normalise_doi(s)
    raise InvalidIdError(
        f"not a paper id: {text!r} (expected an arXiv id or URL, a DOI, or a papertide id like pt:…)"
    )


# ------------------------------------------------------------------------- dates


_ISO_UTC = re.compile(r"\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:[0-5]\dZ")


_RFC2822 = re.compile(
    r"(?:[A-Za-z]{3},\s*)?(\d{1,2})\s+([A-Za-z]{3})\s+(\d{4})\s+(\d{2}):(\d{2}):(\d{2})\s+(?:GMT|UTC|UT|\+0000)"
)
_MONTHS = {m: i for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split(), 1)}


def parse_date(value: object) -> str | None:
    """Normalise a date to ISO 8601: ``YYYY-MM-DD`` or ``YYYY-MM-DDTHH:MM:SSZ`` (UTC).

    Accepts ISO dates and datetimes, RFC 2822 (``Mon, 2 Apr 2007 19:18:42 GMT``),
    and :class:`date`/:class:`datetime` objects. Returns ``None`` for empty input and
    raises :class:`RecordError` for anything else.
    """
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        dt = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, date):
        return value.isoformat()
    if not isinstance(value, str):
        raise RecordError(f"not a date: {value!r}")
    s = value.strip()
    if _ISO_UTC.fullmatch(s):  # already normal: the common case when a record is re-read
        return s
    m = _RFC2822.fullmatch(s)  # arXiv's version dates; much faster than the email parser
    if m and m.group(2).lower() in _MONTHS:
        day, mon, year, hh, mi, ss = m.groups()
        month = _MONTHS[mon.lower()]
        try:
            datetime(int(year), month, int(day), int(hh), int(mi), int(ss))  # validates
        except ValueError:
            raise RecordError(f"not a date: {value!r}") from None
        return f"{year}-{month:02d}-{int(day):02d}T{hh}:{mi}:{ss}Z"
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", s):
        try:
            return date.fromisoformat(s).isoformat()
        except ValueError:
            raise RecordError(f"not a date: {value!r}") from None
    try:
        return parse_date(datetime.fromisoformat(s.replace("Z", "+00:00")))
    except ValueError:
        pass
    try:
        return parse_date(parsedate_to_datetime(s))
    except (TypeError, ValueError, IndexError):
        raise RecordError(f"not a date: {value!r}") from None


def day_of(iso: str | None) -> str | None:
    """The ``YYYY-MM-DD`` part of an ISO date or datetime."""
    return iso[:10] if iso else None


# ------------------------------------------------------------------------ record

# Limits on fields: generous for real papers (some physics papers list thousands of
# authors), tight enough that a corrupt record cannot bloat the store.
MAX_TITLE = 1_000
MAX_ABSTRACT = 20_000
MAX_AUTHORS = 5_000
MAX_AUTHOR = 300
MAX_FIELD = 5_000
MAX_CATEGORIES = 50

_CATEGORY = re.compile(r"^[a-z][a-z-]*(?:\.[A-Za-z][A-Za-z-]*)?$")


def is_arxiv_category(term: str) -> bool:
    """``cs.CL``, ``hep-th``, ``math.GT`` yes; ACM (``I.2.7``) or MSC (``81T30``) classes no."""
    return len(term) <= 40 and bool(_CATEGORY.match(term))


# Control characters (Unicode category Cc) other than the whitespace ones.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def clean_text(text: object) -> str:
    """Whitespace normalised, LaTeX kept as written; NUL and control characters removed."""
    if text is None:
        return ""
    s = text if isinstance(text, str) else str(text)
    if s.isprintable() and "  " not in s and s[:1] != " " and s[-1:] != " " and (
        s.isascii() or unicodedata.is_normalized("NFC", s)
    ):
        return s  # already clean: the common case, checked at C speed
    if _CONTROL.search(s):
        s = _CONTROL.sub("", s)
    if not s.isascii() and not unicodedata.is_normalized("NFC", s):
        s = unicodedata.normalize("NFC", s)
    return " ".join(s.split())


@dataclass(slots=True)
class Version:
    """One version of a paper: ``version`` number and the ISO date it appeared."""

    version: int
    date: str | None = None

    def __reduce__(self) -> tuple:  # compact, fast pickling (papers cross process boundaries)
        return (Version, (self.version, self.date))


@dataclass(slots=True)
class Paper:
    """A paper as papertide keeps it. ``id`` is canonical and carries no version."""

    id: str
    title: str
    abstract: str = ""
    authors: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)  # primary first
    submitted: str | None = None  # first version, ISO date or datetime
    updated: str | None = None  # latest version or metadata update
    version: int | None = None  # latest version known
    versions: list[Version] = field(default_factory=list)
    doi: str | None = None
    journal_ref: str | None = None
    comments: str | None = None
    license: str | None = None
    links: dict[str, str] = field(default_factory=dict)  # abs, pdf, html, code, project, doi
    extra: dict[str, object] = field(default_factory=dict)  # source-specific: ai_summary, report_no, …
    source: str = ""  # where this copy came from: arxiv-oai, arxiv-api, hf-daily, snapshot, …

    def __reduce__(self) -> tuple:  # positional args pickle far faster than slots state
        return (Paper, tuple(getattr(self, name) for name in _FIELD_NAMES))

    @property
    def primary_category(self) -> str | None:
        return self.categories[0] if self.categories else None

    @property
    def is_arxiv(self) -> bool:
        return ":" not in self.id

    def normalised(self) -> "Paper":
        """A cleaned copy: whitespace normalised, duplicates dropped, dates ISO, derived links.

        Raises :class:`RecordError` naming the field when the record is unusable.
        """
        if not self.id or len(self.id) > 300:
            raise RecordError("paper has no id" if not self.id else "paper id is too long")
        title = clean_text(self.title)
        abstract = clean_text(self.abstract)
        if not title and not abstract:
            raise RecordError(f"{self.id}: record has neither title nor abstract")
        if len(title) > MAX_TITLE:
            raise RecordError(f"{self.id}: title is {len(title):,} characters (limit {MAX_TITLE:,})")
        if len(abstract) > MAX_ABSTRACT:
            raise RecordError(f"{self.id}: abstract is {len(abstract):,} characters (limit {MAX_ABSTRACT:,})")
        if len(self.authors) > MAX_AUTHORS:
            raise RecordError(f"{self.id}: {len(self.authors):,} authors (limit {MAX_AUTHORS:,})")
        authors = []
        for a in self.authors:
            a = clean_text(a)
            if len(a) > MAX_AUTHOR:
                raise RecordError(f"{self.id}: an author name is {len(a):,} characters (limit {MAX_AUTHOR})")
            if a:
                authors.append(a)
        cats: list[str] = []
        for c in self.categories:
            c = clean_text(c)
            if not c:
                continue
            if not is_arxiv_category(c):
                raise RecordError(f"{self.id}: bad category {c[:60]!r}")
            if c not in cats:
                cats.append(c)
        if len(cats) > MAX_CATEGORIES:
            raise RecordError(f"{self.id}: {len(cats)} categories (limit {MAX_CATEGORIES})")
        short = {}
        for name in ("doi", "journal_ref", "comments", "license"):
            v = clean_text(getattr(self, name)) or None
            if v and len(v) > MAX_FIELD:
                raise RecordError(f"{self.id}: {name} is {len(v):,} characters (limit {MAX_FIELD:,})")
            short[name] = v
        versions = sorted(
            {v.version: Version(v.version, parse_date(v.date)) for v in self.versions}.values(),
            key=lambda v: v.version,
        )
        version = self.version
        if versions:
            version = max(version or 0, versions[-1].version)
        submitted = parse_date(self.submitted) or (versions[0].date if versions else None)
        updated = parse_date(self.updated) or (versions[-1].date if len(versions) > 1 else None)
        links = {k: clean_text(v) for k, v in self.links.items() if v and clean_text(v)}
        if self.is_arxiv:
            links.setdefault("abs", f"https://arxiv.org/abs/{self.id}")
            links.setdefault("pdf", f"https://arxiv.org/pdf/{self.id}")
        if short["doi"]:
            links.setdefault("doi", f"https://doi.org/{short['doi']}")
        for k, v in links.items():
            if len(v) > 2_000:
                raise RecordError(f"{self.id}: link {k!r} is {len(v):,} characters")
        extra = {k: v for k, v in self.extra.items() if v not in (None, "", [], {})}
        try:
            size = len(orjson.dumps(extra)) if extra else 0
        except TypeError as e:  # orjson.JSONEncodeError: e.g. an integer beyond 64 bits
            raise RecordError(f"{self.id}: extra fields are not storable JSON ({e})") from None
        if size > 50_000:
            raise RecordError(f"{self.id}: extra fields are too large")
        return Paper(
            id=self.id,
            title=title,
            abstract=abstract,
            authors=authors,
            categories=cats,
            submitted=submitted,
            updated=updated,
            version=version,
            versions=versions,
            links=links,
            extra=extra,
            source=self.source,
            **short,
        )

    # The fields that describe the paper itself (``source`` is provenance).
    def content_hash(self) -> str:
        """A digest of every field but ``source``: equal hashes mean nothing to update."""
        values = [getattr(self, name) for name in _HASHED_FIELDS]
        values[_VERSIONS_AT] = [[v.version, v.date] for v in self.versions]
        return hashlib.sha256(orjson.dumps(values, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]

    def to_dict(self) -> dict:
        """A JSON-ready dict; empty fields are left out. ``from_dict`` reads it back."""
        d: dict = {}
        for name in _FIELD_NAMES:
            v = getattr(self, name)
            if v is None or v == "" or v == [] or v == {}:
                continue
            if name == "versions":
                v = [{"version": x.version, "date": x.date} if x.date else {"version": x.version} for x in v]
            elif isinstance(v, (list, dict)):
                v = v.copy()
            d[name] = v
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Paper":
        """Build a paper from papertide's JSON form. Unknown keys are an error."""
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise RecordError(f"unknown field(s): {', '.join(sorted(unknown))}")
        kw = dict(d)
        for key in ("authors", "categories"):
            if key in kw and kw[key] is not None:
                if isinstance(kw[key], str):
                    kw[key] = [kw[key]]
                if not isinstance(kw[key], list) or not all(isinstance(x, str) for x in kw[key]):
                    raise RecordError(f"{key} must be a list of strings")
        for key in ("links", "extra"):
            if key in kw and not isinstance(kw[key], dict):
                raise RecordError(f"{key} must be an object")
        try:
            kw["versions"] = [
                Version(int(v["version"]), v.get("date")) if isinstance(v, dict) else Version(int(v))
                for v in kw.get("versions") or []
            ]
        except (KeyError, TypeError, ValueError):
            raise RecordError("versions must be a list of {version, date}") from None
        if kw.get("version") is not None:
            try:
                kw["version"] = int(kw["version"])
            except (TypeError, ValueError):
                raise RecordError(f"version must be a number, not {kw['version']!r}") from None
        for key in ("id", "title", "abstract"):
            if key in kw and kw[key] is not None and not isinstance(kw[key], str):
                raise RecordError(f"{key} must be a string")
        kw.setdefault("title", "")
        if not kw.get("id"):
            raise RecordError("record has no id")
        return cls(**{k: v for k, v in kw.items() if v is not None or k in ("id", "title")})


_FIELD_NAMES = tuple(f.name for f in fields(Paper))
_HASHED_FIELDS = tuple(n for n in _FIELD_NAMES if n != "source")  # provenance is not content
_VERSIONS_AT = _HASHED_FIELDS.index("versions")


def merge(old: Paper, new: Paper) -> Paper:
    """Combine a stored paper with a newly read copy of the same paper.

    A copy of an older version never overrides a newer one. Otherwise the new
    copy's non-empty fields win and fields it lacks keep their stored value (an HF
    daily entry has no categories; it must not erase those harvested from arXiv).
    Versions, links and extra fields are united.
    """
    if old.version and new.version and new.version < old.version:
        base, top = new, old
    else:
        base, top = old, new
    out = {}
    for f in fields(Paper):
        a, b = getattr(base, f.name), getattr(top, f.name)
        out[f.name] = b if b not in (None, "", [], {}) else a
    out["versions"] = sorted(
        ({v.version: v for v in base.versions} | {v.version: v for v in top.versions}).values(),
        key=lambda v: v.version,
    )
    out["links"] = base.links | top.links
    out["extra"] = base.extra | top.extra
    out["submitted"] = min(filter(None, [old.submitted, new.submitted]), default=None)
    if old.version and new.version:
        out["version"] = max(old.version, new.version)
    return Paper(**out)
