"""The SQLite store: migrations, idempotent upserts, versions, change log, transactions."""

from __future__ import annotations

import threading

import socket
import time

import pytest

from papertide.errors import NotFoundError, StoreError
from papertide.paper import Paper, Version
from papertide.sources import Checkpoint, Signal
from papertide.store import Batch, open_store
from papertide.store.migrations import MIGRATIONS
from papertide.store.sqlite import SQLiteStore


def paper(i: int, **kw) -> Paper:
    base = dict(id=f"2401.{i:05d}", title=f"Paper {i}", abstract=f"Abstract {i}", authors=[f"Author {i}", "Ann Other"],
                categories=["cs.CL", "cs.LG"], version=1, versions=[Version(1, "2024-01-02")])  # fmt: skip
    return Paper(**(base | kw)).normalised()


@pytest.fixture
def store(db_config):
    s = open_store(db_config)
    yield s
    s.close()


def test_opens_in_wal_mode_with_migrations_applied(config):
    store = open_store(config)
    assert config.db_path.exists()
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.applied_migrations() == sorted(m.__name__ for m in MIGRATIONS)
    store.close()
    again = open_store(config)  # re-opening applies nothing twice
    assert again.applied_migrations() == sorted(m.__name__ for m in MIGRATIONS)
    again.close()


def test_newer_schema_is_refused(store, db_config):
    with store.database.transaction() as tx:
        tx.execute("INSERT INTO migrations VALUES ('m999_future', 'now')")
    store.close()
    with pytest.raises(StoreError, match="newer papertide"):
        open_store(db_config)


def test_not_a_database_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="cannot open the store"):
        SQLiteStore(bad)


def test_unreachable_postgres_is_a_clear_error(config):
    from papertide.config import replace

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"postgresql://papertide:secret@127.0.0.1:{port}/papers"
    with pytest.raises(StoreError, match=f"cannot open the store in PostgreSQL database 'papers' on 127.0.0.1:{port}") as e:
        open_store(replace(config, database_url=url))
    assert "secret" not in str(e.value)


def test_unknown_database_url_scheme_is_refused(config):
    from papertide.config import replace

    with pytest.raises(StoreError, match="unsupported database_url 'mysql'"):
        open_store(replace(config, database_url="mysql://root:pw@localhost/x"))


def test_upsert_is_idempotent(store):
    papers = [paper(i) for i in range(1, 6)]
    r1 = store.write(Batch(papers=papers))
    assert len(r1.added) == 5 and not r1.updated and r1.unchanged == 0
    mark = store.watermark()
    r2 = store.write(Batch(papers=[paper(i) for i in range(1, 6)]))
    assert not r2.added and not r2.updated and r2.unchanged == 5
    assert store.watermark() == mark and store.count() == 5
    assert store.get("2401.00003") == papers[2]


def test_newer_version_updates_older_does_not(store):
    store.write(Batch(papers=[paper(1)]))
    v2 = paper(1, title="Paper 1 (revised)", version=2, versions=[Version(1, "2024-01-02"), Version(2, "2024-02-01")])
    r = store.write(Batch(papers=[v2]))
    assert r.updated == ["2401.00001"]
    got = store.get("2401.00001")
    assert got.title == "Paper 1 (revised)" and got.version == 2 and got.updated == "2024-02-01"
    r = store.write(Batch(papers=[paper(1, title="stale copy of v1")]))
    assert r.unchanged == 1 and store.get("2401.00001").title == "Paper 1 (revised)"


def test_partial_copy_merges_instead_of_erasing(store):
    store.write(Batch(papers=[paper(1)]))
    hf = Paper(id="2401.00001", title="Paper 1", abstract="Abstract 1", links={"code": "https://github.com/a/b"},
               extra={"ai_summary": "short"}).normalised()  # fmt: skip
    r = store.write(Batch(papers=[hf]))
    assert r.updated == ["2401.00001"]
    got = store.get("2401.00001")
    assert got.categories == ["cs.CL", "cs.LG"] and got.links["code"] == "https://github.com/a/b"
    assert store.write(Batch(papers=[hf])).unchanged == 1  # and that too is idempotent


