"""Load test: 200 concurrent users for 60 s against papertide on PostgreSQL and on SQLite.

Two scenarios in one run, on the same corpus and the same loopback, one after the other:

- ``postgresql``: a real throwaway PostgreSQL server (tests/pgcluster.py) set up by the
  README's recipe: a C-collated database, ``papertide db copy --to URL`` from the SQLite
  home, ``papertide index`` (fills the pgvector table when the server has the extension),
  then TWO ``papertide serve`` processes (one uvicorn worker each, their own ports, the
  same home and database, ``database_pool`` connections each) and one ``papertide
  worker`` ticking meanwhile (index catch-up and submissions every few seconds; no
  harvest and no mail, which would need the network and an SMTP server);
- ``sqlite``: the same corpus in the home's SQLite file, ONE ``papertide serve``.

The users (bench/load_bench_clients.py) are dealt round-robin over the servers; each
loops over browsing (daily page, paper pages, trending), searching (search page, JSON
search) and voting/unvoting through the JSON API with its own token. Reported per
scenario: requests/s overall and per kind, p50/p99 latency per kind, errors (every
non-2xx answer, socket error and timeout: none is expected), the requests each server
answered, CPU of each server process, of PostgreSQL and of the load generator (100% =
one core; the 2-core machine runs the load generator too), and the exact check of the
votes: once the servers have stopped, every voted paper's count in the store must equal
the seeded votes plus the votes the clients' final confirmed states imply, and every
load user's votes must be exactly those. API rate limits are off (web_bench.SERVER_ENV)
unless ``--rate-limits``: then they are counted in the store and a 429 is not an error.

The corpus is built once and cached (bench/load_bench_setup.py); each run works on copies.
Results: a markdown table side by side, and JSON in bench/out/.

    python bench/load_bench.py [--seconds 60] [--warmup 5] [--clients 200] [--papers 10000]
                               [--procs 2] [--scenarios postgresql,sqlite] [--pool 20]
                               [--mix daily=12,paper=25,...] [--rate-limits] [--keep] [--rebuild]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote

import numpy as np

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))  # pgcluster

from load_bench_clients import KINDS, MIX, Plan, Share, Window, run_load  # noqa: E402
from load_bench_setup import (Processes, bench_root, cached_home, make_users, scenario_home, server_env,  # noqa: E402
                              tracebacks, worker_ticks)
from web_bench import QUERIES, check_paths, cpu_seconds, server_stack  # noqa: E402

from papertide.config import load_config  # noqa: E402
from papertide.store import open_store  # noqa: E402

SCENARIOS = ("postgresql", "sqlite")
WORKER_EVERY = 5.0  # seconds between the worker's ticks
LABELS = {"daily": "daily `/`", "paper": "paper `/paper/{id}`", "trending": "`/trending`", "search": "`/search?q=`",
          "api_search": "`/api/search?q=`", "vote": "vote `POST /api/papers/{id}/vote`",
          "unvote": "unvote `DELETE …/vote`"}  # fmt: skip
EXTRA_QUERIES = ["neural", "large language models evaluation", "graph", '"reinforcement learning"']


# --------------------------------------------------------------- scenarios


def run_scenario(name: str, cache: Path, info: dict, work: Path, args) -> dict:
    """Set the scenario up, load it, stop it, check the votes: its summary."""
    cluster = None
    try:
        t = time.perf_counter()
        if name == "postgresql":
            cluster, home, env, setup = setup_postgresql(cache, work, args)
        else:
            home, env, setup = scenario_home(cache, work / name, with_sqlite=True), {}, "SQLite copy of the cached home"
        config = load_config(home, env=env)
        with open_store(config) as store:
            users = make_users(store, args.clients)
            baseline = store.community.votes(info["listed"])
        print(f"  {name}: {setup}; {len(users)} users with API tokens; "
              f"{time.perf_counter() - t:.0f} s of setup", flush=True)  # fmt: skip
        procs = Processes()
        try:
            bases, pids = start_processes(procs, home, env, cluster, args)
            logs = procs.logs()
            share, cpu = load(bases, users, info, pids, args)
        finally:
            statuses = procs.stop_all()
        with open_store(config) as store:  # the servers have stopped: what the store holds now is final
            votes = check_votes(store, users, info["listed"], baseline, share.states, share.last_kind)
    finally:
        if cluster is not None:
            cluster.stop()
    summary = summarize(name, share, args.seconds, cpu, votes, bases, logs, statuses)
    summary["rate_limits"] = args.rate_limits
    return summary


def start_processes(procs: Processes, home: Path, env: dict[str, str], cluster, args) -> tuple[list[str], dict]:
    """The scenario's app servers (two on PostgreSQL, one on SQLite) and, on PostgreSQL, the
    worker: (base URLs, {name: pid} of every process whose CPU is measured)."""
    bases, pids = [], {}
    for name in [f"serve{k + 1}" for k in range(2 if cluster is not None else 1)]:
        base, pids[name] = procs.serve(name, home, server_env(env, rate_limits=args.rate_limits))
        bases.append(base)
    if cluster is not None:
        worker_env = server_env(env | {"PAPERTIDE_DATABASE_POOL": "4"})
        pids["worker"] = procs.worker("worker", home, worker_env, WORKER_EVERY)
        pids["postgres"] = int((cluster.data / "postmaster.pid").read_text().split()[0])
    return bases, pids


def setup_postgresql(cache: Path, work: Path, args):
    """A throwaway server and the README's recipe: a C-collated database, ``papertide db copy
    --to URL`` from a copy of the cached home, ``papertide index`` (the pgvector table)."""
    from pgcluster import start_cluster

    cluster = start_cluster()
    try:
        home = scenario_home(cache, work / "postgresql", with_sqlite=True)
        url = cluster.new_database("papertide_load")
        copied = cli(home, {}, "db", "copy", "--to", url)
        for path in home.glob("papertide.db*"):  # from here on the store is the server's database only
            path.unlink()
        env = {"PAPERTIDE_DATABASE_URL": url, "PAPERTIDE_DATABASE_POOL": str(args.pool)}
        indexed = cli(home, env, "index")
    except BaseException:
        cluster.stop()
        raise
    copy_lines = [x for x in copied.splitlines() if x.startswith(("copied", "watermark", "verified"))]
    setup = (f"PostgreSQL {cluster.version} ({cluster.kind}); db copy: {'; '.join(copy_lines)}; "
             f"index: {'; '.join(indexed.splitlines())}")  # fmt: skip
    return cluster, home, env, setup


def cli(home: Path, env: dict[str, str], *args: str) -> str:
    """Run ``papertide --home HOME ARGS`` with ``env``'s settings: its standard output (SystemExit on failure)."""
    cmd = [sys.executable, "-m", "papertide", "--home", str(home), *args]
    done = subprocess.run(cmd, env=server_env(env), capture_output=True, text=True, timeout=600)
    if done.returncode:
        raise SystemExit(f"papertide {' '.join(args[:2])} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return done.stdout.strip() or done.stderr.strip()


def load(bases: list[str], users: list[tuple[int, str]], info: dict, pids: dict[str, int], args) -> tuple[Share, dict]:
    """Warm every server, then run the clients: (their share, CPU % per process over the measured window)."""
    queries = QUERIES + EXTRA_QUERIES
    for base in bases:
        q = quote(queries[0])
        warm = ["/", "/trending", f"/paper/{info['listed'][0]}", f"/search?q={q}", f"/api/search?q={q}"]
        for problem in check_paths(base, warm):
            print(f"  warm-up: {problem}", flush=True)
    plan = Plan(servers=bases, users=users, paper_ids=info["browsed"], vote_ids=info["listed"], queries=queries,
                warmup=args.warmup, seconds=args.seconds, rate_limits=args.rate_limits, mix=args.mix)  # fmt: skip
    samplers: list[CpuSampler] = []

    def started(window: Window) -> None:
        samplers.append(CpuSampler(pids, window.measure_from, window.until))
        samplers[0].start()

    share = run_load(plan, args.procs, started)
    samplers[0].join()
    cpu = samplers[0].percent()
    cpu["load generator"] = share.cpu_seconds / (args.warmup + args.seconds) * 100  # warm-up included
    return share, cpu


class CpuSampler(threading.Thread):
    """CPU seconds of each process (with its children) at the measured window's start and end."""

    def __init__(self, pids: dict[str, int], at: float, until: float) -> None:
        super().__init__(daemon=True)
        self.pids, self.at, self.until = pids, at, until
        self.before: dict[str, float] = {}
        self.after: dict[str, float] = {}

    def run(self) -> None:
        time.sleep(max(0.0, self.at - time.time()))
        self.before = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        time.sleep(max(0.0, self.until - time.time()))
        self.after = {name: cpu_seconds(pid) for name, pid in self.pids.items()}

    def percent(self) -> dict[str, float]:
        span = self.until - self.at
        return {name: (self.after.get(name, 0.0) - self.before.get(name, 0.0)) / span * 100 for name in self.pids}


# ------------------------------------------------------------------- votes


def check_votes(store, users: list[tuple[int, str]], paper_ids: list[str], baseline: dict[str, int],
                states: dict[tuple[int, str], bool | None], last_kind: dict[tuple[int, str], str]) -> dict:  # fmt: skip
    """The store's votes against the clients' confirmed final states (per paper and per user)."""
    counts = store.community.votes(paper_ids)
    mine: dict[int, set[str]] = defaultdict(set)
    unsure: dict[int, set[str]] = defaultdict(set)
    for (uid, pid), state in states.items():
        if state is None:
            unsure[uid].add(pid)
        elif state:
            mine[uid].add(pid)
    sure_per_paper = Counter(pid for pids in mine.values() for pid in pids)
    unsure_per_paper = Counter(pid for pids in unsure.values() for pid in pids)
    mismatches = []
    for pid in paper_ids:
        low = baseline.get(pid, 0) + sure_per_paper[pid]
        high = low + unsure_per_paper[pid]
        if not low <= counts[pid] <= high:
            want = str(low) if low == high else f"{low}-{high}"
            mismatches.append(f"paper {pid}: the store counts {counts[pid]}, the clients imply {want}")
    carried_out = 0  # uncertain pairs whose failed last request the store shows done anyway
    for uid, _ in users:
        held = store.community.voted(uid, paper_ids)
        carried_out += sum((pid in held) == (last_kind[(uid, pid)] == "vote") for pid in unsure[uid])
        held -= unsure[uid]
        if held != mine[uid]:
            mismatches.append(f"user {uid}: the store has {sorted(held - mine[uid])} too many, "
                              f"lacks {sorted(mine[uid] - held)}")  # fmt: skip
    return {"exact": not mismatches and not unsure_per_paper, "papers": len(paper_ids),
            "votes": sum(counts.values()), "load_votes": sum(sure_per_paper.values()),
            "seeded_votes": sum(baseline.values()), "pairs": len(states),
            "uncertain_pairs": sum(unsure_per_paper.values()), "uncertain_carried_out": carried_out,
            "mismatches": mismatches}  # fmt: skip


def votes_text(v: dict) -> str:
    if v["mismatches"]:
        return f"{len(v['mismatches'])} MISMATCHES (first: {v['mismatches'][0]})"
    if v["uncertain_pairs"]:
        return (f"consistent; {v['uncertain_pairs']} (user, paper) pairs uncertain after failed requests, "
                f"the store shows {v['uncertain_carried_out']} of those requests carried out ({v['votes']} votes)")
    return f"exact ({v['papers']} papers, {v['votes']} votes)"


# ------------------------------------------------------------------ report


def summarize(name: str, share: Share, seconds: float, cpu: dict, votes: dict, bases: list[str],
              logs: dict, statuses: dict) -> dict:  # fmt: skip
    kinds = {}
    for kind in KINDS:
        ms = np.array(share.latencies.get(kind, [])) * 1000
        kinds[kind] = {"requests": len(ms), "rps": len(ms) / seconds,
                       "p50_ms": float(np.percentile(ms, 50)) if len(ms) else None,
                       "p99_ms": float(np.percentile(ms, 99)) if len(ms) else None}  # fmt: skip
    problems = {}
    for proc, log in logs.items():
        count, found = tracebacks(log)
        if count:
            problems[proc] = {"log": str(log), "error_lines": count, "tracebacks": found}
    ticks, tick_errors = worker_ticks(logs["worker"]) if "worker" in logs else (0, [])
    if tick_errors:
        problems.setdefault("worker", {"log": str(logs["worker"]), "error_lines": 0, "tracebacks": []})
        problems["worker"]["error_lines"] += len(tick_errors)
        problems["worker"]["tracebacks"] += tick_errors[:3]
    requests = sum(k["requests"] for k in kinds.values())
    return {"scenario": name, "servers": len(bases), "seconds": seconds, "requests": requests,
            "rps": requests / seconds, "kinds": kinds, "errors": sum(share.errors.values()),
            "rate_limited": dict(share.limited),
            "error_kinds": dict(share.errors.most_common()), "bad_vote_answers": share.bad_answers[:20],
            "failures": share.failures,
            "per_server": [share.per_server.get(b, 0) for b in bases], "cpu_percent": cpu, "votes": votes,
            "votes_text": votes_text(votes), "server_log_problems": problems, "exit_statuses": statuses,
            "requests_including_warmup": share.requests_all,
            "worker_ticks": ticks}  # fmt: skip


def fmt(x: float | None, digits: int = 0) -> str:
    return "—" if x is None else f"{x:,.{digits}f}"


def table_cells(r: dict) -> list[tuple[str, str]]:
    """(row label, this scenario's cell) for the side-by-side table."""
    cells = [("requests/s, all kinds", fmt(r["rps"], 1))]
    for kind in KINDS:
        k = r["kinds"][kind]
        cells.append((LABELS[kind], f"{fmt(k['rps'], 1)} req/s · p50 {fmt(k['p50_ms'])} · p99 {fmt(k['p99_ms'])} ms"))
    cpu = r["cpu_percent"]
    servers = " + ".join(f"{fmt(v)}%" for k, v in cpu.items() if k.startswith("serve"))
    backing = " / ".join(f"{fmt(cpu[k])}%" for k in ("postgres", "worker") if k in cpu) or "—"
    log_errors = sum(p["error_lines"] for p in r["server_log_problems"].values())
    return cells + [
        ("errors (non-2xx, socket, timeout)", str(r["errors"])),
        ("429 answers (expected with --rate-limits)",
         str(sum(r["rate_limited"].values())) if r["rate_limits"] else "— (API rate limits off)"),
        ("votes after the run", r["votes_text"]),
        ("requests answered per server", " / ".join(f"{n:,}" for n in r["per_server"])),
        ("worker ticks during the run", str(r["worker_ticks"]) if "worker" in cpu else "—"),
        ("CPU: app servers", servers),
        ("CPU: PostgreSQL / worker", backing),
        ("CPU: load generator", f"{fmt(cpu['load generator'])}%"),
        ("error lines in the server and worker logs", str(log_errors)),
    ]


def table(results: dict[str, dict], args) -> str:
    head = {"postgresql": f"PostgreSQL: 2 × serve + worker, pool {args.pool}/server", "sqlite": "SQLite: 1 × serve"}
    columns = [table_cells(r) for r in results.values()]
    lines = ["| | " + " | ".join(head[n] for n in results) + " |", "|---|" + "---|" * len(results)]
    for i, (label, _) in enumerate(columns[0]):
        lines.append(f"| {label} | " + " | ".join(column[i][1] for column in columns) + " |")
    return "\n".join(lines)


def print_problems(results: dict[str, dict]) -> None:
    for name, r in results.items():
        for what, n in list(r["error_kinds"].items())[:10]:
            print(f"{name}: {n} × {what}")
        for f in r["failures"][:10]:
            print(f"{name}: failed request: {f}")
        for line in r["bad_vote_answers"][:5]:
            print(f"{name}: contradicting vote answer: {line}")
        for line in r["votes"]["mismatches"][:20]:
            print(f"{name}: vote mismatch: {line}")
        for proc, p in r["server_log_problems"].items():
            print(f"{name}: {proc} logged {p['error_lines']} error lines ({p['log']}); first tracebacks:")
            for tb in p["tracebacks"]:
                print("    " + tb.replace("\n", "\n    "))


# -------------------------------------------------------------------- main


def interrupt(signum, frame) -> None:  # noqa: ARG001
    raise KeyboardInterrupt(f"signal {signum}")


def parse_mix(text: str) -> dict[str, float]:
    """``vote=70,paper=30`` -> {"vote": 70.0, "paper": 30.0}; kinds from MIX, weights >= 0, some > 0."""
    mix = {}
    for part in text.split(","):
        kind, _, weight = part.partition("=")
        if kind.strip() not in MIX:
            raise argparse.ArgumentTypeError(f"unknown kind {kind.strip()!r}: use {', '.join(MIX)}")
        try:
            mix[kind.strip()] = float(weight)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{part!r}: the weight must be a number") from None
    if any(w < 0 for w in mix.values()) or not sum(mix.values()):
        raise argparse.ArgumentTypeError("weights must not be negative and must not all be 0")
    return mix


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60, help="measured load per scenario")
    ap.add_argument("--warmup", type=float, default=5, help="unmeasured load first (votes still count)")
    ap.add_argument("--clients", type=int, default=200, help="concurrent users (each its own account and token)")
    ap.add_argument("--papers", type=int, default=10_000, help="synthetic papers in the corpus")
    ap.add_argument("--procs", type=int, default=2, help="load generator processes")
    ap.add_argument("--pool", type=int, default=20, help="PostgreSQL connections per app server (database_pool)")
    ap.add_argument("--scenarios", default=",".join(SCENARIOS))
    ap.add_argument("--mix", type=parse_mix, default=dict(MIX),
                    help=f"request kinds and weights, default {','.join(f'{k}={v}' for k, v in MIX.items())}")
    ap.add_argument("--rate-limits", action="store_true",
                    help="keep the API's default rate limits on (429s are then counted apart, not as errors)")
    ap.add_argument("--keep", action="store_true", help="keep the run's homes and logs")
    ap.add_argument("--rebuild", action="store_true", help="build the cached corpus again")
    args = ap.parse_args()
    args.scenarios = args.scenarios.split(",")
    if not set(args.scenarios) <= set(SCENARIOS) or not args.scenarios:
        ap.error(f"--scenarios takes {' and/or '.join(SCENARIOS)}")
    if args.clients < 1 or args.procs < 1 or args.seconds <= 0 or args.papers < 2500:
        ap.error("--clients and --procs must be at least 1, --seconds above 0, --papers at least 2500")
    return args


