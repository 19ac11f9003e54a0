"""Client of the arXiv API (``http://export.arxiv.org/api/query``), which answers in Atom 1.0.

OAI-PMH is how papertide harvests arXiv in bulk; this API is for the small,
targeted look-ups OAI cannot do: a search query (``cat:cs.CL AND ti:retrieval``),
or a handful of papers by id (to complete a paper a user or Hugging Face pointed
at). Build the fetcher with ``Fetcher(config)`` (arXiv's 3 s interval is its
default) and pass ``config.arxiv_api_url`` as ``base_url``.

The API has a few habits this module absorbs: a bad query comes back as a feed
holding one entry titled ``Error`` (often with HTTP 400), which becomes a
:class:`SourceRefusedError` (asking again will not help); a page sometimes comes
back empty although more results exist, which is asked again a couple of times; and
category terms mix arXiv categories with ACM and MSC classes, which are kept apart.
"""

from __future__ import annotations

import logging
import re
import xml.etree.ElementTree as ET
from typing import Iterator, NoReturn

import httpx

from papertide.errors import InvalidIdError, RecordError, SourceError, SourceRefusedError
from papertide.paper import ArxivId, Paper, Version, is_arxiv_category, parse_arxiv_id
from papertide.sources import Item, Rejected
from papertide.sources.http import Fetcher, Retry

log = logging.getLogger("papertide.sources.arxiv_api")

SOURCE = "arxiv-api"
SORT_BY = ("relevance", "lastUpdatedDate", "submittedDate")
SORT_ORDER = ("ascending", "descending")
MAX_PAGE = 2_000  # the API's limit per call
MAX_TOTAL = 30_000  # the API's limit on start + max_results
EMPTY_PAGE_RETRIES = 2  # extra asks for a page that came back empty too early
IDS_PER_CALL = 100  # keeps id_list URLs short

ATOM = "{http://www.w3.org/2005/Atom}"
ARXIV = "{http://arxiv.org/schemas/atom}"
OPENSEARCH = "{http://a9.com/-/spec/opensearch/1.1/}"

# An arXiv category (cs.CL, hep-th, math.GT); the API also lists ACM (I.2.7) and
# MSC (68T50) classes as categories, which this pattern leaves out.


# ------------------------------------------------------------------ public API


def query(
    fetcher: Fetcher,
    base_url: str,
    *,
    search_query: str | None = None,
    id_list: list[str] | None = None,
    max_results: int = 100,
    sort_by: str = "relevance",
    sort_order: str = "descending",
    page_size: int = 200,
) -> Iterator[Item]:
    """Yield the papers matching ``search_query`` and/or ``id_list``, page by page.

    Stops after ``max_results`` entries, at the feed's ``totalResults``, or at a
    short page. Unreadable entries are yielded as :class:`Rejected`; an error
    answer from the API, or a network that stays dead, raises :class:`SourceError`.
    Arguments are checked (``ValueError``) when called, before any request is sent.
    """
    ids = _parse_ids(id_list or [])
    _check_args(search_query, ids, max_results, sort_by, sort_order, page_size)
    params: dict[str, str | int] = {"sortBy": sort_by, "sortOrder": sort_order}
    if search_query:
        params["search_query"] = search_query
    if ids:
        params["id_list"] = ",".join(str(i) for i in ids)
    return _pages(fetcher, base_url, params, max_results, page_size)


def _pages(fetcher: Fetcher, base_url: str, params: dict, max_results: int, page_size: int) -> Iterator[Item]:
    start = 0
    while start < max_results:
        wanted = min(page_size, max_results - start)
        total, entries = _page(fetcher, base_url, params | {"start": start, "max_results": wanted})
        entries = entries[:wanted]  # never more than asked, so ``start`` stays right
        for i, entry in enumerate(entries):
            yield entry_item(entry, index=start + i)
        start += len(entries)
        if _last_page(len(entries), wanted, start, total):
            return


def fetch(fetcher: Fetcher, base_url: str, ids: list[str]) -> list[Item]:
    """Look up specific papers by id (any form :func:`parse_arxiv_id` reads).

    Returns their items in the API's order; ids are asked for in groups of
    ``IDS_PER_CALL`` so URLs stay short. Invalid ids raise ``ValueError`` first.
    """
    parsed = list(dict.fromkeys(str(i) for i in _parse_ids(ids)))
    items: list[Item] = []
    for n in range(0, len(parsed), IDS_PER_CALL):
        chunk = parsed[n : n + IDS_PER_CALL]
        items.extend(query(fetcher, base_url, id_list=chunk, max_results=len(chunk), page_size=len(chunk)))
    return items


