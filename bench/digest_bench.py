"""How long one ``digest send`` takes for 10,000 subscribers, through real SMTP on loopback.

Issue 6 asks for 10,000 digests within 5 minutes on this 2-core machine. This bench
builds a store that looks like a busy day, then times one :class:`DigestRun` with a
real :class:`~papertide.mailer.Mailer` (``mail_rate`` 0: no pacing) delivering to an
aiosmtpd sink in a *separate process* (so the sink's CPU does not share the sender's
GIL), checks that every address got exactly one message, and runs again to show that
nothing is sent twice.

The store (built once per day and cached under ``$BENCH_TMP``, not timed):

- papers: the 43 demo papers and the 200 real arXiv records of
  ``shared/data/formats/kaggle-arxiv-metadata-snapshot-200.jsonl``, listed yesterday,
  and synthetic papers (``bench/synth.py``) submitted every ~7 minutes over the 15 days
  before today, each listed on the day it was submitted; so yesterday (the period a
  daily digest sends now) lists ~450 papers and last ISO week ~1,440. Indexed with the
  real embedder (``update_index``), so saved searches and "for you" run as in production;
- ``--users`` accounts, each with 1-2 topics (categories or archives, weighted by how
  many listed papers they have); a user upvotes a paper in their topics with a small
  probability scaled by the paper's appeal (Pareto) and their activity, at a time on the
  paper's listing day (votes are stamped by the bench, not "now", so trending has votes
  in its window); every user ends with at least one upvote;
- ``--subscribers`` confirmed subscriptions: 80% daily, 20% weekly; 60% trending, 40%
  one to three topics, 20% one to three saved searches from a pool of 200 queries drawn
  from the listed titles (words, "phrases", cat: filters, exclusions), 15% "for you"
  each tied to its own account (which has upvotes); one with none of these gets trending.

Reported: setup seconds (not counted), digests built, sent and empty, the run's seconds
and messages/s, p50/p99 per digest of build, render, SMTP hand-off and send-log time
(claim + finish), build time by section kind, peak RSS of the sending process, and the
sink's count (must equal the sent count, one message per sent address, none to an empty
digest's). The timed run and the second run each run in a fresh process.

    python bench/digest_bench.py [--subscribers 10000] [--users 1500] [--rebuild]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT)]

import synth  # noqa: E402

BUILD_VERSION = 1  # bump when the recipe below changes: cached homes are rebuilt
READY = "digest-bench.json"
SNAPSHOT = "formats/kaggle-arxiv-metadata-snapshot-200.jsonl"
SYNTH_DAYS = 15
QUERIES = 200
TARGET_SECONDS = 300.0
STOP = frozenset("a an and are as at be by for from in into is it of on or our that the their this to we with "
                 "which via using based over under can new its not than".split())  # fmt: skip
_TO = re.compile(rb"^To: *(.*?)\r?$", re.M | re.I)
_MID = re.compile(rb"^Message-ID: *(.*?)\r?$", re.M | re.I)


# ------------------------------------------------------------------ the store


def shared_data() -> Path:
    for base in (ROOT.parent / "shared" / "data", Path("/work/shared/data")):
        if (base / SNAPSHOT).exists():
            return base
    raise SystemExit(f"cannot find shared/data/{SNAPSHOT} beside the checkout")


def stamp(day: date, rng: random.Random) -> str:
    """A time on ``day`` in the store's format."""
    t = datetime.combine(day, datetime.min.time(), timezone.utc) + timedelta(seconds=rng.randrange(86_400))
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@contextmanager
def votes_stamped():
    """Votes take the time in ``clock[0]`` instead of now (the bench replays past days)."""
    import papertide.store.community_sql as cs

    clock, original = [""], cs.now_iso
    cs.now_iso = lambda: clock[0]
    try:
        yield clock
    finally:
        cs.now_iso = original


