"""Hugging Face Daily Papers (``https://huggingface.co/api/daily_papers?date=YYYY-MM-DD``).

The daily-papers page papertide grew from is this feed: the papers the community
put forward on one day, with their upvotes. Each listed paper becomes two items: a
:class:`Paper` (``source="hf-daily"``; no categories, which arXiv fills in) and a
:class:`Signal` carrying its upvotes for the trending feed. The ``day`` of the
signal is the day the paper was added to Daily Papers, not its arXiv date.

Build the fetcher with ``Fetcher(config, interval=config.hf_interval)`` and pass
``config.hf_url`` as ``base_url``.
"""

from __future__ import annotations

import json
import logging
from datetime import date, datetime
from typing import Iterator, NoReturn

import httpx

from papertide.errors import InvalidIdError, RecordError, SourceError, SourceRefusedError
from papertide.paper import Paper, day_of, parse_arxiv_id, parse_date
from papertide.sources import Item, Rejected, Signal
from papertide.sources.http import Fetcher, Retry

log = logging.getLogger("papertide.sources.hf_daily")

SOURCE = "hf-daily"
SIGNAL_SOURCE = "hf"
MAX_LIMIT = 100  # the endpoint's largest page
MAX_PAGES = 50  # a day never lists thousands of papers; past this, something loops


# ------------------------------------------------------------------ public API


def daily(fetcher: Fetcher, base_url: str, day: date | str, *, limit: int = 100) -> Iterator[Item]:
    """Yield a :class:`Paper` and a :class:`Signal` for every paper listed on ``day``.

    Pages with ``p`` (0-based) and ``limit`` until a short or empty page. A listed
    item that cannot be read is yielded as :class:`Rejected` and the rest go on; an
    answer that is not a list of papers raises :class:`SourceError`. The day and
    limit are checked (``ValueError``) when called, before any request is sent.
    """
    day_iso = _check_day(day)
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be between 1 and {MAX_LIMIT}; not {limit}")
    return _pages(fetcher, base_url, day_iso, limit)


def _pages(fetcher: Fetcher, base_url: str, day_iso: str, limit: int) -> Iterator[Item]:
    seen: set[str] = set()
    index = 0
    for page in range(MAX_PAGES):
        listed = _get_page(fetcher, base_url, {"date": day_iso, "p": page, "limit": limit})
        items = _page_items(listed, day_iso, index, seen)
        yield from items
        index += len(listed)
        if len(listed) < limit:
            return
        if not any(isinstance(i, (Paper, Rejected)) for i in items):
            log.warning("HF daily papers %s: page %d repeats earlier pages; stopping", day_iso, page)
            return
    log.warning("HF daily papers %s: stopped after %d pages of %d", day_iso, MAX_PAGES, limit)


def _page_items(listed: list, day: str, first_index: int, seen: set[str]) -> list[Item]:
    """The items of one page, leaving out papers (and their signals) listed on earlier pages."""
    out: list[Item] = []
    for n, raw in enumerate(listed):
        items = listing_items(raw, day, first_index + n)
        if isinstance(items[0], Paper):
            if items[0].id in seen:
                continue
            seen.add(items[0].id)
        out.extend(items)
    return out


def listing_items(raw: object, day: str, index: int = 0) -> list[Item]:
    """One listed item as ``[Paper, Signal]``, or ``[Rejected]`` saying why it cannot be read."""
    where = f"hf:{day}#{index}"
    paper = raw.get("paper") if isinstance(raw, dict) else None
    if isinstance(paper, dict) and isinstance(paper.get("id"), str) and paper["id"].strip():
        where = f"hf:{paper['id'].strip()}"
    try:
        record = listing_paper(raw).normalised()
        signal = listing_signal(raw, record.id, day)
    except (InvalidIdError, RecordError) as e:
        return [Rejected(where, str(e))]
    return [record, signal]


# ---------------------------------------------------------------------- pages


def _check_day(day: date | str) -> str:
    if isinstance(day, datetime):
        return day.date().isoformat()
    if isinstance(day, date):
        return day.isoformat()
    try:
        return date.fromisoformat(str(day).strip()).isoformat()
    except ValueError:
        raise ValueError(f"not a day: {day!r} (expected YYYY-MM-DD)") from None


def _get_page(fetcher: Fetcher, base_url: str, params: dict) -> list:
    """GET one page and return its list; a body cut short is fetched again."""
    parsed: dict[str, object] = {}

    def check(resp: httpx.Response) -> None:
        if not resp.is_success:
            return
        try:
            parsed["body"] = json.loads(resp.content)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise Retry(f"HF answer is not valid JSON ({e}); truncated?") from None

    resp = fetcher.get(base_url, params, accept=[400, 404], check=check)
    where = f"HF daily papers ({resp.request.url})"
    if not resp.is_success:
        _raise_error_answer(resp, where)
    body = parsed["body"]
    if not isinstance(body, list):
        raise SourceError(f"{where}: expected a list of papers, got {_describe_body(body)}")
    return body


