"""Accounts: sign up, log in, log out, and the account's settings page.

Passwords are checked by :func:`papertide.web.auth.check_password` and kept only as
argon2id hashes; a log-in gets a fresh random session token (so a session cookie
planted before log-in is worthless), re-hashes a password made with older parameters,
and sends the browser back only to a path on this site (``next``). Failed log-ins are
counted per client address and per username (:class:`auth.RateLimiter`, 5 in 5
minutes): the next attempt is a 429 page with ``Retry-After``, and an unknown
username costs the same time as a wrong password (``dummy_verify``). Sign-ups are
counted per client address too, every attempt (``app.state.signup_limiter``, 10 an
hour): enough for anyone fixing typos, and a bound on scripted accounts and on the
argon2 hashing a flood of sign-ups would cost; past it, a 429 page with ``Retry-After``.

The account page changes the email address, the password (the current one is asked;
every other session of the account is logged out) and the personal API tokens the
JSON API accepts as ``Authorization: Bearer …`` (shown once, kept as a hash).

Admins: nobody becomes one by signing up. ``papertide user admin NAME`` (in
``cli_account.py``) gives the role to an existing account, so a freshly deployed
site cannot be claimed by whoever signs up first.
"""

from __future__ import annotations

import math

from fastapi import APIRouter, HTTPException, Request
from starlette.datastructures import FormData
from starlette.responses import RedirectResponse, Response

from papertide.errors import ConflictError, NotFoundError
from papertide.store.community import check_email, check_username
from papertide.web import auth
from papertide.web.pages_common import PAGE_METHODS, community, render
from papertide.web.session import (CsrfForm, Form, check_form_csrf, current_user, end_session, require_user,
                                   safe_next, start_session)  # fmt: skip

router = APIRouter(include_in_schema=False)

NO_STORE = {"Cache-Control": "no-store"}
DONE = {  # messages the account page shows after a change (by key: no text from the URL is echoed)
    "email": "Your email address is saved.",
    "password": "Your password is changed. Every other session of this account is logged out.",
    "token-deleted": "The token is revoked.",
}


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


# ---------------------------------------------------------------------- sign up


@router.api_route("/signup", name="signup", methods=PAGE_METHODS)
def signup_page(request: Request, next: str = "/") -> Response:
    if current_user(request) is not None:
        return _redirect(safe_next(next))
    return render(request, "signup.html", {"next": safe_next(next), "form": {}}, headers=NO_STORE)


@router.post("/signup")
def signup(request: Request, form: CsrfForm) -> Response:
    blocked = _too_many_signups(request)
    if blocked is not None:
        return blocked
    username, email = _text(form, "username").strip(), _text(form, "email").strip()
    password, again = _text(form, "password"), _text(form, "password2")
    nxt = safe_next(_text(form, "next"))

    def fail(message: str, status: int = 400) -> Response:
        ctx = {"next": nxt, "form": {"username": username, "email": email}, "error": message}
        return render(request, "signup.html", ctx, status=status, headers=NO_STORE)

    try:
        check_username(username)
        email = check_email(email)
        auth.check_password(password, username)
    except ValueError as e:
        return fail(_sentence(str(e)))
    if password != again:
        return fail("The two passwords differ.")
    try:
        user = community(request).create_user(username, email, auth.hash_password(password))
    except ConflictError:
        return fail(f"The username {username} is taken: choose another.", 409)
    response = _redirect(nxt)
    start_session(request, response, user)
    return response


def _too_many_signups(request: Request) -> Response | None:
    """The 429 page when this address has used up its sign-ups for now; else count this one and None."""
    limiter: auth.RateLimiter = request.app.state.signup_limiter
    key = f"ip:{_client(request)}"
    wait = limiter.take(key)  # checked and counted at once: every attempt counts, made account or not
    if wait <= 0:
        return None
    minutes = max(1, math.ceil(wait / 60))
    ctx = {"status": 429, "title": "Too many sign-ups",
           "message": f"Too many sign-ups from your address. Try again in {minutes} minute{'s' * (minutes != 1)}, "
                      "or log in if you already have an account."}  # fmt: skip
    return render(request, "error.html", ctx, status=429, headers={"Retry-After": str(math.ceil(wait))} | NO_STORE)


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _sentence(message: str) -> str:
    return message[:1].upper() + message[1:] + ("" if message.endswith(".") else ".")


# ----------------------------------------------------------------- log in / out


@router.api_route("/login", name="login", methods=PAGE_METHODS)
def login_page(request: Request, next: str = "/") -> Response:
    if current_user(request) is not None:
        return _redirect(safe_next(next))
    return render(request, "login.html", {"next": safe_next(next), "username": ""}, headers=NO_STORE)


