"""Harvest arXiv's metadata over OAI-PMH, and read saved OAI-PMH pages.

OAI-PMH is the way arXiv asks bulk harvesters to take its metadata: ``ListRecords``
pages of a set (``cs``, ``cs:cs:CL``, ``physics:hep-th``…) between two datestamps,
chained by resumption tokens. :func:`harvest` walks those pages politely through
the shared :class:`~papertide.sources.http.Fetcher` and yields one item per record
(a :class:`Paper`, a :class:`Deleted` marker or a :class:`Rejected` record), then a
:class:`Checkpoint` after every page so an interrupted harvest resumes from the
token it stopped at. :func:`read_file` parses a saved page with the same record
parser, streaming it so that large files stay cheap.

Both arXiv metadata formats are understood: ``arXiv`` (structured authors with
affiliations) and ``arXivRaw`` (the author line as submitted, plus every version
with its date).
"""

from __future__ import annotations

import logging
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Iterator

import httpx

from papertide.errors import FormatError, InvalidIdError, RecordError, SourceError, SourceRefusedError
from papertide.paper import Paper, Version, clean_text, parse_arxiv_id, parse_date
from papertide.sources import Checkpoint, Deleted, Item, Rejected
from papertide.sources.http import Fetcher, Retry

log = logging.getLogger("papertide.sources.arxiv_oai")

OAI_NS = "http://www.openarchives.org/OAI/2.0/"
FORMATS = {"arXiv": "http://arxiv.org/OAI/arXiv/", "arXivRaw": "http://arxiv.org/OAI/arXivRaw/"}
SOURCE = "arxiv-oai"
# Some OAI-PMH servers send their protocol errors (badArgument…) with these statuses.
ERROR_STATUSES = (400, 404, 422)

_SET_SPEC = re.compile(r"[A-Za-z0-9_.!~*'()-]+(?::[A-Za-z0-9_.!~*'()-]+)*")
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def _oai(tag: str) -> str:
    return f"{{{OAI_NS}}}{tag}"


# ------------------------------------------------------------------ arguments


def checkpoint_name(set_spec: str | None, prefix: str) -> str:
    """Name of a harvest's checkpoint, e.g. ``oai:arXiv:cs:cs:CL`` (``*`` = every set)."""
    return f"oai:{prefix}:{set_spec or '*'}"


def _check_prefix(prefix: str) -> str:
    if prefix not in FORMATS:
        valid = ", ".join(repr(p) for p in FORMATS)
        raise ValueError(f"metadata prefix must be one of {valid}, not {prefix!r}")
    return prefix


def _check_set(set_spec: str | None) -> str | None:
    if set_spec in (None, "", "*"):
        return None
    if not _SET_SPEC.fullmatch(set_spec):
        raise ValueError(f"not an OAI-PMH set: {set_spec!r} (examples: 'cs', 'cs:cs:CL', 'physics:hep-th')")
    return set_spec


def _check_day(value: str | date | None, name: str) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, date):
        return value.isoformat()
    try:
        if _DAY.fullmatch(value):
            return date.fromisoformat(value).isoformat()
    except ValueError:
        pass
    raise ValueError(f"{name} must be a date YYYY-MM-DD (arXiv's granularity), not {value!r}")


# ---------------------------------------------------------------------- pages


@dataclass
class _Page:
    """One parsed OAI-PMH response: its items or its error, and the paging token."""

    response_date: str | None = None
    items: list[ET.Element] = field(default_factory=list)
    token: str | None = None
    complete_list_size: int | None = None
    cursor: int | None = None
    error: tuple[str, str] | None = None  # (code, message)


def _int_attr(el: ET.Element, name: str) -> int | None:
    value = (el.get(name) or "").strip()
    return int(value) if value.isdigit() else None


