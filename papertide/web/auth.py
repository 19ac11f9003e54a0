"""Accounts' security primitives: password hashes, tokens, session cookies, CSRF, the app secret, login throttling.

The web layer decides *when* to call these; this module decides *how*, in one place
and with no framework in sight, so each rule can be tested on its own:

- passwords are kept only as argon2id hashes (argon2-cffi) with OWASP's first
  recommended parameters (m=19 MiB, t=2, p=1: one core, ~65 ms on the reference
  machine, so two logins can run at once on two cores);
- session and API tokens are random (``secrets``) and only their SHA-256 is stored,
  so a leaked database holds no usable token;
- CSRF: a per-session random token for signed-in forms, and an HMAC-signed,
  time-stamped token bound to a random cookie nonce for the anonymous forms (log in,
  sign up), so that login CSRF is stopped too;
- the app secret is generated once into ``<home>/secret.key`` (0600), never in the repo;
- :class:`RateLimiter` counts failed log-ins (and sign-ups, subscriptions) per key in a sliding
  window, in the store so that all processes of a site share one count; when the store
  fails it refuses (503) rather than allowing unlimited guesses (:class:`FailurePolicy`).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import os
import secrets
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from papertide.errors import ConfigError
from papertide.store.limits import Decision, Limits, LimitsUnavailable, MemoryLimits

log = logging.getLogger(__name__)
T = TypeVar("T")

# --- passwords -------------------------------------------------------------------------

# OWASP Password Storage Cheat Sheet, argon2id, first configuration: m=19 MiB, t=2, p=1.
# (argon2-cffi's own default, RFC 9106's low-memory profile m=64 MiB t=3 p=4, takes ~190 ms
# of both cores here.) Hashes made with other parameters verify, and needs_rehash says so.
_HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1, hash_len=32, salt_len=16)

PASSWORD_MIN = 8
PASSWORD_MAX = 1024


def hash_password(password: str) -> str:
    """The argon2id hash of ``password`` (PHC string: ``$argon2id$v=19$m=...``), salted at random."""
    if not isinstance(password, str):
        raise TypeError(f"password must be a str, not {type(password).__name__}")
    return _HASHER.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """True when ``password`` matches ``password_hash``; False on mismatch, a malformed hash or non-text input."""
    if not isinstance(password_hash, str) or not isinstance(password, str) or not password_hash:
        return False
    try:
        return _HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError, ValueError, TypeError):
        return False


_DUMMY_HASH: str | None = None


def dummy_verify(password: str) -> bool:
    """Spend the time of one verification and return False.

    For log-in attempts on an unknown username, so that response time does not tell
    which usernames exist.
    """
    global _DUMMY_HASH
    if _DUMMY_HASH is None:
        _DUMMY_HASH = hash_password(secrets.token_urlsafe(16))
    verify_password(_DUMMY_HASH, password if isinstance(password, str) else "")
    return False


def needs_rehash(password_hash: str) -> bool:
    """True when the hash was made with other parameters than today's (re-hash it at the next log-in).

    A malformed hash also answers True: it should be replaced, and this never raises.
    """
    try:
        return _HASHER.check_needs_rehash(password_hash)
    except (InvalidHashError, ValueError, TypeError, AttributeError):
        return True


def check_password(password: str, username: str) -> None:
    """Raise ValueError, with a message for the person choosing it, unless ``password`` is acceptable.

    Rules: 8 to 1024 characters, and not the username (compared ignoring case and
    surrounding spaces). Everything else (spaces, any script, emoji) is allowed.
    """
    if not isinstance(password, str):
        raise ValueError("the password must be text")
    if len(password) < PASSWORD_MIN:
        raise ValueError(f"the password is too short: use at least {PASSWORD_MIN} characters")
    if len(password) > PASSWORD_MAX:
        raise ValueError(f"the password is too long: use at most {PASSWORD_MAX} characters")
    if username and password.strip().casefold() == str(username).strip().casefold():
        raise ValueError("the password must not be the same as the username")


# --- tokens ----------------------------------------------------------------------------


def new_token() -> str:
    """A fresh random token (32 bytes, URL-safe base64, 43 characters) for sessions, API tokens, CSRF."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """The SHA-256 hex digest of a token: the only form in which tokens are stored."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def same(a: str | bytes, b: str | bytes) -> bool:
    """Constant-time equality of two strings or byte strings (any text, not only ASCII)."""
    if isinstance(a, str):
        a = a.encode("utf-8")
    if isinstance(b, str):
        b = b.encode("utf-8")
    return hmac.compare_digest(a, b)


