"""The load generator of bench/load_bench.py: N simulated users looping over a realistic mix.

Each client is one signed-up user with a personal API token, pinned to one server
(clients are dealt round-robin over the servers) and holding its own keep-alive
connection. It loops without think time over a weighted mix of browsing (the daily
page, paper pages, trending), searching (the search page and the JSON search) and
voting through the JSON API (``POST``/``DELETE /api/papers/{id}/vote`` with the
token). For every (user, paper) it voted on it keeps the state the server's last
successful answer confirmed; a failed vote request makes that pair uncertain until a
later answer settles it. Those final states are what the store's counts are checked
against after the run.

200 async clients in one Python process can saturate a core with httpx's own work, so
the clients are split over ``procs`` processes (spawned, so nothing of the parent's
store or threads is inherited). Each process opens its clients first; once all are
ready they start together on one wall-clock :class:`Window`: warm-up, then the measured
seconds. Only requests started and answered inside the measured part count towards
rates and latencies, but every answered vote counts towards the final states.
"""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing
import random
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Callable
from urllib.parse import quote

# kind -> weight in the default mix (browse 45, search 25, votes 30); a quarter of the vote
# actions of a client that has voted take one of its votes back
MIX = {"daily": 12, "paper": 25, "trending": 8, "search": 12, "api_search": 13, "vote": 30}
KINDS = ["daily", "paper", "trending", "search", "api_search", "vote", "unvote"]
UNVOTE_SHARE = 0.25  # of vote actions once the client has votes: take one of them back
ZIPF = 0.8  # vote targets: the paper ranked r is chosen with weight 1 / r^ZIPF
LIMITED = object()  # _send's answer for an expected 429
TIMEOUT = 30.0  # seconds per request; a slower answer counts as an error
STARTUP_TIMEOUT = 120.0  # seconds for the loader processes to start


@dataclass(frozen=True)
class Plan:
    """Everything a loader process needs; picklable."""

    servers: list[str]  # base URLs
    users: list[tuple[int, str]]  # (user id, API token), one per client
    paper_ids: list[str]  # paper pages browsed
    vote_ids: list[str]  # papers voted on (hot ones first: chosen with Zipf-like weights)
    queries: list[str]
    warmup: float  # seconds of unmeasured load, then
    seconds: float  # seconds measured
    rate_limits: bool = False  # the servers enforce the API's limits: a 429 is expected, not an error
    mix: dict[str, float] = field(default_factory=lambda: dict(MIX))  # kind -> weight
    seed: int = 0


