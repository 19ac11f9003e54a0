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
(``api_common.py``): the generic cell rate algorithm, one timestamp per caller.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.middleware.cors import CORSMiddleware

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
    key's "theoretical arrival time" moves on by ``1 / rate`` with every request it is
    allowed; a request is refused while that time is more than ``(burst - 1) / rate``
    ahead of now. One float per key, so memory is bounded by ``max_keys`` (the least
    recently seen keys go first; keys back at rest are dropped as others arrive).
    In memory and per process: several worker processes each count on their own.
    Thread-safe.
    """

    def __init__(self, rate: float, burst: int, *, clock: Callable[[], float] = time.monotonic,
                 max_keys: int = 50_000) -> None:  # fmt: skip
        if not rate > 0 or burst < 1 or max_keys < 1:
            raise ValueError("RequestLimiter needs rate > 0, burst >= 1 and max_keys >= 1")
        self.rate, self.burst, self.max_keys = float(rate), int(burst), max_keys
        self._interval = 1.0 / self.rate
        self._tolerance = self._interval * (self.burst - 1)
        self._clock = clock
        self._lock = threading.Lock()
        self._tat: OrderedDict[str, float] = OrderedDict()  # key -> theoretical arrival time

    def __len__(self) -> int:
        with self._lock:
            return len(self._tat)

    def take(self, key: str) -> float:
        """Count one request of ``key`` and return 0.0, or — over the limit — count nothing
        and return the seconds until ``key`` may ask again (for ``Retry-After``)."""
        with self._lock:
            now = self._clock()
            tat = max(self._tat.get(key, now), now)
            wait = tat - self._tolerance - now
            if wait > 0:
                return wait
            self._tat[key] = tat + self._interval
            self._tat.move_to_end(key)
            self._evict(now)
            return 0.0

    def _evict(self, now: float) -> None:
        while self._tat:
            key, tat = next(iter(self._tat.items()))
            if len(self._tat) > self.max_keys or tat <= now:
                del self._tat[key]
            else:
                break