def _limit_keys(request: Request, username: str) -> list[str]:
    return [f"ip:{_client(request)}", f"user:{username.strip().casefold()[:64]}"]


def _too_many(request: Request, keys: list[str]) -> Response | None:
    limiter: auth.RateLimiter = request.app.state.login_limiter
    wait = max(limiter.retry_after(k) for k in keys)
    if wait <= 0:
        return None
    seconds = max(1, math.ceil(wait))
    ctx = {"status": 429, "title": "Too many attempts",
           "message": f"Too many failed log-ins. Try again in {seconds} seconds."}  # fmt: skip
    return render(request, "error.html", ctx, status=429, headers={"Retry-After": str(seconds)} | NO_STORE)


@router.post("/login")
def login(request: Request, form: Form) -> Response:
    nxt = safe_next(_text(form, "next"))
    if current_user(request) is not None:
        return _redirect(nxt)
    check_form_csrf(request, form)
    username, password = _text(form, "username").strip(), _text(form, "password")
    keys = _limit_keys(request, username)
    blocked = _too_many(request, keys)
    if blocked is not None:
        return blocked
    user = community(request).user_by_name(username) if username else None
    ok = auth.verify_password(user.password_hash, password) if user else auth.dummy_verify(password)
    limiter: auth.RateLimiter = request.app.state.login_limiter
    if not ok:
        for key in keys:
            limiter.record_failure(key)
        ctx = {"next": nxt, "username": username, "error": "Wrong username or password."}
        return render(request, "login.html", ctx, status=400, headers=NO_STORE)
    limiter.reset(keys[1])  # the account's count; the address keeps its own
    if auth.needs_rehash(user.password_hash):
        community(request).update_user(user.id, password_hash=auth.hash_password(password))
    response = _redirect(nxt)
    start_session(request, response, user)
    return response


@router.post("/logout", name="logout")
def logout(request: Request, form: CsrfForm) -> Response:
    response = _redirect("/")
    end_session(request, response)
    return response


# -------------------------------------------------------------------- account


def _account(request: Request, *, status: int = 200, **ctx) -> Response:
    user = require_user(request)
    com = community(request)
    base = {"tokens": com.api_tokens(user.id), "submissions": com.submissions(user.id)[:20],
            "collections": com.collections(user.id)}  # fmt: skip
    return render(request, "account.html", base | ctx, status=status, headers=NO_STORE)


@router.api_route("/account", name="account", methods=PAGE_METHODS)
def account_page(request: Request, done: str = "") -> Response:
    return _account(request, done=DONE.get(done))


@router.post("/account")
def account_change(request: Request, form: CsrfForm) -> Response:
    user = require_user(request, "/account")
    action = _text(form, "action")
    if action == "email":
        try:
            community(request).update_user(user.id, email=_text(form, "email"))
        except ValueError as e:
            return _account(request, status=400, error=_sentence(str(e)))
        return _redirect("/account?done=email")
    if action == "password":
        return _change_password(request, form)
    if action == "token-create":
        return _create_token(request, _text(form, "name"))
    if action == "token-delete":
        try:
            community(request).delete_api_token(user.id, int(_text(form, "token_id")))
        except (ValueError, NotFoundError):
            raise HTTPException(404, "You have no such API token.") from None
        return _redirect("/account?done=token-deleted")
    raise HTTPException(400, "Unknown account action.")


def _change_password(request: Request, form: FormData) -> Response:
    user = require_user(request)
    keys = _limit_keys(request, user.username)
    blocked = _too_many(request, keys)
    if blocked is not None:
        return blocked
    current, new, again = _text(form, "current"), _text(form, "password"), _text(form, "password2")
    if not auth.verify_password(user.password_hash, current):
        for key in keys:
            request.app.state.login_limiter.record_failure(key)
        return _account(request, status=400, error="The current password is wrong.")
    try:
        auth.check_password(new, user.username)
    except ValueError as e:
        return _account(request, status=400, error=_sentence(str(e)))
    if new != again:
        return _account(request, status=400, error="The two new passwords differ.")
    com = community(request)
    com.update_user(user.id, password_hash=auth.hash_password(new))
    com.delete_sessions(user.id)  # every session, this one too: this browser gets a fresh one
    response = _redirect("/account?done=password")
    start_session(request, response, user)
    return response


def _create_token(request: Request, name: str) -> Response:
    user = require_user(request)
    token = auth.new_token()
    try:
        community(request).create_api_token(user.id, name.strip(), auth.token_hash(token))
    except ValueError as e:
        return _account(request, status=400, error=_sentence(str(e)))
    return _account(request, new_token=token, new_token_name=name.strip())
