"""Rate limits counted once for every process of a site (store/limits.py, store/limits_sql.py).

The state lives in the store's ``rate_limits`` table, on SQLite and on a real PostgreSQL
server (``pg_url``: a fresh database per test). What is shown here, on both:

- one key's check-and-count is exact under 8 threads, for an existing key and for a key
  that all threads create at the same moment, and under two processes at once;
- expired rows read as absent and are swept in bounded batches, so a flood of invented
  keys leaves a bounded table;
- a failing database refuses log-ins (503) but lets API searches through (logged);
- the web app's limiters use the store: two apps over one database share the log-in and
  API limits, and ``papertide serve --workers 2`` allows the limit once, not twice.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from processes import free_port

from papertide.config import load_config
from papertide.store.limits import KEEP, Decision, LimitsUnavailable, MemoryLimits
from papertide.store.limits_sql import SWAPS, SQLLimits
from papertide.store.postgres import PostgresStore
from papertide.store.sqlite import SQLiteStore
from papertide.web.auth import RateLimiter
from papertide.web.security import RequestLimiter

THREADS = 8


class Clock:
    def __init__(self, t: float = 1_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request, tmp_path):
    """(store, URL or path to open it again) on each backend."""
    if request.param == "sqlite":
        where = str(tmp_path / "limits.sqlite")
        store = SQLiteStore(where)
    else:
        where = request.getfixturevalue("pg_url")
        store = PostgresStore(where, pool_size=THREADS + 2)
    yield store, where
    store.close()


def together(n: int, work) -> list:
    """``work(i)`` on ``n`` threads released at the same moment; their results."""
    barrier = threading.Barrier(n)

    def run(i):
        barrier.wait()
        return work(i)

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(run, range(n)))


# ---------------------------------------------------------------- the store part


def test_update_reads_decides_and_writes_one_key(backend):
    store, _ = backend
    limits = store.limits
    assert limits.state("k", 10.0) is None and limits.count() == 0
    seen = []

    def add(state):
        seen.append(state)
        total = (state or 0) + 1
        return Decision(total, total, 20.0)

    assert [limits.update("k", 10.0, add) for _ in range(3)] == [1, 2, 3]
    assert seen == [None, 1, 2] and limits.state("k", 10.0) == 3
    assert limits.update("k", 10.0, lambda s: Decision("kept")) == "kept" and limits.state("k", 19.9) == 3
    assert limits.state("k", 20.0) is None  # expired: reads as absent...
    assert limits.count() == 1  # ...and stays until swept
    assert limits.update("k", 20.0, add) == 1  # a step never sees an expired state
    limits.update("k", 20.0, lambda s: Decision(None, None))  # None deletes
    assert limits.count() == 0
    limits.update("a:1", 0.0, lambda s: Decision(0, {"nested": [1.5, "x"]}, 5.0))
    assert limits.state("a:1", 1.0) == {"nested": [1.5, "x"]} and limits.count("a:") == 1 and limits.count("b:") == 0
    limits.forget("a:1")
    limits.forget("never-there")
    assert limits.count() == 0


def test_bad_keys_times_and_steps_are_refused_with_what_is_wrong(backend):
    limits = backend[0].limits
    with pytest.raises(ValueError, match="non-empty string"):
        limits.update("", 1.0, lambda s: Decision(0))
    with pytest.raises(ValueError, match="at most 300 characters, not 301"):
        limits.state("x" * 301, 1.0)
    with pytest.raises(ValueError, match="finite number"):
        limits.update("k", float("nan"), lambda s: Decision(0))
    with pytest.raises(TypeError, match="must return a Decision, not int"):
        limits.update("k", 1.0, lambda s: 3)
    assert limits.count() == 0  # nothing was written by any of them


# swaps=0: every check takes the row's lock; SWAPS: compare-and-swap first, the lock after lost races
SWAPPING = pytest.mark.parametrize("swaps", [0, SWAPS], ids=["locked", "swapping"])


@SWAPPING
def test_a_shared_key_counts_exactly_under_threads(backend, swaps):
    limits = SQLLimits(backend[0].database, swaps=swaps)
    gcra = RequestLimiter(0.001, 50, clock=Clock(), limits=limits, name="api")  # frozen clock: the burst only
    allowed = together(THREADS, lambda i: sum(gcra.take("ip:1") == 0.0 for _ in range(15)))
    assert sum(allowed) == 50 and len(gcra) == 1
    window = RateLimiter(max_attempts=10_000, window=3600, clock=Clock(), limits=limits, name="login")
    together(THREADS, lambda i: [window.record_failure("user:target") for _ in range(25)])
    assert window.attempts("user:target") == THREADS * 25


@SWAPPING
def test_a_new_key_created_by_every_thread_at_once_counts_each_once(backend, swaps):
    limits = SQLLimits(backend[0].database, swaps=swaps)
    limiter = RateLimiter(max_attempts=3, window=60, clock=Clock(), limits=limits, name="signup")
    for round_ in range(5):  # every thread's first statement finds no row: the inserts race
        waits = together(THREADS, lambda i, key=f"ip:{round_}": limiter.take(key))
        assert sorted(waits)[:3] == [0.0, 0.0, 0.0] and all(w == pytest.approx(60.0) for w in sorted(waits)[3:])
        assert limiter.attempts(f"ip:{round_}") == 3


ROUNDS = 200  # checks per process
HAMMER = """
import sys, time
from papertide.store.postgres import PostgresStore
from papertide.store.sqlite import SQLiteStore
from papertide.web.auth import RateLimiter
from papertide.web.security import RequestLimiter
where, rounds = sys.argv[1], int(sys.argv[2])
store = PostgresStore(where) if where.startswith("postgresql://") else SQLiteStore(where)
gcra = RequestLimiter(0.001, 150, clock=lambda: 1000.0, limits=store.limits, name="api")
window = RateLimiter(max_attempts=10_000, window=3600, clock=lambda: 1000.0, limits=store.limits, name="login")
print("ready", flush=True)
sys.stdin.readline()  # the go
allowed, began = 0, time.time()
for _ in range(rounds):
    allowed += gcra.take("ip:shared") == 0.0
    window.record_failure("user:shared")