def ingest_corpus(store, home: Path, today: date) -> dict[str, date]:
    """Demo + real snapshot papers (listed yesterday) and synthetic ones (listed the day
    they were submitted): paper id -> listing day."""
    from papertide.ingest import ingest_demo, ingest_files

    yesterday = today - timedelta(days=1)
    ingest_demo(store)
    ingest_files(store, [shared_data() / SNAPSHOT], format="arxiv-snapshot")
    start = datetime.combine(today - timedelta(days=SYNTH_DAYS), datetime.min.time(), timezone.utc)
    n = SYNTH_DAYS * 24 * 60 // 7 - 1  # 7 minutes apart (synth.py), all before today
    snapshot = home / "synthetic.jsonl"
    with open(snapshot, "w", encoding="utf-8") as out:
        for rec in synth.records(n, seed=11, start=start):
            out.write(json.dumps(rec, ensure_ascii=False) + "\n")
    ingest_files(store, [snapshot], format="arxiv-snapshot")
    snapshot.unlink()
    listing: dict[str, date] = {}
    for p in store.list_papers(limit=1_000_000, order="submitted"):
        day = date.fromisoformat(p.submitted[:10]) if p.submitted else yesterday
        listing[p.id] = day if start.date() <= day < today else yesterday
    for pid, day in listing.items():
        store.community.list_paper(pid, day.isoformat())
    return listing


def topics_of(categories: list[str]) -> set[str]:
    return {t for c in categories for t in (c, c.split(".", 1)[0])}


def seed_users(store, papers: dict, listing: dict[str, date], n_users: int, rng: random.Random) -> dict:
    """Accounts with topics, and upvotes stamped on the voted paper's listing day."""
    com = store.community
    weight = Counter(t for p in papers.values() for t in topics_of(p.categories))
    topics, weights = list(weight), list(weight.values())
    users: dict[int, tuple[set[str], float]] = {}
    for i in range(n_users):
        uid = com.create_user(f"reader{i:05d}", f"reader{i:05d}@example.org", "bench-account-no-login").id
        users[uid] = (set(rng.choices(topics, weights, k=rng.choice([1, 1, 2]))), rng.lognormvariate(0, 0.8))
    by_topic: dict[str, list[int]] = {}
    for uid, (wanted, _) in users.items():
        for t in wanted:
            by_topic.setdefault(t, []).append(uid)
    votes = 0
    with votes_stamped() as clock:
        for pid, p in papers.items():
            appeal = min(rng.paretovariate(1.6), 40.0)
            fans = {u for t in topics_of(p.categories) for u in by_topic.get(t, ())}
            for uid in fans:
                if rng.random() < 0.004 * appeal * users[uid][1]:
                    clock[0] = stamp(listing[pid], rng)
                    com.vote(uid, pid)
                    votes += 1
        for uid, (wanted, _) in users.items():
            if not com.user_votes(uid):
                mine = [pid for pid, p in papers.items() if topics_of(p.categories) & wanted] or list(papers)
                pid = rng.choice(mine)
                clock[0] = stamp(listing[pid], rng)
                com.vote(uid, pid)
                votes += 1
    return {"users": n_users, "ids": list(users), "votes": votes, "topics": topics, "weights": weights}


def query_pool(papers: dict, rng: random.Random) -> list[str]:
    """~200 saved searches from words of the listed titles."""
    pool: dict[str, None] = {}
    titles = [p.title for p in papers.values()]
    cats = sorted({c for p in papers.values() for c in p.categories})
    while len(pool) < QUERIES:
        words = [w for w in re.findall(r"[A-Za-z][A-Za-z-]{2,}", rng.choice(titles)) if w.lower() not in STOP]
        if not words:
            continue
        n = rng.choice([1, 2, 2, 3])
        k = rng.randrange(max(1, len(words) - n + 1))
        q = " ".join(words[k : k + n]).lower()
        roll = rng.random()
        if roll < 0.25 and " " in q:
            q = f'"{q}"'
        elif roll < 0.35:
            q = f"{q} cat:{rng.choice(cats)}"
        elif roll < 0.40:
            q = f"{q} -{rng.choice(words).lower()}"
        pool[q] = None
    return list(pool)


