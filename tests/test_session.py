"""The session layer: cookies, who is asking, CSRF tokens, log-in redirects, safe redirects."""

from __future__ import annotations

import pytest
from starlette.requests import Request
from web_helpers import PASSWORD, client, csrf_of, logged_in, login, make_user, page_csrf

from papertide.web import auth
from papertide.web.session import bearer_user, safe_next

pytest_plugins = ["web_fixtures"]  # the app and template fixtures


def set_cookies(response) -> dict[str, str]:
    """name -> the whole Set-Cookie header, lower-cased."""
    out = {}
    for header in response.headers.get_list("set-cookie"):
        out[header.split("=", 1)[0]] = header.lower()
    return out


def test_a_visitor_gets_a_nonce_cookie_and_a_signed_form_token(app):
    c = client(app)
    r = c.get("/login")
    cookie = set_cookies(r)[auth.ANON_COOKIE]
    assert "httponly" in cookie and "samesite=lax" in cookie and "path=/" in cookie and "secure" not in cookie
    token = csrf_of(r.text)
    stamp, _, mac = token.partition(".")
    assert stamp.isdigit() and len(mac) == 64
    assert auth.check_anon_csrf(app.state.secret, token, 60, c.cookies[auth.ANON_COOKIE])
    again = c.get("/")  # the nonce is kept: no new cookie while it lives
    assert auth.ANON_COOKIE not in set_cookies(again)


def test_static_files_the_api_and_feeds_get_no_cookies(app):
    c = client(app)
    assert set_cookies(c.get("/static/app.css")) == {}
    assert set_cookies(c.get("/api/complete", params={"q": "lang"})) == {}
    assert set_cookies(c.get("/no/such/page")) != {}  # an HTML page, even an error page, gets it
    from fastapi.responses import PlainTextResponse

    app.add_api_route("/plain.txt", lambda: PlainTextResponse("feed-like"))
    assert set_cookies(c.get("/plain.txt")) == {}


def test_the_anonymous_token_is_bound_to_the_visitors_nonce(app):
    make_user(app, "alice")
    mallory, victim = client(app), client(app)
    token = page_csrf(mallory, "/login")
    victim.get("/")
    data = {"csrf": token, "username": "alice", "password": PASSWORD}
    r = victim.post("/login", data=data, follow_redirects=False)
    assert r.status_code == 403 and "security token" in r.text  # another visitor's token: login CSRF stopped
    no_cookie = client(app)
    assert no_cookie.post("/login", data=data).status_code == 403
    assert mallory.post("/login", data=data, follow_redirects=False).status_code == 303  # the right visitor


def test_session_cookie_flags_over_http(app):
    make_user(app, "alice")
    c = client(app)
    r = login(c, "alice")
    cookie = set_cookies(r)[auth.SESSION_COOKIE]
    assert "httponly" in cookie and "samesite=lax" in cookie and "path=/" in cookie
    assert f"max-age={30 * 86400}" in cookie and "secure" not in cookie


def test_cookies_are_secure_over_https(app):
    make_user(app, "alice")
    c = client(app, base_url="https://testserver")
    r = c.get("/login")
    assert "; secure" in set_cookies(r)[auth.ANON_COOKIE]
    r = login(c, "alice")
    assert r.status_code == 303
    cookie = set_cookies(r)[auth.SESSION_COOKIE]
    assert "; secure" in cookie and "httponly" in cookie and "samesite=lax" in cookie
    assert c.get("/account").status_code == 200


def test_only_the_token_hash_is_stored_and_the_page_knows_the_user(app):
    c = logged_in(app, "alice")
    token = c.cookies[auth.SESSION_COOKIE]
    com = app.state.store.community
    assert com.session(token) is None
    session = com.session(auth.token_hash(token))
    assert session is not None and com.user(session.user_id).username == "alice"
    page = c.get("/")
    assert 'href="/account">alice</a>' in page.text and csrf_of(page.text) == session.csrf


def test_logout_deletes_the_session_in_the_store(app):
    c = logged_in(app, "alice")
    token = c.cookies[auth.SESSION_COOKIE]
    r = c.post("/logout", data={"csrf": page_csrf(c)}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/"
    assert 'papertide_session=""' in r.headers["set-cookie"] and "max-age=0" in r.headers["set-cookie"].lower()
    assert app.state.store.community.session(auth.token_hash(token)) is None
    replay = client(app)
    replay.cookies.set(auth.SESSION_COOKIE, token)  # the old cookie, kept by an attacker
    r = replay.get("/account", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")


def test_a_stale_session_cookie_is_dropped(app):
    c = client(app)
    c.cookies.set(auth.SESSION_COOKIE, "no-such-session")
    r = c.get("/")
    assert r.status_code == 200 and "Log in" in r.text
    assert set_cookies(r)[auth.SESSION_COOKIE].startswith('papertide_session=""')


def test_a_signed_in_form_needs_the_sessions_token_not_an_anonymous_one(app):
    anon_token = page_csrf(client(app), "/login")
    c = logged_in(app, "alice")
    r = c.post("/collections", data={"csrf": anon_token, "name": "x"})
    assert r.status_code == 403
    assert c.post("/collections", data={"csrf": page_csrf(c), "name": "x"}, follow_redirects=False).status_code == 303


def test_pages_for_members_send_visitors_to_log_in_and_back(app):
    c = client(app)
    r = c.get("/account", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/account"
    r = c.get("/submit", headers={"Accept": "application/json"})
    assert r.status_code == 401 and r.json()["detail"] == "log in first"
    make_user(app, "alice")
    r = login(c, "alice", next_url="/account")
    assert r.headers["location"] == "/account"


@pytest.mark.parametrize("value, expected", [
    ("/account", "/account"),
    ("/paper/2401.17377?x=1#comments", "/paper/2401.17377?x=1#comments"),
    ("//evil.example/", "/"),
    ("/\\evil.example", "/"),
    ("https://evil.example/", "/"),
    ("javascript:alert(1)", "/"),
    ("/ok\r\nSet-Cookie: x=1", "/"),
    ("", "/"),
    (None, "/"),
])  # fmt: skip
def test_safe_next_allows_only_local_paths(value, expected):
    assert safe_next(value) == expected


def test_bearer_user_reads_personal_api_tokens(app):
    alice = make_user(app, "alice")
    token = auth.new_token()
    app.state.store.community.create_api_token(alice.id, "script", auth.token_hash(token))

    def request(header: str) -> Request:
        return Request({"type": "http", "app": app, "headers": [(b"authorization", header.encode())]})

    assert bearer_user(request(f"Bearer {token}")).username == "alice"
    assert bearer_user(request(f"bearer {token}")).username == "alice"
    assert bearer_user(request("Bearer wrong")) is None
    assert bearer_user(request(f"Basic {token}")) is None
    assert bearer_user(request("Bearer " + "x" * 5000)) is None