print(allowed, began, time.time(), flush=True)
"""


@pytest.mark.slow  # each process imports the web stack: ~2 s, far more on a busy machine
def test_two_processes_count_one_limit(backend):
    store, where = backend
    args = [sys.executable, "-c", HAMMER, where, str(ROUNDS)]
    procs = [subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    try:
        assert [p.stdout.readline().strip() for p in procs] == ["ready", "ready"]
        for p in procs:  # both are connected and waiting: start them together
            p.stdin.write("go\n")
            p.stdin.flush()
        outs = [p.stdout.readline().split() for p in procs]
    finally:
        codes = [p.wait(timeout=120) for p in procs]
    assert codes == [0, 0]
    (one, began1, ended1), (two, began2, ended2) = [map(float, out) for out in outs]
    assert began1 < ended2 and began2 < ended1  # they ran at the same time
    assert one + two == 150  # the burst between them, not a burst each
    window = RateLimiter(max_attempts=10_000, window=3600, clock=lambda: 1000.0, limits=store.limits, name="login")
    assert window.attempts("user:shared") == 2 * ROUNDS


def test_expired_rows_are_swept_in_bounded_batches(backend):
    store, _ = backend
    limits = SQLLimits(store.database, sweep_every=10, sweep_batch=25)
    limiter = RateLimiter(max_attempts=5, window=60, clock=(clock := Clock()), limits=limits, name="login")
    for i in range(100):
        limiter.record_failure(f"ip:{i}")  # 100 keys, all live: sweeps delete nothing
    assert len(limiter) == 100
    clock.t += 61  # all expired
    assert limits.sweep(clock.t, 30) == 30 and len(limiter) == 70
    for i in range(20):  # 20 new keys: two sweeps of at most 25 rows each
        limiter.record_failure(f"attacker:{i}")
    assert limits.count("login:ip:") == 70 - 2 * 25 and limits.count("login:attacker:") == 20
    assert limiter.allow("ip:1") and limiter.attempts("ip:1") == 0


def test_a_flood_of_new_keys_leaves_a_bounded_table(backend):
    store, _ = backend
    clock = Clock()
    limiter = RequestLimiter(10.0, 1, clock=clock, limits=store.limits, name="api")  # a key rests after 0.1 s
    for i in range(700):
        assert limiter.take(f"ip:{i}") == 0.0
        clock.t += 0.01  # ~10 keys are live at any moment
    # one sweep of up to 200 rows every 64 checks: rows beyond the live ones stay few
    assert len(limiter) < 100


def test_the_memory_limits_evict_the_stalest_keys():
    memory = MemoryLimits(max_keys=2)
    for key, at in (("a", 1.0), ("b", 2.0), ("a", 3.0), ("c", 4.0)):
        memory.update(key, at, lambda s, at=at: Decision(None, [*(s or []), at], at + 100))
    assert memory.count() == 2 and memory.state("a", 5.0) == [1.0, 3.0] and memory.state("b", 5.0) is None
    assert memory.update("a", 5.0, lambda s: Decision(len(s), KEEP)) == 2
    assert memory.sweep(200.0) == 2 and memory.count() == 0


# ------------------------------------------------------------- a failing store


def _break(store) -> None:
    """The rate-limit table is gone: every statement on it fails, as on a sick database."""
    with store.database.transaction() as tx:
        tx.execute("DROP TABLE rate_limits")


def test_a_failing_store_closes_log_ins_and_opens_searches(backend, caplog):
    store, _ = backend
    closed = RateLimiter(5, 300, limits=store.limits, name="login")
    opened = RequestLimiter(1.0, 1, limits=store.limits, name="api-searches", fail_open=True)
    assert closed.allow("ip:1") and not closed.fail_open and opened.fail_open
    _break(store)
    for call in (lambda: closed.allow("ip:1"), lambda: closed.record_failure("ip:1"), lambda: closed.take("ip:1"),
                 lambda: closed.reset("user:a")):  # fmt: skip
        with pytest.raises(LimitsUnavailable, match="cannot (read|update) the rate limits in the store: .*rate_limits"):
            call()
    with caplog.at_level(logging.WARNING, logger="papertide.web.auth"):
        assert [opened.take("ip:1") for _ in range(5)] == [0.0] * 5  # let through, never refused
    warnings = [r.getMessage() for r in caplog.records if "not enforced" in r.getMessage()]
    assert len(warnings) == 1 and "'api-searches'" in warnings[0]  # once, not once per request


# ----------------------------------------------------------------- the web app


def _app(home, **settings):
    from papertide.web import create_app

    return create_app(load_config(home, env={}, **settings))


def _login_attempt(c, username: str = "nobody") -> int:
    from web_helpers import csrf_of

    token = csrf_of(c.get("/login").text)
    return c.post("/login", data={"csrf": token, "username": username, "password": "wrong-password"}).status_code


def test_two_apps_on_one_database_share_the_log_in_and_api_limits(papertide_home):
    from web_helpers import client

    first, second = _app(papertide_home, api_search_per_minute=3), _app(papertide_home, api_search_per_minute=3)
    try:
        assert first.state.store is not second.state.store
        a, b = client(first, address="203.0.113.9"), client(second, address="203.0.113.9")
        assert [_login_attempt(c) for c in (a, b, a, b, a)] == [400] * 5
        assert _login_attempt(b) == 429 and _login_attempt(a) == 429  # five failures in all, not five each
        assert _login_attempt(client(second, address="198.51.100.1")) == 429  # the username's own count is full too
        assert _login_attempt(client(second, address="198.51.100.1"), "somebody") == 400  # another address and name
        statuses = [c.get("/api/search?q=x").status_code for c in (a, b, a)]
        assert 429 not in statuses  # three between both apps (no index: 503, but counted)
        r = b.get("/api/search?q=x")
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    finally:
        first.state.store.close()
        second.state.store.close()


def test_a_failing_store_refuses_log_ins_and_api_writes_but_not_searches(papertide_home):
    from web_helpers import client

    app = _app(papertide_home)
    try:
        c = client(app)
        alice = app.state.store.community.create_user("alice", "", "hash")
        _break(app.state.store)
        assert _login_attempt(c) == 503  # unavailable, never a wrong 429 nor unlimited guessing
        r = c.get("/api/search?q=x")
        assert r.status_code == 503 and "rate limit" not in r.json()["detail"]  # the search's own trouble (no index)
        from papertide.web.auth import token_hash

        app.state.store.community.create_api_token(alice.id, "t", token_hash("alice-token-0123456789"))
        r = c.post("/api/papers/2403.01234/vote", headers={"Authorization": "Bearer alice-token-0123456789"})
        assert r.status_code == 503 and "rate limits" in r.json()["detail"]
    finally:
        app.state.store.close()


@pytest.mark.slow  # two worker processes import the web stack: 5-20 s here
def test_serve_with_two_workers_allows_each_limit_once(config, tmp_path):
    from papertide.store import open_store

    open_store(config).close()  # migrated before the workers race to do it
    port, log_path = free_port(), tmp_path / "serve.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAPERTIDE_")} | {
        "PAPERTIDE_API_SEARCH_PER_MINUTE": "4"}  # fmt: skip
    cmd = [sys.executable, "-m", "papertide", "--home", str(config.home), "serve", "--no-index", "--workers", "2",
           "--port", str(port)]  # fmt: skip
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 60
    try:
        while log_path.read_text().count("Application startup complete") < 2:
            assert proc.poll() is None and time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.1)
        fresh = httpx.Limits(max_keepalive_connections=0)  # a new connection each: either worker may answer
        with httpx.Client(base_url=base, limits=fresh, timeout=30) as c:
            with ThreadPoolExecutor(6) as pool:  # at once, so that both workers answer some
                searches = list(pool.map(lambda _: c.get("/api/search?q=x").status_code, range(12)))
            logins = []
            for _ in range(9):
                token = re.search(r'name="csrf" value="([^"]*)"', c.get("/login").text).group(1)
                logins.append(c.post("/login", data={"csrf": token, "username": "x", "password": "wrong-pass"}).status_code)
        assert sum(s != 429 for s in searches) == 4, searches  # 4 in all (not 8: 4 per worker)
        assert logins == [400] * 5 + [429] * 4
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    workers = set(re.findall(r"Started server process \[(\d+)\]", log_path.read_text()))
    assert len(workers) == 2, textwrap.shorten(log_path.read_text(), 2000)