def _parse_page(root: ET.Element, container: str, item: str, where: str) -> _Page:
    page = _Page(response_date=clean_text(root.findtext(_oai("responseDate"))) or None)
    error = root.find(_oai("error"))
    if error is not None:
        page.error = (error.get("code") or "unknown", clean_text(error.text))
        return page
    box = root.find(_oai(container))
    if box is None:
        raise SourceError(f"{where}: OAI-PMH response holds neither {container} nor an error")
    page.items = box.findall(_oai(item))
    token = box.find(_oai("resumptionToken"))
    if token is not None:
        page.token = clean_text(token.text) or None
        page.complete_list_size = _int_attr(token, "completeListSize")
        page.cursor = _int_attr(token, "cursor")
    return page


def _fetch_page(fetcher: Fetcher, base_url: str, params: dict[str, str], container: str, item: str) -> _Page:
    """GET one page; a body that is not well-formed XML is retried by the fetcher."""
    where = str(httpx.URL(base_url, params=params))
    parsed: dict[str, ET.Element] = {}

    def check(resp: httpx.Response) -> None:
        parsed.pop("root", None)
        try:
            parsed["root"] = ET.fromstring(resp.content)
        except ET.ParseError as e:
            if resp.is_success:
                raise Retry(f"malformed OAI-PMH XML ({e})") from None

    resp = fetcher.get(base_url, params, accept=ERROR_STATUSES, check=check)
    root = parsed.get("root")
    if root is None or root.tag != _oai("OAI-PMH"):
        status = "" if resp.is_success else f"HTTP {resp.status_code}, "
        snippet = resp.text[:120].strip().replace("\n", " ")
        raise SourceError(f"{where}: {status}not an OAI-PMH response ({snippet!r})")
    return _parse_page(root, container, item, where)


# -------------------------------------------------------------------- harvest


def _new_state(set_spec: str | None, prefix: str, from_: str | None, until: str | None) -> dict:
    return {
        "set": set_spec,
        "prefix": prefix,
        "from": from_,
        "until": until,
        "token": None,
        "done": False,
        "records": 0,
        "last_datestamp": None,
        "response_date": None,
        "complete_list_size": None,
        "cursor": None,
        "restarts": 0,
    }


def _resumable(resume: dict | None, state: dict) -> bool:
    if not resume or resume.get("done") or not resume.get("token"):
        return False
    same = all(resume.get(k) == state[k] for k in ("set", "prefix", "from", "until"))
    if not same:
        other = {k: resume.get(k) for k in ("set", "prefix", "from", "until")}
        log.info("checkpoint is for another harvest (%s); starting afresh", other)
    return same


def _list_params(state: dict, token: str | None) -> dict[str, str]:
    if token:  # OAI-PMH: the token is the only argument besides the verb
        return {"verb": "ListRecords", "resumptionToken": token}
    params = {"verb": "ListRecords", "metadataPrefix": state["prefix"]}
    for key in ("set", "from", "until"):
        if state[key]:
            params[key] = state[key]
    return params


def harvest(
    fetcher: Fetcher,
    base_url: str,
    *,
    set_spec: str | None,
    prefix: str = "arXiv",
    from_: str | None = None,
    until: str | None = None,
    resume: dict | None = None,
) -> Iterator[Item]:
    """Items of a ``ListRecords`` harvest: one per record, and a Checkpoint after each page.

    ``set_spec`` None (or ``"*"``) harvests every set; ``from_``/``until`` are
    ``YYYY-MM-DD`` datestamps (last modification, not submission). ``resume`` is
    the state of the last Checkpoint of an unfinished run of the same harvest; it
    is ignored when it belongs to another harvest or one that is done. An expired
    token (``badResumptionToken``) restarts the list from ``from_`` once per call.
    Arguments are checked here (ValueError); while iterating, a failing server or
    an OAI-PMH error other than ``noRecordsMatch`` raises SourceError.
    """
    state = _new_state(
        _check_set(set_spec), _check_prefix(prefix), _check_day(from_, "from"), _check_day(until, "until")
    )
    if state["from"] and state["until"] and state["from"] > state["until"]:
        raise ValueError(f"from ({state['from']}) is after until ({state['until']})")
    token: str | None = None
    if _resumable(resume, state):
        for key in ("records", "last_datestamp", "complete_list_size", "cursor", "restarts"):
            state[key] = resume.get(key, state[key])
        token = resume["token"]
    return _pages(fetcher, base_url, state, token)


