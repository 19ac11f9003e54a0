"""The community's forms: upvotes, comments, moderation, collections and submissions.

Every route here changes something, so every POST carries the CSRF token
(:func:`papertide.web.session.csrf_form`) and a signed-in user (visitors are sent to
log in); the rules themselves (who may see, change or hide what) are in
:mod:`papertide.web.actions`, shared with the JSON API. After a form the browser is
sent back where it came from (303); the upvote button's script asks for JSON instead
(``Accept: application/json``) and gets ``{"votes": n, "voted": true|false}``.

Errors become pages: invalid input (the store's ``ValueError``) 400, not allowed 403,
unknown or invisible 404, duplicate 409.

Submissions (``/submit``) hand an arXiv id or URL to :mod:`papertide.submissions`;
when arXiv cannot be reached the submission is kept as pending and the page says it
will be completed later (``papertide submissions retry``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import APIRouter, HTTPException, Request
from starlette.datastructures import FormData
from starlette.responses import JSONResponse, RedirectResponse, Response

from papertide import submissions
from papertide.config import replace
from papertide.errors import InvalidIdError, NotFoundError, PapertideError
from papertide.store import Store
from papertide.web import actions
from papertide.web.pages_common import PAGE_METHODS, community, entries, paper_url, render, store
from papertide.web.session import CsrfForm, back_url, current_user, require_user, wants_json

router = APIRouter(include_in_schema=False)

PUBLIC_PAGE = 50
WEB_RETRIES = 1  # a submitter waits for the page: one retry, then the submission stays pending
WEB_TIMEOUT = 15.0


# ---------------------------------------------------------------------- helpers


@contextmanager
def http_errors() -> Iterator[None]:
    """The actions' exceptions as HTTP errors (rendered as pages by the app's handlers)."""
    try:
        yield
    except actions.ForbiddenError as e:
        raise HTTPException(403, str(e)) from None
    except PapertideError:
        raise  # NotFoundError 404, ConflictError 409, InvalidIdError 404: the app maps them
    except ValueError as e:
        raise HTTPException(400, _sentence(str(e))) from None


def _sentence(message: str) -> str:
    return message[:1].upper() + message[1:]


def _text(form: FormData, name: str, default: str = "") -> str:
    value = form.get(name)
    return value if isinstance(value, str) else default


def _flag(form: FormData, name: str, default: bool = False) -> bool:
    value = form.get(name)
    if not isinstance(value, str):
        return default
    return value.strip().lower() in ("1", "on", "true", "yes")


def _int(value: str, what: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise HTTPException(400, f"{what} must be a number, not {value[:40]!r}.") from None


def _back(request: Request, form: FormData, default: str) -> RedirectResponse:
    return RedirectResponse(back_url(request, form, default), status_code=303)


def template_globals(st: Store) -> dict:
    """What paper.html and base.html ask about the visitor (installed by ``session.install``)."""

    def user_collections(user) -> list:
        return st.community.collections(user.id) if user is not None else []

    def paper_hidden(paper_id: str) -> bool:
        return paper_id in st.community.hidden_papers()

    return {"user_collections": user_collections, "paper_hidden": paper_hidden, "is_admin": actions.is_admin}


# ------------------------------------------------------------------------ votes


def _vote(request: Request, paper_id: str, form: FormData, on: bool) -> Response:
    if wants_json(request) and current_user(request) is None:
        return JSONResponse({"detail": "log in to upvote"}, status_code=401)
    user = require_user(request, back_url(request, form, paper_url(paper_id)))
    try:
        with http_errors():
            votes, voted = actions.set_vote(store(request), user, paper_id, on)
    except HTTPException as e:
        if wants_json(request):
            return JSONResponse({"detail": e.detail}, status_code=e.status_code)
        raise
    except NotFoundError as e:
        if wants_json(request):
            return JSONResponse({"detail": str(e)}, status_code=404)
        raise
    if wants_json(request):
        return JSONResponse({"votes": votes, "voted": voted})
    return _back(request, form, paper_url(paper_id))


@router.post("/paper/{paper_id:path}/vote", name="vote")
def vote(request: Request, paper_id: str, form: CsrfForm) -> Response:
    return _vote(request, paper_id, form, True)


@router.post("/paper/{paper_id:path}/unvote", name="unvote")
def unvote(request: Request, paper_id: str, form: CsrfForm) -> Response:
    return _vote(request, paper_id, form, False)


# --------------------------------------------------------------------- comments


@router.post("/paper/{paper_id:path}/comments", name="comment")
def comment(request: Request, paper_id: str, form: CsrfForm) -> Response:
    user = require_user(request, paper_url(paper_id) + "#comments")
    parent = _text(form, "parent_id").strip()
    with http_errors():
        c = actions.add_comment(store(request), user, paper_id, _text(form, "body"),
                                _int(parent, "parent_id") if parent else None)  # fmt: skip
    return RedirectResponse(f"{paper_url(c.paper_id)}#comment-{c.id}", status_code=303)


@router.post("/comment/{comment_id:int}/hide", name="hide_comment")
def hide_comment(request: Request, comment_id: int, form: CsrfForm) -> Response:
    user = require_user(request)
    with http_errors():
        c = actions.hide_comment(store(request), user, comment_id, _flag(form, "hidden", True))
    return _back(request, form, paper_url(c.paper_id) + "#comments")


@router.post("/paper/{paper_id:path}/hide", name="hide_paper")
def hide_paper(request: Request, paper_id: str, form: CsrfForm) -> Response:
    user = require_user(request)
    with http_errors():
        pid = actions.hide_paper(store(request), user, paper_id, _flag(form, "hidden", True))
    return _back(request, form, paper_url(pid))


# ------------------------------------------------------------------ collections


@router.api_route("/collections", name="collections", methods=PAGE_METHODS)
def collections_page(request: Request, page: int = 1) -> Response:
    if page < 1 or page > 10_000:
        raise HTTPException(404, "No such page of collections.")
    user = current_user(request)
    com = community(request)
    public = com.public_collections(PUBLIC_PAGE + 1, (page - 1) * PUBLIC_PAGE)
    return render(request, "collections.html", {
        "mine": com.collections(user.id) if user else [],
        "public": public[:PUBLIC_PAGE],
        "prev_url": f"/collections?page={page - 1}" if page > 1 else None,
        "next_url": f"/collections?page={page + 1}" if len(public) > PUBLIC_PAGE else None,
    })  # fmt: skip


@router.post("/collections")
def create_collection(request: Request, form: CsrfForm) -> Response:
    user = require_user(request, "/collections")
    with http_errors():
        coll = actions.create_collection(store(request), user, _text(form, "name"), _text(form, "description"),
                                         _flag(form, "public"))  # fmt: skip
    return RedirectResponse(f"/collection/{coll.id}", status_code=303)


@router.post("/collections/save", name="save_paper")
def save_to_collection(request: Request, form: CsrfForm) -> Response:
    """The paper page's form: save a paper to a chosen collection, or to a new one named there."""
    paper_id = _text(form, "paper_id")
    user = require_user(request, paper_url(paper_id) if paper_id else "/collections")
    chosen = _text(form, "collection_id").strip()
    with http_errors():
        if chosen in ("", "new"):
            cid = actions.create_collection(store(request), user, _text(form, "new_name")).id
        else:
            cid = _int(chosen, "collection_id")
        pid = actions.save_paper(store(request), user, cid, paper_id, _text(form, "note"))
    return _back(request, form, paper_url(pid))