def subscribe_all(store, n: int, users: list[int], seeded: dict, queries: list[str], rng: random.Random) -> Counter:
    """``n`` confirmed subscriptions with the mix the module docstring gives."""
    mailing, mix = store.mailing, Counter()
    readers = rng.sample(users, min(len(users), int(n * 0.15)))
    for_you_at = set(rng.sample(range(n), len(readers)))
    topics, weights = seeded["topics"], seeded["weights"]
    for i in range(n):
        every = "week" if rng.random() < 0.2 else "day"
        trending = rng.random() < 0.6
        cats = tuple(dict.fromkeys(rng.choices(topics, weights, k=rng.randint(1, 3)))) if rng.random() < 0.4 else ()
        searches = tuple(rng.sample(queries, rng.randint(1, 3))) if rng.random() < 0.2 else ()
        user = readers.pop() if i in for_you_at else None
        if not (trending or cats or searches or user):
            trending = True
        sub = mailing.subscribe(f"subscriber{i:05d}@example.org", every=every, trending=trending, categories=cats,
                                searches=searches, for_you=user is not None, user_id=user)  # fmt: skip
        mailing.confirm(sub.id)
        mix.update([every] + ["trending"] * trending + ["categories"] * bool(cats) + ["searches"] * bool(searches)
                   + ["for_you"] * (user is not None))  # fmt: skip
    return mix


def build_home(home: Path, args) -> dict:
    from papertide.config import load_config
    from papertide.index import update_index
    from papertide.store import open_store

    today = datetime.now(timezone.utc).date()
    rng = random.Random(args.seed)
    config = load_config(home, env={})
    seconds: dict[str, float] = {}
    t = time.perf_counter()
    with open_store(config) as store:
        listing = ingest_corpus(store, home, today)
        papers = store.get_many(list(listing))
        seconds["papers"] = time.perf_counter() - t
        t = time.perf_counter()
        seeded = seed_users(store, papers, listing, args.users, rng)
        seconds["users+votes"] = time.perf_counter() - t
        t = time.perf_counter()
        report = update_index(store, config)
        seconds["index"] = time.perf_counter() - t
        t = time.perf_counter()
        yesterday = today - timedelta(days=1)
        yesterdays = {p: papers[p] for p, d in listing.items() if d == yesterday}
        mix = subscribe_all(store, args.subscribers, seeded["ids"], seeded, query_pool(yesterdays, rng), rng)
        seconds["subscriptions"] = time.perf_counter() - t
    from papertide.digest import last_complete_period, period_of

    last_week = last_complete_period("week")
    return {"day": str(today), "papers": len(listing),
            "listed_yesterday": sum(d == yesterday for d in listing.values()),
            "listed_last_week": sum(period_of("week", d) == last_week for d in listing.values()),
            "users": seeded["users"], "votes": seeded["votes"], "subscribers": args.subscribers, "mix": dict(mix),
            "index": report.summary(), "setup": {k: round(v, 1) for k, v in seconds.items()}}  # fmt: skip


def cached_home(args) -> tuple[Path, dict, bool]:
    today = datetime.now(timezone.utc).date()
    root = Path(os.environ.get("BENCH_TMP") or tempfile.gettempdir()) / "papertide-digest-bench"
    home = root / f"{today}-{args.subscribers}-{args.users}-s{args.seed}-v{BUILD_VERSION}"
    ready = home / READY
    if ready.exists() and not args.rebuild:
        return home, json.loads(ready.read_text()), True
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    t = time.perf_counter()
    info = build_home(home, args)
    info["build_seconds"] = round(time.perf_counter() - t, 1)
    ready.write_text(json.dumps(info))
    return home, info, False


# ------------------------------------------------------------------- the sink


