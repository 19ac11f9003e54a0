"""HTTP-level protections: SecurityHeaders (every response carries the CSP and friends; HSTS
only over https), ApiCors (cross-origin reads of /api/ only) and RequestLimiter (GCRA)."""

from __future__ import annotations

import threading

import pytest
from starlette.applications import Starlette
from starlette.responses import HTMLResponse, PlainTextResponse, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient

from web_helpers import PAPER, logged_in, page_csrf
from web_helpers import client as browser

from papertide.web.api_common import ApiLimits
from papertide.web.auth import token_hash
from papertide.web.security import DEFAULT_CSP, HSTS, ApiCors, RequestLimiter, SecurityHeaders

pytest_plugins = ["web_fixtures"]  # app: the real web app over the demo corpus

EXPECTED_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
                "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")


async def page(request):
    return HTMLResponse("<p>hello</p>")


async def own_csp(request):
    return PlainTextResponse("mine", headers={"Content-Security-Policy": "default-src 'none'"})


async def stream(request):
    async def body():
        for chunk in (b"a", b"b", b"c"):
            yield chunk

    return StreamingResponse(body(), media_type="text/plain")


async def boom(request):
    raise RuntimeError("kaput")


async def echo(websocket):
    await websocket.accept()
    await websocket.send_text("hi")
    await websocket.close()


def make_app(**kwargs) -> SecurityHeaders:
    routes = [Route("/", page), Route("/own", own_csp), Route("/stream", stream), Route("/boom", boom),
              WebSocketRoute("/ws", echo)]
    return SecurityHeaders(Starlette(routes=routes), **kwargs)


@pytest.fixture
def client():
    with TestClient(make_app(), raise_server_exceptions=False) as c:
        yield c


def test_default_csp_is_the_documented_one_without_unsafe():
    assert DEFAULT_CSP == EXPECTED_CSP
    assert "unsafe" not in DEFAULT_CSP


def test_headers_on_a_page(client):
    r = client.get("/")
    assert r.status_code == 200 and r.text == "<p>hello</p>"
    assert r.headers["content-security-policy"] == EXPECTED_CSP
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "same-origin"
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["permissions-policy"] == "camera=(), microphone=(), geolocation=()"
    assert r.headers["cross-origin-opener-policy"] == "same-origin"
    assert "strict-transport-security" not in r.headers


def test_headers_on_404_405_and_500(client):
    for r in (client.get("/missing"), client.post("/"), client.get("/boom")):
        assert r.status_code in (404, 405, 500)
        assert r.headers["content-security-policy"] == EXPECTED_CSP
        assert r.headers["x-frame-options"] == "DENY"


def test_each_header_once(client):
    r = client.get("/")
    names = [name.lower() for name, _ in r.headers.multi_items()]
    for name in ("content-security-policy", "x-content-type-options", "referrer-policy", "x-frame-options"):
        assert names.count(name) == 1


def test_hsts_only_over_https():
    with TestClient(make_app(), base_url="https://papers.example") as c:
        r = c.get("/")
    assert r.headers["strict-transport-security"] == HSTS == "max-age=31536000"
    assert r.headers["content-security-policy"] == EXPECTED_CSP


def test_custom_csp():
    with TestClient(make_app(csp="default-src 'none'; img-src 'self'")) as c:
        assert c.get("/").headers["content-security-policy"] == "default-src 'none'; img-src 'self'"


def test_csp_must_be_one_line():
    with pytest.raises(ValueError):
        make_app(csp="default-src 'self'\r\nSet-Cookie: x=1")


def test_a_header_the_app_set_is_kept(client):
    r = client.get("/own")
    assert r.headers.get_list("content-security-policy") == ["default-src 'none'"]
    assert r.headers["x-content-type-options"] == "nosniff"


def test_streaming_response_still_streams_with_headers(client):
    r = client.get("/stream")
    assert r.text == "abc"
    assert r.headers["content-security-policy"] == EXPECTED_CSP


def test_websocket_passes_through(client):
    with client.websocket_connect("/ws") as ws:
        assert ws.receive_text() == "hi"


# ------------------------------------------------------------------------------ CORS

ORIGIN = {"Origin": "https://reader.example"}


async def api_read(request):
    return PlainTextResponse("read")


async def api_write(request):
    return PlainTextResponse("written", status_code=201)


