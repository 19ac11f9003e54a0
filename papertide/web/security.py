"""What protects the app at the HTTP level: security headers, CORS for the JSON API, request rate limits.

:class:`SecurityHeaders` is a pure ASGI middleware (no Starlette ``BaseHTTPMiddleware``)
so it wraps any app, adds nothing but headers, and leaves streaming responses
streaming. The Content-Security-Policy allows scripts, styles and fonts from the site
itself only, with no ``'unsafe-inline'`` and no ``'unsafe-eval'``: even if a payload
slipped through escaping and sanitising, the browser would not run it. A header the
app already set on a response is left as the app set it, so one page can carry its own
policy when it must.

:class:`ApiCors` lets other sites' scripts *read* the JSON API: ``GET``/``HEAD`` under
``/api/`` answer ``Access-Control-Allow-Origin: *`` (Starlette's ``CORSMiddleware``
does the protocol), and preflights are answered for reads only. Credentials are never
allowed, so a browser never sends a visitor's cookies along — and the API reads no
cookies anyway, only a token a script sends itself (``Authorization``). Writes are not
cross-origin: their preflight is refused, and the pages stay same-origin.

:class:`RequestLimiter` is the per-caller rate limit of the API's writes and searches
(``api_common.py``): the generic cell rate algorithm, one timestamp per caller, kept in
the store so that every process of a site counts against the same limit.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.middleware.cors import CORSMiddleware

from papertide.store.limits import Decision, Limits, MemoryLimits
from papertide.web.auth import FailurePolicy

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

DEFAULT_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)

# One year, this host only: includeSubDomains or preload would bind hosts papertide does not own.
HSTS = "max-age=31536000"


def security_headers(csp: str = DEFAULT_CSP, *, https: bool = False) -> list[tuple[bytes, bytes]]:
    """The (name, value) header pairs, lower-case names, as ASGI sends them."""
    headers = [
        ("content-security-policy", csp),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "same-origin"),
        ("x-frame-options", "DENY"),
        ("permissions-policy", "camera=(), microphone=(), geolocation=()"),
        ("cross-origin-opener-policy", "same-origin"),
    ]
    if https:
        headers.append(("strict-transport-security", HSTS))
    return [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers]


class SecurityHeaders:
    """``SecurityHeaders(app, csp=...)``: adds the security headers to every HTTP response of ``app``.

    Strict-Transport-Security is sent only when the request came over https
    (``scope["scheme"]``; behind a TLS-terminating proxy, run uvicorn with
    ``--proxy-headers`` and ``--forwarded-allow-ips`` so the scheme is the client's).
    WebSocket and lifespan traffic pass through untouched.
    """

    def __init__(self, app: ASGIApp, *, csp: str | None = None) -> None:
        self.app = app
        self.csp = csp if csp is not None else DEFAULT_CSP
        if "\r" in self.csp or "\n" in self.csp:
            raise ValueError("a Content-Security-Policy must be one line")
        self._plain = security_headers(self.csp, https=False)
        self._https = security_headers(self.csp, https=True)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = self._https if scope.get("scheme") == "https" else self._plain

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers.extend(pair for pair in extra if pair[0] not in present)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


# ------------------------------------------------------------------------------ CORS

API_PREFIX = "/api/"
READ_METHODS = ("GET", "HEAD")
CORS_MAX_AGE = 600  # seconds a browser may cache a preflight's answer


class ApiCors:
    """``ApiCors(app)``: cross-origin reads of ``/api/`` (``Access-Control-Allow-Origin: *``), nothing else.

    Only ``GET``/``HEAD`` requests under :data:`API_PREFIX` and preflights (``OPTIONS``)
    there are handed to Starlette's ``CORSMiddleware``; every other request — pages,
    feeds, the API's writes — passes straight to ``app`` and gets no CORS header, so a
    browser keeps other sites' scripts from reading or posting them. Preflights allow
    the read methods and the ``Authorization`` header (a script's own API token), never
    credentials; ``Retry-After`` is exposed so scripts can honour a 429.
    """

    def __init__(self, app: ASGIApp, *, prefix: str = API_PREFIX, max_age: int = CORS_MAX_AGE) -> None:
        self.app = app
        self.prefix = prefix
        self.cors = CORSMiddleware(app, allow_origins=["*"], allow_methods=list(READ_METHODS),
                                   allow_headers=["Authorization"], allow_credentials=False,
                                   expose_headers=["Retry-After"], max_age=max_age)  # fmt: skip

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] == "http" and scope.get("path", "").startswith(self.prefix)
                and scope.get("method") in (*READ_METHODS, "OPTIONS")):  # fmt: skip
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)


# ------------------------------------------------------------------- rate limits


class RequestLimiter:
    """At most ``burst`` requests at once per key, and ``rate`` a second on average.

    The generic cell rate algorithm (GCRA; ATM Forum TM 4.0, as in ``redis-cell``): a
    key's "theoretical arrival time" (unix time, from ``clock``) moves on by ``1 / rate``
    with every request it is allowed; a request is refused while that time is more than
    ``(burst - 1) / rate`` ahead of now. One number per key.

    With ``limits=store.limits`` that number is kept in the store under
    ``"<name>:<key>"``, so every process of the site counts against one limit (one locked
    read-decide-write per request, see :mod:`papertide.store.limits`; keys back at rest
    expire and are swept away in bounded batches). Without ``limits`` it is in this
    process's memory, bounded by ``max_keys`` (the least recently allowed keys go first).
    ``fail_open`` says what a failing store means (see :class:`papertide.web.auth.FailurePolicy`):
    True lets requests through with a logged warning (the API's searches: reads that
    need no protection from the database's trouble), False raises the store's error,
    a 503 (the API's writes, which need the database anyway). Thread-safe.
    """

    def __init__(self, rate: float, burst: int, *, clock: Callable[[], float] = time.time,
                 max_keys: int = 50_000, limits: Limits | None = None, name: str = "requests",
                 fail_open: bool = False) -> None:  # fmt: skip
        if not rate > 0 or burst < 1 or max_keys < 1:
            raise ValueError("RequestLimiter needs rate > 0, burst >= 1 and max_keys >= 1")
        if not name or ":" in name:
            raise ValueError(f"a RequestLimiter's name must be non-empty and without ':', not {name!r}")
        self.rate, self.burst, self.max_keys, self.name = float(rate), int(burst), max_keys, name
        self._interval = 1.0 / self.rate
        self._tolerance = self._interval * (self.burst - 1)
        self._clock = clock
        self._guard = FailurePolicy(name, fail_open)
        self.limits: Limits = limits if limits is not None else MemoryLimits(max_keys)

    @property
    def fail_open(self) -> bool:
        return self._guard.fail_open

    def __len__(self) -> int:
        """How many keys of this limiter have a stored state (rested ones not yet swept included)."""
        return self.limits.count(f"{self.name}:")

    def _step(self, now: float) -> Callable[[object], Decision[float]]:
        def step(state: object) -> Decision[float]:
            stored = state if isinstance(state, (int, float)) and not isinstance(state, bool) else now
            tat = max(float(stored), now)
            wait = tat - self._tolerance - now
            if wait > 0:
                return Decision(wait)  # refused: nothing counted, nothing written
            return Decision(0.0, tat + self._interval, tat + self._interval)

        return step

    def take(self, key: str) -> float:
        """Count one request of ``key`` and return 0.0, or — over the limit — count nothing
        and return the seconds until ``key`` may ask again (for ``Retry-After``)."""
        now = self._clock()
        return self._guard.run(lambda: self.limits.update(f"{self.name}:{key}", now, self._step(now)), 0.0)
