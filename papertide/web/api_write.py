"""The JSON API's writes: upvotes, "not relevant" marks, comments and collections, with a personal API token.

Every route here depends on :func:`api_common.limit_writes`: without a valid
``Authorization: Bearer <token>`` it answers 401 before touching anything, and a
session cookie alone never writes (cookies are not read by the API at all). Every
write counts against the account's allowance (429 and ``Retry-After`` past it), and
none is allowed cross-origin (``security.ApiCors``). The store enforces one vote per user per paper and checks every text; ownership is
checked here: someone else's private collection does not exist for you (404), and
someone else's public one can be read but not changed (403). Included by ``api.py``
under ``/api``.
"""

from __future__ import annotations

from fastapi import APIRouter, Body, Depends, Path, Request, Response

from papertide.store.community import User
from papertide.web.api_common import (collection_out, comment_out, item_papers, limit_writes, own_collection,
                                      store_errors, visible_paper_id)  # fmt: skip
from papertide.web.api_models import (MAX_ID, CollectionIn, CollectionItemOut, CollectionOut, CollectionPatch,
                                      CommentIn, CommentOut, ErrorOut, ItemIn, NotRelevantOut, VoteOut)  # fmt: skip
from papertide.web.pages_common import community

AUTH = {401: {"model": ErrorOut, "description": "No API token, or not a valid one"}}
OWNER = {403: {"model": ErrorOut, "description": "Someone else's collection"}}
TAKEN = {409: {"model": ErrorOut, "description": "You already have a collection of that name"}}
LIMITED = {429: {"model": ErrorOut, "description": "Too many writes: wait Retry-After seconds"}}
router = APIRouter(responses=AUTH | LIMITED)

CollectionId = Path(ge=1, le=MAX_ID)


# -------------------------------------------------------------------- votes


@router.post("/papers/{paper_id:path}/vote", response_model=VoteOut, tags=["votes"])
def vote(request: Request, paper_id: str, user: User = Depends(limit_writes)) -> VoteOut:
    """Upvote a paper (once per user: voting again changes nothing)."""
    pid = visible_paper_id(request, paper_id, user)
    with store_errors():
        n = community(request).vote(user.id, pid)
    return VoteOut(paper_id=pid, votes=n, voted=True)


@router.delete("/papers/{paper_id:path}/vote", response_model=VoteOut, tags=["votes"])
def unvote(request: Request, paper_id: str, user: User = Depends(limit_writes)) -> VoteOut:
    """Take your upvote back (nothing happens if you had not voted)."""
    pid = visible_paper_id(request, paper_id, user)
    with store_errors():
        n = community(request).unvote(user.id, pid)
    return VoteOut(paper_id=pid, votes=n, voted=False)


# ------------------------------------------------------------ not relevant


@router.post("/papers/{paper_id:path}/not-relevant", response_model=NotRelevantOut, tags=["recommendations"])
def mark_not_relevant(request: Request, paper_id: str, user: User = Depends(limit_writes)) -> NotRelevantOut:
    """Mark a paper not relevant to you: your "for you" recommendations leave it out and learn
    from it as a negative example (marking it again changes nothing)."""
    pid = visible_paper_id(request, paper_id, user)
    with store_errors():
        community(request).mark_not_relevant(user.id, pid)
    return NotRelevantOut(paper_id=pid, not_relevant=True)


@router.delete("/papers/{paper_id:path}/not-relevant", response_model=NotRelevantOut, tags=["recommendations"])
def unmark_not_relevant(request: Request, paper_id: str, user: User = Depends(limit_writes)) -> NotRelevantOut:
    """Take the mark back (nothing happens if the paper was not marked)."""
    pid = visible_paper_id(request, paper_id, user)
    with store_errors():
        community(request).unmark_not_relevant(user.id, pid)
    return NotRelevantOut(paper_id=pid, not_relevant=False)


# ----------------------------------------------------------------- comments


@router.post("/papers/{paper_id:path}/comments", response_model=CommentOut, status_code=201, tags=["comments"])
def add_comment(request: Request, paper_id: str, comment: CommentIn, user: User = Depends(limit_writes)) -> CommentOut:
    """Comment on a paper, or reply to a comment on it (``parent_id``). The body is Markdown; the
    answer carries it rendered and sanitised (raw HTML in the body is shown as text)."""
    pid = visible_paper_id(request, paper_id, user)
    with store_errors():
        made = community(request).add_comment(pid, user.id, comment.body, comment.parent_id)
    return comment_out(made)


# -------------------------------------------------------------- collections


@router.post("/collections", response_model=CollectionOut, status_code=201, tags=["collections"],
             responses=TAKEN)  # fmt: skip
def create_collection(request: Request, new: CollectionIn, user: User = Depends(limit_writes)) -> CollectionOut:
    """Make a collection (private unless ``public`` is true)."""
    with store_errors():
        c = community(request).create_collection(user.id, new.name, description=new.description, public=new.public)
    return collection_out(request, c)


@router.patch("/collections/{collection_id}", response_model=CollectionOut, tags=["collections"],
              responses=OWNER | TAKEN)  # fmt: skip
def update_collection(request: Request, change: CollectionPatch, collection_id: int = CollectionId,
                      user: User = Depends(limit_writes)) -> CollectionOut:  # fmt: skip
    """Rename a collection, change its description, or make it public or private."""
    own_collection(request, collection_id, user)
    with store_errors():
        c = community(request).update_collection(collection_id, name=change.name, description=change.description,
                                                 public=change.public)  # fmt: skip
    return collection_out(request, c)


@router.delete("/collections/{collection_id}", status_code=204, tags=["collections"], responses=OWNER)
def delete_collection(request: Request, collection_id: int = CollectionId,
                      user: User = Depends(limit_writes)) -> Response:  # fmt: skip
    """Delete a collection and its notes (the papers stay)."""
    own_collection(request, collection_id, user)
    community(request).delete_collection(collection_id)
    return Response(status_code=204)


@router.put("/collections/{collection_id}/papers/{paper_id:path}", response_model=CollectionItemOut,
            tags=["collections"], responses=OWNER)  # fmt: skip
def put_item(request: Request, paper_id: str, collection_id: int = CollectionId, item: ItemIn | None = Body(None),
             user: User = Depends(limit_writes)) -> CollectionItemOut:  # fmt: skip
    """Save a paper to a collection, with an optional note (saving it again replaces the note)."""
    c = own_collection(request, collection_id, user)
    pid = visible_paper_id(request, paper_id, user)
    with store_errors():
        community(request).add_item(c.id, pid, item.note if item is not None else "")
    saved = next(i for i in community(request).items(c.id) if i.paper_id == pid)
    return CollectionItemOut(paper_id=pid, note=saved.note, added=saved.added,
                             paper=item_papers(request, [saved], user).get(pid))  # fmt: skip


@router.delete("/collections/{collection_id}/papers/{paper_id:path}", status_code=204, tags=["collections"],
               responses=OWNER)  # fmt: skip
def delete_item(request: Request, paper_id: str, collection_id: int = CollectionId,
                user: User = Depends(limit_writes)) -> Response:  # fmt: skip
    """Take a paper out of a collection (nothing happens if it was not in it)."""
    c = own_collection(request, collection_id, user)
    from papertide.paper import parse_paper_id

    community(request).remove_item(c.id, parse_paper_id(paper_id))
    return Response(status_code=204)