def _pages(fetcher: Fetcher, base_url: str, state: dict, token: str | None) -> Iterator[Item]:
    name = checkpoint_name(state["set"], state["prefix"])
    if token:
        log.info("%s: resuming at resumptionToken %s after %s records", name, token, state["records"])
    restarted = False
    while True:
        params = _list_params(state, token)
        page = _fetch_page(fetcher, base_url, params, "ListRecords", "record")
        if page.error:
            code, message = page.error
            if code == "badResumptionToken" and token and not restarted:
                log.warning("%s: resumptionToken %r refused (%s); restarting the list", name, token, message)
                restarted, token = True, None
                state.update(records=0, cursor=None, restarts=state["restarts"] + 1)
                continue
            if code != "noRecordsMatch":
                raise SourceRefusedError(f"{httpx.URL(base_url, params=params)}: OAI-PMH error {code}: {message}")
        for record in page.items:
            item = parse_record(record)
            state["records"] += 1
            stamp = clean_text(record.findtext(f"{_oai('header')}/{_oai('datestamp')}")) or None
            if stamp and (state["last_datestamp"] is None or stamp > state["last_datestamp"]):
                state["last_datestamp"] = stamp
            yield item
        if page.token and page.token == token:
            raise SourceError(f"{base_url}: server repeated resumptionToken {token!r}; the list would never end")
        token = page.token
        state.update(
            token=token,
            done=token is None,
            response_date=page.response_date,
            complete_list_size=page.complete_list_size or state["complete_list_size"],
            cursor=page.cursor,
        )
        yield Checkpoint(name=name, state=dict(state))
        if token is None:
            return


def list_sets(fetcher: Fetcher, base_url: str) -> list[tuple[str, str]]:
    """Every set the repository offers, as ``(setSpec, setName)`` pairs (``ListSets``, paged)."""
    out: list[tuple[str, str]] = []
    params = {"verb": "ListSets"}
    while True:
        page = _fetch_page(fetcher, base_url, params, "ListSets", "set")
        if page.error:
            code, message = page.error
            raise SourceRefusedError(f"{httpx.URL(base_url, params=params)}: OAI-PMH error {code}: {message}")
        for s in page.items:
            out.append((clean_text(s.findtext(_oai("setSpec"))), clean_text(s.findtext(_oai("setName")))))
        if not page.token:
            return out
        params = {"verb": "ListSets", "resumptionToken": page.token}


# -------------------------------------------------------------------- records


def parse_record(record: ET.Element, *, context: str = "") -> Paper | Deleted | Rejected:
    """One OAI-PMH ``<record>`` as a normalised Paper, a Deleted marker, or Rejected.

    ``context`` is put before the record's identifier in ``where`` (a file path).
    """
    header = record.find(_oai("header"))
    identifier = clean_text(header.findtext(_oai("identifier"))) if header is not None else ""
    where = context + (identifier if identifier.startswith("oai:") else f"oai:{identifier or '?'}")
    try:
        if header is None:
            raise RecordError("record has no header")
        if header.get("status") == "deleted":
            return Deleted(parse_arxiv_id(identifier).id, where)
        metadata = record.find(_oai("metadata"))
        body = metadata[0] if metadata is not None and len(metadata) else None
        if body is None:
            raise RecordError("record has no metadata")
        if body.tag == f"{{{FORMATS['arXiv']}}}arXiv":
            paper = _from_arxiv(body, identifier)
        elif body.tag == f"{{{FORMATS['arXivRaw']}}}arXivRaw":
            paper = _from_arxiv_raw(body, identifier)
        else:
            raise RecordError(f"unsupported metadata format {body.tag}")
        return paper.normalised()
    except (RecordError, InvalidIdError) as e:
        return Rejected(where, str(e))


def _text(el: ET.Element, ns: str, tag: str) -> str:
    return clean_text(el.findtext(f"{{{ns}}}{tag}"))


def _paper_id(meta_id: str, identifier: str) -> str:
    return parse_arxiv_id(meta_id or identifier).id