def sink_main(conn) -> None:
    """A lean aiosmtpd server (its own process): counts messages per envelope recipient."""
    import logging
    import resource
    import socket

    from aiosmtpd.controller import Controller

    logging.getLogger("mail.log").setLevel(logging.WARNING)

    class Counting:
        def __init__(self) -> None:
            self.received, self.bytes, self.mismatched = Counter(), 0, 0
            self.message_ids: set[bytes] = set()

        async def handle_DATA(self, server, session, envelope):
            data = envelope.original_content or envelope.content
            head = data.split(b"\r\n\r\n", 1)[0]
            to, mid = _TO.search(head), _MID.search(head)
            for rcpt in envelope.rcpt_tos:
                self.received[rcpt.lower()] += 1
                if to is None or to.group(1).strip().lower() != rcpt.lower().encode():
                    self.mismatched += 1
            if mid:
                self.message_ids.add(mid.group(1).strip())
            self.bytes += len(data)
            return f"250 2.0.0 Ok: queued as B{sum(self.received.values())}"

    handler = Counting()
    with socket.socket() as probe:  # aiosmtpd's Controller cannot start on port 0: ask the OS for a free one
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    conn.send(controller.port)
    while True:
        command = conn.recv()
        if command == "stats":
            cpu = resource.getrusage(resource.RUSAGE_SELF)
            conn.send({"received": dict(handler.received), "bytes": handler.bytes, "mismatched": handler.mismatched,
                       "message_ids": len(handler.message_ids), "cpu": cpu.ru_utime + cpu.ru_stime})  # fmt: skip
        else:
            controller.stop()
            conn.send("stopped")
            return


# ------------------------------------------------------------- the timed run


def send_main(home: Path, smtp_url: str) -> dict:
    """One ``DigestRun`` with timings per digest (run in a fresh process)."""
    import papertide.digest_send as ds
    from papertide.config import load_config
    from papertide.index import SearchIndex
    from papertide.mailer import Mailer, SmtpSettings
    from papertide.store import open_store
    from papertide.web.auth import load_or_create_secret

    t0 = time.perf_counter()
    config = replace(load_config(home, env={}), smtp_url=smtp_url, mail_rate=0.0)
    store = open_store(config)
    index = SearchIndex.open(config, store)
    secret = load_or_create_secret(config.home)
    opened = time.perf_counter() - t0
    rows: list[dict] = []
    current: dict = {}

    def timed(name, fn):
        def wrapper(*a, **kw):
            t = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                current[name] = current.get(name, 0.0) + time.perf_counter() - t
        return wrapper

    with Mailer(SmtpSettings.from_url(config.smtp_url), rate=config.mail_rate) as mailer:
        run = ds.DigestRun(store, index, config, secret, mailer=mailer)
        b = run.builder
        b.build, b.trending, b.for_you, b.search = (timed("build", b.build), timed("trending", b.trending),
                                                    timed("for_you", b.for_you), timed("search", b.search))
        mailer.send = timed("smtp", mailer.send)
        ds.render = timed("render", ds.render)
        one = run._one

        def one_timed(sub, period):
            current.clear()
            t = time.perf_counter()
            try:
                return one(sub, period)
            finally:
                rows.append({**current, "total": time.perf_counter() - t, "every": sub.every})

        run._one = one_timed
        if "OPENBLAS_NUM_THREADS" not in os.environ:
            from papertide.text.features import one_blas_thread

            one_blas_thread()  # as `papertide digest send` and the worker do
        cpu = time.process_time()
        report = run.run()
        cpu = time.process_time() - cpu
        connections = mailer.connections
    store.close()
    return {"cpu": cpu, "load": os.getloadavg(), "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS", "1 (as digest send)"),
            "report": {k: getattr(report, k) for k in ("sent", "empty", "deferred", "failed", "skipped", "stopped",
                                                       "seconds")},
            "errors": report.errors[:5], "opened": opened, "rows": rows, "rss_mib": peak_rss_mib(),
            "connections": connections, "mail_rate": config.mail_rate}  # fmt: skip


def peak_rss_mib() -> float:
    """This process image's peak RSS (VmHWM). Not ru_maxrss: Linux carries that across
    execve, so a child started by a big parent would report the parent's size."""
    line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def send_child(home: Path, smtp_url: str, blas_threads: int | None) -> dict:
    out = home / "send-result.json"
    env = dict(os.environ)
    if blas_threads:
        env["OPENBLAS_NUM_THREADS"] = str(blas_threads)
    subprocess.run([sys.executable, __file__, "--send-child", str(home), "--smtp", smtp_url], check=True, env=env)
    return json.loads(out.read_text())


