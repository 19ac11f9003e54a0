"""Security headers on every HTTP response, as a pure ASGI middleware.

Pure ASGI (no Starlette ``BaseHTTPMiddleware``) so it wraps any app, adds nothing but
headers, and leaves streaming responses streaming. The Content-Security-Policy allows
scripts, styles and fonts from the site itself only, with no ``'unsafe-inline'`` and no
``'unsafe-eval'``: even if a payload slipped through escaping and sanitising, the
browser would not run it. A header the app already set on a response is left as the
app set it, so one page can carry its own policy when it must.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

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