def _date(value: str, what: str, pid: str) -> str | None:
    try:
        return parse_date(value or None)
    except RecordError:
        raise RecordError(f"{pid}: {what} is not a date: {value!r}") from None


def _common(body: ET.Element, ns: str, pid: str) -> dict:
    """Fields both formats share, as Paper keyword arguments."""
    title = _text(body, ns, "title")
    if not title:
        raise RecordError(f"{pid}: record has no title")
    return {
        "id": pid,
        "title": title,
        "abstract": _text(body, ns, "abstract"),
        "categories": _text(body, ns, "categories").split(),
        "doi": _text(body, ns, "doi") or None,
        "journal_ref": _text(body, ns, "journal-ref") or None,
        "comments": _text(body, ns, "comments") or None,
        "license": _text(body, ns, "license") or None,
        "source": SOURCE,
        "extra": {
            "report_no": _text(body, ns, "report-no") or None,
            "msc_class": _text(body, ns, "msc-class") or None,
            "acm_class": _text(body, ns, "acm-class") or None,
        },
    }


def _from_arxiv(body: ET.Element, identifier: str) -> Paper:
    ns = FORMATS["arXiv"]
    pid = _paper_id(_text(body, ns, "id"), identifier)
    fields = _common(body, ns, pid)
    authors: list[str] = []
    affiliations: list[list[str]] = []
    for a in body.iterfind(f"{{{ns}}}authors/{{{ns}}}author"):
        name = " ".join(p for p in (_text(a, ns, "forenames"), _text(a, ns, "keyname"), _text(a, ns, "suffix")) if p)
        if name:
            authors.append(name)
            affiliations.append([t for t in (clean_text(x.text) for x in a.iterfind(f"{{{ns}}}affiliation")) if t])
    if any(affiliations):
        fields["extra"]["affiliations"] = affiliations
    return Paper(
        authors=authors,
        submitted=_date(_text(body, ns, "created"), "created", pid),
        updated=_date(_text(body, ns, "updated"), "updated", pid),
        **fields,
    )


def _from_arxiv_raw(body: ET.Element, identifier: str) -> Paper:
    ns = FORMATS["arXivRaw"]
    pid = _paper_id(_text(body, ns, "id"), identifier)
    fields = _common(body, ns, pid)
    versions = []
    for v in body.iterfind(f"{{{ns}}}version"):
        label = (v.get("version") or "").strip()
        if not re.fullmatch(r"v[1-9]\d*", label):
            raise RecordError(f"{pid}: bad version {label!r}")
        versions.append(Version(int(label[1:]), _date(_text(v, ns, "date"), f"{label} date", pid)))
    versions.sort(key=lambda v: v.version)
    authors = split_authors(_text(body, ns, "authors"))
    fields["extra"]["submitter"] = _text(body, ns, "submitter") or None
    if any(affs for _, affs in authors):
        fields["extra"]["affiliations"] = [affs for _, affs in authors]
    return Paper(
        authors=[name for name, _ in authors],
        versions=versions,
        version=versions[-1].version if versions else None,
        submitted=versions[0].date if versions else None,
        updated=versions[-1].date if versions else None,
        **fields,
    )


# ------------------------------------------------------------- author strings

_SEPARATOR = re.compile(r"\s*[,;&]\s*(?:and\s+)?|\s+and\s+")
_SUFFIXES = frozenset({"jr", "jr.", "sr", "sr.", "ii", "iii", "iv"})
_REFS = re.compile(r"\d+(?:\s*(?:,|and|&)\s*\d+)*")
_LEGEND = re.compile(r"^\s*\(\d+\)")
_ET_AL = re.compile(r"(?:^|\s+)et\.? al\.?$")


def _top_level(text: str) -> list[tuple[str, str]]:
    """Split into ``("text", …)`` and ``("group", inner)`` parts at parenthesis depth 0."""
    parts: list[tuple[str, str]] = []
    depth, start = 0, 0
    for i, ch in enumerate(text):
        if ch == "(":
            if depth == 0:
                parts.append(("text", text[start:i]))
                start = i + 1
            depth += 1
        elif ch == ")" and depth:
            depth -= 1
            if depth == 0:
                parts.append(("group", text[start:i]))
                start = i + 1
    if depth:  # unbalanced: keep the rest as plain text
        parts.append(("text", text[start - 1 :]))
    else:
        parts.append(("text", text[start:]))
    return parts


