"""Sign up, log in (rate limited), log out, and the account page (email, password, API tokens)."""

from __future__ import annotations

import re

from argon2 import PasswordHasher
from web_helpers import PASSWORD, client, csrf_of, logged_in, login, make_user, page_csrf

from papertide.web import auth

pytest_plugins = ["web_fixtures"]  # the app and template fixtures


def signup(c, username: str, password: str = PASSWORD, again: str | None = None, email: str = "", next_url="/"):
    data = {"csrf": page_csrf(c, "/signup"), "username": username, "email": email, "password": password,
            "password2": password if again is None else again, "next": next_url}  # fmt: skip
    return c.post("/signup", data=data, follow_redirects=False)


def form_error(html: str) -> str:
    m = re.search(r'<p class="form-error" role="alert">(.*?)</p>', html, re.S)
    return m.group(1) if m else ""


# ---------------------------------------------------------------------- sign up


def test_sign_up_logs_in_and_keeps_only_an_argon2id_hash(app):
    c = client(app)
    r = signup(c, "Bob", email="bob@example.org", next_url="/collections")
    assert r.status_code == 303 and r.headers["location"] == "/collections"
    assert auth.SESSION_COOKIE in c.cookies
    user = app.state.store.community.user_by_name("bob")
    assert user.username == "Bob" and user.email == "bob@example.org" and user.role == "user"
    assert user.password_hash.startswith("$argon2id$") and PASSWORD not in user.password_hash
    assert 'href="/account">Bob</a>' in c.get("/").text


def test_sign_up_refuses_bad_input_with_the_reason(app):
    c = client(app)
    cases = [
        (dict(username="x"), 400, "username is 2 to 32"),
        (dict(username="bob smith"), 400, "username is 2 to 32"),
        (dict(username="bob", password="short"), 400, "at least 8"),
        (dict(username="bobbybobby", password="BobbyBobby"), 400, "same as the username"),
        (dict(username="bob", again="something else"), 400, "passwords differ"),
        (dict(username="bob", email="not-an-address"), 400, "Not an email address"),
    ]
    for kwargs, status, fragment in cases:
        r = signup(c, **kwargs)
        assert r.status_code == status and fragment in form_error(r.text), (kwargs, r.status_code, form_error(r.text))
    assert app.state.store.community.user_count() == 0


def test_a_taken_username_is_a_409_form_in_any_case(app):
    make_user(app, "alice")
    r = signup(client(app), "ALICE")
    assert r.status_code == 409 and "ALICE is taken" in form_error(r.text)
    assert 'value="ALICE"' in r.text  # the form keeps what was typed (never the password)
    assert PASSWORD not in r.text


def test_nobody_becomes_admin_by_signing_up(app):
    c = client(app)
    assert signup(c, "first").status_code == 303
    assert app.state.store.community.user_by_name("first").role == "user"


def test_sign_ups_are_limited_per_address_with_a_429_page_and_retry_after(app):
    default = app.state.signup_limiter
    assert (default.max_attempts, default.window) == (10, 3600.0)
    now = [1000.0]  # the same limits on a clock the test moves
    app.state.signup_limiter = auth.RateLimiter(max_attempts=10, window=3600.0, clock=lambda: now[0])
    c = client(app, address="203.0.113.7")
    assert signup(c, "first").status_code == 303  # an account made counts...
    c = client(app, address="203.0.113.7")  # (a new browser: the first is logged in)
    for i in range(9):
        assert signup(c, f"user{i}", again="typo in the second one").status_code == 400  # ...and so do failures
    r = signup(c, "eleventh")
    assert r.status_code == 429 and r.headers["retry-after"] == "3600"
    assert r.headers["cache-control"] == "no-store" and r.headers["content-type"].startswith("text/html")
    assert "<h1>Too many sign-ups</h1>" in r.text and "Try again in 60 minutes" in r.text
    assert auth.SESSION_COOKIE not in c.cookies
    com = app.state.store.community
    assert com.user_count() == 1 and com.user_by_name("eleventh") is None
    assert signup(client(app, address="198.51.100.2"), "elsewhere").status_code == 303  # another address
    now[0] += 3599
    r = signup(c, "eleventh")
    assert r.status_code == 429 and r.headers["retry-after"] == "1" and "Try again in 1 minute," in r.text
    now[0] += 1  # the first attempt has aged out of the hour
    assert signup(c, "eleventh").status_code == 303 and com.user_by_name("eleventh") is not None


# ----------------------------------------------------------------- log in / out


def test_log_in_wrong_password_and_unknown_user_look_the_same(app):
    make_user(app, "alice")
    c = client(app)
    wrong = login(c, "alice", "not the password")
    unknown = login(c, "nobody", PASSWORD)
    for r in (wrong, unknown):
        assert r.status_code == 400 and form_error(r.text) == "Wrong username or password."
        assert auth.SESSION_COOKIE not in c.cookies
    assert 'value="alice"' in wrong.text
    ok = login(c, "ALICE")  # usernames are case-insensitive
    assert ok.status_code == 303 and auth.SESSION_COOKIE in c.cookies


def test_log_in_redirects_only_to_local_paths(app):
    make_user(app, "alice")
    for target, expected in (("/paper/2403.01234#comments", "/paper/2403.01234#comments"),
                             ("//evil.example/x", "/"), ("https://evil.example/", "/")):  # fmt: skip
        c = client(app)
        r = login(c, "alice", next_url=target)
        assert r.status_code == 303 and r.headers["location"] == expected, target


