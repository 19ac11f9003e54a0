"""papertide db copy / db verify: a store moves between SQLite and PostgreSQL whole and provably equal.

A home with real content in every table (papers with a deleted one and HF signals,
accounts, sessions, tokens, votes, threaded comments, collections, submissions,
subscriptions with their send log and mail events, not-relevant marks, a rate-limit
row) is copied into a fresh PostgreSQL database and back; the copies answer like the
original, new ids never reuse old ones, and a refused row, a Ctrl-C or a non-empty
target leave the target as it was.
"""

from __future__ import annotations

import json

import re
import signal
import subprocess
import sys

import pytest
from conftest import cli_run

from papertide.config import replace
from papertide.errors import NotFoundError
from papertide.paper import Paper, Version
from papertide.sources import Checkpoint, Signal
from papertide.store import Batch, open_store
from papertide.store.copy import CopyError, TargetNotEmptyError, copy_store, parents_first, verify_stores
from papertide.store.sqlite import SQLiteStore

PAPERS = 30
ALL_TABLES = {
    "papers", "paper_authors", "paper_categories", "changes", "signals", "checkpoints", "users", "sessions",
    "api_tokens", "votes", "listings", "comments", "collections", "collection_items", "submissions",
    "hidden_papers", "subscriptions", "send_log", "mail_events", "not_relevant", "rate_limits",
}  # fmt: skip


def paper(i: int) -> Paper:
    return Paper(
        id=f"2403.{i:05d}",
        title=f"Paper {i}: naïve Bayes for 東京 text ✓",
        abstract=f"Abstract {i} with 'quotes', \"double quotes\", a backslash \\ and\na new line. " * 5,
        authors=[f"Author {i}", "Zoë Ångström", "Ann Other"],
        categories=["cs.CL", "cs.LG"] if i % 2 else ["cs.IR"],
        submitted=f"2024-03-{1 + i % 28:02d}" if i % 7 else None,
        version=1 + i % 3,
        versions=[Version(1, "2024-03-01")],
        doi=f"10.1000/{i}" if i % 3 == 0 else None,
    ).normalised()


def fill(store) -> dict:
    """Something in every table; returns the ids the tests look at."""
    ids = [paper(i).id for i in range(PAPERS)]
    store.write(Batch(papers=[paper(i) for i in range(PAPERS)],
                      signals=[Signal(ids[i], "hf", 10 + i, "2024-03-17", {"by": f"u{i}"}) for i in range(5)],
                      checkpoint=Checkpoint("arxiv:cs", {"token": "abc", "n": 3})))  # fmt: skip
    store.write(Batch(deleted=[ids[-1]]))
    com, mail = store.community, store.mailing
    alice = com.create_user("alice", "alice@example.org", "hash-a", role="admin")
    bob = com.create_user("Bob", "", "hash-b")
    carol = com.create_user("carol", "carol@example.org", "hash-c")
    com.create_session(alice.id, "session-hash", "csrf", "2099-01-01T00:00:00Z")
    com.create_api_token(bob.id, "laptop", "token-hash")
    for who in (alice, bob, carol):
        com.vote(who.id, ids[0])
    com.vote(bob.id, ids[1])
    com.list_paper(ids[0], "2024-03-17", submitted_by=alice.id)
    root = com.add_comment(ids[0], alice.id, "First! **bold** and `code`")
    reply = com.add_comment(ids[0], bob.id, "A reply", parent_id=root.id)
    com.add_comment(ids[0], carol.id, "A reply to the reply", parent_id=reply.id)
    com.set_comment_hidden(com.add_comment(ids[1], carol.id, "spam").id, True)
    kept = com.create_collection(alice.id, "Reading list", description="to read", public=True)
    com.add_item(kept.id, ids[0], "note")
    com.add_item(kept.id, ids[2])
    gone = com.create_collection(bob.id, "Temporary")
    com.delete_collection(gone.id)  # the highest collection id is gone: it must not be handed out again
    com.add_submission(bob.id, "https://arxiv.org/abs/2403.00001", ids[1], status="done", message="ok")
    com.add_submission(carol.id, "2403.99999")
    com.set_paper_hidden(ids[3], True)
    com.mark_not_relevant(carol.id, ids[4])
    sub = mail.subscribe("Alice@Example.org", every="day", trending=True, categories=("cs.CL",), user_id=alice.id)
    mail.confirm(sub.id)
    mail.claim_send(sub.id, "2024-03-17", "<m1@papertide>", owner="host:1")
    mail.finish_send(sub.id, "2024-03-17", "sent", "250 ok")
    weekly = mail.subscribe("dave@example.org", every="week", searches=('"in-context learning"',))
    mail.record_event("dave@example.org", "bounce", "550 no such user")
    with store.database.transaction() as tx:  # the rate limiter's own table (store.limits writes it)
        tx.execute("INSERT INTO rate_limits (key, state, expires) VALUES (?, ?, ?)",
                   ("login:ip:192.0.2.7", '{"t": [1.5]}', 1764160000.123456))  # fmt: skip
    return {"ids": ids, "users": (alice, bob, carol), "root": root, "kept": kept, "gone": gone, "weekly": weekly}


