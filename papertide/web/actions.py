"""What a signed-in person may do to the community's data, and the rules that decide it.

The HTML pages (``pages_community.py``) and the JSON API call these same functions,
so an upvote, a comment or a saved paper obeys one set of rules whichever way it
arrives. They take the store and the acting :class:`User` and raise papertide's
exceptions, never HTTP ones: :class:`NotFoundError` for a paper or collection the
user may not see (a hidden paper, someone else's private collection — its existence
is not revealed), :class:`ForbiddenError` for one they see but may not change (not
an admin, not the owner), ``ValueError`` for invalid input (the store's checks:
lengths, names), :class:`ConflictError` for a duplicate collection name.

Policy lives here, records in the store: hidden papers and comments vanish for
everyone but admins; a collection is changed only by its owner; a private one is
seen only by its owner.
"""

from __future__ import annotations

from papertide.errors import NotFoundError, PapertideError
from papertide.paper import Paper, parse_paper_id
from papertide.store import Store
from papertide.store.community import Collection, CollectionItem, Comment, User
from papertide.web.markdown import MAX_SOURCE_CHARS


class ForbiddenError(PapertideError):
    """The account may see this but not change it (not its owner, not an admin)."""


def is_admin(user: User | None) -> bool:
    return user is not None and user.role == "admin"


def _require_admin(user: User) -> None:
    if not is_admin(user):
        raise ForbiddenError("only an admin can hide or show papers and comments")


# --------------------------------------------------------------------- papers


def visible_paper(store: Store, user: User | None, paper_id: str) -> str:
    """The canonical id of a paper ``user`` may see; ``NotFoundError`` otherwise."""
    try:
        pid = parse_paper_id(paper_id)
    except ValueError:
        raise NotFoundError(f"no paper {paper_id!r}") from None
    store.get(pid)  # NotFoundError when absent or deleted
    if not is_admin(user) and pid in store.community.hidden_papers():
        raise NotFoundError(f"no paper {pid!r}")
    return pid


def set_vote(store: Store, user: User, paper_id: str, on: bool) -> tuple[int, bool]:
    """Upvote (``on``) or take the upvote back, idempotently: (the paper's votes, whether ``user`` votes for it)."""
    pid = visible_paper(store, user, paper_id)
    com = store.community
    count = com.vote(user.id, pid) if on else com.unvote(user.id, pid)
    return count, on


def hide_paper(store: Store, user: User, paper_id: str, hidden: bool = True) -> str:
    """Admins only: hide a paper from everyone else (or show it again); its id."""
    _require_admin(user)
    pid = visible_paper(store, user, paper_id)
    store.community.set_paper_hidden(pid, hidden)
    return pid


# ------------------------------------------------------------------- comments


def add_comment(store: Store, user: User, paper_id: str, body: str, parent_id: int | None = None) -> Comment:
    """A comment in Markdown (at most 20,000 characters), as a reply when ``parent_id`` is given.

    A reply's parent must be a comment the user can see on the same paper.
    """
    pid = visible_paper(store, user, paper_id)
    if not isinstance(body, str) or len(body) > MAX_SOURCE_CHARS:
        raise ValueError(f"a comment is at most {MAX_SOURCE_CHARS:,} characters")
    com = store.community
    visible = parent_id is None or is_admin(user) or parent_id in {c.id for c in com.comments(pid)}
    if not visible:
        raise NotFoundError(f"no comment {parent_id} on {pid}")
    return com.add_comment(pid, user.id, body, parent_id=parent_id)


def hide_comment(store: Store, user: User, comment_id: int, hidden: bool = True) -> Comment:
    """Admins only: hide a comment (with the replies under it) or show it again; the comment."""
    _require_admin(user)
    com = store.community
    com.set_comment_hidden(comment_id, hidden)
    return com.comment(comment_id)


# ---------------------------------------------------------------- collections


def readable_collection(store: Store, user: User | None, collection_id: int) -> Collection:
    """A collection ``user`` may see: public ones, and their own private ones."""
    coll = store.community.collection(collection_id)
    if not coll.public and (user is None or user.id != coll.user_id):
        raise NotFoundError(f"no collection {collection_id}")
    return coll


def own_collection(store: Store, user: User, collection_id: int) -> Collection:
    """A collection ``user`` may change: their own."""
    coll = readable_collection(store, user, collection_id)
    if coll.user_id != user.id:
        raise ForbiddenError(f"collection {collection_id} is {coll.username}'s: only its owner can change it")
    return coll


def create_collection(store: Store, user: User, name: str, description: str = "", public: bool = False) -> Collection:
    return store.community.create_collection(user.id, name, description=description, public=public)


def edit_collection(store: Store, user: User, collection_id: int, *, name: str | None = None,
                    description: str | None = None, public: bool | None = None) -> Collection:  # fmt: skip
    own_collection(store, user, collection_id)
    return store.community.update_collection(collection_id, name=name, description=description, public=public)


def delete_collection(store: Store, user: User, collection_id: int) -> None:
    own_collection(store, user, collection_id)
    store.community.delete_collection(collection_id)


def save_paper(store: Store, user: User, collection_id: int, paper_id: str, note: str = "") -> str:
    """Put a paper in one's collection, or replace its note when it is there; the paper's id."""
    own_collection(store, user, collection_id)
    pid = visible_paper(store, user, paper_id)
    store.community.add_item(collection_id, pid, note)
    return pid


def remove_paper(store: Store, user: User, collection_id: int, paper_id: str) -> str:
    """Take a paper out of one's collection (no-op when it is not in); the paper's id."""
    own_collection(store, user, collection_id)
    try:
        pid = parse_paper_id(paper_id)
    except ValueError:
        raise NotFoundError(f"no paper {paper_id!r}") from None
    store.community.remove_item(collection_id, pid)
    return pid


def collection_papers(store: Store, user: User | None, coll: Collection) -> list[tuple[Paper, CollectionItem]]:
    """The papers of a collection ``user`` may see, in the order they were saved, with their notes."""
    items = store.community.items(coll.id)
    papers = store.get_many(i.paper_id for i in items)
    hidden = set() if is_admin(user) else store.community.hidden_papers()
    return [(papers[i.paper_id], i) for i in items if i.paper_id in papers and i.paper_id not in hidden]