def _last_page(got: int, wanted: int, read: int, total: int | None) -> bool:
    """True when paging is over: an empty or short page, or totalResults reached."""
    if total is not None and read >= total:
        return True
    if got < wanted:
        if got and total is not None:
            log.warning("arXiv API: short page (%d of %d asked) after %d of %d results; stopping", got, wanted, read, total)
        return True
    return False


# ---------------------------------------------------------------- arguments


def _parse_ids(ids: list[str]) -> list[ArxivId]:
    if isinstance(ids, str):
        raise ValueError("id_list must be a list of ids, not a string")
    out = []
    for raw in ids:
        try:
            out.append(parse_arxiv_id(raw))
        except InvalidIdError as e:
            raise InvalidIdError(f"id_list: {e}") from None
    return out


def _check_args(
    search_query: str | None,
    ids: list[ArxivId],
    max_results: int,
    sort_by: str,
    sort_order: str,
    page_size: int,
) -> None:
    if not (search_query and search_query.strip()) and not ids:
        raise ValueError("give a search_query, an id_list, or both")
    if sort_by not in SORT_BY:
        raise ValueError(f"sort_by must be one of {', '.join(SORT_BY)}; not {sort_by!r}")
    if sort_order not in SORT_ORDER:
        raise ValueError(f"sort_order must be one of {', '.join(SORT_ORDER)}; not {sort_order!r}")
    if not 1 <= page_size <= MAX_PAGE:
        raise ValueError(f"page_size must be between 1 and {MAX_PAGE} (the API's limit per call); not {page_size}")
    if not 1 <= max_results <= MAX_TOTAL:
        raise ValueError(f"max_results must be between 1 and {MAX_TOTAL:,} (the API's limit); not {max_results}")


# -------------------------------------------------------------------- pages


def _page(fetcher: Fetcher, base_url: str, params: dict) -> tuple[int | None, list[ET.Element]]:
    """One page: (totalResults, entries). An empty page before the end is asked again."""
    for attempt in range(EMPTY_PAGE_RETRIES + 1):
        root = _get_feed(fetcher, base_url, params)
        total = _total_results(root)
        entries = root.findall(f"{ATOM}entry")
        if entries or total is None or params["start"] >= total:
            return total, entries
        if attempt < EMPTY_PAGE_RETRIES:
            log.info("arXiv API: empty page at start=%d of %d results; asking again", params["start"], total)
    log.warning(
        "arXiv API: page at start=%d stayed empty after %d attempts although totalResults=%d; stopping early",
        params["start"],
        EMPTY_PAGE_RETRIES + 1,
        total,
    )
    return total, []


def _get_feed(fetcher: Fetcher, base_url: str, params: dict) -> ET.Element:
    """GET one feed; a body that is not well-formed XML (cut short) is fetched again."""
    parsed: dict[str, ET.Element] = {}

    def check(resp: httpx.Response) -> None:
        if not resp.is_success:
            return
        try:
            parsed["root"] = ET.fromstring(resp.content)
        except ET.ParseError as e:
            raise Retry(f"arXiv API answer is not well-formed XML ({e}); truncated?") from None

    resp = fetcher.get(base_url, params, accept=[400], check=check)
    where = f"arXiv API ({resp.request.url})"
    if not resp.is_success:
        _raise_error_answer(resp, where)
    root = parsed["root"]
    if root.tag != f"{ATOM}feed":
        raise SourceError(f"{where}: expected an Atom feed, got <{_local(root.tag)}>")
    error = _error_message(root)
    if error is not None:
        raise SourceRefusedError(f"{where}: the API answered with an error: {error}")
    return root


def _raise_error_answer(resp: httpx.Response, where: str) -> NoReturn:
    try:
        message = _error_message(ET.fromstring(resp.content))
    except ET.ParseError:
        message = None
    if message is None:
        snippet = resp.text[:200].strip().replace("\n", " ")
        message = f"HTTP {resp.status_code} ({snippet})" if snippet else f"HTTP {resp.status_code}"
    raise SourceRefusedError(f"{where}: the API answered with an error: {message}")


def _error_message(root: ET.Element) -> str | None:
    """The summary of the API's error entry (title ``Error``, id under /api/errors), if any."""
    for entry in root.findall(f"{ATOM}entry"):
        entry_id = _text(entry, f"{ATOM}id")
        title = _text(entry, f"{ATOM}title")
        if "/api/errors" in entry_id or (title == "Error" and "/abs/" not in entry_id):
            return _text(entry, f"{ATOM}summary") or entry_id or "unknown error"
    return None