@pytest.fixture
def source(config):
    """The home's own SQLite store, filled."""
    store = open_store(config)
    made = fill(store)
    yield store, made
    store.close()


@pytest.fixture
def pg(config, pg_url):
    store = open_store(replace(config, database_url=pg_url))
    yield store
    store.close()


def rows(store) -> dict[str, int]:
    return {t: store.database.first(f"SELECT COUNT(*) FROM {t}")[0] for t in sorted(ALL_TABLES)}


def test_sqlite_to_postgresql_copies_every_table_and_verifies(source, pg):
    store, _ = source
    seen = []
    report = copy_store(store, pg, batch_size=7, progress=lambda t, done, total: seen.append((t, done, total)))
    check = report.verification
    assert check.ok and report.changed == []
    assert {t.table for t in check.tables} == ALL_TABLES
    assert all(t.source_rows > 0 for t in check.tables), [t.table for t in check.tables if not t.source_rows]
    assert report.rows == {t.table: t.source_rows for t in check.tables}
    assert report.rows["papers"] == PAPERS and report.rows["paper_authors"] == 3 * (PAPERS - 1)
    assert check.source_watermark == check.target_watermark == store.watermark() == pg.watermark() == PAPERS + 1
    order = list(report.rows)
    assert order.index("users") < order.index("comments") < order.index("collection_items")
    assert order.index("subscriptions") < order.index("send_log")
    assert ("papers", 7, PAPERS) in seen and ("papers", PAPERS, PAPERS) in seen  # streamed in batches of 7


def test_the_postgresql_copy_answers_like_the_original(source, pg):
    store, made = source
    copy_store(store, pg)
    ids, (alice, _, carol) = made["ids"], made["users"]
    for s in (store, pg):
        assert s.stats()["papers"] == PAPERS - 1 and s.stats()["deleted"] == 1
    assert pg.get(ids[0]) == store.get(ids[0]) and pg.get(ids[0]).title.endswith("東京 text ✓")
    with pytest.raises(NotFoundError):
        pg.get(ids[-1])
    assert pg.signals(ids[0]) == store.signals(ids[0])
    assert pg.get_checkpoint("arxiv:cs") == {"token": "abc", "n": 3}
    assert pg.changes_since(0) == store.changes_since(0)
    assert pg.paper_ids(author="zoe angstrom") == store.paper_ids(author="zoe angstrom")
    a, b = store.community, pg.community
    assert b.votes(ids[:2]) == a.votes(ids[:2]) == {ids[0]: 3, ids[1]: 1}
    assert b.comments(ids[0]) == a.comments(ids[0])
    assert [c.parent_id for c in b.comments(ids[0])] == [None, made["root"].id, made["root"].id + 1]
    assert b.comments(ids[1]) == [] and len(b.comments(ids[1], include_hidden=True)) == 1
    assert b.user_by_name("ALICE") == a.user_by_name("alice") and b.user(alice.id).role == "admin"
    assert b.session("session-hash") == a.session("session-hash")
    assert b.user_for_token("token-hash") == a.user_for_token("token-hash")
    assert b.items(made["kept"].id) == a.items(made["kept"].id)
    assert b.public_collections() == a.public_collections()
    assert b.submissions(carol.id) == a.submissions(carol.id)
    assert b.hidden_papers() == {ids[3]} and b.not_relevant(carol.id) == {ids[4]}
    assert b.listing([ids[0]]) == {ids[0]: ("2024-03-17", alice.id)}
    m, n = store.mailing, pg.mailing
    assert n.subscriptions() == m.subscriptions()
    assert n.send_log() == m.send_log() and n.send_log()[0].state == "sent"
    assert n.events() == m.events()
    assert n.subscription(made["weekly"].id).status == "paused"  # the bounce paused it, and that moved too
    assert n.due("day", "2024-03-17") == m.due("day", "2024-03-17") == []


