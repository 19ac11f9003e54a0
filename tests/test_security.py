"""SecurityHeaders: every HTTP response carries the CSP and friends; HSTS only over https."""

from __future__ import annotations

import pytest
from starlette.applications import Starlette
from starlette.responses import HTMLResponse, PlainTextResponse, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient

from papertide.web.security import DEFAULT_CSP, HSTS, SecurityHeaders

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
