"""The community's data: accounts, sessions, API tokens, votes, comments, collections.

The web app (pages and JSON API) keeps everything people do on papertide through
this one interface, so a PostgreSQL backend can follow the SQLite one behind it.
It holds records and rules, never policy: who may delete a collection or hide a
comment is the web's business; that a username is valid, a vote counted once and a
reply on the same paper as its parent is the store's.

Every method raises :mod:`papertide.errors` exceptions: :class:`NotFoundError` for
an unknown id (papers must be in the store and not deleted), :class:`ConflictError`
for a taken username or a duplicate, :class:`ValueError` for invalid arguments.
Timestamps are ISO 8601 UTC strings (``2024-03-17T09:30:00.000000Z``); a bare day
(``2024-03-17``) is accepted wherever a time bound is asked for and compares as the
start of that day. Reads that take a list of paper ids answer for each of them (0 or
empty for papers without votes, comments or listing) rather than raise. Raw secrets
never reach the store: sessions and tokens are kept
by the hash the web layer computes.

The argument checks below are shared by every backend.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Iterable, Literal

Role = Literal["user", "admin"]
Status = Literal["done", "pending", "failed"]
ROLES = ("user", "admin")
STATUSES = ("done", "pending", "failed")
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"  # the format every stored timestamp has

# ----------------------------------------------------------------------- records


@dataclass(frozen=True)
class User:
    id: int
    username: str  # as the user typed it; unique case-insensitively
    email: str  # "" when none was given
    role: str  # "user" or "admin"
    created: str
    password_hash: str = field(repr=False)
    settings: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Session:
    token_hash: str
    user_id: int
    csrf: str = field(repr=False)
    created: str
    expires: str


@dataclass(frozen=True)
class Comment:
    id: int
    paper_id: str
    user_id: int
    username: str
    parent_id: int | None
    body: str  # Markdown source; rendering and sanitising is the web's
    created: str
    hidden: bool


@dataclass(frozen=True)
class Collection:
    id: int
    user_id: int
    username: str
    name: str
    description: str
    public: bool
    created: str
    size: int  # number of items


@dataclass(frozen=True)
class CollectionItem:
    paper_id: str
    note: str
    added: str


@dataclass(frozen=True)
class Submission:
    id: int
    user_id: int
    raw: str  # what the user pasted: an id or URL
    paper_id: str | None
    status: str  # "done", "pending" or "failed"
    message: str
    created: str


# ------------------------------------------------------------------------ checks

_USERNAME = re.compile(r"[A-Za-z0-9_.-]{2,32}")
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # all but \t \n \r
_BLANK_EDGES = re.compile(r"\A(?:[ \t]*\n)+|\s+\Z")  # blank lines before, whitespace after
MAX_COMMENT = 20_000


def check_username(username: object) -> str:
    """2-32 characters of ``A-Z a-z 0-9 _ . -``, at least one a letter or digit."""
    if not isinstance(username, str) or not _USERNAME.fullmatch(username):
        raise ValueError("a username is 2 to 32 letters, digits, '_', '.' or '-'")
    if not any(c.isalnum() for c in username):
        raise ValueError("a username needs at least one letter or digit")
    return username


def username_key(username: str) -> str:
    """The case-insensitive key usernames are unique by."""
    return username.lower()


def check_email(email: object) -> str:
    """An address with one ``@`` between non-empty parts, or ``""`` for none."""
    if not isinstance(email, str):
        raise ValueError("an email address must be text")
    email = email.strip()
    if email == "":
        return ""
    local, at, domain = email.rpartition("@")
    if not at or not local or not domain or len(email) > 254 or re.search(r"[\s<>]", email) or _CONTROL.search(email):
        raise ValueError(f"not an email address: {email[:80]!r}")
    return email


def check_id(value: object, what: str) -> int:
    """An integer row id (``what`` names it in the message)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{what} must be an integer id, not {value!r}")
    return value


def check_paper_id(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"a paper id must be a non-empty string, not {value!r}")
    return value