# --- sessions --------------------------------------------------------------------------

SESSION_COOKIE = "papertide_session"
SESSION_LIFETIME = timedelta(days=30)


def session_expires(now: datetime | None = None) -> str:
    """The expiry of a session started ``now``, in the store's timestamp format (UTC, ``...Z``)."""
    now = now or datetime.now(UTC)
    return (now.astimezone(UTC) + SESSION_LIFETIME).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def session_cookie_kwargs(secure: bool) -> dict:
    """Keyword arguments for Starlette's ``response.set_cookie(SESSION_COOKIE, token, **kwargs)``.

    HttpOnly (no script reads it), SameSite=Lax (not sent on cross-site POSTs), Path=/,
    Max-Age of :data:`SESSION_LIFETIME`, and Secure when the site is served over https.
    To log out, ``response.delete_cookie(SESSION_COOKIE, **cookie_scope(secure))``.
    """
    return {"max_age": int(SESSION_LIFETIME.total_seconds()), **cookie_scope(secure)}


def cookie_scope(secure: bool) -> dict:
    """The attributes every papertide cookie carries (and that deleting one must repeat)."""
    return {"path": "/", "secure": bool(secure), "httponly": True, "samesite": "lax"}


# --- CSRF ------------------------------------------------------------------------------

CSRF_FIELD = "csrf"  # the hidden form field
CSRF_HEADER = "X-CSRF-Token"  # for scripts (fetch) that post without a form

ANON_COOKIE = "papertide_anon"  # the random nonce that anonymous forms' tokens are bound to
ANON_CSRF_MAX_AGE = 2 * 3600  # seconds a log-in / sign-up form stays valid
_CLOCK_SKEW = 60  # seconds a token's timestamp may lie in the future


def new_csrf() -> str:
    """A session's CSRF token, created with the session and kept in ``Session.csrf``."""
    return new_token()


def check_csrf(session_csrf: str | None, submitted: str | None) -> bool:
    """True when the submitted token is the session's; False when either is missing or empty."""
    if not session_csrf or not submitted or not isinstance(session_csrf, str) or not isinstance(submitted, str):
        return False
    return same(session_csrf, submitted)


def anon_cookie_kwargs(secure: bool) -> dict:
    """``set_cookie`` keyword arguments for :data:`ANON_COOKIE` (lives as long as its tokens)."""
    return {"max_age": ANON_CSRF_MAX_AGE, **cookie_scope(secure)}


def _anon_mac(secret: bytes, nonce: str, stamp: int) -> str:
    message = b"papertide-anon-csrf\x00" + nonce.encode("utf-8") + b"\x00" + str(stamp).encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def anon_csrf(secret: bytes, nonce: str, *, now: float | None = None) -> str:
    """A CSRF token for an anonymous form: ``<unix time>.<HMAC-SHA256(secret, nonce, time)>``.

    ``nonce`` is a random value (:func:`new_token`) kept in the visitor's
    :data:`ANON_COOKIE`; reuse the cookie's nonce when it is already set so that several
    open tabs all stay valid. A cross-site attacker can neither read nor set that
    cookie, so a token minted for the attacker's own nonce is useless to them.
    """
    if not nonce:
        raise ValueError("anon_csrf needs a non-empty nonce")
    stamp = int(time.time() if now is None else now)
    return f"{stamp}.{_anon_mac(secret, nonce, stamp)}"