def test_change_log_and_watermark(store):
    assert store.watermark() == 0
    store.write(Batch(papers=[paper(1), paper(2)]))
    store.write(Batch(papers=[paper(2, title="changed")], deleted=["2401.00001"]))
    changes = store.changes_since(0)
    assert [(c.paper_id, c.op) for c in changes] == [
        ("2401.00001", "upsert"), ("2401.00002", "upsert"), ("2401.00002", "upsert"), ("2401.00001", "delete"),
    ]  # fmt: skip
    assert [c.seq for c in changes] == [1, 2, 3, 4] and store.watermark() == 4
    assert [c.seq for c in store.changes_since(2)] == [3, 4]
    assert store.changes_since(2, limit=1)[0].seq == 3


def test_deleted_papers_disappear_and_can_come_back(store):
    store.write(Batch(papers=[paper(1), paper(2)]))
    r = store.write(Batch(deleted=["2401.00001", "2401.99999"]))
    assert r.deleted == ["2401.00001"]
    assert store.count() == 1 and store.stats()["deleted"] == 1
    with pytest.raises(NotFoundError, match="2401.00001"):
        store.get("2401.00001")
    assert store.write(Batch(deleted=["2401.00001"])).deleted == []  # already deleted
    r = store.write(Batch(papers=[paper(1)]))
    assert r.updated == ["2401.00001"] and store.count() == 2


def test_duplicates_in_one_batch_are_merged(store):
    r = store.write(Batch(papers=[paper(1), paper(1, comments="extra")]))
    assert r.added == ["2401.00001"] and store.get("2401.00001").comments == "extra"


def test_author_and_category_lookups_follow_updates_and_deletes(store):
    store.write(Batch(papers=[paper(1), paper(2)]))
    assert store.paper_ids(author="ANN other") == ["2401.00001", "2401.00002"]
    assert store.paper_ids(category="cs.LG") == ["2401.00001", "2401.00002"]
    store.write(Batch(papers=[paper(1, authors=["Solo Áuthor"], categories=["math.CO"], version=2)]))
    assert store.paper_ids(author="Ann Other") == ["2401.00002"]
    assert store.paper_ids(author="solo author") == ["2401.00001"]  # accents and case folded
    assert store.paper_ids(category="math.CO") == ["2401.00001"]
    assert store.paper_ids(category="cs.LG") == ["2401.00002"]
    store.write(Batch(deleted=["2401.00002"]))
    assert store.paper_ids(author="Ann Other") == [] and store.paper_ids(category="cs.CL") == []
    rows = store.database.first("SELECT COUNT(*) FROM paper_authors")[0]
    assert rows == 1  # nothing stale left behind


def test_signals_and_orphans(store):
    store.write(Batch(papers=[paper(1)]))
    r = store.write(Batch(signals=[Signal("2401.00001", "hf", 12, "2024-01-03", {"submitted_by": "ak"}),
                                   Signal("2401.99999", "hf", 3)]))  # fmt: skip
    assert r.signals == 1 and r.orphans == ["2401.99999"]
    store.write(Batch(signals=[Signal("2401.00001", "hf", 15)]))
    [s] = store.signals("2401.00001")
    assert (s.upvotes, s.day, s.source) == (15, "2024-01-03", "hf")  # day kept when the update lacks one


def test_checkpoint_is_committed_with_its_batch(store):
    store.write(Batch(papers=[paper(1)], checkpoint=Checkpoint("oai:x", {"token": "abc", "done": False})))
    assert store.get_checkpoint("oai:x") == {"token": "abc", "done": False}
    assert store.get_checkpoint("nope") is None
    store.set_checkpoint("oai:x", {"done": True})
    assert store.get_checkpoint("oai:x") == {"done": True}