@router.api_route("/collection/{collection_id:int}", name="collection", methods=PAGE_METHODS)
def collection_page(request: Request, collection_id: int) -> Response:
    user = current_user(request)
    st = store(request)
    coll = actions.readable_collection(st, user, collection_id)
    saved = actions.collection_papers(st, user, coll)
    listed = entries(request, [p for p, _ in saved])
    return render(request, "collection.html", {
        "c": coll,
        "items": [(e, item) for e, (_, item) in zip(listed, saved, strict=True)],
        "owner": user is not None and user.id == coll.user_id,
    })  # fmt: skip


@router.post("/collection/{collection_id:int}")
def edit_collection(request: Request, collection_id: int, form: CsrfForm) -> Response:
    user = require_user(request)
    with http_errors():
        actions.edit_collection(store(request), user, collection_id, name=_text(form, "name"),
                                description=_text(form, "description"), public=_flag(form, "public"))  # fmt: skip
    return RedirectResponse(f"/collection/{collection_id}", status_code=303)


@router.post("/collection/{collection_id:int}/delete")
def delete_collection(request: Request, collection_id: int, form: CsrfForm) -> Response:
    user = require_user(request)
    with http_errors():
        actions.delete_collection(store(request), user, collection_id)
    return RedirectResponse("/collections", status_code=303)


@router.post("/collection/{collection_id:int}/add")
def add_to_collection(request: Request, collection_id: int, form: CsrfForm) -> Response:
    user = require_user(request)
    with http_errors():
        actions.save_paper(store(request), user, collection_id, _text(form, "paper_id"), _text(form, "note"))
    return _back(request, form, f"/collection/{collection_id}")


@router.post("/collection/{collection_id:int}/remove")
def remove_from_collection(request: Request, collection_id: int, form: CsrfForm) -> Response:
    user = require_user(request)
    with http_errors():
        actions.remove_paper(store(request), user, collection_id, _text(form, "paper_id"))
    return _back(request, form, f"/collection/{collection_id}")


# ------------------------------------------------------------------- submitting


def _submit_page(request: Request, *, status: int = 200, **ctx) -> Response:
    user = require_user(request, "/submit")
    mine = community(request).submissions(user.id)[:20]
    return render(request, "submit.html", {"submissions": mine, "raw": ""} | ctx, status=status)


@router.api_route("/submit", name="submit", methods=PAGE_METHODS)
def submit_page(request: Request, done: int | None = None) -> Response:
    user = require_user(request, "/submit")
    result = next((s for s in community(request).submissions(user.id) if s.id == done), None) if done else None
    return _submit_page(request, result=result)


@router.post("/submit")
def submit(request: Request, form: CsrfForm) -> Response:
    user = require_user(request, "/submit")
    raw = _text(form, "paper").strip()
    config = request.app.state.config
    web_config = replace(config, retries=min(config.retries, WEB_RETRIES), timeout=min(config.timeout, WEB_TIMEOUT))
    try:
        sub = submissions.submit(store(request), web_config, user.id, raw)
    except InvalidIdError as e:
        message = f"{_sentence(str(e))}. Paste an arXiv id (2401.17377) or its arXiv URL."
        return _submit_page(request, status=400, error=message, raw=raw[:300])
    return RedirectResponse(f"/submit?done={sub.id}", status_code=303)
