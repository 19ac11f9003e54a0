"""Requests per second and p50/p99 latency of the web app's main pages under load.

The real server — ``papertide serve --no-index``, uvicorn, one worker process (or
``--workers 1,2``: each count in turn, through the app factory), on 127.0.0.1 — is
started in its own process and loaded from this one over loopback by
``wrk`` (one thread, a fixed number of keep-alive connections, bench/web_bench.lua
rotating the paths) or, when wrk is not installed, by a bounded asyncio+httpx client.
Endpoints: the daily page (``/``), paper pages (``/paper/{id}``, rotated over 20
papers), the search page (``/search?q=…``, rotated over a few queries, default hybrid
mode) and the JSON search (``/api/search?q=…``) when the app has it. Each is warmed
up, then measured for a fixed time at each concurrency (1 = latency, 16 = throughput
by default). Every non-2xx response and socket error is counted in the table, next to
the server's CPU use, all its processes together (100% = one core: one worker is bound
by the GIL; the load generator shares the same two cores).

Corpora:
- ``demo``: the 43 demo papers listed on 2024-03-17, indexed with the real embedder;
- ``synthetic``: 100k papers in the arXiv snapshot's format (bench/synth.py) ingested
  with papertide.ingest, the 300 newest listed on the newest day; the dense index is
  built from synthetic embedding-like vectors (bench/vectors_bench.py's mixture, as
  bench/search_bench.py does) because embedding 100k abstracts with MiniLM would take
  ~40 min here (45 abstracts/s on two cores); queries are still embedded by the real
  model, so search latency includes it.
Both get the same community activity: 40 users, votes on the listed papers, threaded
Markdown comments on some of them.

The server runs with the API's rate limits off (``PAPERTIDE_API_SEARCH_PER_MINUTE=0``,
``PAPERTIDE_API_WRITES_PER_MINUTE=0``, see :data:`SERVER_ENV`): one address asking
thousands of times a minute is the point here, so the ``/api/search`` rows measure
searches, not 429 answers.

Built homes are cached under $BENCH_TMP (else the system temp dir) in
``papertide-web-bench/<corpus>-<papers>-v<N>``, so a second run reuses them
(``--rebuild`` starts over).

    python bench/web_bench.py [--corpora demo,synthetic] [--papers 100000] [--seconds 8]
                              [--concurrency 1,16] [--workers 1,2] [--client auto|wrk|python]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable
from urllib.parse import quote

import numpy as np

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

import synth  # noqa: E402
from vectors_bench import DIM, Mixture  # noqa: E402

from papertide.config import load_config  # noqa: E402
from papertide.store import Store, open_store  # noqa: E402

BUILD_VERSION = 1  # bump when the recipe below changes: cached homes are rebuilt
READY = "web-bench.json"
SERVER_ENV = {"PAPERTIDE_API_SEARCH_PER_MINUTE": "0", "PAPERTIDE_API_WRITES_PER_MINUTE": "0"}  # no rate limits
LISTED = 300
PAPER_PAGES = 20
USERS = 40
QUERIES = ["language model", "retrieval augmented generation", '"in-context learning"', "transformer attention",
           "instruction tuning benchmark"]  # fmt: skip
COMMENTS = ["Nice result, but how does it compare with **the baseline** of Table 2?",
            "The bound $O(n \\log n)$ assumes sorted input; see [the appendix](https://arxiv.org/abs/2401.00001).",
            "Code: `pip install thing` — does it run on CPU?", "> the main claim\n\nI could not reproduce this.",
            "Agreed.\n\n- point one\n- point two"]  # fmt: skip


# ----------------------------------------------------------------- building


class SyntheticEmbedder:
    """Embedding-like vectors from a fixed mixture, named as the configured model so the
    server embeds queries with the real model against them."""

    def __init__(self, name: str, seed: int = 0) -> None:
        self.name, self.dim, self.max_tokens = name, DIM, 128
        self._mixture = Mixture.make(seed)
        self._rng = np.random.default_rng(seed + 1)

    def embed(self, texts, *, batch_size: int = 64) -> np.ndarray:
        return self._mixture.sample(len(texts), self._rng)


def seed_community(store: Store, listed: list[str], seed: int = 0) -> tuple[int, int]:
    """Users, votes on the listed papers and threaded comments on some: (votes, comments)."""
    rng = random.Random(seed)
    com = store.community
    users = [com.create_user(f"bench{i:03d}", f"bench{i:03d}@example.org", "bench-account-no-login").id
             for i in range(USERS)]  # fmt: skip
    votes = comments = 0
    for pid in listed:
        for uid in rng.sample(users, min(USERS, int(rng.paretovariate(1.1)) - 1)):
            com.vote(uid, pid)
            votes += 1
    for pid in rng.sample(listed, len(listed) // 4):
        parents: list[int] = []
        for _ in range(rng.randrange(1, 7)):
            parent = rng.choice(parents) if parents and rng.random() < 0.4 else None
            c = com.add_comment(pid, rng.choice(users), rng.choice(COMMENTS), parent_id=parent)
            parents.append(c.id)
            comments += 1
    return votes, comments


def build_demo(home: Path) -> dict:
    from papertide.index import update_index
    from papertide.ingest import ingest_demo
    from papertide.web.demo import DEMO_DAY, demo_paper_ids, list_demo_papers

    config = load_config(home, env={})
    with open_store(config) as store:
        ingest_demo(store)
        list_demo_papers(store)
        listed = demo_paper_ids()
        votes, comments = seed_community(store, listed)
        report = update_index(store, config)  # the real embedder: 43 abstracts
    return {"papers": len(listed), "day": DEMO_DAY, "paper_ids": listed[:PAPER_PAGES], "votes": votes,
            "comments": comments, "dense": "MiniLM (the configured embedder)", "index": report.summary()}  # fmt: skip


def build_synthetic(home: Path, n: int) -> dict:
    from papertide.index import configured_embedder_name, update_index
    from papertide.ingest import ingest_files

    config = load_config(home, env={})
    seconds = {}
    with open_store(config) as store:
        t = time.perf_counter()
        snapshot = synth.write(home / "snapshot.jsonl", n)
        seconds["synth"] = time.perf_counter() - t
        ingest_files(store, [snapshot], format="arxiv-snapshot")
        snapshot.unlink()
        seconds["ingest"] = time.perf_counter() - t - seconds["synth"]
        t = time.perf_counter()
        newest = store.list_papers(limit=LISTED, order="submitted")
        day = newest[0].submitted[:10]
        listed = [p.id for p in newest]
        for pid in listed:
            store.community.list_paper(pid, day)
        votes, comments = seed_community(store, listed)
        counts = store.community.comment_counts(listed)
        seconds["community"] = time.perf_counter() - t
        t = time.perf_counter()
        report = update_index(store, config, embedder=SyntheticEmbedder(configured_embedder_name(config)))
        seconds["index"] = time.perf_counter() - t
    with_comments = [pid for pid in listed if counts.get(pid)]
    shown = list(dict.fromkeys(with_comments[: PAPER_PAGES // 2] + listed))[:PAPER_PAGES]
    return {"papers": n, "day": day, "paper_ids": shown, "votes": votes, "comments": comments,
            "dense": "synthetic vectors (not MiniLM)", "index": report.summary(),
            "phases": ", ".join(f"{k} {v:.0f} s" for k, v in seconds.items())}  # fmt: skip


def cached(home: Path, build: Callable[[Path], dict], rebuild: bool, marker: str = READY) -> tuple[Path, dict, bool]:
    """``home`` as ``build(home)`` made it, unless a finished build (its ``marker`` file, which
    holds the build's info) is there already and ``rebuild`` is false: (home, info, reused)."""
    ready = home / marker
    if ready.exists() and not rebuild:
        return home, json.loads(ready.read_text()), True
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    t = time.perf_counter()
    info = build(home)
    info["build_seconds"] = round(time.perf_counter() - t, 1)
    ready.write_text(json.dumps(info))
    return home, info, False


def cached_home(corpus: str, n: int, rebuild: bool) -> tuple[Path, dict, bool]:
    """The built home for a corpus (built now unless a finished one is cached): (home, info, reused)."""
    root = Path(os.environ.get("BENCH_TMP") or tempfile.gettempdir()) / "papertide-web-bench"
    build = build_demo if corpus == "demo" else (lambda home: build_synthetic(home, n))
    return cached(root / f"{corpus}-{n}-v{BUILD_VERSION}", build, rebuild)


# ------------------------------------------------------------------- server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def server(home: Path, workers: int = 1):
    """``papertide serve --no-index`` on a free loopback port: yields (base url, pid, log path)."""
    port = free_port()
    log_path = home / "serve.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAPERTIDE_")} | SERVER_ENV
    cmd = [sys.executable, "-m", "papertide", "--home", str(home), "serve", "--no-index", "--host", "127.0.0.1",
           "--port", str(port), "--workers", str(workers), "--retry-submissions", "0"]  # fmt: skip
    with open(log_path, "w") as log:
        # uvicorn writes its access log to stdout (dropped) and errors to stderr (kept)
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, proc)
        yield base, proc.pid, log_path
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_ready(base: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with status {proc.returncode} before answering")
        try:
            httpx.get(base + "/static/app.css", timeout=2)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    raise SystemExit(f"the server did not answer within {timeout:.0f} s")


def settle(pid: int, limit: float = 30) -> None:
    """Wait (at most ``limit`` s) until the server has finished what the last run left queued."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        before = cpu_seconds(pid)
        time.sleep(0.25)
        if cpu_seconds(pid) - before < 0.025:
            return


def cpu_seconds(pid: int) -> float:
    """CPU time of the process and of its live descendants (the worker processes)."""
    stats = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:  # gone meanwhile
                continue
            stats[int(entry.name)] = (int(fields[1]), int(fields[11]) + int(fields[12]))  # ppid, utime + stime
    tree, todo = {pid}, [pid]
    while todo:
        parent = todo.pop()
        kids = [p for p, (ppid, _) in stats.items() if ppid == parent and p not in tree]
        tree.update(kids)
        todo += kids
    return sum(stats[p][1] for p in tree if p in stats) / os.sysconf("SC_CLK_TCK")


# ------------------------------------------------------------------ clients


@dataclass
class Result:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    non2xx: int
    socket_errors: int

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def run_wrk(base: str, paths: list[str], connections: int, seconds: float) -> Result:
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "30s",
           "-s", str(HERE / "web_bench.lua"), base, "--", *paths]  # fmt: skip
    done = subprocess.run(cmd, check=False, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    out = done.stdout
    line = next((x for x in reversed(out.splitlines()) if x.startswith("{")), None)
    if line is None:
        raise SystemExit(f"wrk printed no result:\n{out}")
    r = json.loads(line)
    return Result(r["requests"], r["duration_us"] / 1e6, r["p50_us"] / 1e3, r["p99_us"] / 1e3, r["non2xx"],
                  r["connect"] + r["read"] + r["write"] + r["timeout"])  # fmt: skip


def run_python(base: str, paths: list[str], connections: int, seconds: float) -> Result:
    return asyncio.run(_python_load(base, paths, connections, seconds))


async def _python_load(base: str, paths: list[str], connections: int, seconds: float) -> Result:
    import httpx

    times: list[float] = []
    counts = {"non2xx": 0, "socket": 0, "next": 0}
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
        start = time.perf_counter()
        deadline = start + seconds

        async def worker() -> None:
            while time.perf_counter() < deadline:
                path = paths[counts["next"] % len(paths)]
                counts["next"] += 1
                t = time.perf_counter()
                try:
                    r = await client.get(path)
                    counts["non2xx"] += not 200 <= r.status_code < 300
                except httpx.TransportError:
                    counts["socket"] += 1
                times.append(time.perf_counter() - t)

        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - start
    ms = np.array(times or [0.0]) * 1000
    return Result(len(times), elapsed, float(np.percentile(ms, 50)), float(np.percentile(ms, 99)),
                  counts["non2xx"], counts["socket"])  # fmt: skip


# -------------------------------------------------------------------- bench


def endpoints(base: str, info: dict) -> dict[str, list[str]]:
    """Endpoint label -> the paths rotated for it; the JSON search only when the app has one."""
    import httpx

    out = {
        "/ (daily)": ["/"],
        "/paper/{id}": ["/paper/" + quote(pid, safe="/:") for pid in info["paper_ids"]],
        "/search?q=": ["/search?q=" + quote(q) for q in QUERIES],
    }
    if httpx.get(base + "/api/search?q=language", timeout=60).status_code != 404:
        out["/api/search?q="] = ["/api/search?q=" + quote(q) for q in QUERIES]
    return out


def check_paths(base: str, paths: list[str]) -> list[str]:
    """Each path once, in order (opens indexes, loads the query embedder); the non-2xx ones."""
    import httpx

    bad = []
    for path in paths:
        r = httpx.get(base + path, timeout=120)
        if not 200 <= r.status_code < 300:
            bad.append(f"{path} -> {r.status_code}")
    return bad


def bench_corpus(corpus: str, home: Path, info: dict, args, load, workers: int) -> list[tuple]:
    rows = []
    with server(home, workers) as (base, pid, log_path):
        for name, paths in endpoints(base, info).items():
            for problem in check_paths(base, paths):
                print(f"  warm-up: {problem}", flush=True)
            load(base, paths, max(args.concurrency), args.warmup)
            for c in args.concurrency:
                settle(pid)
                cpu = cpu_seconds(pid)
                r = load(base, paths, c, args.seconds)
                cpu_share = (cpu_seconds(pid) - cpu) / r.seconds * 100
                rows.append((corpus, name, workers, c, r, cpu_share))
                print(row_text(rows[-1]), flush=True)
        problems = [x for x in log_path.read_text(errors="replace").splitlines() if "Traceback" in x or "ERROR" in x]
    if problems:
        print(f"  server log {log_path}: {len(problems)} error lines, first: {problems[0]}", flush=True)
    return rows


HEADER = (f"{'corpus':<10} {'endpoint':<16} {'wk':>2} {'conc':>4} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} "
          f"{'srv CPU':>8}")  # fmt: skip


def row_text(row: tuple) -> str:
    corpus, name, workers, c, r, cpu = row
    errors = r.non2xx + r.socket_errors
    note = f" ({r.non2xx} non-2xx, {r.socket_errors} socket)" if errors else ""
    return (f"{corpus:<10} {name:<16} {workers:>2} {c:>4} {r.rps:>8.1f} {r.p50_ms:>8.1f} {r.p99_ms:>8.1f} {errors:>7} "
            f"{cpu:>7.0f}%{note}")  # fmt: skip


def server_stack() -> str:
    """uvicorn's version and what it runs on: httptools/uvloop when installed, else h11/asyncio."""
    import importlib.util

    import uvicorn

    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    return f"uvicorn {uvicorn.__version__} ({http}, {loop} loop)"


def pick_client(choice: str):
    has_wrk = shutil.which("wrk") is not None
    if choice == "wrk" and not has_wrk:
        raise SystemExit("wrk is not installed (apt-get install wrk), use --client python")
    if choice == "wrk" or (choice == "auto" and has_wrk):
        return run_wrk, "wrk (1 thread, N keep-alive connections, bench/web_bench.lua rotating the paths)"
    return run_python, "bounded Python client (asyncio + httpx, N concurrent requests on N connections)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpora", default="demo,synthetic")
    ap.add_argument("--papers", type=int, default=100_000, help="size of the synthetic store")
    ap.add_argument("--seconds", type=int, default=8, help="measured time per endpoint and concurrency")
    ap.add_argument("--warmup", type=int, default=2, help="unmeasured load per endpoint first")
    ap.add_argument("--concurrency", type=lambda s: [int(x) for x in s.split(",")], default=[1, 16])
    ap.add_argument("--workers", type=lambda s: [int(x) for x in s.split(",")], default=[1],
                    help="server worker processes, e.g. 1,2 (each count is a run of its own)")
    ap.add_argument("--client", choices=["auto", "wrk", "python"], default="auto")
    ap.add_argument("--rebuild", action="store_true", help="build the cached homes again")
    args = ap.parse_args()
    started = time.perf_counter()
    corpora = args.corpora.split(",")
    if not set(corpora) <= {"demo", "synthetic"}:
        ap.error("--corpora takes demo and/or synthetic")
    load, described = pick_client(args.client)
    shown = ", ".join(map(str, args.workers))
    print(f"server: papertide serve --no-index on 127.0.0.1: {server_stack()}, {shown} worker process(es), "
          f"API rate limits off ({', '.join(f'{k}={v}' for k, v in SERVER_ENV.items())}); "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} before the run")  # fmt: skip
    print(f"load generator: {described}; {args.warmup:g} s warm-up, then {args.seconds:g} s per row")
    homes = []
    for corpus in corpora:
        n = 43 if corpus == "demo" else args.papers
        t = time.perf_counter()
        home, info, reused = cached_home(corpus, n, args.rebuild)
        how = "reused cached" if reused else f"built in {time.perf_counter() - t:.0f} s:"
        print(f"{corpus}: {how} {home} — {info['papers']:,} papers, {len(info['paper_ids'])} paper pages rotated, "
              f"daily page {info['day']}, {info['votes']} votes, {info['comments']} comments, "
              f"dense index from {info['dense']}", flush=True)  # fmt: skip
        if not reused:
            print("  " + "; ".join(filter(None, [info.get("phases"), info["index"].replace("\n", "; ")])))
        homes.append((corpus, home, info))
    print(f"search queries rotated: {', '.join(QUERIES)} (hybrid mode)\n")
    print(HEADER, flush=True)
    rows = []
    for corpus, home, info in homes:
        for workers in args.workers:
            rows += bench_corpus(corpus, home, info, args, load, workers)
    print("\n" + HEADER)
    for row in rows:
        print(row_text(row))
    total = sum(r.non2xx + r.socket_errors for *_, r, _ in rows)
    print(f"errors (non-2xx responses + socket errors) in all rows: {total}; "
          f"load average {os.getloadavg()[0]:.1f} after the run (2.0 = both cores busy); "
          f"{time.perf_counter() - started:.0f} s in all")  # fmt: skip


if __name__ == "__main__":
    main()