def _total_results(root: ET.Element) -> int | None:
    text = _text(root, f"{OPENSEARCH}totalResults")
    try:
        return int(text)
    except ValueError:
        return None


# ------------------------------------------------------------------- entries


def entry_item(entry: ET.Element, index: int = 0) -> Paper | Rejected:
    """One Atom ``<entry>`` as a normalised :class:`Paper`, or :class:`Rejected` saying why."""
    raw_id = _text(entry, f"{ATOM}id")
    where = raw_id or f"{SOURCE}#{index}"
    try:
        return entry_paper(entry).normalised()
    except (InvalidIdError, RecordError) as e:
        return Rejected(where, str(e))


def entry_paper(entry: ET.Element) -> Paper:
    """Read the fields of one entry; raises :class:`InvalidIdError` or :class:`RecordError`."""
    raw_id = _text(entry, f"{ATOM}id")
    if not raw_id:
        raise RecordError("entry has no <id>")
    aid = parse_arxiv_id(raw_id)
    published = _text(entry, f"{ATOM}published") or None
    updated = _text(entry, f"{ATOM}updated") or None
    authors, affiliations = _authors(entry)
    categories, other_classes = _categories(entry)
    extra: dict[str, object] = {}
    if affiliations:
        extra["affiliations"] = affiliations
    if other_classes:
        extra["other_classes"] = other_classes
    return Paper(
        id=aid.id,
        title=_text(entry, f"{ATOM}title"),
        abstract=_text(entry, f"{ATOM}summary"),
        authors=authors,
        categories=categories,
        submitted=published,
        updated=updated,
        version=aid.version,
        versions=_versions(aid.version, published, updated),
        doi=_text(entry, f"{ARXIV}doi") or None,
        journal_ref=_text(entry, f"{ARXIV}journal_ref") or None,
        comments=_text(entry, f"{ARXIV}comment") or None,
        links=_links(entry, aid),
        extra=extra,
        source=SOURCE,
    )


def _versions(version: int | None, published: str | None, updated: str | None) -> list[Version]:
    """v1 appeared at ``published``; the version served appeared at ``updated``."""
    if not version:
        return []
    if version == 1:
        return [Version(1, published)]
    return [Version(1, published), Version(version, updated)]


def _authors(entry: ET.Element) -> tuple[list[str], dict[str, list[str]]]:
    names: list[str] = []
    affiliations: dict[str, list[str]] = {}
    for author in entry.findall(f"{ATOM}author"):
        name = _text(author, f"{ATOM}name")
        if not name:
            continue
        names.append(name)
        affs = [a for a in (_clean(el.text) for el in author.findall(f"{ARXIV}affiliation")) if a]
        if affs:
            affiliations[name] = affs
    return names, affiliations


def _categories(entry: ET.Element) -> tuple[list[str], list[str]]:
    """arXiv categories, primary first; and the ACM/MSC classes the API lists alongside."""
    primary = entry.find(f"{ARXIV}primary_category")
    terms = [primary.get("term", "")] if primary is not None else []
    terms += [c.get("term", "") for c in entry.findall(f"{ATOM}category")]
    cats: list[str] = []
    other: list[str] = []
    for term in (_clean(t) for t in terms):
        if not term:
            continue
        bucket = cats if is_arxiv_category(term) else other
        if term not in bucket:
            bucket.append(term)
    return cats, other


def _links(entry: ET.Element, aid: ArxivId) -> dict[str, str]:
    """abs and pdf without a version (they follow the latest); doi as linked."""
    links: dict[str, str] = {}
    for link in entry.findall(f"{ATOM}link"):
        href = (link.get("href") or "").strip()
        if not href:
            continue
        if link.get("rel") == "alternate":
            links["abs"] = f"https://arxiv.org/abs/{aid.id}"
        elif link.get("title") == "pdf":
            links["pdf"] = f"https://arxiv.org/pdf/{aid.id}"
        elif link.get("title") == "doi":
            links["doi"] = re.sub(r"^http://", "https://", href)
    return links


# -------------------------------------------------------------------- helpers


def _text(el: ET.Element, path: str) -> str:
    found = el.find(path)
    return _clean(found.text) if found is not None else ""


def _clean(text: str | None) -> str:
    return " ".join((text or "").split())


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]