def test_failed_write_leaves_nothing_half_written(store):
    store.write(Batch(papers=[paper(1)]))
    before = (store.count(), store.watermark())
    bad = paper(2)
    bad.authors = None  # type: ignore[assignment]  # fails after the papers rows are inserted
    with pytest.raises(TypeError):
        store.write(Batch(papers=[paper(3), bad], checkpoint=Checkpoint("c", {"n": 1})))
    assert (store.count(), store.watermark()) == before
    assert store.get_checkpoint("c") is None
    assert store.database.first("SELECT COUNT(*) FROM paper_authors")[0] == 2


def test_listing_and_iteration(store):
    store.write(Batch(papers=[paper(i, submitted=f"2024-01-{i:02d}") for i in range(1, 8)]))
    assert [p.id for p in store.list_papers(limit=3)] == ["2401.00007", "2401.00006", "2401.00005"]
    assert [p.id for p in store.list_papers(limit=2, offset=1, order="id")] == ["2401.00002", "2401.00003"]
    assert [p.id for p in store.iter_papers(batch_size=3)] == [f"2401.{i:05d}" for i in range(1, 8)]
    assert set(store.get_many(["2401.00001", "nope"])) == {"2401.00001"}
    with pytest.raises(ValueError, match="order must be one of"):
        store.list_papers(order="random")  # type: ignore[arg-type]


def test_stats(store):
    store.write(Batch(papers=[paper(1, source="snapshot"), paper(2, source="snapshot"), paper(3, source="jsonl")]))
    s = store.stats()
    assert s["papers"] == 3 and s["by_source"] == {"snapshot": 2, "jsonl": 1}
    assert s["top_categories"] == {"cs.CL": 3} and s["authors"] == 4 and s["watermark"] == 3


def test_concurrent_writers_wait_instead_of_failing(db_config):
    errors = []

    def work(k: int) -> None:
        s = open_store(db_config)
        try:
            for j in range(10):
                s.write(Batch(papers=[paper(k * 100 + j + 1)]))
        except Exception as e:  # pragma: no cover - the failure being tested for
            errors.append(e)
        finally:
            s.close()

    open_store(db_config).close()
    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    s = open_store(db_config)
    assert not errors and s.count() == 40 and s.watermark() == 40
    assert [c.seq for c in s.changes_since(0)] == list(range(1, 41))
    s.close()


def test_postgres_reconnects_after_lost_connections_and_names_a_lost_database(pg_cluster, pg_url, monkeypatch):
    import psycopg

    from papertide.store.postgres import PostgresStore

    monkeypatch.setattr("papertide.store.postgres.CHECK_AFTER", 0.05)  # pooled connections idle longer are checked

    name = pg_url.rsplit("/", 1)[1]
    store = PostgresStore(pg_url, pool_size=2, timeout=5)
    try:
        store.write(Batch(papers=[paper(1)]))
        with psycopg.connect(pg_cluster.url, autocommit=True) as admin:  # as a server restart would
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
        time.sleep(0.1)
        assert store.count() == 1  # the pool noticed and connected again
        store.write(Batch(papers=[paper(2)]))
        pg_cluster.drop_database(name)
        with pytest.raises(StoreError, match=f"PostgreSQL database '{name}' on 127.0.0.1"):
            store.count()
    finally:
        store.close()


def test_postgres_database_must_be_utf8(pg_cluster):
    """(Its other demand, byte-wise collation, cannot be shown here: this machine has only C locales.)"""
    import psycopg

    from papertide.store.postgres import PostgresStore

    with psycopg.connect(pg_cluster.url, autocommit=True) as admin:
        admin.execute("DROP DATABASE IF EXISTS papertide_latin1")
        admin.execute("CREATE DATABASE papertide_latin1 TEMPLATE template0 ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C'")
    try:
        with pytest.raises(StoreError, match="encoded as LATIN1; papertide needs UTF8"):
            PostgresStore(pg_cluster.database_url("papertide_latin1"))
    finally:
        pg_cluster.drop_database("papertide_latin1")