def check_anon_csrf(secret: bytes, token: str | None, max_age: float, nonce: str | None, *,
                    now: float | None = None) -> bool:
    """True when ``token`` was made by :func:`anon_csrf` with this secret and nonce, at most ``max_age`` s ago.

    ``nonce`` is the value of the visitor's :data:`ANON_COOKIE` on the posting request.
    False (never an exception) for a missing, malformed, forged, expired or
    future-dated token, or a missing nonce.
    """
    if not token or not nonce or not isinstance(token, str) or not isinstance(nonce, str):
        return False
    stamp_text, _, mac = token.partition(".")
    if not stamp_text.isascii() or not stamp_text.isdigit() or len(stamp_text) > 12 or not mac:
        return False
    stamp = int(stamp_text)
    current = time.time() if now is None else now
    if stamp > current + _CLOCK_SKEW or current - stamp > max_age:
        return False
    return same(_anon_mac(secret, nonce, stamp), mac)


# --- the app secret --------------------------------------------------------------------

SECRET_FILE = "secret.key"
SECRET_BYTES = 32


def load_or_create_secret(home: Path) -> bytes:
    """The app's 32-byte secret from ``<home>/secret.key``, generated there (mode 0600) on first use.

    Creation is atomic: the bytes go to a private temporary file that is then hard-linked
    into place, so concurrent first starts agree on one secret and no reader sees a
    half-written file. A secret file readable by others is tightened to 0600; one of the
    wrong size raises ConfigError rather than weakening the secret.
    """
    home = Path(home)
    path = home / SECRET_FILE
    if not path.exists():
        home.mkdir(parents=True, exist_ok=True)
        _create_secret(path)
    if os.name == "posix" and path.stat().st_mode & 0o077:
        os.chmod(path, 0o600)
    data = path.read_bytes()
    if len(data) != SECRET_BYTES:
        raise ConfigError(f"{path} holds {len(data)} bytes, not {SECRET_BYTES}: delete it to make a new secret "
                          "(this logs everyone out)")
    return data


