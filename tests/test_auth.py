"""Accounts' security primitives: hashes, tokens, cookies, CSRF, the app secret, the rate limiter."""

from __future__ import annotations

import os
import stat
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
from argon2 import PasswordHasher
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from papertide.errors import ConfigError
from papertide.web import auth

# --- passwords -------------------------------------------------------------------------


def test_hash_is_argon2id_with_owasp_parameters_and_salted():
    h1, h2 = auth.hash_password("correct horse"), auth.hash_password("correct horse")
    assert h1.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert h1 != h2  # random salt
    assert "correct horse" not in h1


def test_verify_matches_and_mismatches():
    h = auth.hash_password("correct horse")
    assert auth.verify_password(h, "correct horse") is True
    assert auth.verify_password(h, "correct horsE") is False
    assert auth.verify_password(h, "") is False


def test_verify_unicode_password():
    h = auth.hash_password("pässwörd ✓ 密码")
    assert auth.verify_password(h, "pässwörd ✓ 密码")
    assert not auth.verify_password(h, "passwort ✓ 密码")


@pytest.mark.parametrize("bad", ["", "garbage", "$argon2id$v=19$m=65536,t=3,p=4$xx$yy", "$2b$12$abc", None, 42, b"\xff"])
def test_verify_never_raises_on_malformed_hash(bad):
    assert auth.verify_password(bad, "whatever1") is False


def test_verify_non_text_password_is_false():
    h = auth.hash_password("correct horse")
    assert auth.verify_password(h, None) is False
    assert auth.verify_password(h, 12345678) is False


def test_hash_password_refuses_non_text():
    with pytest.raises(TypeError):
        auth.hash_password(None)


def test_needs_rehash():
    assert auth.needs_rehash(auth.hash_password("correct horse")) is False
    old = PasswordHasher().hash("correct horse")  # argon2-cffi defaults: m=64 MiB, t=3, p=4
    assert auth.needs_rehash(old) is True
    assert auth.verify_password(old, "correct horse")  # still verifies until re-hashed
    assert auth.needs_rehash("garbage") is True
    assert auth.needs_rehash(None) is True


def test_dummy_verify_is_false():
    assert auth.dummy_verify("anything at all") is False
    assert auth.dummy_verify(None) is False


@pytest.mark.parametrize("pw", ["12345678", "a" * 1024, "correct horse battery staple", "  spaces  ", "密码密码密码密码"])
def test_check_password_accepts(pw):
    auth.check_password(pw, "alice")


@pytest.mark.parametrize("pw, username, fragment", [
    ("short", "alice", "at least 8"),
    ("", "alice", "at least 8"),
    ("1234567", "alice", "at least 8"),
    ("a" * 1025, "alice", "at most 1024"),
    ("alice_in_chains", "alice_in_chains", "username"),
    ("Alice_In_Chains", "alice_in_chains", "username"),
    (" alice_in_chains ", "alice_in_chains", "username"),
    (None, "alice", "text"),
])
def test_check_password_refuses_with_clear_message(pw, username, fragment):
    with pytest.raises(ValueError, match=fragment):
        auth.check_password(pw, username)


# --- tokens ----------------------------------------------------------------------------