def main() -> int:
    args = parse_args()
    signal.signal(signal.SIGTERM, interrupt)
    started = time.perf_counter()
    t = time.perf_counter()
    cache, info, reused = cached_home(args.papers, args.rebuild)
    how = "reused cached" if reused else f"built in {time.perf_counter() - t:.0f} s:"
    print(f"corpus: {how} {cache} — {info['papers']:,} papers, {len(info['listed'])} listed on {info['day']} "
          f"(voted on), {len(info['browsed'])} paper pages browsed, {info['votes']} seeded votes, "
          f"{info['comments']} comments; dense vectors synthetic, queries embedded by the real model")  # fmt: skip
    limits = "on (429s counted apart)" if args.rate_limits else "off"
    mix = ", ".join(f"{k} {v:g}" for k, v in args.mix.items())
    print(f"servers: papertide serve --no-index, {server_stack()}, API rate limits {limits}; "
          f"load: {args.clients} clients in {args.procs} process(es) (asyncio + httpx, one keep-alive connection "
          f"each), no think time, mix {mix} (a quarter of the votes are unvotes once a client has votes); "
          f"{args.warmup:g} s warm-up + {args.seconds:g} s measured; {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f} before", flush=True)  # fmt: skip
    work = bench_root() / f"run-{os.getpid()}"
    results: dict[str, dict] = {}
    try:
        for name in args.scenarios:
            results[name] = run_scenario(name, cache, info, work, args)
            r = results[name]
            print(f"  {name}: {r['rps']:.1f} req/s, {r['errors']} errors, votes {r['votes_text']}", flush=True)
    finally:
        keep = any(r["errors"] or r["server_log_problems"] or r["votes"]["mismatches"] for r in results.values())
        if keep or args.keep:
            print(f"logs kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print("\n" + table(results, args) + "\n")
    print_problems(results)
    out = write_json(results, args, info, time.perf_counter() - started)
    print(f"load average {os.getloadavg()[0]:.1f} after; {time.perf_counter() - started:.0f} s in all; JSON: {out}")
    bad = any(r["errors"] or r["votes"]["mismatches"] or not r["votes"]["exact"] for r in results.values())
    return 1 if bad else 0


def write_json(results: dict, args, info: dict, seconds: float) -> Path:
    out_dir = HERE / "out"
    out_dir.mkdir(exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    path = out_dir / f"load_bench-{stamp}.json"
    corpus = {k: info[k] for k in ("papers", "day", "votes", "comments", "watermark")}
    payload = {"command": " ".join([Path(sys.executable).name, *sys.argv]), "args": vars(args), "corpus": corpus,
               "server": server_stack(), "cores": os.cpu_count(), "seconds_in_all": round(seconds, 1),
               "scenarios": results}  # fmt: skip
    path.write_text(json.dumps(payload, indent=1))
    return path


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt as e:
        sys.exit(f"interrupted ({e or 'Ctrl+C'}): every server, worker and PostgreSQL process of the run was stopped")
