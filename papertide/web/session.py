"""Who is asking: the session layer between the browser's cookies and the pages.

A pure ASGI middleware (:class:`SessionMiddleware`, added by :func:`install`) reads the
``papertide_session`` cookie, finds the live session by the token's SHA-256 (only
hashes are stored) and puts on ``request.state``:

- ``user``: the signed-in :class:`User`, or None;
- ``session``: the :class:`Session` (None for visitors);
- ``csrf``: the token every form carries — the session's own for a signed-in user,
  else an HMAC-signed, time-stamped token bound to a random nonce kept in the
  ``papertide_anon`` cookie (set here on HTML pages when missing), so even the log-in and sign-up
  forms cannot be posted from another site.

Every state-changing form goes through :func:`csrf_form` (a FastAPI dependency) or
:func:`check_form_csrf`: a missing or wrong token is a 403 page. Scripts send the
token in the ``X-CSRF-Token`` header instead of a form field. :func:`require_user`
sends visitors to ``/login?next=…`` (JSON callers get a 401). Cookies are HttpOnly,
SameSite=Lax, and Secure when the request came over https (behind a TLS proxy, run
uvicorn with ``--proxy-headers``). The app secret that signs anonymous tokens is read
(or created) once from ``<home>/secret.key``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from fastapi import Depends, FastAPI, HTTPException, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse, RedirectResponse, Response

from papertide.errors import NotFoundError
from papertide.store import Store
from papertide.store.community import Session, User
from papertide.web import auth

MAX_FORM_BYTES = 256 * 1024  # a 20,000-character comment is ~80 KiB at worst, url-encoded
SKIP_PREFIXES = ("/static/",)  # files: no session work at all
NO_ANON_COOKIE_PREFIXES = ("/static/", "/api/")  # API clients need no form token (and only pages get one)
_MAX_COOKIE = 200
SIGNUPS_PER_HOUR = 10  # sign-up attempts per client address

FORBIDDEN_MESSAGE = ("This form's security token is missing or out of date (the page may have been open too long, "
                     "or the form did not come from papertide). Go back, reload the page and try again.")  # fmt: skip


class LoginRequired(Exception):
    """Raised by :func:`require_user`; becomes a redirect to the log-in page (401 for JSON)."""

    def __init__(self, next_url: str = "/") -> None:
        super().__init__(next_url)
        self.next_url = next_url


# ------------------------------------------------------------------ middleware


class SessionMiddleware:
    """Pure ASGI: sets ``scope["state"]`` user / session / csrf for the app below."""

    def __init__(self, app: Callable, *, store: Store, secret: bytes) -> None:
        self.app, self.store, self.secret = app, store, secret

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        state.update(user=None, session=None, csrf="")
        if scope.get("path", "").startswith(SKIP_PREFIXES):
            await self.app(scope, receive, send)
            return
        conn = HTTPConnection(scope)
        token = conn.cookies.get(auth.SESSION_COOKIE)
        if token and len(token) <= _MAX_COOKIE and token.isprintable():
            state["session"], state["user"] = await run_in_threadpool(self._lookup, token)
        always: list[tuple[bytes, bytes]] = []
        on_pages: list[tuple[bytes, bytes]] = []
        secure = scope.get("scheme") == "https"
        if state["session"] is not None:
            state["csrf"] = state["session"].csrf
        else:
            if token:  # expired or unknown: drop the stale cookie
                always.append(delete_cookie_header(auth.SESSION_COOKIE, secure))
            nonce = conn.cookies.get(auth.ANON_COOKIE, "")
            if not (nonce and len(nonce) <= _MAX_COOKIE and nonce.isprintable()):
                nonce = auth.new_token()
                if not scope.get("path", "").startswith(NO_ANON_COOKIE_PREFIXES):
                    on_pages.append(cookie_header(auth.ANON_COOKIE, nonce, **auth.anon_cookie_kwargs(secure)))
            state["csrf"] = auth.anon_csrf(self.secret, nonce)
        if always or on_pages:
            send = _adding_headers(send, always, on_pages)
        await self.app(scope, receive, send)

    def _lookup(self, token: str) -> tuple[Session | None, User | None]:
        com = self.store.community
        session = com.session(auth.token_hash(token))
        if session is None:
            return None, None
        try:
            return session, com.user(session.user_id)
        except NotFoundError:
            return None, None


def _adding_headers(send: Callable, always: list[tuple[bytes, bytes]], on_pages: list[tuple[bytes, bytes]]) -> Callable:
    """``send`` adding ``always`` to the response's headers, and ``on_pages`` when it is an HTML page
    (the nonce cookie is for pages with forms, not for feeds or files)."""

    async def wrapped(message: dict) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            kind = next((v for k, v in headers if k.lower() == b"content-type"), b"")
            message["headers"] = headers + always + (on_pages if kind.startswith(b"text/html") else [])
        await send(message)

    return wrapped


def cookie_header(name: str, value: str, **kwargs: Any) -> tuple[bytes, bytes]:
    """A ``Set-Cookie`` header as Starlette writes it (``kwargs`` as for ``Response.set_cookie``)."""
    r = Response()
    r.set_cookie(name, value, **kwargs)
    return next((k, v) for k, v in r.raw_headers if k == b"set-cookie")


def delete_cookie_header(name: str, secure: bool) -> tuple[bytes, bytes]:
    r = Response()
    r.delete_cookie(name, **auth.cookie_scope(secure))
    return next((k, v) for k, v in r.raw_headers if k == b"set-cookie")


def install(app: FastAPI) -> None:
    """Add the session layer to ``app`` (sets request.state.user / session / csrf), the
    app secret (``app.state.secret``), the rate limiters of log-ins (``app.state.login_limiter``:
    5 failures in 5 minutes) and sign-ups (``app.state.signup_limiter``: 10 an hour per
    address), both counted in the store for all processes and refusing (503) when it
    fails, the log-in redirect and the template helpers of the community pages."""
    config, store = app.state.config, app.state.store
    app.state.secret = auth.load_or_create_secret(config.home)
    app.state.login_limiter = auth.RateLimiter(max_attempts=5, window=300.0, limits=store.limits, name="login")
    app.state.signup_limiter = auth.RateLimiter(max_attempts=SIGNUPS_PER_HOUR, window=3600.0, limits=store.limits,
                                                name="signup")  # fmt: skip
    app.add_middleware(SessionMiddleware, store=store, secret=app.state.secret)
    app.add_exception_handler(LoginRequired, _login_redirect)
    from papertide.web.pages_community import template_globals

    app.state.templates.env.globals.update(template_globals(store))


# ---------------------------------------------------------------------- helpers


def current_user(request: Request) -> User | None:
    return getattr(request.state, "user", None)


def is_https(request: Request) -> bool:
    return request.url.scheme == "https"


def wants_json(request: Request) -> bool:
    """True when the caller (a script) asked for JSON rather than a page."""
    return "application/json" in request.headers.get("accept", "")


def safe_next(value: object, default: str = "/") -> str:
    """``value`` when it is a path on this site (``/…``), else ``default``: no open redirects."""
    if not isinstance(value, str) or not value.startswith("/") or value.startswith(("//", "/\\")):
        return default
    if any(c in value for c in "\\\r\n\t") or not value.isprintable() or len(value) > 2000:
        return default
    parts = urlsplit(value)
    return value if not parts.scheme and not parts.netloc else default


def back_url(request: Request, form: FormData | None, default: str) -> str:
    """Where to send the browser after a form: its ``next`` field, else the page it came from (same site)."""
    wanted = form.get("next") if form is not None else None
    if safe_next(wanted, ""):
        return str(wanted)
    referer = request.headers.get("referer", "")
    parts = urlsplit(referer)
    if parts.netloc and parts.netloc == request.url.netloc and parts.scheme == request.url.scheme:
        return safe_next(parts.path + (f"?{parts.query}" if parts.query else ""), default)
    return default


def require_user(request: Request, next_url: str | None = None) -> User:
    """The signed-in user; visitors are sent to the log-in page (and back to ``next_url`` after)."""
    user = current_user(request)
    if user is None:
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(safe_next(next_url or (here if request.method in ("GET", "HEAD") else "/"), "/"))
    return user


async def _login_redirect(request: Request, exc: LoginRequired) -> Response:
    if wants_json(request) or request.url.path.startswith("/api/"):
        return JSONResponse({"detail": "log in first"}, status_code=401)
    return RedirectResponse("/login?next=" + quote(exc.next_url, safe="/"), status_code=303)


def check_form_csrf(request: Request, form: FormData | None) -> None:
    """403 unless the form's ``csrf`` field (or the ``X-CSRF-Token`` header) is this visitor's token."""
    submitted = form.get(auth.CSRF_FIELD) if form is not None else None
    if not isinstance(submitted, str) or not submitted:
        submitted = request.headers.get(auth.CSRF_HEADER)
    session = getattr(request.state, "session", None)
    if session is not None:
        ok = auth.check_csrf(session.csrf, submitted)
    else:
        nonce = request.cookies.get(auth.ANON_COOKIE)
        ok = auth.check_anon_csrf(request.app.state.secret, submitted, auth.ANON_CSRF_MAX_AGE, nonce)
    if not ok:
        raise HTTPException(403, FORBIDDEN_MESSAGE)


async def read_form(request: Request) -> FormData:
    """The submitted form (url-encoded or multipart without files), refused above :data:`MAX_FORM_BYTES`."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_FORM_BYTES:
        raise HTTPException(413, f"The form is too large (at most {MAX_FORM_BYTES // 1024} KiB).")
    return await request.form(max_files=0, max_fields=50)