def test_new_ids_after_the_copy_never_reuse_old_ones(source, pg, tmp_path):
    store, made = source
    copy_store(store, pg)
    back = SQLiteStore(tmp_path / "back.db")
    copy_store(pg, back)
    ids, carol = made["ids"], made["users"][2]
    for s in (pg, back):
        com = s.community
        dave = com.create_user("dave", "", "hash-d")
        assert dave.id == carol.id + 1
        comment = com.add_comment(ids[2], dave.id, "after the move")
        assert comment.id == made["root"].id + 4  # after the four copied comments
        assert com.create_collection(dave.id, "New").id == made["gone"].id + 1  # not the deleted one's id
        assert com.comments(ids[2])[-1].body == "after the move"
        assert s.mailing.subscribe("erin@example.org", every="day", trending=True).id == made["weekly"].id + 1
    back.close()


def test_a_target_holding_data_is_refused_unless_replace(source, pg):
    store, made = source
    copy_store(store, pg)
    ids, carol = made["ids"], made["users"][2]
    store.community.vote(carol.id, ids[1])
    with pytest.raises(TargetNotEmptyError, match=r"already holds papertide data \(.*papers: 30 rows.*--replace"):
        copy_store(store, pg)
    assert pg.community.votes([ids[1]]) == {ids[1]: 1}  # untouched
    report = copy_store(store, pg, replace=True)
    assert report.verification.ok and pg.community.votes([ids[1]]) == {ids[1]: 2}


@pytest.mark.parametrize("bad, refusal", [
    ("body = 'before' || char(0) || 'after'", "NUL"),  # SQLite keeps a NUL in text; psycopg refuses to send it
    ("hidden = 'yes'", r'; refused: the row with key 2\): invalid input syntax for type integer: "yes"'),
])  # fmt: skip
def test_a_row_the_target_refuses_leaves_it_empty(source, pg, bad, refusal):
    store, made = source
    with store.database.transaction() as tx:  # SQLite's loose typing lets these in
        tx.execute(f"UPDATE comments SET {bad} WHERE id = ?", (made["root"].id + 1,))
    with pytest.raises(CopyError, match=rf"copying table comments failed \(rows 1-4, keys 1 \.\. 4.*{refusal}.*"
                                        "nothing was written"):  # fmt: skip
        copy_store(store, pg)
    assert set(rows(pg).values()) == {0}  # the tables copied before comments too
    assert pg.community.create_user("first", "", "h").id == 1  # the counters did not move either


def test_writes_during_the_copy_are_not_in_it_and_are_reported(source, pg):
    store, made = source
    writer = SQLiteStore(store.path)  # another connection, as a running `serve` would have

    def vote_meanwhile(table: str, done: int, total: int) -> None:
        if table == "changes" and done == 0:
            writer.community.vote(made["users"][2].id, made["ids"][5])

    report = copy_store(store, pg, progress=vote_meanwhile)
    writer.close()
    assert report.rows["votes"] == 4 and pg.community.votes([made["ids"][5]]) == {made["ids"][5]: 0}  # one snapshot of the source
    assert report.changed == ["votes"] and not report.verification.ok