@dataclass
class Share:
    """What one loader process measured (merged over processes with :meth:`merge`)."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))  # kind -> seconds
    errors: Counter = field(default_factory=Counter)  # "kind: what" -> count (measured window or not)
    limited: Counter = field(default_factory=Counter)  # kind -> 429 answers (only when rate_limits)
    per_server: Counter = field(default_factory=Counter)  # base URL -> measured requests
    states: dict[tuple[int, str], bool | None] = field(default_factory=dict)  # (user, paper) -> voted; None = unsure
    last_kind: dict[tuple[int, str], str] = field(default_factory=dict)  # (user, paper) -> its last "vote"/"unvote"
    bad_answers: list[str] = field(default_factory=list)  # 2xx vote answers that contradict the request
    failures: list[dict] = field(default_factory=list)  # when and where failed requests happened (the first 100)
    cpu_seconds: float = 0.0  # the loader processes' own CPU time while loading
    requests_all: int = 0  # including warm-up

    def merge(self, other: Share) -> Share:
        for kind, values in other.latencies.items():
            self.latencies[kind].extend(values)
        self.errors.update(other.errors)
        self.limited.update(other.limited)
        self.per_server.update(other.per_server)
        self.states.update(other.states)
        self.last_kind.update(other.last_kind)
        self.bad_answers += other.bad_answers
        self.failures += other.failures
        self.cpu_seconds += other.cpu_seconds
        self.requests_all += other.requests_all
        return self


@dataclass(frozen=True)
class Window:
    start: float  # wall clock (time.time()) when the clients start
    measure_from: float
    until: float

    @classmethod
    def after(cls, start: float, plan: Plan) -> Window:
        return cls(start, start + plan.warmup, start + plan.warmup + plan.seconds)


def run_load(plan: Plan, procs: int, on_start: Callable[[Window], None] = lambda w: None) -> Share:
    """Run every client of the plan in ``procs`` spawned processes; their merged share.

    Each process opens its clients, says it is ready, and waits; once all are ready one
    start time is set for all and ``on_start`` is called with the schedule.
    """
    ctx = multiprocessing.get_context("spawn")
    ready, results, go, start = ctx.Queue(), ctx.Queue(), ctx.Event(), ctx.Value("d", 0.0)
    parts = [list(range(i, len(plan.users), procs)) for i in range(procs)]
    children = [ctx.Process(target=_child, args=(plan, part, ready, go, start, results), name=f"loader-{i}",
                            daemon=True) for i, part in enumerate(parts)]  # fmt: skip
    try:
        for child in children:
            child.start()
        for _ in children:
            _get(ready, children, STARTUP_TIMEOUT, "ready")
        start.value = time.time() + 0.1
        go.set()
        window = Window.after(start.value, plan)
        on_start(window)
        total = Share()
        for _ in children:
            total.merge(_get(results, children, plan.warmup + plan.seconds + TIMEOUT + 30, "results"))
        return total
    except BaseException:
        for child in children:  # interrupted or failed: no waiting for the others' results
            if child.is_alive():
                child.terminate()
        raise
    finally:
        for child in children:
            child.join(timeout=5)
            if child.is_alive():
                child.kill()
                child.join()


def _get(queue, children, timeout: float, what: str):
    """The next message, or RuntimeError when a loader died or the wait ran out."""
    import queue as queues

    deadline = time.monotonic() + timeout
    while True:
        try:
            message = queue.get(timeout=1.0)
        except queues.Empty:
            dead = [c for c in children if c.exitcode not in (None, 0)]
            if dead or time.monotonic() > deadline:
                why = f"{dead[0].name} exited with status {dead[0].exitcode}" if dead else f"{timeout:.0f} s passed"
                raise RuntimeError(f"the load generator failed waiting for {what}: {why}") from None
            continue
        if isinstance(message, str):
            raise RuntimeError(f"a load generator process failed: {message}")
        return message


def _child(plan: Plan, clients: list[int], ready, go, start, results) -> None:
    try:
        share = asyncio.run(_run_clients(plan, clients, ready, go, start))
    except BaseException as e:
        results.put(f"{type(e).__name__}: {e}")
        raise
    share.latencies = dict(share.latencies)  # picklable (no lambda factory)
    results.put(share)


async def _run_clients(plan: Plan, clients: list[int], ready, go, start) -> Share:
    import ssl

    import httpx

    share = Share()
    tls = ssl.create_default_context()  # plain HTTP, but httpx makes a context per client unless given one (~0.1 s)
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    https = {i: httpx.AsyncClient(base_url=plan.servers[i % len(plan.servers)], limits=limits, timeout=TIMEOUT,
                                  verify=tls) for i in clients}  # fmt: skip
    ready.put(True)
    if not go.wait(STARTUP_TIMEOUT):
        raise RuntimeError("no start signal")
    window = Window.after(start.value, plan)
    await asyncio.sleep(max(0.0, window.start - time.time()))
    cpu = time.process_time()
    try:
        await asyncio.gather(*(_client(plan, i, https[i], window, share) for i in clients))
    finally:
        share.cpu_seconds = time.process_time() - cpu
        for http in https.values():
            await http.aclose()
    return share


async def _client(plan: Plan, i: int, http, window: Window, share: Share) -> None:
    """One user: loop over the mix until the window ends, on one keep-alive connection."""
    rng = random.Random(plan.seed * 100_003 + i)
    user_id, token = plan.users[i]
    auth = {"Authorization": f"Bearer {token}"}
    kinds, kind_weights = list(plan.mix), list(itertools.accumulate(plan.mix.values()))
    vote_weights = list(itertools.accumulate(1.0 / (rank + 1) ** ZIPF for rank in range(len(plan.vote_ids))))
    mine: dict[str, bool | None] = {}
    done, sent, last_took = time.time(), 0, 0.0  # when the last answer came, requests so far, its latency
    while time.time() < window.until:
        kind = rng.choices(kinds, cum_weights=kind_weights)[0]
        pid, method, headers = None, "GET", auth if kind == "api_search" else None  # API users send their token
        if kind == "vote":
            voted = [p for p, state in mine.items() if state]
            if voted and rng.random() < UNVOTE_SHARE:
                kind, method, pid = "unvote", "DELETE", rng.choice(voted)
            else:  # a paper voted for already is voted for again now and then: nothing may change
                method, pid = "POST", rng.choices(plan.vote_ids, cum_weights=vote_weights)[0]
            path, headers = _vote_path(pid), auth
        else:
            path = _browse_path(kind, plan, rng)
        started = time.time()
        t = time.perf_counter()
        answer = await _send(http, method, path, headers, kind, share, plan.rate_limits)
        elapsed = time.perf_counter() - t
        share.requests_all += 1
        sent += 1
        if answer is None and len(share.failures) < 100:
            share.failures.append({"client": i, "kind": kind, "at_s": round(started - window.start, 3),
                                   "idle_before_s": round(started - done, 3), "took_s": round(elapsed, 3),
                                   "previous_took_s": round(last_took, 3), "nth_request": sent})  # fmt: skip
        done, last_took = time.time(), elapsed
        if answer is LIMITED:  # refused before anything was done: the pair keeps its state
            continue
        if pid is not None:
            mine[pid] = share.states[(user_id, pid)] = _vote_state(answer, kind, pid, user_id, share)
            share.last_kind[(user_id, pid)] = kind
        if answer is not None and started >= window.measure_from and time.time() <= window.until:
            share.latencies[kind].append(elapsed)
            share.per_server[plan.servers[i % len(plan.servers)]] += 1


def _vote_path(pid: str) -> str:
    return f"/api/papers/{quote(pid, safe='/:')}/vote"


def _browse_path(kind: str, plan: Plan, rng: random.Random) -> str:
    if kind == "daily":
        return "/"
    if kind == "trending":
        return "/trending"
    if kind == "paper":
        return "/paper/" + quote(rng.choice(plan.paper_ids), safe="/:")
    q = quote(rng.choice(plan.queries))
    return f"/search?q={q}" if kind == "search" else f"/api/search?q={q}"


async def _send(http, method: str, path: str, headers, kind: str, share: Share, limits_on: bool):
    """The response when it is a 2xx; LIMITED for an expected 429; else None with the error counted."""
    import httpx

    try:
        r = await http.request(method, path, headers=headers)
    except httpx.TimeoutException as e:
        share.errors[f"{kind}: timeout ({type(e).__name__})"] += 1
        return None
    except httpx.TransportError as e:
        share.errors[f"{kind}: socket error ({type(e).__name__}: {e})"] += 1
        return None
    if r.status_code == 429 and limits_on:
        share.limited[kind] += 1
        return LIMITED
    if not 200 <= r.status_code < 300:
        share.errors[f"{kind}: HTTP {r.status_code} {r.text[:160]!r}"] += 1
        return None
    return r


def _vote_state(answer, kind: str, pid: str, user_id: int, share: Share) -> bool | None:
    """The pair's state after this answer: confirmed True/False, or None when unknown."""
    if answer is None:
        return None
    try:
        body = answer.json()
        voted, votes, answered_id = body["voted"], body["votes"], body["paper_id"]
    except (ValueError, KeyError, TypeError) as e:
        share.bad_answers.append(f"user {user_id} {kind} {pid}: unreadable answer ({e}): {answer.text[:160]!r}")
        return None
    expected = kind == "vote"
    if voted is not expected or answered_id != pid or (expected and votes < 1) or votes < 0:
        share.bad_answers.append(f"user {user_id} {kind} {pid}: answer {body}")
        return None
    return voted