def test_each_log_in_gets_a_fresh_session(app):
    make_user(app, "alice")
    one, two = client(app), client(app)
    login(one, "alice")
    login(two, "alice")
    assert one.cookies[auth.SESSION_COOKIE] != two.cookies[auth.SESSION_COOKIE]
    r = one.post("/logout", data={"csrf": page_csrf(one)}, follow_redirects=False)
    assert r.status_code == 303
    assert "Log in" in one.get("/").text
    assert 'href="/account">alice</a>' in two.get("/").text  # the other browser stays logged in


def test_five_failures_then_429_with_retry_after_even_for_the_right_password(app):
    make_user(app, "alice")
    c = client(app)
    for _ in range(5):
        assert login(c, "alice", "wrong password").status_code == 400
    r = login(c, "alice")
    assert r.status_code == 429
    assert 240 <= int(r.headers["retry-after"]) <= 300
    assert "Too many failed log-ins" in r.text and auth.SESSION_COOKIE not in c.cookies


def test_the_username_is_limited_from_any_address(app):
    make_user(app, "alice")
    limiter = app.state.login_limiter
    for _ in range(5):
        limiter.record_failure("user:alice")  # failures from elsewhere
    r = login(client(app), "Alice")
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0


def test_an_old_hash_is_upgraded_at_log_in(app):
    com = app.state.store.community
    old = PasswordHasher().hash(PASSWORD)  # argon2-cffi defaults, not papertide's parameters
    user = com.create_user("alice", "", old)
    assert login(client(app), "alice").status_code == 303
    new = com.user(user.id).password_hash
    assert new != old and new.startswith("$argon2id$v=19$m=19456,t=2,p=1$") and auth.verify_password(new, PASSWORD)


def test_a_logged_in_visitor_is_sent_on_from_the_forms(app):
    c = logged_in(app, "alice")
    for url in ("/login?next=/collections", "/signup?next=/collections"):
        r = c.get(url, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/collections"


# ---------------------------------------------------------------------- account


def account_post(c, **data):
    return c.post("/account", data={"csrf": page_csrf(c, "/account")} | data, follow_redirects=False)


def test_account_page_changes_the_email(app):
    c = logged_in(app, "alice")
    r = account_post(c, action="email", email="alice@example.org")
    assert r.status_code == 303 and r.headers["location"] == "/account?done=email"
    page = c.get(r.headers["location"])
    assert "Your email address is saved." in page.text and 'value="alice@example.org"' in page.text
    assert page.headers["cache-control"] == "no-store"
    bad = account_post(c, action="email", email="nope")
    assert bad.status_code == 400 and "Not an email address" in form_error(bad.text)


def test_password_change_needs_the_current_one_and_logs_out_other_sessions(app):
    c = logged_in(app, "alice")
    other = client(app)
    login(other, "alice")
    new = "a brand new secret"
    r = account_post(c, action="password", current="wrong one", password=new, password2=new)
    assert r.status_code == 400 and "current password is wrong" in form_error(r.text)
    r = account_post(c, action="password", current=PASSWORD, password=new, password2="different")
    assert r.status_code == 400 and "differ" in form_error(r.text)
    r = account_post(c, action="password", current=PASSWORD, password=new, password2=new)
    assert r.status_code == 303 and r.headers["location"] == "/account?done=password"
    assert c.get("/account").status_code == 200  # this browser got a fresh session
    assert other.get("/account", follow_redirects=False).status_code == 303  # the other one is logged out
    assert login(client(app), "alice").status_code == 400
    assert login(client(app), "alice", new).status_code == 303


def test_api_tokens_are_shown_once_kept_hashed_listed_and_revoked(app):
    c = logged_in(app, "alice")
    r = account_post(c, action="token-create", name="my script")
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    token = re.search(r'<code class="token">([^<]+)</code>', r.text).group(1)
    com = app.state.store.community
    assert com.user_for_token(auth.token_hash(token)).username == "alice"
    assert com.user_for_token(token) is None  # only the hash is stored
    page = c.get("/account").text
    assert "my script" in page and token not in page  # listed, never shown again
    (listed,) = com.api_tokens(com.user_by_name("alice").id)
    assert account_post(c, action="token-create", name="").status_code == 400
    r = account_post(c, action="token-delete", token_id=str(listed["id"]))
    assert r.status_code == 303 and com.user_for_token(auth.token_hash(token)) is None
    assert account_post(c, action="token-delete", token_id=str(listed["id"])).status_code == 404


def test_someone_elses_token_cannot_be_revoked(app):
    bob = make_user(app, "bob")
    com = app.state.store.community
    tid = com.create_api_token(bob.id, "bob's", auth.token_hash(auth.new_token()))
    c = logged_in(app, "alice")
    assert account_post(c, action="token-delete", token_id=str(tid)).status_code == 404
    assert len(com.api_tokens(bob.id)) == 1
    assert account_post(c, action="nonsense").status_code == 400


def test_the_account_page_lists_submissions_and_collections(app):
    c = logged_in(app, "alice")
    com = app.state.store.community
    alice = com.user_by_name("alice")
    com.create_collection(alice.id, "Reading <b>list</b>")
    com.add_submission(alice.id, "2401.99999", status="failed", message="arXiv has no paper 2401.99999")
    page = c.get("/account").text
    assert "Reading &lt;b&gt;list&lt;/b&gt;" in page and "arXiv has no paper 2401.99999" in page
    assert csrf_of(page)