def paper_ids_of(paper_ids: Iterable[str]) -> list[str]:
    """Checked paper ids, duplicates dropped, in order."""
    return list(dict.fromkeys(check_paper_id(p) for p in paper_ids))


def check_page(limit: int, offset: int) -> tuple[int, int]:
    for name, v in (("limit", limit), ("offset", offset)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise ValueError(f"{name} must be a non-negative integer, not {v!r}")
    return limit, offset


def check_flag(value: object, what: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{what} must be True or False, not {value!r}")
    return value


def check_role(role: object) -> str:
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    return str(role)


def check_status(status: object) -> str:
    if status not in STATUSES:
        raise ValueError(f"status must be one of {', '.join(STATUSES)}, not {status!r}")
    return str(status)


def check_text(value: object, what: str, *, low: int, high: int, strip: bool = True) -> str:
    """A string of ``low``..``high`` characters (after stripping), no control characters."""
    if not isinstance(value, str):
        raise ValueError(f"{what} must be text")
    value = value.replace("\r\n", "\n")
    if strip:
        value = value.strip()
    if not low <= len(value) <= high:
        raise ValueError(f"{what} must be {low} to {high:,} characters, not {len(value):,}")
    if _CONTROL.search(value):
        raise ValueError(f"{what} must not contain control characters")
    return value


def check_body(body: object) -> str:
    """Markdown source of a comment: blank lines around it dropped, indentation kept,
    1 to 20,000 characters."""
    if not isinstance(body, str):
        raise ValueError("a comment must be text")
    body = _BLANK_EDGES.sub("", body.replace("\r\n", "\n"))
    return check_text(body, "a comment", low=1, high=MAX_COMMENT, strip=False)


def check_secret(value: object, what: str) -> str:
    """A hash or token the web layer made: non-empty, printable, at most 512 characters."""
    if not isinstance(value, str) or not 1 <= len(value) <= 512 or not value.isprintable():
        raise ValueError(f"{what} must be a non-empty printable string")
    return value


def check_day(day: object) -> str:
    """A calendar day ``YYYY-MM-DD``."""
    if isinstance(day, date) and not isinstance(day, datetime):
        return day.isoformat()
    if isinstance(day, str) and _DAY.fullmatch(day):
        try:
            return date.fromisoformat(day).isoformat()
        except ValueError:
            pass
    raise ValueError(f"not a day (YYYY-MM-DD): {day!r}")


def instant(value: object) -> str:
    """A time bound in the stored format; a bare day stays a day (the start of it)."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str) and _DAY.fullmatch(value):
        return check_day(value)
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"not an ISO 8601 time: {value!r}") from None
    if not isinstance(value, datetime):
        raise ValueError(f"not a time: {value!r}")
    dt = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc).strftime(TIME_FORMAT)


def thread_order(comments: Iterable[Comment]) -> list[Comment]:
    """Comments in reading order: roots by time, each followed by its replies, depth first.

    Replies whose parent is not among ``comments`` are dropped (their parent is hidden).
    """
    ordered = sorted(comments, key=lambda c: (c.created, c.id))
    children: dict[int | None, list[Comment]] = {}
    for c in ordered:
        children.setdefault(c.parent_id, []).append(c)
    out: list[Comment] = []
    stack = list(reversed(children.get(None, [])))
    while stack:
        c = stack.pop()
        out.append(c)
        stack.extend(reversed(children.get(c.id, [])))
    return out


# --------------------------------------------------------------------- interface


class Community(ABC):
    """What people do on papertide. See the module docstring for the error contract."""

    # -- users ---------------------------------------------------------------------
    @abstractmethod
    def create_user(self, username: str, email: str, password_hash: str, role: str = "user") -> User:
        """A new account. ``ConflictError`` when the username is taken in any case;
        ``ValueError`` for a bad username (see :func:`check_username`), email or role."""

    @abstractmethod
    def user(self, user_id: int) -> User:
        """The account; ``NotFoundError`` when there is none."""

    @abstractmethod
    def user_by_name(self, username: str) -> User | None:
        """The account of that username in any letter case, or ``None``."""

    @abstractmethod
    def update_user(
        self,
        user_id: int,
        *,
        email: str | None = None,
        password_hash: str | None = None,
        settings: dict | None = None,
        role: str | None = None,
    ) -> User:
        """Change the given fields (``settings`` replaces the whole dict); the updated account."""

    @abstractmethod
    def user_count(self) -> int: ...

    # -- sessions --------------------------------------------------------------------
    @abstractmethod
    def create_session(self, user_id: int, token_hash: str, csrf: str, expires: str) -> Session:
        """Keep a login session by its token's hash until ``expires`` (an ISO time).
        Expired sessions of every user are purged on the way."""

    @abstractmethod
    def session(self, token_hash: str) -> Session | None:
        """The live session with that token hash; ``None`` when unknown or expired."""

    @abstractmethod
    def delete_session(self, token_hash: str) -> None:
        """Log out one session (no-op when it is gone)."""

    @abstractmethod
    def delete_sessions(self, user_id: int) -> None:
        """Log out every session of a user (after a password change)."""

    # -- API tokens ------------------------------------------------------------------
    @abstractmethod
    def create_api_token(self, user_id: int, name: str, token_hash: str) -> int:
        """Keep a personal API token by its hash; its id. ``ConflictError`` on a reused hash."""

    @abstractmethod
    def user_for_token(self, token_hash: str) -> User | None:
        """The owner of the token (and note its use), or ``None``."""

    @abstractmethod
    def api_tokens(self, user_id: int) -> list[dict]:
        """A user's tokens, oldest first: dicts of id, name, created, last_used (or None)."""

    @abstractmethod
    def delete_api_token(self, user_id: int, token_id: int) -> None:
        """Revoke a token of this user; ``NotFoundError`` when the user has no such token."""

    # -- votes -------------------------------------------------------------------------
    @abstractmethod
    def vote(self, user_id: int, paper_id: str) -> int:
        """Upvote (idempotent: one vote per user per paper); the paper's new vote count."""

    @abstractmethod
    def unvote(self, user_id: int, paper_id: str) -> int:
        """Take the vote back (no-op when there is none); the paper's new vote count."""

    @abstractmethod
    def votes(self, paper_ids: Iterable[str]) -> dict[str, int]:
        """Vote counts of each given paper (0 included)."""

    @abstractmethod
    def voted(self, user_id: int, paper_ids: Iterable[str]) -> set[str]:
        """Those of the given papers the user has upvoted."""

    @abstractmethod
    def vote_times(self, paper_ids: Iterable[str], since: str) -> dict[str, list[str]]:
        """Times of the votes cast at or after ``since`` on each given paper, oldest first
        (every given paper is a key), for time-decayed trending."""

    @abstractmethod
    def user_votes(self, user_id: int) -> list[tuple[str, str]]:
        """(paper_id, time of the vote) of every live paper the user has upvoted, newest
        first (ties by paper id): what "for you" recommendations learn from."""

    @abstractmethod
    def top_voted(
        self, since: str | None, until: str | None, limit: int = 50, offset: int = 0, *, include_hidden: bool = False
    ) -> list[tuple[str, int]]:
        """Papers by the number of votes cast in ``[since, until)`` (open ends when None),
        most first, ties by paper id; deleted papers never, hidden ones only if asked."""

    # -- "not relevant" marks -----------------------------------------------------------
    @abstractmethod
    def mark_not_relevant(self, user_id: int, paper_id: str) -> None:
        """Note that a paper is not relevant to a user (idempotent); recommendations learn
        from it as a negative example. The paper must be in the store."""

    @abstractmethod
    def unmark_not_relevant(self, user_id: int, paper_id: str) -> None:
        """Take the mark back (no-op when there is none)."""

    @abstractmethod
    def not_relevant(self, user_id: int) -> set[str]:
        """The papers the user marked not relevant (deleted ones included)."""

    # -- daily listing -----------------------------------------------------------------
    @abstractmethod
    def list_paper(self, paper_id: str, day: str, submitted_by: int | None = None) -> None:
        """List a paper on a day's page; the first listing wins and later calls do nothing."""

    @abstractmethod
    def listed(self, day_from: str, day_to: str, *, include_hidden: bool = False) -> list[tuple[str, str, int | None]]:
        """(paper_id, day, submitter id) listed on days in ``[day_from, day_to]``, by day then
        listing time; deleted papers never, hidden ones only if asked."""

    @abstractmethod
    def listing(self, paper_ids: Iterable[str]) -> dict[str, tuple[str, int | None]]:
        """(day, submitter id) of each given paper that is listed."""

    # -- comments ----------------------------------------------------------------------
    @abstractmethod
    def add_comment(self, paper_id: str, user_id: int, body: str, parent_id: int | None = None) -> Comment:
        """A comment (Markdown, see :func:`check_body`). A reply's parent must
        exist (``NotFoundError``) and be on the same paper (``ValueError``)."""

    @abstractmethod
    def comment(self, comment_id: int) -> Comment:
        """One comment, hidden or not; ``NotFoundError`` when there is none."""

    @abstractmethod
    def comments(self, paper_id: str, *, include_hidden: bool = False) -> list[Comment]:
        """A paper's comments in thread order (see :func:`thread_order`). Without
        ``include_hidden`` a hidden comment is left out with every reply under it."""

    @abstractmethod
    def comment_counts(self, paper_ids: Iterable[str]) -> dict[str, int]:
        """How many comments :meth:`comments` shows for each given paper (0 included)."""

    @abstractmethod
    def set_comment_hidden(self, comment_id: int, hidden: bool) -> None: ...

    # -- collections -------------------------------------------------------------------
    @abstractmethod
    def create_collection(self, user_id: int, name: str, *, description: str = "", public: bool = False) -> Collection:
        """A named list of papers (name 1-100 characters, description up to 2,000);
        ``ConflictError`` when the user already has a collection of that name."""

    @abstractmethod
    def collection(self, collection_id: int) -> Collection:
        """``NotFoundError`` when there is none. Ownership checks are the caller's."""

    @abstractmethod
    def collections(self, user_id: int) -> list[Collection]:
        """A user's collections, public and private, most recently changed first."""

    @abstractmethod
    def public_collections(self, limit: int = 50, offset: int = 0) -> list[Collection]:
        """Everyone's public collections, most recently changed first."""

    @abstractmethod
    def update_collection(
        self, collection_id: int, *, name: str | None = None, description: str | None = None, public: bool | None = None
    ) -> Collection: ...

    @abstractmethod
    def delete_collection(self, collection_id: int) -> None:
        """Delete it with its items; ``NotFoundError`` when there is none."""

    @abstractmethod
    def add_item(self, collection_id: int, paper_id: str, note: str = "") -> None:
        """Save a paper (note up to 2,000 characters); saving it again replaces the note."""

    @abstractmethod
    def remove_item(self, collection_id: int, paper_id: str) -> None:
        """Take a paper out (no-op when it is not in)."""

    @abstractmethod
    def items(self, collection_id: int) -> list[CollectionItem]:
        """The saved papers in the order they were added."""

    # -- submissions -------------------------------------------------------------------
    @abstractmethod
    def add_submission(
        self, user_id: int, raw: str, paper_id: str | None = None, status: str = "pending", message: str = ""
    ) -> Submission:
        """Record what a user submitted (an id or URL, up to 2,000 characters)."""

    @abstractmethod
    def update_submission(
        self, submission_id: int, *, paper_id: str | None = None, status: str | None = None, message: str | None = None
    ) -> Submission: ...

    @abstractmethod
    def pending_submissions(self, limit: int = 100) -> list[Submission]:
        """Submissions still to complete, oldest first."""

    @abstractmethod
    def submissions(self, user_id: int) -> list[Submission]:
        """A user's submissions, newest first."""

    # -- moderation --------------------------------------------------------------------
    @abstractmethod
    def set_paper_hidden(self, paper_id: str, hidden: bool) -> None:
        """Hide a paper from listings (it must be in the store) or show it again."""

    @abstractmethod
    def hidden_papers(self) -> set[str]: ...