def _legend(inner: str) -> dict[str, str]:
    """``(1) MIT, (2) Oxford`` -> ``{"1": "MIT", "2": "Oxford"}``."""
    bits = re.split(r"\((\d+)\)", inner)
    return {n: t.strip().rstrip(",;").strip() for n, t in zip(bits[1::2], bits[2::2])}


def split_authors(text: str) -> list[tuple[str, list[str]]]:
    """Split an arXiv author line into ``(name, affiliations)`` pairs.

    Names are separated by commas and ``and``; ``(…)`` after a name is its
    affiliation, and numbered references like ``(1 and 2)`` are looked up in a
    trailing ``((1) MIT, (2) Oxford)`` legend. LaTeX is kept as written.

    >>> split_authors("A. B (MIT), C. D and E. F")
    [('A. B', ['MIT']), ('C. D', []), ('E. F', [])]
    """
    parts = _top_level(clean_text(text))
    authors: list[list] = []
    legend: dict[str, str] = {}
    for kind, value in parts:
        if kind == "group":
            if _LEGEND.match(value):
                legend.update(_legend(value))
            elif authors and value.strip():
                authors[-1][1].append(value.strip())
            continue
        for j, chunk in enumerate(_SEPARATOR.split(value)):
            chunk = _ET_AL.sub("", chunk.strip())
            if j == 0 and authors:  # text right after a group continues that author
                if chunk:
                    authors[-1][0] = f"{authors[-1][0]} {chunk}"
            elif chunk.lower() in _SUFFIXES and authors:
                authors[-1][0] = f"{authors[-1][0]} {chunk}"
            elif chunk:
                authors.append([chunk, []])
    out = []
    for name, groups in authors:
        affs: list[str] = []
        for g in groups:
            if _REFS.fullmatch(g.strip()):
                affs += [legend[n] for n in re.findall(r"\d+", g) if legend.get(n)]
            else:
                affs.append(g)
        out.append((name, affs))
    return out


# ----------------------------------------------------------------- saved files


def read_file(path: str | Path) -> Iterator[Item]:
    """Yield the records of a saved OAI-PMH ListRecords (or GetRecord) response.

    The file is streamed. Malformed XML ends it with one ``Rejected("path:line")``
    after the records before the break; a file that is not an OAI-PMH response, or
    holds another verb's answer or a protocol error, raises FormatError.
    """
    path = Path(path)
    depth = 0
    root: ET.Element | None = None
    container: ET.Element | None = None
    with open(path, "rb") as f:
        try:
            for event, el in ET.iterparse(f, events=("start", "end")):
                if event == "start":
                    depth += 1
                    if depth == 1:
                        if el.tag != _oai("OAI-PMH"):
                            raise FormatError(f"{path}: not an OAI-PMH response (root element {el.tag})")
                        root = el
                    elif depth == 2 and el.tag in (_oai("ListRecords"), _oai("GetRecord")):
                        container = el
                    elif depth == 2 and el.tag not in (_oai("responseDate"), _oai("request"), _oai("error")):
                        verb = el.tag.rsplit("}", 1)[-1]
                        raise FormatError(f"{path}: an OAI-PMH {verb} response holds no records (expected ListRecords)")
                    continue
                depth -= 1
                if depth == 2 and el.tag == _oai("record") and container is not None:
                    yield parse_record(el, context=f"{path}:")
                    container.clear()  # drop records already read: the file may be large
                elif depth == 1 and el.tag == _oai("error"):
                    code = el.get("code") or "unknown"
                    if code != "noRecordsMatch":
                        raise FormatError(f"{path}: OAI-PMH error answer {code}: {clean_text(el.text)}")
        except ET.ParseError as e:
            line = e.position[0]
            if root is None:
                raise FormatError(f"{path}: not an OAI-PMH XML response ({e})") from None
            yield Rejected(f"{path}:{line}", f"malformed XML: {e}")