def test_new_token_is_random_urlsafe_and_long():
    tokens = {auth.new_token() for _ in range(200)}
    assert len(tokens) == 200
    for t in tokens:
        assert len(t) == 43
        assert set(t) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_token_hash_is_sha256_hex():
    assert auth.token_hash("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    t = auth.new_token()
    assert auth.token_hash(t) == auth.token_hash(t)
    assert len(auth.token_hash(t)) == 64 and t not in auth.token_hash(t)


def test_same_compares_any_text():
    assert auth.same("abc", "abc")
    assert not auth.same("abc", "abd")
    assert not auth.same("abc", "abcd")
    assert auth.same("ünï", "ünï")  # hmac.compare_digest alone refuses non-ASCII str
    assert auth.same(b"\x00\xff", b"\x00\xff")
    assert not auth.same("", "x")


# --- sessions --------------------------------------------------------------------------


def test_session_expires_is_thirty_days_on_in_store_format():
    start = datetime(2024, 3, 17, 12, 0, tzinfo=UTC)
    assert auth.session_expires(start) == "2024-04-16T12:00:00.000000Z"
    assert auth.session_expires() > datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _set_cookie_header(secure: bool) -> str:
    def page(request):
        response = PlainTextResponse("ok")
        response.set_cookie(auth.SESSION_COOKIE, "tok", **auth.session_cookie_kwargs(secure))
        return response

    with TestClient(Starlette(routes=[Route("/", page)])) as client:
        return client.get("/").headers["set-cookie"]


def test_session_cookie_attributes_over_http():
    header = _set_cookie_header(secure=False)
    low = header.lower()
    assert header.startswith(f"{auth.SESSION_COOKIE}=tok")
    assert "httponly" in low and "samesite=lax" in low and "path=/" in low
    assert f"max-age={30 * 86400}" in low
    assert "secure" not in low


def test_session_cookie_is_secure_behind_https():
    low = _set_cookie_header(secure=True).lower()
    assert "; secure" in low and "httponly" in low and "samesite=lax" in low


def test_anon_cookie_kwargs_share_the_scope():
    kw = auth.anon_cookie_kwargs(True)
    assert kw["httponly"] and kw["secure"] and kw["samesite"] == "lax" and kw["path"] == "/"
    assert kw["max_age"] == auth.ANON_CSRF_MAX_AGE


# --- CSRF ------------------------------------------------------------------------------


def test_check_csrf():
    token = auth.new_csrf()
    assert auth.check_csrf(token, token)
    assert not auth.check_csrf(token, auth.new_csrf())
    assert not auth.check_csrf(token, token[:-1])
    assert not auth.check_csrf(token, "")
    assert not auth.check_csrf(token, None)
    assert not auth.check_csrf("", "")
    assert not auth.check_csrf(None, None)
    assert not auth.check_csrf("", token)


SECRET = bytes(range(32))


def test_anon_csrf_round_trip():
    nonce = auth.new_token()
    token = auth.anon_csrf(SECRET, nonce, now=1_000_000)
    assert token.startswith("1000000.")
    assert auth.check_anon_csrf(SECRET, token, 3600, nonce, now=1_000_100)


def test_anon_csrf_is_bound_to_the_cookie_nonce():
    mine, attackers = auth.new_token(), auth.new_token()
    token = auth.anon_csrf(SECRET, attackers, now=1_000_000)  # minted for the attacker's own visit
    assert not auth.check_anon_csrf(SECRET, token, 3600, mine, now=1_000_010)
    assert not auth.check_anon_csrf(SECRET, token, 3600, None, now=1_000_010)
    assert not auth.check_anon_csrf(SECRET, token, 3600, "", now=1_000_010)


def test_anon_csrf_expires_and_refuses_the_future():
    nonce = auth.new_token()
    token = auth.anon_csrf(SECRET, nonce, now=1_000_000)
    assert auth.check_anon_csrf(SECRET, token, 3600, nonce, now=1_003_600)
    assert not auth.check_anon_csrf(SECRET, token, 3600, nonce, now=1_003_601)
    assert auth.check_anon_csrf(SECRET, token, 3600, nonce, now=999_990)  # small clock skew is fine
    assert not auth.check_anon_csrf(SECRET, token, 3600, nonce, now=999_000)


def test_anon_csrf_refuses_other_secret_and_tampering():
    nonce = auth.new_token()
    token = auth.anon_csrf(SECRET, nonce, now=1_000_000)
    stamp, mac = token.split(".")
    assert not auth.check_anon_csrf(bytes(32), token, 3600, nonce, now=1_000_001)
    # a fresher timestamp with the old MAC
    assert not auth.check_anon_csrf(SECRET, f"1000500.{mac}", 3600, nonce, now=1_000_600)
    flipped = mac[:-1] + ("0" if mac[-1] != "0" else "1")
    assert not auth.check_anon_csrf(SECRET, f"{stamp}.{flipped}", 3600, nonce, now=1_000_001)


@pytest.mark.parametrize("bad", ["", None, ".", "abc", "1000000", "1000000.", "-5.abc", "１０.abc", "1e9.abc",
                                 "9" * 40 + ".abc", "1000000.ünï"])
def test_anon_csrf_malformed_tokens_are_false(bad):
    assert auth.check_anon_csrf(SECRET, bad, 3600, "nonce", now=1_000_000) is False


def test_anon_csrf_needs_a_nonce():
    with pytest.raises(ValueError):
        auth.anon_csrf(SECRET, "")


# --- the app secret --------------------------------------------------------------------


def test_secret_created_once_private_and_stable(tmp_path):
    home = tmp_path / "new" / "home"
    first = auth.load_or_create_secret(home)
    path = home / "secret.key"
    assert len(first) == 32 and path.read_bytes() == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert auth.load_or_create_secret(home) == first
    assert [p.name for p in home.iterdir()] == ["secret.key"]  # no temporary file left


def test_secret_differs_between_homes(tmp_path):
    assert auth.load_or_create_secret(tmp_path / "a") != auth.load_or_create_secret(tmp_path / "b")


def test_secret_too_open_is_tightened(tmp_path):
    secret = auth.load_or_create_secret(tmp_path)
    os.chmod(tmp_path / "secret.key", 0o644)
    assert auth.load_or_create_secret(tmp_path) == secret
    assert stat.S_IMODE((tmp_path / "secret.key").stat().st_mode) == 0o600


def test_secret_of_wrong_size_is_an_error(tmp_path):
    (tmp_path / "secret.key").write_bytes(b"short")
    with pytest.raises(ConfigError, match="5 bytes"):
        auth.load_or_create_secret(tmp_path)


def test_concurrent_first_starts_agree_on_one_secret(tmp_path):
    with ThreadPoolExecutor(8) as pool:
        secrets = list(pool.map(lambda _: auth.load_or_create_secret(tmp_path), range(16)))
    assert len(set(secrets)) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["secret.key"]


# --- the rate limiter ------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_rate_limiter_blocks_after_max_failures_and_recovers():
    clock = Clock()
    rl = auth.RateLimiter(max_attempts=3, window=60, clock=clock)
    for i in range(3):
        assert rl.allow("ip:1.2.3.4")
        assert rl.retry_after("ip:1.2.3.4") == 0.0
        rl.record_failure("ip:1.2.3.4")
        clock.t += 10
    assert not rl.allow("ip:1.2.3.4")
    assert rl.retry_after("ip:1.2.3.4") == pytest.approx(30.0)  # first failure at 1000, now 1030
    assert rl.allow("user:alice")  # keys are independent
    clock.t = 1060.0
    assert rl.allow("ip:1.2.3.4")  # the first failure has left the window
    rl.record_failure("ip:1.2.3.4")
    assert not rl.allow("ip:1.2.3.4")
    assert rl.retry_after("ip:1.2.3.4") == pytest.approx(10.0)  # second failure at 1010


def test_rate_limiter_reset():
    rl = auth.RateLimiter(max_attempts=2, window=60, clock=Clock())
    rl.record_failure("user:bob")
    rl.record_failure("user:bob")
    assert not rl.allow("user:bob")
    rl.reset("user:bob")
    assert rl.allow("user:bob") and rl.retry_after("user:bob") == 0.0
    rl.reset("user:nobody")  # unknown keys are fine


def test_rate_limiter_memory_is_bounded():
    clock = Clock()
    rl = auth.RateLimiter(max_attempts=5, window=60, clock=clock, max_keys=100)
    for i in range(10_000):
        rl.record_failure(f"ip:{i}")
    assert len(rl) == 100
    for _ in range(50):
        rl.record_failure("ip:9999")  # per-key history is bounded too
    assert rl.attempts("ip:9999") == 5 and len(rl.limits.state("attempts:ip:9999", clock.t)) == 5
    clock.t += 61
    rl.record_failure("ip:new")  # aged-out keys are dropped as new failures come
    assert len(rl) == 1


def test_rate_limiter_evicts_the_stalest_key_first():
    clock = Clock()
    rl = auth.RateLimiter(max_attempts=2, window=600, clock=clock, max_keys=2)
    rl.record_failure("a")
    clock.t += 1
    rl.record_failure("b")
    clock.t += 1
    rl.record_failure("a")  # "a" is now the most recent
    rl.record_failure("c")
    assert not rl.allow("a")  # kept, with both failures
    assert rl.retry_after("b") == 0.0 and len(rl) == 2


def test_rate_limiter_counts_exactly_under_threads():
    rl = auth.RateLimiter(max_attempts=10_000, window=3600)
    barrier = threading.Barrier(8)

    def hammer(_):
        barrier.wait()
        for _ in range(500):
            rl.record_failure("user:target")
            rl.allow("user:target")

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(hammer, range(8)))
    assert rl.attempts("user:target") == 4000
    assert rl.allow("user:target")
    for _ in range(6000):
        rl.record_failure("user:target")
    assert not rl.allow("user:target")


def test_rate_limiter_validates_arguments():
    with pytest.raises(ValueError):
        auth.RateLimiter(max_attempts=0)
    with pytest.raises(ValueError):
        auth.RateLimiter(window=0)