@pytest.fixture
def cors_client():
    routes = [Route("/api/thing", api_read, methods=["GET"]), Route("/api/thing", api_write, methods=["POST"]),
              Route("/page", page)]  # fmt: skip
    return TestClient(SecurityHeaders(ApiCors(Starlette(routes=routes))))


def test_cors_lets_any_origin_read_the_api_without_credentials(cors_client):
    r = cors_client.get("/api/thing", headers=ORIGIN)
    assert r.text == "read" and r.headers["access-control-allow-origin"] == "*"
    assert r.headers["access-control-expose-headers"] == "Retry-After"
    assert "access-control-allow-credentials" not in r.headers
    assert cors_client.head("/api/thing", headers=ORIGIN).headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-origin" not in cors_client.get("/api/thing").headers  # not a CORS request


def test_cors_preflights_allow_reads_with_a_token_and_refuse_writes(cors_client):
    ask = ORIGIN | {"Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization"}
    r = cors_client.options("/api/thing", headers=ask)
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "*"
    assert r.headers["access-control-allow-methods"] == "GET, HEAD"
    assert "Authorization" in r.headers["access-control-allow-headers"]
    assert "access-control-allow-credentials" not in r.headers and r.headers["access-control-max-age"] == "600"
    assert r.headers["content-security-policy"] == DEFAULT_CSP  # inside the security headers
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        r = cors_client.options("/api/thing", headers=ORIGIN | {"Access-Control-Request-Method": method})
        assert r.status_code == 400 and method not in r.headers["access-control-allow-methods"], method
    r = cors_client.options("/api/thing", headers=ORIGIN | {"Access-Control-Request-Method": "GET",
                                                            "Access-Control-Request-Headers": "x-csrf-token"})
    assert r.status_code == 400  # only the token header


def test_cors_leaves_writes_and_pages_same_origin(cors_client):
    r = cors_client.post("/api/thing", headers=ORIGIN)  # a "simple" cross-origin post reaches the server...
    assert r.status_code == 201 and "access-control-allow-origin" not in r.headers  # ...but its script reads nothing
    r = cors_client.get("/page", headers=ORIGIN)
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers
    ask = ORIGIN | {"Access-Control-Request-Method": "GET"}
    assert "access-control-allow-origin" not in cors_client.options("/page", headers=ask).headers