def test_ctrl_c_during_a_replace_keeps_the_old_copy(source, pg):
    store, _ = source
    copy_store(store, pg)
    store.write(Batch(papers=[paper(100)]))

    def interrupt(table: str, done: int, total: int) -> None:
        if table == "papers" and done >= 10:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        copy_store(store, pg, replace=True, batch_size=5, progress=interrupt)
    assert pg.count() == PAPERS - 1 and pg.watermark() == PAPERS + 1  # the truncate was rolled back too
    assert not verify_stores(store, pg).ok  # the source moved on; the target is the old copy, whole
    assert copy_store(store, pg, replace=True).verification.ok


def test_postgresql_back_to_sqlite_gives_equal_checksums(source, pg, tmp_path):
    store, _ = source
    there = copy_store(store, pg).verification
    back = SQLiteStore(tmp_path / "back.db")
    again = copy_store(pg, back).verification
    assert again.ok and [t.target_sum for t in again.tables] == [t.source_sum for t in there.tables]
    assert verify_stores(store, back).ok
    sequences = "SELECT name, seq FROM sqlite_sequence ORDER BY name"
    assert back.db.execute(sequences).fetchall() == store.db.execute(sequences).fetchall()
    back.close()


def test_sqlite_to_sqlite_and_postgresql_to_postgresql(source, pg, config, pg_database, tmp_path):
    store, made = source
    other = SQLiteStore(tmp_path / "other.db")
    assert copy_store(store, other).verification.ok
    copy_store(store, pg)
    second = open_store(replace(config, database_url=pg_database()))
    assert copy_store(pg, second).verification.ok
    assert second.community.create_collection(made["users"][0].id, "Later").id == made["gone"].id + 1
    same = open_store(replace(config, database_url=pg.database.url))
    with pytest.raises(CopyError, match="the same database"):
        copy_store(pg, same)
    for s in (other, second, same):
        s.close()


def test_verify_names_the_tables_that_differ(source, pg):
    store, made = source
    copy_store(store, pg)
    pg.community.update_user(made["users"][1].id, email="bob@example.org")
    check = verify_stores(store, pg)
    assert not check.ok
    assert [t.table for t in check.tables if not t.ok] == ["users"]
    assert check.source_watermark == check.target_watermark


def test_mismatched_schemas_and_the_same_database_are_refused(source, pg, config):
    store, _ = source
    with pg.database.transaction() as tx:
        tx.execute("CREATE TABLE extra (x INTEGER)")
    with pytest.raises(CopyError, match="different tables: only in the source: none; only in the target: extra"):
        copy_store(store, pg)
    with pg.database.transaction() as tx:
        tx.execute("DROP TABLE extra")
        tx.execute("DELETE FROM migrations WHERE name = 'm004_shared_limits'")
    with pytest.raises(CopyError, match=r"the target \(.*\) is not at this papertide's schema: missing migrations "
                                        r"m004_shared_limits"):  # fmt: skip
        copy_store(store, pg)
    same = open_store(replace(config, database_url=f"sqlite:///{config.db_path}"))
    with pytest.raises(CopyError, match="the same database"):
        copy_store(store, same)
    same.close()


def test_a_table_without_a_primary_key_is_copied_in_a_stable_order(source, pg):
    """Tables come from the catalogs: one both sides have is copied, NULLs ordered alike."""
    store, _ = source
    for s in (store, pg):
        with s.database.transaction() as tx:
            tx.execute("CREATE TABLE notes (a BIGINT, b TEXT, c DOUBLE PRECISION)")
    with store.database.transaction() as tx:
        tx.executemany("INSERT INTO notes (a, b, c) VALUES (?, ?, ?)",
                       [(None, "x", 0.1), (2, None, None), (1, "y", float("inf")), (None, None, -2.5)])  # fmt: skip
    check = copy_store(store, pg).verification
    assert check.ok and [t.target_rows for t in check.tables if t.table == "notes"] == [4]
    assert sorted(pg.database.all("SELECT a, b, c FROM notes"), key=repr) == sorted(
        store.database.all("SELECT a, b, c FROM notes"), key=repr)