# ------------------------------------------------------------------ the report


def pct(values: list[float], q: float) -> float:
    import numpy as np

    return float(np.percentile(values, q)) * 1000 if values else 0.0


def summary_rows(result: dict) -> list[tuple[str, str]]:
    rows = result["rows"]
    sent = [r for r in rows if "smtp" in r]
    for r in rows:
        parts = sum(r.get(k, 0.0) for k in ("build", "render", "smtp"))
        r["log"] = max(0.0, r["total"] - parts)
    rep = result["report"]
    out = [("digests built", f"{len(rows)}"), ("sent / empty / deferred / failed / skipped",
            f"{rep['sent']} / {rep['empty']} / {rep['deferred']} / {rep['failed']} / {rep['skipped']}"),
           ("run seconds (DigestRun.run)", f"{rep['seconds']:.1f}"),
           ("messages/s", f"{rep['sent'] / rep['seconds']:.1f}" if rep["seconds"] else "-"),
           ("opening store + index (not in run)", f"{result['opened']:.2f} s")]  # fmt: skip
    for key, label in (("total", "per digest, all"), ("build", "build"), ("render", "render (sent)"),
                       ("smtp", "SMTP hand-off (sent)"), ("log", "send log: claim + finish")):  # fmt: skip
        values = [r[key] for r in (sent if key in ("render", "smtp") else rows) if key in r]
        out.append((f"{label} p50 / p99 ms", f"{pct(values, 50):.2f} / {pct(values, 99):.2f}"))
    for kind in ("trending", "for_you", "search"):
        values = [r[kind] for r in rows if kind in r]
        if values:
            out.append((f"build: {kind} ({len(values)} digests) p50 / p99 ms, total s",
                        f"{pct(values, 50):.2f} / {pct(values, 99):.2f}, {sum(values):.1f}"))
    other = [r.get("build", 0.0) - sum(r.get(k, 0.0) for k in ("trending", "for_you", "search")) for r in rows]
    out.append(("build: categories and assembly p50 / p99 ms, total s",
                f"{pct(other, 50):.2f} / {pct(other, 99):.2f}, {sum(other):.1f}"))
    out.append(("build: all sections, total s", f"{sum(r.get('build', 0.0) for r in rows):.1f}"))
    out.append(("SMTP connections", str(result["connections"])))
    out.append(("peak RSS of the sender", f"{result['rss_mib']:.0f} MiB"))
    out.append(("sender CPU s (all its threads; BLAS threads: " + result["blas_threads"] + ")", f"{result['cpu']:.1f}"))
    out.append(("load average (1 min) at the end of the run", f"{result['load'][0]:.2f}"))
    return out


def check_delivery(home: Path, stats: dict, sent: int) -> list[str]:
    """Every address with a ``sent`` log row got exactly one message; nobody else got any."""
    from papertide.config import load_config
    from papertide.store import open_store

    problems = []
    with open_store(load_config(home, env={})) as store:
        records = store.mailing.send_log(limit=1_000_000)
        emails = {s.id: s.email.lower() for s in store.mailing.subscriptions(limit=1_000_000)}
    states = Counter(r.state for r in records)
    sent_to = Counter(emails[r.subscription_id] for r in records if r.state == "sent")
    received = Counter(stats["received"])
    if sum(received.values()) != sent:
        problems.append(f"the sink received {sum(received.values())} messages, the run sent {sent}")
    if received != sent_to:
        problems.append(f"{len(set(received) ^ set(sent_to))} addresses differ between the sink and the log")
    if any(n != 1 for n in received.values()):
        problems.append(f"{sum(n > 1 for n in received.values())} addresses got more than one message")
    if stats["mismatched"]:
        problems.append(f"{stats['mismatched']} messages whose To: differs from the envelope")
    if stats["message_ids"] != sum(received.values()):
        problems.append(f"{stats['message_ids']} distinct Message-IDs for {sum(received.values())} messages")
    if set(states) - {"sent", "empty"}:
        problems.append(f"send log states: {dict(states)}")
    return problems