def test_the_app_lets_other_sites_read_its_api_and_nothing_else(app):
    c = browser(app)
    r = c.get(f"/api/papers/{PAPER}", headers=ORIGIN)
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in r.headers and "set-cookie" not in r.headers
    assert r.headers["content-security-policy"] == DEFAULT_CSP
    missing = c.get("/api/papers/2401.99999", headers=ORIGIN)
    assert missing.status_code == 404 and missing.headers["access-control-allow-origin"] == "*"  # errors are readable
    ask = ORIGIN | {"Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "Authorization"}
    assert c.options("/api/me", headers=ask).status_code == 200
    for method in ("POST", "DELETE"):
        ask = ORIGIN | {"Access-Control-Request-Method": method, "Access-Control-Request-Headers": "Authorization"}
        assert c.options(f"/api/papers/{PAPER}/vote", headers=ask).status_code == 400, method
    r = c.post(f"/api/papers/{PAPER}/vote", headers=ORIGIN)
    assert r.status_code == 401 and "access-control-allow-origin" not in r.headers
    for url in ("/", f"/paper/{PAPER}", "/feeds/daily.atom", "/login"):
        assert "access-control-allow-origin" not in c.get(url, headers=ORIGIN).headers, url
    member = logged_in(app, "alice")
    r = member.post(f"/paper/{PAPER}/vote", data={"csrf": page_csrf(member)}, headers=ORIGIN, follow_redirects=False)
    assert r.status_code == 303 and "access-control-allow-origin" not in r.headers  # a page's form stays same-origin


def test_a_cross_origin_script_can_read_a_429_and_its_retry_after(app):
    c = browser(app)
    app.state.api_limits = ApiLimits(writes=RequestLimiter(1, 1), searches=RequestLimiter(0.01, 1))
    assert c.get("/api/ngram/count?phrase=x", headers=ORIGIN).status_code == 503  # no n-gram index: still counted
    r = c.get("/api/search?q=x", headers=ORIGIN)
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 90
    assert r.headers["access-control-allow-origin"] == "*"
    assert r.headers["access-control-expose-headers"] == "Retry-After"


# ------------------------------------------------------------------- rate limits


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_request_limiter_allows_a_burst_then_the_rate():
    clock = Clock()
    limiter = RequestLimiter(2.0, 3, clock=clock)  # 2 a second, 3 at once
    assert [limiter.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a") == pytest.approx(0.5)  # the next slot opens in half a second
    assert limiter.take("a") == pytest.approx(0.5)  # a refused request costs nothing
    assert limiter.take("b") == 0.0  # keys are counted apart
    clock.now += 0.5
    assert limiter.take("a") == 0.0 and limiter.take("a") == pytest.approx(0.5)
    clock.now += 10  # at rest again: a full burst, not more
    assert [limiter.take("a") for _ in range(4)][-2:] == [0.0, pytest.approx(0.5)]


def test_request_limiter_over_a_minute_allows_burst_plus_rate():
    clock = Clock()
    limiter = RequestLimiter(1.0, 30, clock=clock)
    allowed = 0
    for _ in range(600):  # ten requests a second for a minute
        allowed += limiter.take("k") == 0.0
        clock.now += 0.1
    assert 30 + 59 <= allowed <= 30 + 60


def test_request_limiter_memory_is_bounded_and_rested_keys_go():
    clock = Clock()
    limiter = RequestLimiter(1.0, 5, clock=clock, max_keys=100)
    for i in range(1_000):
        limiter.take(f"ip:{i}")
    assert len(limiter) == 100
    clock.now += 2  # every key is at rest: the next request sweeps them out
    limiter.take("fresh")
    assert len(limiter) == 1


def test_request_limiter_counts_exactly_under_threads():
    limiter = RequestLimiter(0.001, 50, clock=Clock())  # a frozen clock: exactly the burst gets through
    results: list[float] = []
    lock = threading.Lock()

    def hammer() -> None:
        mine = [limiter.take("shared") for _ in range(25)]
        with lock:
            results.extend(mine)

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(1 for r in results if r == 0.0) == 50 and len(results) == 200


@pytest.mark.parametrize("rate, burst, keys", [(0, 1, 1), (-1, 1, 1), (1, 0, 1), (1, 1, 0), (float("nan"), 1, 1)])
def test_request_limiter_refuses_nonsense(rate, burst, keys):
    with pytest.raises(ValueError, match="rate > 0"):
        RequestLimiter(rate, burst, max_keys=keys)


def api_token(app, name: str) -> dict:
    """A new account ``name`` with a personal API token: its Authorization header."""
    user = app.state.store.community.create_user(name, "", "argon2-hash-for-tests")
    app.state.store.community.create_api_token(user.id, "t", token_hash(f"{name}-token-0123456789"))
    return {"Authorization": f"Bearer {name}-token-0123456789"}


def test_api_writes_are_limited_per_account_with_a_json_429_and_retry_after(app):
    default = ApiLimits.default()
    assert (default.writes.rate * 60, default.writes.burst) == (60, 30)  # what a real app allows
    clock = Clock()
    app.state.api_limits = ApiLimits(writes=RequestLimiter(0.5, 3, clock=clock),
                                     searches=RequestLimiter(100, 100, clock=clock))  # fmt: skip
    c, com = browser(app), app.state.store.community
    alice, bob = api_token(app, "alice"), api_token(app, "bob")
    ids = [pid for pid, _, _ in com.listed("2024-03-17", "2024-03-17")][:4]
    for pid in ids[:3]:
        assert c.post(f"/api/papers/{pid}/vote", headers=alice).status_code == 200
    r = c.post(f"/api/papers/{ids[3]}/vote", headers=alice)
    assert r.status_code == 429 and r.headers["retry-after"] == "2"
    assert r.json() == {"detail": "too many writes: at most 30 a minute (bursts of 3); try again in 2 s"}
    assert com.voted(com.user_by_name("alice").id, ids) == set(ids[:3])  # refused before anything was written
    assert c.post("/api/collections", headers=alice, json={"name": "x"}).status_code == 429  # every write
    assert c.get(f"/api/papers/{ids[3]}", headers=alice).status_code == 200  # reads are not writes
    assert c.post(f"/api/papers/{ids[3]}/vote", headers=bob).status_code == 200  # another account
    assert c.post(f"/api/papers/{ids[3]}/vote").status_code == 401  # no token: refused as before, not counted
    clock.now += 2
    assert c.post(f"/api/papers/{ids[3]}/vote", headers=alice).json()["voted"] is True