def test_parents_come_before_children():
    from papertide.store.copy import Table

    tables = {n: Table(n, ("id",), ("id",), frozenset(p), None)
              for n, p in {"c": {"b"}, "b": {"a"}, "a": set(), "z": set()}.items()}  # fmt: skip
    assert parents_first(tables) == ["a", "z", "b", "c"]
    looped = tables | {"a": Table("a", ("id",), ("id",), frozenset({"c"}), None)}
    with pytest.raises(CopyError, match="cycle"):
        parents_first(looped)


def test_cli_copy_and_verify_end_to_end(config, pg_url):
    store = open_store(config)  # the home's default store, as `papertide` opens it
    made = fill(store)
    store.close()
    out = cli_run("db", "copy", "--to", pg_url)
    assert re.search(r"^copied 223 rows in [0-9.]+ s", out.stdout, re.MULTILINE) and "verified: every table" in out.stdout
    lines = {line.split()[0]: line.split() for line in out.stdout.splitlines() if line.split()}
    assert lines["papers"][1:] == ["30", "30", "match"] and lines["users"][1:] == ["3", "3", "match"]
    assert f"watermark: source {PAPERS + 1} = target {PAPERS + 1}" in out.stdout
    assert "  papers: 30 rows" in out.stderr and "copying " in out.stderr
    again = cli_run("db", "copy", "--to", pg_url, code=1)
    assert "already holds papertide data" in again.output and "--replace" in again.output
    cli_run("--db", pg_url, "db", "verify", "--against", f"sqlite:///{config.db_path}")
    assert "papers:   29 (1 deleted)" in cli_run("--db", pg_url, "stats").stdout
    with open_store(replace(config, database_url=pg_url)) as pg:
        pg.community.vote(made["users"][2].id, made["ids"][1])
    differ = cli_run("db", "verify", "--against", pg_url, code=1)
    assert "votes" in differ.stdout and "DIFFERENT" in differ.stdout and "the stores differ" in differ.stderr
    assert cli_run("db", "copy", "--to", pg_url, "--replace").stdout.count("match") == len(ALL_TABLES)
    missing = cli_run("db", "verify", "--against", f"sqlite:///{config.home}/nothing.db", code=1)
    assert "no store at" in missing.output


@pytest.mark.slow
def test_a_copy_killed_mid_way_leaves_the_target_empty(config, pg_url):
    """kill -9 of `papertide db copy` half-way: the server rolls the one transaction back."""
    with open_store(config) as store:
        store.write(Batch(papers=[paper(i) for i in range(3000)]))
    command = [sys.executable, "-m", "papertide", "db", "copy", "--to", pg_url, "--batch-size", "10"]
    proc = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    try:
        assert any(line.startswith("  paper_authors: ") for line in iter(proc.stderr.readline, ""))
        proc.kill()  # papers and paper_categories are still to come
        assert proc.wait(10) == -signal.SIGKILL
    finally:
        proc.kill()
        proc.wait(10)
        proc.stderr.close()
    with open_store(replace(config, database_url=pg_url)) as pg, open_store(config) as store:
        assert set(rows(pg).values()) == {0}
        assert copy_store(store, pg).verification.ok  # and a second attempt goes through


@pytest.mark.slow
def test_the_homes_search_index_stays_valid_after_the_move(demo_indexed, pg_url):
    """The index covers the SQLite store's watermark; on PostgreSQL it has nothing to catch up."""
    before = cli_run("search", "--json", "in-context learning").stdout
    cli_run("db", "copy", "--to", pg_url)
    catch_up = cli_run("--db", pg_url, "index").stdout
    assert "(0 added or updated, 0 removed" in catch_up
    after = cli_run("--db", pg_url, "search", "--json", "in-context learning").stdout
    # the same papers in the same order; the scores agree to float rounding (on PostgreSQL with
    # pgvector the dense scores are computed by the database: vector_search = auto)
    old, new = json.loads(before), json.loads(after)
    assert [h["id"] for h in new] == [h["id"] for h in old] and len(old) > 3
    assert all(abs(a["score"] - b["score"]) < 1e-4 for a, b in zip(old, new))