def run_rows(info: dict, first: dict, second: dict, stats: dict, after: dict, problems: list[str]) -> list:
    total = sum(stats["received"].values())
    size = stats["bytes"] / total / 1024 if total else 0.0
    again = second["report"]
    sink = f"{total} messages to {len(stats['received'])} addresses, {size:.1f} KiB each, CPU {stats['cpu']:.1f} s"
    return summary_rows(first) + [
        ("sink received (separate process)", sink),
        ("delivery check", "; ".join(problems) or "each sent address got exactly one message, nobody else any"),
        ("second run: sent / empty / skipped",
         f"{again['sent']} / {again['empty']} / {again['skipped']} in {again['seconds']:.1f} s"),
        ("sink after the second run", f"{sum(after['received'].values())} messages"),
    ]


def print_report(args, info: dict, reused: bool, setup: float, first: dict, rows: list) -> None:
    print(f"\n## digest send: {info['subscribers']} subscribers, {info['papers']} papers "
          f"({info['listed_yesterday']} listed yesterday, {info['listed_last_week']} last week), "
          f"{info['users']} users, {info['votes']} upvotes\nmix: {info['mix']}")
    built = f"cached, built in {info['build_seconds']} s" if reused else "built now"
    print(f"setup ({built}): {info['setup']}; this run's copy {setup:.1f} s; not counted. "
          f"mail_rate {first['mail_rate']} (no pacing)\n")
    width = max(len(k) for k, _ in rows)
    print(f"| {'measure':<{width}} | value |\n|{'-' * (width + 2)}|-------|")
    for k, v in rows:
        print(f"| {k:<{width}} | {v} |")
    rep = first["report"]
    verdict = "within" if rep["seconds"] <= TARGET_SECONDS else "OVER"
    print(f"\n{verdict} the target: {rep['sent'] + rep['empty']} digests in {rep['seconds']:.1f} s "
          f"(target: 10,000 in {TARGET_SECONDS:.0f} s)")
    blas = f" --blas-threads {args.blas_threads}" if args.blas_threads else ""
    print(f"command: python bench/digest_bench.py --subscribers {args.subscribers} --users {args.users} "
          f"--seed {args.seed}{blas}")
    if first["errors"]:
        print("first errors:", first["errors"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--subscribers", type=int, default=10_000)
    ap.add_argument("--users", type=int, default=1_500)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--rebuild", action="store_true", help="build the store again even if today's is cached")
    ap.add_argument("--blas-threads", type=int, help="OPENBLAS_NUM_THREADS for the sender (default: 1, as "
                    "`papertide digest send` sets it)")
    ap.add_argument("--send-child", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--smtp", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.send_child:
        result = send_main(args.send_child, args.smtp)
        (args.send_child / "send-result.json").write_text(json.dumps(result))
        return
    t = time.perf_counter()
    cache, info, reused = cached_home(args)
    work = Path(tempfile.mkdtemp(prefix="digest-bench-"))
    home = work / "home"
    shutil.copytree(cache, home)  # the cached store stays unsent
    setup = time.perf_counter() - t
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    sink = ctx.Process(target=sink_main, args=(child,), daemon=True)
    sink.start()
    if not parent.poll(60):
        raise SystemExit("the SMTP sink did not start (see its traceback above)")
    url = f"smtp://127.0.0.1:{parent.recv()}"

    def sink_stats() -> dict:
        parent.send("stats")
        return parent.recv()

    try:
        first = send_child(home, url, args.blas_threads)
        stats = sink_stats()
        second = send_child(home, url, args.blas_threads)
        after = sink_stats()
        parent.send("stop")
        parent.recv()
    finally:
        sink.join(5)
    problems = check_delivery(home, stats, first["report"]["sent"])
    if second["report"]["sent"] or sum(after["received"].values()) != sum(stats["received"].values()):
        problems.append("the second run sent something")
    print_report(args, info, reused, setup, first, run_rows(info, first, second, stats, after, problems))
    shutil.rmtree(work, ignore_errors=True)
    if problems:
        sys.exit(1)


if __name__ == "__main__":
    main()