def _create_secret(path: Path) -> None:
    tmp = path.with_name(f".{SECRET_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(SECRET_BYTES))
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process won the race: its secret is the one
    finally:
        tmp.unlink(missing_ok=True)


# --- login rate limiting ---------------------------------------------------------------


class RateLimiter:
    """At most ``max_attempts`` attempts per key within a sliding ``window`` of seconds.

    Keys are any strings. Log-ins count failures under ``"ip:<addr>"`` and
    ``"user:<name>"`` and are refused when either is blocked; sign-ups and subscriptions
    count every attempt per address (:meth:`take`, or :meth:`retry_after` + :meth:`record`).
    A key's state is its latest ``max_attempts`` attempt times (unix time, from ``clock``).

    With ``limits=store.limits`` the state is kept in the store under ``"<name>:<key>"``
    and every process of the site counts against the same limit: each change is one
    locked read-decide-write (:mod:`papertide.store.limits`), so concurrent requests of
    all processes count exactly, and rows whose attempts have aged out are swept away in
    bounded batches. Without ``limits`` the state is in this process's memory, bounded
    by ``max_keys`` (the key with the oldest latest attempt goes first).

    When the store fails, a limiter with ``fail_open=False`` (the default: log-ins,
    sign-ups, subscriptions) raises :class:`~papertide.store.limits.LimitsUnavailable`,
    a ``StoreError`` the app answers with 503: nobody gets unlimited password guesses
    while the database is sick, and the page says the site is unavailable rather than
    wrongly blaming the visitor with a 429. With ``fail_open=True`` the request is let
    through and a warning is logged (at most once a minute per limiter). Thread-safe.
    """

    def __init__(self, max_attempts: int = 5, window: float = 300.0,
                 clock: Callable[[], float] = time.time, max_keys: int = 50_000, *,
                 limits: Limits | None = None, name: str = "attempts", fail_open: bool = False) -> None:  # fmt: skip
        if max_attempts < 1 or not window > 0 or max_keys < 1:
            raise ValueError("RateLimiter needs max_attempts >= 1, window > 0 and max_keys >= 1")
        if not name or ":" in name:
            raise ValueError(f"a RateLimiter's name must be non-empty and without ':', not {name!r}")
        self.max_attempts = max_attempts
        self.window = float(window)
        self.max_keys = max_keys
        self.name = name
        self._clock = clock
        self._guard = FailurePolicy(name, fail_open)
        self.limits: Limits = limits if limits is not None else MemoryLimits(max_keys)

    @property
    def fail_open(self) -> bool:
        return self._guard.fail_open

    def __len__(self) -> int:
        """How many keys of this limiter have a stored state (aged-out ones not yet swept included)."""
        return self.limits.count(f"{self.name}:")

    def _key(self, key: str) -> str:
        return f"{self.name}:{key}"

    def _recent(self, state: object, now: float) -> list[float]:
        """The attempt times of a stored state still inside the window, oldest first."""
        if not isinstance(state, list):
            return []
        cutoff = now - self.window
        times = sorted(t for t in state if isinstance(t, (int, float)) and not isinstance(t, bool) and t > cutoff)
        return times[-self.max_attempts:]

    def _wait(self, times: list[float], now: float) -> float:
        if len(times) < self.max_attempts:
            return 0.0
        return max(0.0, times[0] + self.window - now)

    def _counted(self, times: list[float], now: float, result: float) -> Decision[float]:
        times = sorted([*times, now])[-self.max_attempts:]
        return Decision(result, times, times[-1] + self.window)

    def attempts(self, key: str) -> int:
        """How many attempts of ``key`` are inside the window now (at most ``max_attempts``)."""
        now = self._clock()
        return self._guard.run(lambda: len(self._recent(self.limits.state(self._key(key), now), now)), 0)

    def allow(self, key: str) -> bool:
        """True when ``key`` may try again now (fewer than ``max_attempts`` attempts in the window)."""
        return self.retry_after(key) <= 0

    def retry_after(self, key: str) -> float:
        """Seconds until ``key`` may try again: 0.0 when it may now (for a Retry-After header)."""
        now = self._clock()
        return self._guard.run(lambda: self._wait(self._recent(self.limits.state(self._key(key), now), now), now), 0.0)

    def record_failure(self, key: str) -> None:
        """Count one failed attempt for ``key`` now."""
        self.record(key)

    def record(self, key: str) -> None:
        """Count one attempt for ``key`` now (limiters of every attempt, like sign-ups, call this)."""
        now = self._clock()

        def step(state: object) -> Decision[float]:
            return self._counted(self._recent(state, now), now, 0.0)

        self._guard.run(lambda: self.limits.update(self._key(key), now, step), 0.0)

    def take(self, key: str) -> float:
        """Check and count in one step: 0.0 when ``key`` may try now (the attempt is counted),
        else the seconds until it may (nothing is counted). Exact however many processes ask at once."""
        now = self._clock()

        def step(state: object) -> Decision[float]:
            times = self._recent(state, now)
            wait = self._wait(times, now)
            return Decision(wait) if wait > 0 else self._counted(times, now, 0.0)

        return self._guard.run(lambda: self.limits.update(self._key(key), now, step), 0.0)

    def reset(self, key: str) -> None:
        """Forget ``key``'s attempts (after a successful log-in)."""
        self._guard.run(lambda: self.limits.forget(self._key(key)), None)


class FailurePolicy:
    """What a rate limiter does when its store fails: raise (closed) or let the request through (open).

    Failing open logs a warning at most once per :attr:`quiet` seconds, so an outage is
    seen in the log without one line per request.
    """

    quiet = 60.0

    def __init__(self, name: str, fail_open: bool) -> None:
        self.name, self.fail_open = name, bool(fail_open)
        self._warned = -math.inf
        self._lock = threading.Lock()

    def run(self, call: Callable[[], T], open_value: T) -> T:
        """``call()``; when the store fails, ``open_value`` (open) or the store's error (closed)."""
        try:
            return call()
        except LimitsUnavailable as e:
            if not self.fail_open:
                raise
            self._warn(e)
            return open_value

    def _warn(self, error: LimitsUnavailable) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._warned < self.quiet:
                return
            self._warned = now
        log.warning("rate limit %r is not enforced while the store fails: %s", self.name, error)