def _raise_error_answer(resp: httpx.Response, where: str) -> NoReturn:
    try:
        body = json.loads(resp.content)
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    if isinstance(body, dict) and body.get("error"):
        raise SourceRefusedError(f"{where}: HTTP {resp.status_code}: {body['error']}")
    snippet = resp.text[:200].strip().replace("\n", " ")
    raise SourceRefusedError(f"{where}: HTTP {resp.status_code} ({snippet})")


def _describe_body(body: object) -> str:
    if isinstance(body, dict) and body.get("error"):
        return f"an error: {body['error']}"
    return f"a JSON {type(body).__name__}"


# --------------------------------------------------------------------- items


def listing_paper(raw: object) -> Paper:
    """The paper of one listed item; raises :class:`RecordError` or :class:`InvalidIdError`."""
    item, paper = _objects(raw)
    aid = parse_arxiv_id(paper["id"])
    title = paper.get("title") or item.get("title")
    if not isinstance(title, str) or not title.strip():
        raise RecordError(f"{aid.id}: listed without a title")
    return Paper(
        id=aid.id,
        title=title,
        abstract=_str(paper.get("summary") or item.get("summary")),
        authors=_authors(paper.get("authors")),
        submitted=_str(paper.get("publishedAt")) or None,
        links=_links(paper, aid.id),
        extra=_extra(item, paper),
        source=SOURCE,
    )


def listing_signal(raw: object, paper_id: str, day: str) -> Signal:
    """The upvotes of one listed item, on the day it was added to Daily Papers."""
    item, paper = _objects(raw)
    upvotes = paper.get("upvotes")
    if isinstance(upvotes, bool) or not isinstance(upvotes, int) or upvotes < 0:
        raise RecordError(f"{paper_id}: upvotes is {upvotes!r}, not a count")
    try:
        listed = parse_date(paper.get("submittedOnDailyAt"))
    except RecordError:
        listed = None  # the requested day is as good
    comments = item.get("numComments")
    data = {
        "submitted_by": _submitter(item, paper),
        "num_comments": comments if isinstance(comments, int) and not isinstance(comments, bool) else None,
        "discussion_id": _str(paper.get("discussionId")),
    }
    data = {k: v for k, v in data.items() if v not in (None, "")}
    return Signal(paper_id, SIGNAL_SOURCE, upvotes, day=day_of(listed) or day, data=data)


def _objects(raw: object) -> tuple[dict, dict]:
    """The listed item and its ``paper`` object, checked to be objects with an id."""
    if not isinstance(raw, dict):
        raise RecordError(f"listed item is a JSON {type(raw).__name__}, not an object")
    paper = raw.get("paper")
    if not isinstance(paper, dict):
        raise RecordError("listed item has no 'paper' object")
    if not isinstance(paper.get("id"), str) or not paper["id"].strip():
        raise RecordError("listed paper has no id")
    return raw, paper


def _authors(authors: object) -> list[str]:
    if not isinstance(authors, list):
        return []
    return [a["name"] for a in authors if isinstance(a, dict) and isinstance(a.get("name"), str)]


def _links(paper: dict, paper_id: str) -> dict[str, str]:
    links = {"hf": f"https://huggingface.co/papers/{paper_id}"}
    repo = _str(paper.get("githubRepo")).strip()
    if repo:
        links["code"] = repo if repo.startswith(("http://", "https://")) else f"https://github.com/{repo.strip('/')}"
    if _str(paper.get("projectPage")).strip():
        links["project"] = paper["projectPage"].strip()
    return links


def _extra(raw: dict, paper: dict) -> dict[str, object]:
    keywords = paper.get("ai_keywords")
    stars = paper.get("githubStars")
    extra: dict[str, object] = {
        "ai_summary": _str(paper.get("ai_summary")),
        "ai_keywords": [k for k in keywords if isinstance(k, str)] if isinstance(keywords, list) else None,
        "github_stars": stars if isinstance(stars, int) and not isinstance(stars, bool) else None,
        "organization": _org_name(raw.get("organization") or paper.get("organization")),
    }
    return {k: v for k, v in extra.items() if v not in (None, "", [])}


def _org_name(org: object) -> str | None:
    if not isinstance(org, dict):
        return None
    return _str(org.get("fullname")) or _str(org.get("name")) or None


def _submitter(raw: dict, paper: dict) -> str | None:
    """The HF user who put the paper on Daily Papers: handle, else display name."""
    for who in (paper.get("submittedOnDailyBy"), raw.get("submittedBy")):
        if isinstance(who, dict):
            name = _str(who.get("user")) or _str(who.get("name")) or _str(who.get("fullname"))
            if name:
                return name
    return None


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""
