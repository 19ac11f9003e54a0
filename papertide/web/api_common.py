"""What every JSON API route shares: token authentication, errors, paging, and records.

**Tokens.** The API knows a caller only by a personal API token, sent as
``Authorization: Bearer <token>`` (users create tokens on their account page; the
store keeps only their SHA-256). Session cookies are ignored here, so a browser that
is logged in cannot be made to write through the API by another site (no CSRF
surface), and token requests need no CSRF token. A missing token on a write, or a
wrong token anywhere, is a 401 with ``WWW-Authenticate: Bearer`` (RFC 6750).

**Rate limits.** Writes are limited per account and searches (``/api/search``,
``/api/similar``, ``/api/ngram/count``) per account, or per client address without a
token (:class:`ApiLimits`, :func:`limit_writes`, :func:`limit_searches`); past a
limit the answer is a 429 ``{"detail": …}`` with ``Retry-After`` in seconds. The rates
are settings (``api_writes_per_minute``, ``api_search_per_minute``; 0 lifts a limit).
The counts live in the store, so every worker and app server of a site shares them.

**Errors.** Engine exceptions become statuses in ``app.py`` (NotFoundError 404,
ConflictError 409, …); the store's plain ``ValueError`` (a name too long, a reply to
a comment on another paper) is turned into a 422 here by :func:`store_errors`.

**Records.** :func:`paper_outs` builds API papers from the same list entries the
pages show (``pages_common.entries``: votes, comment counts, HF upvotes, submitter,
listing day), so both surfaces always carry the same numbers.
"""

from __future__ import annotations

import math
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from papertide.config import Config
from papertide.paper import Paper, parse_paper_id
from papertide.store.community import Collection, CollectionItem, Comment, User
from papertide.store.limits import Limits
from papertide.web.api_models import CollectionOut, CommentOut, Highlights, PaperOut, VersionOut
from papertide.web.auth import token_hash
from papertide.web.pages_common import community, entries, paper_url, store
from papertide.web.security import RequestLimiter

REALM = 'Bearer realm="papertide"'
TOKEN_HELP = "send a personal API token as `Authorization: Bearer <token>` (create one on your account page)"

bearer = HTTPBearer(auto_error=False, scheme_name="token",
                    description="A personal API token, created on the account page.")  # fmt: skip


# ------------------------------------------------------------------- tokens


def _unauthorized(message: str, error: str | None = None) -> HTTPException:
    challenge = REALM + (f', error="{error}"' if error else "")
    return HTTPException(401, message, headers={"WWW-Authenticate": challenge})


def _token_user(request: Request, credentials: HTTPAuthorizationCredentials | None) -> User | None:
    """The token's user; None when no token was sent; 401 for a wrong one."""
    if credentials is None:
        if request.headers.get("authorization"):
            raise _unauthorized(f"the Authorization header is not a bearer token: {TOKEN_HELP}", "invalid_request")
        return None
    token = credentials.credentials.strip()
    user = community(request).user_for_token(token_hash(token)) if token else None
    if user is None:
        raise _unauthorized("this API token is not valid (it may have been deleted)", "invalid_token")
    return user


