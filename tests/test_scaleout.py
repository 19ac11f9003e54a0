"""A site of several processes on one PostgreSQL database (issue 7), for real.

Two ``papertide serve`` processes share one PostgreSQL database and one home (the
index files), as two app servers behind a load balancer would:

- readers vote and unvote the same papers through both servers at once from many
  threads: every stored count is exact, and both servers answer the same counts;
- two digest senders (``papertide digest send``) run at once for the same day: every
  subscriber gets exactly one message, and the send log says sent once per address;
- a paper written to the database after the servers started is indexed by ``papertide
  worker --once``, and both servers find it without a restart.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import date

import httpx
import pytest
from processes import free_port, run_papertide, wait_until_serving

from papertide.config import replace
from papertide.digest import last_complete_period
from papertide.ingest import ingest_demo
from papertide.paper import Paper
from papertide.store import Batch, open_store
from papertide.web.auth import token_hash

pytestmark = pytest.mark.slow  # two app servers, a worker and two senders start: ~30 s here

USERS = 24


@pytest.fixture
def site(config, warm_home, pg_url, sink, tmp_path):
    """The demo corpus in PostgreSQL, indexed, six papers listed yesterday, 24 users with
    API tokens, served by two ``papertide serve`` processes."""
    config = replace(config, database_url=pg_url)
    yesterday = date.fromisoformat(last_complete_period("day"))
    tokens = {}
    with open_store(config) as store:
        ingest_demo(store)
        ids = [p.id for p in store.list_papers(limit=6, order="added")]
        com = store.community
        for pid in ids:
            com.list_paper(pid, yesterday.isoformat())
        for n in range(USERS):
            user = com.create_user(f"reader{n}", "", "argon2-hash-for-tests")
            tokens[user.id] = f"scaleout-token-{n:02d}-0123456789abcdef"
            com.create_api_token(user.id, "load", token_hash(tokens[user.id]))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAPERTIDE_")}
    env |= {"PAPERTIDE_HOME": str(warm_home), "PAPERTIDE_DATABASE_URL": pg_url, "PAPERTIDE_SMTP_URL": sink.url(),
            "PAPERTIDE_API_WRITES_PER_MINUTE": "0", "PAPERTIDE_API_SEARCH_PER_MINUTE": "0",
            "PAPERTIDE_DATABASE_POOL": "4"}  # fmt: skip
    run_papertide(env, "index")
    servers = []
    try:
        for n in range(2):
            port, log = free_port(), tmp_path / f"serve{n}.log"
            cmd = [sys.executable, "-m", "papertide", "serve", "--port", str(port), "--no-index",
                   "--retry-submissions", "0"]  # fmt: skip
            with open(log, "w") as out:
                proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
            servers.append((f"http://127.0.0.1:{port}", proc, log))
        for base, proc, log in servers:
            wait_until_serving(base, proc, log)
        yield {"bases": [s[0] for s in servers], "env": env, "ids": ids, "tokens": tokens, "config": config,
               "yesterday": yesterday}  # fmt: skip
    finally:
        for _, proc, _ in servers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for _, proc, log in servers:
            proc.wait(timeout=30)
            assert "Traceback" not in log.read_text(), log.read_text()


def test_votes_through_two_servers_at_once_are_all_counted(site):
    ids, bases, tokens = site["ids"], site["bases"], site["tokens"]
    rng = random.Random(7)
    # each user's plan: vote on some papers, unvote a few of them again, in a shuffled order
    plans = {}
    for uid in tokens:
        chosen = rng.sample(ids, rng.randint(2, len(ids)))
        plans[uid] = [("vote", pid) for pid in chosen] + [("unvote", pid) for pid in chosen[: rng.randint(0, 2)]]

    def run(uid: int) -> list[int]:
        statuses = []
        headers = {"Authorization": f"Bearer {tokens[uid]}"}
        with httpx.Client(timeout=30) as client:
            for i, (op, pid) in enumerate(plans[uid]):
                base = bases[(uid + i) % 2]  # alternate between the two app servers
                url = f"{base}/api/papers/{pid}/vote"
                r = client.post(url, headers=headers) if op == "vote" else client.delete(url, headers=headers)
                statuses.append(r.status_code)
        return statuses

    with ThreadPoolExecutor(max_workers=USERS) as pool:
        results = list(pool.map(run, tokens))
    assert all(code == 200 for codes in results for code in codes), results
    expected = Counter()
    for plan in plans.values():
        final = {pid for op, pid in plan if op == "vote"} - {pid for op, pid in plan if op == "unvote"}
        expected.update(final)
    with open_store(site["config"]) as store:
        stored = store.community.votes(ids)
    assert stored == {pid: expected[pid] for pid in ids}
    for base in bases:  # both servers read the same counts
        answered = {pid: httpx.get(f"{base}/api/papers/{pid}", timeout=10).json()["votes"] for pid in ids}
        assert answered == stored


def test_two_senders_at_once_mail_every_subscriber_exactly_once(site, sink):
    readers = [f"reader{n}@example.org" for n in range(30)]
    with open_store(site["config"]) as store:
        for address in readers:
            sub = store.mailing.subscribe(address, every="day", trending=True)
            store.mailing.confirm(sub.id)
    day = site["yesterday"].isoformat()
    env = site["env"]
    senders = [subprocess.Popen([sys.executable, "-m", "papertide", "digest", "send"],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
               for _ in range(2)]  # fmt: skip
    outputs = [p.communicate(timeout=120)[0] for p in senders]
    assert all(p.returncode == 0 for p in senders), outputs
    delivered = Counter(r.message["To"] for r in sink.messages)
    assert delivered == Counter(readers), (delivered, outputs)
    with open_store(site["config"]) as store:
        log = store.mailing.send_log(period=day, limit=100)
    assert sorted(r.state for r in log) == ["sent"] * len(readers)


def test_both_servers_reload_the_index_the_worker_publishes(site):
    bases = site["bases"]
    query = "quasicrystalline tessellation of hyperbolic cartographies"
    for base in bases:
        found = httpx.get(f"{base}/api/search", params={"q": query, "mode": "lexical"}, timeout=30).json()
        assert "2611.00001" not in [hit["id"] for hit in found["items"]]
    fresh = Paper(id="2611.00001", title="Quasicrystalline tessellation of hyperbolic cartographies",
                  abstract="We draw maps of hyperbolic planes with quasicrystalline tessellations.",
                  authors=["Ada Lovelace"], categories=["math.MG"], submitted="2026-11-25")  # fmt: skip
    with open_store(site["config"]) as store:
        store.write(Batch(papers=[fresh]))
    worker = run_papertide(site["env"], "worker", "--once", "--no-send")
    assert "worker: stopped" in worker.stderr, worker.stderr
    for base in bases:
        found = httpx.get(f"{base}/api/search", params={"q": query, "mode": "lexical"}, timeout=30).json()
        assert [hit["id"] for hit in found["items"]][:1] == ["2611.00001"], found