async def csrf_form(request: Request) -> FormData:
    """FastAPI dependency of every state-changing POST: the submitted form, its CSRF token checked."""
    form = await read_form(request)
    check_form_csrf(request, form)
    return form


CsrfForm = Annotated[FormData, Depends(csrf_form)]  # ``form: CsrfForm`` in a POST route's parameters
Form = Annotated[FormData, Depends(read_form)]  # the form, unchecked (the route checks it itself)


# --------------------------------------------------------------------- sessions


def start_session(request: Request, response: Response, user: User) -> None:
    """Log ``user`` in on this browser: a fresh random token (only its hash is kept) in the session cookie."""
    token = auth.new_token()
    com = request.app.state.store.community
    com.create_session(user.id, auth.token_hash(token), auth.new_csrf(), auth.session_expires())
    secure = is_https(request)
    response.set_cookie(auth.SESSION_COOKIE, token, **auth.session_cookie_kwargs(secure))
    response.delete_cookie(auth.ANON_COOKIE, **auth.cookie_scope(secure))


def end_session(request: Request, response: Response) -> None:
    """Log this browser out: the session is deleted in the store, the cookie cleared."""
    token = request.cookies.get(auth.SESSION_COOKIE)
    if token:
        request.app.state.store.community.delete_session(auth.token_hash(token))
    response.delete_cookie(auth.SESSION_COOKIE, **auth.cookie_scope(is_https(request)))


def bearer_user(request: Request) -> User | None:
    """The owner of the personal API token in ``Authorization: Bearer …``, or None (for the JSON API)."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > _MAX_COOKIE:
        return None
    return request.app.state.store.community.user_for_token(auth.token_hash(token))