def optional_user(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> User | None:
    """Reads: anyone; with a valid token the caller is known (their votes, private collections)."""
    return _token_user(request, credentials)


def require_user(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> User:
    """Writes: a valid API token, or 401."""
    user = _token_user(request, credentials)
    if user is None:
        raise _unauthorized(f"this needs an API token: {TOKEN_HELP}")
    return user


# -------------------------------------------------------------- rate limits

WRITE_BURST = SEARCH_BURST = 30  # requests at once (a page of votes, a burst of autocomplete)
_LIMITS_LOCK = threading.Lock()


@dataclass
class ApiLimits:
    """The API's rate limiters of one app (``app.state.api_limits``, made on first use from
    the app's settings, counted in the app's store so all its processes share them); None
    is no limit. A failing store stops writes (503: they need it anyway) and lets searches
    through with a logged warning."""

    writes: RequestLimiter | None
    searches: RequestLimiter | None

    @classmethod
    def of(cls, config: Config, limits: Limits | None = None) -> ApiLimits:
        """The limits the settings ask for (``api_writes_per_minute``, ``api_search_per_minute``),
        counted in ``limits`` (``store.limits``; None: in this process's memory)."""
        return cls(writes=_limiter(config.api_writes_per_minute, WRITE_BURST, limits, "api-writes", False),
                   searches=_limiter(config.api_search_per_minute, SEARCH_BURST, limits, "api-searches", True))  # fmt: skip

    @classmethod
    def default(cls) -> ApiLimits:
        """The limits of the default settings."""
        return cls.of(Config(home=Path(".")))


def _limiter(per_minute: int, burst: int, limits: Limits | None, name: str, fail_open: bool) -> RequestLimiter | None:
    """``per_minute`` on average, bursts of ``burst`` (never more than a minute's worth); 0: None."""
    if per_minute <= 0:
        return None
    return RequestLimiter(per_minute / 60, max(1, min(burst, per_minute)), limits=limits, name=name,
                          fail_open=fail_open)  # fmt: skip


def api_limits(request: Request) -> ApiLimits:
    state = request.app.state
    limits = getattr(state, "api_limits", None)
    if limits is None:
        with _LIMITS_LOCK:
            limits = getattr(state, "api_limits", None)
            if limits is None:
                config = getattr(state, "config", None)
                limits = state.api_limits = (ApiLimits.of(config, store(request).limits) if config is not None
                                             else ApiLimits.default())  # fmt: skip
    return limits


def caller_key(request: Request, user: User | None) -> str:
    """Whom a limit counts: the account behind the token, else the client's address."""
    if user is not None:
        return f"user:{user.id}"
    return f"ip:{request.client.host if request.client else 'unknown'}"


def _check(limiter: RequestLimiter | None, key: str, what: str) -> None:
    if limiter is None:
        return
    wait = limiter.take(key)
    if wait > 0:
        seconds = max(1, math.ceil(wait))
        per_minute = round(limiter.rate * 60)
        raise HTTPException(429, f"too many {what}: at most {per_minute} a minute (bursts of {limiter.burst}); "
                                 f"try again in {seconds} s", headers={"Retry-After": str(seconds)})  # fmt: skip


# The token check and the allowance are one dependency: FastAPI runs each sync dependency
# in the thread pool on its own, and under load every extra hop is another wait in its queue.


def limit_writes(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> User:
    """Dependency of every write: the token's account (or 401) within its write allowance (or 429)."""
    user = require_user(request, credentials)
    _check(api_limits(request).writes, caller_key(request, user), "writes")
    return user


def limit_searches(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> User | None:
    """Dependency of the searches: the caller (as :func:`optional_user`) within its (account's or
    address's) allowance, or 429."""
    user = optional_user(request, credentials)
    _check(api_limits(request).searches, caller_key(request, user), "searches")
    return user


# ------------------------------------------------------------------- errors


@contextmanager
def store_errors() -> Iterator[None]:
    """The store's ``ValueError`` for invalid arguments -> 422 (papertide's own errors pass on to app.py)."""
    from papertide.errors import PapertideError

    try:
        yield
    except PapertideError:
        raise
    except ValueError as e:
        raise HTTPException(422, str(e)) from None


def visible_paper_id(request: Request, text: str, user: User | None) -> str:
    """The canonical id of a stored paper the caller may see (hidden ones only for admins); 404 otherwise."""
    pid = parse_paper_id(text)  # InvalidIdError -> 404
    store(request).get(pid)  # NotFoundError -> 404
    if getattr(user, "role", None) != "admin" and pid in community(request).hidden_papers():
        raise HTTPException(404, f"no paper {pid!r} in the store")
    return pid


# ------------------------------------------------------------------- paging


def next_url(request: Request, offset: int, limit: int, more: bool) -> str | None:
    """The URL of the page after this one (same parameters, the offset moved), or None."""
    if not more:
        return None
    return str(request.url.include_query_params(offset=offset + limit, limit=limit))


# ------------------------------------------------------------------ records


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def paper_outs(request: Request, papers: Sequence[Paper], user: User | None = None, *,
               scores: dict[str, float] | None = None,
               highlights: dict[str, dict[str, list[tuple[int, int]]]] | None = None) -> list[PaperOut]:  # fmt: skip
    """API records of ``papers`` (in order), with the community's numbers the pages show."""
    base = base_url(request)
    out = []
    for e in entries(request, papers, scores=scores, user=user):  # the token's user, never a cookie's
        p = e.paper
        marks = (highlights or {}).get(p.id)
        out.append(PaperOut(
            id=p.id, url=base + paper_url(p.id), title=p.title, abstract=p.abstract, authors=p.authors,
            categories=p.categories, submitted=p.submitted, updated=p.updated, version=p.version,
            versions=[VersionOut(version=v.version, date=v.date) for v in p.versions], doi=p.doi,
            journal_ref=p.journal_ref, author_comments=p.comments, license=p.license, links=p.links, extra=p.extra,
            votes=e.votes, hf_upvotes=e.hf_upvotes, comment_count=e.comments, listed=e.listed,
            submitter=e.submitter, voted=e.voted, score=e.score,
            highlights=Highlights(**marks) if marks is not None else None,
        ))  # fmt: skip
    return out


def papers_of(request: Request, ids: Sequence[str]) -> list[Paper]:
    """The stored papers of ``ids``, in that order (ids no longer stored are skipped)."""
    found = store(request).get_many(ids) if ids else {}
    return [found[i] for i in ids if i in found]


def comment_out(c: Comment) -> CommentOut:
    from papertide.web.markdown import render_markdown

    return CommentOut(id=c.id, paper_id=c.paper_id, user=c.username, parent_id=c.parent_id, body=c.body,
                      html=render_markdown(c.body), created=c.created, hidden=c.hidden)  # fmt: skip


def collection_url(request: Request, collection_id: int) -> str:
    return f"{base_url(request)}/api/collections/{collection_id}"


def collection_out(request: Request, c: Collection) -> CollectionOut:
    return CollectionOut(id=c.id, owner=c.username, name=c.name, description=c.description, public=c.public,
                         created=c.created, size=c.size, url=collection_url(request, c.id))  # fmt: skip


def visible_collection(request: Request, collection_id: int, user: User | None) -> Collection:
    """A public collection, or the caller's own; 404 for anyone else's private one (its existence stays private)."""
    c = community(request).collection(collection_id)
    if c.public or (user is not None and user.id == c.user_id):
        return c
    raise HTTPException(404, f"no collection {collection_id}")


def own_collection(request: Request, collection_id: int, user: User) -> Collection:
    """The caller's own collection: 404 for others' private ones, 403 for others' public ones."""
    c = visible_collection(request, collection_id, user)
    if c.user_id != user.id:
        raise HTTPException(403, f"collection {collection_id} is {c.username}'s: only its owner can change it")
    return c


def item_papers(request: Request, items: Sequence[CollectionItem], user: User | None) -> dict[str, PaperOut]:
    """The papers of collection items by id; hidden papers are left out (but for admins)."""
    hidden = set() if getattr(user, "role", None) == "admin" else community(request).hidden_papers()
    papers = papers_of(request, [i.paper_id for i in items if i.paper_id not in hidden])
    return {p.id: p for p in paper_outs(request, papers, user)}
